"""``lxcsd config get|set|unset NAME|PATH KEY [VALUE]``, like LXC's get/set_config_item.

get prints the values in effect (includes read), one per line. set and unset edit only the
container's own file, keeping comments and the order of other lines; the value is checked
against the key table and the whole edited config must load before the file is replaced.
"""

from __future__ import annotations

import argparse
import os
import sys

from lxcsd.config import query
from lxcsd.config.build import build
from lxcsd.config.document import ConfigDocument
from lxcsd.config.load import find_container, load_path
from lxcsd.config.reader import read_config_text
from lxcsd.errors import ConfigError

from ._target import add_lxcpath_option, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd config get web1 lxc.net.0.link
  lxcsd config get web1 lxc.cgroup2            every lxc.cgroup2.* line in effect
  lxcsd config set web1 lxc.start.auto 1
  lxcsd config set web1 lxc.mount.entry '/srv/data srv/data none bind,create=dir 0 0'
  lxcsd config set web1 lxc.cap.drop ''        an empty value clears (includes too)
  lxcsd config unset web1 lxc.start.auto       remove the key's lines from the file

A single-valued key is replaced in place; a list key (lxc.mount.entry, lxc.idmap, ...)
gets one more line at the end of the file. A value starting with "--" goes after "--".
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "config", help="get, set or unset a config key of a container",
        description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    for name, help_text, extra in (("get", "print a key's values", ()),
                                   ("set", "set a key", ("value",)),
                                   ("unset", "remove a key's lines", ())):
        action = actions.add_parser(name, help=help_text, description=f"{help_text}.",
                                    epilog=EPILOG,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        action.add_argument("target", metavar="NAME|PATH", help="container name or config file")
        action.add_argument("key", metavar="KEY", help="config key, e.g. lxc.uts.name")
        for argument in extra:
            action.add_argument(argument, metavar="VALUE", help="new value ('' to clear)")
        add_lxcpath_option(action)
        action.set_defaults(func=run, action=name)
    return parser


def _get(args: argparse.Namespace, name: str | None, path: str) -> int:
    container = load_path(path, name)
    for value in query.values(container, args.key):
        print(value)
    return 0


def _check_and_save(document: ConfigDocument, name: str | None) -> None:
    """Load the edited text as the config it would become; save only if that works."""
    entries = read_config_text(document.text(), document.path)
    try:
        build(entries, name=name or "", config_path=document.path)
    except ConfigError as exc:
        raise ConfigError(f"not saved, the result would not load: {exc.message}",
                          path=exc.path, line=exc.line, key=exc.key, hint=exc.hint) from None
    document.save()


def _set(args: argparse.Namespace, name: str | None, path: str) -> int:
    document = ConfigDocument.load(path)
    document.set(args.key, args.value)
    _check_and_save(document, name)
    return 0


def _unset(args: argparse.Namespace, name: str | None, path: str) -> int:
    document = ConfigDocument.load(path)
    if document.unset(args.key) == 0:
        print(f"{path}: {args.key} is not set in this file", file=sys.stderr)
    else:
        _check_and_save(document, name)
    remaining = query.values(load_path(path, name), args.key)
    if remaining:
        print(f"{args.key} still has a value from an included file; "
              f"'lxcsd config set {args.target} {args.key} \"\"' clears it", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    name, path = resolve(args.target, args.lxcpath)
    handler = {"get": _get, "set": _set, "unset": _unset}[args.action]
    if args.action == "get" or name is None:
        return handler(args, name, path)
    # An edit of a container's config: under LXC's lock of it, as lxc's save_config.
    from lxcsd.lock import ContainerLock

    lxcpath = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    with ContainerLock(lxcpath, name):
        path = find_container(name, lxcpath)  # destroyed while we waited?
        return handler(args, name, path)
