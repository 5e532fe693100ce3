"""``lxcsd wait NAME STATE[|STATE...] [--timeout S]``: block until a container reaches a
state, as ``lxc-wait`` does. States: RUNNING, STOPPED, STARTING, STOPPING, FAILED (from the
unit's ActiveState/SubState), followed through systemd's D-Bus signals, not by polling.
"""

from __future__ import annotations

import argparse
import sys

from lxcsd.config.names import validate_name
from lxcsd.errors import LxcsdError
from lxcsd.systemd.manager import STATES

from ._help import after_parse
from ._target import add_lxcpath_option, add_name_option, check_unit_lxcpath, take

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd wait web1 RUNNING
  lxcsd wait web1 'STOPPED|FAILED' --timeout 30
  lxcsd wait -n web1 -s RUNNING -t 10            as lxc-wait

Exit status: 0 once the container is in one of the states (at once if it already is),
1 on timeout or error (a container that does not exist is an error at once).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "wait", help="wait until a container reaches a state",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1] if __doc__ else None,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="lxcsd wait [-h] [-t S] [-P DIR] {NAME | -n NAME} {STATE | -s STATE}")
    parser.add_argument("words", nargs="*", metavar="NAME STATE",
                        help="the container, then the states: |-separated, of "
                        + ", ".join(STATES))
    add_name_option(parser)
    parser.add_argument("-s", "--state", dest="s_states", action="append", metavar="STATE",
                        help="the states, as lxc-wait -s takes them")
    parser.add_argument("-t", "--timeout", type=float, default=None, metavar="S",
                        help="give up after S seconds (default: wait forever)")
    add_lxcpath_option(parser)
    after_parse(parser, _words)
    return parser


def _words(args: argparse.Namespace, error: Any) -> None:
    words = list(args.words)
    args.name = take(words, args.n_names, "the container name", error)
    args.states = take(words, args.s_states, "the state", error)
    if words:
        error(f"unexpected arguments: {' '.join(words)}")


def parse_states(text: str) -> set[str]:
    states = {part.strip().upper() for part in text.split("|") if part.strip()}
    unknown = states - set(STATES)
    if unknown or not states:
        raise LxcsdError(f"unknown state {', '.join(sorted(unknown)) or repr(text)}",
                         "use " + ", ".join(STATES) + " (several joined with |)")
    return states


async def wait_for(name: str, wanted: set[str], timeout: float | None) -> str | None:
    """The state reached, None on timeout."""
    from ._watch import Watcher

    watcher = await Watcher().connect()
    try:
        # Subscribed before reading the state: a change in between is queued, not lost.
        state = await watcher.state(name)

        async def follow(state: str) -> str:
            while state not in wanted:
                changed, state_now = await watcher.queue.get()
                if changed == name:
                    state = state_now
            return state

        import asyncio

        try:
            return await asyncio.wait_for(follow(state), timeout)
        except TimeoutError:
            return None
    finally:
        watcher.close()


def run(args: argparse.Namespace) -> int:
    validate_name(args.name)
    check_unit_lxcpath(args.name, args.lxcpath)
    wanted = parse_states(args.states)
    from lxcsd.systemd.manager import Systemd

    from ._containers import known

    with Systemd() as systemd:
        known(args.name, systemd=systemd)
    import asyncio  # here, not at the top: every lxcsd command would pay for it

    reached = asyncio.run(wait_for(args.name, wanted, args.timeout))
    if reached is None:
        print(f"lxcsd: {args.name}: not {'|'.join(sorted(wanted))} after {args.timeout:g} s",
              file=sys.stderr)
        return 1
    return 0
