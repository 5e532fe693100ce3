"""``lxcsd monitor [NAME...]``: print container state changes as they happen, as
``lxc-monitor`` does (``'NAME' changed state to [STATE]``), from systemd's D-Bus signals.
Without names, every container; runs until interrupted.
"""

from __future__ import annotations

import argparse
import json

from lxcsd.config.names import validate_name

from ._target import add_lxcpath_option, add_names, check_unit_lxcpath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd monitor                 every container
  lxcsd monitor web1 db1
  lxcsd monitor --format json   one JSON object per line: {"name": ..., "state": ...}
  lxcsd monitor --initial web1  the current state first, then changes
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "monitor", help="print container state changes as they happen",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1] if __doc__ else None,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_names(parser, many=True, required=False, help="only these containers")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text)")
    parser.add_argument("--initial", action="store_true",
                        help="first print each container's current state (once following "
                        "changes: nothing after it is missed)")
    add_lxcpath_option(parser)
    return parser


def line(name: str, state: str, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"name": name, "state": state})
    return f"'{name}' changed state to [{state}]"


async def monitor(names: set[str], fmt: str, initial: bool = False) -> None:
    from ._watch import Watcher

    watcher = await Watcher().connect()
    last: dict[str, str] = {}
    try:
        # The states before the first change, so only real changes are printed.
        last.update(await watcher.loaded_states())
        for name in names:
            last[name] = await watcher.state(name)
        if initial:
            for name, state in sorted(last.items()):
                if not names or name in names:
                    print(line(name, state, fmt), flush=True)
        while True:
            name, state = await watcher.queue.get()
            if (names and name not in names) or last.get(name) == state:
                continue
            last[name] = state
            print(line(name, state, fmt), flush=True)
    finally:
        watcher.close()


def run(args: argparse.Namespace) -> int:
    names = {validate_name(name) for name in args.names}
    for name in names:
        check_unit_lxcpath(name, args.lxcpath)
    import asyncio  # here, not at the top: every lxcsd command would pay for it

    try:
        asyncio.run(monitor(names, args.format, args.initial))
    except KeyboardInterrupt:
        pass
    return 0
