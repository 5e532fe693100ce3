"""lxcsd.runtime.catching against real processes: a handler, a blocked signal, a process
inside sigtimedwait (its blocked mask then does not show the signal), none of these, and
one that ends while waited for."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from lxcsd.runtime import catching


@contextmanager
def child(body: Callable[[], None]) -> Iterator[tuple[int, int]]:
    """A forked process running body (set up, then it signals readiness on a pipe and
    idles); yields its pid and pidfd, killed and reaped afterwards."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            body_then_idle(body, w)
        finally:
            os._exit(0)
    os.close(w)
    pidfd = os.pidfd_open(pid)
    try:
        os.read(r, 1)
        yield pid, pidfd
    finally:
        os.close(r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(pidfd)


def body_then_idle(body: Callable[[], None], w: int) -> None:
    for signum in (signal.SIGUSR1, signal.SIGPWR):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    body()
    os.write(w, b"x")
    time.sleep(60)


def test_a_handler_a_blocked_signal_and_neither() -> None:
    with child(lambda: signal.signal(signal.SIGPWR, lambda *_: None)) as (pid, _):
        assert catching.catches(pid, signal.SIGPWR) is True
        assert catching.catches(pid, signal.SIGUSR1) is False
    with child(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])) as (pid, _):
        assert catching.catches(pid, signal.SIGUSR1) is True
        assert catching.catches(pid, signal.SIGPWR) is False


def test_a_process_inside_sigtimedwait_takes_the_signals_it_waits_for() -> None:
    # busybox init's idle state: the set is blocked, then waited for; while it waits,
    # SigBlk shows none of it.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
            os.write(w, b"x")
            signal.sigtimedwait([signal.SIGUSR1], 60)
        finally:
            os._exit(0)
    try:
        os.read(r, 1)
        deadline = time.monotonic() + 10
        while "sigtimedwait" not in open(f"/proc/{pid}/wchan").read():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        status = open(f"/proc/{pid}/status").read()
        assert "SigBlk:\t0000000000000000" in status  # what made SigBlk alone miss it
        assert catching.catches(pid, signal.SIGUSR1) is True
        assert catching.catches(pid, signal.SIGPWR) is False
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        os.close(w)


def test_wait_is_bounded_and_ends_with_the_process() -> None:
    with child(lambda: None) as (pid, pidfd):
        started = time.monotonic()
        assert catching.wait(pid, pidfd, signal.SIGPWR, bound=0.2) is False
        assert time.monotonic() - started >= 0.2
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        assert catching.wait(pid, pidfd, signal.SIGPWR, bound=30) is False
        assert time.monotonic() - started < 10  # not the bound: the pidfd said it ended
    with child(lambda: signal.signal(signal.SIGPWR, lambda *_: None)) as (pid, pidfd):
        assert catching.wait(pid, pidfd, signal.SIGPWR) is True


def test_a_gone_process_is_none() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert catching.catches(pid, signal.SIGPWR) is None
