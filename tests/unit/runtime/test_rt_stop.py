"""lxcsd-helper stop: the halt signal chosen as liblxc's shutdown does, sent to a real process
through a pidfd, and the wait for its exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.runtime import state, stop

RTMIN3 = signal.SIGRTMIN + 3

# A stand-in init: blocks the signals given on its command line (systemd blocks SIGRTMIN+3),
# writes which signal reached it, exits 0.
FAKE_INIT = r"""
import signal, sys
block = [int(s) for s in sys.argv[2:]]
out = sys.argv[1]
def got(signum, frame):
    open(out, "w").write(str(signum))
    sys.exit(0)
for s in (signal.SIGPWR, signal.SIGRTMIN + 3, signal.SIGUSR1, signal.SIGTERM):
    signal.signal(s, got)
if block:
    signal.pthread_sigmask(signal.SIG_BLOCK, block)
    import time
    open(out + ".ready", "w").close()
    while True:
        for s in block:
            if s in signal.sigpending():
                signal.pthread_sigmask(signal.SIG_UNBLOCK, [s])
        time.sleep(0.01)
open(out + ".ready", "w").close()
while True:
    signal.pause()
"""


@pytest.fixture
def lxcpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "lxc"
    path.mkdir()
    monkeypatch.setenv("LXCSD_LXCPATH", str(path))
    monkeypatch.setenv("LXCSD_RUN_DIR", str(tmp_path / "run"))  # never the host's state
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    return path


def start_init(tmp_path: Path, *blocked: int) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "got"
    proc = subprocess.Popen([sys.executable, "-c", FAKE_INIT, str(out),
                             *map(str, blocked)])
    ready = Path(str(out) + ".ready")
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "fake init did not start"
        time.sleep(0.01)
    return proc, out


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    made: list[subprocess.Popen[bytes]] = []
    yield made
    for proc in made:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_choose_halt_signal() -> None:
    assert stop.choose_halt_signal(None, 0) == signal.SIGPWR
    assert stop.choose_halt_signal(None, 1 << (RTMIN3 - 1)) == RTMIN3
    assert stop.choose_halt_signal(signal.SIGUSR1, 1 << (RTMIN3 - 1)) == signal.SIGUSR1
    # blocking only SIGPWR does not change the choice (liblxc tests SIGRTMIN+3 only)
    assert stop.choose_halt_signal(None, 1 << (signal.SIGPWR - 1)) == signal.SIGPWR


def test_blocked_signals_of_a_stand_in_status(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42/status").write_text("Name:\tsystemd\nSigBlk:\t7be3c0fe28014a03\n")
    mask = stop.blocked_signals(42, proc=str(tmp_path))
    assert mask == 0x7be3c0fe28014a03
    assert stop.choose_halt_signal(None, mask) == RTMIN3
    assert stop.blocked_signals(43, proc=str(tmp_path)) == 0


def test_signal_text() -> None:
    assert stop.signal_text(RTMIN3) == "SIGRTMIN+3"
    assert stop.signal_text(signal.SIGPWR) == "SIGPWR"


def test_no_mainpid_is_nothing_to_do(lxcpath: Path) -> None:
    assert stop.main("c1", 0) == 0


def test_gone_mainpid_is_nothing_to_do(lxcpath: Path) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert stop.main("c1", proc.pid) == 0


def test_sigpwr_without_config(tmp_path: Path, lxcpath: Path,
                               procs: list[subprocess.Popen[bytes]],
                               capfd: pytest.CaptureFixture[str]) -> None:
    proc, out = start_init(tmp_path)
    procs.append(proc)
    assert stop.main("gone", proc.pid) == 0  # no config: the fallback rule
    assert proc.poll() is not None or proc.wait(5) == 0
    assert out.read_text() == str(int(signal.SIGPWR))
    err = capfd.readouterr().err
    assert "lxcsd: gone config not usable" in err
    assert f"lxcsd: gone stopping: SIGPWR to init (pid {proc.pid})" in err
    assert "lxcsd: gone init exited" in err


def test_sigrtmin3_when_init_blocks_it(tmp_path: Path, lxcpath: Path,
                                       procs: list[subprocess.Popen[bytes]]) -> None:
    proc, out = start_init(tmp_path, RTMIN3)
    procs.append(proc)
    assert stop.main("gone", proc.pid) == 0
    proc.wait(5)
    assert out.read_text() == str(RTMIN3)


def test_configured_halt_signal(tmp_path: Path, lxcpath: Path,
                                procs: list[subprocess.Popen[bytes]]) -> None:
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text("lxc.rootfs.path = /srv\nlxc.signal.halt = SIGUSR1\n")
    proc, out = start_init(tmp_path, RTMIN3)
    procs.append(proc)
    assert stop.main("c1", proc.pid) == 0
    proc.wait(5)
    assert out.read_text() == str(int(signal.SIGUSR1))


def test_broken_config_still_stops(tmp_path: Path, lxcpath: Path,
                                   procs: list[subprocess.Popen[bytes]]) -> None:
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text("lxc.signal.halt = SIGUSR1\nlxc.no.such.key = 1\n")
    proc, out = start_init(tmp_path, RTMIN3)
    procs.append(proc)
    assert stop.main("c1", proc.pid) == 0
    proc.wait(5)
    assert out.read_text() == str(RTMIN3)


def test_stop_hook_after_exit(tmp_path: Path, lxcpath: Path,
                              procs: list[subprocess.Popen[bytes]]) -> None:
    record = tmp_path / "hook.out"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$* $LXC_TARGET\" > {record}\n")
    hook.chmod(0o755)
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text(f"lxc.rootfs.path = /srv\nlxc.hook.stop = {hook}\n")
    proc, out = start_init(tmp_path)
    procs.append(proc)
    assert stop.main("c1", proc.pid) == 0
    # same namespaces as ours: no references; the hook still learns name, section, type
    assert record.read_text() == "c1 lxc stop stop\n"


def test_namespace_refs() -> None:
    args, env = stop.namespace_refs({"net": 5, "mnt": 6}, 100)
    assert args == ["net:/proc/100/fd/5", "mnt:/proc/100/fd/6"]
    assert env == {"LXC_NET_NS": "/proc/100/fd/5", "LXC_MNT_NS": "/proc/100/fd/6"}


def test_stop_hook_runs_when_init_is_gone_already(tmp_path: Path, lxcpath: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "hook.out"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$LXC_HOOK_TYPE $LXC_TARGET\" > {record}\n")
    hook.chmod(0o755)
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text(f"lxc.rootfs.path = /srv\nlxc.hook.version = 1\n"
                                       f"lxc.hook.stop = {hook}\n")
    # systemd's variables after a reboot inside (init killed by SIGHUP), no MAINPID
    monkeypatch.setenv("EXIT_CODE", "killed")
    monkeypatch.setenv("EXIT_STATUS", "HUP")
    assert stop.main("c1", 0) == 0
    assert record.read_text() == "stop reboot\n"


# ------------------------------------------------------------------------------------------
# The state file the start wrote: stop with the config the container started with


def write_state(name: str, pid: int, halt: str, stop_hooks: str = "0") -> None:
    state.write(name, {"name": name, "init_pid": pid, "halt_signal": halt,
                       "stop_hooks": stop_hooks, "post_stop_hooks": "0"})


@pytest.mark.parametrize(("fields", "halt", "hooks"), [
    ({"init_pid": "42", "halt_signal": "10", "stop_hooks": "0"}, 10, False),
    ({"init_pid": "42", "halt_signal": "", "stop_hooks": "1"}, None, True),
])
def test_recorded_plan(fields: dict[str, str], halt: int | None, hooks: bool) -> None:
    todo = stop.recorded_plan(fields, 42)
    assert todo is not None and (todo.halt, todo.stop_hooks) == (halt, hooks)
    assert stop.recorded_plan(fields, 0) is not None  # init gone: the state still tells


@pytest.mark.parametrize("fields", [
    None, {},
    {"init_pid": "42", "stop_hooks": "0"},                            # older state format
    {"init_pid": "42", "halt_signal": "10"},
    {"init_pid": "42", "halt_signal": "SIGUSR1", "stop_hooks": "0"},  # damaged
    {"init_pid": "42", "halt_signal": "10", "stop_hooks": "yes"},
    {"init_pid": "43", "halt_signal": "10", "stop_hooks": "0"},       # another init's state
])
def test_recorded_plan_cannot_tell(fields: dict[str, str] | None) -> None:
    assert stop.recorded_plan(fields, 42) is None


def test_edited_halt_signal_is_not_used_while_running(
        tmp_path: Path, lxcpath: Path, procs: list[subprocess.Popen[bytes]],
        capfd: pytest.CaptureFixture[str]) -> None:
    # started with SIGTERM; the config now says SIGUSR1 and no longer parses: neither matters
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text("lxc.signal.halt = SIGUSR1\nlxc.no.such.key = 1\n")
    proc, out = start_init(tmp_path)
    procs.append(proc)
    write_state("c1", proc.pid, str(int(signal.SIGTERM)))
    assert stop.main("c1", proc.pid) == 0
    proc.wait(5)
    assert out.read_text() == str(int(signal.SIGTERM))
    err = capfd.readouterr().err
    assert "config not usable" not in err  # not even read: there are no stop hooks
    assert f"lxcsd: c1 stopping: SIGTERM to init (pid {proc.pid})" in err


def test_recorded_unset_halt_signal_applies_the_sigblk_rule(
        tmp_path: Path, lxcpath: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text("lxc.rootfs.path = /srv\nlxc.signal.halt = SIGUSR1\n")
    proc, out = start_init(tmp_path, RTMIN3)
    procs.append(proc)
    write_state("c1", proc.pid, "")
    assert stop.main("c1", proc.pid) == 0
    proc.wait(5)
    assert out.read_text() == str(RTMIN3)


def test_state_of_another_init_is_not_trusted(
        tmp_path: Path, lxcpath: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text("lxc.rootfs.path = /srv\nlxc.signal.halt = SIGUSR1\n")
    proc, out = start_init(tmp_path)
    procs.append(proc)
    write_state("c1", proc.pid + 100000, str(int(signal.SIGTERM)))
    assert stop.main("c1", proc.pid) == 0
    proc.wait(5)
    assert out.read_text() == str(int(signal.SIGUSR1))  # the config, read now


def test_recorded_stop_hooks_are_read_from_the_config(
        tmp_path: Path, lxcpath: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    record = tmp_path / "hook.out"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$* $LXC_TARGET\" > {record}\n")
    hook.chmod(0o755)
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text(f"lxc.rootfs.path = /srv\nlxc.hook.stop = {hook}\n")
    proc, out = start_init(tmp_path)
    procs.append(proc)
    write_state("c1", proc.pid, "", stop_hooks="1")
    assert stop.main("c1", proc.pid) == 0
    assert out.read_text() == str(int(signal.SIGPWR))
    assert record.read_text() == "c1 lxc stop stop\n"


def test_no_stop_hooks_recorded_and_init_gone_reads_no_config(
        tmp_path: Path, lxcpath: Path) -> None:
    # a hook added to the config after the start does not run (liblxc: the started config)
    record = tmp_path / "hook.out"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho ran > {record}\n")
    hook.chmod(0o755)
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text(f"lxc.rootfs.path = /srv\nlxc.hook.stop = {hook}\n")
    write_state("c1", 4242, "", stop_hooks="0")
    assert stop.main("c1", 0) == 0
    assert not record.exists()
    state.write("c1", {"name": "c1", "init_pid": 4242})  # an older format: the config says
    assert stop.main("c1", 0) == 0
    assert record.read_text() == "ran\n"


def test_stop_without_stop_hooks_imports_no_config_reader(
        tmp_path: Path, lxcpath: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    # What makes it fast: the helper's stop never imports the config reader then.
    (lxcpath / "c1").mkdir()
    (lxcpath / "c1/config").write_text("lxc.rootfs.path = /srv\n")
    proc, out = start_init(tmp_path)
    procs.append(proc)
    write_state("c1", proc.pid, "")
    code = ("import sys; from lxcsd.runtime.main import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in sys.modules if m.startswith('lxcsd.config')))")
    res = subprocess.run([sys.executable, "-c", code, "stop", "c1", str(proc.pid)],
                         capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr
    proc.wait(5)
    assert out.read_text() == str(int(signal.SIGPWR))


# Ignores the halt signal (SIGUSR2 here), records the lxc.signal.stop it gets (SIGINT).
STUBBORN_INIT = r"""
import signal, sys
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
def got(signum, frame):
    open(sys.argv[1], "w").write(str(signum))
    sys.exit(0)
signal.signal(signal.SIGINT, got)
open(sys.argv[1] + ".ready", "w").close()
while True:
    signal.pause()
"""
STOP = "import sys; from lxcsd.runtime import stop; sys.exit(stop.main('c1', int(sys.argv[1])))"


def test_a_timed_out_stop_sends_lxc_signal_stop(tmp_path: Path, lxcpath: Path,
                                                procs: list[subprocess.Popen[bytes]]) -> None:
    """systemd's KillSignal= (SIGTERM) to ExecStop= when TimeoutStopSec= runs out: the
    helper sends lxc.signal.stop to init, as lxc-stop does after its timeout."""
    out = tmp_path / "got"
    init = subprocess.Popen([sys.executable, "-c", STUBBORN_INIT, str(out)])
    procs.append(init)
    deadline = time.monotonic() + 10
    while not Path(f"{out}.ready").exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    state.write("c1", {"name": "c1", "init_pid": init.pid, "halt_signal": "12",
                       "stop_signal": str(int(signal.SIGINT)), "stop_hooks": "0"})
    helper = subprocess.Popen([sys.executable, "-c", STOP, str(init.pid)],
                              stderr=subprocess.PIPE, text=True)
    procs.append(helper)  # type: ignore[arg-type]
    time.sleep(1)
    assert helper.poll() is None and init.poll() is None  # the halt signal did nothing
    helper.send_signal(signal.SIGTERM)
    _, err = helper.communicate(timeout=10)
    assert helper.returncode == 0, err
    assert out.read_text() == str(int(signal.SIGINT))
    assert "c1 stop timed out: SIGINT to init" in err and "c1 init exited" in err
