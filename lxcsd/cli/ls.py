"""``lxcsd ls``: the containers, as ``lxc-ls -f`` lists them, plus PID and MEMORY.

STATE comes from the unit lxc@NAME.service (RUNNING, STOPPED, STARTING, STOPPING, FAILED),
or from LXC's command socket when lxc-start runs the container ("RUNNING (LXC)");
AUTOSTART is 1 when lxc.start.auto is set or the unit is enabled; IPV4/IPV6 are the
container's own addresses (read in its network namespace); MEMORY is the unit's cgroup's.
lxc-ls's options work: -f (the table, also the default), -F COLUMNS, -1 (names only, one
per line), --active, --running, --stopped, -g GROUPS.
"""

from __future__ import annotations

import argparse
import json
import sys

from lxcsd.config.load import discover

from ._status import container_status, human_bytes
from ._target import add_lxcpath_option, add_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd ls                     every container, as a table (as lxc-ls -f)
  lxcsd ls --running           only running containers
  lxcsd ls -1 --stopped        names of the stopped ones, one per line
  lxcsd ls -F name,state,pid,ram
  lxcsd ls -g web              containers with lxc.group = web (-g web,db: in both)
  lxcsd ls --format json       machine-readable (memory in bytes)

Columns for -F (any case): NAME, STATE, AUTOSTART, GROUPS, IPV4, IPV6, UNPRIVILEGED, PID,
MEMORY (RAM is the same), SWAP, INTERFACE. lxc-ls's FROZEN state does not exist here.
"""
COLUMNS = ("NAME", "STATE", "AUTOSTART", "GROUPS", "IPV4", "IPV6", "UNPRIVILEGED", "PID",
           "MEMORY")
ALL_COLUMNS = (*COLUMNS, "RAM", "SWAP", "INTERFACE")
ACTIVE = ("RUNNING", "STARTING", "STOPPING")  # lxc-ls --active: every state but STOPPED


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ls", help="list containers and their state",
        description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--running", action="store_true", help="only running containers")
    which.add_argument("--stopped", action="store_true",
                       help="only stopped containers (FAILED too)")
    which.add_argument("--active", action="store_true",
                       help="only containers that are not stopped (running, starting, "
                       "stopping)")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("-f", "--fancy", action="store_true",
                       help="the table (the default; accepted as lxc-ls takes it)")
    shape.add_argument("-F", "--fancy-format", metavar="COLUMNS", type=columns,
                       help="the table with these comma-separated columns")
    shape.add_argument("-1", "--line", action="store_true",
                       help="names only, one per line")
    parser.add_argument("-g", "--groups", "--group", dest="group", action="append",
                        metavar="GROUPS",
                        help="only containers in all of these comma-separated groups "
                        "(repeated: in any)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="output format (default: table)")
    add_names(parser, many=True, required=False, help="only these containers")
    add_lxcpath_option(parser)
    return parser


def columns(text: str) -> tuple[str, ...]:
    """-F's comma-separated columns, upper case; ArgumentTypeError names a wrong one."""
    chosen = tuple(word.strip().upper() for word in text.split(",") if word.strip())
    wrong = [word for word in chosen if word not in ALL_COLUMNS]
    if wrong or not chosen:
        raise argparse.ArgumentTypeError(f"invalid column {', '.join(wrong) or repr(text)} "
                                         f"(valid: {', '.join(ALL_COLUMNS)})")
    return chosen


def selected(info: dict[str, Any], args: argparse.Namespace) -> bool:
    if args.names and info["name"] not in args.names:
        return False
    if args.running and info["state"] != "RUNNING":
        return False
    if args.stopped and info["state"] not in ("STOPPED", "FAILED"):
        return False
    if args.active and info["state"] not in ACTIVE:
        return False
    return not args.group or any(set(group.split(",")) <= set(info["groups"])
                                 for group in args.group)


def needs_state(args: argparse.Namespace) -> bool:
    """Whether the listing needs systemd (-1 without a state filter does not)."""
    return not args.line or args.running or args.stopped or args.active or args.format == "json"


def cell(info: dict[str, Any], column: str) -> str:
    """One table cell, as lxc-ls -f writes it ('-' for nothing)."""
    if column == "NAME":
        return str(info["name"])
    if column == "STATE":
        return str(info["state"]) + (" (LXC)" if info.get("runs_under") == "lxc" else "")
    if column == "AUTOSTART":
        return "1" if info["autostart"] else "0"
    if column in ("GROUPS", "INTERFACE"):
        return ",".join(info["groups" if column == "GROUPS" else "interfaces"]) or "-"
    if column in ("IPV4", "IPV6"):
        return ", ".join(info[column.lower()]) or "-"
    if column == "UNPRIVILEGED":
        return "true" if info["unprivileged"] else "false"
    if column == "PID":
        return str(info["pid"]) if info["pid"] else "-"
    return human_bytes(info["swap" if column == "SWAP" else "memory"])


def row(info: dict[str, Any], header: tuple[str, ...] = COLUMNS) -> list[str]:
    return [cell(info, column) for column in header]


def table(rows: list[list[str]], header: tuple[str, ...] = COLUMNS) -> str:
    widths = [max(len(cells[i]) for cells in [list(header), *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
             .rstrip() for cells in [list(header), *rows]]
    return "\n".join(lines)


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    containers = discover([args.lxcpath] if args.lxcpath else None)
    if not needs_state(args):
        # Names only: what shell completion asks for, answered without D-Bus.
        return [{"name": name} for name, _ in containers
                if not args.names or name in args.names]
    from lxcsd.systemd.manager import Systemd

    infos = []
    with Systemd() as systemd:
        loaded = systemd.list_units(["lxc@*.service"])
        for name, config in containers:
            if args.names and name not in args.names:
                continue
            info = container_status(systemd, name, config, loaded=loaded)
            if selected(info, args):
                infos.append(info)
    return infos


def run(args: argparse.Namespace) -> int:
    infos = collect(args)
    if args.format == "json":
        json.dump(infos, sys.stdout, indent=2)
        print()
    elif args.line:
        for info in infos:
            print(info["name"])
    elif infos:
        header = args.fancy_format or COLUMNS
        print(table([row(info, header) for info in infos], header))
    listed = {info["name"] for info in infos}
    missing = [name for name in args.names if name not in listed and not unlisted(name, args)]
    for name in missing:
        print(f"lxcsd: no container {name!r}", file=sys.stderr)
    return 1 if missing else 0


def unlisted(name: str, args: argparse.Namespace) -> bool:
    """Whether a named container exists but the filters (--running, ...) left it out."""
    from lxcsd.config.load import find_container
    from lxcsd.errors import ConfigError

    try:
        find_container(name, args.lxcpath)
    except ConfigError:
        return False
    return True
