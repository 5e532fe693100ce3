"""liblxc's command socket answered by the console daemon, with Debian's real lxc-* 5.0.2
tools as clients (FakeManager: socket activation and fd store emulated, no systemd).

The "container" is busybox sh on a pty in the host's namespaces; its command socket is
claimed as lxcsd-helper start claims it, in a private lxcpath under tmp_path. The tools
here only read, refuse or talk to ttys; the sandbox test (tests/sandbox/test_lxc_tools.py)
runs the rest (attach, stop) against real containers under systemd.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from console_harness import FakeManager, PtyContainer, Viewer

from lxcsd.console import handoff
from lxcsd.liblxc import owner, wire

pytestmark = pytest.mark.skipif(shutil.which("lxc-info") is None, reason="needs Debian's lxc")

Make = Callable[..., PtyContainer]


def wait(cond: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def lxcpath(tmp_path: Path) -> str:
    path = tmp_path / "lxc"
    for name in ("c1", "c2"):
        (path / name).mkdir(parents=True)
        (path / name / "config").write_text(
            f"lxc.uts.name = {name}\nlxc.rootfs.path = dir:{path}/{name}/rootfs\n"
            "lxc.group = web\nlxc.start.auto = 1\n")
    return str(path)


def publish(manager: FakeManager, c: PtyContainer, lxcpath: str, cgroup: str = "") -> None:
    """What lxcsd-helper start does: claim the socket, hand it over with the console."""
    fd = owner.claim(lxcpath, c.name)
    try:
        said: list[str] = []
        assert handoff.register(c.name, c.unit, c.master, [m for m, _ in c.ttys],
                                pid=c.proc.pid, socket_path=manager.socket_path,
                                lxc=handoff.LxcPublish(fd, lxcpath, cgroup, cgroup),
                                warn=said.append), said
    finally:
        os.close(fd)
    c.close_masters()


def lxc(lxcpath: str, tool: str, *args: str, check: bool = False,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([tool, "-P", lxcpath, *args], capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def test_lxc_info_and_ls_see_it_running(manager: FakeManager, containers: Make,
                                        lxcpath: str) -> None:
    c = containers("c1")
    publish(manager, c, lxcpath)
    out = lxc(lxcpath, "lxc-info", "-n", "c1", check=True).stdout
    assert "State:          RUNNING" in out and f"PID:            {c.proc.pid}" in out
    assert lxc(lxcpath, "lxc-info", "-n", "c1", "-s", "-H").stdout.strip() == "RUNNING"
    table = lxc(lxcpath, "lxc-ls", "-f", check=True).stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["c1"][1:4] == ["RUNNING", "1", "web"]  # lxc.start.auto, lxc.group: items
    assert rows["c2"][1] == "STOPPED"
    assert lxc(lxcpath, "lxc-ls", "--running").stdout.split() == ["c1"]


def test_lxc_start_and_destroy_refuse(manager: FakeManager, containers: Make,
                                      lxcpath: str) -> None:
    c = containers("c1")
    publish(manager, c, lxcpath)
    started = lxc(lxcpath, "lxc-start", "-n", "c1")
    assert "Container is already running" in started.stderr
    destroyed = lxc(lxcpath, "lxc-destroy", "-n", "c1")
    assert destroyed.returncode != 0 and "c1 is running" in destroyed.stderr
    assert (Path(lxcpath) / "c1/config").exists()
    log = Path(lxcpath) / "copy.log"
    copied = lxc(lxcpath, "lxc-copy", "-n", "c1", "-N", "c3", "-l", "ERROR", "-o", str(log))
    assert copied.returncode != 0 and "Original container (c1) is running" in log.read_text()
    assert not (Path(lxcpath) / "c3").exists()
    assert c.proc.poll() is None  # nothing touched the container


def test_lxc_wait_and_state_changes(manager: FakeManager, containers: Make,
                                    lxcpath: str) -> None:
    c = containers("c1")
    publish(manager, c, lxcpath)
    assert lxc(lxcpath, "lxc-wait", "-n", "c1", "-s", "RUNNING", "-t", "5").returncode == 0
    stopping = subprocess.Popen(["lxc-wait", "-P", lxcpath, "-n", "c1", "-s", "STOPPING",
                                 "-t", "30"])
    stopped = subprocess.Popen(["lxc-wait", "-P", lxcpath, "-n", "c1", "-s", "STOPPED",
                                "-t", "30"])
    time.sleep(0.5)
    # A restart of the service keeps both waiting (their connections wait in the fd store:
    # a closed one would read as STOPPED).
    manager.restart()
    time.sleep(0.5)
    assert stopping.poll() is None and stopped.poll() is None
    assert handoff.tell_stopping("c1", socket_path=manager.socket_path)  # lxcsd-helper stop
    assert stopping.wait(10) == 0
    assert lxc(lxcpath, "lxc-info", "-n", "c1", "-s", "-H").stdout.strip() == "STOPPING"
    assert stopped.poll() is None
    c.stop()  # init exits
    assert stopped.wait(10) == 0
    wait(lambda: owner.probe(lxcpath, "c1") is None)  # the socket goes with the container
    assert lxc(lxcpath, "lxc-info", "-n", "c1", "-s", "-H").stdout.strip() == "STOPPED"


def test_socket_survives_a_restart_and_sigkill(manager: FakeManager, containers: Make,
                                               lxcpath: str) -> None:
    c = containers("c1")
    publish(manager, c, lxcpath)
    assert wire.socket_name(lxcpath, "c1")[1:] in Path("/proc/net/unix").read_bytes()
    manager.restart(sig=9)
    # The socket never stops listening; the new daemon answers once it has revived the
    # container (a probe's 1 s can run out first on a loaded machine: asked again).
    deadline = time.monotonic() + 10
    while (holder := owner.probe(lxcpath, "c1")) is not None and holder.owner == "unknown":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert holder is not None and holder.owner == "lxcsd" and holder.init_pid == c.proc.pid
    assert "lxcsd.1.cmd" in manager.stored_names()


def test_lxc_console_gets_a_tty_and_the_console(manager: FakeManager, containers: Make,
                                                lxcpath: str) -> None:
    c = containers("c1", ttys=1, script="echo boot; exec sh -i")
    tty_master, tty_slave = c.ttys[0]
    publish(manager, c, lxcpath)
    reply = ask(lxcpath, "c1", wire.GET_TTY_FD, -1)  # "the next free tty", as lxc-console
    assert reply[:2] == (0, 1) and len(reply[3]) == 1  # tty 1, with its master
    os.write(tty_slave, b"hello from tty1\n")
    assert b"hello from tty1" in os.read(reply[3][0], 100)
    assert ask(lxcpath, "c1", wire.GET_TTY_FD, 1)[0] == -errno.EBADF  # busy while held
    reply[2].close()  # lxc-console leaves
    os.close(reply[3][0])
    wait(lambda: ask(lxcpath, "c1", wire.GET_TTY_FD, 1)[0] == 0)
    # tty 0: a proxy pty; the daemon keeps reading the console for the journal.
    proxy = ask(lxcpath, "c1", wire.GET_TTY_FD, 0)
    assert proxy[:2] == (0, 0) and len(proxy[3]) == 1
    os.write(proxy[3][0], b"echo through-$((20+22))\r")
    seen = b""
    deadline = time.monotonic() + 10
    while b"through-42" not in seen and time.monotonic() < deadline:
        seen += os.read(proxy[3][0], 4096)
    assert b"through-42" in seen
    assert ask(lxcpath, "c1", wire.GET_TTY_FD, 0)[0] == -errno.EBADF  # one at a time


def test_commands_not_served_get_liblxcs_answers(manager: FakeManager, containers: Make,
                                                 lxcpath: str) -> None:
    c = containers("c1")
    publish(manager, c, lxcpath)
    assert ask(lxcpath, "c1", wire.GET_DEVPTS_FD)[0] == -errno.EBADF
    assert ask(lxcpath, "c1", wire.GET_SYSTEMD_SCOPE)[0] == -errno.EINVAL
    assert ask(lxcpath, "c1", wire.TERMINAL_WINCH)[0] == -errno.ENOSYS
    assert ask(lxcpath, "c1", 99)[0] == -errno.ENOSYS  # a future LXC's command
    ret, _, sock, fds = ask(lxcpath, "c1", wire.GET_INIT_PIDFD)
    assert ret == 0 and os.readlink(f"/proc/self/fd/{fds[0]}") == "anon_inode:[pidfd]"
    sock.close()
    os.close(fds[0])
    # No systemd here: STOP's StopUnit fails, and lxc-stop -k says so instead of
    # reporting a stop that did not happen.
    stopped = lxc(lxcpath, "lxc-stop", "-n", "c1", "-k")
    assert stopped.returncode != 0 and "Failed to stop container" in stopped.stderr
    assert c.proc.poll() is None


def test_only_the_hosts_root_is_answered(manager: FakeManager, containers: Make,
                                         lxcpath: str) -> None:
    """A process in another pid namespace (a container sharing the host's network
    namespace could reach the abstract socket) gets -EPERM, nothing else."""
    c = containers("c1")
    publish(manager, c, lxcpath)
    code = ("import socket, struct, sys; s = socket.socket(socket.AF_UNIX); "
            f"s.connect({wire.socket_name(lxcpath, 'c1')!r}); "
            f"s.send(struct.pack('@iin', {wire.GET_INIT_PIDFD}, 0, 0)); "
            "print(struct.unpack('@iin', s.recv(16))[0])")
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "/usr/bin/python3",
                             "-c", code], capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == str(-errno.EPERM), result.stderr


def test_a_registration_may_only_publish_its_own_name(manager: FakeManager,
                                                      containers: Make, lxcpath: str) -> None:
    c = containers("c1")
    fd = owner.claim(lxcpath, "c2")  # bound for another container
    said: list[str] = []
    try:
        assert not handoff.register("c1", c.unit, c.master, [], pid=c.proc.pid,
                                    socket_path=manager.socket_path, warn=said.append,
                                    lxc=handoff.LxcPublish(fd, lxcpath, "", ""))
    finally:
        os.close(fd)
    assert "not c1's listening command socket" in said[0]


def ask(lxcpath: str, name: str, cmd: int,
        value: int = 0) -> tuple[int, int, socket.socket, list[int]]:
    """One request as liblxc sends it: (ret, pointer value, the connection, fds)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(wire.socket_name(lxcpath, name))
    sock.send(wire.pack(cmd, 0, value))
    data, fds, _, _ = socket.recv_fds(sock, wire.RSP.size, 4)
    ret, _, pointer = wire.unpack(data)
    return ret, pointer, sock, fds


def console_log(lxcpath: str, name: str, *, read: bool = True, clear: bool = False,
                read_max: int = 0) -> tuple[int, bytes]:
    """LXC_CMD_CONSOLE_LOG as liblxc's lxc_cmd_console_log sends it: (ret, the bytes)."""
    request = wire.CONSOLE_LOG_REQ.pack(clear, read, read_max, False)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(wire.socket_name(lxcpath, name))
        sock.sendall(wire.pack(wire.CONSOLE_LOG, len(request)) + request)
        answer = b""
        while len(answer) < wire.RSP.size or len(answer) < wire.RSP.size + max(
                0, wire.unpack(answer[:wire.RSP.size])[1]):
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
    ret, datalen, _ = wire.unpack(answer[:wire.RSP.size])
    return ret, answer[wire.RSP.size:wire.RSP.size + max(0, datalen)]


def test_console_log_reads_and_consumes_the_ring_buffer(manager: FakeManager,
                                                        containers: Make,
                                                        lxcpath: str) -> None:
    """What a read returns is consumed from the ring buffer (lxc_ringbuf_move_read_addr),
    not queued for the journal again: the line reaches the journal once."""
    c = containers("c1", script="printf 'abcdef\\n'; read x; echo after-$x; exec sleep 1000")
    publish(manager, c, lxcpath)
    wait(lambda: manager.journal.messages("c1") == ["abcdef"])
    assert console_log(lxcpath, "c1", read_max=3) == (0, b"abc")
    assert console_log(lxcpath, "c1") == (0, b"def\r\n")
    assert console_log(lxcpath, "c1")[0] == -errno.ENODATA  # all read
    viewer = Viewer(manager, "c1")
    viewer.type(b"go\r")  # more output, and with it the journal's queue is sent
    wait(lambda: "after-go" in manager.journal.messages("c1"))
    lines = manager.journal.messages("c1")
    assert lines[0] == "abcdef" and "def" not in lines and lines.count("abcdef") == 1, lines
    ret, data = console_log(lxcpath, "c1")
    assert ret == 0 and data.endswith(b"after-go\r\n") and b"def" not in data, data
    viewer.close()


def test_a_containers_command_socket_goes_before_its_last_journal_lines(
        manager: FakeManager, containers: Make, lxcpath: str) -> None:
    """When init exits the command socket is closed at once, while journald has not taken
    the container's last lines yet: a new start of the container (its claim) never waits
    for journald, and the lines still arrive."""
    manager.journal.pause()
    c = containers("c1", script="i=0; while [ $i -lt 1500 ]; do echo l$i; i=$((i+1)); done")
    publish(manager, c, lxcpath)
    c.proc.wait(30)  # the lines fit in the ring (its queue): init exits
    wait(lambda: owner.probe(lxcpath, "c1") is None)
    assert "lxcsd.1.ring" in manager.stored_names()  # the queue still waits for journald
    fd = owner.claim(lxcpath, "c1", wait=0)  # free at once: what the next start does
    os.close(fd)
    manager.journal.resume()
    wait(lambda: manager.stored_names() == set(), timeout=30)
    assert manager.journal.messages("c1") == [f"l{i}" for i in range(1500)]
