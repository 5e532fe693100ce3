"""A Debian guest running a real service (nginx from the Debian archive), as systemd guests
are checked against systemd's Container Interface (docs/CONTAINER_INTERFACE.md in systemd's
source), in the sandbox: what an admin would look at.

- `systemctl start lxc@NAME` returns once the guest's systemd reported READY=1: right after
  it, the guest says `running` (0 failed units) and nginx answers; `systemctl status` shows
  the guest's own status line; TimeoutStartSec= covers the guest's boot.
- /run/host/{container-manager,os-release}, systemd-detect-virt = lxc, machine id = the
  container's UUID = machined's Id, a fresh boot id per boot: after a reboot inside,
  `journalctl -M NAME --list-boots` shows two boots.
- No host debugfs, /dev/fuse but no /dev/net/tun under Debian's common.conf device list.

The unprivileged variant needs a sandbox whose /proc a user namespace may mount over (the
hardening issue gives the sandbox a fully visible procfs); until then it is skipped here
and tests/e2e/test_e2e_vm_unpriv.py checks it in the VM.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e import e2e_util as u
from tests.infra.sandbox import Sandbox, SandboxCommandError

pytestmark = [pytest.mark.sandbox, pytest.mark.root]

BOOT_TIMEOUT = 180.0


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Sandbox:
    return clean_lxcsd_sandbox


def failed_units(sb: Sandbox, name: str) -> str:
    return u.in_container(sb, name, ["systemctl", "--failed", "--no-legend", "--plain"],
                          check=False).strip()


def http_status(sb: Sandbox, name: str) -> str:
    """nginx's answer on the guest's loopback, asked once (no retry)."""
    pid = str(u.main_pid(sb, name))
    return sb.run(["nsenter", "-t", pid, "-n", "curl", "-s", "-o", "/dev/null", "-m", "10",
                   "-w", "%{http_code}", "http://127.0.0.1/"], check=False).stdout


def assert_up_when_started(sb: Sandbox, name: str) -> int:
    """The checks that must hold the moment `systemctl start` has returned."""
    pid = u.main_pid(sb, name)
    state = u.in_container(sb, name, ["systemctl", "is-system-running"], check=False).strip()
    assert state == "running", f"{name}: {state!r}; failed: {failed_units(sb, name)}"
    assert http_status(sb, name) == "200"
    assert u.prop(sb, u.unit(name), "StatusText") == f"Running, init PID {pid}: Ready."
    return pid


def inside(sb: Sandbox, name: str, *cmd: str) -> str:
    return u.in_container(sb, name, list(cmd)).strip()


def test_service_guest_is_up_when_start_returns(sb: Sandbox, debian_service_root: Path
                                               ) -> None:
    name = "web1"
    u.make_debian(sb, name, src=debian_service_root)
    sb.systemctl("daemon-reload")
    u.start(sb, name)
    pid = assert_up_when_started(sb, name)
    journal = u.journal_text(sb, u.unit(name))
    assert "waiting for the guest to report ready" in journal and "web1 ready after" in journal
    # The Container Interface, as the guest reads it.
    assert inside(sb, name, "systemd-detect-virt") == "lxc"
    assert inside(sb, name, "cat", "/run/host/container-manager") == "lxc"
    assert inside(sb, name, "cat", "/run/host/os-release") == \
        sb.run(["cat", "/etc/os-release"]).stdout.strip()
    machine_id = inside(sb, name, "cat", "/etc/machine-id")
    uuid = inside(sb, name, "cat", "/run/host/container-uuid")
    assert uuid.replace("-", "") == machine_id  # first boot: the guest took our UUID
    assert f"container_uuid={uuid}" in \
        sb.run(["cat", f"/proc/{pid}/environ"]).stdout.split("\0")
    assert sb.run(["machinectl", "show", name, "-p", "Id", "--value"]).stdout.strip() == \
        machine_id
    assert inside(sb, name, "findmnt", "-n", "-o", "FSTYPE", "/sys/kernel/debug") == "tmpfs"
    assert inside(sb, name, "sh", "-c", "test -c /dev/fuse && test ! -e /dev/net/tun; echo $?"
                  ) == "0"  # Debian's common.conf allows fuse (10:229), not tun
    boot1 = inside(sb, name, "cat", "/proc/sys/kernel/random/boot_id")
    assert boot1 != sb.run(["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip()

    # A reboot inside: the unit restarts, the new start waits for the guest again.
    sb.run(["machinectl", "reboot", name])
    u.wait_for(lambda: u.prop(sb, u.unit(name), "NRestarts") == "1" and
               u.prop(sb, u.unit(name), "ActiveState") == "active", BOOT_TIMEOUT,
               f"{name} restarted by its reboot")
    assert u.main_pid(sb, name) != pid
    assert_up_when_started(sb, name)
    boot2 = inside(sb, name, "cat", "/proc/sys/kernel/random/boot_id")
    assert boot2 != boot1
    assert inside(sb, name, "cat", "/etc/machine-id") == machine_id  # the same machine
    boots = sb.run(["journalctl", "-M", name, "--list-boots", "--no-pager"]).stdout
    listed = {line.split()[1] for line in boots.splitlines() if line.split()[:1] in
              (["-1"], ["0"])}
    assert listed == {boot1.replace("-", ""), boot2.replace("-", "")}, boots
    sb.run(["journalctl", "-M", name, "-b", "-1", "-n", "1", "--no-pager"])
    sb.systemctl("stop", u.unit(name))
    assert u.prop(sb, u.unit(name), "ActiveState") == "inactive"


def test_guest_boot_is_bounded_by_timeout_start(sb: Sandbox, debian_root: Path) -> None:
    """A guest whose boot never finishes: TimeoutStartSec= fails the start, nothing left."""
    name = "slow1"
    u.make_debian(sb, name)
    root = f"{u.LXCPATH}/{name}/rootfs"
    sb.write_file(f"{root}/etc/systemd/system/slowboot.service",
                  "[Service]\nType=oneshot\nExecStart=/bin/sleep 600\n"
                  "[Install]\nWantedBy=multi-user.target\n")
    sb.run(["ln", "-s", "/etc/systemd/system/slowboot.service",
            f"{root}/etc/systemd/system/multi-user.target.wants/slowboot.service"])
    sb.write_file(f"/etc/systemd/system/lxc@{name}.service.d/timeout.conf",
                  "[Service]\nTimeoutStartSec=6\n")
    sb.systemctl("daemon-reload")
    t0 = time.monotonic()
    with pytest.raises(SandboxCommandError):
        sb.systemctl("start", u.unit(name))
    assert time.monotonic() - t0 >= 5.5  # held until the timeout, not failed early
    show = u.show(sb, u.unit(name), "ActiveState", "Result")
    assert show == {"ActiveState": "failed", "Result": "timeout"}, show
    assert "waiting for the guest to report ready" in u.journal_text(sb, u.unit(name))
    cgroup = f"/sys/fs/cgroup/machine.slice/{u.unit(name)}"
    left = sb.run(f"cat {cgroup}/cgroup.procs {cgroup}/*/cgroup.procs 2>/dev/null || true"
                  ).stdout.split()
    assert left == []
    assert not sb.path(f"/run/lxcsd/{name}").exists()
    sb.systemctl("reset-failed", u.unit(name))


def test_ready_at_exec_when_asked(sb: Sandbox, debian_root: Path) -> None:
    """lxcsd.init.notify = 0: active at init's exec, as before, no /run/host."""
    name = "early1"
    u.make_debian(sb, name, extra=["lxcsd.init.notify = 0"])
    sb.systemctl("daemon-reload")
    u.start(sb, name)
    pid = u.main_pid(sb, name)
    assert u.prop(sb, u.unit(name), "StatusText") == f"Running, init PID {pid}"
    env = sb.run(["cat", f"/proc/{pid}/environ"]).stdout.split("\0")
    assert not any(v.startswith("NOTIFY_SOCKET=") for v in env)
    assert any(v.startswith("container_uuid=") for v in env)
    r = sb.run(["nsenter", "-t", str(pid), "-a", "test", "-e", "/run/host"], check=False)
    assert r.returncode == 1
    sb.systemctl("stop", u.unit(name))


def test_unprivileged_service_guest(sb: Sandbox, debian_service_root: Path) -> None:
    name = "uweb1"
    u.make_debian(sb, name, unprivileged=True, src=debian_service_root)
    sb.systemctl("daemon-reload")
    u.start(sb, name)
    assert_up_when_started(sb, name)
    assert failed_units(sb, name) == ""
    assert inside(sb, name, "systemd-detect-virt") == "lxc"
    sb.systemctl("stop", u.unit(name))
