"""The busybox template: a minimal root around Debian's static busybox, as LXC's
lxc-busybox template builds it: busybox and its applet links, then the files rendered from
templates/files/busybox (inittab, rcS with DHCP for the container's interfaces, the console
script, udhcpc's hook, passwd/group, hostname). busybox init halts on SIGUSR1 and reboots on
SIGTERM (the config's lxc.signal.* lines).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from lxcsd.errors import LxcsdError

BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "dev", "proc", "sys", "run",
        "root", "var/log", "tmp", "home", "mnt", "lib")
# Modes of rendered rootfs files (others: 0644).
MODES = {"etc/init.d/rcS": 0o755, "etc/init.d/console": 0o755,
         "usr/share/udhcpc/default.script": 0o755, "etc/shadow": 0o600}


def find_busybox() -> str:
    for path in BUSYBOX_PATHS:
        if os.path.isfile(path) and _is_static(path):
            return path
    raise LxcsdError("no static busybox found", "install it: apt-get install busybox-static")


def _is_static(path: str) -> bool:
    """A static binary has no PT_INTERP: no ".interp" dynamic loader string in it."""
    with open(path, "rb") as f:
        head = f.read(4096)
    return head[:4] == b"\x7fELF" and b"ld-linux" not in head


def applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def build(rootfs: str, name: str) -> None:
    """The tree: directories, busybox and a link per applet (files come from templates)."""
    busybox = find_busybox()
    for directory in DIRS:
        os.makedirs(os.path.join(rootfs, directory), 0o755, exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    os.chmod(os.path.join(rootfs, "root"), 0o700)
    shutil.copy2(busybox, os.path.join(rootfs, "bin/busybox"))
    for applet in applets(busybox):
        link = os.path.join(rootfs, applet)
        if applet != "bin/busybox" and not os.path.lexists(link):
            os.makedirs(os.path.dirname(link), 0o755, exist_ok=True)
            os.symlink("/bin/busybox", link)
