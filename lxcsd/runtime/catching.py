"""Wait until a freshly exec'd init takes the signal systemd's stop will send it.

A pid namespace's init ignores every signal from outside its namespace whose disposition is
SIG_DFL, unless it blocks it (the kernel drops it: SIGNAL_UNKILLABLE, kernel/signal.c
sig_ignored and sig_task_ignored), so a halt signal sent before init took it is lost, not
delayed. When the unit stops the container with KillSignal= alone (no ExecStop=,
lxcsd.generator.render), systemd sends that signal the moment a stop lands, which may be
1 ms after the start returned: busybox init, just exec'd, has not blocked its signals yet
and the stop then waits for TimeoutStopSec. So the helper hands init over only once
/proc/PID/status shows the halt signal in SigBlk or SigCgt (or init sits in sigtimedwait
for it), or after ``BOUND`` for an init
that never takes it (then no stop by signal ever reaches it: a warning says so). LXC's
lxc-stop has the same window; the old ExecStop= hid it behind its own start-up (~30 ms).

Measured here (busybox 1.35 init, sandbox, 25 starts): median 0.4 ms, at most 4.5 ms, of
~67 ms (median) starts.
"""

from __future__ import annotations

import os
import select
import time

# Long enough for a slow init's start-up on a loaded host (busybox blocks its signals within
# 5 ms of exec here); short, because an init that never takes the signal (a shell,
# lxc.init.cmd = sleep) holds `systemctl start` up this long, and an init that ends within
# it fails the start instead of the running unit.
BOUND = 0.5


def catches(pid: int, signum: int) -> bool | None:
    """Whether process ``pid`` takes ``signum``: a handler (SigCgt) or the signal blocked
    (SigBlk: the kernel queues a blocked signal whatever its disposition, and busybox
    init since 1.30 and systemd block theirs and collect them with sigtimedwait or a
    signalfd: liblxc's lxc-stop looks at SigBlk too). None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            text = f.read()
    except OSError:
        return None
    if _in_mask(text, b"SigBlk", signum) or _in_mask(text, b"SigCgt", signum):
        return True
    return waits_for(pid, signum)


# rt_sigtimedwait(2)'s number where lxcsd runs (asm/unistd_64.h, asm-generic/unistd.h).
_SIGTIMEDWAIT = {"x86_64": 128, "aarch64": 137, "riscv64": 137, "ppc64le": 176, "s390x": 177}


def waits_for(pid: int, signum: int) -> bool:
    """Whether ``pid`` sits in rt_sigtimedwait for a set holding ``signum``. While it does,
    the kernel lifts the set from its blocked mask (SigBlk) and keeps the real one aside,
    unseen in /proc, where the kernel still queues the signal: busybox init spends its
    idle time so. The set is read from its memory (/proc/PID/syscall gives its address).

    Init is the container's and may be hostile; what it controls is the address, and the
    read stays inside its own address space (no host memory, nothing written). A page it
    registered with userfaultfd fails the read (a remote access cannot wait for the
    handler): False. A page of a file served by its own FUSE daemon can hold the read
    until that daemon answers; that delays only this container's own start, as a guest
    that never sends READY=1 can, and systemd's TimeoutStartSec= ends it."""
    number = _SIGTIMEDWAIT.get(os.uname().machine)
    try:
        with open(f"/proc/{pid}/syscall", "rb") as f:
            fields = f.read().split()
        if number is None or len(fields) < 5 or fields[0] != str(number).encode():
            return False
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.pread(fd, 8, int(fields[1], 16))
        finally:
            os.close(fd)
    except (OSError, ValueError, OverflowError):  # an address past off_t: not a set
        return False
    return len(data) == 8 and bool(int.from_bytes(data, "little") >> (signum - 1) & 1)


def _in_mask(status: bytes, field: bytes, signum: int) -> bool:
    start = status.find(b"\n" + field + b":")
    if start < 0:
        return False
    start += len(field) + 2
    mask = int(status[start:status.index(b"\n", start)].strip(), 16)
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
