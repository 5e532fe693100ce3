"""``lxcsd destroy NAME [--force]``: remove a container: its directory (config, root file
system inside it, everything else there), as lxc-destroy does, its unit's enablement and
its generated AppArmor profile.
Refuses a running container unless --force, which stops it first. Symlinks are never
followed: a symlinked container directory loses only the link, a root file system outside
the container directory is kept (and named).
"""

from __future__ import annotations

import argparse
import os
import sys

from lxcsd.config.load import find_container
from lxcsd.config.names import unit_name
from lxcsd.errors import LxcsdError

from ._containers import is_running, refuse_if_lxc_runs, remove_tree
from ._status import load_quietly
from ._target import add_lxcpath_option, add_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd destroy web1
  lxcsd destroy web1 --force     stop it first if it runs
  lxcsd destroy -n web1 -f       the same, as lxc-destroy
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "destroy", help="remove a container and its root file system",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1] if __doc__ else None,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_names(parser, many=False, help="container name")
    parser.add_argument("-f", "--force", action="store_true", help="stop it first if it runs")
    add_lxcpath_option(parser)
    return parser


def _stop(name: str) -> None:
    from lxcsd.systemd.manager import Systemd

    with Systemd() as systemd:
        result = systemd.stop(unit_name(name))
    if result != "done" or is_running(name):
        raise LxcsdError(f"{name} did not stop ({result})", f"see journalctl -u {unit_name(name)}")


def _disable(name: str) -> None:
    """Remove install links of lxc@NAME (best effort: no systemd, nothing to undo)."""
    try:
        from lxcsd.systemd.manager import Systemd

        with Systemd() as systemd:
            if systemd.unit_file_state(unit_name(name)) == "enabled":
                systemd.disable([unit_name(name)])
                systemd.reload()
    except LxcsdError:
        pass


def _forget_profile(name: str, lxcpath: str) -> None:
    """The generated AppArmor profile the starts kept (lxcsd.runtime.apparmor)."""
    from lxcsd.runtime import apparmor

    try:
        os.unlink(apparmor.profile_file(name, os.path.abspath(lxcpath)))
    except FileNotFoundError:
        pass


def run(args: argparse.Namespace) -> int:
    config = find_container(args.name, args.lxcpath)
    directory = os.path.dirname(config)
    refuse_if_lxc_runs(args.name, config)  # even with --force: LXC's to stop, not ours
    if is_running(args.name):
        if not args.force:
            raise LxcsdError(f"{args.name} is running", "stop it first, or use --force")
        _stop(args.name)
    container, _ = load_quietly(args.name, config)
    rootfs = container.rootfs.path if container is not None else None
    _disable(args.name)
    remove_tree(directory)
    _forget_profile(args.name, os.path.dirname(directory))
    if rootfs and not os.path.abspath(rootfs).startswith(directory.rstrip("/") + "/"):
        print(f"kept {rootfs}: the root file system is outside {directory}", file=sys.stderr)
    print(f"destroyed {args.name}", file=sys.stderr)
    return 0
