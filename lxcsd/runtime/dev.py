"""lxc.autodev: a private /dev for the container, its devpts instance, console and ttys.

Runs in C2 before pivot_root, after the rootfs is mounted (``root_fd``). What it builds is
LXC's (conf.c mount_autodev, lxc_fill_autodev, lxc_setup_devpts_child, lxc_setup_console,
lxc_setup_ttys, lxc_setup_dev_symlinks) plus /dev/shm and /dev/mqueue as systemd-nspawn:

- /dev: tmpfs, mode 0755, size-limited (LXC's default 500000 bytes), nosuid.
- null zero full random urandom tty: mknod, or, where mknod is refused (a user namespace)
  or the node cannot be opened (a nodev superblock), an empty file with the host's node
  bind-mounted over it. The host's /dev must therefore be opened (``host_dev_fd``) while the
  host tree is still reachable, i.e. before pivot_root.
- /dev/pts: a new devpts instance ``newinstance,ptmxmode=0666,mode=0620,gid=5,max=N``;
  /dev/ptmx a bind of pts/ptmx (a symlink if the bind fails, as LXC).
- /dev/console and /dev/ttyN (or /dev/DIR/ttyN with lxc.tty.dir and a /dev/ttyN symlink):
  binds of pty slaves given as fds or paths; ``allocate_pty`` makes them from the
  container's own devpts, as LXC does.
- /dev/fd, stdin, stdout, stderr symlinks into /proc/self/fd.
- /dev/net/tun and /dev/fuse (``OPTIONAL_DEVICES``) when the container's device policy
  allows them (``plan.optional_devices``): what nspawn makes for tun, and what LXC users add
  with autodev hooks or bind entries; made like the nodes above (mknod, else a bind of the
  host's node, skipped when the host has none).

Files made here inside the container's user namespace belong to the container's root (the
mapped host id), because the tmpfs is created in that namespace.
"""

from __future__ import annotations

import errno
import os
import stat

from lxcsd import linux
from lxcsd.runtime import mounts, safepath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# LXC's lxc_devices[]: name, major, minor (all mode 0666).
DEVICES = (("full", 1, 7), ("null", 1, 3), ("random", 1, 8), ("tty", 5, 0),
           ("urandom", 1, 9), ("zero", 1, 5))
# Made when the device policy allows them (lxcsd.runtime.plan.optional_devices): name, major,
# minor. Mode 0666, as udev's default rules give them on a host.
OPTIONAL_DEVICES = (("net/tun", 10, 200), ("fuse", 10, 229))
SYMLINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))
DEFAULT_TMPFS_SIZE = 500000  # bytes; lxc.autodev.tmpfs.size's default
TTY_GID = 5


def mount_dev(root_fd: int, size: int | str = DEFAULT_TMPFS_SIZE) -> int:
    """Mount the /dev tmpfs (making /dev if missing) with an empty pts directory; returns an
    fd of the new /dev. size is tmpfs's size= as lxc.autodev.tmpfs.size gives it: bytes
    unless it has a k/m/g suffix (liblxc passes it so; its manual's "500 MB" for the
    default 500000 is wrong, the kernel reads 500000 bytes)."""
    data = f"mode=0755,size={size or DEFAULT_TMPFS_SIZE}"
    tree = mounts.new_fs("tmpfs", "tmpfs", data, linux.MOUNT_ATTR_NOSUID)
    mounts.attach_at(root_fd, tree, "dev", create="dir")
    dev_fd = safepath.resolve(root_fd, "dev", os.O_PATH | os.O_DIRECTORY)
    os.mkdir("pts", 0o755, dir_fd=dev_fd)
    return dev_fd


def fill_dev(dev_fd: int, host_dev_fd: int) -> str:
    """Create LXC's device nodes in dev_fd; returns "mknod" or "bind" (how they were made).

    host_dev_fd: the host's /dev (O_PATH), source of the binds."""
    method = "mknod"
    for name, major, minor in DEVICES:
        if method == "mknod":
            method = _make_node(dev_fd, name, major, minor)
        if method == "bind":
            _bind_host_node(dev_fd, host_dev_fd, name)
    return method


def fill_optional(dev_fd: int, host_dev_fd: int, names: Sequence[str]) -> list[str]:
    """OPTIONAL_DEVICES named in names (``net/tun``, ``fuse``), their directories made;
    returns those made. A node mknod refuses (a user namespace) is a bind of the host's,
    skipped when the host has none (no static node, module not loaded)."""
    made = []
    for name, major, minor in OPTIONAL_DEVICES:
        if name not in names:
            continue
        parent, _, leaf = name.rpartition("/")
        if parent:
            os.close(safepath.open_in_root(dev_fd, parent, create="dir",
                                           flags=os.O_PATH | os.O_DIRECTORY))
        if _make_node(dev_fd, name, major, minor) == "bind":
            try:
                os.close(safepath.resolve(host_dev_fd, name))
            except FileNotFoundError:
                _unlink_quietly(dev_fd, name)
                continue
            _bind_host_node(dev_fd, host_dev_fd, name)
        made.append(name)
    return made


def _unlink_quietly(dev_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dev_fd)
    except FileNotFoundError:
        pass


def _make_node(dev_fd: int, name: str, major: int, minor: int) -> str:
    mode = stat.S_IFCHR | 0o666
    try:
        os.mknod(name, mode, os.makedev(major, minor), dir_fd=dev_fd)
        os.chmod(name, 0o666, dir_fd=dev_fd)  # the umask must not narrow it
    except PermissionError:
        return "bind"
    if not _can_open(dev_fd, name):  # made on a nodev superblock: bind over it
        return "bind"
    return "mknod"


def _can_open(dev_fd: int, name: str) -> bool:
    try:
        os.close(os.open(name, os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK,
                         dir_fd=dev_fd))
    except OSError as exc:
        return exc.errno == errno.ENXIO  # /dev/tty without a controlling terminal: usable
    return True


def _bind_host_node(dev_fd: int, host_dev_fd: int, name: str) -> None:
    try:
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0,
                         dir_fd=dev_fd))
    except FileExistsError:
        pass  # the unusable node mknod left: bind over it
    tree = mounts.clone_tree(host_dev_fd, name)
    mounts.attach_at(dev_fd, tree, name)


def mount_devpts(dev_fd: int, max_ptys: int, gid: int | None = TTY_GID) -> int:
    """A new devpts instance on dev/pts and /dev/ptmx pointing into it; returns an fd of the
    devpts root (to allocate ptys from: ``allocate_pty``). max_ptys is lxc.pty.max plus
    lxc.tty.max, as LXC counts, plus one for a console allocated here; gid None leaves the
    tty group out (it must be mapped in a user namespace)."""
    data = f"newinstance,ptmxmode=0666,mode=0620,max={max_ptys}"
    data += f",gid={gid}" if gid is not None else ""
    attrs = linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NOEXEC
    mounts.attach_at(dev_fd, mounts.new_fs("devpts", "devpts", data, attrs), "pts")
    _ptmx(dev_fd)
    return safepath.resolve(dev_fd, "pts", os.O_PATH | os.O_DIRECTORY)


def _ptmx(dev_fd: int) -> None:
    try:
        os.unlink("ptmx", dir_fd=dev_fd)
    except FileNotFoundError:
        pass
    os.close(os.open("ptmx", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0,
                     dir_fd=dev_fd))
    try:
        src = safepath.resolve(dev_fd, "pts/ptmx")
        try:
            mounts.attach_at(dev_fd, mounts.clone_tree(src), "ptmx")
        finally:
            os.close(src)
    except OSError:
        os.unlink("ptmx", dir_fd=dev_fd)
        os.symlink("pts/ptmx", "ptmx", dir_fd=dev_fd)


def allocate_pty(devpts_fd: int) -> tuple[int, int, int]:
    """(master fd, slave fd, pts number) from the devpts instance devpts_fd, without a path
    lookup for the slave (TIOCGPTPEER)."""
    master = os.open("ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=devpts_fd)
    try:
        linux.ioctl_int(master, linux.TIOCSPTLCK, 0)  # unlockpt
        number = linux.ioctl_int(master, linux.TIOCGPTN)
        slave = linux.ioctl_arg(master, linux.TIOCGPTPEER,
                               os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        os.close(master)
        raise
    return master, slave, number


def bind_tty(dev_fd: int, name: str, pty: int | str) -> None:
    """Bind a pty slave (an open fd, or a host path) onto dev/name, made as an empty file;
    an existing file or mount there is covered."""
    if isinstance(pty, int):
        os.fchmod(pty, 0o620)  # as LXC: group tty may write (wall, write)
        tree = mounts.clone_tree(pty)
    else:
        tree = mounts.clone_tree(mounts.AT_FDCWD, pty)
    _bind_file(dev_fd, name, tree)


def _bind_file(dev_fd: int, name: str, tree: int) -> None:
    try:
        target = safepath.open_in_root(dev_fd, name, create="file", file_mode=0)
    except OSError:
        os.close(tree)
        raise
    os.close(target)
    mounts.attach_at(dev_fd, tree, name)


def bind_console(dev_fd: int, pty: int | str, tty_dir: str | None = None) -> None:
    """/dev/console (with lxc.tty.dir: DIR/console, bound again on /dev/console)."""
    if not tty_dir:
        bind_tty(dev_fd, "console", pty)
        return
    bind_tty(dev_fd, f"{tty_dir}/console", pty)
    src = safepath.resolve(dev_fd, f"{tty_dir}/console")
    try:
        tree = mounts.clone_tree(src)
    finally:
        os.close(src)
    _bind_file(dev_fd, "console", tree)


def bind_ttys(dev_fd: int, ptys: Sequence[int | str], tty_dir: str | None = None) -> list[str]:
    """/dev/tty1..N for lxc.tty.max; returns their names relative to /dev."""
    names = []
    for number, pty in enumerate(ptys, 1):
        name = f"{tty_dir}/tty{number}" if tty_dir else f"tty{number}"
        bind_tty(dev_fd, name, pty)
        if tty_dir:
            _replace_symlink(dev_fd, f"tty{number}", name)
        names.append(name)
    return names


def _replace_symlink(dev_fd: int, name: str, target: str) -> None:
    try:
        os.unlink(name, dir_fd=dev_fd)
    except FileNotFoundError:
        pass
    os.symlink(target, name, dir_fd=dev_fd)


def make_symlinks(dev_fd: int) -> None:
    """/dev/fd, stdin, stdout, stderr (kept when the image already has them)."""
    for name, target in SYMLINKS:
        try:
            os.symlink(target, name, dir_fd=dev_fd)
        except FileExistsError:
            pass


def mount_shm(dev_fd: int, size: str = "") -> None:
    """/dev/shm: tmpfs mode 1777 nosuid,nodev (systemd-nspawn)."""
    data = "mode=1777" + (f",size={size}" if size else "")
    attrs = linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV
    mounts.attach_at(dev_fd, mounts.new_fs("tmpfs", "shm", data, attrs), "shm", create="dir")


def mount_mqueue(dev_fd: int) -> None:
    """/dev/mqueue: the IPC namespace's POSIX message queues (needs the new ipc namespace)."""
    tree = mounts.new_fs("mqueue", "mqueue", "", mounts.SAFE_ATTRS)
    mounts.attach_at(dev_fd, tree, "mqueue", create="dir")
