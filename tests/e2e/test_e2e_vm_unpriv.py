"""The unprivileged (lxc.idmap) Debian systemd container, in the nested VM.

The sandbox cannot run it: a user namespace may mount a fresh proc only where the existing
proc is fully visible, and the sandbox's /proc has a read-only /proc/sys overmount (see
test_e2e_debian.py). The VM's systemd is a real PID 1 on a real kernel boot, as on a host.
The config is self-contained: the VM has no Debian lxc package and its includes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import e2e_util as u
from tests.infra.vm.vm import VM

pytestmark = [pytest.mark.vm, pytest.mark.root]

NAME = "udeb1"
ROOT = f"/var/lib/lxc/{NAME}/rootfs"
# TCG emulation: a Debian boot takes a while.
BOOT_TIMEOUT = 600.0
CONFIG = f"""lxc.rootfs.path = dir:{ROOT}
lxc.uts.name = {NAME}
lxc.net.0.type = empty
lxc.mount.auto = cgroup:mixed proc:mixed sys:rw
lxc.tty.max = 4
lxc.pty.max = 1024
lxc.idmap = u 0 {u.ID_BASE} {u.ID_COUNT}
lxc.idmap = g 0 {u.ID_BASE} {u.ID_COUNT}
"""


def test_unprivileged_debian_boots_in_the_vm(lxcsd_vm: VM, debian_root: Path) -> None:
    vm = lxcsd_vm
    vm.put_tree(debian_root, ROOT)
    vm.run(["python3", "-c", u.SHIFT, ROOT, str(u.ID_BASE)], timeout=600)
    vm.write_file(f"/var/lib/lxc/{NAME}/config", CONFIG)
    vm.systemctl("daemon-reload")
    r = vm.run(["systemctl", "start", f"lxc@{NAME}.service"], check=False, timeout=300)
    status = vm.run(["systemctl", "status", "--no-pager", "-l", f"lxc@{NAME}.service"],
                    check=False).stdout
    assert r.returncode == 0, f"{r.stderr}\n{status}"
    pid = vm.run(["systemctl", "show", "-p", "MainPID", "--value",
                  f"lxc@{NAME}.service"]).stdout.strip()
    u.wait_for(lambda: vm.run(["nsenter", "-t", pid, "-a", "test", "-S",
                               "/run/systemd/private"], check=False).returncode == 0,
               BOOT_TIMEOUT, "systemd's socket in the container")
    state = vm.run(["nsenter", "-t", pid, "-a", "systemctl", "is-system-running", "--wait"],
                   check=False, timeout=BOOT_TIMEOUT).stdout.strip()
    if state == "degraded":
        failed = vm.run(["nsenter", "-t", pid, "-a", "systemctl", "--failed", "--plain",
                         "--no-legend"], check=False).stdout
        print(f"{NAME} degraded; failed units inside:\n{failed}")
    assert state in ("running", "degraded"), vm.journal(f"lxc@{NAME}.service", 80)
    uid_map = vm.run(["nsenter", "-t", pid, "-a", "cat", "/proc/1/uid_map"]).stdout.split()
    assert uid_map == ["0", str(u.ID_BASE), str(u.ID_COUNT)]
    uid_line = next(x for x in vm.read_file(f"/proc/{pid}/status").splitlines()
                    if x.startswith("Uid:"))
    assert uid_line.split()[1] == str(u.ID_BASE)  # root inside, nobody special outside
    vm.systemctl("stop", f"lxc@{NAME}.service")
    assert vm.run(["systemctl", "show", "-p", "ActiveState", "--value",
                   f"lxc@{NAME}.service"]).stdout.strip() == "inactive"
