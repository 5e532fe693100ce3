"""``lxcsd-helper stop NAME $MAINPID``: the unit's ExecStop=, a clean halt of the container.

Only where the generator's drop-in keeps ExecStop= (the halt signal unknown until stop
time, lxc.hook.stop, a guest that reports its readiness, lxc.signal.stop other than
SIGKILL: lxcsd.runtime.compiler._stop); otherwise systemd sends the halt signal itself as
KillSignal=, then its final SIGKILL (which is lxc.signal.stop then), and no process runs.

systemd supervises the container's init directly (docs/design.md, "Process design"), so
stopping is: pick the halt signal as liblxc's shutdown does (``lxc.signal.halt``; else
SIGRTMIN+3 when init blocks it, as systemd does, since SIGTERM only makes systemd re-execute
itself; else SIGPWR), send it through a pidfd (no pid reuse race), and wait for init to exit
by polling the pidfd. If the guest takes longer than ``TimeoutStopSec=``, systemd sends this
process ``KillSignal=`` (SIGTERM, units/lxc@.service.in), and it sends ``lxc.signal.stop``
(default SIGKILL, as lxc-stop after its timeout) to init and waits for it to exit; if init
outlives that too, systemd's final SIGKILL after another TimeoutStopSec= ends it. The unit's
KillSignal= is not lxc.signal.stop because it also reaches a helper that is still the main
process during a start, which must be able to catch it (lxcsd.runtime.start).

The halt signal and whether stop hooks exist come from the state file the start wrote
(lxcsd.runtime.state): the container stops with the config it started with, as under liblxc,
whose monitor holds that config; the stop hooks are the ones the start recorded
(STATE_DIR/hooks), so the config is not read. Without a usable state file (an older lxcsd started
it, or another init's), the config is read now, as before.

A config that no longer parses still stops the container (the fallback rule needs only
init's blocked signals). An empty ``$MAINPID`` (init already exited: halt, reboot or crash
inside) is not an error; only the stop hooks run then, without namespace references.

``lxc.hook.stop`` runs once init has exited, in the host's namespaces, with references to
the container's namespaces kept open by this process (``/proc/SELF/fd/N``, passed as liblxc
does: ``NS:PATH`` arguments for hook version 0, ``LXC_*_NS`` variables for version 1).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # built in; signal.py imports enum
import os
import select
import sys

from lxcsd.runtime import state
from lxcsd.systemd import sdnotify

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from lxcsd.config.model import Container
    from lxcsd.runtime.hooks import HookSet

SIGPWR: int = _signal.SIGPWR
SIGRTMIN: int = _signal.SIGRTMIN  # glibc's (34): liblxc's SIGRTMIN+3 is 37, as systemd uses
SIG_SYSTEMD_HALT = SIGRTMIN + 3
NAMESPACES = ("user", "mnt", "pid", "uts", "ipc", "net", "cgroup", "time")


def log(name: str, message: str) -> None:
    """A lifecycle line on stderr: systemd puts it in the unit's journal."""
    sys.stderr.write(f"lxcsd: {name} {message}\n")
    sys.stderr.flush()


def status(text: str) -> None:
    """STATUS= for `systemctl status`. The template has NotifyAccess=exec: with main,
    systemd 252 passes no NOTIFY_SOCKET to ExecStop= (checked in the sandbox)."""
    try:
        sdnotify.notify(f"STATUS={text}")
    except OSError:
        pass


# ------------------------------------------------------------------------------------------
# The halt signal


def blocked_signals(pid: int, proc: str = "/proc") -> int:
    """The SigBlk mask of pid (bit n-1 set: signal n blocked); 0 when unreadable."""
    try:
        with open(f"{proc}/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    return int(line[7:].strip(), 16)
    except (OSError, ValueError):
        pass
    return 0


def choose_halt_signal(configured: int | None, sigblk: int) -> int:
    """liblxc's do_lxcapi_shutdown: lxc.signal.halt when set, else SIGRTMIN+3 when init
    blocks it (systemd), else SIGPWR (sysvinit, busybox init)."""
    if configured:
        return configured
    if sigblk & (1 << (SIG_SYSTEMD_HALT - 1)):
        return SIG_SYSTEMD_HALT
    return SIGPWR


def signal_text(number: int) -> str:
    if number == SIGPWR:
        return "SIGPWR"  # the usual choice, named without importing the config's signal table
    if SIGRTMIN <= number <= _signal.SIGRTMAX:
        return f"SIGRTMIN+{number - SIGRTMIN}" if number != SIGRTMIN else "SIGRTMIN"
    from lxcsd.config.values import signal_name

    return signal_name(number)


# ------------------------------------------------------------------------------------------
# Waiting


def wait_exit(pidfd: int, timeout: float | None = None) -> bool:
    """Block until the process behind pidfd has exited (POLLIN); False on timeout."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    ms = None if timeout is None else max(0, int(timeout * 1000))
    return bool(poller.poll(ms))


def open_namespaces(pid: int) -> dict[str, int]:
    """fds of pid's namespaces that differ from ours (what the container made), so that
    the stop hook can still reach them after init has exited."""
    fds: dict[str, int] = {}
    for ns in NAMESPACES:
        try:
            if os.stat(f"/proc/{pid}/ns/{ns}").st_ino == os.stat(f"/proc/self/ns/{ns}").st_ino:
                continue
            fds[ns] = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
    return fds


def namespace_refs(fds: dict[str, int], self_pid: int) -> tuple[list[str], dict[str, str]]:
    """liblxc's stop hook references: ``NS:/proc/PID/fd/N`` arguments (hook version 0) and
    ``LXC_NS_NS=/proc/PID/fd/N`` variables (version 1)."""
    from lxcsd.runtime.hooks import NS_ENV

    args = [f"{ns}:/proc/{self_pid}/fd/{fd}" for ns, fd in fds.items()]
    env = {NS_ENV[ns]: f"/proc/{self_pid}/fd/{fd}" for ns, fd in fds.items()}
    return args, env


# ------------------------------------------------------------------------------------------
# Entry point


def _load(name: str, consequence: str | None) -> Container | None:
    """The config as it is now; None (logged with consequence, when given) if unusable."""
    try:
        from lxcsd.config.load import load_container

        return load_container(name)
    except Exception as exc:  # noqa: BLE001 - any config problem: stop with the fallback
        if consequence:
            log(name, f"config not usable ({exc}); {consequence}")
        return None


def _hooks_of(container: Container | None) -> HookSet | None:
    if container is None or not container.hooks.get("stop"):
        return None
    from lxcsd.runtime.compiler import hook_set

    return hook_set(container)


def _target(env: Mapping[str, str]) -> str:
    # liblxc's LXC_TARGET: "reboot" when init died of the reboot signal (SIGHUP).
    killed_by_hup = env.get("EXIT_CODE") == "killed" and env.get("EXIT_STATUS") == "HUP"
    return "reboot" if killed_by_hup else "stop"


class StopPlan:
    """What the stop needs: the halt signal (None: unset, apply the SigBlk rule), whether
    lxc.hook.stop hooks exist, those hooks when they can be run, and lxc.signal.stop
    (``kill``; None: unset, SIGKILL)."""

    __slots__ = ("halt", "stop_hooks", "hooks", "kill")

    def __init__(self, halt: int | None, stop_hooks: bool, hooks: HookSet | None = None,
                 kill: int | None = None) -> None:
        self.halt = halt
        self.stop_hooks = stop_hooks
        self.hooks = hooks
        self.kill = kill


def recorded_plan(fields: Mapping[str, str] | None, mainpid: int) -> StopPlan | None:
    """The plan the start recorded in the state file; None when it cannot tell: no state,
    an older format, or the state of another init than mainpid (0: init gone, any)."""
    if not fields:
        return None
    known, halt = state.recorded_signal(fields, "halt_signal")
    hooks = state.recorded_flag(fields, "stop_hooks")
    if not known or hooks is None:
        return None
    if mainpid > 0 and fields.get("init_pid") != str(mainpid):
        return None
    return StopPlan(halt, hooks, kill=state.recorded_signal(fields, "stop_signal")[1])


def plan(name: str, mainpid: int, quiet: bool = False) -> StopPlan:
    """The recorded plan, with the hooks the start recorded (STATE_DIR/hooks; an older
    start's: the config as it is now); else the plan from the config as it is now (None
    halt when it is unusable: the fallback rule)."""
    recorded = recorded_plan(state.read(name), mainpid)
    if recorded is not None:
        if recorded.stop_hooks:
            recorded.hooks = state.read_hooks(name) or \
                _hooks_of(_load(name, "stop hooks skipped"))
        return recorded
    container = _load(name, None if quiet else "stopping with the default halt signal")
    if container is None:
        return StopPlan(None, False)
    hooks = _hooks_of(container)
    return StopPlan(container.signals.halt, hooks is not None, hooks, container.signals.stop)


def _exited(name: str) -> int:
    """No MAINPID: init is gone already; run lxc.hook.stop (liblxc runs it at every end)."""
    hooks = plan(name, 0, quiet=True).hooks
    if hooks is not None:
        _stop_hooks(hooks, {}, _target(os.environ))
    return 0


def main(name: str, mainpid: int) -> int:
    """ExecStop=: halt the container whose init is mainpid (0: none, nothing to do).
    name is the unit's instance string (systemd-escaped)."""
    name = state.container_name(name)
    if mainpid <= 0:
        return _exited(name)
    try:
        pidfd = os.pidfd_open(mainpid)
    except ProcessLookupError:
        return _exited(name)
    try:
        return _stop(name, mainpid, pidfd)
    finally:
        os.close(pidfd)


def _stop(name: str, pid: int, pidfd: int) -> int:
    todo = plan(name, pid)
    signum = choose_halt_signal(todo.halt, blocked_signals(pid))
    hooks = todo.hooks
    ns_fds = open_namespaces(pid) if hooks is not None else {}
    try:
        text = f"stopping: {signal_text(signum)} to init (pid {pid})"
        log(name, text)
        _tell_stopping(name)
        status(f"Stopping: {signal_text(signum)} sent to init (pid {pid})")
        _signal.signal(_signal.SIGTERM, _timed_out)
        try:
            _await_handler(pid, pidfd, signum)
            _signal.pidfd_send_signal(pidfd, signum)
            wait_exit(pidfd)
        except ProcessLookupError:
            pass  # it exited on its own meanwhile
        except StopTimeout:
            _kill(name, pid, pidfd, todo.kill or _signal.SIGKILL)
        _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)  # a timeout in the hooks ends us
        log(name, "init exited")
        if hooks is not None:
            return _stop_hooks(hooks, ns_fds, "stop")
        return 0
    finally:
        for fd in ns_fds.values():
            os.close(fd)


def _await_handler(pid: int, pidfd: int, signum: int) -> None:
    """A stop right after the start may come before init takes the halt signal, which a pid
    namespace's init would then drop (lxcsd.runtime.catching): wait for it, bounded. Where
    the start hands init over only once it takes the signal (KillSignal= alone), this is
    one read of /proc; an init that never takes it waits for TimeoutStopSec= anyway."""
    from lxcsd.runtime import catching

    catching.wait(pid, pidfd, signum)


def _tell_stopping(name: str) -> None:
    """LXC's tools (lxc-info, lxc-wait -s STOPPING) see the container STOPPING from now:
    lxcsd-console answers its liblxc command socket. One round trip (~1 ms), best effort."""
    from lxcsd.console.handoff import tell_stopping

    tell_stopping(name)


class StopTimeout(BaseException):
    """systemd's KillSignal= (SIGTERM) to this ExecStop=: TimeoutStopSec= ran out."""


def _timed_out(signum: int, frame: object) -> None:
    raise StopTimeout


def _kill(name: str, pid: int, pidfd: int, signum: int) -> None:
    """lxc.signal.stop to init, as lxc-stop does once its timeout ran out."""
    _signal.signal(_signal.SIGTERM, _signal.SIG_IGN)
    log(name, f"stop timed out: {signal_text(signum)} to init (pid {pid}, lxc.signal.stop)")
    status(f"Stopping: timed out, {signal_text(signum)} sent to init (pid {pid})")
    try:
        _signal.pidfd_send_signal(pidfd, signum)
        wait_exit(pidfd)
    except ProcessLookupError:
        pass


def _stop_hooks(hookset: HookSet, ns_fds: dict[str, int], target: str) -> int:
    from lxcsd.errors import LxcsdError
    from lxcsd.runtime import hooks

    args, env = namespace_refs(ns_fds, os.getpid())
    env["LXC_TARGET"] = target
    try:
        hooks.run(hookset, "stop", extra_env=env, args=args if not hookset.version else ())
    except LxcsdError as exc:
        log(hookset.name, f"stop hook failed: {exc}")  # liblxc logs it and goes on
    return 0
