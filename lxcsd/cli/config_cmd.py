"""``lxcsd config get|set|unset|apply NAME|PATH ...``, like LXC's get/set_config_item.

get prints the values in effect (includes read), one per line. set and unset edit only the
container's own file, keeping comments and the order of other lines; the value is checked
against the key table, and the file is replaced only when the edit adds no error to the
config (errors it already had do not block an edit). unset removes any line check reports,
unknown keys included. apply gives every key of a fragment (LXC config lines) the
fragment's values in one edit, and touches nothing that already has them. set, unset and
apply hold LXC's lock of the container (lxcsd.lock) while they read and save, as liblxc's
save_config: two edits at once never lose one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from lxcsd.config import desired, query
from lxcsd.config.build import build
from lxcsd.config.document import ConfigDocument
from lxcsd.config.load import check_path, find_container, load_path
from lxcsd.config.reader import read_config_text
from lxcsd.errors import ConfigError

from ._help import after_parse
from ._target import add_lxcpath_option, add_name_option, resolve, take

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
  lxcsd config unset web1 lxc.net.0.typo       also a key check calls unknown
  lxcsd config get -n web1 lxc.uts.name        -n NAME, as lxc-* tools
  lxcsd config apply web1 web.conf --diff      every key of web.conf, one edit
  lxcsd config apply web1 - --check --diff <<< 'lxc.start.order = 10'

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
        value = " VALUE" if extra else ""
        action = actions.add_parser(
            name, help=help_text, description=f"{help_text}.", epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            usage=f"lxcsd config {name} [-h] [-P DIR] {{NAME|PATH | -n NAME}} KEY{value}")
        action.add_argument("words", nargs="*", metavar=f"NAME|PATH KEY{value}",
                            help="container name or config file, config key (e.g. "
                            "lxc.uts.name)" + (", new value ('' to clear)" if extra else ""))
        add_name_option(action)
        add_lxcpath_option(action)
        action.set_defaults(func=run, action=name)
        after_parse(action, _words)
    _add_apply(actions)
    return parser


APPLY_HELP = """\
FILE holds LXC config lines ('-': standard input). Afterwards each key FILE names has in
effect (includes read) exactly the values FILE gives it: a list key gets FILE's lines, not
more lines besides the file's; 'KEY =' clears it; 'lxc.net =' (or 'lxc.net.N =',
'lxc.cgroup2 =', 'lxc.hook =') first makes that whole group what FILE says. Keys FILE does not
name are left alone; a key that already has its values is not touched, so applying FILE
again changes nothing. The file is saved once, only if the result adds no error.
"""


def _add_apply(actions: Any) -> None:
    action = actions.add_parser(
        "apply", help="give a config the keys of a fragment, in one edit",
        description=APPLY_HELP, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="lxcsd config apply [-h] [-P DIR] [--check] [--diff] [--format {text,json}] "
              "{NAME|PATH | -n NAME} FILE")
    action.add_argument("words", nargs="*", metavar="NAME|PATH FILE",
                        help="container name or config file, the fragment ('-': stdin)")
    action.add_argument("--check", action="store_true", help="change nothing, only say")
    action.add_argument("--diff", action="store_true", help="print the change as a diff")
    action.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: {changed, path, keys, before, after} on stdout, or "
                        "{error: {path, line, key, message, hint}} and exit status 1")
    add_name_option(action)
    add_lxcpath_option(action)
    action.set_defaults(func=run, action="apply")
    after_parse(action, _words)


def _words(args: argparse.Namespace, error: Any) -> None:
    words = list(args.words)
    args.target = take(words, args.n_names, "the container (NAME|PATH)", error)
    if args.action == "apply":
        args.fragment = take(words, None, "the FILE", error)
    else:
        args.key = take(words, None, "the KEY", error)
    if args.action == "set":
        args.value = take(words, None, "the VALUE", error)
    if words:
        error(f"unexpected arguments: {' '.join(words)}")


def _get(args: argparse.Namespace, name: str | None, path: str) -> int:
    container = load_path(path, name)
    for value in query.values(container, args.key):
        print(value)
    return 0


def problems(text: str, path: str, name: str | None) -> list[ConfigError]:
    """Every error of a config's text (with its includes), as check reports them."""
    try:
        entries = read_config_text(text, path)
    except ConfigError as exc:
        return [exc]
    errors: list[ConfigError] = []
    build(entries, name=name or "", config_path=path, errors=errors)
    return errors


def _what(error: ConfigError, own: str) -> tuple[str, str, str]:
    """An error without its line number (an edit moves lines) for before/after."""
    return (error.path if error.path != own else "", error.key, error.message)


def _check_and_save(document: ConfigDocument, name: str | None, before: str) -> None:
    """Save the edited document unless it has an error the original text did not have."""
    _check_edit(document, name, before)
    document.save()


def _check_edit(document: ConfigDocument, name: str | None, before: str) -> None:
    """ConfigError for the first error the edit adds to the config."""
    old = [_what(e, document.path) for e in problems(before, document.path, name)]
    for error in problems(document.text(), document.path, name):
        if _what(error, document.path) in old:
            old.remove(_what(error, document.path))
            continue
        raise ConfigError(f"not saved, the result would not load: {error.message}",
                          path=error.path, line=error.line, key=error.key, hint=error.hint)


def _set(args: argparse.Namespace, name: str | None, path: str) -> int:
    document = ConfigDocument.load(path)
    before = document.text()
    document.set(args.key, args.value)
    _check_and_save(document, name, before)
    return 0


def _unset(args: argparse.Namespace, name: str | None, path: str) -> int:
    document = ConfigDocument.load(path)
    before = document.text()
    if document.unset(args.key) == 0:
        print(f"{path}: {args.key} is not set in this file", file=sys.stderr)
    else:
        _check_and_save(document, name, before)
    container, _ = check_path(path, name)
    try:
        remaining = query.values(container, args.key) if container is not None else []
    except ConfigError:  # a key the table does not know has no value anywhere
        remaining = []
    if remaining:
        print(f"{args.key} still has a value from an included file; "
              f"'lxcsd config set {args.target} {args.key} \"\"' clears it", file=sys.stderr)
    return 0


def _read_fragment(source: str) -> tuple[str, str]:
    """(text, name for messages) of the fragment FILE, or of stdin for '-'."""
    if source == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(source, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read(), source
    except OSError as exc:
        raise ConfigError(f"cannot read the fragment: {exc.strerror}", path=source) from None


def _apply(args: argparse.Namespace, name: str | None, path: str) -> int:
    text, source = _read_fragment(args.fragment)
    fragment = desired.fragment_entries(text, source)
    document = ConfigDocument.load(path)
    before = document.text()
    changed = desired.apply(document, fragment, name or "")
    if changed:
        _check_edit(document, name, before)
        if not args.check:
            document.save()
    if args.format == "json":
        print(json.dumps({"changed": bool(changed), "path": path, "keys": changed,
                          "before": before, "after": document.text()}))
        return 0
    if args.diff:
        sys.stdout.writelines(_diff(before, document.text(), path))
    verb = "would change" if args.check else "changed"
    print(f"{path}: {verb} {', '.join(changed)}" if changed else f"{path}: unchanged",
          file=sys.stderr)
    return 0


def _diff(before: str, after: str, path: str) -> list[str]:
    import difflib

    return list(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                     f"{path} (before)", f"{path} (after)"))


def _json_error(exc: ConfigError) -> int:
    fields = {"path": exc.path, "line": exc.line, "key": exc.key, "message": exc.message,
              "hint": exc.hint, "text": str(exc)}
    print(json.dumps({"error": fields}))
    print(f"lxcsd: {exc}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    try:
        name, path = resolve(args.target, args.lxcpath)
        handler = {"get": _get, "set": _set, "unset": _unset, "apply": _apply}[args.action]
        if args.action == "get" or name is None:
            return handler(args, name, path)
        # An edit of a container's config: under LXC's lock of it, as lxc's save_config.
        from lxcsd.lock import ContainerLock

        lxcpath = os.path.dirname(os.path.dirname(os.path.abspath(path)))
        with ContainerLock(lxcpath, name):
            path = find_container(name, lxcpath)  # destroyed while we waited?
            return handler(args, name, path)
    except ConfigError as exc:
        if args.action == "apply" and args.format == "json" and not args.debug:
            return _json_error(exc)
        raise
