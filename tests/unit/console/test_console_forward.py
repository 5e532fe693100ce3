"""Console lines to the journal (lxcsd.console.forward), on a real datagram socket standing
in for journald's: credentials, fields, backpressure, a missing or refusing journal, partial
lines, the end of a container. The real journald: tests/sandbox/test_console.py."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.console.forward import Feed, Forwarder
from lxcsd.console.lines import FLUSH_DELAY
from lxcsd.console.ring import Ring

FIELDS = {"SYSLOG_IDENTIFIER": "c1/console", "OBJECT_SYSTEMD_UNIT": "lxc@c1.service"}


class Journal:
    """A bound datagram socket where journald's would be, with SO_PASSCRED."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setblocking(False)

    def take(self, limit: int = 1 << 30) -> list[tuple[dict[str, bytes], int]]:
        """Entries waiting (fields, sender pid), at most limit."""
        found = []
        while len(found) < limit:
            try:
                data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(12))
            except BlockingIOError:
                break
            pid = next(struct.unpack("3i", p[:12])[0] for lvl, kind, p in anc
                       if kind == socket.SCM_CREDENTIALS)
            fields = dict(line.split(b"=", 1) for line in data.split(b"\n") if b"=" in line)
            found.append(({k.decode(): v for k, v in fields.items()}, pid))
        return found

    def messages(self) -> list[bytes]:
        return [f["MESSAGE"] for f, _ in self.take()]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal")
    yield j
    j.sock.close()


@pytest.fixture
def forwarder(tmp_path: Path, journal: Journal) -> Forwarder:
    f = Forwarder(str(tmp_path / "journal"))
    assert f.connect()
    return f


def feed(pid: int = 0, capacity: int = 1 << 16) -> Feed:
    return Feed(Ring.create("t", capacity, capacity), FIELDS, pid)


def put(f: Forwarder, fd: Feed, data: bytes, now: float = 0.0) -> None:
    assert fd.ring.write(data) == len(data)
    f.add(fd, now)


def test_lines_go_as_the_init_named_with_their_fields(forwarder: Forwarder,
                                                      journal: Journal) -> None:
    parent = os.getppid()  # another live process (naming it needs CAP_SYS_ADMIN: root)
    put(forwarder, feed(parent if os.geteuid() == 0 else os.getpid()), b"hello\nworld\n")
    (first, pid), (second, _) = journal.take()
    assert pid == (parent if os.geteuid() == 0 else os.getpid())
    assert (first["MESSAGE"], second["MESSAGE"]) == (b"hello", b"world")
    assert first["PRIORITY"] == b"6" and first["OBJECT_SYSTEMD_UNIT"] == b"lxc@c1.service"


def test_an_init_that_is_gone_leaves_the_lines_ours(forwarder: Forwarder,
                                                    journal: Journal) -> None:
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)  # reaped: SCM_CREDENTIALS naming it fail with ESRCH
    put(forwarder, feed(child), b"last words\n")
    assert [(f["MESSAGE"], pid) for f, pid in journal.take()] == [(b"last words", os.getpid())]


def test_a_full_journal_holds_lines_back_and_loses_none(forwarder: Forwarder,
                                                        journal: Journal) -> None:
    fd = feed()
    room: list[int] = []
    fd.on_room = lambda: room.append(fd.ring.room())
    lines = [b"line %d" % i for i in range(3000)]
    put(forwarder, fd, b"\n".join(lines) + b"\n")
    assert forwarder.wants_pollout() and fd.ring.sent < fd.ring.written
    got: list[bytes] = []
    while forwarder.wants_pollout():
        got += journal.messages()
        forwarder.writable(0.0)
    got += journal.messages()
    assert got == lines and fd.ring.sent == fd.ring.written and room


def test_feeds_take_turns(forwarder: Forwarder, journal: Journal) -> None:
    feeds = [Feed(Ring.create("t", 1 << 16, 0), {"N": str(i)}) for i in range(3)]
    for i, fd in enumerate(feeds):
        put(forwarder, fd, b"".join(b"%d\n" % i for _ in range(500)))
    order: list[bytes] = []
    while forwarder.wants_pollout():
        order += [f["N"] for f, _ in journal.take(10)]
        forwarder.writable(0.0)
    order += [f["N"] for f, _ in journal.take()]
    assert len(order) == 1500 and set(order[:300]) == {b"0", b"1", b"2"}


def test_a_partial_line_goes_after_the_delay(forwarder: Forwarder, journal: Journal) -> None:
    fd = feed()
    put(forwarder, fd, b"done\nlogin: ", now=10.0)
    assert journal.messages() == [b"done"]
    assert forwarder.deadline() == 10.0 + FLUSH_DELAY
    forwarder.due(10.1)
    assert journal.messages() == []
    forwarder.due(10.0 + FLUSH_DELAY)
    assert journal.messages() == [b"login: "] and forwarder.deadline() is None


def test_the_end_sends_the_rest_then_says_so(forwarder: Forwarder, journal: Journal) -> None:
    fd = feed()
    done: list[bool] = []
    fd.on_done = lambda: done.append(True)
    put(forwarder, fd, b"a\nno newline")
    forwarder.retire(fd, 0.0)
    assert journal.messages() == [b"a", b"no newline"] and done == [True]


def test_a_refusing_journal_holds_lines_until_it_is_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal"
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    gone.bind(str(path))
    gone.close()  # the file stays: connect() is refused, as with journald stopped
    f = Forwarder(str(path))
    assert not f.connect()
    fd = feed()
    put(f, fd, b"kept\n", now=0.0)
    assert fd.ring.sent == 0 and f.deadline() == f.retry_at
    path.unlink()
    journal = Journal(path)
    f.due(f.retry_at)
    assert journal.messages() == [b"kept"]
    assert "cannot reach the journal" in capsys.readouterr().err
    journal.sock.close()


def test_without_a_journal_socket_nothing_is_held(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    f = Forwarder(str(tmp_path / "none"))
    assert not f.connect()
    fd = feed()
    for _ in range(3):
        put(f, fd, b"line\n")
    assert fd.ring.sent == fd.ring.written
    assert capsys.readouterr().err.count("no journal socket") == 1
