"""``lxcsd-helper cleanup NAME``: the unit's ExecStopPost=, undoing what outlives the container.

systemd runs it after every end of the unit's main process: a clean stop, init exiting by
itself (halt, reboot, crash), a start that failed, or a helper SIGKILLed half way. So every
step is idempotent and none assumes the one before it ran:

1. cgroup leaves: every cgroup below the unit's delegated cgroup except systemd's own
   ``.control`` (where this process runs) is emptied (cgroup.kill) and removed, deepest
   first: lxc.monitor.NAME, lxc.payload.NAME and whatever a systemd inside made below it;
   then the container's leaves in the cgroup v1 hierarchies of a hybrid host.
   Only when this process runs in ``lxc@NAME.service``: run by hand elsewhere, only the
   payload and monitor cgroups the state file names go. (The unit's own cgroup, with the
   controllers the helper enabled in its cgroup.subtree_control, is systemd's: it removes
   it after the stop and makes a fresh one for the next start; checked in the VM tier.)
2. networks: ``lxcsd.net.cleanup(name, state_dir)`` when the state directory has a network
   record (``STATE_DIR/net``), imported only then. A generated AppArmor profile
   (``STATE_DIR/apparmor``, written before it was loaded) is unloaded with the container's
   policy namespace (``lxcsd.runtime.apparmor.unload``), once no process of it is left.
3. ``lxc.hook.post-stop`` hooks (``LXC_TARGET`` reboot or stop, as liblxc sets it). The
   config is loaded only when the state file says the container started with such hooks,
   or cannot say (no state file: a failed start; an older format): loading costs
   several milliseconds.
4. the state directory /run/lxcsd/NAME is removed.

It ends with the lifecycle line ``lxcsd: NAME stopped (...)`` built from ``$SERVICE_RESULT``,
``$EXIT_CODE`` and ``$EXIT_STATUS``, which systemd passes to ExecStopPost=. A failing step
is reported and the others still run; the exit status is 1 only when something is left
behind (a cgroup that cannot be removed), so the unit shows it.
"""

from __future__ import annotations

import os
import sys
import time

from lxcsd.errors import LxcsdError
from lxcsd.runtime import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from lxcsd.runtime.hooks import HookSet

CONTROL = ".control"  # systemd puts ExecStop*/ExecStopPost of a delegated unit here
EMPTY_TIMEOUT = 10.0  # seconds to wait for killed processes to leave a cgroup
# What init's end means inside a container (docs/design.md, "Process design").
SIGNAL_MEANING = {"HUP": "reboot", "INT": "halt/poweroff"}


def log(name: str, message: str) -> None:
    sys.stderr.write(f"lxcsd: {name} {message}\n")
    sys.stderr.flush()


def describe_exit(env: Mapping[str, str], started: bool = True) -> str:
    """The "(...)" of the stopped line, from systemd's $SERVICE_RESULT/$EXIT_CODE/$EXIT_STATUS:
    "status success, init killed by SIGINT: halt/poweroff". started: init ran (the start
    wrote its state file); otherwise the main process that ended was the helper."""
    result = env.get("SERVICE_RESULT", "")
    code = env.get("EXIT_CODE", "")
    value = env.get("EXIT_STATUS", "")
    parts = [f"status {result}" if result else "status unknown"]
    who = "init" if started else "the helper"
    if code == "exited" and value:
        parts.append(f"{who} exited with status {value}")
    elif code in ("killed", "dumped") and value:
        what = "killed by" if code == "killed" else "dumped core on"
        meaning = SIGNAL_MEANING.get(value) if code == "killed" and started else None
        parts.append(f"{who} {what} SIG{value}" + (f": {meaning}" if meaning else ""))
    if not started:
        parts.append("before init ran")
    return ", ".join(parts)


def target(env: Mapping[str, str]) -> str:
    """liblxc's LXC_TARGET for post-stop hooks: "reboot" when init died of the reboot
    signal (SIGHUP: the unit restarts), else "stop"."""
    return "reboot" if env.get("EXIT_CODE") == "killed" and env.get("EXIT_STATUS") == "HUP" \
        else "stop"


# ------------------------------------------------------------------------------------------
# cgroups


def unit_cgroup_dir(instance: str) -> str | None:
    """The unit's delegated cgroup: ours, or its parent when we run in ``.control``; None
    when that is not ``lxc@INSTANCE.service`` (run by hand: never touch a foreign tree)."""
    from lxcsd.runtime import cgroup

    here = cgroup.own_cgroup_dir()
    unit_dir = os.path.dirname(here) if os.path.basename(here) == CONTROL else here
    return unit_dir if os.path.basename(unit_dir) == f"lxc@{instance}.service" else None


def leaves(unit_dir: str) -> list[str]:
    """The cgroups directly below the unit's cgroup that lxcsd or the container made."""
    try:
        names = sorted(os.listdir(unit_dir))
    except FileNotFoundError:
        return []
    return [os.path.join(unit_dir, name) for name in names
            if name != CONTROL and os.path.isdir(os.path.join(unit_dir, name))]


def populated(cgroup_dir: str) -> bool:
    try:
        with open(os.path.join(cgroup_dir, "cgroup.events"), encoding="ascii") as f:
            return "populated 1" in f.read()
    except FileNotFoundError:
        return False


def remove_leaf(path: str, timeout: float = EMPTY_TIMEOUT) -> None:
    """Kill what is left in path (and below), wait until it is empty, remove it."""
    from lxcsd.runtime import cgroup

    if populated(path):
        if not cgroup.kill_all(path):
            _kill_procs(path)
        deadline = time.monotonic() + timeout
        while populated(path) and time.monotonic() < deadline:
            time.sleep(0.01)
    cgroup.remove(path)


def _kill_procs(path: str) -> None:
    # Kernels before cgroup.kill (5.14): SIGKILL each process, deepest cgroups first.
    import _signal  # type: ignore[import-not-found]

    from lxcsd.runtime import cgroup

    for top, _, _ in os.walk(path, topdown=False):
        try:
            pids = cgroup.procs(top)
        except OSError:
            continue
        for pid in pids:
            try:
                os.kill(pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass


def remove_leaves(name: str, paths: list[str]) -> bool:
    ok = True
    for path in paths:
        try:
            remove_leaf(path)
        except (LxcsdError, OSError) as exc:
            log(name, f"cleanup: cgroup {path} left behind: {exc}")
            ok = False
    return ok


def cleanup_cgroups(name: str, instance: str, fields: Mapping[str, str]) -> bool:
    unit_dir = unit_cgroup_dir(instance)
    paths = leaves(unit_dir) if unit_dir is not None else []
    for key in ("payload_cgroup", "monitor_cgroup"):
        path = fields.get(key, "")
        if path and os.path.isabs(path) and path not in paths and "/../" not in path:
            paths.append(path)
    ok = remove_leaves(name, paths)
    # The v1 leaves are below the unit's own v1 cgroups, which are ours: in the unit, or
    # run by hand from where the start ran when the state file names the leaf.
    if unit_dir is not None or fields.get("cgroup_v1_leaf"):
        ok = cleanup_v1(name, fields) and ok
    return ok


def cleanup_v1(name: str, fields: Mapping[str, str]) -> bool:
    """The container's leaves in the cgroup v1 hierarchies (emptied with the cgroup2 ones:
    the same processes); the default leaf name when a failed start wrote no state."""
    from lxcsd.runtime import cgroup, cgroup_v1

    rel = fields.get("cgroup_v1_leaf") or cgroup.payload_name(name)
    problems = cgroup_v1.remove_leaves(cgroup_v1.open_leaves(rel))
    for problem in problems:
        log(name, f"cleanup: cgroup v1 {problem} left behind")
    return not problems


# ------------------------------------------------------------------------------------------
# Networks, hooks, state


def cleanup_networks(name: str, state_dir: str) -> bool:
    if not os.path.exists(os.path.join(state_dir, "net")):
        return True
    try:
        import lxcsd.net as net

        net.cleanup(name, state_dir)
    except Exception as exc:  # noqa: BLE001 - report, and go on with the other steps
        log(name, f"cleanup: network cleanup failed: {exc}")
        return False
    return True


def cleanup_apparmor(name: str, state_dir: str) -> bool:
    if not os.path.exists(os.path.join(state_dir, "apparmor")):
        return True
    from lxcsd.runtime import apparmor

    problems = apparmor.unload(state_dir)
    for problem in problems:
        log(name, f"cleanup: {problem}")
    return not problems


def load_hooks(name: str) -> HookSet | None:
    """The hooks the start recorded (STATE_DIR/hooks), else the config's as it is now."""
    recorded = state.read_hooks(name)
    if recorded is not None:
        return recorded
    try:
        from lxcsd.config.load import load_container
        from lxcsd.runtime.compiler import hook_set

        container = load_container(name)
    except Exception as exc:  # noqa: BLE001 - a broken config must not block cleanup
        log(name, f"cleanup: config not readable, post-stop hooks skipped: {exc}")
        return None
    return hook_set(container) if container.hooks.get("post-stop") else None


def lxc_runs(name: str, fields: Mapping[str, str]) -> bool:
    """After a start that never ran init (no state file): whether lxc-start runs the
    container, the reason the start refused. Its post-stop hooks are not ours to run then."""
    if fields:
        return False
    try:
        from lxcsd.config.load import find_container
        from lxcsd.liblxc import owner

        holder = owner.running_under_lxc(owner.lxcpath_of(find_container(name)), name)
    except (LxcsdError, OSError):
        return False
    if holder is not None:
        log(name, f"cleanup: runs under {holder.describe()}; its post-stop hooks skipped")
    return holder is not None


def post_stop_hooks(hookset: HookSet, env: Mapping[str, str]) -> bool:
    from lxcsd.runtime import hooks

    if not hookset.has("post-stop"):
        return True
    try:
        hooks.run(hookset, "post-stop", extra_env={"LXC_TARGET": target(env)})
    except LxcsdError as exc:
        log(hookset.name, f"post-stop hook failed: {exc}")
        return False
    return True


def remove_tree(path: str) -> None:
    """rm -r without shutil (a hot path); unmounts nothing: mounts are never left here."""
    if not os.path.lexists(path):
        return
    for top, dirs, files in os.walk(path, topdown=False):
        for entry in files:
            os.unlink(os.path.join(top, entry))
        for entry in dirs:
            full = os.path.join(top, entry)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)
    os.rmdir(path)


# ------------------------------------------------------------------------------------------
# Entry point


def wants_hooks(fields: Mapping[str, str]) -> bool:
    """Whether post-stop hooks may have to run: unless the state file says the container
    started without any."""
    return state.recorded_flag(fields, "post_stop_hooks") is not False


def main(instance: str) -> int:
    """ExecStopPost=: undo what the container left; 0 unless something stays behind."""
    name = state.container_name(instance)
    env = os.environ
    directory = state.state_dir(name)
    fields = state.read(name) or {}
    try:
        ok = cleanup_cgroups(name, instance, fields)
    except (LxcsdError, OSError) as exc:
        log(name, f"cleanup: cgroups: {exc}")
        ok = False
    ok = cleanup_networks(name, directory) and ok
    ok = cleanup_apparmor(name, directory) and ok
    hookset = load_hooks(name) if wants_hooks(fields) and not lxc_runs(name, fields) else None
    if hookset is not None:
        post_stop_hooks(hookset, env)
    try:
        remove_tree(directory)
    except OSError as exc:
        log(name, f"cleanup: cannot remove {directory}: {exc.strerror}")
    log(name, f"stopped ({describe_exit(env, started=bool(fields))})")
    return 0 if ok else 1
