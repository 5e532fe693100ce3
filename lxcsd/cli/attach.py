"""``lxcsd attach NAME [-- CMD ...]``: run a command inside a running container.

The command runs in all the container's namespaces and its payload cgroup, with its
capability bounding set, seccomp policy and environment rules, as lxc-attach does (details:
lxcsd.attach). Without a command, the shell of the user in the container's
/etc/passwd (else /bin/sh). When stdin, stdout or stderr is a terminal, the command gets a
pty of the container's own (it never holds the caller's terminal).
"""

from __future__ import annotations

import argparse

from lxcsd.config.load import load_container

from ._help import after_parse
from ._target import add_lxcpath_option, add_name_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd attach web1                        root's shell in web1
  lxcsd attach web1 -- ps aux              a command (its exit status is lxcsd's)
  lxcsd attach -n web1 -- ps aux           the same, as lxc-attach
  lxcsd attach web1 -u 1000 --cwd /tmp -- id
  lxcsd attach web1 --clear-env -v LANG=C.UTF-8 -- env

Environment: kept by default (minus nothing, as lxc-attach); --clear-env starts empty
except PATH and --keep-var names. container=lxc, lxc.environment and -v are added.
Exit status: the command's; 128+N if signal N killed it; 126/127 if it cannot be run or
is not found; 1 when attaching failed.
"""


def _int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _add_options(parser: argparse.ArgumentParser) -> None:
    env = parser.add_mutually_exclusive_group()
    env.add_argument("--clear-env", action="store_true",
                     help="start from an empty environment (PATH set)")
    env.add_argument("--keep-env", action="store_true",
                     help="keep the caller's environment (the default)")
    parser.add_argument("--keep-var", action="append", default=[], metavar="VAR",
                        help="with --clear-env, keep VAR (repeatable)")
    parser.add_argument("-v", "--set-var", action="append", default=[], metavar="VAR=VALUE",
                        help="set a variable (repeatable)")
    parser.add_argument("-u", "--uid", type=_int, help="user id in the container (default 0)")
    parser.add_argument("-g", "--gid", type=_int,
                        help="group id in the container (default: the user's, else 0)")
    parser.add_argument("--cwd", metavar="DIR",
                        help="working directory (default: the current one if it exists "
                        "inside, else /)")
    tty = parser.add_mutually_exclusive_group()
    tty.add_argument("-t", "--pty", dest="pty", action="store_const", const=True,
                     help="allocate a pty even if no terminal is attached")
    tty.add_argument("-T", "--no-pty", dest="pty", action="store_const", const=False,
                     help="never allocate a pty (the command then holds the caller's "
                     "terminal, if any)")
    add_lxcpath_option(parser)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "attach", help="run a command in a running container",
        description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="lxcsd attach [OPTIONS] {NAME | -n NAME} [OPTIONS] [-- CMD ...]")
    _add_options(parser)
    add_name_option(parser)
    parser.add_argument("name", nargs="?", metavar="NAME", help="container name")
    # argparse cannot mix options after NAME with a "--" command (a positional list ends
    # at the first option); everything after NAME is split in run().
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="[OPTIONS] [-- CMD ...]",
                        help="more options, then the command and its arguments")
    after_parse(parser, _name)
    return parser


def _name(args: argparse.Namespace, error: Any) -> None:
    """With -n NAME, a word argparse took for NAME begins the command."""
    if args.n_names:
        if len(args.n_names) > 1:
            error("one container name expected")
        if args.name is not None:
            args.rest = [args.name, *args.rest]
        args.name = args.n_names[0]
    elif args.name is None:
        error("a container name is needed: NAME or -n NAME")


def split_rest(rest: list[str]) -> tuple[list[str], list[str]]:
    """(options, command) of what follows NAME: options up to "--" (or up to the first
    word that is not an option when there is no "--")."""
    if "--" in rest:
        cut = rest.index("--")
        return rest[:cut], rest[cut + 1:]
    options: list[str] = []
    words = iter(rest)
    for word in words:
        if not word.startswith("-"):
            return options, [word, *words]
        options.append(word)
        if word in _TAKES_VALUE:
            options.append(next(words, ""))
    return options, []


_TAKES_VALUE = frozenset(("--keep-var", "-v", "--set-var", "-u", "--uid", "-g", "--gid",
                          "--cwd", "-P", "--lxcpath"))


def run(args: argparse.Namespace) -> int:
    import os

    from lxcsd.attach.host import attach
    from lxcsd.attach.options import Options
    from lxcsd.errors import LxcsdError

    if os.geteuid() != 0:
        raise LxcsdError("lxcsd attach needs root", "joining a container's namespaces and "
                         "cgroup takes CAP_SYS_ADMIN: run it with sudo")

    options, command = split_rest(list(args.rest))
    if options:
        more = argparse.ArgumentParser(prog="lxcsd attach", add_help=False)
        _add_options(more)
        more.parse_args(options, namespace=args)
    container = load_container(args.name, args.lxcpath)
    opts = Options(argv=command, clear_env=args.clear_env, keep_vars=args.keep_var,
                   set_vars=args.set_var, uid=args.uid, gid=args.gid, cwd=args.cwd,
                   pty=args.pty)
    return attach(args.name, container, opts)
