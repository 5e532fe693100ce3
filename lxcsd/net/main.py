"""``lxcsd-net start|stop``: what lxcsd-net.service runs (``$libexecdir/lxcsd/lxcsd-net``).

``start`` (the unit's ExecStart=) creates the bridge from net.conf, turns on forwarding,
loads the NAT table and starts dnsmasq, then tells systemd dnsmasq is the main process and
exits. ``stop`` (ExecStopPost=) removes what start added; a bridge that still has container
ports stays, so restarting lxcsd-net.service does not disturb running containers. Plumbing,
not a command users type (``lxcsd net config`` shows the settings); by hand, for a test::

    lxcsd-net start --config ./net.conf --run-dir /tmp/n --lease-dir /tmp/n
"""

from __future__ import annotations

import argparse
import sys

from lxcsd.errors import LxcsdError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lxcsd-net", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--config", metavar="FILE", action="append",
                        help="read only these files (repeatable; default: "
                        "/etc/lxcsd/net.conf, then the shipped net.conf)")
    parser.add_argument("--run-dir", metavar="DIR", help="state and pid file "
                        "(default /run/lxcsd/net)")
    parser.add_argument("--lease-dir", metavar="DIR", help="dnsmasq's lease file "
                        "(default /var/lib/lxcsd/net)")
    return parser


def _start(args: argparse.Namespace, run_dir: str) -> None:
    from lxcsd.config import netconf
    from lxcsd.net import service
    from lxcsd.systemd import sdnotify

    conf = netconf.load(args.config)
    pid = service.up(conf, run_dir=run_dir, lease_dir=args.lease_dir or service.LEASE_DIR)
    dhcp = f", DHCP {conf.dhcp_range[0]}-{conf.dhcp_range[1]}" if pid and conf.dhcp_range \
        else ", no DHCP"
    status = f"STATUS={conf.bridge} {conf.interface}{', NAT' if conf.nat else ''}{dhcp}"
    message = f"MAINPID={pid}\nREADY=1\n{status}" if pid else f"READY=1\n{status}"
    if sdnotify.notify(message):
        sdnotify.notify_barrier()  # systemd has taken dnsmasq as the main process before we exit
    else:
        print(status[len("STATUS="):] + (f" (dnsmasq pid {pid})" if pid else ""))


def main(argv: list[str] | None = None) -> int:
    from lxcsd.net import service

    args = _parser().parse_args(argv)
    run_dir = args.run_dir or service.RUN_DIR
    try:
        if args.action == "start":
            _start(args, run_dir)
        else:
            ports = service.down(run_dir=run_dir)
            if ports:
                print(f"lxcsd-net: bridge kept for its ports: {' '.join(ports)}")
    except LxcsdError as exc:
        print(f"lxcsd-net: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
