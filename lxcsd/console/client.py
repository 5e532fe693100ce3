"""The client side of the console service: attach (behind `lxcsd console`), log and list.

Keys as lxc-console has them: the escape character (Ctrl-a unless -e says otherwise)
followed by q detaches, followed by itself sends it once, followed by anything else sends
that character (the escape is swallowed). The terminal is put in raw mode the way
lxc-console (and ssh) do it, and restored on every way out: detach, the container
stopping, the service going away, SIGTERM/SIGHUP, an exception.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import struct
import termios

from lxcsd.console import protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ESCAPE = 1  # Ctrl-a


def parse_escape(text: str) -> int:
    """lxc-console's -e: one character, or ^X for Ctrl-X; raises ValueError."""
    if len(text) == 1:
        return ord(text)
    if len(text) == 2 and text[0] == "^":
        upper = text[1].upper()
        if upper == "?":
            return 0x7F
        if "@" <= upper <= "_":
            return ord(upper) - 0x40
    raise ValueError(f"invalid escape {text!r}: a character, or ^X for Ctrl-X")


def escape_name(escape: int) -> str:
    return f"Ctrl+{chr(escape + 0x40).lower()}" if escape < 0x20 else repr(chr(escape))


class EscapeFilter:
    """What typed input goes to the container, and whether the user asked to detach."""

    __slots__ = ("escape", "armed")

    def __init__(self, escape: int = DEFAULT_ESCAPE) -> None:
        self.escape = escape
        self.armed = False  # the previous byte was the escape character

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for byte in data:
            if self.armed:
                self.armed = False
                if byte == ord("q"):
                    return bytes(out), True
                out.append(byte)
            elif byte == self.escape:
                self.armed = True
            else:
                out.append(byte)
        return bytes(out), False


def request(verb: str, fields: dict[str, object], *, path: str | None = None,
            timeout: float = 5.0) -> tuple[socket.socket, dict[str, str]]:
    """Connect, send one request; the connection and the fields of the "ok" reply.
    Raises OSError (unreachable) or ProtocolError (refused, with .code)."""
    sock = protocol.connect(path, timeout)
    try:
        sock.send(protocol.encode(verb, fields))
        reply = protocol.check_reply(sock.recv(protocol.MAX_MESSAGE))
    except BaseException:
        sock.close()
        raise
    return sock, reply


def read_log(name: str, *, read: bool = True, clear: bool = False,
             path: str | None = None) -> bytes:
    """The console ring buffer of `name` (read=False, clear=True only clears it)."""
    sock, reply = request("log", {"name": name, "read": int(read), "clear": int(clear)},
                          path=path)
    with sock:
        chunks = []
        while message := sock.recv(protocol.MAX_MESSAGE):
            chunks.append(message[1:])
    data = b"".join(chunks)
    if len(data) != int(reply.get("size", "0")):
        raise protocol.ProtocolError(f"log of {name} cut short: {len(data)} of "
                                     f"{reply.get('size')} bytes")
    return data


def list_consoles(path: str | None = None) -> list[tuple[str, str, list[int], int]]:
    """(name, unit, ttys, viewers) of each registered container."""
    sock, reply = request("list", {}, path=path)
    sock.close()
    rows = []
    for line in reply.get("container", "").split("\n") if reply.get("container") else []:
        name, unit, ttys, viewers = line.split("\t")
        rows.append((name, unit, [int(t) for t in ttys.split(",") if t], int(viewers)))
    return rows


def open_attach(name: str, tty: int = 0, *, path: str | None = None) -> socket.socket:
    """A connection attached to tty `tty` (0: the console) of `name`; raises OSError or
    ProtocolError as request() does."""
    sock, _ = request("attach", {"name": name, "tty": tty}, path=path)
    sock.settimeout(None)
    return sock


def attach(sock: socket.socket, *, escape: int = DEFAULT_ESCAPE, stdin_fd: int = 0,
           stdout_fd: int = 1) -> str:
    """Connect the terminal on stdin/stdout to an attached connection (closed on return)
    until the user detaches ("" is returned) or the session ends (its reason is returned)."""
    # The handlers go in before raw mode, so a SIGTERM/SIGHUP arriving once the terminal is
    # raw always finds them (and unwinds through raw_terminal, restoring the terminal).
    with sock, _signals() as wakeup, raw_terminal(stdin_fd):
        return Session(sock, stdin_fd, stdout_fd, EscapeFilter(escape), wakeup).run()


class Session:
    """Bytes both ways between a terminal and an attached connection."""

    def __init__(self, sock: socket.socket, stdin_fd: int, stdout_fd: int,
                 keys: EscapeFilter, wakeup: int) -> None:
        self.sock = sock
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.keys = keys
        self.wakeup = wakeup
        self.poll = select.poll()
        for fd in (sock.fileno(), stdin_fd, wakeup):
            self.poll.register(fd, select.POLLIN)

    def run(self) -> str:
        self.send_winsize()
        while True:
            for fd, _ in self.poll.poll():
                reason = self.step(fd)
                if reason is not None:
                    return reason

    def step(self, fd: int) -> str | None:
        if fd == self.sock.fileno():
            return self.from_service()
        if fd == self.stdin_fd:
            return self.from_terminal()
        os.read(self.wakeup, 64)  # SIGWINCH
        self.send_winsize()
        return None

    def from_service(self) -> str | None:
        message = self.sock.recv(protocol.MAX_MESSAGE)
        if not message:
            return "the console service closed the connection"
        if message[0] == protocol.FRAME_END:
            return message[1:].decode(errors="replace")
        if message[0] == protocol.FRAME_DATA:
            write_all(self.stdout_fd, message[1:])
        return None

    def from_terminal(self) -> str | None:
        data = os.read(self.stdin_fd, 4096)
        if not data:
            return ""  # end of input: as a detach
        out, detach = self.keys.feed(data)
        if out:
            self.sock.send(b"d" + out)
        return "" if detach else None

    def send_winsize(self) -> None:
        size = window_size(self.stdin_fd)
        if size is not None:
            self.sock.send(b"w%d %d" % size)


def window_size(fd: int) -> tuple[int, int] | None:
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None  # not a terminal
    rows, cols, _, _ = struct.unpack("HHHH", packed)
    return (rows, cols) if rows and cols else None


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class raw_terminal:  # noqa: N801 - used as a context manager, like contextlib's
    """Raw mode on `fd` while inside (nothing when `fd` is not a terminal)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: list[Any] | None = None

    def __enter__(self) -> raw_terminal:
        if not os.isatty(self.fd):
            return self
        self.saved = termios.tcgetattr(self.fd)
        # tcsetattr from a background process group would stop us with SIGTTOU.
        self.old_ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        termios.tcsetattr(self.fd, termios.TCSAFLUSH, raw_mode(self.saved))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSAFLUSH, self.saved)
            signal.signal(signal.SIGTTOU, self.old_ttou)
            self.saved = None


def raw_mode(saved: list[Any]) -> list[Any]:
    """lxc-console's (and ssh's) raw settings: no echo, no line editing, no signals from
    keys, no output processing; bytes pass one by one."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = saved
    iflag = (iflag | termios.IGNPAR) & ~(termios.ISTRIP | termios.INLCR | termios.IGNCR
                                         | termios.ICRNL | termios.IXON | termios.IXANY
                                         | termios.IXOFF | termios.IUCLC)
    lflag &= ~(termios.TOSTOP | termios.ISIG | termios.ICANON | termios.ECHO | termios.ECHOE
               | termios.ECHOK | termios.ECHONL | termios.IEXTEN)
    cc = list(cc)
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    return [iflag, oflag & ~termios.OPOST, cflag, lflag, ispeed, ospeed, cc]


class _Exit(SystemExit):
    pass


def _leave(signum: int, frame: object) -> None:
    # Unwinds through the context managers above, so the terminal is restored.
    raise _Exit(128 + signum)


def _ignore(signum: int, frame: object) -> None:
    pass  # a Python handler is what makes the wakeup pipe readable


class _signals:  # noqa: N801
    """SIGWINCH wakes the session (the returned pipe becomes readable); SIGTERM and SIGHUP
    leave it through an exception, restoring the terminal on the way."""

    def __enter__(self) -> int:
        self.read_end, self.write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.old_wakeup = signal.set_wakeup_fd(self.write_end)
        self.old = {signal.SIGWINCH: signal.signal(signal.SIGWINCH, _ignore),
                    signal.SIGTERM: signal.signal(signal.SIGTERM, _leave),
                    signal.SIGHUP: signal.signal(signal.SIGHUP, _leave)}
        return self.read_end

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self.old_wakeup)
        os.close(self.read_end)
        os.close(self.write_end)
