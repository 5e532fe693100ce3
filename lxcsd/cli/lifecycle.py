"""``lxcsd start|stop|restart|enable|disable NAME...``: systemctl's verbs for containers.

Each goes through systemd's D-Bus API (:mod:`lxcsd.systemd`) on ``lxc@NAME.service``, never
by running systemctl: start/stop/restart queue a job and wait for it as systemctl does; on
failure the unit's state and its last journal lines are printed and the exit status is 1.
enable/disable change the unit's install links (EnableUnitFiles/DisableUnitFiles) and
reload systemd; ``--now`` also starts/stops.
"""

from __future__ import annotations

import argparse
import sys

from lxcsd.config.load import find_container
from lxcsd.config.names import unit_name
from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.systemd import Systemd

VERBS = {
    "start": ("start containers (systemctl start lxc@NAME)", "StartUnit"),
    "stop": ("stop containers: their halt signal, then lxc.signal.stop", "StopUnit"),
    "restart": ("stop and start containers", "RestartUnit"),
    "enable": ("start containers at boot (install links of lxc@NAME)", ""),
    "disable": ("do not start containers at boot", ""),
}
EPILOGS = {
    "start": "examples:\n  lxcsd start web1\n  lxcsd start web1 db1   (one after the other)\n",
    "stop": "examples:\n  lxcsd stop web1\n",
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
        parser.add_argument("names", nargs="+", metavar="NAME", help="container names")
        if verb in ("enable", "disable"):
            parser.add_argument("--now", action="store_true",
                                help="also start (enable) or stop (disable) them")
        if verb in ("start", "stop", "restart"):
            parser.add_argument("--no-block", action="store_true",
                                help="queue the job, do not wait for it")
        parser.set_defaults(func=run, verb=verb)
    assert parser is not None
    return parser


def units_for(names: list[str], *, must_exist: bool = True) -> list[tuple[str, str]]:
    """(name, unit) for each name; a container that does not exist is an error before any
    job runs (the unit template would accept any name and fail later)."""
    pairs = []
    for name in names:
        unit = unit_name(name)
        if must_exist:
            find_container(name)
        pairs.append((name, unit))
    return pairs


def run(args: argparse.Namespace) -> int:
    from lxcsd.systemd import Systemd

    # stop/disable also work for containers whose directory is already gone.
    pairs = units_for(args.names, must_exist=args.verb in ("start", "restart", "enable"))
    with Systemd() as systemd:
        if args.verb in ("enable", "disable"):
            return _unit_files(systemd, args.verb, pairs, args.now)
        method = VERBS[args.verb][1].encode()
        failed = 0
        for name, unit in pairs:
            failed += not _job(systemd, method, name, unit, args.no_block)
        return 1 if failed else 0


def _job(systemd: Systemd, method: bytes, name: str, unit: str, no_block: bool) -> bool:
    if no_block:
        systemd.manager(method, b"ss", unit.encode(), b"replace")
        return True
    result = systemd.run_job(method, unit)
    if result == "done":
        return True
    from lxcsd.systemd import JOB_RESULTS

    print(f"lxcsd: {name}: {method.decode()} of {unit}: {JOB_RESULTS.get(result, result)}",
          file=sys.stderr)
    print(status_report(systemd, unit), file=sys.stderr)
    return False


def status_report(systemd: Systemd, unit: str) -> str:
    """A few lines like ``systemctl status``: state, result, main process, status text and
    the journal's last lines."""
    from lxcsd.systemd import journal_tail

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
    journal = journal_tail(unit, JOURNAL_LINES)
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
    method = b"StartUnit" if verb == "enable" else b"StopUnit"
    failed = sum(not _job(systemd, method, name, unit, False) for name, unit in pairs)
    return 1 if failed else 0
