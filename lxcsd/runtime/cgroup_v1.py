"""cgroup v1 hierarchies on hosts that still have them (hybrid hosts: memory, cpu, pids, ...
bound to v1 while the cgroup2 tree holds the rest). lxcsd's limits are cgroup2's
(``lxcsd.runtime.cgroup``); this module only keeps the container inside its own subtree.

A cgroup namespace is rooted, in every hierarchy, at the cgroup its creator is in. Left in
the helper's v1 cgroups (the host's root in each hierarchy systemd does not manage), a
container that mounts a v1 hierarchy sees the host's tree from its root: a privileged one
can rewrite the root's ``release_agent``, a program the kernel runs as host root when a
cgroup empties (CVE-2022-0492), and freeze or throttle the host's cgroups; an unprivileged
one reads them. So, as liblxc's cgfsng does, the helper makes the payload's leaf (the same
relative name as in cgroup2, ``lxc.payload.NAME``) in every v1 hierarchy and moves C1 into
them before C1 makes the cgroup namespace. Inside, a mount of a v1 hierarchy then shows
only the container's subtree: ``release_agent`` exists only in a hierarchy's root, and the
kernel refuses to create new hierarchies outside the initial cgroup namespace (checked on
this host by the hardening tier).

The hierarchies are those of the ``N:controllers:path`` lines of /proc/self/cgroup with
N > 0. Each is reached through its mount in /proc/self/mountinfo when there is one (its
superblock options are then the host's), else through a detached mount (fsmount, nothing
attached anywhere), as in the test sandbox, which mounts only cgroup2.

Cost: moving a process between cgroups waits for an RCU grace period, once for a burst of
moves: 13 ms for the first of 9 hierarchies here, 0.03 ms for each next one (2 cores, Linux
6.18). A cgroup2-only host (Debian 12's default) has no v1 line and pays nothing.
"""

from __future__ import annotations

import errno
import os

from lxcsd import linux
from lxcsd.errors import LxcsdError
from lxcsd.runtime import cgroup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# Superblock options of a v1 mount that are not controllers or names.
_ROOT_FLAGS = frozenset(("rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode",
                         "favordynmods", "nofavordynmods", "sane_behavior"))
# A new cpuset cgroup starts with no cpus and mems: tasks cannot join it before these are set.
CPUSET_FILES = ("cpuset.cpus", "cpuset.mems")
REMOVE_TRIES = 200  # x 5 ms: killed processes leave their cgroups asynchronously
RECORDED_TRIES = 20  # x 5 ms, once init has exited (remove_recorded)


class Hierarchy:
    """One v1 hierarchy: its controllers as /proc/PID/cgroup names them ("cpu,cpuacct",
    "name=systemd") and a process's path in it (relative to our cgroup namespace)."""

    __slots__ = ("controllers", "path")

    def __init__(self, controllers: str, path: str) -> None:
        self.controllers = controllers
        self.path = path

    def options(self) -> list[tuple[str, str | None]]:
        """fsconfig options that select this hierarchy ("none" when it has only a name)."""
        opts: list[tuple[str, str | None]] = []
        for word in self.controllers.split(","):
            key, sep, value = word.partition("=")
            opts.append((key, value) if sep else (key, None))
        if all(value is not None for _, value in opts):
            opts.insert(0, ("none", None))
        return opts


def hierarchies(text: str) -> list[Hierarchy]:
    """The v1 hierarchies of a /proc/PID/cgroup text (the cgroup2 line is "0::path")."""
    found = []
    for line in text.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number != "0" and controllers:
            found.append(Hierarchy(controllers, path))
    return found


def own_hierarchies(pid: int | str = "self") -> list[Hierarchy]:
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="surrogateescape") as f:
            return hierarchies(f.read())
    except FileNotFoundError:
        raise LxcsdError(f"process {pid} is gone") from None


def mount_for(hierarchy: Hierarchy, mountinfo: str) -> tuple[str, str, list[str]] | None:
    """(mount point, mount root, superblock options) of a mount of hierarchy from a
    /proc/self/mountinfo text whose root contains the hierarchy's path; None if none."""
    wanted = set(hierarchy.controllers.split(","))
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(tail) < 3 or tail[0] != "cgroup":
            continue
        options = tail[2].split(",")
        if {o for o in options if o not in _ROOT_FLAGS} != wanted:
            continue
        root = cgroup.unescape_mountinfo(fields[3])
        if _within(hierarchy.path, root):
            return cgroup.unescape_mountinfo(fields[4]), root, options
    return None


def _within(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def open_own(hierarchy: Hierarchy, mountinfo: str) -> int:
    """An O_PATH fd of the directory of hierarchy.path: through its mount, else through a
    detached mount of the hierarchy (rooted at our cgroup namespace's root)."""
    if hierarchy.path.startswith("/.."):
        raise LxcsdError(f"cgroup v1 {hierarchy.controllers}: this process is outside its "
                         f"cgroup namespace ({hierarchy.path})")
    found = mount_for(hierarchy, mountinfo)
    if found is not None:
        mountpoint, root, _ = found
        rel = hierarchy.path[len(root):] if root != "/" else hierarchy.path
        return os.open(os.path.join(mountpoint, rel.lstrip("/")) or ".",
                       os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    mount_fd = _detached_mount(hierarchy)
    try:
        return os.open(hierarchy.path.lstrip("/") or ".", os.O_PATH | os.O_DIRECTORY
                       | os.O_CLOEXEC, dir_fd=mount_fd)
    finally:
        os.close(mount_fd)


def _detached_mount(hierarchy: Hierarchy) -> int:
    fs_fd = linux.fsopen("cgroup")
    try:
        for key, value in hierarchy.options():
            if value is None:
                linux.fsconfig(fs_fd, linux.FSCONFIG_SET_FLAG, key)
            else:
                linux.fsconfig(fs_fd, linux.FSCONFIG_SET_STRING, key, value)
        linux.fsconfig(fs_fd, linux.FSCONFIG_CMD_CREATE)
        return linux.fsmount(fs_fd, linux.FSMOUNT_CLOEXEC, 0)
    finally:
        os.close(fs_fd)


def _read_mountinfo() -> str:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


# ------------------------------------------------------------------------------------------
# Leaves


class Leaf:
    """rel (a relative cgroup path) made below our own cgroup (own_fd, O_PATH; ``own``:
    its path in the hierarchy) in one hierarchy."""

    __slots__ = ("controllers", "own_fd", "rel", "own")

    def __init__(self, controllers: str, own_fd: int, rel: str, own: str = "") -> None:
        self.controllers = controllers
        self.own_fd = own_fd
        self.rel = rel
        self.own = own

    def entry(self) -> str:
        """``CONTROLLERS:OWN``, what :func:`remove_recorded` takes (lxcsd-console removes
        a stopped container's leaves with it)."""
        return f"{self.controllers}:{self.own}"

    def close(self) -> None:
        if self.own_fd >= 0:
            os.close(self.own_fd)
            self.own_fd = -1


def make_leaves(rel: str) -> list[Leaf]:
    """rel (``lxc.payload.NAME``, or an lxc.cgroup.dir path) below our own cgroup in every
    v1 hierarchy; [] on a cgroup2-only host. A leftover leaf is reused (the caller checks
    the cgroup2 payload, which shares its name, for a running container). Raises
    LxcsdError naming the hierarchy when one cannot be made (the others are undone)."""
    rel = cgroup.check_relative(rel)
    found = own_hierarchies()
    if not found:
        return []
    mountinfo = _read_mountinfo()
    made: list[Leaf] = []
    for hierarchy in found:
        try:
            made.append(_make_leaf(hierarchy, mountinfo, rel))
        except (OSError, LxcsdError) as exc:
            remove_leaves(made)
            if isinstance(exc, LxcsdError):
                raise
            raise LxcsdError(f"cgroup v1 {hierarchy.controllers}: cannot make {rel}: "
                             f"{exc.strerror}") from None
    return made


def _make_leaf(hierarchy: Hierarchy, mountinfo: str, rel: str) -> Leaf:
    leaf = Leaf(hierarchy.controllers, open_own(hierarchy, mountinfo), rel, hierarchy.path)
    try:
        try:
            _mkdirs(leaf)
        except FileNotFoundError:  # removed under us (lxcsd-console, the previous life)
            _mkdirs(leaf)
    except BaseException:
        leaf.close()
        raise
    return leaf


def _mkdirs(leaf: Leaf) -> None:
    done = ""
    for part in leaf.rel.split("/"):
        done = f"{done}/{part}" if done else part
        try:
            os.mkdir(done, 0o755, dir_fd=leaf.own_fd)
        except FileExistsError:
            continue
        if "cpuset" in leaf.controllers.split(","):
            _inherit_cpuset(leaf.own_fd, done)


def _inherit_cpuset(own: int, rel: str) -> None:
    parent = os.path.dirname(rel)
    for name in CPUSET_FILES:
        fd = os.open(os.path.join(parent, name), os.O_RDONLY | os.O_CLOEXEC, dir_fd=own)
        try:
            value = os.read(fd, 4096).strip()
        finally:
            os.close(fd)
        _write(own, f"{rel}/{name}", value.decode() or "\n")


def move(leaves: Iterable[Leaf], pid: int) -> None:
    """Move pid (its whole thread group) into each leaf. A leaf that went away since it
    was made is made again: lxcsd-console removes a stopped container's leaves once its
    init has exited (:func:`remove_recorded`), which may come after a restart made (or
    reused) them; moved into, a leaf is busy and stays."""
    for leaf in leaves:
        try:
            try:
                _write(leaf.own_fd, f"{leaf.rel}/cgroup.procs", str(pid))
            except FileNotFoundError:
                _mkdirs(leaf)
                _write(leaf.own_fd, f"{leaf.rel}/cgroup.procs", str(pid))
        except OSError as exc:
            raise LxcsdError(f"cgroup v1 {leaf.controllers}: cannot move process {pid} into "
                             f"{leaf.rel}: {exc.strerror}") from None


def _write(dir_fd: int, path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def remove_leaves(leaves: Iterable[Leaf], tries: int = REMOVE_TRIES) -> list[str]:
    """Remove each leaf, what the container made below it, and its parents up to our own
    cgroup when empty; closes the leaves. Returns the problems ("memory: lxc.payload.c1:
    Device or resource busy") for the caller to report."""
    problems = []
    for leaf in leaves:
        try:
            _remove_tree(leaf.own_fd, leaf.rel, tries)
        except OSError as exc:
            problems.append(f"{leaf.controllers}: {leaf.rel}: {exc.strerror}")
        finally:
            leaf.close()
    return problems


def _remove_tree(own: int, rel: str, tries: int = REMOVE_TRIES) -> None:
    # Bottom-up, each directory's children while fwalk holds its descriptor open (it closes
    # it once the next entry is asked for: a list() of the walk would hold closed ones).
    try:
        for _, dirs, _, dir_fd in os.fwalk(rel, topdown=False, dir_fd=own):
            for name in dirs:
                _rmdir_retrying(name, dir_fd, tries)
    except FileNotFoundError:
        return
    _rmdir_retrying(rel, own, tries)
    parent = os.path.dirname(rel)
    while parent:
        try:
            os.rmdir(parent, dir_fd=own)
        except OSError:
            break
        parent = os.path.dirname(parent)


def _rmdir_retrying(path: str, dir_fd: int, tries: int = REMOVE_TRIES) -> None:
    import time

    for _ in range(tries):
        try:
            os.rmdir(path, dir_fd=dir_fd)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
        time.sleep(0.005)
    os.rmdir(path, dir_fd=dir_fd)  # raises EBUSY


def remove_recorded(rel: str, entries: Iterable[str], tries: int = RECORDED_TRIES
                    ) -> list[str]:
    """Remove rel below each recorded own cgroup (:meth:`Leaf.entry`), as
    :func:`remove_leaves` does; by lxcsd-console once init has exited (every process of
    its pid namespace is gone then), in a process of its own (this module's imports stay
    out of the service). A leaf still busy is left after ``tries`` × 5 ms: a restart of
    the container uses it already. Returns the problems."""
    rel = cgroup.check_relative(rel)
    problems = []
    mountinfo = _read_mountinfo()
    for entry in entries:
        controllers, sep, own = entry.partition(":")
        if not sep or not own.startswith("/"):
            problems.append(f"{entry!r}: not CONTROLLERS:PATH")
            continue
        try:
            fd = open_own(Hierarchy(controllers, own), mountinfo)
        except (OSError, LxcsdError) as exc:
            problems.append(f"{controllers}: {getattr(exc, 'strerror', None) or exc}")
            continue
        problems += remove_leaves([Leaf(controllers, fd, rel, own)], tries)
    return problems


def open_leaves(rel: str) -> list[Leaf]:
    """The existing leaves rel in every v1 hierarchy (for cleanup); hierarchies without it
    are skipped."""
    rel = cgroup.check_relative(rel)
    found = own_hierarchies()
    if not found:
        return []
    mountinfo = _read_mountinfo()
    leaves = []
    for hierarchy in found:
        try:
            own = open_own(hierarchy, mountinfo)
        except (OSError, LxcsdError):
            continue
        leaf = Leaf(hierarchy.controllers, own, rel, hierarchy.path)
        try:
            os.stat(rel, dir_fd=own)
            leaves.append(leaf)
        except OSError:
            leaf.close()
    return leaves


def join_cgroups_of(pid: int) -> list[str]:
    """Move this process into the v1 cgroups of pid (lxcsd attach: init's); returns the
    hierarchies where that failed."""
    failed = []
    mountinfo = _read_mountinfo()
    for hierarchy in own_hierarchies(pid):
        try:
            fd = open_own(hierarchy, mountinfo)
        except (OSError, LxcsdError):
            failed.append(hierarchy.controllers)
            continue
        try:
            _write(fd, "cgroup.procs", str(os.getpid()))
        except OSError:
            failed.append(hierarchy.controllers)
        finally:
            os.close(fd)
    return failed
