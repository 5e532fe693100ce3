"""Per-container process settings: ``lxc.prlimit.*``, ``lxc.sysctl.*``, ``lxc.proc.*`` and
``lxc.keyring.session``, with liblxc's semantics (conf.c: setup_resource_limits,
setup_sysctl_parameters, setup_proc_filesystem, lxc_setup_keyring).

| function | who calls it, when (as liblxc) |
| --- | --- |
| ``apply_prlimits(prlimits, pid)`` | H, on init's pid (prlimit(2)), before init is exec'd |
| ``apply_sysctls(sysctls)`` | C2, in the container's namespaces with its /proc mounted |
| ``apply_proc(procs, pid)`` | H, writes /proc/PID/FILE of the container's init |
| ``new_session_keyring()`` | C2, before init is exec'd, unless lxc.keyring.session = 0 |

Each takes the plan's plain lists (``lxcsd.runtime.compiler`` makes them from the config,
each entry with the "path:line" of its config line). Errors are LxcsdError
"path:line: KEY: what failed (hint)".
"""

from __future__ import annotations

import errno

from lxcsd import linux
from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from lxcsd.config.model import Container

# setrlimit(2) resource numbers (asm-generic/resource.h; the same on x86, arm64, riscv, s390
# and ppc; only alpha, mips and sparc differ, which lxcsd does not run on).
RLIMITS = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6,
    "nofile": 7, "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12,
    "nice": 13, "rtprio": 14, "rttime": 15,
}


def where(container: Container, key: str) -> str:
    """'path:line' of the last config line setting key ("" when none)."""
    for entry in reversed(container.entries):
        if entry.canonical == key:
            return entry.location()
    return ""


def _fail(where_: str, key: str, message: str, hint: str = "") -> LxcsdError:
    return LxcsdError(f"{where_}: {key}: {message}" if where_ else f"{key}: {message}", hint)


# ------------------------------------------------------------------------------------------
# lxc.prlimit.*


def resource_number(name: str) -> int:
    """The RLIMIT_ number of an lxc.prlimit name: a known name, or a number (liblxc's
    parse_resource accepts numbers for resources it does not know)."""
    if name in RLIMITS:
        return RLIMITS[name]
    if name.isascii() and name.isdigit():
        return int(name)
    raise LxcsdError(f"unknown resource limit {name!r}")


def prlimit_plan(container: Container) -> list[tuple[str, int, int, int, str]]:
    """(name, resource, soft, hard, "path:line") in config order; -1 (RLIM_INFINITY) is
    unlimited. Raises LxcsdError for a resource name the kernel has no number for."""
    return [(name, resource_number(name), limit.soft, limit.hard,
             where(container, f"lxc.prlimit.{name}"))
            for name, limit in container.prlimit.items()]


def apply_prlimits(prlimits: Sequence[tuple[str, int, int, int, str]], pid: int) -> None:
    """prlimit(2) every lxc.prlimit.NAME on pid (the container's init, from the host)."""
    if not prlimits:
        return
    import resource  # ~0.5 ms: only for containers that set limits

    for name, number, soft, hard, where_ in prlimits:
        key = f"lxc.prlimit.{name}"
        try:
            resource.prlimit(pid, number, (soft, hard))
        except ValueError as exc:  # EINVAL: soft above hard, or an unknown resource
            raise _fail(where_, key, f"cannot set {_limit_text(soft)}:{_limit_text(hard)}: "
                        f"{exc}", "the soft limit must not exceed the hard one") from None
        except OSError as exc:
            hint = "raising a hard limit needs CAP_SYS_RESOURCE" \
                if exc.errno == errno.EPERM else ""
            raise _fail(where_, key, f"cannot set {_limit_text(soft)}:{_limit_text(hard)}: "
                        f"{exc.strerror}", hint) from None


def _limit_text(value: int) -> str:
    return "unlimited" if value < 0 else str(value)


# ------------------------------------------------------------------------------------------
# lxc.sysctl.*


def sysctl_path(name: str, proc: str = "/proc") -> str:
    """liblxc's mapping: every '.' becomes '/' under /proc/sys (net.ipv4.ip_forward →
    /proc/sys/net/ipv4/ip_forward)."""
    if not name or "/" in name or ".." in name or name.startswith("."):
        raise LxcsdError(f"invalid sysctl name {name!r}")
    return f"{proc}/sys/{name.replace('.', '/')}"


def sysctl_plan(container: Container) -> list[tuple[str, str, str]]:
    """(name, value, "path:line") of every lxc.sysctl.NAME, in config order."""
    return [(name, value, where(container, f"lxc.sysctl.{name}"))
            for name, value in container.sysctl.items()]


def apply_sysctls(sysctls: Sequence[tuple[str, str, str]], proc: str = "/proc") -> None:
    """Write every lxc.sysctl.NAME under proc/sys: call it in the container's namespaces
    (its net, ipc and uts namespaces decide what the values change)."""
    for name, value, where_ in sysctls:
        key = f"lxc.sysctl.{name}"
        try:
            linux.write_file(sysctl_path(name, proc), value, nofollow=True)
        except OSError as exc:
            raise _fail(where_, key, f"cannot set {value!r}: {exc.strerror}",
                        _sysctl_hint(exc.errno)) from None


def _sysctl_hint(err: int | None) -> str:
    if err == errno.ENOENT:
        return "no such kernel parameter in the container's namespaces"
    if err in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "only namespaced parameters (net.*, kernel.shm*, kernel.msg*, ...) can be " \
            "set; /proc/sys is read-only with lxc.mount.auto = proc:mixed except net"
    if err == errno.EINVAL:
        return "the kernel rejected the value"
    return ""


# ------------------------------------------------------------------------------------------
# lxc.proc.*


def proc_path(pid: int, name: str, proc: str = "/proc") -> str:
    """liblxc's mapping: /proc/PID/FILE, every '.' in FILE becoming '/'."""
    if not name or "/" in name or name in (".", ".."):
        raise LxcsdError(f"invalid /proc/PID file name {name!r}")
    return f"{proc}/{pid}/{name.replace('.', '/')}"


def proc_plan(container: Container) -> list[tuple[str, str, str]]:
    """(file, value, "path:line") of every lxc.proc.FILE, in config order."""
    return [(name, value, where(container, f"lxc.proc.{name}")) for name, value in container.proc]


def apply_proc(procs: Sequence[tuple[str, str, str]], pid: int, proc: str = "/proc") -> None:
    """Write every lxc.proc.FILE = VALUE to /proc/PID/FILE, in config order."""
    for name, value, where_ in procs:
        try:
            linux.write_file(proc_path(pid, name, proc), value, nofollow=True)
        except OSError as exc:
            hint = f"/proc/PID/{name} does not exist" if exc.errno == errno.ENOENT else ""
            raise _fail(where_, f"lxc.proc.{name}",
                        f"cannot write {value!r}: {exc.strerror}", hint) from None


# ------------------------------------------------------------------------------------------
# lxc.keyring.session


def new_session_keyring() -> bool:
    """Join a new anonymous session keyring, so the container does not share the host's
    (liblxc's default unless ``lxc.keyring.session = 0``). False when the kernel refuses
    (ENOSYS, EACCES, EPERM, EDQUOT: liblxc continues then too)."""
    try:
        linux.keyctl_join_session_keyring(None)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EACCES, errno.EPERM, errno.EDQUOT):
            return False
        raise LxcsdError(f"lxc.keyring.session: cannot create a session keyring: "
                         f"{exc.strerror}") from None
    return True
