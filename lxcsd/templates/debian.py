"""The debian template: Debian (bookworm by default) with systemd as init, made by
debootstrap (minbase + systemd, systemd-sysv, dbus, iproute2, ifupdown-free), prepared for
a container the way LXC's download images are: empty machine-id, no VT gettys, the console
getty kept, hostname from the config.
"""

from __future__ import annotations

import os
import subprocess

from lxcsd.errors import LxcsdError

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "iproute2", "procps")
MASK = ("getty@.service", "autovt@.service", "serial-getty@.service",
        "systemd-firstboot.service")


def host_mirror() -> str:
    """The mirror the host's apt uses (where debootstrap will reach), else deb.debian.org."""
    try:
        with open("/etc/apt/sources.list.d/debian.sources", encoding="utf-8") as f:
            for line in f:
                if line.startswith("URIs:") and "security" not in line:
                    return line.split()[1]
    except OSError:
        pass
    return MIRROR


def build(rootfs: str, name: str, suite: str = SUITE, mirror: str | None = None) -> None:
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite,
           rootfs, mirror or host_mirror()]
    # A private mount namespace: what debootstrap mounts in the target goes away with it.
    cmd = ["unshare", "--mount", "--propagation", "private", "--", *cmd]
    try:
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                check=False)
    except FileNotFoundError:
        raise LxcsdError("debootstrap is not installed", "apt-get install debootstrap") \
            from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise LxcsdError(f"debootstrap failed (status {result.returncode}):\n{tail}")
    prepare(rootfs, name)


def prepare(rootfs: str, name: str) -> None:
    with open(os.path.join(rootfs, "etc/machine-id"), "w", encoding="ascii"):
        pass  # empty: systemd makes a fresh id at each boot
    with open(os.path.join(rootfs, "etc/hostname"), "w", encoding="utf-8") as f:
        f.write(name + "\n")
    units = os.path.join(rootfs, "etc/systemd/system")
    os.makedirs(units, exist_ok=True)
    for unit in MASK:
        link = os.path.join(units, unit)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink("/dev/null", link)


def config_lines(name: str) -> list[str]:
    return [
        f"lxc.uts.name = {name}",
        "lxc.tty.max = 4",
        "lxc.pty.max = 1024",
        "lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed",
        "lxc.autodev = 1",
    ]
