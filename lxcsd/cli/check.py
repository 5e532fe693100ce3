"""``lxcsd check NAME|PATH...``: parse and validate container configs.

Reads each config with its includes, then runs the start's own validation (the plan the
helper makes before it changes anything: the root file system and init, the cgroup2
controllers limits need, AppArmor, seccomp policy, /etc/subuid delegation), reports every
error and warning with file and line (warnings: keys lxcsd reads but does not apply yet,
legacy and cgroup v1 keys, ignored lines), and exits 1 when any config has an error: what
check accepts, ``lxcsd-helper start`` accepts. A privileged container (no lxc.idmap) gets
a note: what that means is worth knowing, though it is no error. ``--format json`` prints
one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys

from lxcsd.config import build
from lxcsd.config.load import check_path, discover
from lxcsd.errors import ConfigError, LxcsdError
from lxcsd.runtime.compiler import make_plan

from ._target import add_lxcpath_option, add_name_option, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.config.model import Container

EPILOG = """\
examples:
  lxcsd check web1                  the container web1 (in the lxcpath)
  lxcsd check /srv/lxc/web1/config  a config file (a path needs a '/')
  lxcsd check --all                 every container of the lxcpath
  lxcsd check web1 --format json    machine-readable result

Exit status: 0 when no config has an error (warnings allowed), 1 otherwise.
Without --config-only, an error is anything that would stop `systemctl start lxc@NAME`
here (a missing rootfs or init, a limit whose cgroup2 controller this host lacks, an
AppArmor profile it cannot load); with it, only the file's own keys and values.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check", help="parse and validate container configs",
        description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", metavar="NAME|PATH",
                        help="container names or config files")
    add_name_option(parser)
    parser.add_argument("--all", action="store_true", help="check every container")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text)")
    parser.add_argument("--no-warnings", action="store_true", help="report errors only")
    parser.add_argument("--config-only", action="store_true",
                        help="check the file alone, not whether this host can start it")
    add_lxcpath_option(parser)
    return parser


def _as_dict(problem: ConfigError) -> dict[str, Any]:
    return {"path": problem.path, "line": problem.line or None, "key": problem.key or None,
            "message": problem.message, "hint": problem.hint or None}


def _line(level: str, problem: ConfigError) -> str:
    where = problem.location() or "(config)"
    key = f"{problem.key}: " if problem.key else ""
    hint = f" ({problem.hint})" if problem.hint else ""
    return f"{where}: {level}: {key}{problem.message}{hint}"


PRIVILEGED_NOTE = ("privileged container (no lxc.idmap): its root is the host's root, kept "
                   "in by capabilities, seccomp and masks only; lxcsd create makes "
                   "unprivileged ones (lxc.idmap = u 0 100000 65536, g 0 100000 65536, ids "
                   "from /etc/subuid)")


def check_one(name: str | None, path: str, with_warnings: bool,
              config_only: bool = False) -> dict[str, Any]:
    """Check one config; a dict with name, config, ok, errors, warnings and notes."""
    container, errors = check_path(path, name)
    warnings = build.warnings(container) if container is not None and with_warnings else []
    if container is not None and with_warnings:
        warnings += autostart_warnings(container, path)
    if container is not None and not config_only:
        # The helper's own validation, every refusal collected instead of the first.
        plan = make_plan(name or container.name, container, errors=errors)
        warnings += plan.warnings if with_warnings else []
    # A line with an error needs no second message about it.
    failed = {(e.path, e.line) for e in errors}
    warnings = [w for w in warnings if (w.path, w.line) not in failed]
    notes = [PRIVILEGED_NOTE] if container is not None and not container.idmaps and \
        with_warnings else []
    return {"name": container.name if container else name, "config": path,
            "ok": not errors, "errors": errors, "warnings": warnings, "notes": notes}


def autostart_warnings(container: Container, path: str) -> list[ConfigError]:
    """Debian's lxc.service would autostart it a second time (lxcsd.liblxc.lxcservice)."""
    from lxcsd.liblxc.lxcservice import double_autostart

    text = double_autostart(bool(container.start.auto), container.groups)
    return [ConfigError(text, path=path, key="lxc.start.auto")] if text else []


def _targets(args: argparse.Namespace) -> list[tuple[str | None, str]]:
    args.targets = list(args.targets) + (args.n_names or [])
    if args.all:
        paths = [args.lxcpath] if args.lxcpath else None
        found: list[tuple[str | None, str]] = list(discover(paths))
        return found + [resolve(t, args.lxcpath) for t in args.targets]
    if not args.targets:
        raise LxcsdError("nothing to check", hint="give container names or paths, or --all")
    return [resolve(target, args.lxcpath) for target in args.targets]


def _print_text(results: list[dict[str, Any]]) -> None:
    for result in results:
        for error in result["errors"]:
            print(_line("error", error))
        for warning in result["warnings"]:
            print(_line("warning", warning))
        for note in result["notes"]:
            print(f"{result['config']}: note: {note}")
        label = result["name"] or result["config"]
        print(f"{label}: {len(result['errors'])} error(s), {len(result['warnings'])} "
              f"warning(s)", file=sys.stderr)


def _print_json(results: list[dict[str, Any]]) -> None:
    document = [{**result, "errors": [_as_dict(e) for e in result["errors"]],
                 "warnings": [_as_dict(w) for w in result["warnings"]]} for result in results]
    json.dump({"ok": all(r["ok"] for r in results), "results": document}, sys.stdout,
              indent=2)
    print()


def run(args: argparse.Namespace) -> int:
    results = [check_one(name, path, not args.no_warnings, args.config_only)
               for name, path in _targets(args)]
    (_print_json if args.format == "json" else _print_text)(results)
    return 0 if all(result["ok"] for result in results) else 1
