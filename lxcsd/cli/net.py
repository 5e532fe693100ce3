"""``lxcsd net start|stop|config``: the default bridge of lxcsd-net.service.

``start`` (the unit's ExecStart=) creates the bridge from net.conf, turns on forwarding, loads
the NAT table and starts dnsmasq, then tells systemd dnsmasq is the main process and exits.
``stop`` (ExecStopPost=) removes what start added; a bridge that still has container ports
stays, so restarting lxcsd-net.service does not disturb running containers. ``config``
prints the resolved settings.
"""

from __future__ import annotations

import argparse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  systemctl start lxcsd-net        what you normally run (the unit runs 'lxcsd net start')
  lxcsd net config                 the settings from /etc/lxcsd/net.conf and the shipped file
  lxcsd net start --config ./net.conf --run-dir /tmp/n --lease-dir /tmp/n
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "net", help="the default container bridge (lxcsd-net.service)",
        description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop", "config"))
    parser.add_argument("--config", metavar="FILE", action="append",
                        help="read only these files (repeatable; default: "
                        "/etc/lxcsd/net.conf, then the shipped net.conf)")
    parser.add_argument("--run-dir", metavar="DIR", help="state and pid file "
                        "(default /run/lxcsd/net)")
    parser.add_argument("--lease-dir", metavar="DIR", help="dnsmasq's lease file "
                        "(default /var/lib/lxcsd/net)")
    return parser


def run(args: argparse.Namespace) -> int:
    from lxcsd import sd
    from lxcsd.net import netconf, service

    run_dir = args.run_dir or service.RUN_DIR
    if args.action == "stop":
        ports = service.down(run_dir=run_dir)
        if ports:
            print(f"lxcsd net: bridge kept for its ports: {' '.join(ports)}")
        return 0
    conf = netconf.load(args.config)
    if args.action == "config":
        for key in netconf.NetConf.__slots__:
            print(f"{key} = {getattr(conf, key)}")
        return 0
    pid = service.up(conf, run_dir=run_dir, lease_dir=args.lease_dir or service.LEASE_DIR)
    dhcp = f", DHCP {conf.dhcp_range[0]}-{conf.dhcp_range[1]}" if pid and conf.dhcp_range \
        else ", no DHCP"
    status = f"STATUS={conf.bridge} {conf.interface}{', NAT' if conf.nat else ''}{dhcp}"
    message = f"MAINPID={pid}\nREADY=1\n{status}" if pid else f"READY=1\n{status}"
    if sd.notify(message):
        sd.notify_barrier()  # systemd has taken dnsmasq as the main process before we exit
    else:
        print(status[len("STATUS="):] + (f" (dnsmasq pid {pid})" if pid else ""))
    return 0
