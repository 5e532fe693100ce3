"""The parts of lxcsd.systemd.sdnotify the console service added or depends on: descriptors
passed with sd_notify (FDSTORE=1, BARRIER=1) and LISTEN_FDS/LISTEN_FDNAMES."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from lxcsd.systemd import sdnotify

REPO = Path(__file__).resolve().parents[3]


def test_notify_passes_descriptors_to_the_socket_it_names(tmp_path: Path) -> None:
    # Python 3.11's socket.send_fds() ignores its address: this failed with ENOTCONN.
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(path)
        read_end, write_end = os.pipe()
        assert sdnotify.notify("FDSTORE=1\nFDNAME=x", [read_end, write_end], socket_path=path)
        data, fds, _, _ = socket.recv_fds(manager, 100, 4)
    assert data == b"FDSTORE=1\nFDNAME=x" and len(fds) == 2
    for fd in (read_end, write_end, *fds):
        os.close(fd)


def test_listen_fds() -> None:
    """In a child started as systemd starts a service: fds 3 and 4, LISTEN_PID its pid."""
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from lxcsd.systemd import sdnotify; "
            "print(sdnotify.listen_fds(), os.get_inheritable(3), 'LISTEN_FDS' in os.environ)")
    shell = 'exec 3</dev/null 4</dev/null; LISTEN_PID=$$ exec "$@"'
    out = subprocess.run(["/bin/sh", "-c", shell, "sh", "/usr/bin/python3", "-I", "-S", "-c",
                          code, str(REPO)], check=True, capture_output=True, text=True,
                         env={"LISTEN_FDS": "2", "LISTEN_FDNAMES": "lxcsd-console.socket"})
    # Fewer names than descriptors: the rest are "unknown"; all close-on-exec, env cleared.
    assert out.stdout.strip() == "[(3, 'lxcsd-console.socket'), (4, 'unknown')] False False"


def test_listen_fds_for_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTEN_PID", "1")
    monkeypatch.setenv("LISTEN_FDS", "1")
    assert sdnotify.listen_fds() == []
