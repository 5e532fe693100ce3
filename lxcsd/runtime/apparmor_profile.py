"""The text and names of a generated AppArmor profile (``lxc.apparmor.profile = generated``).

Pure: the host's AppArmor features come in as arguments (``lxcsd.runtime.apparmor`` reads
them). What the profile allows and denies follows LXC 5.0's generated profile
(src/lxc/lsm/apparmor.c), rule group by rule group, written here as data:

- everything a system container needs by default (capabilities, files, network, D-Bus,
  signals and ptrace among its own processes, tmpfs/mqueue/fuse/hugetlbfs mounts);
- the kernel's interfaces stay where they are: proc only at /proc, sysfs only at /sys, and
  no bind, rbind or move of /proc, /sys or /dev (bind: /dev/.lxc) elsewhere, so the path
  rules below cannot be sidestepped through a second mount; no remount of / read-only;
- no writes to /proc/sys except net/* and the namespaced kernel.{shm*,msg*,sem*,hostname,
  domainname}, none under /proc/sys/fs, /proc/bus, /proc/acpi, no access to /proc/kcore,
  /proc/sysrq-trigger, /sys/kernel/debug; no writes to /sys except /sys/fs/cgroup,
  /sys/class/net and /sys/devices/virtual/net (cgroup v1's release_agent lives below
  /sys/fs/cgroup/CONTROLLER, which the container sees only read-only or as its own
  cgroup namespace);
- with AppArmor stacking (policy namespaces, domain version >= 1.2) the container gets a
  policy namespace of its own and may load profiles there (/sys/kernel/security/apparmor),
  as a systemd or LXD guest does; without it, nothing under /sys/kernel;
- ``lxc.apparmor.allow_nesting = 1``: pivot_root, ptrace, signal and every mount (as LXC,
  which cannot express the remounts nesting needs), but /dev/.lxc/{proc,sys} stay denied;
- unprivileged containers (lxc.idmap): propagation changes, bind mounts and read-only
  remounts anywhere (the user namespace is the boundary);
- ``lxc.apparmor.raw`` lines last, verbatim.

LXC writes its "everything below X except ..." path lists out by hand (generated once by a
script); here :func:`outside` computes them from a small tree of exceptions, so the rule
lists are derived, not copied.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# Kinds of exception in a tree given to :func:`outside`.
WHOLE = "whole"    # the entry and everything below it are excepted
PREFIX = "prefix"  # names starting with this (written "shm*"): the entries, not below them

# Where the container may write below /proc/sys and /sys (a dict: the directory itself and
# the listed entries below it).
PROC_SYS_WRITABLE: dict[str, object] = {
    "kernel": {"shm*": PREFIX, "msg*": PREFIX, "sem*": PREFIX, "hostname": WHOLE,
               "domainname": WHOLE},
    "net": WHOLE,
}
SYS_WRITABLE: dict[str, object] = {
    "fs": {"cgroup": WHOLE},
    "class": {"net": WHOLE},
    "devices": {"virtual": {"net": WHOLE}},
    "kernel": WHOLE,  # decided by the stacking rules below
}
# Mount sources and targets kept away from the kernel's interfaces.
BIND_EXCEPT: dict[str, object] = {"proc": WHOLE, "sys": WHOLE, "dev": {".lxc": WHOLE}}
RBIND_EXCEPT: dict[str, object] = {"proc": WHOLE, "sys": WHOLE, "dev": WHOLE}
SYS_KERNEL_SECURITY: dict[str, object] = {"security": {"apparmor": WHOLE}}

BASE = """\
  # lxcsd: generated for lxc.apparmor.profile = generated (as LXC 5.0)
  capability,
  dbus,
  file,
  network,
  umount,
  signal (receive),
  signal peer=@{profile_name},
  ptrace (readby),
  ptrace (tracedby),
  ptrace peer=@{profile_name},

  # systemd remounts / read-only at shutdown; refuse it without a log line
  deny mount options=(ro, remount) -> /,
  deny mount options=(ro, remount, silent) -> /,

  mount fstype=tmpfs,
  mount fstype=hugetlbfs,
  mount fstype=mqueue,
  mount fstype=fuse,
  mount fstype=fuse.*,
  mount fstype=binfmt_misc -> /proc/sys/fs/binfmt_misc/,
  mount fstype=efivarfs -> /sys/firmware/efi/efivars/,
  mount fstype=fusectl -> /sys/fs/fuse/connections/,
  mount fstype=securityfs -> /sys/kernel/security/,
  mount fstype=debugfs -> /sys/kernel/debug/,
  deny mount fstype=debugfs -> /var/lib/ureadahead/debugfs/,
  mount fstype=proc -> /proc/,
  mount fstype=sysfs -> /sys/,
  mount options=(rw, nosuid, nodev, noexec, remount) -> /sys/,
  mount options=(ro, nosuid, nodev, noexec, remount, strictatime) -> /sys/fs/cgroup/,

  deny @{PROC}/bus/** wklx,
  deny @{PROC}/sys/fs/** wklx,
  deny @{PROC}/kcore rwklx,
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/acpi/** rwklx,
  deny /sys/firmware/efi/efivars/** rwklx,
  deny /sys/kernel/debug/{,**} rwklx,

  # mount propagation of / only
  mount options=(rw, make-slave) -> /,
  mount options=(rw, make-rslave) -> /,
  mount options=(rw, make-shared) -> /,
  mount options=(rw, make-rshared) -> /,
  mount options=(rw, make-private) -> /,
  mount options=(rw, make-rprivate) -> /,
  mount options=(rw, make-unbindable) -> /,
  mount options=(rw, make-runbindable) -> /,
"""

UNIX = """
  unix (receive),
  unix peer=(label=@{profile_name}),
"""

CGROUP_NAMESPACE = """
  mount fstype=cgroup -> /sys/fs/cgroup/**,
  mount fstype=cgroup2 -> /sys/fs/cgroup/**,
"""

NO_STACKING = """
  # no AppArmor stacking: nothing below /sys/kernel
  deny /sys/k*{,/**} rwklx,
"""

NESTING = """
  # lxc.apparmor.allow_nesting
  pivot_root,
  ptrace,
  signal,
  deny /dev/.lxc/proc/** rw,
  deny /dev/.lxc/sys/** rw,
  mount fstype=proc -> /usr/lib/*/lxc/**,
  mount fstype=sysfs -> /usr/lib/*/lxc/**,
  mount none -> /var/lib/lxd/shmounts/,
  mount /var/lib/lxd/shmounts/ -> /var/lib/lxd/shmounts/,
  mount options=bind /var/lib/lxd/shmounts/** -> /var/lib/lxd/**,
  # a nested container's read-only remounts cannot be told apart from others: any mount
  mount,
"""

UNPRIVILEGED = """
  # unprivileged container: the user namespace bounds its mounts
  pivot_root,
  mount options=(rw, make-slave) -> **,
  mount options=(rw, make-rslave) -> **,
  mount options=(rw, make-shared) -> **,
  mount options=(rw, make-rshared) -> **,
  mount options=(rw, make-private) -> **,
  mount options=(rw, make-rprivate) -> **,
  mount options=(rw, make-unbindable) -> **,
  mount options=(rw, make-runbindable) -> **,
  mount options=(rw, bind),
  mount options=(rw, rbind),
  mount options=(ro, remount),
"""

# liblxc shortens a profile name longer than this (with 7 bytes of room kept) to a hash.
NAME_MAX = 253


class Features:
    """What the host's AppArmor offers (``lxcsd.runtime.apparmor.features`` reads it)."""

    __slots__ = ("enabled", "mount", "stacking", "stacked", "unix", "cgroup_ns")

    def __init__(self, *, enabled: bool = True, mount: bool = True, stacking: bool = True,
                 stacked: bool = False, unix: bool = True, cgroup_ns: bool = True) -> None:
        self.enabled = enabled      # /sys/module/apparmor/parameters/enabled = Y
        self.mount = mount          # mount rules are enforced (features/mount/mask)
        self.stacking = stacking    # policy namespaces and stacking (domain 1.2, stack yes)
        self.stacked = stacked      # we already run in a stacked namespace (.ns_stacked)
        self.unix = unix            # apparmor_parser knows unix rules (>= 2.10.95)
        self.cgroup_ns = cgroup_ns  # /proc/self/ns/cgroup exists

    @property
    def namespaced(self) -> bool:
        """The container gets its own policy namespace (stacked under its profile)."""
        return self.stacking and not self.stacked


# ------------------------------------------------------------------------------------------
# Names


def fnv1a_64(data: bytes) -> int:
    """FNV-1a, 64 bits: liblxc's hash for shortening long profile names."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def profile_name(name: str, lxcpath: str) -> str:
    """``lxc-NAME_<LXCPATH>`` as liblxc names it (aa-status shows the same name for a
    container run by lxc-start or by lxcsd), a 16-digit hash when too long."""
    full = f"lxc-{name}_<{lxcpath}>"
    if len(full.encode()) + 7 > NAME_MAX:
        return f"{fnv1a_64(full.encode()):016x}"
    return full


def namespace_name(name: str, lxcpath: str) -> str:
    """The container's AppArmor policy namespace (and profile file name): the profile name
    with every '/' made '-'."""
    return profile_name(name, lxcpath).replace("/", "-")


def label(name: str, lxcpath: str, features: Features) -> str:
    """What init and attached processes are confined by: the profile, stacked with the
    container's own namespace when the host can stack (so a guest can load profiles into
    it, confined by ours all the same)."""
    profile = profile_name(name, lxcpath)
    if features.namespaced:
        return f"{profile}//&:{namespace_name(name, lxcpath)}:"
    return profile


# ------------------------------------------------------------------------------------------
# "Everything below BASE except ...": glob patterns


def outside(base: str, excepted: Mapping[str, object]) -> list[str]:
    """AppArmor globs matching every path below base (not base itself) except the excepted
    ones: a dict value excepts that directory and, recursively, what its own dict names;
    WHOLE excepts an entry and all below it; PREFIX ("shm*") excepts the entries whose
    names start with it, not what is below them.

    AppArmor globs have no "not this name", only "not this character" ([^ab]): names are
    followed character by character ("k{,[^e]*}" = "k" or k followed by anything but e,
    then "ke{,[^r]*}", ... until "kernel?*" for longer names)."""
    keys = {key.rstrip("*"): (kind if not key.endswith("*") else PREFIX)
            for key, kind in excepted.items()}
    patterns: list[str] = []
    _walk(base.rstrip("/"), "", keys, excepted, patterns)
    return patterns


def _walk(base: str, prefix: str, keys: Mapping[str, object],
          excepted: Mapping[str, object], out: list[str]) -> None:
    kind = keys.get(prefix) if prefix else None
    if kind == PREFIX:
        out.append(f"{base}/{prefix}*/**")  # the entries are excepted, not below them
        return
    nexts = "".join(sorted({key[len(prefix)] for key in keys
                            if len(key) > len(prefix) and key.startswith(prefix)}))
    tail = f"[^{nexts}]*" if nexts else "?*"
    if not prefix:
        out.append(f"{base}/{tail}{{,/**}}")
    elif kind is None:  # a prefix of excepted names, not a name itself: covered too
        out.append(f"{base}/{prefix}{{,{tail}}}{{,/**}}")
    else:
        out.append(f"{base}/{prefix}{tail}{{,/**}}")
        sub = excepted.get(prefix)
        if isinstance(sub, dict):
            out.extend(outside(f"{base}/{prefix}", sub))
    for char in nexts:
        _walk(base, prefix + char, keys, excepted, out)


# ------------------------------------------------------------------------------------------
# The profile


def remount_rules() -> list[str]:
    """Read-only bind remounts (what systemd's ReadOnlyPaths= and friends do inside) of
    anything but /proc, /sys and /dev: every combination of nodev, nosuid, noexec, with
    and without noatime or strictatime."""
    rules: list[str] = []
    dests = outside("/", BIND_EXCEPT)
    for bits in range(8):
        flags = [flag for n, flag in enumerate(("nodev", "nosuid", "noexec")) if bits >> n & 1]
        for atime in ((), ("noatime",), ("strictatime",)):
            options = ",".join(["ro", "remount", "bind", *flags, *atime])
            rules.extend(f"  mount options=({options}) -> {dest}," for dest in dests)
    return rules


def mount_rules() -> list[str]:
    rules = [f"  mount options=(rw,bind) {src}," for src in outside("/", BIND_EXCEPT)]
    rules += [f"  mount options=(rw,rbind) {src}," for src in outside("/", RBIND_EXCEPT)]
    rules += [f"  mount options=(rw,move) {src}," for src in outside("/", BIND_EXCEPT)]
    return rules


def write_denials() -> list[str]:
    return [f"  deny {path} wklx," for path in outside("/proc/sys", PROC_SYS_WRITABLE)
            + outside("/sys", SYS_WRITABLE)]


def stacking_rules(namespace: str) -> list[str]:
    """With a namespace of its own: writes below /sys/kernel only to load its policy."""
    rules = [f"  deny {path} wklx," for path in outside("/sys/kernel", SYS_KERNEL_SECURITY)]
    rules += [f'  change_profile -> ":{namespace}:*",',
              f'  change_profile -> ":{namespace}://*",']
    return rules


def profile_text(name: str, lxcpath: str, features: Features, *, nesting: bool = False,
                 unprivileged: bool = False, raw: tuple[str, ...] = ()) -> str:
    """The whole profile, as apparmor_parser reads it."""
    profile = profile_name(name, lxcpath)
    parts = ["#include <tunables/global>\n",
             f'profile "{profile}" flags=(attach_disconnected,mediate_deleted) {{\n',
             BASE, "\n"]
    parts += [line + "\n" for line in mount_rules() + write_denials() + remount_rules()]
    if features.unix:
        parts.append(UNIX)
    if features.cgroup_ns:
        parts.append(CGROUP_NAMESPACE)
    if features.namespaced:
        parts += [line + "\n" for line in stacking_rules(namespace_name(name, lxcpath))]
    else:
        parts.append(NO_STACKING)
    if nesting:
        parts.append(NESTING)
        if not features.namespaced:
            parts.append(f'  change_profile -> "{profile}",\n')
    if unprivileged:
        parts.append(UNPRIVILEGED)
    parts += [line + "\n" for line in raw]
    parts.append("}\n")
    return "".join(parts)
