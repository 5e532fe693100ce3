"""`lxcsd console` driven from a real terminal (a pty whose slave is its controlling tty):
raw mode and its restoration, Ctrl-a q, Ctrl-a Ctrl-a, -e, SIGWINCH, --show-log, errors."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from console_harness import REPO, FakeManager, PtyContainer, _controlling_tty

from lxcsd.console import client

Make = Callable[..., PtyContainer]


def lxcpath(tmp: Path) -> Path:
    """Containers c1 and nope as far as `lxcsd console` looks (a config each): it says "no
    container X" for others before it asks the console service."""
    for name in ("c1", "nope"):
        (tmp / "lxc" / name).mkdir(parents=True, exist_ok=True)
        (tmp / "lxc" / name / "config").write_text(f"lxc.uts.name = {name}\n")
    return tmp / "lxc"


class Terminal:
    """`lxcsd console ARGS` (lxcsd.cli.main) on a pty of its own, as a user's terminal."""

    def __init__(self, manager: FakeManager, *args: str, rows: int = 24, cols: int = 80) -> None:
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        self.cooked = termios.tcgetattr(self.slave)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
               "LXCSD_CONSOLE_SOCKET": manager.socket_path,
               "LXCSD_LXCPATH": str(lxcpath(Path(manager.socket_path).parent))}
        self.proc = subprocess.Popen(["/usr/bin/python3", "-m", "lxcsd.cli.main", "console", *args],
                                     stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                     env=env, preexec_fn=_controlling_tty)
        self.output = bytearray()
        self.scanned = 0

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, needle: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (found := self.output.find(needle, self.scanned)) < 0:
            left = deadline - time.monotonic()
            assert left > 0, (needle, bytes(self.output[-600:]))
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # EIO: the client exited and closed the terminal
                    time.sleep(0.05)
        self.scanned = found + len(needle)

    def wait(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        while select.select([self.master], [], [], 0.1)[0]:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:
                break
        return code

    def restored(self) -> bool:
        return termios.tcgetattr(self.slave) == self.cooked

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def terminals() -> Iterator[Callable[..., Terminal]]:
    made: list[Terminal] = []

    def make(manager: FakeManager, *args: str, **kw: int) -> Terminal:
        made.append(Terminal(manager, *args, **kw))
        return made[-1]

    yield make
    for t in made:
        t.close()


@pytest.fixture
def c1(manager: FakeManager, containers: Make) -> PtyContainer:
    c = containers("c1")
    c.register(manager)
    c.close_masters()
    return c


def attached(term: Terminal, key: bytes = b"Ctrl+a") -> None:
    """Wait for raw mode: typing before it would be flushed (TCSAFLUSH), as with lxc-console."""
    term.expect(b"Type <%s q> to exit the console, <%s %s> to enter %s itself" % ((key,) * 4))
    deadline = time.monotonic() + 5
    while term.restored():  # raw mode is set once connected
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_attach_type_detach_restore(manager: FakeManager, c1: PtyContainer,
                                    terminals: Callable[..., Terminal]) -> None:
    term = terminals(manager, "c1")
    attached(term)
    raw = termios.tcgetattr(term.slave)
    assert raw[3] & (termios.ICANON | termios.ECHO | termios.ISIG) == 0
    term.type(b"echo $((6*7))\r")
    term.expect(b"42")
    term.type(b"\x01q")
    assert term.wait() == 0
    assert term.restored()


def test_ctrl_a_twice_sends_ctrl_a(manager: FakeManager, c1: PtyContainer,
                                   terminals: Callable[..., Terminal]) -> None:
    term = terminals(manager, "c1")
    attached(term)
    term.type(b'read -r x; echo "got:$(printf %s "$x" | od -An -tx1)"\r')
    term.type(b"\x01\x01\r")
    term.expect(b"got: 01")
    term.type(b"\x01q")
    assert term.wait() == 0 and term.restored()


def test_another_escape(manager: FakeManager, c1: PtyContainer,
                        terminals: Callable[..., Terminal]) -> None:
    term = terminals(manager, "c1", "-e", "^b")
    attached(term, b"Ctrl+b")
    term.type(b"\x01q\r")  # Ctrl-a is just typed now
    term.type(b"echo still $((2+2))\r")
    term.expect(b"still 4")
    term.type(b"\x02q")
    assert term.wait() == 0 and term.restored()


def test_window_size_and_sigwinch(manager: FakeManager, c1: PtyContainer,
                                  terminals: Callable[..., Terminal]) -> None:
    term = terminals(manager, "c1", rows=30, cols=100)
    attached(term)
    term.type(b"stty size\r")
    term.expect(b"30 100")
    term.resize(40, 120)  # the kernel sends SIGWINCH to the client
    time.sleep(0.3)
    term.type(b"stty size\r")
    term.expect(b"40 120")
    term.type(b"\x01q")
    assert term.wait() == 0


def test_container_stopping_ends_the_session(manager: FakeManager, c1: PtyContainer,
                                             terminals: Callable[..., Terminal]) -> None:
    term = terminals(manager, "c1")
    attached(term)
    term.type(b"exit\r")
    assert term.wait() == 0
    assert b"lxcsd console: container c1 stopped" in term.output
    assert term.restored()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_restores_the_terminal(manager: FakeManager, c1: PtyContainer,
                                        terminals: Callable[..., Terminal], sig: int) -> None:
    term = terminals(manager, "c1")
    attached(term)
    term.proc.send_signal(sig)
    assert term.wait() == 128 + sig
    assert term.restored()


def test_show_and_clear_log(manager: FakeManager, containers: Make,
                            terminals: Callable[..., Terminal]) -> None:
    containers("c1", script="echo in the ring; exec sleep 1000").register(manager)
    deadline = time.monotonic() + 5
    while b"in the ring" not in client.read_log("c1", path=manager.socket_path):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    term = terminals(manager, "c1", "--show-log", "--clear-log")
    assert term.wait() == 0
    assert b"in the ring" in term.output and b"Connected" not in term.output
    term = terminals(manager, "c1", "--show-log")
    assert term.wait() == 0
    assert b"in the ring" not in term.output


def test_not_running(manager: FakeManager, terminals: Callable[..., Terminal]) -> None:
    term = terminals(manager, "nope")
    assert term.wait() == 1
    assert b"lxcsd: container nope is not running" in term.output
    assert b"Connected" not in term.output
    assert term.restored()


def test_no_such_tty(manager: FakeManager, c1: PtyContainer,
                     terminals: Callable[..., Terminal]) -> None:
    term = terminals(manager, "c1", "-t", "2")
    assert term.wait() == 1
    assert b"container c1 has no tty 2; its ttys: none (lxc.tty.max = 0)" in term.output


def test_service_unreachable(tmp_path: Path, terminals: Callable[..., Terminal]) -> None:
    class Nowhere:
        socket_path = str(tmp_path / "missing.sock")

    term = terminals(Nowhere, "c1")
    assert term.wait() == 1
    assert b"the console service is not listening on" in term.output
    assert b"systemctl start lxcsd-console.socket" in term.output
    assert b"Connected" not in term.output
