"""The console daemon with real ptys, real processes and emulated socket activation and fd
store (conftest.py): registration, ring buffer, log file, journal lines (to a stand-in
socket: JournalStandIn), viewers, hang-up, restart, SIGKILL."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import struct
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from console_harness import FakeManager, PtyContainer, Viewer

from lxcsd.console import client, handoff, protocol
from lxcsd.console.options import ConsoleOptions
from tests.infra import v1cgroups

Make = Callable[..., PtyContainer]


def wait(cond: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def log_of(manager: FakeManager, name: str) -> bytes:
    return client.read_log(name, path=manager.socket_path)


def names(manager: FakeManager) -> list[str]:
    return [row[0] for row in client.list_consoles(manager.socket_path)]


def test_output_reaches_ring_buffer_and_logfile(manager: FakeManager, containers: Make,
                                                tmp_path: Path) -> None:
    c = containers("c1", script="echo boot marker; exec sh -i")
    logfile = tmp_path / "c1.console"
    c.register(manager, ConsoleOptions(logfile=str(logfile)))
    c.close_masters()
    wait(lambda: b"boot marker" in log_of(manager, "c1"))
    wait(lambda: logfile.exists() and b"boot marker" in logfile.read_bytes())
    assert client.list_consoles(manager.socket_path) == [("c1", "lxc@c1.service", [0], 0)]
    assert manager.wait_for(lambda: set(manager.store) == {"lxcsd.1.meta", "lxcsd.1.pid",
                                                           "lxcsd.1.tty0", "lxcsd.1.ring"})
    containers("c2", ttys=2).register(manager)
    assert client.list_consoles(manager.socket_path) == [("c1", "lxc@c1.service", [0], 0),
                                                         ("c2", "lxc@c2.service", [0, 1, 2], 0)]


def test_log_clear(manager: FakeManager, containers: Make) -> None:
    c = containers("c1", script="echo first; exec sleep 1000")  # then quiet
    c.register(manager)
    wait(lambda: b"first" in log_of(manager, "c1"))
    assert client.read_log("c1", read=False, clear=True, path=manager.socket_path) == b""
    assert log_of(manager, "c1") == b""


def test_no_ring_buffer_is_a_clear_error(manager: FakeManager, containers: Make) -> None:
    containers("c1").register(manager, ConsoleOptions(buffer_size=0))
    with pytest.raises(protocol.ProtocolError, match="no console ring buffer"):
        log_of(manager, "c1")


def test_two_viewers_see_the_output_and_either_may_type(manager: FakeManager,
                                                        containers: Make) -> None:
    c = containers("c1")
    c.register(manager)
    c.close_masters()
    one, two = Viewer(manager, "c1"), Viewer(manager, "c1")
    one.type(b"echo $((6*7))\r")
    one.expect(b"42")
    two.expect(b"42")
    two.type(b"echo from-two-$((1+1))\r")
    one.expect(b"from-two-2")
    assert client.list_consoles(manager.socket_path)[0][3] == 2
    one.close()
    two.type(b"echo still $((3*3))\r")
    two.expect(b"still 9")


def test_window_size_reaches_the_container(manager: FakeManager, containers: Make) -> None:
    c = containers("c1")
    c.register(manager)
    viewer = Viewer(manager, "c1")
    viewer.sock.send(b"w33 111")
    viewer.type(b"stty size\r")
    viewer.expect(b"33 111")


def test_init_exit_ends_the_container(manager: FakeManager, containers: Make) -> None:
    c = containers("c1", script="echo up; exec sh -i")
    c.register(manager)
    c.close_masters()
    viewer = Viewer(manager, "c1")
    wait(lambda: manager.stored_names())
    viewer.type(b"echo last words; exit\r")
    assert viewer.wait_end() == "container c1 stopped"
    assert b"last words" in viewer.received
    wait(lambda: names(manager) == [])
    wait(lambda: manager.stored_names() == set())


def test_without_a_pid_the_console_hangup_ends_it(manager: FakeManager,
                                                  containers: Make) -> None:
    c = containers("c1")
    c.register(manager, with_pid=False)
    c.close_masters()
    assert names(manager) == ["c1"]
    c.stop()  # the only slave holder: the pty hangs up
    wait(lambda: names(manager) == [])
    wait(lambda: manager.stored_names() == set())


def test_a_tty(manager: FakeManager, containers: Make) -> None:
    c = containers("c1", ttys=2)
    c.register(manager)
    _, slave = c.ttys[1]
    os.write(slave, b"login prompt before anyone looked\n")
    viewer = Viewer(manager, "c1", tty=2)
    viewer.expect(b"login prompt before")  # kept in the pty until a viewer came
    viewer.type(b"typed on tty2\n")
    assert os.read(slave, 100) == b"typed on tty2\n"
    with pytest.raises(protocol.ProtocolError, match="has no tty 3; its ttys: 1, 2"):
        Viewer(manager, "c1", tty=3)


def test_a_container_without_console(manager: FakeManager, containers: Make) -> None:
    c = containers("c1", ttys=1)
    c.register(manager, console=False)
    with pytest.raises(protocol.ProtocolError, match="has no console"):
        Viewer(manager, "c1")


def test_unknown_container(manager: FakeManager) -> None:
    with pytest.raises(protocol.ProtocolError, match="no console registered") as info:
        Viewer(manager, "nope")
    assert info.value.code == "unknown"


def test_a_new_start_replaces_the_old_registration(manager: FakeManager,
                                                   containers: Make) -> None:
    old = containers("c1")
    old.register(manager)
    viewer = Viewer(manager, "c1")
    before = manager.stored_names()
    new = containers("c1", script="echo second boot; exec sh -i")
    new.register(manager)
    assert viewer.wait_end() == "container c1 started again"
    wait(lambda: b"second boot" in log_of(manager, "c1"))
    after = manager.stored_names()
    assert not before & after and len(after) == 4


def test_restart_keeps_consoles_and_ring_buffer(manager: FakeManager,
                                                containers: Make) -> None:
    c = containers("c1", ttys=1, script="echo before restart; exec sh -i")
    c.register(manager)
    c.close_masters()
    wait(lambda: b"before restart" in log_of(manager, "c1"))
    viewer = Viewer(manager, "c1")
    stored = manager.stored_names()
    manager.restart()
    assert viewer.wait_end() == "the console service is stopping"
    assert manager.stored_names() == stored  # the ring too: it is in the store throughout
    assert client.list_consoles(manager.socket_path) == [("c1", "lxc@c1.service", [0, 1], 0)]
    viewer = Viewer(manager, "c1")
    viewer.type(b"echo after $((40+2))\r")
    viewer.expect(b"after 42")
    ring = log_of(manager, "c1")
    assert b"before restart" in ring and b"after 42" in ring
    c.stop()
    assert viewer.wait_end() == "container c1 stopped"


def test_a_killed_daemon_loses_no_console(manager: FakeManager, containers: Make) -> None:
    c = containers("c1")
    c.register(manager)
    c.close_masters()
    manager.restart(signal.SIGKILL)
    viewer = Viewer(manager, "c1")
    viewer.type(b"echo alive\r")
    viewer.expect(b"alive")


def test_init_gone_while_the_daemon_was_down(manager: FakeManager, containers: Make) -> None:
    c = containers("c1")
    c.register(manager)
    c.close_masters()
    manager.stop()
    c.stop()
    manager.start()
    wait(lambda: names(manager) == [])
    wait(lambda: manager.stored_names() == set())


def test_a_slow_viewer_is_dropped_and_others_go_on(manager: FakeManager,
                                                   containers: Make) -> None:
    c = containers("c1")
    c.register(manager)
    slow = Viewer(manager, "c1")
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    fast = Viewer(manager, "c1")
    fast.type(b"busybox yes 0123456789abcdef | busybox head -c 4000000; echo done-$((5*5))\r")
    fast.expect(b"done-25", timeout=60)
    assert fast.ended is None
    assert fast.received.count(b"0123456789abcdef\r\n") == 4000000 // 17  # nothing lost
    wait(lambda: client.list_consoles(manager.socket_path)[0][3] == 1)
    assert "dropping a viewer that took no output" in manager.log()


def test_bad_registrations_are_refused_and_the_daemon_goes_on(
        manager: FakeManager, tmp_path: Path) -> None:
    regular = os.open(tmp_path / "file", os.O_RDWR | os.O_CREAT)
    sock = protocol.connect(manager.socket_path)
    socket.send_fds(sock, [protocol.encode("register", {"name": "x", "unit": "lxc@x.service",
                                                        "fds": "0"})], [regular])
    with pytest.raises(protocol.ProtocolError, match="not a pty master"):
        protocol.check_reply(sock.recv(protocol.MAX_MESSAGE))
    for message in (b"register\nname=x\nunit=u\nfds=0,1\n", b"\xff", b"frobnicate\n",
                    b"attach\nname=x\ntty=-1\n"):
        sock = protocol.connect(manager.socket_path)
        sock.send(message)
        with pytest.raises(protocol.ProtocolError):
            protocol.check_reply(sock.recv(protocol.MAX_MESSAGE))
    os.close(regular)
    assert names(manager) == [] and manager.stored_names() == set()


def test_only_root() -> None:
    # A directory nobody-but-root may traverse would stop the client before the daemon could.
    tmp = Path(tempfile.mkdtemp(prefix="lxcsd-console-test-"))
    tmp.chmod(0o711)
    manager = FakeManager(tmp)
    try:
        manager.start()
        os.chmod(manager.socket_path, 0o666)  # the unit says 0600; the daemon checks anyway
        assert as_nobody(lambda: client.list_consoles(manager.socket_path)) == \
            "only root may use the console service"
    finally:
        manager.close()
        shutil.rmtree(tmp)


def as_nobody(action: Callable[[], object]) -> str:
    """What action() raised (or "done") in a child running as uid 65534."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setuid(65534)
        try:
            action()
            os.write(write_end, b"done")
        except Exception as e:
            os.write(write_end, str(e).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as f:
        return f.read().decode()


def test_console_lines_in_the_journal_as_the_containers_init(manager: FakeManager,
                                                             containers: Make) -> None:
    c = containers("c1", script="echo one; printf 'two\\r\\n'; printf 'prompt: '; "
                               "exec sleep 1000")
    c.register(manager)
    wait(lambda: manager.journal.messages("c1") == ["one", "two", "prompt: "])
    fields, pid = next(e for e in manager.journal.entries if e[0].get("MESSAGE") == "one")
    assert pid == c.proc.pid  # SCM_CREDENTIALS: journald files it under init's unit
    assert {k: fields[k] for k in ("PRIORITY", "SYSLOG_IDENTIFIER", "CONTAINER_NAME",
                                   "OBJECT_SYSTEMD_UNIT")} == {
        "PRIORITY": "6", "SYSLOG_IDENTIFIER": "c1/console", "CONTAINER_NAME": "c1",
        "OBJECT_SYSTEMD_UNIT": "lxc@c1.service"}


def test_last_words_reach_the_journal(manager: FakeManager, containers: Make) -> None:
    c = containers("c1", script="i=0; while [ $i -lt 2000 ]; do echo bye $i; i=$((i+1)); "
                                "done; printf 'no newline at the end'")
    c.register(manager)
    c.close_masters()
    c.proc.wait(30)
    wait(lambda: names(manager) == [] and manager.stored_names() == set(), timeout=20)
    assert manager.journal.messages("c1") == [f"bye {i}" for i in range(2000)] + [
        "no newline at the end"]


FLOOD = "i=0; while [ $i -lt {n} ]; do echo line $i; i=$((i+1)); done; echo finished-$((2*3))"


def test_a_journal_that_does_not_read_holds_the_console_back(manager: FakeManager,
                                                             containers: Make) -> None:
    """Backpressure: the container waits for the journal; nothing is lost, and the daemon
    still answers meanwhile."""
    manager.journal.pause()
    c = containers("c1", script=FLOOD.format(n=20000) + "; exec sleep 1000")
    c.register(manager)
    viewer = Viewer(manager, "c1")
    time.sleep(2)
    assert b"finished-6" not in viewer.received and b"finished-6" not in log_of(manager, "c1")
    assert names(manager) == ["c1"]  # the loop is not stuck
    manager.journal.resume()
    viewer.expect(b"finished-6", timeout=60)
    wait(lambda: "finished-6" in manager.journal.messages("c1"), timeout=30)
    assert manager.journal.messages("c1") == [f"line {i}" for i in range(20000)] + [
        "finished-6"]


def test_containers_take_turns_when_the_journal_resumes(manager: FakeManager,
                                                        containers: Make) -> None:
    manager.journal.pause()
    flood = [containers(f"c{i}", script=FLOOD.format(n=5000) + "; exec sleep 1000")
             for i in range(3)]
    for c in flood:
        c.register(manager)
    time.sleep(1)
    manager.journal.resume()
    wait(lambda: all("finished-6" in manager.journal.messages(c.name) for c in flood), 60)
    for c in flood:
        assert manager.journal.messages(c.name) == [f"line {i}" for i in range(5000)] + [
            "finished-6"]
    # Interleaved, not one container after the other.
    order = [f["CONTAINER_NAME"] for f, _ in manager.journal.entries if "CONTAINER_NAME" in f]
    assert len(set(order[:len(order) // 3])) == 3


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_daemon_killed_mid_flood_loses_no_line(manager: FakeManager, containers: Make,
                                                 sig: int) -> None:
    c = containers("c1", script=FLOOD.format(n=30000) + "; exec sleep 1000")
    c.register(manager)
    c.close_masters()
    wait(lambda: len(manager.journal.messages("c1")) > 3000, timeout=30)
    manager.restart(sig)
    wait(lambda: "finished-6" in manager.journal.messages("c1"), timeout=60)
    lines = manager.journal.messages("c1")
    numbers = [int(m.split()[1]) for m in lines if m.startswith("line ")]
    assert sorted(set(numbers)) == list(range(30000))  # none lost
    assert numbers == sorted(numbers)  # in order
    assert len(numbers) - 30000 <= 1  # a SIGKILL may repeat the line it was sending


def test_twenty_sigkills_mid_flood_lose_no_line(manager: FakeManager,
                                               containers: Make) -> None:
    """A SIGKILL lands when a system call returns: also as the read of a console returns,
    with the bytes read in the ring but not yet counted (ring.py: ``reading``)."""
    c = containers("c1", script=FLOOD.format(n=200000) + "; exec sleep 1000")
    c.register(manager)
    c.close_masters()
    kills = 0
    while kills < 20 and "finished-6" not in manager.journal.messages("c1"):
        time.sleep(0.2)
        manager.restart(signal.SIGKILL)
        kills += 1
    wait(lambda: "finished-6" in manager.journal.messages("c1"), timeout=120)
    numbers = [int(m.split()[1]) for m in manager.journal.messages("c1")
               if m.startswith("line ")]
    assert kills >= 10  # the flood outlasted the kills
    assert sorted(set(numbers)) == list(range(200000))
    assert len(numbers) - 200000 <= kills  # at most the line being sent, per kill


def test_without_a_journal_the_console_is_not_held(tmp_path: Path, containers: Make) -> None:
    """No journal socket at all (no journald): nothing to wait for; the ring and the log
    file still get everything."""
    manager = FakeManager(tmp_path, env={"LXCSD_JOURNAL_SOCKET": str(tmp_path / "none")})
    try:
        manager.start()
        c = containers("c1", script=FLOOD.format(n=20000) + "; exec sleep 1000")
        c.register(manager)
        viewer = Viewer(manager, "c1")
        viewer.expect(b"finished-6", timeout=60)
        assert "no journal socket" in manager.log()
    finally:
        manager.close()


def test_winsize_frame_format(manager: FakeManager, containers: Make) -> None:
    c = containers("c1", ttys=1)
    c.register(manager)
    viewer = Viewer(manager, "c1", tty=1)
    viewer.sock.send(b"w50 132")
    _, slave = c.ttys[0]
    wait(lambda: struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))[:2]
         == (50, 132))


def test_a_log_file_that_cannot_be_opened_costs_only_the_file(
        manager: FakeManager, containers: Make, tmp_path: Path) -> None:
    c = containers("c1", script="echo still logged in the ring; exec sleep 1000")
    c.register(manager, ConsoleOptions(logfile=str(tmp_path / "missing" / "c1.log")))
    wait(lambda: b"still logged in the ring" in log_of(manager, "c1"))

    def warnings() -> list[dict[str, str]]:  # the journal stand-in receives on its own thread
        return [f for f, _ in manager.journal.entries if f.get("PRIORITY") == "4"]

    wait(warnings)
    warning = warnings()[0]
    assert "cannot open console log file" in warning["MESSAGE"]
    assert "No such file or directory" in warning["MESSAGE"]
    assert warning["OBJECT_SYSTEMD_UNIT"] == "lxc@c1.service"


def test_restart_with_odd_descriptors_in_the_store(manager: FakeManager,
                                                   containers: Make) -> None:
    c = containers("c1")
    c.register(manager)
    manager.stop()
    stray_master, stray_slave = os.openpty()
    read_end, write_end = os.pipe()
    with manager.cond:
        manager.store["lxcsd.9.tty0"] = [stray_master]  # a registration without its meta
        manager.store["something-else"] = [read_end]  # not ours, and not a socket
    manager.start()
    assert names(manager) == ["c1"]
    assert manager.wait_for(lambda: "lxcsd.9.tty0" not in manager.store)
    assert "dropping stored registration 9: no meta descriptor" in manager.log()
    assert "closing unexpected descriptor" in manager.log()
    containers("c2").register(manager)  # numbered after what the store held
    assert manager.wait_for(lambda: "lxcsd.10.meta" in manager.store)
    for fd in (stray_slave, write_end):
        os.close(fd)


@pytest.mark.skipif(not v1cgroups.own_dirs(), reason="no cgroup v1 hierarchy on this host")
def test_init_exit_removes_its_cgroup_v1_leaves(manager: FakeManager,
                                                containers: Make) -> None:
    """A hybrid host's cgroup v1 leaves of a container whose unit has no ExecStopPost=:
    handed over with the console, removed by a worker of the daemon once init has exited
    (what the container made below them too), also after a restart of the daemon; not
    while init runs."""
    scratch = v1cgroups.make(f"lxcsd-console-test-{os.getpid()}")
    try:
        c = containers("c1")
        leaves = [parent / "lxc.payload.c1" for parent in scratch]
        for leaf in leaves:
            for path in (leaf, leaf / "inner"):
                path.mkdir()
                if (path.parent / "cpuset.cpus").exists():
                    for name in v1cgroups.CPUSET_FILES:
                        (path / name).write_text((path.parent / name).read_text().strip()
                                                 or "\n")
        v1cgroups.enter(leaves, c.proc.pid)
        with open(f"/proc/{c.proc.pid}/cgroup", encoding="utf-8") as f:
            rows = [line.rstrip("\n").split(":", 2) for line in f]
        entries = [f"{controllers}:{path.removesuffix('/lxc.payload.c1') or '/'}"
                   for number, controllers, path in rows if number != "0" and controllers]
        said: list[str] = []
        assert handoff.register("c1", c.unit, c.master, [], pid=c.proc.pid,
                                socket_path=manager.socket_path, warn=said.append,
                                cgroup_v1=("lxc.payload.c1", entries)), said
        c.close_masters()
        manager.restart()
        time.sleep(0.3)
        assert all(leaf.is_dir() for leaf in leaves)
        c.stop()
        wait(lambda: v1cgroups.children(scratch) == [])
    finally:
        assert v1cgroups.remove(scratch) == []
