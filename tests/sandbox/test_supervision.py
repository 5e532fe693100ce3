"""Supervision without an lxcsd process per container (docs/design.md, "Process design"),
under the sandbox's real systemd with lxcsd installed by packaging/install.sh.

What a user checks: `systemctl start` returns once the container's init runs (MainPID is
init, rooted in the container), `systemctl stop` halts busybox init and a Debian systemd
gracefully with the signal LXC would pick (from the config the container started with, not
an edited one; systemd sends it itself, KillSignal=, unless ExecStop= is needed: a stop
hook, a guest reporting its readiness, an init the generator cannot look at), `reboot`
inside gives a new init in the same active unit, `poweroff` inside
ends it inactive (not failed), an init exiting non-zero fails it, a SIGKILL of init or of
the helper half way leaves nothing behind (processes, cgroup leaves, mounts, state) and the
next start works, daemon-reload and a restart of lxcsd-console leave a running container
alone, and STATUS= shows in `systemctl status`.

These containers have nothing for ExecStopPost= to undo (docs/generator.md): systemd's own
lines say how they ended ("Deactivated successfully", "Main process exited, code=killed,
status=9/KILL"; nothing for an end SuccessExitStatus= or RestartForceExitStatus= expect),
and on this hybrid host lxcsd-console removes their cgroup v1 leaves once init has exited.

Busybox containers here use LXC's default signals (no lxc.signal.halt): busybox init halts on
SIGPWR, systemd blocks SIGRTMIN+3 and halts on it.
"""

from __future__ import annotations

import pytest

from tests.infra import e2e_util as u
from tests.infra import rootfs, v1cgroups
from tests.infra.sandbox import REPO_ROOT, Sandbox

SLICE = "/sys/fs/cgroup/machine.slice"
DONE = "Deactivated successfully"  # systemd's line for a unit that ended well
KILLED = "Main process exited, code=killed, status=9/KILL"


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Sandbox:
    return clean_lxcsd_sandbox


def busybox(sb: Sandbox, name: str, extra: tuple[str, ...] = ()) -> None:
    """A busybox container with LXC's default halt/reboot signals, generator run."""
    root = f"{u.LXCPATH}/{name}/rootfs"
    sb.run(["/usr/bin/python3", "-c",
            "import sys; sys.path.insert(0, sys.argv[1]);"
            "from tests.infra import rootfs; rootfs.busybox_rootfs(sys.argv[2], sys.argv[3])",
            str(REPO_ROOT), root, name])
    u.write_config(sb, name, [*u.base_config(name, root), *extra])
    sb.systemctl("daemon-reload")


def started(sb: Sandbox, name: str, extra: tuple[str, ...] = ()) -> int:
    busybox(sb, name, extra)
    u.start(sb, name)
    return u.main_pid(sb, name)


def journal_has(sb: Sandbox, name: str, text: str, timeout: float = 30.0) -> str:
    journal = [""]

    def seen() -> bool:
        journal[0] = u.journal_text(sb, u.unit(name))
        return text in journal[0]

    u.wait_for(seen, timeout, f"{text!r} in the journal of {u.unit(name)}")
    return journal[0]


def assert_nothing_left(sb: Sandbox, name: str, v1: bool = True) -> None:
    """No process, cgroup leaf, mount or state of the container anywhere in the sandbox; no
    cgroup v1 leaf either (v1: lxcsd-console removes them once init has exited; a helper
    killed before the hand-over leaves them to the next start)."""
    unit_dir = sb.path(f"{SLICE}/{u.unit(name)}")
    leaves = [p.name for p in unit_dir.iterdir() if p.is_dir()] if unit_dir.exists() else []
    assert leaves == [], f"cgroups left under {unit_dir}: {leaves}"
    procs = sb.run(f"grep -l '/{u.unit(name)}' /proc/[0-9]*/cgroup || true").stdout.split()
    assert procs == [], f"processes left in {u.unit(name)}: {procs}"
    mounts = [line for line in sb.run("cat /proc/1/mountinfo").stdout.splitlines()
              if f"{u.LXCPATH}/{name}/" in line]
    assert mounts == [], mounts
    assert not sb.path(f"/run/lxcsd/{name}").exists(), "state directory left"
    if v1:
        leaf = f"/lxc.payload.{name}"
        u.wait_for(lambda: not [c for c in v1cgroups.children(sb.cgroup_v1)
                                if c.endswith(leaf) or leaf + "/" in c], 10,
                   f"lxcsd-console removing the cgroup v1 leaves of {name}")


def assert_starts_again(sb: Sandbox, name: str) -> None:
    sb.systemctl("reset-failed", u.unit(name), check=False)
    u.start(sb, name)
    assert u.prop(sb, u.unit(name), "ActiveState") == "active"
    sb.systemctl("stop", u.unit(name))
    assert_nothing_left(sb, name)


def stat_id(sb: Sandbox, path: str) -> str:
    return sb.run(["stat", "-L", "-c", "%d:%i", path]).stdout.strip()


# ------------------------------------------------------------------------------------------


def test_ready_means_init_runs_in_the_container(sb: Sandbox) -> None:
    pid = started(sb, "rdy1")
    # Type=notify: `systemctl start` returned, so READY=1 came; MainPID is already init.
    assert u.prop(sb, "lxc@rdy1.service", "ActiveState") == "active"
    assert sb.run(["readlink", f"/proc/{pid}/exe"]).stdout.strip() == "/bin/busybox"
    assert sb.run(["cat", f"/proc/{pid}/comm"]).stdout.strip() == "init"
    assert stat_id(sb, f"/proc/{pid}/root/") == stat_id(sb, f"{u.LXCPATH}/rdy1/rootfs")
    assert u.in_container(sb, "rdy1", ["cat", "/proc/1/comm"]).strip() == "init"
    assert f'Status: "Running, init PID {pid}"' in u.status(sb, "lxc@rdy1.service")


def test_stop_halts_busybox_init_gracefully(sb: Sandbox) -> None:
    pid = started(sb, "stp1")
    journal_has(sb, "stp1", f"{rootfs.SYSINIT_LINE} on stp1")
    sb.systemctl("stop", "lxc@stp1.service")
    props = u.show(sb, "lxc@stp1.service", "ActiveState", "Result")
    assert props == {"ActiveState": "inactive", "Result": "success"}
    journal = journal_has(sb, "stp1", DONE)
    # SIGPWR (LXC's default for an init that does not block SIGRTMIN+3) sent by systemd
    # itself, no ExecStop= process nor ExecStopPost= one; busybox's own shutdown on the
    # console, then init's halt (SIGINT from the kernel), in that order.
    assert u.prop(sb, "lxc@stp1.service", "KillSignal") == "30"
    assert u.prop(sb, "lxc@stp1.service", "ExecStop") == ""
    assert u.prop(sb, "lxc@stp1.service", "ExecStopPost") == ""
    assert f"stopping: SIGPWR to init (pid {pid})" not in journal
    order = [rootfs.HALT_LINE, DONE]
    positions = [journal.find(text) for text in order]
    assert -1 not in positions and positions == sorted(positions), journal
    assert_nothing_left(sb, "stp1")


def test_deactivating_while_init_shuts_down(sb: Sandbox) -> None:
    # An init that takes a while to honour SIGPWR: systemd shows the unit deactivating,
    # waiting for init (stop-sigterm), until init ends by itself.
    slow = "lxc.init.cmd = /bin/sh -c \"trap 'sleep 3; exit 0' PWR; while :; do sleep 1; done\""
    started(sb, "sts1", (slow,))
    sb.systemctl("stop", "--no-block", "lxc@sts1.service")
    u.wait_for(lambda: u.show(sb, "lxc@sts1.service", "ActiveState", "SubState") == {
        "ActiveState": "deactivating", "SubState": "stop-sigterm"}, 10, "stop-sigterm")
    assert "deactivating (stop-sigterm)" in u.status(sb, "lxc@sts1.service")
    u.wait_state(sb, "lxc@sts1.service", {"inactive"})
    assert u.prop(sb, "lxc@sts1.service", "Result") == "success"
    assert_nothing_left(sb, "sts1")


def test_stop_halts_a_debian_systemd_gracefully(sb: Sandbox, debian_root: object) -> None:
    # A name no other test uses: the journal of the unit is searched from its beginning.
    u.make_debian(sb, "debstop")
    sb.systemctl("daemon-reload")
    u.start(sb, "debstop")
    pid = u.main_pid(sb, "debstop")
    journal_has(sb, "debstop", "Reached target multi-user.target", timeout=120)
    timeout_us = u.prop(sb, "lxc@debstop.service", "TimeoutStopUSec")
    sb.run(["systemctl", "stop", "lxc@debstop.service"], timeout=180)
    props = u.show(sb, "lxc@debstop.service", "ActiveState", "Result")
    assert props == {"ActiveState": "inactive", "Result": "success"}, timeout_us
    journal = journal_has(sb, "debstop", DONE)
    # systemd blocks SIGRTMIN+3 and halts on it; its own shutdown is on the console. The
    # console's last line and the helper's "init exited" come from two processes at the
    # same moment: either may reach the journal first.
    for order in ([f"lxcsd: debstop stopping: SIGRTMIN+3 to init (pid {pid})",
                   "Reached target shutdown.target", "Halting system."],
                  [f"lxcsd: debstop stopping: SIGRTMIN+3 to init (pid {pid})",
                   "lxcsd: debstop init exited", DONE]):
        positions = [journal.find(text) for text in order]
        assert -1 not in positions and positions == sorted(positions), journal
    # Within TimeoutStopSec: systemd never had to time out and kill.
    assert "timed out" not in journal and "Killing process" not in journal
    assert_nothing_left(sb, "deb1")


def test_reboot_inside_restarts_with_a_new_init(sb: Sandbox) -> None:
    first = started(sb, "rbt1")
    # busybox's reboot signals init, whose shutdown also kills this command: no check.
    u.in_container(sb, "rbt1", ["/sbin/reboot"], check=False)
    u.wait_for(lambda: u.prop(sb, "lxc@rbt1.service", "NRestarts") == "1", 30, "a restart")
    u.wait_state(sb, "lxc@rbt1.service", {"active"})
    second = u.main_pid(sb, "rbt1")
    assert second not in (0, first)
    journal = journal_has(sb, "rbt1", f"lxcsd: rbt1 running, init PID {second}")
    assert "Failed" not in journal  # SIGHUP (reboot inside) is RestartForceExitStatus=
    assert journal.count(f"{rootfs.SYSINIT_LINE} on rbt1") == 2
    assert u.in_container(sb, "rbt1", ["hostname"]).strip() == "rbt1"
    sb.systemctl("stop", "lxc@rbt1.service")
    assert_nothing_left(sb, "rbt1")


def test_poweroff_inside_ends_inactive_not_failed(sb: Sandbox) -> None:
    started(sb, "pwr1")
    u.in_container(sb, "pwr1", ["/sbin/poweroff"], check=False)
    assert u.wait_state(sb, "lxc@pwr1.service", {"inactive", "failed"}) == "inactive"
    props = u.show(sb, "lxc@pwr1.service", "Result", "NRestarts")
    assert props == {"Result": "success", "NRestarts": "0"}
    # SIGINT (poweroff inside) is SuccessExitStatus=: systemd says nothing of it
    assert "Main process exited" not in journal_has(sb, "pwr1", DONE)
    assert_nothing_left(sb, "pwr1")


def test_init_exiting_non_zero_fails_the_unit(sb: Sandbox) -> None:
    started(sb, "ext1", ('lxc.init.cmd = /bin/sh -c "sleep 1; exit 3"',))
    assert u.wait_state(sb, "lxc@ext1.service", {"inactive", "failed"}) == "failed"
    props = u.show(sb, "lxc@ext1.service", "Result", "ExecMainStatus")
    assert props == {"Result": "exit-code", "ExecMainStatus": "3"}
    assert "Main process exited, code=exited, status=3/NOTIMPLEMENTED" in \
        journal_has(sb, "ext1", "Failed with result 'exit-code'")
    assert_nothing_left(sb, "ext1")
    # Restart= policies see the failure: on-failure restarts it.
    sb.write_file("/run/systemd/system/lxc@ext1.service.d/restart.conf",
                  "[Service]\nRestart=on-failure\nRestartSec=0\n")
    sb.systemctl("daemon-reload")
    sb.systemctl("reset-failed", "lxc@ext1.service")
    u.start(sb, "ext1")
    u.wait_for(lambda: int(u.prop(sb, "lxc@ext1.service", "NRestarts") or 0) >= 1, 30,
               "a restart after the failure")
    sb.systemctl("stop", "lxc@ext1.service")
    assert_nothing_left(sb, "ext1")


def test_sigkill_of_init_leaves_nothing(sb: Sandbox) -> None:
    pid = started(sb, "kil1")
    sb.run(["kill", "-KILL", str(pid)])
    assert u.wait_state(sb, "lxc@kil1.service", {"inactive", "failed"}) == "failed"
    assert u.prop(sb, "lxc@kil1.service", "Result") == "signal"
    assert KILLED in journal_has(sb, "kil1", "Failed with result 'signal'")
    assert_nothing_left(sb, "kil1")
    assert_starts_again(sb, "kil1")


HOLD_HOOK = """#!/bin/sh
# Holds the helper in lxc.hook.start-host (init-to-be forked, cgroups made) while HOLD exists.
[ -e {dir}/hold ] || exit 0
touch {dir}/in-hook
exec sleep 120
"""


def test_sigkill_of_the_helper_half_way_leaves_nothing(sb: Sandbox) -> None:
    directory = f"{u.LXCPATH}/hlp1"
    sb.write_file(f"{directory}/hold-hook", HOLD_HOOK.format(dir=directory), 0o755)
    sb.write_file(f"{directory}/hold", "")
    busybox(sb, "hlp1", (f"lxc.hook.start-host = {directory}/hold-hook",))
    sb.systemctl("start", "--no-block", "lxc@hlp1.service")
    u.wait_for(lambda: sb.path(f"{directory}/in-hook").exists(), 30, "the start-host hook")
    helper = u.main_pid(sb, "hlp1")
    assert "lxcsd-helper" in sb.run(["cat", f"/proc/{helper}/cmdline"]).stdout
    payload = f"{SLICE}/lxc@hlp1.service/lxc.payload.hlp1"
    assert sb.run(["cat", f"{payload}/cgroup.procs"]).stdout.split(), "no init-to-be yet"
    sb.run(["kill", "-KILL", str(helper)])
    assert u.wait_state(sb, "lxc@hlp1.service", {"inactive", "failed"}) == "failed"
    assert KILLED in journal_has(sb, "hlp1", "Failed with result 'signal'")
    assert_nothing_left(sb, "hlp1", v1=False)  # its next start uses its cgroup v1 leaves
    sb.run(["rm", f"{directory}/hold"])
    assert_starts_again(sb, "hlp1")


def test_daemon_reload_and_console_restart_leave_a_container_running(sb: Sandbox) -> None:
    pid = started(sb, "kep1")
    before = u.show(sb, "lxc@kep1.service", "ActiveState", "MainPID", "InvocationID")
    sb.systemctl("restart", "lxcsd-console.service")
    sb.systemctl("daemon-reload")
    assert u.show(sb, "lxc@kep1.service", "ActiveState", "MainPID", "InvocationID") == before
    assert u.in_container(sb, "kep1", ["hostname"]).strip() == "kep1"
    # and it still stops cleanly, with its init's halt line reaching the journal through
    # the restarted console service
    sb.systemctl("stop", "lxc@kep1.service")
    assert rootfs.HALT_LINE in journal_has(sb, "kep1", DONE)
    assert before["MainPID"] == str(pid)
    assert_nothing_left(sb, "kep1")


def stop_timing_out(sb: Sandbox, name: str, keys: tuple[str, ...], kill_signal: str = ""
                    ) -> int:
    """A busybox container with ``keys`` and TimeoutStopSec=2, started and stopped; the stop
    times out (the unit ends failed). Init's pid."""
    busybox(sb, name, keys)
    sb.write_file(f"/run/systemd/system/lxc@{name}.service.d/timeout.conf",
                  "[Service]\nTimeoutStopSec=2\n")
    sb.systemctl("daemon-reload")
    if kill_signal:
        assert u.prop(sb, f"lxc@{name}.service", "KillSignal") == kill_signal
    u.start(sb, name)
    pid = u.main_pid(sb, name)
    sb.systemctl("stop", f"lxc@{name}.service", check=False)
    assert u.wait_state(sb, f"lxc@{name}.service", {"inactive", "failed"}) == "failed"
    return pid


DEAF = "lxc.init.cmd = /bin/sh -c \"trap '' PWR; while :; do sleep 1; done\""


def test_a_halt_that_never_comes_ends_with_the_stop_signal(sb: Sandbox) -> None:
    # An init ignoring SIGPWR (KillSignal=, no ExecStop=: the halt signal is known, and
    # lxc.signal.stop is unset, SIGKILL): after TimeoutStopSec systemd sends its final
    # SIGKILL, which is lxc.signal.stop, to init and the rest of the cgroup; nothing is left.
    pid = stop_timing_out(sb, "deaf1", (DEAF,))
    journal = journal_has(sb, "deaf1", "Failed with result 'timeout'")
    assert u.prop(sb, "lxc@deaf1.service", "KillSignal") == "30"  # SIGPWR: ignored
    assert "timed out" in journal and KILLED in journal
    assert str(pid) in journal
    assert_nothing_left(sb, "deaf1")


def test_a_halt_that_never_comes_ends_with_the_stop_signal_from_exec_stop(sb: Sandbox) -> None:
    # The same init with a stop hook, so ExecStop= stays (it runs the hook): after
    # TimeoutStopSec systemd sends KillSignal= (the template's SIGTERM) to the helper's
    # ExecStop=, which sends lxc.signal.stop (default SIGKILL) to init; nothing is left.
    pid = stop_timing_out(sb, "deaf2", (DEAF, "lxc.hook.stop = /bin/true"), kill_signal="15")
    journal = journal_has(sb, "deaf2", "stop timed out: SIGKILL to init")
    assert f"lxcsd: deaf2 stopping: SIGPWR to init (pid {pid})" in journal
    journal_has(sb, "deaf2", KILLED)
    assert_nothing_left(sb, "deaf2")


def test_a_halt_that_never_comes_ends_with_the_stop_signal_then_sigkill(sb: Sandbox) -> None:
    # lxc.signal.stop = SIGTERM and an init that takes neither it nor the halt signal (busybox
    # sleep, no handler: a pid namespace's init drops both). ExecStop= sends SIGPWR, and on
    # TimeoutStopSec's SIGTERM sends lxc.signal.stop, as lxc-stop; init survives both, and
    # systemd's final SIGKILL (never replaced by FinalKillSignal=lxc.signal.stop, which would
    # leave init running in its cgroup) ends it. The unit ends failed, Result=timeout: the
    # stop did time out, twice (the halt, then lxc.signal.stop).
    pid = stop_timing_out(sb, "deaf3", ("lxc.init.cmd = /bin/sleep 100000",
                                        "lxc.signal.stop = SIGTERM"))
    assert u.prop(sb, "lxc@deaf3.service", "Result") == "timeout"
    assert not sb.path(f"/proc/{pid}").exists(), f"init (pid {pid}) outlived the stop"
    assert_nothing_left(sb, "deaf3")
    journal = journal_has(sb, "deaf3", KILLED)
    assert f"lxcsd: deaf3 stopping: SIGPWR to init (pid {pid})" in journal
    assert "stop timed out: SIGTERM to init" in journal
    assert u.prop(sb, "lxc@deaf3.service", "FinalKillSignal") == "9"


STOP_HOOK = """#!/bin/sh
# lxc.hook.stop: what it was given (hook version 0 arguments), and what the references are.
out={dir}/stop-hook.out
echo "args: $*" > $out
for a in "$@"; do
  case "$a" in *:/proc/*) echo "${{a%%:*}} $(readlink "${{a#*:}}")" >> $out;; esac
done
echo "target: $LXC_TARGET" >> $out
"""


def test_stop_hook_reaches_the_stopped_containers_namespaces(sb: Sandbox) -> None:
    directory = f"{u.LXCPATH}/shk1"
    sb.write_file(f"{directory}/stop-hook", STOP_HOOK.format(dir=directory), 0o755)
    pid = started(sb, "shk1", (f"lxc.hook.stop = {directory}/stop-hook",))
    namespaces = {ns: sb.run(["readlink", f"/proc/{pid}/ns/{ns}"]).stdout.strip()
                  for ns in ("net", "uts", "mnt", "pid")}
    sb.systemctl("stop", "lxc@shk1.service")
    lines = sb.path(f"{directory}/stop-hook.out").read_text().splitlines()
    assert lines[0].startswith("args: shk1 lxc stop "), lines
    seen = dict(line.split(" ", 1) for line in lines[1:-1])
    for ns, link in namespaces.items():  # init is gone, its namespaces still reachable
        assert seen[ns] == link, (ns, lines)
    assert lines[-1] == "target: stop"
    assert_nothing_left(sb, "shk1")


def test_stop_uses_the_halt_signal_the_container_started_with(sb: Sandbox) -> None:
    # LXC stops a container with the config it started with: an lxc.signal.halt edited
    # while it runs takes effect at the next start, not at this stop.
    init = ("lxc.init.cmd = /bin/sh -c \"trap 'echo USR1 > /halted-by; exit 0' USR1; "
            "trap 'echo USR2 > /halted-by; exit 0' USR2; while :; do sleep 1; done\"")
    started(sb, "hsig1", (init, "lxc.signal.halt = SIGUSR1"))
    root = f"{u.LXCPATH}/hsig1/rootfs"
    config = f"{u.LXCPATH}/hsig1/config"
    edited = sb.path(config).read_text().replace("SIGUSR1", "SIGUSR2")
    sb.write_file(config, edited)
    sb.systemctl("daemon-reload")  # the generator keeps what the running container needs
    assert u.prop(sb, "lxc@hsig1.service", "KillSignal") == "10"
    sb.systemctl("stop", "lxc@hsig1.service")
    assert u.prop(sb, "lxc@hsig1.service", "Result") == "success"
    assert sb.run(["cat", f"{root}/halted-by"]).stdout == "USR1\n"
    # the next start is the edited config's: its unit is reloaded before it is ready
    u.start(sb, "hsig1")
    assert u.prop(sb, "lxc@hsig1.service", "KillSignal") == "12"
    sb.systemctl("stop", "lxc@hsig1.service")
    assert sb.run(["cat", f"{root}/halted-by"]).stdout == "USR2\n"
    assert_nothing_left(sb, "hsig1")


def test_a_stop_hook_added_without_daemon_reload_still_runs(sb: Sandbox) -> None:
    # The unit of a container without stop hooks has no ExecStop=; a hook added to the
    # config afterwards (no daemon-reload) makes the start reload systemd before it is
    # ready, and the stop runs it.
    directory = f"{u.LXCPATH}/late1"
    started(sb, "late1")
    assert u.prop(sb, "lxc@late1.service", "ExecStop") == ""
    sb.systemctl("stop", "lxc@late1.service")
    sb.write_file(f"{directory}/stop-hook", STOP_HOOK.format(dir=directory), 0o755)
    config = sb.path(f"{directory}/config").read_text()
    sb.write_file(f"{directory}/config", config + f"lxc.hook.stop = {directory}/stop-hook\n")
    u.start(sb, "late1")
    assert "lxcsd-helper stop" in u.prop(sb, "lxc@late1.service", "ExecStop")
    journal = journal_has(sb, "late1", "changed since systemctl daemon-reload")
    assert "reloading systemd" in journal
    sb.systemctl("stop", "lxc@late1.service")
    assert sb.path(f"{directory}/stop-hook.out").read_text().startswith("args: late1 lxc stop")
    assert_nothing_left(sb, "late1")
