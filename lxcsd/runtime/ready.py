"""Readiness reported by the guest (docs/design.md, "Readiness from the guest").

For a guest with a notify socket (``lxcsd.init.notify``: systemd as init by default) the
helper (H) stays the unit's main process after init's exec and reads the socket C2 bound at
``/run/host/notify``; when init sends ``READY=1`` (a systemd guest does once its boot
transaction is done: is-system-running leaves "starting") H hands over as for any container
(``MAINPID=``, ``READY=1``, ``BARRIER=1``) and exits. So ``systemctl start`` returns when the
guest is up, ``After=lxc@NAME.service`` waits for its services, and ``TimeoutStartSec=``
covers the guest's boot: systemd kills H, then the rest of the unit, when it runs out.

What crosses from the guest, and what does not (the container is an attacker):

- Only datagrams whose kernel-made credentials (SO_PASSCRED) name init count, as nspawn
  checks. A container root with CAP_SYS_ADMIN may claim init's pid, but only pids of its
  own namespace, so it can at most say what init could.
- Only ``READY=1`` (ends the wait) and ``STATUS=`` (printable text, at most STATUS_MAX
  characters, at most one line per STATUS_INTERVAL: a flood costs systemd nothing) reach
  systemd, sent by H under its own credentials. ``MAINPID=``, ``FDSTORE=``, ``BARRIER=``,
  ``WATCHDOG=`` and the rest are dropped, and file descriptors never arrive: the control
  buffer only has room for the credentials, so the kernel does not install any
  (MSG_CTRUNC). systemd's own notify socket is never reachable from the container.
- At most BATCH datagrams are read per wake-up, and the kernel's queue limit
  (net.unix.max_dgram_qlen) blocks a sender that floods: the wait costs CPU only when the
  guest spends its own.

If init exits before READY=1, H reaps it and ends as init ended (``exit_as``): a reboot
(SIGHUP) or poweroff (SIGINT) or exit 0 from inside first completes the start, so the unit
behaves as for a running container (restart, inactive); a crash fails the start with init's
status.

Hot path: _socket and select only (no socket/signal modules: they import enum).
"""

from __future__ import annotations

import _socket
import os
import select
import sys
import time

from lxcsd import linux
from lxcsd.systemd import sdnotify

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # typeshed has no _signal
    from collections.abc import Callable
    from typing import NoReturn
else:
    import _signal

MAX_DATAGRAM = 4096  # systemd's NOTIFY_BUFFER_MAX: longer messages are ignored, as there
STATUS_MAX = 200
STATUS_INTERVAL = 0.5  # seconds between STATUS= lines forwarded while the guest boots
BATCH = 32
_UCRED = 12  # struct ucred: pid, uid, gid
PR_SET_DUMPABLE = 4


def open_socket() -> int:
    """The datagram socket C2 binds in the container (close-on-exec, non-blocking, with
    SO_PASSCRED so each datagram carries its sender's pid)."""
    sock = _socket.socket(_socket.AF_UNIX,
                          _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC | _socket.SOCK_NONBLOCK)
    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_PASSCRED, 1)
    return sock.detach()


def is_bound(fd: int) -> bool:
    """Whether C2 bound the socket (it does only for guests that get one)."""
    sock = _socket.socket(fileno=fd)
    try:
        return bool(sock.getsockname())
    finally:
        sock.detach()


def parse(data: bytes) -> tuple[bool, str | None]:
    """(READY=1 seen, the last STATUS= text or None) of one datagram, read as systemd
    reads its own: newline-separated assignments, no NUL inside."""
    if len(data) > MAX_DATAGRAM or b"\0" in data[:-1]:
        return False, None
    ready, status = False, None
    for line in data.rstrip(b"\0").decode(errors="replace").split("\n"):
        if line == "READY=1":
            ready = True
        elif line.startswith("STATUS="):
            status = clean_status(line[7:])
    return ready, status


def clean_status(text: str) -> str:
    """Printable characters only (no terminal escapes into `systemctl status`), shortened."""
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text if len(text) <= STATUS_MAX else text[:STATUS_MAX - 3] + "..."


class Waiter:
    """Reads the guest's notifications until READY=1 or init's exit."""

    def __init__(self, sock_fd: int, pidfd: int, init_pid: int, prefix: str, *,
                 send: Callable[[str], object] = sdnotify.notify,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sock = _socket.socket(fileno=sock_fd)
        self.pidfd = pidfd
        self.init_pid = init_pid
        self.prefix = prefix  # "Booting, init PID N"
        self.send = send
        self.clock = clock
        self.status: str | None = None  # the guest's last STATUS= text
        self.pending: str | None = None  # received, not forwarded yet (rate limit)
        self.sent_at = -STATUS_INTERVAL
        self.ignored = 0  # datagrams from others than init, or malformed

    def wait(self) -> tuple[str, int]:
        """("ready", 0) or ("exited", init's wait status)."""
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self.pidfd, select.POLLIN)
        try:
            while True:
                for fd, _ in poller.poll(self.timeout_ms()):
                    if fd == self.pidfd:
                        return "exited", os.waitpid(self.init_pid, 0)[1]
                    if self.drain():
                        return "ready", 0
                self.forward()
        finally:
            self.sock.detach()

    def timeout_ms(self) -> int:
        if self.pending is None:
            return -1
        return max(0, int((self.sent_at + STATUS_INTERVAL - self.clock()) * 1000) + 1)

    def drain(self) -> bool:
        """Read up to BATCH datagrams; True once init said READY=1."""
        for _ in range(BATCH):
            try:
                data, ancdata, _, _ = self.sock.recvmsg(MAX_DATAGRAM + 1,
                                                         _socket.CMSG_SPACE(_UCRED))
            except (BlockingIOError, InterruptedError):
                return False
            _close_fds(ancdata)
            if sender_pid(ancdata) != self.init_pid:
                self.ignored += 1
                continue
            ready, status = parse(data)
            if status is not None:
                self.status = self.pending = status
            if ready:
                return True
        return False

    def forward(self) -> None:
        """The pending STATUS= line, once STATUS_INTERVAL has passed since the last one."""
        if self.pending is not None and self.clock() >= self.sent_at + STATUS_INTERVAL:
            self.send(f"STATUS={self.prefix}: {self.pending}")
            self.pending = None
            self.sent_at = self.clock()


def sender_pid(ancdata: list[tuple[int, int, bytes]]) -> int:
    for level, kind, payload in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_CREDENTIALS and \
                len(payload) >= _UCRED:
            return int.from_bytes(payload[:4], sys.byteorder, signed=True)
    return 0


def _close_fds(ancdata: list[tuple[int, int, bytes]]) -> None:
    """Descriptors that arrived anyway (the buffer has no room for them: never expected)."""
    for level, kind, payload in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            for i in range(0, len(payload) - len(payload) % 4, 4):
                try:
                    os.close(int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True))
                except OSError:
                    pass


# -- init ended before it was ready ------------------------------------------------------------


def describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def clean_end(status: int) -> bool:
    """A reboot (SIGHUP), poweroff or halt (SIGINT) or exit 0 from inside the container."""
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status) in (_signal.SIGHUP, _signal.SIGINT)
    return os.waitstatus_to_exitcode(status) == 0


def exit_as(status: int) -> NoReturn:
    """End this process as init ended, so systemd sees init's status for the unit:
    RestartForceExitStatus=SIGHUP, SuccessExitStatus=SIGINT and Restart= act on it. A death
    by signal is re-raised (not dumping core: this is not the process that crashed)."""
    sys.stderr.flush()
    if not os.WIFSIGNALED(status):
        os._exit(os.waitstatus_to_exitcode(status))
    sig = os.WTERMSIG(status)
    linux.prctl(PR_SET_DUMPABLE, 0)
    _signal.signal(sig, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [sig])
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)  # a signal whose default is to be ignored cannot have ended init
