"""Per-container process settings: ``lxc.prlimit.*``, ``lxc.sysctl.*``, ``lxc.proc.*`` and
``lxc.keyring.session``, with liblxc's semantics (conf.c: setup_resource_limits,
setup_sysctl_parameters, setup_proc_filesystem, lxc_setup_keyring).

| function | who calls it, when (as liblxc) |
| --- | --- |
| ``apply_prlimits(container, pid)`` | H, on init's pid (prlimit(2)), before init is exec'd |
| ``apply_sysctls(container)`` | C2, in the container's namespaces with its /proc mounted |
| ``apply_proc(container, pid)`` | H, writes /proc/PID/FILE of the container's init |
| ``new_session_keyring(container)`` | C2, before init is exec'd |

Errors are LxcsdError "path:line: KEY: what failed (hint)", the location found in the
model's entries.
"""

from __future__ import annotations

import errno

from lxcsd import linux
from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.config.model import Container, Prlimit

# setrlimit(2) resource numbers (asm-generic/resource.h; the same on x86, arm64, riscv, s390
# and ppc; only alpha, mips and sparc differ, which lxcsd does not run on).
RLIMITS = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6,
    "nofile": 7, "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12,
    "nice": 13, "rtprio": 14, "rttime": 15,
}


def _where(container: Container, key: str) -> str:
    for entry in reversed(container.entries):
        if entry.canonical == key:
            return f"{entry.location()}: "
    return ""


def _fail(container: Container, key: str, message: str, hint: str = "") -> LxcsdError:
    return LxcsdError(f"{_where(container, key)}{key}: {message}", hint)


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


def prlimit_plan(container: Container) -> list[tuple[str, int, int, int]]:
    """(name, resource, soft, hard) in config order; -1 (RLIM_INFINITY) is unlimited."""
    plan = []
    for name, limit in container.prlimit.items():
        limit_: Prlimit = limit
        plan.append((name, resource_number(name), limit_.soft, limit_.hard))
    return plan


def apply_prlimits(container: Container, pid: int) -> None:
    """prlimit(2) every lxc.prlimit.NAME on pid (the container's init, from the host)."""
    plan = prlimit_plan(container)
    if not plan:
        return
    import resource  # ~0.5 ms: only for containers that set limits

    for name, number, soft, hard in plan:
        try:
            resource.prlimit(pid, number, (soft, hard))
        except ValueError as exc:  # EINVAL: soft above hard, or an unknown resource
            raise _fail(container, f"lxc.prlimit.{name}", f"cannot set "
                        f"{_limit_text(soft)}:{_limit_text(hard)}: {exc}",
                        "the soft limit must not exceed the hard one") from None
        except OSError as exc:
            hint = "raising a hard limit needs CAP_SYS_RESOURCE" \
                if exc.errno == errno.EPERM else ""
            raise _fail(container, f"lxc.prlimit.{name}", f"cannot set "
                        f"{_limit_text(soft)}:{_limit_text(hard)}: {exc.strerror}",
                        hint) from None


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


def apply_sysctls(container: Container, proc: str = "/proc") -> None:
    """Write every lxc.sysctl.NAME under proc/sys: call it in the container's namespaces
    (its net, ipc and uts namespaces decide what the values change)."""
    for name, value in container.sysctl.items():
        key = f"lxc.sysctl.{name}"
        try:
            linux.write_file(sysctl_path(name, proc), value, nofollow=True)
        except OSError as exc:
            raise _fail(container, key, f"cannot set {value!r}: {exc.strerror}",
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


def apply_proc(container: Container, pid: int, proc: str = "/proc") -> None:
    """Write every lxc.proc.FILE = VALUE to /proc/PID/FILE, in config order."""
    for name, value in container.proc:
        try:
            linux.write_file(proc_path(pid, name, proc), value, nofollow=True)
        except OSError as exc:
            hint = f"/proc/PID/{name} does not exist" if exc.errno == errno.ENOENT else ""
            raise _fail(container, f"lxc.proc.{name}",
                        f"cannot write {value!r}: {exc.strerror}", hint) from None


# ------------------------------------------------------------------------------------------
# lxc.keyring.session


def new_session_keyring(container: Container) -> bool:
    """Join a new anonymous session keyring, so the container does not share the host's
    (liblxc's default). False when not done: disabled by ``lxc.keyring.session = 0``, or
    the kernel refuses (ENOSYS, EACCES, EPERM: liblxc continues then too)."""
    if container.keyring_session is False:
        return False
    try:
        linux.keyctl_join_session_keyring(None)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EACCES, errno.EPERM, errno.EDQUOT):
            return False
        raise _fail(container, "lxc.keyring.session",
                    f"cannot create a session keyring: {exc.strerror}") from None
    return True
