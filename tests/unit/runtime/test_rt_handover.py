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

from lxcsd import linux
from lxcsd.runtime import start, state


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


@pytest.mark.parametrize(("signum", "stop"), [
    (signal.SIGPWR, "halt:30,stop:0,exec_stop:0,cleanup:0"),  # busybox: systemd sends SIGPWR
    (signal.SIGRTMIN + 3, "halt:37,stop:9,exec_stop:0,cleanup:1"),  # systemd guest, no notify
    (signal.SIGUSR1, "halt:10,stop:0,exec_stop:0,cleanup:0"),  # lxc.signal.halt
    (signal.SIGTERM, "halt:0,stop:0,exec_stop:1,cleanup:1"),  # ExecStop=: the template's
])
def test_a_stop_while_starting_with_the_units_kill_signal(signum: int, stop: str) -> None:
    """Whatever KillSignal= the drop-in gave the unit (the halt signal when systemd sends
    it itself: LXCSD_STOP says so) reaches the helper while it is the main process, and is
    a stop during the start, not the signal's default action (SIGPWR would kill it: the
    unit would end failed)."""
    code = ("import os, sys; from lxcsd.runtime import start\n"
            f"start.load_plan = lambda name: os.kill(os.getpid(), {int(signum)})\n"
            "sys.exit(start.main('c1'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=30, env={**os.environ, "NOTIFY_SOCKET": "", "LXCSD_STOP": stop})
    assert (r.returncode, r.stderr) == (0, "lxcsd: c1 stopped while starting: start undone\n")


def test_stop_signals_follow_the_drop_in() -> None:
    assert start.stop_signals({}) == (signal.SIGTERM,)
    assert start.stop_signals({"LXCSD_STOP": "garbage"}) == (signal.SIGTERM,)
    assert start.stop_signals({"LXCSD_STOP": "halt:30,stop:9,exec_stop:0,cleanup:0"}) == \
        (signal.SIGTERM, signal.SIGPWR)
    # ExecStop= kept: KillSignal= stays SIGTERM whatever the halt signal is.
    assert start.stop_signals({"LXCSD_STOP": "halt:30,stop:9,exec_stop:1,cleanup:0"}) == \
        (signal.SIGTERM,)


def need(halt: int = 30, stop: int = 0, exec_stop: int = 0, cleanup: int = 0
         ) -> dict[str, int]:
    return {"halt": halt, "stop": stop, "exec_stop": exec_stop, "cleanup": cleanup}


@pytest.mark.parametrize(("unit", "wanted", "differs"), [
    (state.TEMPLATE_STOP, need(), False),  # the template stops anything (ExecStop= reads
    (state.TEMPLATE_STOP, need(stop=15, exec_stop=1, cleanup=1), False),  # the state file)
    (need(), need(), False),
    (need(), need(cleanup=1), True),  # a network added: ExecStopPost= needed
    (need(cleanup=1), need(), False),  # more than needed is fine
    (need(), need(exec_stop=1), True),  # a stop hook added: ExecStop= needed
    (need(), need(halt=10), True),  # another lxc.signal.halt: another KillSignal=
    (need(), need(stop=15, exec_stop=1), True),  # lxc.signal.stop = SIGTERM: ExecStop= sends it
    (need(), need(stop=9), False),  # lxc.signal.stop = SIGKILL: systemd's own final SIGKILL
    (need(stop=15), need(), True),  # an older generator's FinalKillSignal=SIGTERM: reload
    (need(exec_stop=1), need(halt=10, stop=15, exec_stop=1), False),
])
def test_when_the_unit_no_longer_stops_the_container_right(
        unit: dict[str, int], wanted: dict[str, int], differs: bool) -> None:
    assert start.unit_stop_differs(unit, wanted) is differs


def test_c1_holds_init_and_passes_its_status_on() -> None:
    """C1's hold on init (child.hold_init), as H releases it at the hand-over: an init that
    ended before is reaped by C1 and its wait status reaches H; one that runs is stopped
    and let go (H continues it once systemd took it); H's death lets it go as it is."""
    for init_code, word, expected in ((7, b"r", b"1792"), (None, b"r", b"stopped"),
                                      (None, b"", b"")):
        release_r, release_w = os.pipe2(os.O_CLOEXEC)
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
        c1 = os.fork()
        if c1 == 0:
            os.close(release_w)
            os.close(status_r)
            init = os.fork()
            if init == 0:
                os.close(release_r)  # (as C2 does: only C1 holds these)
                os.close(status_w)
                if init_code is not None:
                    os._exit(init_code)
                time.sleep(30)
                os._exit(0)
            os.write(pid_w, str(init).encode())
            from lxcsd.runtime import child
            child.hold_init(init, os.pidfd_open(init), release_r, status_w)
        for fd in (release_r, status_w, pid_w):
            os.close(fd)
        init = int(os.read(pid_r, 20))
        os.close(pid_r)
        if init_code is not None:
            time.sleep(0.3)  # init ends while C1 holds it
        if init_code is None:  # (else C1 is gone: H's write would fail with EPIPE)
            os.write(release_w, word)
        os.close(release_w)
        assert os.waitpid(c1, 0)[1] == 0
        assert os.read(status_r, 32) == expected
        os.close(status_r)
        if init_code is None:
            # stopped when released; let go as it was (running or asleep) when H died
            assert _state_settles(init, "T" if word else "RS")
            os.kill(init, signal.SIGKILL)


def _state_settles(pid: int, states: str) -> bool:
    """Whether pid's state (/proc/PID/stat) is one of states within a second: a signal to a
    process running on the other CPU takes effect at its next return to user space."""
    for _ in range(100):
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            if f.read().rpartition(")")[2].split()[0] in states:
                return True
        time.sleep(0.01)
    return False


def test_the_status_of_an_init_that_is_not_our_child() -> None:
    """start.zombie_status, for an init systemd (here: a parent that is not us) holds:
    None while it runs; its wait status while it is a zombie (/proc/PID/stat) and once its
    parent reaped it (the pidfd's exit info, Linux 6.15; 1 << 8 on older kernels)."""
    r, w = os.pipe()
    end_r, end_w = os.pipe()  # init: end now
    reap_r, reap_w = os.pipe()  # its parent: reap it now (or on EOF)
    parent = os.fork()
    if parent == 0:
        os.close(reap_w)  # (else a failed test never gives it EOF)
        init = os.fork()
        if init == 0:
            os.read(end_r, 1)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)  # not the test run's disposition
            os.kill(os.getpid(), signal.SIGHUP)  # a reboot inside
            os._exit(0)
        os.write(w, str(init).encode())
        os.read(reap_r, 1)
        os.kill(init, signal.SIGKILL)  # (only if the test failed before init ended)
        os.waitpid(init, 0)
        os._exit(0)
    init = int(os.read(r, 20))
    pidfd = os.pidfd_open(init)
    try:
        assert start.zombie_status(init, pidfd) is None
        os.write(end_w, b"x")  # init ends: a zombie its parent does not reap yet
        deadline = time.monotonic() + 10
        while (status := start.zombie_status(init, pidfd)) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGHUP
        os.write(reap_w, b"x")  # the parent reaps it
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{init}"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        reaped = start.zombie_status(init, pidfd)
        if linux.pidfd_exit_status(pidfd) is None:  # a kernel before 6.15: a failure
            assert reaped == 1 << 8
        else:
            assert reaped == status
    finally:
        for fd in (end_w, reap_w):
            os.close(fd)
        os.waitpid(parent, 0)
        for fd in (pidfd, r, w, end_r, reap_r):
            os.close(fd)
