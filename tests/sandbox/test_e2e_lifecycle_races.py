"""Exit statuses and stops at awkward moments, under the real systemd of the sandbox:

- an init that crashes at once ends the unit with init's status, so ``Restart=on-failure``
  restarts it every time until systemd's start limit (no "clean stop" of a crashed init);
- a reboot inside (the kernel kills init with SIGHUP), however early, restarts the unit;
- ``systemctl stop`` while the helper is still starting the container (20 tries at delays
  across the start) ends the unit inactive with result success, leaving no process, mount,
  cgroup, veth, state file or machine behind.
"""

from __future__ import annotations

import pytest

from tests.infra import e2e_util as u
from tests.infra.sandbox import Sandbox


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Sandbox:
    return clean_lxcsd_sandbox


def dropin(sb: Sandbox, name: str, text: str) -> None:
    sb.write_file(f"/etc/systemd/system/lxc@{name}.service.d/test.conf", text)


def journal_count(sb: Sandbox, name: str, text: str) -> int:
    return u.journal_text(sb, u.unit(name)).count(text)


def test_a_crashing_init_restarts_every_time_until_the_start_limit(sb: Sandbox) -> None:
    u.make_busybox(sb, "crash", ["lxc.init.cmd = /bin/false"])
    # 21 starts allowed: the first and 20 restarts; the 21st restart meets the limit.
    dropin(sb, "crash", "[Unit]\nStartLimitIntervalSec=600\nStartLimitBurst=21\n"
                        "[Service]\nRestart=on-failure\n")
    sb.systemctl("daemon-reload")
    sb.systemctl("start", "--no-block", u.unit("crash"))
    u.wait_for(lambda: journal_count(sb, "crash", "Start request repeated too quickly"), 180,
               "the start limit")
    props = u.show(sb, u.unit("crash"), "NRestarts", "ActiveState", "ExecMainStatus")
    assert props == {"NRestarts": "21", "ActiveState": "failed", "ExecMainStatus": "1"}
    assert journal_count(sb, "crash", "lxcsd: starting crash") == 21
    assert journal_count(sb, "crash", "code=exited, status=1/FAILURE") == 21
    text = u.journal_text(sb, u.unit("crash"))
    assert "Deactivated successfully" not in text  # systemd may say "zombie": a race it loses
    assert "init exited with status 0" not in text


def test_a_reboot_inside_restarts_however_early(sb: Sandbox) -> None:
    u.make_busybox(sb, "early", ["lxc.init.cmd = /sbin/reboot -f"])
    sb.systemctl("daemon-reload")
    sb.systemctl("start", "--no-block", u.unit("early"))
    # Until systemd's default start limit (5 starts in 10 s) stops the loop. systemd's own
    # line (a death by SIGHUP is a clean end to it, so it does not log the status): there
    # is no ExecStopPost= here to say "init killed by SIGHUP: reboot".
    u.wait_for(lambda: journal_count(sb, "early", "Scheduled restart job") >= 3, 120,
               "three reboots")
    assert int(u.prop(sb, u.unit("early"), "NRestarts")) >= 3
    assert "code=exited" not in u.journal_text(sb, u.unit("early"))
    sb.systemctl("stop", u.unit("early"))


def leftovers(sb: Sandbox, name: str) -> list[str]:
    found = []
    if sb.run(["ip", "-o", "link", "show", "type", "veth"]).stdout.strip():
        found.append("a veth")
    if sb.run(["test", "-e", f"/run/lxcsd/{name}"], check=False).returncode == 0:
        found.append("the state directory")
    if sb.run(["test", "-e", f"/sys/fs/cgroup/machine.slice/lxc@{name}.service"],
              check=False).returncode == 0:
        found.append("the unit's cgroup")
    if name in sb.run(["machinectl", "list", "--no-legend"], check=False).stdout:
        found.append("the machine")
    if sb.run(["pgrep", "-f", "busybox init|/sbin/init"], check=False).stdout.strip():
        found.append("a container process")
    if f"/{name}/" in sb.run(["cat", "/proc/self/mountinfo"]).stdout:
        found.append("a mount")
    return found


def test_stop_during_start_ends_inactive_and_leaves_nothing(sb: Sandbox,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    u.make_busybox(sb, "race", ["lxc.net.0.type = veth", "lxc.net.0.flags = up"])
    sb.systemctl("daemon-reload")
    u.start(sb, "race")  # it starts and stops at all (and warms the caches)
    sb.systemctl("stop", u.unit("race"))
    outcomes = []
    for i in range(20):
        delay = i * 0.005
        sb.run(f"systemctl start --no-block lxc@race.service; sleep {delay}; "
               "systemctl stop lxc@race.service")
        props = u.show(sb, u.unit("race"), "ActiveState", "Result")
        outcomes.append((delay, props["ActiveState"], props["Result"], leftovers(sb, "race")))
    interrupted = journal_count(sb, "race", "stopped while starting")
    with capsys.disabled():
        print(f"\nstop during start: {interrupted} of 20 stops came while the helper was "
              "starting the container")
    assert [o for o in outcomes if o[1:] != ("inactive", "success", [])] == []
    assert interrupted >= 3  # the race was really run
    assert "Traceback" not in u.journal_text(sb, u.unit("race"))


# An init that sets its halt handler only after 0.2 s of its own start-up (a slow busybox
# init under load, exaggerated so that the window cannot be missed).
LATE_INIT = """#!/bin/sh
sleep 0.2
trap 'echo late-init halted; exit 0' USR1
echo late-init catches SIGUSR1
while :; do sleep 1 & wait; done
"""


def start_and_stop_late_init(sb: Sandbox, name: str, keys: list[str], exec_stop: bool) -> None:
    """A busybox container whose init is LATE_INIT (with ``keys``), its unit stopping with
    or without ExecStop=, started and stopped at once: the stop ends clean, and init's own
    halt line shows the halt signal reached it."""
    u.make_busybox(sb, name, ["lxc.init.cmd = /late-init", *keys])
    sb.write_file(f"/var/lib/lxc/{name}/rootfs/late-init", LATE_INIT, 0o755)
    dropin(sb, name, "[Service]\nTimeoutStopSec=15\n")
    sb.systemctl("daemon-reload")
    assert (u.prop(sb, u.unit(name), "ExecStop") not in ("", "{}")) is exec_stop
    u.start(sb, name)
    sb.systemctl("stop", u.unit(name))
    props = u.show(sb, u.unit(name), "ActiveState", "Result")
    assert props == {"ActiveState": "inactive", "Result": "success"}
    u.wait_for(lambda: journal_count(sb, name, "late-init halted"), 30,
               "init's own halt line")


def test_a_stop_right_after_the_start_reaches_an_init_slow_to_catch_the_halt_signal(
        sb: Sandbox) -> None:
    # The unit stops it with KillSignal= alone (no ExecStop=): the busybox configs'
    # lxc.signal.halt, SIGUSR1. A pid namespace's init
    # drops a signal from outside while its disposition is SIG_DFL: sent before the trap,
    # the halt would be lost and the stop would end in TimeoutStopSec's SIGKILL (Result
    # timeout). The start hands init over only once it catches the signal.
    start_and_stop_late_init(sb, "late", [], exec_stop=False)
    assert u.prop(sb, u.unit("late"), "KillSignal") == "10"  # SIGUSR1: the case at stake


def test_a_stop_from_exec_stop_right_after_the_start_waits_for_the_halt_handler(
        sb: Sandbox) -> None:
    # The same init with a stop hook, so ExecStop= stays and sends the halt itself: it too
    # sends it only once init catches it, or the stop would end in TimeoutStopSec's kill.
    start_and_stop_late_init(sb, "late2", ["lxc.hook.stop = /bin/true"], exec_stop=True)
    assert journal_count(sb, "late2", "stop timed out") == 0


def test_an_init_that_never_catches_the_halt_signal_is_named(sb: Sandbox) -> None:
    # The wait is bounded (lxcsd.runtime.catching.BOUND): the start goes on, and says why
    # a stop will take TimeoutStopSec=.
    u.make_busybox(sb, "deaf", ["lxc.init.cmd = /bin/sleep 1000"])
    sb.systemctl("daemon-reload")
    u.start(sb, "deaf")
    assert u.prop(sb, u.unit("deaf"), "ActiveState") == "active"
    assert journal_count(sb, "deaf", "init does not take signal 10") == 1
    sb.systemctl("kill", "-s", "KILL", u.unit("deaf"))
    u.wait_for(lambda: u.prop(sb, u.unit("deaf"), "ActiveState") != "active", 30,
               "the unit's end")
