"""The arguments that name a container: NAME or ``-n NAME`` (as every lxc-* tool takes it),
``-P/--lxcpath``, and the NAME|PATH argument of ``lxcsd check`` and ``lxcsd config``."""

from __future__ import annotations

import argparse
import os

from lxcsd.config.load import find_container, lxcpaths
from lxcsd.errors import ConfigError, LxcsdError

from ._help import after_parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

NAME_HELP = "container name, as the lxc-* tools take it (NAME may be given without -n)"


def resolve(target: str, lxcpath: str | None = None) -> tuple[str | None, str]:
    """(container name or None, config path) for a container name or a config file path.

    An argument with a '/' is a path; otherwise a container of that name wins over a file of
    that name in the current directory."""
    if "/" in target:
        return None, target
    try:
        return target, find_container(target, lxcpath)
    except ConfigError:
        if os.path.isfile(target):
            return None, target
        raise


def add_lxcpath_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-P", "--lxcpath", metavar="DIR",
        help="directory holding the containers (default: $LXCSD_LXCPATH, else lxc.lxcpath "
        "of /etc/lxc/lxc.conf, else /var/lib/lxc)")


class _Collect(argparse.Action):
    """Append to one list, from positionals and -n alike (argparse's "append" would let a
    positional replace what -n gave)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values is None:
            return
        found = list(getattr(namespace, self.dest, None) or [])
        found.extend(values if isinstance(values, list) else [values])
        setattr(namespace, self.dest, found)


def add_name_option(parser: argparse.ArgumentParser, dest: str = "n_names") -> None:
    """-n/--name NAME, repeatable, collected in args.<dest>."""
    parser.add_argument("-n", "--name", dest=dest, action=_Collect, metavar="NAME",
                        help=NAME_HELP)


def add_names(parser: argparse.ArgumentParser, *, many: bool, required: bool = True,
              help: str = "container name") -> None:
    """NAME positionals and -n NAME: ``args.names`` (many) or ``args.name`` (one) after
    parsing, in the order given; with required, at least one."""
    parser.add_argument("names", nargs="*" if many else "?", action=_Collect, metavar="NAME",
                        help=help)
    add_name_option(parser, dest="names")

    def rule(args: argparse.Namespace, error: Callable[[str], NoReturn]) -> None:
        names = list(args.names or [])
        if required and not names:
            error("a container name is needed: NAME or -n NAME")
        if many:
            args.names = names
            return
        if len(names) > 1:
            error(f"one container name expected, got {len(names)}: {' '.join(names)}")
        args.name = names[0] if names else None

    after_parse(parser, rule)


def take(words: list[str], given: list[str] | None, what: str,
         error: Callable[[str], NoReturn]) -> str:
    """The value of an argument that may be an option (given) or the next positional."""
    if given:
        if len(given) > 1:
            error(f"{what} given {len(given)} times")
        return given[0]
    if not words:
        error(f"{what} is missing")
    return words.pop(0)


def check_unit_lxcpath(name: str, lxcpath: str | None) -> None:
    """For verbs that act on lxc@NAME.service: a container looked up with -P DIR must be the
    one that unit runs (systemd's units find containers in the configured lxcpaths)."""
    if lxcpath is None:
        return
    find_container(name, lxcpath)
    configured = [os.path.abspath(path) for path in lxcpaths()]
    if os.path.abspath(lxcpath) not in configured or (
            find_container(name) != find_container(name, lxcpath)):
        raise LxcsdError(f"lxc@{name}.service does not run {os.path.join(lxcpath, name)}: "
                         f"the units read the lxcpath {':'.join(configured)}",
                         "set lxc.lxcpath in /etc/lxc/lxc.conf to use another lxcpath")
