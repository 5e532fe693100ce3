"""LXC's per-container lock, so that lxcsd and LXC's own tools exclude each other.

liblxc (src/lxc/lxclock.c, lxclock_name() and lxclock()) locks a container's on-disk data
with a write lock on the whole of the file

    RUNDIR/lxc/lock/LXCPATH/.NAME        RUNDIR is /run for root

created with O_CREAT|O_RDWR|O_NOFOLLOW|O_CLOEXEC|O_NOCTTY, mode 0600, its directory with
mode 0755. The lock is an open file description lock (F_OFD_SETLKW, l_type F_WRLCK,
l_whence SEEK_SET, start 0, length 0: the whole file); flock(LOCK_EX) where the kernel has
no OFD locks. LXC takes it to read or write a container's config (load_config,
save_config), to destroy it and to record clones (lxc-create, lxc-copy, lxc-destroy,
lxc-start, lxc-info, lxc-ls ... all go through it). LXCPATH is the lxcpath as given,
e.g. /var/lib/lxc: the lock of /var/lib/lxc/web1 is /run/lxc/lock/var/lib/lxc/.web1.

lxcsd takes the same lock around ``create``, ``copy`` (source and copy), ``destroy``,
``config set|unset|apply`` and ``start``, and waits for it as LXC does; Ctrl-C ends the wait.
A wait longer than QUIET_WAIT seconds is announced (another command holds the lock: an
lxc-create, a long destroy); a shorter one is not, so the loser of a race prints only why
it lost. ``LXCSD_LOCK_DIR`` replaces RUNDIR/lxc/lock (tests).

The stdlib has no call for OFD locks (fcntl.lockf takes process-associated F_SETLK locks),
so struct flock is packed here: it is one fcntl with a 32-byte struct.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

LOCK_DIR_ENV = "LXCSD_LOCK_DIR"
RUNDIR = "/run"
# struct flock on 64-bit Linux: short l_type, l_whence; off_t l_start, l_len; pid_t l_pid.
_FLOCK = struct.Struct("@hhqqi4x")
_OPEN_FLAGS = os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
QUIET_WAIT = 1.0  # seconds of waiting before saying so
_POLL = 0.02


def lock_dir() -> str:
    return os.environ.get(LOCK_DIR_ENV) or f"{RUNDIR}/lxc/lock"


def lock_path(lxcpath: str, name: str) -> str:
    """liblxc's lxclock_name(): the lock file of container NAME in LXCPATH."""
    return os.path.normpath(f"{lock_dir()}/{lxcpath}") + f"/.{name}"


def _default_notice(lock: ContainerLock) -> None:
    sys.stderr.write(f"lxcsd: waiting for {lock.name}: another command (lxcsd or lxc-*) "
                     f"holds its lock {lock.path}\n")
    sys.stderr.flush()


class ContainerLock:
    """The lock of one container; a context manager (``with ContainerLock(...):``)."""

    def __init__(self, lxcpath: str, name: str,
                 notice: Callable[[ContainerLock], None] = _default_notice) -> None:
        self.lxcpath = os.path.abspath(lxcpath)
        self.name = name
        self.path = lock_path(self.lxcpath, name)
        self.notice = notice
        self.fd = -1

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock; without ``wait`` False when another holder has it. Waiting is
        interrupted by a signal handler that raises (Ctrl-C: KeyboardInterrupt)."""
        if self.fd >= 0:
            return True
        os.makedirs(os.path.dirname(self.path), 0o755, exist_ok=True)
        fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        try:
            if not _lock(fd, blocking=False):
                if not wait:
                    os.close(fd)
                    return False
                if not _poll(fd, QUIET_WAIT):
                    self.notice(self)
                    _lock(fd, blocking=True)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        """Unlock by closing: an OFD lock belongs to the open file description."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ContainerLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _lock(fd: int, blocking: bool) -> bool:
    """A write lock on the whole file; False when not blocking and someone holds it."""
    request = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLKW if blocking else fcntl.F_OFD_SETLK, request)
        return True
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        if e.errno != errno.EINVAL:
            raise
    try:  # no OFD locks (Linux < 3.15): liblxc's fallback
        fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _poll(fd: int, seconds: float) -> bool:
    """Try for a while without blocking; whether the lock was taken."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(_POLL)
        if _lock(fd, blocking=False):
            return True
    return False


class Locks:
    """Several containers' locks, taken in a fixed order (lock path), so that two commands
    locking the same pair cannot wait for each other."""

    def __init__(self, targets: Iterable[tuple[str, str]]) -> None:
        paths = {lock_path(os.path.abspath(lxcpath), name): (lxcpath, name)
                 for lxcpath, name in targets}
        self.locks = [ContainerLock(*paths[p]) for p in sorted(paths)]

    def __enter__(self) -> Locks:
        try:
            for lock in self.locks:
                lock.acquire()
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
