"""The console daemon run as systemd runs it, without systemd.

FakeManager stands in for the service manager around one daemon process:

- socket activation, emulated: the test binds the listening socket; a small launcher moves
  it (and the stored descriptors) to fd 3 onwards, sets LISTEN_PID to its own pid and execs
  the daemon, which keeps that pid: what systemd does between fork and exec
  (sd_listen_fds(3)). LISTEN_FDS and LISTEN_FDNAMES name them.
- the notify socket: READY=1, STATUS=, BARRIER=1 (answered by closing its pipe), and the
  file-descriptor store: FDSTORE=1/FDNAME= keeps descriptors here, FDSTOREREMOVE=1 drops
  them, and start() after a stop hands them back after the socket, as systemd does.

JournalStandIn stands in for journald's native socket (LXCSD_JOURNAL_SOCKET): it records
each entry with the sender's credentials, and can stop reading, as a busy journald does.

The real thing (systemd 252 in the sandbox) is tested in tests/sandbox/test_console.py.
A "container" is busybox sh on a real pty, which is its controlling terminal.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lxcsd.console import handoff, protocol
from lxcsd.console.options import ConsoleOptions

REPO = Path(__file__).resolve().parents[3]
PYTHON = "/usr/bin/python3"
# As the installed launcher runs it (packaging/install.sh, write_launcher).
DAEMON = [PYTHON, "-I", "-S", "-c",
          f"import sys; sys.path.insert(0, {str(REPO)!r}); "
          "from lxcsd.console.daemon import main; sys.exit(main())"]
# Between "fork" and "exec": descriptors to 3.., LISTEN_PID = our pid, then exec.
ACTIVATE = r"""
import fcntl, os, sys
fds = [int(fd) for fd in os.environ.pop("ACTIVATE_FDS").split(",") if fd]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1000) for fd in fds]
for fd in fds:
    os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"""
STOP = b"STOP-FAKE-MANAGER"


def parse_entry(data: bytes) -> dict[str, str]:
    """A datagram of journald's native protocol: KEY=VALUE lines, or KEY, newline, 64-bit
    little-endian length, value, newline (systemd-journald.service(8))."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        line = data[pos:end]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            pos = end + 1
        else:
            key, size = line, int.from_bytes(data[end + 1:end + 9], "little")
            value = data[end + 9:end + 9 + size]
            pos = end + 9 + size + 1
        fields[key.decode()] = value.decode(errors="replace")
    return fields


class JournalStandIn:
    """A datagram socket where journald's would be: a thread records (fields, sender pid)
    of each entry; pause() stops reading, so senders meet a full queue."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.entries: list[tuple[dict[str, str], int]] = []
        self.reading = threading.Event()
        self.reading.set()
        self.closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        size = socket.CMSG_SPACE(struct.calcsize("3i"))
        while not self.closed:
            self.reading.wait()
            if not select.select([self.sock], [], [], 0.1)[0] or not self.reading.is_set():
                continue
            data, ancillary, _, _ = self.sock.recvmsg(1 << 17, size)
            pid = 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:12])[0]
            if data:
                self.entries.append((parse_entry(data), pid))

    def pause(self) -> None:
        self.reading.clear()

    def resume(self) -> None:
        self.reading.set()

    def messages(self, name: str | None = None) -> list[str]:
        """Console lines recorded (of container `name`), in order."""
        return [f["MESSAGE"] for f, _ in list(self.entries) if f.get("LXCSD_CONSOLE") == "1"
                and (name is None or f.get("CONTAINER_NAME") == name)]

    def close(self) -> None:
        self.closed = True
        self.reading.set()
        self.thread.join(5)
        self.sock.close()


class FakeManager:
    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.socket_path = str(tmp / "console.sock")
        self.notify_path = str(tmp / "notify.sock")
        self.env = env or {}
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        self.listener.listen(64)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.journal = JournalStandIn(str(tmp / "journal"))
        self.env.setdefault("LXCSD_JOURNAL_SOCKET", self.journal.path)
        self.store: dict[str, list[int]] = {}
        self.ready = 0
        self.status = ""
        self.cond = threading.Condition()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / "daemon.log"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    # -- the notify socket --------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            data, fds, _, _ = socket.recv_fds(self.notify, 4096, 64, socket.MSG_CMSG_CLOEXEC)
            if data == STOP:
                return
            self._handle(dict(line.split("=", 1) for line in data.decode().splitlines()
                              if "=" in line), fds)

    def _handle(self, fields: dict[str, str], fds: list[int]) -> None:
        with self.cond:
            name = fields.get("FDNAME", "stored")
            if fields.get("FDSTORE") == "1":
                self.store.setdefault(name, []).extend(fds)
                fds = []
            elif fields.get("FDSTOREREMOVE") == "1":
                for fd in self.store.pop(name, []):
                    os.close(fd)
            self.ready += fields.get("READY") == "1"
            self.status = fields.get("STATUS", self.status)
            self.cond.notify_all()
        for fd in fds:  # BARRIER=1's pipe: closing it is the answer
            os.close(fd)

    def wait_for(self, cond: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(cond, timeout)

    def stored_names(self) -> set[str]:
        with self.cond:
            return set(self.store)

    # -- the service ------------------------------------------------------------------------

    def start(self) -> FakeManager:
        named = [(self.listener.fileno(), "lxcsd-console.socket")]
        with self.cond:
            named += [(fd, name) for name, fds in self.store.items() for fd in fds]
        env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": self.notify_path,
               "LISTEN_FDS": str(len(named)),
               "LISTEN_FDNAMES": ":".join(name for _, name in named),
               "ACTIVATE_FDS": ",".join(str(fd) for fd, _ in named), **self.env}
        ready = self.ready
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([PYTHON, "-I", "-S", "-c", ACTIVATE, *DAEMON],
                                         env=env, pass_fds=[fd for fd, _ in named],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if not self.wait_for(lambda: self.ready > ready):
            raise AssertionError(f"the daemon did not send READY=1:\n{self.log()}")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(10)
        self.proc = None
        return code

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.notify.sendto(STOP, self.notify_path)
        self.thread.join(5)
        for fds in self.store.values():
            for fd in fds:
                os.close(fd)
        self.notify.close()
        self.listener.close()
        self.journal.close()


def _controlling_tty() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyContainer:
    """busybox sh on the slave of a pty, its controlling terminal, as init on a console;
    `ttys` more ptys whose slaves the test keeps (what getty would hold)."""

    def __init__(self, name: str, *, ttys: int = 0, script: str = "exec sh -i") -> None:
        self.name = name
        self.unit = f"lxc@{name}.service"
        self.master, slave = os.openpty()
        env = {"PS1": "# ", "TERM": "dumb", "PATH": "/usr/bin:/bin", "HOME": "/"}
        self.proc = subprocess.Popen(["/bin/busybox", "sh", "-c", script], stdin=slave,
                                     stdout=slave, stderr=slave, env=env,
                                     preexec_fn=_controlling_tty)
        os.close(slave)
        self.ttys = [os.openpty() for _ in range(ttys)]

    def register(self, manager: FakeManager, options: ConsoleOptions | None = None, *,
                 with_pid: bool = True, console: bool = True) -> bool:
        said: list[str] = []
        ok = handoff.register(self.name, self.unit, self.master if console else None,
                              [m for m, _ in self.ttys], options,
                              pid=self.proc.pid if with_pid else None,
                              socket_path=manager.socket_path, warn=said.append)
        assert ok, said
        return ok

    def close_masters(self) -> None:
        """What the helper does after the hand-over."""
        for fd in [self.master] + [m for m, _ in self.ttys]:
            os.close(fd)
        self.master = -1
        self.ttys = [(-1, s) for _, s in self.ttys]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.stop()
        for fd in [self.master] + [fd for pair in self.ttys for fd in pair]:
            if fd >= 0:
                os.close(fd)


class Viewer:
    """An attach session spoken in the protocol directly (the CLI has its own test)."""

    def __init__(self, manager: FakeManager, name: str, tty: int = 0) -> None:
        self.sock = protocol.connect(manager.socket_path)
        self.sock.send(protocol.encode("attach", {"name": name, "tty": tty}))
        protocol.check_reply(self.sock.recv(protocol.MAX_MESSAGE))
        self.received = bytearray()
        self.scanned = 0  # expect() has looked at received[:scanned]
        self.ended: str | None = None

    def type(self, data: bytes) -> None:
        self.sock.send(b"d" + data)

    def expect(self, needle: bytes, timeout: float = 5.0) -> None:
        """Wait for needle in output that came after the previous expect()'s needle."""
        deadline = time.monotonic() + timeout
        while (found := self.received.find(needle, self.scanned)) < 0 and self.ended is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                break
            self._receive()
        assert found >= 0, (needle, bytes(self.received[-400:]), self.ended)
        self.scanned = found + len(needle)

    def wait_end(self, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while self.ended is None and time.monotonic() < deadline:
            if select.select([self.sock], [], [], 0.1)[0]:
                self._receive()
        assert self.ended is not None, self.received[-400:]
        return self.ended

    def _receive(self) -> None:
        message = self.sock.recv(protocol.MAX_MESSAGE)
        if not message:
            self.ended = self.ended or "EOF"
        elif message[0] == protocol.FRAME_DATA:
            self.received += message[1:]
        elif message[0] == protocol.FRAME_END:
            self.ended = message[1:].decode()

    def close(self) -> None:
        self.sock.close()
