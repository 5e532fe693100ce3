"""Who runs a container (lxcsd.liblxc.owner): claim and probe on real abstract sockets.

The LXC side is a stand-in that answers as liblxc's monitor does (lxc_cmd_process in
commands.c: GET_INIT_PID and GET_STATE in the pointer field, -ENOSYS for a number it does
not know); the sandbox test drives real lxc-start monitors. Names come from the test's
tmp_path, so they collide with nothing on the host.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.liblxc import owner, wire


class FakeMonitor:
    """Accepts connections and answers each request as an LXC or lxcsd monitor would."""

    def __init__(self, address: bytes, who: bytes | None, init_pid: int = 4242) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(8)
        self.who, self.init_pid = who, init_pid
        self.asked: list[int] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                cmd, _, _ = wire.unpack(conn.recv(wire.REQ.size))
                self.asked.append(cmd)
                if cmd == wire.GET_INIT_PID:
                    conn.sendall(wire.pack(0, 0, self.init_pid))
                elif cmd == wire.GET_STATE:
                    conn.sendall(wire.pack(0, 0, wire.RUNNING))
                elif cmd == wire.LXCSD_WHO and self.who is not None:
                    conn.sendall(wire.pack(0, len(self.who)) + self.who)
                else:
                    conn.sendall(wire.pack(-errno.ENOSYS))

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture
def lxcpath(tmp_path: Path) -> str:
    return str(tmp_path / "lxc")


@pytest.fixture
def lxc_monitor(lxcpath: str) -> Iterator[FakeMonitor]:
    monitor = FakeMonitor(wire.socket_name(lxcpath, "c1"), who=None)
    yield monitor
    monitor.close()


def test_nobody_listening(lxcpath: str) -> None:
    assert owner.probe(lxcpath, "c1") is None
    assert owner.running_under_lxc(lxcpath, "c1") is None


def test_an_lxc_monitor_is_told_apart(lxcpath: str, lxc_monitor: FakeMonitor) -> None:
    holder = owner.probe(lxcpath, "c1")
    assert holder is not None and holder.is_lxc
    assert (holder.init_pid, holder.state, holder.monitor_pid) == (4242, wire.RUNNING,
                                                                   os.getpid())
    assert wire.LXCSD_WHO in lxc_monitor.asked  # asked, and -ENOSYS is the LXC answer
    assert owner.running_under_lxc(lxcpath, "c1") is not None


def test_lxcsd_console_answers_who(lxcpath: str) -> None:
    monitor = FakeMonitor(wire.socket_name(lxcpath, "c2"), b"lxcsd lxc@c2.service\0", 77)
    try:
        holder = owner.probe(lxcpath, "c2")
        assert holder is not None and holder.owner == "lxcsd"
        assert (holder.unit, holder.init_pid) == ("lxc@c2.service", 77)
        assert owner.running_under_lxc(lxcpath, "c2") is None
    finally:
        monitor.close()


def test_claim_refuses_what_lxc_runs(lxcpath: str, lxc_monitor: FakeMonitor) -> None:
    with pytest.raises(owner.AlreadyRunning) as caught:
        owner.claim(lxcpath, "c1")
    comm = Path("/proc/self/comm").read_text().strip()
    assert str(caught.value) == (f"c1 is running under {comm} (PID {os.getpid()}); "
                                 "stop it with lxc-stop first")


def test_claim_binds_and_excludes(lxcpath: str) -> None:
    fd = owner.claim(lxcpath, "c3")
    try:
        sock = socket.socket(fileno=os.dup(fd))
        assert sock.getsockname() == wire.socket_name(lxcpath, "c3")
        sock.close()
        # Bound, nobody accepts yet (the helper before its hand-over): a second claim
        # waits as long as it is told, then refuses.
        with pytest.raises(owner.AlreadyRunning, match="does not answer"):
            owner.claim(lxcpath, "c3", wait=0.2)
    finally:
        os.close(fd)
    os.close(owner.claim(lxcpath, "c3"))  # free again once closed


def test_lxcpath_of() -> None:
    assert owner.lxcpath_of("/var/lib/lxc/web/config") == "/var/lib/lxc"
