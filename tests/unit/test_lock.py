"""LXC's container lock (lxcsd.lock): liblxc's file name and lock type, exclusion between
processes, the notice while waiting, Ctrl-C while waiting, a fixed order for several locks.
Against LXC's own tools: tests/sandbox/test_e2e_cli_races.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lxcsd import lock


@pytest.fixture(autouse=True)
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(lock.LOCK_DIR_ENV, str(tmp_path / "lock"))
    return tmp_path / "lock"


def test_liblxc_file_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lock.LOCK_DIR_ENV)
    # lxclock_name(): "%s/lxc/lock/%s/.%s" of rundir, lxcpath, name
    assert lock.lock_path("/var/lib/lxc", "web1") == "/run/lxc/lock/var/lib/lxc/.web1"
    assert lock.lock_path("/srv/lxc/", "a b") == "/run/lxc/lock/srv/lxc/.a b"


HOLD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from lxcsd.lock import ContainerLock
with ContainerLock(sys.argv[2], sys.argv[3]):
    print("held", flush=True)
    time.sleep(float(sys.argv[4]))
"""
REPO = str(Path(__file__).resolve().parents[2])


def hold(lxcpath: str, name: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, REPO, lxcpath, name, str(seconds)],
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_an_ofd_write_lock_on_the_whole_file(lock_dir: Path) -> None:
    with lock.ContainerLock("/var/lib/lxc", "c1") as held:
        assert held.path == f"{lock_dir}/var/lib/lxc/.c1"
        inode = os.stat(held.path).st_ino
        with open("/proc/locks", encoding="ascii") as f:
            mine = [line for line in f if f":{inode} " in line]
        # liblxc's F_OFD_SETLKW with F_WRLCK, l_start 0, l_len 0 (to EOF)
        assert len(mine) == 1 and mine[0].split()[1:4] == ["OFDLCK", "ADVISORY", "WRITE"]
        assert mine[0].split()[-2:] == ["0", "EOF"]
        assert oct(os.stat(held.path).st_mode & 0o777) == "0o600"


def test_another_process_is_kept_out_until_release() -> None:
    holder = hold("/var/lib/lxc", "c1", 2.0)
    waiting: list[str] = []
    other = lock.ContainerLock("/var/lib/lxc", "c1", notice=lambda lk: waiting.append(lk.name))
    assert not other.acquire(wait=False)
    started = time.monotonic()
    other.acquire()
    assert time.monotonic() - started > 1.0 and waiting == ["c1"]  # said after QUIET_WAIT
    assert holder.wait(5) == 0
    other.release()
    assert lock.ContainerLock("/var/lib/lxc", "c2").acquire(wait=False)  # per container


def test_ctrl_c_ends_the_wait() -> None:
    holder = hold("/var/lib/lxc", "c1", 30)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from lxcsd.lock import "
            "ContainerLock\ntry:\n    ContainerLock('/var/lib/lxc', 'c1').acquire()\n"
            "except KeyboardInterrupt:\n    print('interrupted')")
    waiter = subprocess.Popen([sys.executable, "-c", code, REPO], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    assert waiter.stderr is not None and "waiting for c1" in waiter.stderr.readline()
    waiter.send_signal(signal.SIGINT)
    out, _ = waiter.communicate(timeout=10)
    assert out == "interrupted\n"
    holder.kill()
    holder.wait()


def test_several_locks_in_one_order() -> None:
    """copy A B and copy B A at once must not each hold one and wait for the other."""
    one = lock.Locks([("/var/lib/lxc", "b"), ("/var/lib/lxc", "a")])
    two = lock.Locks([("/var/lib/lxc", "a"), ("/var/lib/lxc", "b")])
    assert [lk.name for lk in one.locks] == [lk.name for lk in two.locks] == ["a", "b"]
    with one:
        assert all(lk.fd >= 0 for lk in one.locks)
    assert all(lk.fd < 0 for lk in one.locks)
