"""``lxcsd destroy NAME [--force]``: remove a container: its directory (config, root file
system inside it, everything else there), as lxc-destroy does, its unit's enablement and
its generated AppArmor profile.
Refuses a running container unless --force, which stops it first. Symlinks are never
followed: a symlinked container directory loses only the link, a root file system outside
the container directory is kept (and named). Holds LXC's lock of NAME (lxcsd.lock): of two
destroys at once, the second finds nothing and says so. Then systemd reloads and forgets
the unit's failed state, so neither `systemctl status` nor `lxcsd monitor` shows a ghost.
"""

from __future__ import annotations

import argparse
import os
import sys

from lxcsd.config.load import find_container
from lxcsd.config.names import unit_name
from lxcsd.errors import LxcsdError

from ._containers import is_running, refuse_if_lxc_runs, remove_container_dir, require_root
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
    except LxcsdError:
        pass


def _forget(name: str) -> None:
    """Reload (the generator drops the container's drop-in) and reset the unit's failed
    state: best effort, without systemd there is nothing to forget."""
    try:
        from lxcsd.systemd.manager import Systemd

        with Systemd() as systemd:
            systemd.reload()
            systemd.reset_failed(unit_name(name))
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
    require_root("destroy")
    lxcpath = os.path.dirname(os.path.dirname(find_container(args.name, args.lxcpath)))
    from lxcsd.lock import ContainerLock

    with ContainerLock(lxcpath, args.name):
        config = find_container(args.name, lxcpath)  # a destroy that got the lock first
        directory = os.path.dirname(config)
        refuse_if_lxc_runs(args.name, config)  # even with --force: LXC's to stop, not ours
        if is_running(args.name):
            if not args.force:
                raise LxcsdError(f"{args.name} is running", "stop it first, or use --force")
            _stop(args.name)
        container, _ = load_quietly(args.name, config)
        rootfs = container.rootfs.path if container is not None else None
        _disable(args.name)
        remove_container_dir(directory)
        _forget_profile(args.name, lxcpath)
    _forget(args.name)
    if rootfs and not os.path.abspath(rootfs).startswith(directory.rstrip("/") + "/"):
        print(f"kept {rootfs}: the root file system is outside {directory}", file=sys.stderr)
    print(f"destroyed {args.name}", file=sys.stderr)
    return 0
