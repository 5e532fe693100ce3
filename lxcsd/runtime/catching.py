"""Wait until a freshly exec'd init catches the signal systemd's stop will send it.

A pid namespace's init ignores every signal from outside its namespace whose disposition is
SIG_DFL (the kernel drops it: SIGNAL_UNKILLABLE, kernel/signal.c sig_task_ignored), so a
halt signal sent before init installed its handler is lost, not delayed. When the unit
stops the container with KillSignal= alone (no ExecStop=, lxcsd.generator.render), systemd
sends that signal the moment a stop lands, which may be 1 ms after the start returned:
busybox init, just exec'd, has not set its handlers yet and the stop then waits for
TimeoutStopSec. So the helper hands init over only once /proc/PID/status shows the halt
signal in SigCgt, or after ``BOUND`` for an init that does not catch it (then no stop by
signal ever reaches it: a warning says so). LXC's lxc-stop has the same window; the old
ExecStop= hid it behind its own start-up (~30 ms).

Measured here (busybox init, sandbox, idle host): the wait is 1-3 ms of the start.
"""

from __future__ import annotations

import select
import time

# Long enough for a slow init's start-up on a loaded host (Debian's systemd sets its
# handlers within ~50 ms of exec here); short enough that an init that never catches the
# signal (a shell, lxc.init.cmd = sleep) does not hold `systemctl start` up for long.
BOUND = 1.0


def catches(pid: int, signum: int) -> bool | None:
    """Whether process ``pid`` has a handler for ``signum`` (SigCgt); None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            text = f.read()
    except OSError:
        return None
    start = text.find(b"\nSigCgt:")
    if start < 0:
        return None
    mask = int(text[start + 8:text.index(b"\n", start + 1)].strip(), 16)
    return bool(mask >> (signum - 1) & 1)


def wait(pid: int, pidfd: int, signum: int, bound: float = BOUND) -> bool:
    """True once init catches ``signum``; False after ``bound`` seconds or when init
    ended (its pidfd is readable: the caller finds out how it ended). Polls: no event
    tells when a process sets a handler. 1 ms steps at first (busybox needs a few),
    then up to 20 ms."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    deadline = time.monotonic() + bound
    step = 1
    while True:
        caught = catches(pid, signum)
        if caught:
            return True
        left = deadline - time.monotonic()
        if caught is None or left <= 0:
            return False
        if poller.poll(min(step, max(1, int(left * 1000)))):
            return False  # init ended
        step = min(step * 2, 20)
