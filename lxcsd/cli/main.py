"""``lxcsd``: the command-line entry point (``main(argv=None) -> int``).

Subcommands are the modules of the :mod:`lxcsd.cli` package that define ``add_parser`` and
``run`` (see the package docstring); they are found at start, so adding one needs no edit
here. Errors the user can act on (:class:`lxcsd.errors.LxcsdError`) print as one line on
stderr with exit status 1, and so do other errors: a missing permission ("must be run as
root"), a failed system call (its message and file), even a bug; Ctrl-C exits 130 and
SIGTERM 143 once the command cleaned up. No traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from lxcsd import __version__
from lxcsd.errors import LxcsdError

from ._help import Parser, finish

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

EPILOG = """\
examples:
  lxcsd create web1                create a busybox container (-t debian: Debian)
  lxcsd start web1                 start it: systemctl start lxc@web1 does the same
  lxcsd ls                         every container: state, addresses, PID, memory
  lxcsd ls -1 --running            the names of the running ones, one per line
  lxcsd info web1                  state, PID, addresses, links, cgroup usage and limits
  lxcsd attach web1 -- ps aux      run a command inside (as lxc-attach)
  lxcsd console web1               its console; Ctrl-a q detaches (as lxc-console)
  lxcsd stop web1                  the halt signal, then lxc.signal.stop
  lxcsd enable web1                start it at boot (or lxc.start.auto = 1)
  lxcsd check web1                 check its config and includes, with file:line
  lxcsd config set web1 lxc.start.auto 1
  lxcsd destroy web1               remove it (-f: stop it first)

Every command takes the container as NAME or -n NAME, and -P DIR for another lxcpath.
'lxcsd COMMAND --help' describes a command; man lxcsd describes them all. Containers are
looked up in $LXCSD_LXCPATH (colon-separated) or lxc.lxcpath of /etc/lxc/lxc.conf (default
/var/lib/lxc). systemd runs each container as lxc@NAME.service (man lxc@.service).
"""


def _subcommand_modules() -> list[ModuleType]:
    import lxcsd.cli as package

    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name == "main" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"lxcsd.cli.{info.name}")
        if hasattr(module, "add_parser") and hasattr(module, "run"):
            found.append(module)
    return found


def _take_debug(argv: list[str]) -> tuple[bool, list[str]]:
    """--debug anywhere before a "--" (argparse would only take it before the command)."""
    end = argv.index("--") if "--" in argv else len(argv)
    rest = [arg for arg in argv[:end] if arg != "--debug"] + argv[end:]
    return len(rest) != len(argv), rest


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lxcsd", description="LXC-style system containers as systemd services.",
                    epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"lxcsd {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks instead of one-line errors")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in _subcommand_modules():
        sub = module.add_parser(subparsers)
        if sub is not None and sub.get_default("func") is None:
            sub.set_defaults(func=module.run)
    return parser


class Terminated(BaseException):
    """SIGTERM: unwinds like Ctrl-C, so that a create or copy removes what it built."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _error(exc: LxcsdError) -> None:
    print(f"lxcsd: {exc}", file=sys.stderr)


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    text = f"{exc.strerror or exc}{where}"
    if isinstance(exc, PermissionError) and os.geteuid() != 0:
        return f"{text} (lxcsd must be run as root)"
    return text


def main(argv: list[str] | None = None) -> int:
    # Config values and names may hold undecodable bytes (kept as surrogates): print them
    # escaped rather than failing.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    debug, argv = _take_debug(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    finish(args)
    args.debug = debug or args.debug
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(func(args))
    except Terminated:
        return 143
    except LxcsdError as exc:
        if args.debug:
            raise
        _error(exc)
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(file=sys.stderr)  # past the ^C the terminal echoed
        return 130
    except OSError as exc:
        if args.debug:
            raise
        print(f"lxcsd: {_os_error(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line, and how to see more
        if args.debug:
            raise
        print(f"lxcsd: internal error: {exc!r} (--debug shows where)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
