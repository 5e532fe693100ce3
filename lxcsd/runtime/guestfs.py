"""The Container Interface's files and mounts, made by C2 in the container's mount namespace
before pivot_root (everything through fds resolved inside the root, as lxcsd.runtime.mounts).

- A fresh boot id for every start, reboots included: a file with a random UUID bound
  read-only over ``/proc/sys/kernel/random/boot_id`` (as LXC and systemd-nspawn do), so the
  guest's journal tells its boots apart (``journalctl -M NAME --list-boots``). Made in the
  container's /dev and unlinked once bound: nothing of it stays visible. For every
  container whose /proc is mounted by then (lxc.mount.auto proc or an entry).
- For a guest that gets a notify socket (``lxcsd.init.notify``, see lxcsd.runtime.guest):
  a tmpfs on ``/run`` (mode 0755, ``size=20%,nr_inodes=800k`` as systemd mounts /run and
  as nspawn pre-mounts it: systemd inside then leaves /run alone instead of hiding what we
  put there under a tmpfs of its own), mounted before lxc.mount.entry so entries under
  /run land in it; and, after the entries and hooks, a small read-only tmpfs on
  ``/run/host`` with ``container-manager`` (``$container``, "lxc": systemd-detect-virt
  reads this file first and must keep answering lxc), ``container-uuid``, ``os-release``
  (the host's) and the ``notify`` socket, bound by C2 into the socket the helper opened
  (mode 0700: only the container's root may send). Made last so that nothing the config
  mounts can hide it; read-only, as the interface asks.

Whether init is systemd (``auto``): its path resolves inside the root, through symlinks, to
a file named ``systemd`` (/sbin/init -> /lib/systemd/systemd on Debian, Fedora, Arch), the
way an admin would check it.
"""

from __future__ import annotations

import _socket
import os
import stat

from lxcsd import linux
from lxcsd.runtime import guest as _guest
from lxcsd.runtime import mounts, safepath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.runtime.plan import StartPlan

RUN_TMPFS = "mode=0755,size=20%,nr_inodes=800k"
RUN_HOST_TMPFS = "mode=0755,size=256k,nr_inodes=64"
BOOT_ID = "proc/sys/kernel/random/boot_id"
BOOT_ID_SOURCE = ".lxcsd-boot-id"
SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def wanted(plan: StartPlan, root_fd: int) -> bool:
    """Whether this guest gets /run, /run/host and the notify socket: lxcsd.init.notify = 1,
    or auto and init is systemd. Never without the helper's socket."""
    guest = plan.guest
    if guest is None or guest.notify_fd < 0:
        return False
    if guest.notify is not None:
        return guest.notify
    return init_is_systemd(root_fd, plan.argv[0])


def init_is_systemd(root_fd: int, program: str) -> bool:
    candidates = [program] if "/" in program else \
        [os.path.join(directory, program) for directory in SEARCH_PATH]
    for candidate in candidates:
        found = safepath.lookup(root_fd, candidate)
        if found is not None and stat.S_ISREG(found[1].st_mode):
            return os.path.basename(found[0]) == "systemd"
    return False


def prepare_run(plan: StartPlan, root_fd: int) -> bool:
    """For a guest that gets the Container Interface's /run/host (``wanted``): the /run
    tmpfs, now, before the config's mounts. Returns whether it does."""
    if not wanted(plan, root_fd):
        return False
    tree = mounts.new_fs("tmpfs", "tmpfs", RUN_TMPFS,
                         linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV)
    mounts.attach_at(root_fd, tree, "run", create="dir")
    return True


def make_run_host(plan: StartPlan, root_fd: int) -> None:
    """/run/host with the notify socket bound in it, read-only once filled."""
    guest = plan.guest
    assert guest is not None
    tree = mounts.new_fs("tmpfs", "tmpfs", RUN_HOST_TMPFS, mounts.SAFE_ATTRS)
    try:
        target = safepath.open_in_root(root_fd, "run/host", create="dir")
        try:
            mounts.attach(tree, target)
        finally:
            os.close(target)
        _write(tree, "container-manager", plan.env.get("container", "lxc") + "\n")
        _write(tree, "container-uuid", guest.uuid_text + "\n")
        if guest.os_release:
            _write(tree, "os-release", guest.os_release)
        _bind_socket(tree, "notify", guest.notify_fd)
        mounts.set_attrs(tree, linux.MOUNT_ATTR_RDONLY)
    finally:
        os.close(tree)


def _write(dir_fd: int, name: str, text: str) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644,
                 dir_fd=dir_fd)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _bind_socket(dir_fd: int, name: str, sock_fd: int) -> None:
    """bind(2) takes a path, not a directory fd: bind relative to dir_fd as the working
    directory, with umask 077 (mode 0700)."""
    cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = _socket.socket(fileno=sock_fd)
    old_umask = os.umask(0o077)
    try:
        os.fchdir(dir_fd)
        sock.bind(name)
    finally:
        os.umask(old_umask)
        sock.detach()  # the fd stays the helper's
        os.fchdir(cwd)
        os.close(cwd)


def bind_boot_id(root_fd: int, dev_fd: int) -> bool:
    """A fresh random boot id over /proc/sys/kernel/random/boot_id; False without /proc."""
    try:
        os.close(safepath.resolve(root_fd, BOOT_ID))
    except FileNotFoundError:
        return False
    try:
        os.unlink(BOOT_ID_SOURCE, dir_fd=dev_fd)  # a leftover in a rootfs's own /dev
    except FileNotFoundError:
        pass
    fd = os.open(BOOT_ID_SOURCE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                 os.O_CLOEXEC, 0o444, dir_fd=dev_fd)
    try:
        os.write(fd, (_guest.format_uuid(random_uuid()) + "\n").encode())
    finally:
        os.close(fd)
    try:
        tree = mounts.clone_tree(dev_fd, BOOT_ID_SOURCE)
        try:
            mounts.set_attrs(tree, mounts.RO_SAFE_ATTRS)
        except OSError:
            os.close(tree)
            raise
        mounts.attach_at(root_fd, tree, BOOT_ID)
    finally:
        os.unlink(BOOT_ID_SOURCE, dir_fd=dev_fd)
    return True


def random_uuid() -> bytes:
    """A random version 4 UUID, as the kernel makes boot ids."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return bytes(raw)
