"""``lxcsd net config``: the settings of the default bridge, lxcsd-net.service.

lxcsd-net.service makes a bridge (lxcbr0 unless net.conf says otherwise) with forwarding,
masquerading and dnsmasq, as LXC's lxc-net.service does. ``config`` prints the settings it
uses, resolved from /etc/lxcsd/net.conf and the shipped net.conf, with file:line for a bad
one. The service itself runs lxcsd-net (lxcsd.net.main).
"""

from __future__ import annotations

import argparse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd net config                 the settings from /etc/lxcsd/net.conf and the shipped file
  lxcsd net config --config ./net.conf
  systemctl start lxcsd-net        make the bridge (systemctl stop lxcsd-net: remove it)
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "net", help="the default container bridge's settings (lxcsd-net.service)",
        description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("config",))
    parser.add_argument("--config", metavar="FILE", action="append",
                        help="read only these files (repeatable; default: "
                        "/etc/lxcsd/net.conf, then the shipped net.conf)")
    return parser


def run(args: argparse.Namespace) -> int:
    from lxcsd.config import netconf
    from lxcsd.config.record import fields

    conf = netconf.load(args.config)
    for key in fields(conf):
        print(f"{key} = {getattr(conf, key)}")
    return 0
