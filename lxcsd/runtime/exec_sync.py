"""Synchronisation between the helper (H) and the container's processes (C1, C2).

- ``Sync``: numbered sync points over a SOCK_SEQPACKET socketpair, so each point is one
  message (a 4-byte number, optionally with file descriptors: devpts, pty masters,
  idmapped trees). Both sides check the number, so a step out of order or a peer that died
  is an error naming the sync point, not a hang.
- ``Report``: an O_CLOEXEC pipe from C2 to H. C2 writes an error message and exits
  non-zero on failure; the kernel closes the pipe at execve, so EOF with no message means
  init was executed.
- fd hygiene before exec: close every fd except those handed to init.

On _socket, the C module under socket: socket.py imports enum (together ~9 ms of the
helper's start, measured with -X importtime), while a socketpair and SCM_RIGHTS need none
of it (send_fds/recv_fds are written out below as socket.py does).
"""

from __future__ import annotations

import _socket
import os
import struct

from lxcsd import linux
from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import NoReturn

_POINT = struct.Struct("=i")
_FD_SIZE = 4  # an int in SCM_RIGHTS
_MAX_FDS = 16
_REPORT_MAX = 4096


class Sync:
    """One end per process after fork: call ``parent_side()`` in the parent and
    ``child_side()`` in the child, which close the other end."""

    __slots__ = ("parent", "child", "sock")

    def __init__(self) -> None:
        self.parent, self.child = _socket.socketpair(
            _socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        self.sock = self.parent

    def parent_side(self) -> Sync:
        self.child.close()
        self.sock = self.parent
        return self

    def child_side(self) -> Sync:
        self.parent.close()
        self.sock = self.child
        return self

    def fileno(self) -> int:
        return self.sock.fileno()

    def wake(self, point: int, fds: Iterable[int] = ()) -> None:
        """Tell the peer that point is reached, passing fds along (they stay open here)."""
        data = [_POINT.pack(point)]
        fd_list = list(fds)
        try:
            if fd_list:
                rights = struct.pack(f"{len(fd_list)}i", *fd_list)
                self.sock.sendmsg(data, [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
            else:
                self.sock.send(data[0])
        except OSError as exc:
            raise LxcsdError(f"sync point {point}: cannot reach the peer: {exc.strerror}") \
                from None

    def wait(self, point: int, nfds: int = 0) -> list[int]:
        """Block until the peer reaches point; returns the fds it sent (nfds expected)."""
        try:
            msg, fds = _recv_fds(self.sock, _POINT.size, max(nfds, _MAX_FDS))
        except OSError as exc:
            raise LxcsdError(f"sync point {point}: {exc.strerror}") from None
        if not msg:
            _close_all(fds)
            raise LxcsdError(f"sync point {point}: the peer exited before reaching it")
        got = _POINT.unpack(msg)[0]
        if got != point or len(fds) != nfds:
            _close_all(fds)
            raise LxcsdError(f"sync point {point}: the peer sent point {got} with "
                             f"{len(fds)} fds (expected {nfds})")
        return fds

    def close(self) -> None:
        self.parent.close()
        self.child.close()


def _recv_fds(sock: _socket.socket, size: int, maxfds: int) -> tuple[bytes, list[int]]:
    # struct, not array: array imports collections.abc (~4 ms).
    msg, ancdata, _, _ = sock.recvmsg(size, _socket.CMSG_LEN(maxfds * _FD_SIZE))
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            count = len(data) // _FD_SIZE
            fds += struct.unpack(f"{count}i", data[:count * _FD_SIZE])
    return msg, fds


def _close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        os.close(fd)


class Report:
    """The exec report pipe: ``child_side()`` keeps the write end (O_CLOEXEC), the parent
    reads with ``result()``."""

    __slots__ = ("read_fd", "write_fd")

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)

    def parent_side(self) -> Report:
        _close_fd(self.write_fd)
        self.write_fd = -1
        return self

    def child_side(self) -> Report:
        _close_fd(self.read_fd)
        self.read_fd = -1
        return self

    def fail(self, message: str, status: int = 1) -> None:
        """In the child: report message and exit (never returns)."""
        try:
            os.write(self.write_fd, message.encode(errors="replace")[:_REPORT_MAX])
        finally:
            os._exit(status)

    def result(self) -> str | None:
        """In the parent: None when the child exec'd (EOF, no message), else its message."""
        chunks = []
        while True:
            chunk = os.read(self.read_fd, _REPORT_MAX)
            if not chunk:
                break
            chunks.append(chunk)
        _close_fd(self.read_fd)
        self.read_fd = -1
        return b"".join(chunks).decode(errors="replace") if chunks else None


def _close_fd(fd: int) -> None:
    if fd >= 0:
        os.close(fd)


def run_reporting(report: Report, step: Callable[[], object]) -> None:
    """Run step in the child; any exception becomes a report and exit status 1. Only the
    message is sent: the parent shows it to the user, as LXC's "Failed to ..." lines."""
    try:
        step()
    except BaseException as exc:  # the child must never return into the caller's stack
        report.fail(_describe(exc))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{text}: {exc.filename}"
    return text


def close_fds_except(keep: Iterable[int]) -> None:
    """Close every fd above 2 except keep (one close_range per gap)."""
    start = 3
    for fd in sorted(set(fd for fd in keep if fd >= 3)):
        if fd > start:
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, 2**31 - 1)


def exec_init(argv: Sequence[str], env: Mapping[str, str] | None = None) -> NoReturn:
    """execve init; a failure names the program (os.execv's error does not)."""
    args = list(argv)
    try:
        if env is None:
            os.execv(args[0], args)
        os.execve(args[0], args, env)
    except OSError as exc:
        raise OSError(exc.errno, f"exec {argv[0]}: {exc.strerror}") from None


def set_stdio(fd: int, *, controlling: bool = True) -> None:
    """Make fd (a tty slave, or /dev/null) the stdin/stdout/stderr of this process; with
    controlling, start a session and make it the controlling terminal (init's console)."""
    if controlling:
        os.setsid()
        linux.ioctl_arg(fd, linux.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        if fd != target:
            os.dup2(fd, target)
