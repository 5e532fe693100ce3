"""What the end-to-end tests share: containers made inside a sandbox the way an admin makes
them (a directory under /var/lib/lxc with a config and a rootfs), systemctl and journal
queries, and waiting without sleeping blindly.

Root file systems are built inside the sandbox (its /tmp is not the host's): busybox with
tests/infra/rootfs.py run by the sandbox's python, Debian as a copy of the cached tree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tests.infra import rootfs
from tests.infra.sandbox import REPO_ROOT, Sandbox, SandboxCommandError

LXCPATH = "/var/lib/lxc"
PREFIX = "/usr/local"
HELPER = f"{PREFIX}/libexec/lxcsd/lxcsd-helper"
# busybox init: SIGUSR1 halts (as LXC's busybox template sets), SIGTERM reboots.
BUSYBOX_LINES = ("lxc.signal.halt = SIGUSR1", "lxc.signal.reboot = SIGTERM")
# A shifted range for unprivileged containers, as lxc-create uses for root (setup.sh).
ID_BASE = 100000
ID_COUNT = 65536

# Shifts a tree's owners by ID_BASE inside the sandbox (what lxc-create does for an
# unprivileged rootfs), keeping setuid/setgid bits that chown clears.
SHIFT = r"""
import os, stat, sys
base = int(sys.argv[2])
for top, dirs, files in os.walk(sys.argv[1]):
    for name in [top] + [os.path.join(top, n) for n in dirs + files]:
        st = os.lstat(name)
        if st.st_uid >= base:
            continue
        os.lchown(name, st.st_uid + base, st.st_gid + base)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, stat.S_IMODE(st.st_mode))
"""


def unit(name: str) -> str:
    return f"lxc@{name}.service"


def write_config(sb: Sandbox, name: str, lines: Iterable[str], lxcpath: str = LXCPATH) -> str:
    path = f"{lxcpath}/{name}/config"
    sb.write_file(path, "\n".join(lines) + "\n")
    return path


def base_config(name: str, rootfs_dir: str, include: str = "common.conf") -> list[str]:
    """What lxc-create writes, with Debian lxc's shipped includes, and no network."""
    return [
        f"lxc.include = /usr/share/lxc/config/{include}",
        f"lxc.rootfs.path = dir:{rootfs_dir}",
        f"lxc.uts.name = {name}",
        "lxc.net.0.type = empty",
    ]


def make_busybox(sb: Sandbox, name: str, extra: Iterable[str] = (),
                 lxcpath: str = LXCPATH) -> str:
    """A busybox container NAME (rootfs built inside); returns its config path."""
    root = f"{lxcpath}/{name}/rootfs"
    sb.run(["/usr/bin/python3", "-c",
            "import sys; sys.path.insert(0, sys.argv[1]);"
            "from tests.infra import rootfs; rootfs.busybox_rootfs(sys.argv[2], sys.argv[3])",
            str(REPO_ROOT), root, name])
    return write_config(sb, name, [*base_config(name, root), *BUSYBOX_LINES, *extra], lxcpath)


def make_debian(sb: Sandbox, name: str, extra: Iterable[str] = (),
                unprivileged: bool = False, src: str | Path | None = None) -> str:
    """A Debian bookworm container with systemd as init, copied from the cached tree (src:
    another cached tree, e.g. rootfs.debian_service_rootfs())."""
    root = f"{LXCPATH}/{name}/rootfs"
    rootfs.debian_rootfs_copy(root, src, run=sb.run)
    lines = base_config(name, root, "debian.common.conf")
    if unprivileged:
        sb.run(["/usr/bin/python3", "-c", SHIFT, root, str(ID_BASE)], timeout=600)
        lines += ["lxc.include = /usr/share/lxc/config/debian.userns.conf",
                  f"lxc.idmap = u 0 {ID_BASE} {ID_COUNT}", f"lxc.idmap = g 0 {ID_BASE} {ID_COUNT}"]
    return write_config(sb, name, [*lines, *extra])


def show(sb: Sandbox, unit_name: str, *props: str) -> dict[str, str]:
    out = sb.systemctl("show", unit_name, "-p", ",".join(props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def prop(sb: Sandbox, unit_name: str, name: str) -> str:
    return show(sb, unit_name, name).get(name, "")


def status(sb: Sandbox, unit_name: str, lines: int = 50) -> str:
    r = sb.systemctl("status", "--no-pager", "-l", "-n", str(lines), unit_name, check=False)
    return r.stdout + r.stderr


def journal_text(sb: Sandbox, unit_name: str) -> str:
    """The unit's whole journal, messages only."""
    return sb.run(["journalctl", "--no-pager", "-q", "-o", "cat", "-u", unit_name]).stdout


def start(sb: Sandbox, name: str) -> None:
    """systemctl start lxc@NAME; a failure shows the unit's status and journal."""
    try:
        sb.systemctl("start", unit(name))
    except SandboxCommandError as e:
        raise AssertionError(f"{e}\n--- status ---\n{status(sb, unit(name))}") from None


def main_pid(sb: Sandbox, name: str) -> int:
    return int(prop(sb, unit(name), "MainPID") or 0)


def in_container(sb: Sandbox, name: str, cmd: list[str], check: bool = True,
                 timeout: float = 120.0) -> str:
    """Run cmd in all namespaces of the container's init (from the sandbox)."""
    pid = main_pid(sb, name)
    assert pid > 0, f"{unit(name)} has no MainPID"
    r = sb.run(["nsenter", "-t", str(pid), "-a", *cmd], check=check, timeout=timeout)
    return r.stdout


def wait_for(cond: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what or cond}"
        time.sleep(0.2)


def wait_state(sb: Sandbox, unit_name: str, states: Iterable[str], timeout: float = 60.0) -> str:
    wanted = set(states)
    seen = [""]

    def reached() -> bool:
        seen[0] = prop(sb, unit_name, "ActiveState")
        return seen[0] in wanted

    try:
        wait_for(reached, timeout, f"{unit_name} in {sorted(wanted)}")
    except AssertionError:
        raise AssertionError(f"{unit_name} is {seen[0]!r}, not in {sorted(wanted)}\n"
                             f"{status(sb, unit_name)}") from None
    return seen[0]


def cgroup_of(sb: Sandbox, name: str) -> str:
    return prop(sb, unit(name), "ControlGroup")


def cgroup_procs(sb: Sandbox, cgroup: str) -> list[int]:
    """The pids in a cgroup, as the sandbox numbers them (read from the host, the file
    would give the host's numbers)."""
    text = sb.run(["cat", f"/sys/fs/cgroup{cgroup}/cgroup.procs"]).stdout
    return [int(p) for p in text.split()]
