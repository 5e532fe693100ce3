"""``lxcsd-helper start NAME``: H, the helper's host side (docs/design.md, "Process design").

    1. load the start plan: the generator's compiled one when it is fresh
       (lxcsd.runtime.planfile), else compiled now from the config (a ConfigError fails
       the unit at once, with file:line);
    2. cgroups under the unit's delegated cgroup: make ``lxc.monitor.NAME`` (and move into
       it only when lxc.cgroup2.* needs controllers enabled: a migration costs ~10 ms here),
       make ``lxc.payload.NAME``, write the values;
    3. fork C1 right into the payload (clone3 CLONE_INTO_CGROUP); [write its id maps];
       C1 forks C2, init-to-be (``child``);
    4. from the host while C2 builds the root: cgroup v1 leaves, network devices; once the
       root is built: prlimits, lxc.proc.*, start-host hooks; then tell C2 to exec init
       and, while it does, hand the console masters to lxcsd-console (which watches init's
       pidfd);
    5. EOF on the exec report pipe = init runs: state file; for a guest with a notify socket
       (lxcsd.init.notify, systemd by default) machined registration and its READY=1
       (``ready``); otherwise, when the unit stops it with KillSignal= alone, until init
       takes the halt signal (lxcsd.runtime.catching); then ``MAINPID=`` (only if init
       is still alive: ``handover``), ``READY=1``, ``STATUS=``, ``BARRIER=1``; machined
       registration (after READY=1, off the critical path, in a child born in the monitor
       leaf), exit 0; or, when init has ended already, end as init did (``init_ended``,
       ``ready.exit_as``).

Init's parent until the hand-over: H (its subreaper) for a guest that reports its
readiness, since H must reap it while it boots; otherwise C1, which holds it until H
releases it (``release_init``, lxcsd.runtime.child.hold_init), so that init is systemd's
own child when it becomes the main process: systemd then waits for the halt signal it
sends as KillSignal= instead of SIGKILLing an "alien" main process at once. C1 lets it go
stopped (SIGSTOP), and H continues it once systemd took it, so that it cannot end unseen
in between. Either way an init that ends before the hand-over ends the unit with init's
status.

On any failure: one message naming the step and key on stderr (the unit's journal) and in
STATUS=, the container's processes killed, the cgroup leaves removed, exit status 1. Mounts
exist only in the container's mount namespace, so they vanish with its processes.

A stop while the helper is still the unit's main process reaches it as ``KillSignal=``
(the template's SIGTERM, or the halt signal the drop-in makes it: ``stop_signals``): the
start is undone the same way and the helper exits 0, so the unit ends inactive, not failed;
ExecStopPost=, when the unit has it, cleans up after it as after any end.

Hot path: imports stay light (no typing, re, subprocess...); pyroute2 only through
``lxcsd.net.setup`` for networks that need netlink. ``LXCSD_START_TIMING=1`` prints a
breakdown of the start (perf_counter marks) to stderr.
"""

from __future__ import annotations

import errno
import os
import sys
import time

from lxcsd import linux
from lxcsd.errors import ConfigError, LxcsdError
from lxcsd.runtime import cgroup, cgroup_v1, child, exec_sync, state
from lxcsd.systemd import sdnotify

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # typeshed has no _signal; signal's functions are the same
    from collections.abc import Mapping
    from typing import NoReturn

    from lxcsd.console.handoff import LxcPublish
    from lxcsd.runtime.apparmor import Load
    from lxcsd.runtime.plan import StartPlan
else:
    import _signal  # not signal: it imports enum (see lxcsd.runtime.exec_sync)


def log(message: str) -> None:
    sys.stderr.write(f"lxcsd: {message}\n")
    sys.stderr.flush()


class Marks:
    """perf_counter marks of the start, printed with LXCSD_START_TIMING=1."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("LXCSD_START_TIMING"))
        self.last = self.first = time.perf_counter()
        self.parts: list[str] = []

    def mark(self, what: str) -> None:
        if self.enabled:
            now = time.perf_counter()
            self.parts.append(f"{what} {(now - self.last) * 1000:.2f}")
            self.last = now

    def report(self) -> None:
        if self.enabled:
            total = (time.perf_counter() - self.first) * 1000
            log("timing ms: " + ", ".join(self.parts) + f", total {total:.2f}")


class StopDuringStart(BaseException):
    """systemd's stop (the unit's KillSignal=) came while the helper was the main process."""


_armed = [True]  # the first stop interrupts; later ones would interrupt the undoing


def _on_stop(signum: int, frame: object) -> None:
    if _armed[0]:
        _armed[0] = False
        raise StopDuringStart


def stop_signals(env: Mapping[str, str]) -> tuple[int, ...]:
    """The signals systemd's stop sends the main process: the template's KillSignal=SIGTERM,
    or the halt signal when the drop-in makes it KillSignal= (no ExecStop=, LXCSD_STOP
    says so: lxcsd.generator.render.stop_lines). Whichever it is (SIGPWR, SIGRTMIN+3,
    lxc.signal.halt), it reaches the helper while the helper is still the main process,
    and means a stop during the start."""
    unit = state.parse_stop(env.get("LXCSD_STOP", ""))
    if unit is not None and not unit["exec_stop"] and unit["halt"] \
            and unit["halt"] != _signal.SIGTERM:
        return (_signal.SIGTERM, unit["halt"])
    return (_signal.SIGTERM,)


STOP_SIGNALS: list[int] = [_signal.SIGTERM]  # main() sets them from the environment


def _hold_stop() -> None:
    """No (further) interruption: undoing, or handed over (systemd SIGKILLs after
    TimeoutStopSec if it must)."""
    _armed[0] = False
    for signum in STOP_SIGNALS:
        _signal.signal(signum, _signal.SIG_IGN)


def main(instance: str) -> int:
    STOP_SIGNALS[:] = stop_signals(os.environ)
    for signum in STOP_SIGNALS:
        _signal.signal(signum, _on_stop)
    starter: Starter | None = None
    name = instance
    try:
        marks = Marks()
        try:
            plan = load_plan(instance)
        except ConfigError as err:
            return fail(str(err))
        name = plan.name
        marks.mark("plan")
        try:
            command = claim_command_socket(plan)  # before anything is touched
        except LxcsdError as err:
            return fail(str(err))
        starter = Starter(plan, marks, command)
        return build_and_hand_over(plan, starter)
    except StopDuringStart:  # wherever it came: the start so far undone, once
        _hold_stop()
        if starter is not None:
            starter.undo()
        return stopped(name)


def build_and_hand_over(plan: StartPlan, starter: Starter) -> int:
    try:
        log(f"starting {plan.name} (rootfs {plan.rootfs.spec})")
        for note in plan.notes:
            log(f"warning: {note}")
        init_pid = starter.run()
        _hold_stop()  # handed over: a stop now goes to init through ExecStop=
    except LxcsdError as err:
        _hold_stop()
        starter.undo()
        return fail(f"{plan.name}: {err}")
    except BaseException:
        _hold_stop()
        starter.undo()
        raise
    starter.marks.report()
    return 0 if init_pid else 1


def stopped(name: str) -> int:
    log(f"{name} stopped while starting: start undone")
    sdnotify.notify("STATUS=Stopped while starting")
    return 0


def init_status(pid: int) -> int | None:
    """init's wait status if it has ended, None while it runs. Not reaped (WNOWAIT): if
    systemd took it as main process meanwhile, systemd reaps it with its real status."""
    result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if result is None or result.si_pid == 0:
        return None
    return child.wait_status(result)


def zombie_status(pid: int, pidfd: int) -> int | None:
    """For an init that is not our child (systemd's since C1 let it go): None while it
    runs; once it ended, its wait status: from its pidfd once systemd reaped it (Linux
    6.15's PIDFD_INFO_EXIT), from /proc/PID/stat (exit_code, the 52nd field) while it is a
    zombie; 1 << 8 (a failure) when neither tells (an older kernel, after the reaping)."""
    import select

    if not select.select([pidfd], [], [], 0)[0]:
        return None
    for _ in range(2):  # reaped between the two reads: the pidfd has it then
        status = linux.pidfd_exit_status(pidfd)
        if status is not None:
            return status
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
            return int(fields[49])  # field 52; fields here start at the 3rd
        except (OSError, IndexError, ValueError):
            continue
    return 1 << 8


def init_ended(name: str, wstatus: int, before: str, during: str) -> NoReturn:
    """Init ended before systemd took it as main process: end as it did (ready.exit_as),
    so the unit's result, Restart=, SuccessExitStatus= and RestartForceExitStatus= see
    init's status, not ours. A reboot, poweroff or exit 0 from inside completes the start
    first, so the unit restarts or ends inactive as for a running container; a crash fails
    the start."""
    from lxcsd.runtime import ready

    _hold_stop()  # nothing left to undo: a stop now must not turn this into "stopped"
    what = ready.describe(wstatus)
    log(f"{name}: init {what} {before}")
    if ready.clean_end(wstatus):
        sdnotify.notify(f"READY=1\nSTATUS=Init {what} {during}")
        sdnotify.notify_barrier()
    else:
        sdnotify.notify(f"STATUS=Failed: init {what} {during}")
    ready.exit_as(wstatus)


def fail(message: str) -> int:
    log(f"error: {message}")
    sdnotify.notify(f"STATUS=Failed: {message}")
    return 1


def claim_command_socket(plan: StartPlan) -> int:
    """liblxc's command socket of the container, bound now: lxc-start then refuses it, and
    a container lxc-start runs is refused here (lxcsd.liblxc.owner). lxcsd-console answers
    it once init runs (hand_over_console)."""
    from lxcsd.liblxc import owner

    return owner.claim(plan.lxcpath, plan.name)


def load_plan(instance: str) -> StartPlan:
    """The compiled plan (lxcsd.runtime.planfile) when it is fresh; else the plan compiled
    now from the config as it is, and written back for the next start."""
    from lxcsd.runtime import planfile

    plan = planfile.read(instance)
    return plan if plan is not None else compile_plan(instance)


def compile_plan(instance: str) -> StartPlan:
    """The config read and the plan made now (the config reader's import and the parse,
    ~10-15 ms): after an edit since daemon-reload, or a container the generator did not
    see. A plan file that cannot be written costs the next start the same again."""
    from lxcsd import paths
    from lxcsd.config.load import find_container
    from lxcsd.config.names import unescape
    from lxcsd.runtime import compiler, planfile

    name = unescape(instance)
    plan, data = compiler.compile_file(name, find_container(name), datadir=paths.datadir())
    try:
        planfile.write(instance, data)
    except OSError as exc:
        log(f"warning: {planfile.plan_path(instance)} not written: {exc.strerror}")
    return plan


class Starter:
    """H's state during one start, so that ``undo`` knows what to take back."""

    def __init__(self, plan: StartPlan, marks: Marks, command: int = -1) -> None:
        self.plan = plan
        self.marks = marks
        self.command = command  # the bound liblxc command socket
        self.unit_dir = ""
        self.monitor = ""
        self.payload = ""
        self.init_cgroup = ""
        self.v1: list[cgroup_v1.Leaf] = []
        self.enabled: list[str] = []
        self.c1 = 0
        self.pidfd = -1
        self.init_pid = 0
        self.ifaces: list[str] = []
        self.masters: list[int] = []
        self.born_in_payload = False
        self.moved = False
        self.registered = False
        self.aa_load: Load | None = None
        self.aa_loaded = False
        self.notify_fd = -1  # the guest's notify socket (lxcsd.runtime.ready)
        self.release_w = self.status_r = -1  # C1's hold on init (hold_pipes)
        self.init_stopped = False  # by C1 as it let init go, until systemd took it
        self.undone = False

    # -- the steps, in order ------------------------------------------------------------

    def run(self) -> int:
        plan = self.plan
        if plan.subreaper:  # C2 comes back to us when C1 exits; else to PID 1 (systemd)
            linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        if plan.rootfs.kind == "overlay":
            _step(f"lxc.rootfs.mount {plan.rootfs_mount}", os.makedirs, plan.rootfs_mount,
                  0o755, exist_ok=True)
        self.cgroups()
        self.marks.mark("cgroups")
        self.host_hooks("pre-start")
        if plan.apparmor is not None:
            self.start_apparmor()
        self.prepare_guest()
        share_fds = self.open_shared()
        sync, report = exec_sync.Sync(), exec_sync.Report()
        linger = self.hold_pipes() if not plan.subreaper else None
        self.c1 = self.fork_c1()
        if self.c1 == 0:
            for signum in STOP_SIGNALS:  # systemd's stop is H's
                _signal.signal(signum, _signal.SIG_DFL)
            for fd in (self.release_w, self.status_r) if linger else ():
                os.close(fd)  # H's ends: C1 sees EOF on release when H closes its end
            sync.child_side()
            report.child_side()
            child.c1_main(plan, sync, report, share_fds, bool(self.v1), linger)
        for fd in linger or ():
            os.close(fd)
        sync.parent_side()
        report.parent_side()
        for _, fd in share_fds:
            os.close(fd)
        try:
            self.sync_with_children(sync)
        except LxcsdError:
            message = self.child_message(report)
            if message:
                raise LxcsdError(message) from None
            raise
        finally:
            sync.close()
        message = report.result()
        self.marks.mark("init exec'd")
        if message is not None:
            raise LxcsdError(message)
        self.running()
        return self.init_pid

    def fork_c1(self) -> int:
        """C1, born in the payload cgroup (clone3 CLONE_INTO_CGROUP: a migration afterwards
        would cost ~10 ms); fork and move on kernels without it (< 5.7)."""
        fd = os.open(self.init_cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        pid = -1
        try:
            pid = linux.fork_into_cgroup(fd)
            self.born_in_payload = True
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.E2BIG):
                raise LxcsdError(f"cannot fork into {self.init_cgroup}: {exc.strerror}") \
                    from None
            pid = os.fork()
        finally:
            if pid != 0:
                os.close(fd)
        return pid

    def child_message(self, report: exec_sync.Report) -> str | None:
        """After a sync failure: the child's own report, if it wrote one (then exited)."""
        self.kill_children()
        return report.result()

    def cgroups(self) -> None:
        plan = self.plan
        self.unit_dir = cgroup.own_cgroup_dir()
        self.monitor = _step("cgroup lxc.monitor", _make_leaf, self.unit_dir,
                             plan.monitor_dir, True)
        if plan.controllers:
            # Only now: controllers can be enabled for the unit's cgroup only once no
            # process is in it, and the migration costs ~10 ms (an RCU grace period).
            _step(f"cgroup: move the helper into {self.monitor}", cgroup.move, os.getpid(),
                  self.monitor)
            self.moved = True
        self.payload = _step("cgroup lxc.payload", _make_leaf, self.unit_dir,
                             plan.payload_dir, False)
        self.enable_controllers()
        for setting in plan.cgroup_settings:
            _step(f"{setting.path}:{setting.line}: lxc.cgroup2.{setting.key}", cgroup.write,
                  self.payload, setting.key, setting.value)
        self.init_cgroup = self.payload
        if plan.inner_dir:
            self.init_cgroup = _step("lxc.cgroup.dir.container.inner", cgroup.create,
                                     self.payload, plan.inner_dir)
            if plan.controllers:  # usable by the container (a systemd inside) below it
                _step("cgroup: enable controllers for lxc.cgroup.dir.container.inner",
                      cgroup.enable_controllers, self.payload, plan.controllers)
        if plan.userns:
            _step("cgroup: delegate the container's cgroup to its root",
                  cgroup.chown_delegated, self.init_cgroup, plan.root_uid, plan.root_gid)
        self.v1 = self.v1_leaves()

    def v1_leaves(self) -> list[cgroup_v1.Leaf]:
        """The payload's leaf in each cgroup v1 hierarchy (lxcsd.runtime.cgroup_v1): a
        privileged container must not see a hierarchy's root (release_agent), so failing
        to make one fails its start; an unprivileged one could only read the host's tree,
        a warning."""
        try:
            return cgroup_v1.make_leaves(self.plan.payload_dir)
        except LxcsdError as exc:
            if not self.plan.userns:
                raise LxcsdError(f"{exc}", "a privileged container left in the host's cgroup "
                                 "v1 root could rewrite its release_agent") from None
            log(f"warning: {exc}: the container sees the host's cgroup v1 tree (read-only)")
            return []

    def enable_controllers(self) -> None:
        """Enable the controllers lxc.cgroup2.* needs on the way from the unit's cgroup to
        the payload. One that is missing fails the start naming its keys, as LXC fails
        ("Failed to set memory.max"): a limit is never silently dropped. (The plan checked
        the hierarchy has it; here the unit's cgroup may still lack it: not delegated.)"""
        plan = self.plan
        if not plan.controllers:
            return
        parents = [self.unit_dir]
        rel = os.path.relpath(self.payload, self.unit_dir).split("/")[:-1]
        for part in rel:
            parents.append(os.path.join(parents[-1], part))
        for directory in parents:
            missing = _step(f"cgroup: enable controllers in {directory}",
                            cgroup.enable_controllers, directory, plan.controllers)
            if directory == self.unit_dir:
                self.enabled = [c for c in plan.controllers if c not in missing]
            if missing:
                keys = ", ".join(f"{s.path}:{s.line}: lxc.cgroup2.{s.key}"
                                 for s in plan.cgroup_settings
                                 if child_controller(s.key) in missing)
                raise LxcsdError(f"{keys}: cannot apply: the cgroup2 controller(s) "
                                 f"{' '.join(missing)} not available in {directory}",
                                 "is the unit's cgroup delegated (Delegate=yes)?")

    def open_shared(self) -> list[tuple[str, int]]:
        """lxc.namespace.share.NAME = PID | container name | path: opened here (the
        container's name through its state file), joined by C1."""
        fds = []
        for name, value in self.plan.share.items():
            path = _share_path(name, value)
            try:
                fds.append((name, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            except OSError as exc:
                for _, fd in fds:
                    os.close(fd)
                raise LxcsdError(f"lxc.namespace.share.{name} = {value}: cannot open {path}: "
                                 f"{exc.strerror}") from None
        return fds

    def sync_with_children(self, sync: exec_sync.Sync) -> None:
        plan = self.plan
        if not self.born_in_payload:
            _step(f"cgroup: move the container into {self.init_cgroup}", cgroup.move,
                  self.c1, self.init_cgroup)
        sync.wake(child.SYNC_CGROUP)
        if plan.userns:
            sync.wait(child.SYNC_USERNS)
            fds = self.write_maps()
            sync.wake(child.SYNC_MAPS, fds)
            for fd in fds:
                os.close(fd)
        # C1 exits right after this point; it is reaped once init runs (running), not now:
        # its exit (a Python process's address space) takes up to a few ms.
        (self.pidfd,) = sync.wait(child.SYNC_FORKED, 1)
        self.init_pid = _pid_of_pidfd(self.pidfd)
        self.marks.mark("namespaces")
        if self.v1:  # while C2 builds the root; it makes the cgroup namespace after this
            _step("cgroup v1", cgroup_v1.move, self.v1, self.init_pid)
            sync.wake(child.SYNC_V1)
            self.marks.mark("cgroup v1")
        self.network()
        nmasters = (1 if plan.console else 0) + plan.tty_max
        masters = sync.wait(child.SYNC_BUILT, nmasters)
        self.marks.mark("root built")
        self.keep_notify_if_bound()
        self.masters = masters
        self.before_exec()
        sync.wake(child.SYNC_GO)
        # While C2 pivots, drops privileges and execs (~2 ms): init-to-be is the process
        # the console service will watch, so the hand-over need not wait for the exec.
        self.hand_over_console()
        self.marks.mark("console")

    def write_maps(self) -> list[int]:
        """The maps (the plan checked /etc/subuid and /etc/subgid delegate them)."""
        from lxcsd.runtime import idmap

        plan = self.plan
        deny = idmap.must_deny_setgroups()
        _step("lxc.idmap: writing the maps", idmap.write_maps, self.c1, plan.uids, plan.gids,
              deny_setgroups=deny)
        if not plan.rootfs.idmapped:
            return []
        from lxcsd.runtime import mounts

        userns = os.open(f"/proc/{self.c1}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return [_step("lxc.rootfs.options idmap=container", mounts.idmapped_tree,
                          plan.rootfs.path, userns)]
        finally:
            os.close(userns)

    def network(self) -> None:
        plan = self.plan
        if not plan.has_netlink:
            return
        from lxcsd import net

        self.ifaces = _step("lxc.net", net.setup, plan.networks, self.init_pid,
                            state.state_dir(plan.name))
        self.marks.mark("network")

    def start_apparmor(self) -> None:
        """lxc.apparmor.profile = generated: write, record and start loading the profile;
        apparmor_parser runs while the children build the root (``wait_apparmor``)."""
        from lxcsd.runtime import apparmor

        self.aa_loaded = True  # from here on, undo unloads (the record says what)
        self.aa_load = _step("lxc.apparmor.profile = generated", apparmor.start_load,
                             state.state_dir(self.plan.name), self.plan.apparmor)

    def wait_apparmor(self) -> None:
        if self.aa_load is not None:
            load, self.aa_load = self.aa_load, None
            _step("lxc.apparmor.profile = generated", load.wait)
            self.marks.mark("apparmor")

    def before_exec(self) -> None:
        """With C2 waiting at point 5: the generated AppArmor profile loaded (C2 applies it
        at exec), prlimits and lxc.proc.* on init-to-be (it is still ours, so nothing it
        runs escapes them), then the start-host hooks."""
        self.wait_apparmor()
        plan = self.plan
        if plan.prlimits or plan.procs:
            limits = child.optional_module("limits", "lxc.prlimit.*, lxc.proc.*")
            _step("lxc.prlimit", limits.apply_prlimits, plan.prlimits, self.init_pid)
            _step("lxc.proc", limits.apply_proc, plan.procs, self.init_pid)
        self.host_hooks("start-host")

    def host_hooks(self, hook: str) -> None:
        hookset = self.plan.hooks
        if hookset is None or not hookset.has(hook):
            return
        hooks = child.optional_module("hooks", f"lxc.hook.{hook}")
        env = {"LXC_PID": str(self.init_pid)} if self.init_pid else None
        _step(f"lxc.hook.{hook}", hooks.run, hookset, hook, rootfs_mount=self.plan.rootfs_mount,
              extra_env=env)

    def running(self) -> None:
        """Init runs: record it, tell systemd (for a notifying guest once it is ready), then
        what need not hold `systemctl start` up: machined."""
        self.record_state()
        self.check_unit_stop()
        self.close_masters()  # the console service has its copies (or there is none)
        for leaf in self.v1:
            leaf.close()
        if self.plan.subreaper:
            os.waitpid(self.c1, 0)  # long gone: C2 waited for its exit before point 4
            self.c1 = 0
        self.marks.mark("state")
        self.handover()
        self.marks.mark("notify")
        os.close(self.pidfd)
        self.pidfd = -1
        if not self.registered:
            self.register_machine_after()
            self.marks.mark("machined forked")

    def register_machine_after(self) -> None:
        """machined registration after READY=1: `systemctl start` has returned, machined's
        D-Bus round trip (3-30 ms here, more while it is activated) costs it nothing;
        `machinectl` lists the container a moment later. In a child born in the monitor
        leaf (clone3, no migration), not here: we are in the unit's own cgroup (a move
        costs ~10 ms, ``cgroups``), where a delegated cgroup must hold no process once the
        start is done, and we exit now. The child is not waited for: systemd reaps it (or
        the next subreaper does); a stop SIGKILLs it with the rest (KillMode=mixed)."""
        fd = os.open(self.monitor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            pid = linux.fork_into_cgroup(fd)
        except OSError:
            pid = -1  # no clone3 into a cgroup (< 5.7): register from here, as before
        finally:
            os.close(fd)
        if pid > 0:
            return
        if pid == 0:
            for signum in STOP_SIGNALS:  # a stop ends it: machined forgets the unit anyway
                _signal.signal(signum, _signal.SIG_DFL)
        try:
            self.register_machine()
        finally:
            if pid == 0:
                sys.stderr.flush()
                os._exit(0)

    def record_state(self) -> None:
        """The state file (lxcsd.runtime.state), and the hooks stop and cleanup will run."""
        plan, pid = self.plan, self.init_pid
        state.write(plan.name, {
            "name": plan.name, "init_pid": pid, "rootfs_mount": plan.rootfs_mount,
            "config": plan.config_path, "payload_cgroup": self.payload,
            "init_cgroup": self.init_cgroup,
            "monitor_cgroup": self.monitor, "ifaces": list(self.ifaces),
            "cgroup_v1_leaf": self.plan.payload_dir if self.v1 else "",
            "userns": int(plan.userns),
            **plan.state_fields,  # stop and cleanup act on these
            "stop": state.format_stop(plan.stop),  # the generator keeps it while running
            **_label_fields(plan)})  # attach applies the same labels
        if plan.hooks is not None and (plan.hooks.has("stop") or plan.hooks.has("post-stop")):
            state.write_hooks(plan.name, plan.hooks)

    def check_unit_stop(self) -> None:
        """The unit's drop-in says how systemd stops the container (LXCSD_STOP, from the
        config at the last daemon-reload); when this start's config needs more (a stop
        hook, another halt signal, something for ExecStopPost= to undo), systemd is asked
        to reload before READY=1, so that a stop right after the start finds the unit
        right: the generator writes the drop-in from what this start recorded. Only after
        an edit without daemon-reload (~0.2 s here, generators included)."""
        unit = state.parse_stop(os.environ.get("LXCSD_STOP", "")) or state.TEMPLATE_STOP
        need = self.plan.stop
        if not need or not unit_stop_differs(unit, need):
            return
        log(f"{self.plan.name}: the config changed since systemctl daemon-reload (how to stop "
            f"it: {state.format_stop(need)}, the unit: {state.format_stop(unit)}); "
            "reloading systemd")
        if not need["exec_stop"] and need["halt"] not in STOP_SIGNALS:
            # After the reload, KillSignal= is this halt signal: still a stop during start.
            STOP_SIGNALS.append(need["halt"])
            _signal.signal(need["halt"], _on_stop)
        from lxcsd.systemd import sdbus

        try:
            sdbus.bus_call("org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                           "org.freedesktop.systemd1.Manager", "Reload", [], 60_000_000)
        except (OSError, sdbus.BusError) as exc:
            log(f"warning: {self.plan.name}: daemon-reload failed ({exc}); run "
                "'systemctl daemon-reload' before stopping it")

    def handover(self) -> None:
        """For a notifying guest, first its READY=1 (``wait_for_guest``). Then MAINPID= only
        for a live init: systemd refuses a zombie ("does not exist or is a zombie") and
        would keep us as main process, ending the unit with our status. If init ended
        before, we end as it did (``init_ended``); if it ended while systemd took the
        message, too: whichever of us systemd holds as main process, the unit then sees
        init's status (systemd reaps init if it took it: we never reap it here)."""
        plan, pid = self.plan, self.init_pid
        status = f"Running, init PID {pid}"
        if self.notify_fd >= 0:
            self.register_machine()  # while the guest boots: off the critical path anyway
            status = self.wait_for_guest(status)
        else:
            self.wait_for_halt_handler()
        if plan.subreaper:
            ended = init_status(pid)
        else:  # C1 lets init go; it may end just after, as systemd's child
            ended = self.release_init()
            ended = ended if ended is not None else zombie_status(pid, self.pidfd)
        if ended is not None:
            init_ended(plan.name, ended, "before the hand-over", "before the hand-over")
        log(f"{plan.name} running, init PID {pid}")
        try:
            sdnotify.notify(f"MAINPID={pid}\nREADY=1\nSTATUS={status}")
            sdnotify.notify_barrier()
        finally:
            self.continue_init()  # systemd's main process now (or we failed: undo kills it)
        ended = init_status(pid) if plan.subreaper else zombie_status(pid, self.pidfd)
        if ended is None:
            _hold_stop()  # init is the main process: systemd's stop is for it
        else:  # main process now (systemd took it) or still us (a zombie)
            from lxcsd.runtime import ready

            _hold_stop()
            log(f"{plan.name}: init {ready.describe(ended)} during the hand-over")
            ready.exit_as(ended)

    def wait_for_halt_handler(self) -> None:
        """When the unit stops the container with KillSignal= alone (the halt signal, no
        ExecStop=), init is handed over only once it catches that signal: a stop at once
        after the start would be lost otherwise (lxcsd.runtime.catching). Init is still C1's
        child (or ours) and running: if it ends meanwhile, the hand-over finds out how."""
        stop = self.plan.stop
        halt = stop.get("halt", 0)
        if not halt or stop.get("exec_stop", 1):
            return
        from lxcsd.runtime import catching

        if not catching.wait(self.init_pid, self.pidfd, halt) \
                and catching.catches(self.init_pid, halt) is False:
            log(f"warning: {self.plan.name}: init does not take signal {halt} (the halt "
                f"signal, KillSignal=) {catching.BOUND:g} s after its start: a stop will "
                "wait TimeoutStopSec= and kill it; set lxc.signal.halt to one it catches")
        self.marks.mark("halt handler")

    def hold_pipes(self) -> tuple[int, int]:
        """The pipes of C1's hold on init (lxcsd.runtime.child.hold_init): C1's ends."""
        release_r, self.release_w = os.pipe2(os.O_CLOEXEC)
        self.status_r, status_w = os.pipe2(os.O_CLOEXEC)
        return release_r, status_w

    def release_init(self) -> int | None:
        """C1 lets init go, stopped (lxcsd.runtime.child.hold_init): init is systemd's child
        from now on and cannot end before systemd takes it as main process (``handover``
        continues it). None, or init's wait status if it ended while C1 held it."""
        try:
            os.write(self.release_w, b"r")
        except BrokenPipeError:
            pass  # C1 is gone already: init ended, its status is in the pipe
        os.close(self.release_w)
        self.release_w = -1
        os.waitpid(self.c1, 0)
        self.c1 = 0
        text = os.read(self.status_r, 32)
        os.close(self.status_r)
        self.status_r = -1
        self.init_stopped = text == b"stopped"
        return int(text) if text and not self.init_stopped else None

    def continue_init(self) -> None:
        if self.init_stopped:
            self.init_stopped = False
            try:
                _signal.pidfd_send_signal(self.pidfd, _signal.SIGCONT)
            except ProcessLookupError:
                pass  # killed meanwhile (SIGKILL ends a stopped process too)

    def register_machine(self) -> None:
        """machined registration with init-to-be as the leader (the same process after
        exec), undone by ``undo`` if the start fails. Never raises; cheap without machined
        (lxcsd.runtime.machined). Not skipped when /run/systemd/machines is missing: the
        first call may activate machined."""
        from lxcsd.runtime import machined

        guest = self.plan.guest
        machined.register(self.plan.name, self.init_pid, self.plan.rootfs_mount, [],
                          guest.uuid if guest is not None else b"")
        self.registered = True

    # -- the Container Interface, readiness from the guest ----------------------------------

    def prepare_guest(self) -> None:
        """What the guest is told about us (lxcsd.runtime.guest: its UUID, the host's
        os-release) and, unless lxcsd.init.notify = 0, the notify socket that C2 binds in
        the container when the guest gets one (lxcsd.runtime.guestfs)."""
        from lxcsd.runtime import guest, ready

        found = self.plan.guest = guest.prepare(self.plan)
        if found.notify is not False:
            found.notify_fd = self.notify_fd = _step("lxcsd.init.notify: socket",
                                                     ready.open_socket)

    def keep_notify_if_bound(self) -> None:
        from lxcsd.runtime import ready

        if self.notify_fd < 0:
            return
        bound = ready.is_bound(self.notify_fd)
        if bound and not self.plan.subreaper:
            # The plan did not expect a notifying guest (its compiler looked at init as
            # the root had it then): init is C1's child, not ours, so we could not end as
            # it did while it boots. Ready at exec, as for lxcsd.init.notify = 0.
            log(f"warning: {self.plan.name}: init became a guest that reports its readiness "
                "since the plan was compiled: ready at exec this time")
        if not bound or not self.plan.subreaper:
            os.close(self.notify_fd)  # not a notifying guest: ready at exec, as before
            self.notify_fd = -1

    def wait_for_guest(self, status: str) -> str:
        """The unit stays activating until init sends READY=1 (lxcsd.runtime.ready);
        returns the STATUS= text of the hand-over, with the guest's own status."""
        from lxcsd.runtime import ready

        plan, pid = self.plan, self.init_pid
        log(f"{plan.name}: waiting for the guest to report ready (READY=1 on "
            "/run/host/notify; lxcsd.init.notify = 0 makes it ready at exec)")
        sdnotify.notify(f"STATUS=Booting, init PID {pid}: waiting for READY=1")
        started = time.monotonic()
        waiter = ready.Waiter(self.notify_fd, self.pidfd, pid, f"Booting, init PID {pid}")
        outcome, wstatus = waiter.wait()
        os.close(self.notify_fd)
        self.notify_fd = -1
        if outcome == "exited":  # reaped by the waiter: it never was systemd's
            init_ended(plan.name, wstatus, "before it reported ready", "while booting")
        self.marks.mark("guest ready")
        said = f": {waiter.status}" if waiter.status else ""
        log(f"{plan.name} ready after {time.monotonic() - started:.2f} s{said}")
        return status + said

    def hand_over_console(self) -> None:
        """Send copies of the pty masters to lxcsd-console. Ours stay open until init
        runs (``close_masters``): closing the last master would hang the terminals up
        under C2, which is still making the console its controlling terminal."""
        masters = self.masters
        if not masters and self.command < 0 and self.v1_for_console() is None:
            return
        from lxcsd.console import handoff
        from lxcsd.console.options import ConsoleOptions

        plan = self.plan
        console = masters[0] if plan.console else None
        ttys = masters[1:] if plan.console else masters
        lxc = self.lxc_publish() if self.command >= 0 else None
        handoff.register(plan.name, plan.unit, console, ttys,
                         ConsoleOptions.from_fields(plan.console_options), pid=self.init_pid,
                         lxc=lxc, cgroup_v1=self.v1_for_console())

    def v1_for_console(self) -> tuple[str, list[str]] | None:
        """The cgroup v1 leaves lxcsd-console removes once init has exited, when no
        ExecStopPost= process does (lxcsd.runtime.compiler.needs_cleanup)."""
        if not self.v1 or self.plan.stop.get("cleanup", 1):
            return None
        return self.plan.payload_dir, [leaf.entry() for leaf in self.v1]

    def lxc_publish(self) -> LxcPublish:
        """What lxcsd-console answers LXC's tools about this container (lxcsd.liblxc)."""
        from lxcsd.console.handoff import LxcPublish

        plan = self.plan
        items = dict(plan.lxc_items)
        if plan.has_netlink:
            items.update(_veth_items(plan))
        return LxcPublish(self.command, plan.lxcpath, self.init_cgroup, self.payload, items)

    def close_masters(self) -> None:
        """Ours, once lxcsd-console has its copies (or the start failed); the command socket
        too: the service holds it now, or it must unbind with this process."""
        for fd in self.masters + ([self.command] if self.command >= 0 else []):
            os.close(fd)
        self.masters = []
        self.command = -1

    # -- failure ------------------------------------------------------------------------

    def kill_children(self) -> None:
        if self.pidfd >= 0:
            try:
                _signal.pidfd_send_signal(self.pidfd, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.c1:
            try:
                os.kill(self.c1, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.payload:
            _try(cgroup.kill_all, self.payload)  # what C2 forked (hooks) too
        for pid in (self.c1, self.init_pid):  # C2 is ours too: we are a subreaper
            if pid:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        # Whatever else came back to us, without blocking: a daemon a host hook left
        # behind must not hold the failure up (systemd's stop takes care of it).
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        self.c1 = 0

    def undo(self) -> None:
        """Leave nothing behind: processes, machine, AppArmor profile, payload leaf,
        monitor leaf, controllers. Once only (a stop can interrupt the handling of a
        failure)."""
        if self.undone:
            return
        self.undone = True
        self.kill_children()
        if self.aa_load is not None:
            self.aa_load.kill()
            self.aa_load = None
        if self.aa_loaded:
            from lxcsd.runtime import apparmor

            for problem in apparmor.unload(state.state_dir(self.plan.name)):
                log(f"warning: cleanup: {problem}")
        if self.registered:
            from lxcsd.runtime import machined

            machined.unregister(self.plan.name)
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        if self.notify_fd >= 0:
            os.close(self.notify_fd)
            self.notify_fd = -1
        for fd in (self.release_w, self.status_r):
            if fd >= 0:
                os.close(fd)
        self.release_w = self.status_r = -1
        self.close_masters()
        if self.payload:
            _remove_leaf(self.payload, self.unit_dir)
        for problem in cgroup_v1.remove_leaves(self.v1):
            log(f"warning: cleanup: cgroup v1 {problem}")
        self.v1 = []
        if self.monitor:
            if self.enabled:
                _try(cgroup.write, self.unit_dir, "cgroup.subtree_control",
                     " ".join(f"-{c}" for c in self.enabled))
            if not self.moved or _try(cgroup.move, os.getpid(), self.unit_dir):
                _remove_leaf(self.monitor, self.unit_dir)


# ------------------------------------------------------------------------------------------
# Helpers



def unit_stop_differs(unit: dict[str, int], need: dict[str, int]) -> bool:
    """Whether a unit stopping as ``unit`` says would stop a container that needs ``need``
    differently: a missing ExecStop= or ExecStopPost=, another halt signal, or another
    final signal from systemd (unset lxc.signal.stop is SIGKILL, systemd's own; another
    is FinalKillSignal= in an older generator's drop-in). A unit doing more than needed
    (the template) is fine: its ExecStop= reads both signals from the state file this
    start writes."""
    if need["cleanup"] and not unit["cleanup"]:
        return True
    if unit["exec_stop"]:
        return False
    return bool(need["exec_stop"]) or unit["halt"] != need["halt"] or \
        (unit["stop"] or _signal.SIGKILL) != (need["stop"] or _signal.SIGKILL)


def child_controller(key: str) -> str:
    return key.partition(".")[0]


_step = child.step


def _try(func: object, *args: object) -> bool:
    try:
        func(*args)  # type: ignore[operator]
    except (LxcsdError, OSError) as exc:
        log(f"warning: cleanup: {exc}")
        return False
    return True


def _make_leaf(unit_dir: str, rel: str, reuse: bool) -> str:
    """unit_dir/rel; an empty leftover (a helper killed before its cleanup ran) is
    removed and made again, a busy one is an error."""
    path = os.path.join(unit_dir, cgroup.check_relative(rel))
    if os.path.isdir(path):
        if reuse or not _busy(path):
            if reuse:
                return path
            cgroup.remove(path)
    return cgroup.create(unit_dir, rel)


def _busy(path: str) -> bool:
    for top, _, _ in os.walk(path):
        if cgroup.procs(top):
            return True
    return False


def _remove_leaf(path: str, unit_dir: str) -> None:
    """Remove path once its killed processes have left (asynchronously), then its parents
    up to unit_dir when they are empty (lxc.cgroup.dir paths)."""
    for _ in range(200):
        try:
            cgroup.remove(path)
            break
        except LxcsdError:
            time.sleep(0.005)
    else:
        log(f"warning: cgroup {path} could not be removed")
        return
    parent = os.path.dirname(path)
    while parent.startswith(unit_dir + "/"):
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = os.path.dirname(parent)


def _share_path(name: str, value: str) -> str:
    if value.startswith("/"):
        return value
    pid = value
    if not value.isdigit():
        fields = state.read(value)
        if not fields or "init_pid" not in fields:
            raise LxcsdError(f"lxc.namespace.share.{name} = {value}: no running container "
                             f"{value!r} (no {state.state_path(value)})")
        pid = fields["init_pid"]
    return f"/proc/{pid}/ns/{name}"


def _veth_items(plan: StartPlan) -> dict[str, str]:
    """lxc.net.N.veth.pair for the veths this start named (the config named none): LXC's
    tools get the generated name, as liblxc's monitor answers (lxcsd.liblxc.items)."""
    from lxcsd.liblxc import wire
    from lxcsd.net import state as netstate

    unset = wire.encode_item(None)
    recorded = netstate.read(state.state_dir(plan.name))
    found = {}
    for net in recorded[0] if recorded else []:
        key = f"item.lxc.net.{net.get('net')}.veth.pair"
        if net.get("type") == "veth" and net.get("host") and plan.lxc_items.get(key) == unset:
            found[key] = wire.encode_item(net["host"])
    return found


def _label_fields(plan: StartPlan) -> dict[str, str]:
    if not plan.labels:
        return {}
    from lxcsd.runtime import lsm

    return lsm.state_fields(plan.labels)


def _pid_of_pidfd(pidfd: int) -> int:
    with open(f"/proc/self/fdinfo/{pidfd}", encoding="ascii") as f:
        for line in f:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    raise LxcsdError("the kernel shows no Pid: for C2's pidfd")
