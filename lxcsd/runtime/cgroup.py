"""cgroup2 operations on the directory systemd delegates to lxc@NAME.service (Delegate=yes).

The helper finds its own cgroup (``0::`` line of /proc/self/cgroup) under the cgroup2 mount
(/proc/self/mountinfo, so /sys/fs/cgroup/unified on a hybrid host works too), creates the
leaves ``lxc.monitor.NAME`` (itself) and ``lxc.payload.NAME`` (the container), enables
controllers, writes lxc.cgroup2.* settings, and for an unprivileged container hands the
payload to the container's root the way systemd delegates: the directory and the files
the kernel lists in /sys/kernel/cgroup/delegate.

All paths here are host paths of cgroup directories; names given by configuration
(lxc.cgroup.dir.*) must be relative and must not walk up.
"""

from __future__ import annotations

import errno
import os

from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

DELEGATE_FILE = "/sys/kernel/cgroup/delegate"
# Before /sys/kernel/cgroup/delegate existed (Linux < 4.15) these were the delegated files.
DEFAULT_DELEGATE = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control")


def monitor_name(name: str) -> str:
    return f"lxc.monitor.{name}"


def payload_name(name: str) -> str:
    return f"lxc.payload.{name}"


def check_relative(path: str) -> str:
    """A configured cgroup directory: relative, no '..', no empty name; returns it cleaned."""
    parts = [part for part in path.split("/") if part and part != "."]
    if path.startswith("/") or ".." in parts or not parts:
        raise LxcsdError(f"cgroup directory {path!r} must be a relative path without '..'",
                         "write e.g. lxc.payload.c1 or lxc/c1")
    return "/".join(parts)


# ------------------------------------------------------------------------------------------
# Where we are


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> tuple[str, str]:
    """(mount point, mount root) of the cgroup2 mount, preferring /sys/fs/cgroup."""
    found: list[tuple[str, str]] = []
    with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                found.append((unescape_mountinfo(fields[4]), unescape_mountinfo(fields[3])))
    if not found:
        raise LxcsdError("no cgroup2 file system is mounted",
                         "lxcsd needs the unified hierarchy (cgroup2)")
    found.sort(key=lambda mount: mount[0] != "/sys/fs/cgroup")
    return found[0]


def unescape_mountinfo(field: str) -> str:
    """A /proc/PID/mountinfo path field without its octal escapes (space, tab, newline,
    backslash)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def own_cgroup(pid: int | str = "self") -> str:
    """The cgroup2 path ('0::' line) of pid, e.g. /system.slice/lxc@c1.service."""
    with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].rstrip("\n")
    raise LxcsdError(f"process {pid} is in no cgroup2 cgroup")


def own_cgroup_dir(pid: int | str = "self", mountinfo: str = "/proc/self/mountinfo") -> str:
    """The host directory of pid's cgroup2 cgroup."""
    mountpoint, root = cgroup2_mount(mountinfo)
    path = own_cgroup(pid)
    rel = path[len(root):] if root != "/" and path.startswith(root) else path
    return os.path.join(mountpoint, rel.lstrip("/"))


# ------------------------------------------------------------------------------------------
# Leaves


def create(parent: str, name: str, *, exist_ok: bool = False) -> str:
    """Make parent/name (name relative, see check_relative); returns its path."""
    path = os.path.join(parent, check_relative(name))
    try:
        os.makedirs(path, 0o755, exist_ok=exist_ok)
    except FileExistsError:
        raise LxcsdError(f"cgroup {path} already exists",
                         "a container of this name runs, or a stale cgroup is left: "
                         "lxcsd-helper cleanup removes it") from None
    return path


def move(pid: int, cgroup_dir: str) -> None:
    """Move pid (all its threads) into cgroup_dir."""
    write(cgroup_dir, "cgroup.procs", str(pid))


def procs(cgroup_dir: str) -> list[int]:
    with open(os.path.join(cgroup_dir, "cgroup.procs"), encoding="ascii") as f:
        return [int(line) for line in f if line.strip()]


def remove(cgroup_dir: str) -> None:
    """Remove cgroup_dir and every cgroup below it (deepest first); gone already is fine.
    Raises LxcsdError naming the cgroup if processes are still in one."""
    if not os.path.isdir(cgroup_dir):
        return
    for top, dirs, _ in os.walk(cgroup_dir, topdown=False):
        for name in dirs:
            _rmdir(os.path.join(top, name))
    _rmdir(cgroup_dir)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        hint = "processes are still in it" if exc.errno == errno.EBUSY else ""
        raise LxcsdError(f"cannot remove cgroup {path}: {exc.strerror}", hint) from None


def kill_all(cgroup_dir: str) -> bool:
    """SIGKILL every process in cgroup_dir and below (cgroup.kill, Linux 5.14); False when
    the kernel lacks cgroup.kill."""
    try:
        write(cgroup_dir, "cgroup.kill", "1")
    except LxcsdError:
        if not os.path.exists(os.path.join(cgroup_dir, "cgroup.kill")):
            return False
        raise
    return True


# ------------------------------------------------------------------------------------------
# Controllers and settings


def available_controllers(cgroup_dir: str) -> list[str]:
    with open(os.path.join(cgroup_dir, "cgroup.controllers"), encoding="ascii") as f:
        return f.read().split()


def enable_controllers(cgroup_dir: str, wanted: Iterable[str]) -> list[str]:
    """Enable wanted controllers for the children of cgroup_dir (cgroup.subtree_control);
    returns those not available there, for the caller to warn about."""
    wanted = list(dict.fromkeys(wanted))
    available = set(available_controllers(cgroup_dir))
    enable = [name for name in wanted if name in available]
    if enable:
        write(cgroup_dir, "cgroup.subtree_control", " ".join(f"+{name}" for name in enable))
    return [name for name in wanted if name not in available]


def write(cgroup_dir: str, key: str, value: str) -> None:
    """Write one cgroup file (key: "memory.max", ...), errors naming the file."""
    if "/" in key or key in (".", ".."):
        raise LxcsdError(f"invalid cgroup file name {key!r}")
    path = os.path.join(cgroup_dir, key)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        hint = "the controller is not enabled here or unknown" \
            if exc.errno == errno.ENOENT else ""
        raise LxcsdError(f"cannot open {path}: {exc.strerror}", hint) from None
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise LxcsdError(f"cannot write {value!r} to {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def write_settings(cgroup_dir: str, settings: Iterable[tuple[str, str]]) -> None:
    """lxc.cgroup2.KEY = VALUE, in order."""
    for key, value in settings:
        write(cgroup_dir, key, value)


# ------------------------------------------------------------------------------------------
# Delegation


def delegate_files(path: str = DELEGATE_FILE) -> tuple[str, ...]:
    try:
        with open(path, encoding="ascii") as f:
            names = tuple(f.read().split())
    except OSError:
        return DEFAULT_DELEGATE
    return names or DEFAULT_DELEGATE


def chown_delegated(cgroup_dir: str, uid: int, gid: int,
                    files: Iterable[str] | None = None) -> list[str]:
    """Give cgroup_dir to uid:gid as systemd's Delegate= does: the directory and the
    delegatable files that exist there; returns the paths changed."""
    changed = [cgroup_dir]
    os.chown(cgroup_dir, uid, gid)
    for name in delegate_files() if files is None else files:
        path = os.path.join(cgroup_dir, name)
        try:
            os.chown(path, uid, gid)
        except FileNotFoundError:
            continue  # memory.oom.group without the memory controller
        changed.append(path)
    return changed
