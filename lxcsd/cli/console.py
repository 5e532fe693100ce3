"""`lxcsd console NAME [-t TTY] [--show-log] [--clear-log] [-e ESCAPE]`, as lxc-console.

Attaches to the console (tty 0, the default) or tty N of a running container through
lxcsd-console.service; several people may attach to the same one at once. Ctrl-a q
detaches, Ctrl-a Ctrl-a sends Ctrl-a; -e changes the escape character (e.g. -e '^b').
--show-log prints the console ring buffer (lxc.console.buffer.size) instead, --clear-log
empties it (after printing it, when both are given).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from lxcsd.console import client, protocol
from lxcsd.errors import LxcsdError

from ._target import add_lxcpath_option, add_names, check_unit_lxcpath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "console", help="attach to a container's console or one of its ttys",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    add_names(parser, many=False, help="the container")
    parser.add_argument("-t", "--tty", type=int, default=0, metavar="TTY",
                        help="tty number; 0 (the default) is the console")
    parser.add_argument("--show-log", action="store_true",
                        help="print the console ring buffer and exit")
    parser.add_argument("--clear-log", action="store_true",
                        help="clear the console ring buffer (after --show-log)")
    parser.add_argument("-e", "--escape", default="^a", metavar="ESCAPE",
                        help="escape character, ^X for Ctrl-X (default ^a)")
    add_lxcpath_option(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from lxcsd.config.load import find_container

    find_container(args.name, args.lxcpath)  # "no container NAME", whatever the service says
    check_unit_lxcpath(args.name, args.lxcpath)
    try:
        if args.show_log or args.clear_log:
            return show_log(args)
        return attach(args)
    except OSError as e:
        raise unreachable(e) from None
    except protocol.ProtocolError as e:
        raise refused(args.name, e) from None


def show_log(args: argparse.Namespace) -> int:
    data = client.read_log(args.name, read=args.show_log, clear=args.clear_log)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0


def attach(args: argparse.Namespace) -> int:
    try:
        escape = client.parse_escape(args.escape)
    except ValueError as e:
        raise LxcsdError(str(e)) from None
    sock = client.open_attach(args.name, args.tty)
    key = client.escape_name(escape)
    what = "the console" if args.tty == 0 else f"tty {args.tty}"
    sys.stderr.write(f"Connected to {what} of {args.name}\n"
                     f"Type <{key} q> to exit the console, <{key} {key}> to enter {key} "
                     "itself\n")
    sys.stderr.flush()
    reason = client.attach(sock, escape=escape)
    if reason:
        sys.stderr.write(f"\r\nlxcsd console: {reason}\r\n")
    return 0


def unreachable(e: OSError) -> LxcsdError:
    path = protocol.socket_path()
    if isinstance(e, PermissionError):
        return LxcsdError(f"permission denied on {path}", "only root may use the consoles")
    if isinstance(e, (FileNotFoundError, ConnectionRefusedError)):
        return LxcsdError(f"the console service is not listening on {path}",
                          "systemctl start lxcsd-console.socket")
    return LxcsdError(f"console service at {path}: {e.strerror or e}")


def refused(name: str, e: protocol.ProtocolError) -> LxcsdError:
    if e.code != "unknown":
        return LxcsdError(str(e))
    unit = f"lxc@{name}.service"
    if not unit_active(unit):
        return LxcsdError(f"container {name} is not running", f"systemctl start {unit}")
    return LxcsdError(f"container {name} runs but has no console in lxcsd-console",
                      f"lxc.console.path = none, or see journalctl -u {unit}")


def unit_active(unit: str) -> bool:
    try:
        r = subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False,
                           stdin=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0
