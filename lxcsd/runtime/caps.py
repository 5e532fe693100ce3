"""Capabilities: names, lxc.cap.drop / lxc.cap.keep, and applying them before exec.

Semantics (LXC confile.c add_cap_entry, conf.c capabilities_deny/allow): names are
capabilities(7) names without ``CAP_``, case-insensitive here, or numbers up to the
running kernel's cap_last_cap. ``lxc.cap.keep`` keeps only what it lists and wins over
``drop``; its ``none`` keyword forgets what was listed before it (``keep = none`` alone
keeps nothing). ``lxc.cap.drop`` drops what it lists from everything the kernel knows.

LXC only shrinks the bounding set and lets execve of a root init compute the rest. lxcsd
also sets the permitted/effective/inheritable sets with capset, so /proc/1/status shows the
reduced set even for an init that is not root, and raises the kept capabilities as ambient
for a non-root init (with PR_SET_KEEPCAPS across the setuid), so they survive its execve.
"""

from __future__ import annotations

import os

from lxcsd import linux
from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

# capabilities(7) / linux/capability.h, index = number.
NAMES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
    "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin",
    "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace",
    "sys_pacct", "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time",
    "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
    "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read",
    "perfmon", "bpf", "checkpoint_restore",
)
NUMBERS = {name: number for number, name in enumerate(NAMES)}
CAP_LAST_CAP_FILE = "/proc/sys/kernel/cap_last_cap"
CAP_SETPCAP = 8


def last_cap(path: str = CAP_LAST_CAP_FILE) -> int:
    """The highest capability the running kernel knows."""
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(NAMES) - 1


def number(name: str, last: int) -> int:
    """The number of a capability name ("sys_admin", "CAP_SYS_ADMIN") or number string."""
    key = name.lower().removeprefix("cap_")
    if key.isdigit():
        value = int(key)
    elif key in NUMBERS:
        value = NUMBERS[key]
    else:
        raise LxcsdError(f"unknown capability {name!r}", "use a name from capabilities(7) "
                         "without CAP_, e.g. sys_admin")
    if value > last:
        raise LxcsdError(f"capability {name!r} is unknown to the running kernel "
                         f"(cap_last_cap is {last})")
    return value


def name(value: int) -> str:
    return NAMES[value] if value < len(NAMES) else str(value)


def keep_set(drop: Sequence[str] = (), keep: Sequence[str] | None = None, *,
             last: int | None = None) -> frozenset[int]:
    """The capabilities the container keeps. keep is None when lxc.cap.keep is unset;
    an empty keep (or only "none") keeps nothing."""
    last = last_cap() if last is None else last
    if keep is not None:
        kept: set[int] = set()
        for word in keep:
            if word.lower() == "none":
                kept.clear()
            else:
                kept.add(number(word, last))
        return frozenset(kept)
    dropped = {number(word, last) for word in drop}
    return frozenset(range(last + 1)) - dropped


def mask(caps: Iterable[int]) -> int:
    bits = 0
    for cap in caps:
        bits |= 1 << cap
    return bits


def names(bits: int) -> list[str]:
    """Capability names set in a mask such as /proc/PID/status CapEff."""
    return [name(cap) for cap in range(64) if bits >> cap & 1]


def drop_bounding(keep: frozenset[int], last: int | None = None) -> None:
    """Drop everything not in keep from the bounding set (needs CAP_SETPCAP)."""
    last = last_cap() if last is None else last
    for cap in range(last + 1):
        if cap not in keep and linux.prctl(linux.PR_CAPBSET_READ, cap) == 1:
            linux.prctl(linux.PR_CAPBSET_DROP, cap)


def set_caps(keep: frozenset[int], *, ambient: bool = False) -> None:
    """Permitted and effective become keep (intersected with what this process has). The
    inheritable set stays empty (moby's CVE-2022-24769: inheritable bits let a non-root
    process regain capabilities from file capabilities), except with ambient, which needs
    each ambient capability inheritable: then the kept set is raised in both."""
    _, permitted, _ = linux.capget()
    bits = mask(keep) & permitted
    linux.capset(bits, bits, bits if ambient else 0)
    if ambient:
        linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
        for cap in keep:
            if bits >> cap & 1:
                linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, cap)


def switch_user(uid: int, gid: int, groups: Sequence[int] = ()) -> None:
    """setgroups/setresgid/setresuid keeping the permitted set (PR_SET_KEEPCAPS); the
    effective set is empty afterwards until set_caps."""
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setgroups(list(groups))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    linux.prctl(linux.PR_SET_KEEPCAPS, 0)


def apply(keep: frozenset[int], *, uid: int = 0, gid: int = 0, groups: Sequence[int] = (),
          load_seccomp: Callable[[], object] | None = None, last: int | None = None) -> None:
    """The capability steps before exec, in the only order that works: shrink the bounding
    set (needs CAP_SETPCAP), load seccomp (without no_new_privs the kernel requires
    CAP_SYS_ADMIN, which the next steps may remove), switch to uid/gid when not 0, then set
    the process sets; a non-root init gets the kept set as ambient."""
    drop_bounding(keep, last)
    if load_seccomp is not None:
        load_seccomp()
    if uid or gid or groups:
        switch_user(uid, gid, groups)
    set_caps(keep, ambient=uid != 0)


def status_caps(pid: int | str = "self") -> dict[str, int]:
    """CapInh/CapPrm/CapEff/CapBnd/CapAmb of /proc/PID/status as masks."""
    found = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Cap"):
                key, _, value = line.partition(":")
                found[key] = int(value.strip(), 16)
    return found
