"""The unprivileged (lxc.idmap) Debian systemd container, in the nested VM.

The sandbox cannot run it: a user namespace may mount a fresh proc only where the existing
proc is fully visible, and the sandbox's /proc has a read-only /proc/sys overmount (see
test_e2e_debian.py). The VM's systemd is a real PID 1 on a real kernel boot, as on a host.

The config is what `lxcsd create -t debian --unprivileged` writes (the template's lines,
its own lxc.cap.drop included, and the id maps), without a network (the VM has no lxc
package and no bridge), over the cached Debian root with nginx. The guest must come up
`running` with 0 failed units (sys-kernel-debug.mount and sys-kernel-config.mount used to
fail: the template's cap line keeps CAP_SYS_RAWIO; the masks on /sys/kernel/* now take
their mount points), and `systemctl start` must return only once it has.
"""

from __future__ import annotations

from pathlib import Path

from lxcsd.templates import render
from tests.infra import e2e_util as u
from tests.infra.vm.vm import VM

NAME = "udeb1"
ROOT = f"/var/lib/lxc/{NAME}/rootfs"
# TCG emulation: a Debian boot takes a while, and readiness now includes it.
BOOT_TIMEOUT = 600.0
# The template's config.j2, rendered as lxcsd create renders it, with a default.conf that
# has no network in place of Debian's.
CONFIG = render.render("debian", "config.j2", {
    "name": NAME, "template": "debian", "rootfs": ROOT, "lxcpath": "/var/lib/lxc",
    "default_config": "lxc.net.0.type = empty", "default_config_path": "(no network here)",
    "idmap": [("u", 0, u.ID_BASE, u.ID_COUNT), ("g", 0, u.ID_BASE, u.ID_COUNT)],
    "dhcp_interfaces": [], "release": "bookworm"})
HTTP = ("import urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1/', timeout=20).status)")


def test_unprivileged_debian_boots_in_the_vm(lxcsd_vm: VM, debian_service_root: Path) -> None:
    vm = lxcsd_vm
    vm.put_tree(debian_service_root, ROOT)
    vm.run(["python3", "-c", u.SHIFT, ROOT, str(u.ID_BASE)], timeout=600)
    vm.write_file(f"/var/lib/lxc/{NAME}/config", CONFIG)
    vm.write_file(f"/etc/systemd/system/lxc@{NAME}.service.d/tcg.conf",
                  f"[Service]\nTimeoutStartSec={int(BOOT_TIMEOUT)}\n")
    vm.systemctl("daemon-reload")
    r = vm.run(["systemctl", "start", f"lxc@{NAME}.service"], check=False,
               timeout=BOOT_TIMEOUT + 60)
    status = vm.run(["systemctl", "status", "--no-pager", "-l", f"lxc@{NAME}.service"],
                    check=False).stdout
    assert r.returncode == 0, f"{r.stderr}\n{status}"
    pid = vm.run(["systemctl", "show", "-p", "MainPID", "--value",
                  f"lxc@{NAME}.service"]).stdout.strip()
    # Right after start returned: the guest finished booting, nothing failed, nginx answers.
    state = vm.run(["nsenter", "-t", pid, "-a", "systemctl", "is-system-running"],
                   check=False).stdout.strip()
    failed = vm.run(["nsenter", "-t", pid, "-a", "systemctl", "--failed", "--plain",
                     "--no-legend"], check=False).stdout
    assert state == "running", f"{state!r}, failed units:\n{failed}\n{status}"
    assert vm.run(["nsenter", "-t", pid, "-n", "python3", "-c", HTTP]).stdout.strip() == "200"
    assert f"Status: \"Running, init PID {pid}: Ready.\"" in status
    inside = ["nsenter", "-t", pid, "-a"]
    assert vm.run([*inside, "systemd-detect-virt"]).stdout.strip() == "lxc"
    assert vm.run([*inside, "findmnt", "-n", "-o", "FSTYPE", "/sys/kernel/debug"]
                  ).stdout.strip() == "tmpfs"
    uid_map = vm.run([*inside, "cat", "/proc/1/uid_map"]).stdout.split()
    assert uid_map == ["0", str(u.ID_BASE), str(u.ID_COUNT)]
    uid_line = next(x for x in vm.read_file(f"/proc/{pid}/status").splitlines()
                    if x.startswith("Uid:"))
    assert uid_line.split()[1] == str(u.ID_BASE)  # root inside, nobody special outside
    vm.systemctl("stop", f"lxc@{NAME}.service")
    assert vm.run(["systemctl", "show", "-p", "ActiveState", "--value",
                   f"lxc@{NAME}.service"]).stdout.strip() == "inactive"
