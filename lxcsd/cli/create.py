"""``lxcsd create NAME [-t busybox|debian] [--privileged]``: a new container in the
lxcpath: LXCPATH/NAME/rootfs from the template and LXCPATH/NAME/config (the global
lxc.default_config, /etc/lxc/default.conf, when it exists, then the template's keys), as
lxc-create does. The config and the files the template puts in the root (inittab, network
files, ...) are jinja2 templates an admin can override in /etc/lxcsd/templates/ (see
lxcsd.templates.render). The container is built under a hidden name and renamed into place
when complete, holding LXC's lock of NAME (lxcsd.lock): a failure, or Ctrl-C at any point,
removes what was made, and two creates of one name never both succeed.

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
    ID_RANGE,
    container_dir,
    discard,
    publish,
    refuse_existing,
    require_root,
    shift_ids,
    subid_base,
    temporary_path,
)
from ._target import add_lxcpath_option, add_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.config.model import Container

EPILOG = """\
examples:
  lxcsd create web1                      busybox (the default template), unprivileged:
                                         ids shifted to root's /etc/subuid range
  lxcsd create -n web1 -t busybox        the same, as lxc-create
  lxcsd create deb1 -t debian            Debian bookworm with systemd (debootstrap, cached
                                         in /var/cache/lxcsd/debian for the next one)
  lxcsd create p1 --privileged           root inside is root on the host (no lxc.idmap)
  lxcsd create c1 -P /srv/lxc            in another lxcpath
  lxcsd create c1 -f /dev/null           without /etc/lxc/default.conf's keys (network)

Then: lxcsd start NAME (systemd runs it as lxc@NAME.service), lxcsd attach NAME for a
shell (root has no password). With a veth in the config (Debian's default.conf has one, on
lxcbr0), the container asks for an address by DHCP at boot: lxcsd-net.service answers.
Templates: /etc/lxcsd/templates/TEMPLATE/{config.j2,rootfs/PATH.j2} replace the shipped ones.
Exit status: 0 created, 1 failed, 130 interrupted (nothing is left behind either way).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "create", help="create a container from a template",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1] if __doc__ else None,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_names(parser, many=False, help="container name")
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
    parser.add_argument("--flush-cache", action="store_true",
                        help="debian: debootstrap again instead of copying the cached tree")
    add_lxcpath_option(parser)
    return parser


def default_config(path: str | None = None) -> tuple[str, str]:
    """(path, text) of lxc.default_config (or -f FILE); text "" when missing or empty."""
    path = path or read_global_config().default_config
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return path, f.read().rstrip()
    except OSError:
        return path, ""


def context(args: argparse.Namespace, directory: str) -> dict[str, Any]:
    """The templates' variables (lxcsd.templates.render)."""
    path, text = default_config(args.config)
    idmap: list[tuple[str, int, int, int]] = []
    if not args.privileged:
        idmap = [("u", 0, _subid_base("u"), ID_RANGE), ("g", 0, _subid_base("g"), ID_RANGE)]
    return {"name": args.name, "template": args.template, "lxcpath": os.path.dirname(directory),
            "rootfs": os.path.join(directory, "rootfs"), "default_config": text,
            "default_config_path": path, "idmap": idmap, "dhcp_interfaces": [],
            "release": getattr(args, "release", None) or "bookworm"}


def dhcp_interfaces(container: Container) -> list[str]:
    """The container-side names of its networks that have no static IPv4 address: the ones
    the templates configure by DHCP (the kernel names unnamed ones eth0, eth1, ...)."""
    found, unnamed = [], 0
    for net in container.net:
        if net.type in ("veth", "macvlan", "ipvlan", "vlan", "phys"):
            name = net.name or f"eth{unnamed}"
            unnamed += 0 if net.name else 1
            if not net.ipv4_addresses:
                found.append(name)
    return found


def run(args: argparse.Namespace) -> int:
    require_root("create")
    directory = container_dir(args.name, args.lxcpath)
    refuse_existing(directory)
    if args.config and not os.path.exists(args.config):
        raise LxcsdError(f"-f {args.config}: no such file")
    values = context(args, directory)  # before anything is made: /etc/subuid is checked
    lxcpath = os.path.dirname(directory)
    os.makedirs(lxcpath, 0o755, exist_ok=True)
    from lxcsd.lock import ContainerLock

    with ContainerLock(lxcpath, args.name):
        refuse_existing(directory)  # made while we waited for the lock
        built = temporary_path(lxcpath, "create")
        os.mkdir(built, 0o770)
        try:
            make(args, built, values)
            publish(built, directory)
        except KeyboardInterrupt:
            if discard(built):
                print(f"lxcsd: create {args.name}: interrupted; removed what it had made "
                      f"({built})", file=sys.stderr)
            return 130
        except BaseException:
            discard(built)
            raise
    print(f"created {args.name} in {directory}\n"
          f"start it with `lxcsd start {args.name}`; root has no password: get a shell with "
          f"`lxcsd attach {args.name}` (then `passwd` sets one)", file=sys.stderr)
    if args.privileged:
        print(f"note: {args.name} is privileged: its root is the host's root (no user "
              "namespace)", file=sys.stderr)
    return 0


def _subid_base(kind: str) -> int:
    try:
        return subid_base(kind)
    except LxcsdError as exc:
        raise LxcsdError(exc.message, f"{exc.hint}, or create a privileged container with "
                         "--privileged") from None


def make(args: argparse.Namespace, built: str, values: dict[str, Any]) -> None:
    """The container in ``built`` (its hidden build directory); the config and the
    templates name its final place (``values``: ``context``)."""
    from lxcsd.config.load import load_path
    from lxcsd.templates import render

    module = _template(args.template)
    rootfs = os.path.join(built, "rootfs")
    os.mkdir(rootfs, 0o755)
    if args.template == "debian":
        module.build(rootfs, args.name, values["release"], args.mirror,
                     flush_cache=args.flush_cache)
    else:
        module.build(rootfs, args.name)
    config = os.path.join(built, "config")
    with open(config, "w", encoding="utf-8") as f:
        f.write(render.render(args.template, "config.j2", values))
    values["dhcp_interfaces"] = dhcp_interfaces(load_path(config, args.name))
    render.write_rootfs(args.template, rootfs, values, module.MODES)
    if hasattr(module, "finish"):
        module.finish(rootfs, values)
    if values["idmap"]:
        uid_base, gid_base = values["idmap"][0][2], values["idmap"][1][2]
        shift_ids(rootfs, uid_base, gid_base)
        # As lxc-create: the container's root must reach its rootfs through LXCPATH/NAME
        # (mode 0770), so the directory is given to the mapped root.
        os.chown(built, uid_base, gid_base)


def _template(name: str) -> Any:
    if name == "debian":
        from lxcsd.templates import debian

        return debian
    if name == "busybox":
        from lxcsd.templates import busybox

        return busybox
    raise LxcsdError(f"unknown template {name!r}")  # pragma: no cover - argparse checks
