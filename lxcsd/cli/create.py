"""``lxcsd create NAME [-t busybox|debian] [--privileged]``: a new container in the
lxcpath: LXCPATH/NAME/rootfs from the template and LXCPATH/NAME/config (the global
lxc.default_config, /etc/lxc/default.conf, when it exists, then the template's keys), as
lxc-create does. A failure removes what was made.

Unprivileged by default, as Incus makes its containers: root inside is mapped to root's
/etc/subuid and /etc/subgid range (lxc.idmap, the rootfs's owners shifted into it), so a
process that escapes the container is nobody on the host. ``--privileged`` makes the old
kind, whose root is the host's root, held back only by capabilities, seccomp and masks.
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
    idmap_lines,
    refuse_existing,
    remove_tree,
    shift_ids,
    subid_base,
)
from ._target import add_lxcpath_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd create web1                      busybox (the default template), unprivileged:
                                         ids shifted to root's /etc/subuid range
  lxcsd create deb1 -t debian            Debian bookworm with systemd (debootstrap)
  lxcsd create p1 --privileged           root inside is root on the host (no lxc.idmap)
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
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--privileged", action="store_true",
                      help="no lxc.idmap: root in the container is root on the host, kept "
                      "in by capabilities, seccomp and masks only (what lxc-create makes "
                      "as root)")
    mode.add_argument("--unprivileged", action="store_true",
                      help="map root to root's /etc/subuid and /etc/subgid ranges (the "
                      "default)")
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
    directory = container_dir(args.name, args.lxcpath)
    refuse_existing(directory)
    if args.config and not os.path.exists(args.config):
        raise LxcsdError(f"-f {args.config}: no such file")
    bases = None if args.privileged else _subid_bases()
    module = _template(args.template)
    os.makedirs(os.path.dirname(directory), 0o755, exist_ok=True)
    os.mkdir(directory, 0o770)
    try:
        rootfs = os.path.join(directory, "rootfs")
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
            os.chown(directory, *bases)
            lines += idmap_lines(*bases)
        with open(os.path.join(directory, "config"), "w", encoding="utf-8") as f:
            f.write(config_text(args.name, directory, args.template, lines, args.config))
    except BaseException:
        remove_tree(directory)
        raise
    print(f"created {args.name} in {directory}", file=sys.stderr)
    if args.privileged:
        print(f"note: {args.name} is privileged: its root is the host's root (no user "
              "namespace)", file=sys.stderr)
    return 0


def _subid_bases() -> tuple[int, int]:
    try:
        return subid_base("u"), subid_base("g")
    except LxcsdError as exc:
        raise LxcsdError(exc.message, f"{exc.hint}, or create a privileged container with "
                         "--privileged") from None


def _template(name: str) -> Any:
    if name == "debian":
        from lxcsd.templates import debian

        return debian
    if name == "busybox":
        from lxcsd.templates import busybox

        return busybox
    raise LxcsdError(f"unknown template {name!r}")  # pragma: no cover - argparse checks
