"""The helper's hand-over (lxcsd.runtime.start): an init that already ended is noticed
without being reaped, and the helper then ends exactly as init did; systemd's stop while the
helper is main process undoes the start (the sandbox tests do it under systemd:
tests/e2e/test_e2e_lifecycle_races.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lxcsd.runtime import start


def test_init_exit_sees_an_ended_child_and_leaves_it_for_systemd() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    deadline = time.monotonic() + 10
    while (how := start.init_exit(pid)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert how == ("exited", 3)
    assert start.init_exit(pid) == ("exited", 3)  # WNOWAIT: still there to be reaped
    assert os.waitpid(pid, 0)[1] >> 8 == 3


def test_init_exit_of_a_running_child_is_none() -> None:
    child = subprocess.Popen(["sleep", "10"])
    try:
        assert start.init_exit(child.pid) is None
        child.kill()
        child.wait()
    finally:
        child.kill()


MIRROR = "import sys; from lxcsd.runtime.start import mirror; sys.exit(mirror('c1', ({!r}, {})))"


@pytest.mark.parametrize(("how", "returncode"), [
    (("exited", 1), 1), (("exited", 0), 0),
    (("killed", int(signal.SIGHUP)), -signal.SIGHUP),  # reboot inside: systemd restarts
    (("killed", int(signal.SIGSEGV)), -signal.SIGSEGV),  # no core file of ours
])
def test_mirror_ends_as_init_ended(how: tuple[str, int], returncode: int) -> None:
    r = subprocess.run([sys.executable, "-c", MIRROR.format(*how)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == returncode, r.stderr
    assert "before the hand-over" in r.stderr and "Traceback" not in r.stderr


def test_a_stop_while_starting_is_not_a_traceback() -> None:
    """SIGTERM (the unit's KillSignal=) during the start: exit 0 with one line."""
    code = ("import os, signal, sys; from lxcsd.runtime import start\n"
            "start.load_plan = lambda name: os.kill(os.getpid(), signal.SIGTERM)\n"
            "sys.exit(start.main('c1'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=30, env={**os.environ, "NOTIFY_SOCKET": ""})
    assert (r.returncode, r.stderr) == (0, "lxcsd: c1 stopped while starting: start undone\n")
