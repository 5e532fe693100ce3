"""``lxcsd start|stop|restart|enable|disable NAME...``: systemctl's verbs for containers.

Each goes through systemd's D-Bus API (:mod:`lxcsd.systemd.manager`) on ``lxc@NAME.service``, never
by running systemctl: start/stop/restart queue a job and wait for it as systemctl does; on
failure the unit's state and its last journal lines are printed and the exit status is 1.
enable/disable change the unit's install links (EnableUnitFiles/DisableUnitFiles) and
reload systemd; ``--now`` also starts/stops. A name that is neither a container nor a unit
in use (running, or enabled) is an error before any job runs. start and restart hold LXC's
lock of each container (lxcsd.lock) while they check it, reload systemd for its config and
queue the job, as lxc-start holds it while it reads the config; not while the container
starts, or a hook calling lxc-info on it would wait for itself.
"""

from __future__ import annotations

import argparse
import os
import sys

from lxcsd.config.load import find_container
from lxcsd.config.names import unit_name
from lxcsd.errors import LxcsdError

from ._containers import known
from ._target import add_lxcpath_option, add_names, check_unit_lxcpath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.lock import Locks
    from lxcsd.systemd.manager import Systemd

VERBS = {
    "start": ("start containers (systemctl start lxc@NAME)", "StartUnit"),
    "stop": ("stop containers: their halt signal, then lxc.signal.stop", "StopUnit"),
    "restart": ("stop and start containers", "RestartUnit"),
    "enable": ("start containers at boot (install links of lxc@NAME)", ""),
    "disable": ("do not start containers at boot", ""),
}
EPILOGS = {
    "start": "examples:\n  lxcsd start web1\n  lxcsd start web1 db1   (both jobs at once, as "
             "systemctl)\n  lxcsd start -n web1      (as lxc-start -n)\n",
    "stop": "examples:\n  lxcsd stop web1\n  lxcsd stop --no-block web1   do not wait for it\n",
    "restart": "examples:\n  lxcsd restart web1\n",
    "enable": "examples:\n  lxcsd enable web1\n  lxcsd enable --now web1   enable and start\n\n"
              "lxc.start.auto = 1 in the config starts a container at boot as well.\n",
    "disable": "examples:\n  lxcsd disable web1\n  lxcsd disable --now web1  disable and stop\n",
}
JOURNAL_LINES = 10


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser | None = None
    for verb, (text, _) in VERBS.items():
        parser = subparsers.add_parser(
            verb, help=text, description=f"lxcsd {verb}: {text}.", epilog=EPILOGS[verb] +
            "\nExit status: 0 when every container succeeded, 1 otherwise.",
            formatter_class=argparse.RawDescriptionHelpFormatter)
        add_names(parser, many=True, help="container names")
        add_lxcpath_option(parser)
        if verb in ("enable", "disable"):
            parser.add_argument("--now", action="store_true",
                                help="also start (enable) or stop (disable) them")
        if verb in ("start", "stop", "restart"):
            parser.add_argument("--no-block", action="store_true",
                                help="queue the job, do not wait for it")
        parser.set_defaults(func=run, verb=verb)
    assert parser is not None
    return parser


def units_for(names: list[str], systemd: Systemd | None = None, *,
              free: bool = False) -> list[tuple[str, str]]:
    """(name, unit) for each name; a container that does not exist is an error before any
    job runs (the unit template would accept any name and fail later). With ``systemd``,
    a unit still in use counts too (stop/disable of a container whose directory is gone).
    With ``free``, a container lxc-start runs is an error too (the helper would refuse it:
    say why here, in one line)."""
    from ._containers import refuse_if_lxc_runs

    for name in names:
        config = known(name, systemd=systemd)
        if free and config is not None:
            refuse_if_lxc_runs(name, config)
    return [(name, unit_name(name)) for name in names]


def run(args: argparse.Namespace) -> int:
    from lxcsd.systemd.manager import Systemd

    for name in args.names:
        check_unit_lxcpath(name, args.lxcpath)
    with Systemd() as systemd:
        must_exist = args.verb in ("start", "restart", "enable")
        pairs = units_for(args.names, None if must_exist else systemd)
        if args.verb in ("enable", "disable"):
            return _unit_files(systemd, args.verb, pairs, args.now)
        method = VERBS[args.verb][1].encode()
        if args.verb == "stop":
            return 0 if _jobs(systemd, method, pairs, args.no_block) else 1
        with _locked(args.names):
            # Destroyed while we waited for a lock, or started by lxc-start?
            units_for(args.names, free=True)
            reload_if_stale(systemd, pairs)
            jobs = _queue(systemd, method, pairs)
        return 0 if args.no_block or _wait(systemd, method, jobs) else 1


def _locked(names: list[str]) -> Locks:
    from lxcsd.lock import Locks

    return Locks((os.path.dirname(os.path.dirname(find_container(name))), name)
                 for name in names)


def reload_if_stale(systemd: Systemd, pairs: list[tuple[str, str]]) -> bool:
    """Reload systemd when a container's config changed since the generator ran (the unit's
    NeedDaemonReload: its SourcePath is the config) or the generator never saw it (no
    drop-in of its own, e.g. just made by lxcsd create): the unit then starts with what the
    config says, not with stale or template-only settings."""
    stale = []
    for name, unit in pairs:
        props = systemd.unit_properties(unit, service=False)
        drop_ins = props.get("DropInPaths") or []
        if props.get("NeedDaemonReload") or not any(f"/{unit}.d/" in path
                                                     for path in drop_ins):
            stale.append(name)
    if stale:
        print(f"lxcsd: reloading systemd for the config of {', '.join(stale)}",
              file=sys.stderr)
        systemd.reload()
    return bool(stale)


def _jobs(systemd: Systemd, method: bytes, pairs: list[tuple[str, str]],
          no_block: bool) -> bool:
    """Queue every container's job at once (as systemctl does with several units), then
    wait for them all; report each failure. True when all succeeded."""
    jobs = _queue(systemd, method, pairs)
    return True if no_block else _wait(systemd, method, jobs)


Queued = tuple[float, list[tuple[str, str, bytes]]]


def _queue(systemd: Systemd, method: bytes, pairs: list[tuple[str, str]]) -> Queued:
    import time

    queued = time.time()
    return queued, [(name, unit, systemd.queue_job(method, unit)) for name, unit in pairs]


def _wait(systemd: Systemd, method: bytes, queued: Queued) -> bool:
    since, jobs = queued
    results = systemd.wait_jobs([job for _, _, job in jobs])
    ok = True
    for name, unit, job in jobs:
        if results[job] != "done":
            ok = False
            _report(systemd, method, name, unit, results[job], since)
    return ok


def _report(systemd: Systemd, method: bytes, name: str, unit: str, result: str,
            since: float) -> None:
    from lxcsd.systemd.manager import JOB_RESULTS

    print(f"lxcsd: {name}: {method.decode()} of {unit}: {JOB_RESULTS.get(result, result)}",
          file=sys.stderr)
    print(status_report(systemd, unit, since), file=sys.stderr)


def status_report(systemd: Systemd, unit: str, since: float | None = None) -> str:
    """A few lines like ``systemctl status``: state, result, main process, status text and
    the journal's last lines."""
    from lxcsd.systemd.manager import journal_tail

    try:
        props = systemd.unit_properties(unit)
    except LxcsdError as exc:
        return f"  ({exc})"
    lines = [f"  {unit}: {props.get('ActiveState')} ({props.get('SubState')}), "
             f"result {props.get('Result', '-')}"]
    code = props.get("ExecMainStatus")
    if props.get("ExecMainPID"):
        lines.append(f"  main process {props['ExecMainPID']}: exit status {code}")
    if props.get("StatusText"):
        lines.append(f"  status: {props['StatusText']}")
    journal = journal_tail(unit, JOURNAL_LINES, since)
    if journal:
        lines.append(f"  last journal lines (journalctl -u {unit}):")
        lines.extend("    " + line for line in journal.splitlines())
    return "\n".join(lines)


def _unit_files(systemd: Systemd, verb: str, pairs: list[tuple[str, str]], now: bool) -> int:
    units = [unit for _, unit in pairs]
    changes = systemd.enable(units) if verb == "enable" else systemd.disable(units)
    for kind, path, dest in changes:
        print(f"Created symlink {path} → {dest}." if kind == "symlink" else f"Removed {path}.")
    systemd.reload()
    if not now:
        return 0
    if verb == "disable":
        return 0 if _jobs(systemd, b"StopUnit", pairs, False) else 1
    with _locked([name for name, _ in pairs]):
        units_for([name for name, _ in pairs], free=True)
        reload_if_stale(systemd, pairs)
        jobs = _queue(systemd, b"StartUnit", pairs)
    return 0 if _wait(systemd, b"StartUnit", jobs) else 1
