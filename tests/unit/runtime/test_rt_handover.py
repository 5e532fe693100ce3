"""The helper's hand-over (lxcsd.runtime.start): an init that already ended is noticed
without being reaped, and the helper then ends exactly as init did; systemd's stop while the
helper is main process undoes the start (the sandbox tests do it under systemd:
tests/sandbox/test_e2e_lifecycle_races.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lxcsd.runtime import start


def test_init_status_sees_an_ended_child_and_leaves_it_for_systemd() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    deadline = time.monotonic() + 10
    while (status := start.init_status(pid)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3
    assert start.init_status(pid) == status  # WNOWAIT: still there to be reaped
    assert os.waitpid(pid, 0)[1] == status  # the same wait status as waitpid's


def test_init_status_of_a_killed_child_is_its_signal() -> None:
    child = subprocess.Popen(["sleep", "10"])
    try:
        assert start.init_status(child.pid) is None
        child.kill()
        deadline = time.monotonic() + 10
        while (status := start.init_status(child.pid)) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        child.wait()
    finally:
        child.kill()


# init's end, as a wait status, mirrored by the helper (start.init_ended: ready.exit_as is
# the one mechanism, also for a guest that ends before READY=1).
ENDED = ("import sys; from lxcsd.runtime.start import init_ended\n"
         "init_ended('c1', {}, 'before the hand-over', 'before the hand-over')")


@pytest.mark.parametrize(("wstatus", "returncode"), [
    (1 << 8, 1), (0, 0),
    (int(signal.SIGHUP), -signal.SIGHUP),  # reboot inside: systemd restarts
    (int(signal.SIGSEGV) | 0x80, -signal.SIGSEGV),  # no core file of ours
])
def test_the_helper_ends_as_init_ended(wstatus: int, returncode: int) -> None:
    r = subprocess.run([sys.executable, "-c", ENDED.format(wstatus)], capture_output=True,
                       text=True, timeout=30, env={**os.environ, "NOTIFY_SOCKET": ""})
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
