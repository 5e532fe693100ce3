"""The hand-over's failure paths and message (lxcsd.console.handoff), without a daemon."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

from lxcsd.console import handoff, protocol
from lxcsd.console.options import ConsoleOptions


def test_no_service_returns_false_and_says_why(tmp_path: Path) -> None:
    said: list[str] = []
    master, slave = os.openpty()
    try:
        ok = handoff.register("web", "lxc@web.service", master, [], None,
                              socket_path=str(tmp_path / "none.sock"), warn=said.append)
    finally:
        os.close(master)
        os.close(slave)
    assert ok is False
    assert len(said) == 1 and "nothing listens on" in said[0] and "web" in said[0]
    assert "runs without console logging" in said[0]


def test_a_service_that_does_not_answer_times_out(tmp_path: Path) -> None:
    path = str(tmp_path / "mute.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind(path)
        listener.listen(1)
        said: list[str] = []
        assert not handoff.register("web", "lxc@web.service", None, [], None,
                                    socket_path=path, timeout=0.2, warn=said.append)
    assert "no answer" in said[0]


def test_an_init_that_is_gone_is_not_handed_over(tmp_path: Path) -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    said: list[str] = []
    assert not handoff.register("web", "lxc@web.service", None, [], pid=pid,
                                socket_path=str(tmp_path / "x"), warn=said.append)
    assert f"init (pid {pid})" in said[0]


def test_the_message_and_descriptors(tmp_path: Path) -> None:
    """A stand-in service receives what register() sends and refuses it."""
    path = str(tmp_path / "svc.sock")
    got: dict[str, Any] = {}
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind(path)
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                data, fds, _, _ = socket.recv_fds(conn, 65536, 10)
                got["message"] = protocol.decode(data)
                got["kinds"] = [os.readlink(f"/proc/self/fd/{fd}") for fd in fds]
                for fd in fds:
                    os.close(fd)
                conn.send(protocol.error("not today", "invalid"))

        thread = threading.Thread(target=serve)
        thread.start()
        m0, s0 = os.openpty()
        m1, s1 = os.openpty()
        said: list[str] = []
        ok = handoff.register("web", "lxc@web.service", m0, [m1],
                              ConsoleOptions(logfile="/l", buffer_size=8192),
                              pid=os.getpid(), socket_path=path, warn=said.append)
        thread.join()
        for fd in (m0, s0, m1, s1):
            os.close(fd)
    assert not ok and "refused: not today" in said[0]
    verb, fields = got["message"]
    assert verb == "register"
    assert fields == {"name": "web", "unit": "lxc@web.service", "fds": "pid,0,1",
                      "logsize": "0", "logrotate": "0", "buffer": "8192", "journal": "1",
                      "logfile": "/l"}
    kinds = got["kinds"]
    assert kinds[0] == "anon_inode:[pidfd]" and kinds[1] in ("/dev/ptmx", "/dev/pts/ptmx")


def test_too_many_ttys_are_refused_before_anything_is_opened(tmp_path: Path) -> None:
    said: list[str] = []
    assert not handoff.register("web", "lxc@web.service", None, [0] * 252, pid=os.getpid(),
                                socket_path=str(tmp_path / "x"), warn=said.append)
    assert "252 ttys: at most 251 can be handed over" in said[0]
