"""``lxcsd ls``: the containers, as ``lxc-ls -f`` lists them, plus PID and MEMORY.

STATE comes from the unit lxc@NAME.service (RUNNING, STOPPED, STARTING, STOPPING, FAILED);
AUTOSTART is 1 when lxc.start.auto is set or the unit is enabled; IPV4/IPV6 are the
container's own addresses (read in its network namespace); MEMORY is the unit's cgroup's.
"""

from __future__ import annotations

import argparse
import json
import sys

from lxcsd.config.load import discover

from ._status import container_status, human_bytes
from ._target import add_lxcpath_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd ls                     every container, as a table
  lxcsd ls --running           only running containers
  lxcsd ls --group web         containers with lxc.group = web
  lxcsd ls --format json       machine-readable (memory in bytes)
"""
COLUMNS = ("NAME", "STATE", "AUTOSTART", "GROUPS", "IPV4", "IPV6", "UNPRIVILEGED", "PID",
           "MEMORY")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ls", help="list containers and their state",
        description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--running", action="store_true", help="only running containers")
    which.add_argument("--stopped", action="store_true", help="only stopped containers")
    parser.add_argument("-g", "--group", action="append", metavar="GROUP",
                        help="only containers in GROUP (repeatable: any of them)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="output format (default: table)")
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these containers")
    add_lxcpath_option(parser)
    return parser


def selected(info: dict[str, Any], args: argparse.Namespace) -> bool:
    if args.names and info["name"] not in args.names:
        return False
    if args.running and info["state"] != "RUNNING":
        return False
    if args.stopped and info["state"] not in ("STOPPED", "FAILED"):
        return False
    return not args.group or any(group in info["groups"] for group in args.group)


def row(info: dict[str, Any]) -> list[str]:
    return [info["name"], info["state"], "1" if info["autostart"] else "0",
            ",".join(info["groups"]) or "-", ", ".join(info["ipv4"]) or "-",
            ", ".join(info["ipv6"]) or "-", "true" if info["unprivileged"] else "false",
            str(info["pid"]) if info["pid"] else "-", human_bytes(info["memory"])]


def table(rows: list[list[str]], header: tuple[str, ...] = COLUMNS) -> str:
    widths = [max(len(cells[i]) for cells in [list(header), *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
             .rstrip() for cells in [list(header), *rows]]
    return "\n".join(lines)


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    from lxcsd.systemd import Systemd

    containers = discover([args.lxcpath] if args.lxcpath else None)
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
    elif infos:
        print(table([row(info) for info in infos]))
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
