"""``lxcsd-autostart``: start the autostart containers of lxcpaths mounted after the generator ran.

What ``lxcsd-autostart.service`` runs (``$libexecdir/lxcsd/lxcsd-autostart``): plumbing, not
a command users type, and not on the generator's path (it imports pystemd). lxcsd-generator
wires that service when an lxcpath was missing, empty or not mounted at boot (generators run
before /var is mounted). By the time it runs the lxcpath is mounted; this asks systemd over
D-Bus to reload (the generator runs again and now sees the containers) and to start
``lxc-containers.target``: starting an already active target starts the units it newly
wants. Containers are started by systemd through their own units, never by this command;
it does not wait for them (the target is ordered after this service, so waiting would
deadlock at boot).
"""

from __future__ import annotations

import argparse
import os
import sys

TARGET = "lxc-containers.target"
PRIVATE_BUS = "/run/systemd/private"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lxcsd-autostart",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("--force", action="store_true",
                        help="reload and start even when no lxcpath holds a container")
    return parser


def _containers() -> list[tuple[str, str]]:
    from lxcsd.config.load import discover

    return discover()


def _manager_call() -> str:
    """Reload, then enqueue the target's start job; returns the job's object path."""
    from pystemd.dbuslib import DBus, DBusAddress
    from pystemd.systemd1 import Manager

    # systemd's private socket works before dbus-daemon runs; root only.
    bus = (DBusAddress(f"unix:path={PRIVATE_BUS}".encode(), peer_to_peer=True)
           if os.geteuid() == 0 and os.path.exists(PRIVATE_BUS) else DBus(system=True))
    with bus, Manager(bus=bus) as manager:
        manager.Manager.Reload()
        job = manager.Manager.StartUnit(TARGET.encode(), b"replace")
    return job.decode() if isinstance(job, bytes) else str(job)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.force and not _containers():
        print("lxcsd-autostart: no containers in the lxcpaths; nothing to start")
        return 0
    try:
        job = _manager_call()
    except Exception as exc:  # pystemd raises its own DBusError types
        print(f"lxcsd-autostart: cannot ask systemd to start {TARGET}: {exc}", file=sys.stderr)
        return 1
    print(f"lxcsd-autostart: systemd reloaded, {TARGET} queued ({job})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
