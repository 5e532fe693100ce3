"""Open paths inside a container's root without ever leaving it.

A container's root file system is controlled by the container: any component of a mount
target may be a symlink pointing at the host (``mnt -> /etc``, ``a/b -> ../../..``). So
targets are never resolved as host path strings. ``open_in_root`` resolves with
``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)``: the kernel treats the root fd as
``/`` for every symlink and ``..`` on the way, so the result is inside the root whatever the
tree looks like at that instant. Missing components are created one at a time relative to a
directory fd that was itself resolved in the root, then resolved again in the root (a race
that swaps a new directory for a symlink still cannot escape).

Mounts then go onto the returned fd (``move_mount`` with ``MOVE_MOUNT_T_EMPTY_PATH``, or
``/proc/self/fd/N`` for mount(2)), never onto a path that the kernel would resolve again.
"""

from __future__ import annotations

import errno
import os

from lxcsd import linux

RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
# The kernel's limit of symlinks followed in one lookup (include/linux/namei.h MAXSYMLINKS).
MAX_SYMLINKS = 40
# openat2(RESOLVE_IN_ROOT) fails with EAGAIN when a rename or mount raced a ".." step.
EAGAIN_RETRIES = 16


def proc_fd_path(fd: int) -> str:
    """The magic link naming fd, for calls that only take a path (mount(2) targets)."""
    return f"/proc/self/fd/{fd}"


def components(path: str) -> list[str]:
    """The non-empty components of a container path; absolute and relative mean the same."""
    return [part for part in path.split("/") if part and part != "."]


def resolve(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """An fd for path resolved inside root_fd (symlinks and '..' cannot leave the root)."""
    rel = "/".join(components(path)) or "."
    for _ in range(EAGAIN_RETRIES):
        try:
            return linux.openat2(root_fd, rel, flags | os.O_CLOEXEC, 0, RESOLVE)
        except BlockingIOError:
            continue  # a rename raced a '..' lookup: the kernel asks to try again
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, "/" + rel) from None
    raise OSError(errno.EAGAIN, "openat2: the tree kept changing", "/" + rel)


def open_in_root(root_fd: int, path: str, *, create: str | None = None, mode: int = 0o755,
                 file_mode: int = 0o644, flags: int = os.O_PATH) -> int:
    """Open path inside the root; create="dir" or "file" makes what is missing first.

    Missing parents are directories of ``mode``; a missing final component is a directory
    (``mode``) or an empty regular file (``file_mode``). A final component that is a dangling
    symlink is followed inside the root and its target created (``/etc/resolv.conf ->
    ../run/...``). Raises OSError naming the container path.
    """
    if create not in (None, "dir", "file"):
        raise ValueError(f"create must be 'dir' or 'file', not {create!r}")
    if create is None:
        return resolve(root_fd, path, flags)
    return _create_path(root_fd, components(path), create, mode, file_mode, flags, 0)


def _create_path(root_fd: int, parts: list[str], create: str, mode: int, file_mode: int,
                 flags: int, hops: int) -> int:
    try:
        return resolve(root_fd, "/".join(parts), flags)
    except FileNotFoundError:
        pass
    parent = _make_dirs(root_fd, parts[:-1], mode, hops)
    try:
        link = None if _make_last(parent, parts[-1], create, mode, file_mode) else \
            _dangling_target(parent, parts[-1])
    finally:
        os.close(parent)
    if link is not None:
        _count_hop(hops, parts)
        target = _join_link(parts[:-1], link)
        return _create_path(root_fd, target, create, mode, file_mode, flags, hops + 1)
    return resolve(root_fd, "/".join(parts), flags)


def _count_hop(hops: int, parts: list[str]) -> None:
    if hops >= MAX_SYMLINKS:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), "/" + "/".join(parts))


def _make_dirs(root_fd: int, parts: list[str], mode: int, hops: int) -> int:
    """An O_PATH fd of the directory parts, creating missing components one by one."""
    current = resolve(root_fd, ".")
    done: list[str] = []
    for part in parts:
        done.append(part)
        try:
            nxt = resolve(root_fd, "/".join(done))
        except FileNotFoundError:
            link = _mkdir_at(current, part, mode)
            if link is not None:  # a dangling symlink: make what it points to
                _count_hop(hops, done)
                os.close(_make_dirs(root_fd, _join_link(done[:-1], link), mode, hops + 1))
            nxt = resolve(root_fd, "/".join(done))
        os.close(current)
        current = nxt
    return current


def _mkdir_at(dir_fd: int, name: str, mode: int) -> str | None:
    """mkdir name in dir_fd; the link text when name is a (dangling) symlink."""
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
    except FileExistsError:
        return _dangling_target(dir_fd, name)  # or made meanwhile: None
    return None


def _make_last(parent: int, name: str, create: str, mode: int, file_mode: int) -> bool:
    """Create name in parent; False when something (a dangling symlink) is already there."""
    if name == "..":
        return True
    try:
        if create == "dir":
            os.mkdir(name, mode, dir_fd=parent)
        else:
            # O_EXCL never follows a symlink, so this cannot create a file outside the root.
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
                             | os.O_NOFOLLOW, file_mode, dir_fd=parent))
    except FileExistsError:
        return False
    return True


def _dangling_target(parent: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=parent)
    except OSError:
        return None


def _join_link(parent_parts: list[str], link: str) -> list[str]:
    """Where a symlink in parent_parts points, as container path components."""
    base = [] if link.startswith("/") else list(parent_parts)
    return base + components(link)


def same_file(fd: int, other_fd: int) -> bool:
    a, b = os.fstat(fd), os.fstat(other_fd)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def lookup(root_fd: int, path: str) -> tuple[str, os.stat_result] | None:
    """(host path, stat) of what path resolves to inside the root, None when it resolves to
    nothing (missing, a symlink loop, a component not a directory). The host path is the
    kernel's name of the resolved file (/proc/self/fd), so a symlink retargeted inside the
    root changes it. ~5 µs."""
    try:
        fd = resolve(root_fd, path)
    except OSError:
        return None
    try:
        return os.readlink(proc_fd_path(fd)), os.fstat(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def is_program(st: os.stat_result) -> bool:
    """A regular file with an execute bit: what execvp(3)'s PATH search takes."""
    return st.st_mode & 0o170000 == 0o100000 and bool(st.st_mode & 0o111)
