"""``lxcsd create NAME [-t busybox|debian] [--unprivileged]``: a new container in the
lxcpath: LXCPATH/NAME/rootfs from the template and LXCPATH/NAME/config (the global
lxc.default_config, /etc/lxc/default.conf, when it exists, then the template's keys), as
lxc-create does. The container is built under a hidden name and renamed into place when
complete, holding LXC's lock of NAME (lxcsd.lock): a failure or Ctrl-C removes what was
made, and two creates of one name never both succeed.
"""

from __future__ import annotations

import argparse
import os
import sys

from lxcsd.config.globalconf import read_global_config
from lxcsd.errors import LxcsdError
from lxcsd.templates import TEMPLATES

from ._containers import (
    container_dir,
    discard,
    idmap_lines,
    publish,
    refuse_existing,
    require_root,
    shift_ids,
    subid_base,
    temporary_path,
)
from ._target import add_lxcpath_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd create web1                      busybox (the default template)
  lxcsd create deb1 -t debian            Debian bookworm with systemd (debootstrap)
  lxcsd create u1 --unprivileged         ids shifted to root's /etc/subuid range
  lxcsd create c1 -P /srv/lxc            in another lxcpath
  lxcsd create c1 -f /dev/null           without /etc/lxc/default.conf's keys (network)

Then: lxcsd start NAME (systemd runs it as lxc@NAME.service), lxcsd attach NAME.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "create", help="create a container from a template",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1] if __doc__ else None,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", metavar="NAME", help="container name")
    parser.add_argument("-t", "--template", choices=TEMPLATES, default="busybox",
                        help="root file system template (default: busybox)")
    parser.add_argument("--unprivileged", action="store_true",
                        help="map root to root's /etc/subuid and /etc/subgid ranges")
    parser.add_argument("-f", "--config", metavar="FILE",
                        help="start the config from FILE instead of lxc.default_config "
                        "(-f /dev/null: nothing)")
    parser.add_argument("--release", metavar="SUITE", help="debian: the suite (bookworm)")
    parser.add_argument("--mirror", metavar="URL", help="debian: the mirror")
    add_lxcpath_option(parser)
    return parser


def default_config_text(path: str | None = None) -> str:
    path = path or read_global_config().default_config
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError:
        return ""
    return f"# From {path}\n{text.rstrip()}\n\n" if text.strip() else ""


def config_text(name: str, directory: str, template: str, lines: list[str],
                base: str | None = None) -> str:
    head = f"# Container {name}, made by: lxcsd create -t {template}\n"
    body = [f"lxc.rootfs.path = dir:{os.path.join(directory, 'rootfs')}", *lines]
    return head + default_config_text(base) + "\n".join(body) + "\n"


def run(args: argparse.Namespace) -> int:
    require_root("create")
    directory = container_dir(args.name, args.lxcpath)
    refuse_existing(directory)
    if args.config and not os.path.exists(args.config):
        raise LxcsdError(f"-f {args.config}: no such file")
    bases = (subid_base("u"), subid_base("g")) if args.unprivileged else None
    module = _template(args.template)
    lxcpath = os.path.dirname(directory)
    os.makedirs(lxcpath, 0o755, exist_ok=True)
    from lxcsd.lock import ContainerLock

    with ContainerLock(lxcpath, args.name):
        refuse_existing(directory)  # made while we waited for the lock
        built = temporary_path(lxcpath, "create")
        os.mkdir(built, 0o770)
        try:
            build(args, module, bases, built, directory)
            publish(built, directory)
        except BaseException:
            discard(built)
            raise
    print(f"created {args.name} in {directory}", file=sys.stderr)
    return 0


def build(args: argparse.Namespace, module: Any, bases: tuple[int, int] | None, built: str,
          directory: str) -> None:
    """The container in ``built``, its config naming its final ``directory``."""
    rootfs = os.path.join(built, "rootfs")
    os.mkdir(rootfs, 0o755)
    if args.template == "debian":
        module.build(rootfs, args.name, args.release or module.SUITE, args.mirror)
    else:
        module.build(rootfs, args.name)
    lines = module.config_lines(args.name)
    if bases is not None:
        shift_ids(rootfs, *bases)
        # As lxc-create: the container's root must reach its rootfs through LXCPATH/NAME
        # (mode 0770), so the directory is given to the mapped root.
        os.chown(built, *bases)
        lines += idmap_lines(*bases)
    with open(os.path.join(built, "config"), "w", encoding="utf-8") as f:
        f.write(config_text(args.name, directory, args.template, lines, args.config))


def _template(name: str) -> Any:
    if name == "debian":
        from lxcsd.templates import debian

        return debian
    if name == "busybox":
        from lxcsd.templates import busybox

        return busybox
    raise LxcsdError(f"unknown template {name!r}")  # pragma: no cover - argparse checks
