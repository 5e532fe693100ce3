"""The busybox template: a minimal root around Debian's static busybox, as LXC's
lxc-busybox template builds it: busybox and its applet links, an inittab, passwd/group,
hostname. busybox init halts on SIGUSR1 and reboots on SIGTERM (lxc.signal.* below).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from lxcsd.errors import LxcsdError

BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "dev", "proc", "sys", "run",
        "root", "var/log", "tmp", "home", "mnt", "lib")
INITTAB = """\
::sysinit:/etc/init.d/rcS
::respawn:/etc/init.d/console
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
"""
RCS = """\
#!/bin/sh
/bin/hostname -F /etc/hostname 2>/dev/null
echo "busybox container $(hostname) started"
"""
CONSOLE = """\
#!/bin/sh
# Respawned by init: a login shell when the console is a terminal, else nothing to do.
# setsid -c: a new session whose controlling terminal is the console, taken over from init
# (the runtime made it init's): job control, Ctrl-C. Run as a child, not exec'd: init made
# this script a session leader, and setsid forks when a group leader calls it, so init would
# respawn the script every second and leave a shell behind each time.
if [ -t 0 ]; then
    setsid -c /bin/sh -l
    exit
fi
exec /bin/sleep 2147483647
"""


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
    files = {
        "etc/inittab": (INITTAB, 0o644), "etc/init.d/rcS": (RCS, 0o755),
        "etc/init.d/console": (CONSOLE, 0o755),
        "etc/passwd": ("root:x:0:0:root:/root:/bin/sh\n"
                       "nobody:x:65534:65534:nobody:/home:/bin/false\n", 0o644),
        "etc/group": ("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n", 0o644),
        "etc/shadow": ("root::19000:0:99999:7:::\n", 0o600),
        "etc/hostname": (name + "\n", 0o644),
        "etc/hosts": (f"127.0.0.1 localhost\n127.0.1.1 {name}\n", 0o644),
        "etc/profile": ("export PATH=/bin:/sbin:/usr/bin:/usr/sbin\n", 0o644),
    }
    for rel, (text, mode) in files.items():
        path = os.path.join(rootfs, rel)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)


def config_lines(name: str) -> list[str]:
    return [
        "lxc.signal.halt = SIGUSR1",
        "lxc.signal.reboot = SIGTERM",
        f"lxc.uts.name = {name}",
        "lxc.tty.max = 1",
        "lxc.pty.max = 1024",
        "lxc.cap.drop = sys_module mac_admin mac_override sys_time",
        "lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed",
    ]
