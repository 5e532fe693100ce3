"""Who runs a container (lxcsd.liblxc.owner): claim and probe on real abstract sockets.

The LXC side is tests/infra/lxc_monitor.py's stand-in, answering as liblxc's monitor does;
the sandbox test drives real lxc-start monitors. Names come from the test's tmp_path, so
they collide with nothing on the host.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.liblxc import owner, wire
from tests.infra.lxc_monitor import FakeMonitor


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
