"""Test root file systems boot under systemd-nspawn in the sandbox: Debian to "running",
busybox until its halt line."""

from __future__ import annotations

import time
from pathlib import Path

from tests.infra import rootfs
from tests.infra.sandbox import Sandbox


def test_debian_rootfs_boots_as_container(clean_sandbox: Sandbox, debian_root: Path) -> None:
    """The cached tree boots with systemd as init to "running" (not degraded) in a container:
    systemd-nspawn inside the sandbox, registered with machined."""
    sb = clean_sandbox
    dest = "/var/lib/machines/infra-deb"
    rootfs.debian_rootfs_copy(dest, src=debian_root, run=sb.run)
    unit = "infra-nspawn.service"
    try:
        sb.run(["systemd-run", "--quiet", f"--unit={unit}", "--property=Delegate=yes",
                "--property=Type=notify", "--property=KillMode=mixed",
                "systemd-nspawn", "--quiet", "--keep-unit", "--boot", "--link-journal=no",
                "--register=yes", "--console=read-only", "--notify-ready=yes",
                "--machine=infra-deb", f"--directory={dest}"], timeout=60)
        # started = the container's systemd said READY=1; its D-Bus may still be starting
        for _ in range(100):
            r = sb.run(["systemctl", "-M", "infra-deb", "is-system-running", "--wait"],
                       check=False, timeout=60)
            if "Failed to connect to bus" not in r.stderr:
                break
            time.sleep(0.1)
        failed = sb.run(["systemctl", "-M", "infra-deb", "--failed", "--plain", "--no-legend"],
                        check=False).stdout
        assert r.stdout.strip() == "running", f"{r.stdout}{r.stderr}\n{failed}\n" + sb.journal(
            unit)
        sb.run(["machinectl", "poweroff", "infra-deb"])
        ok = False
        for _ in range(200):
            state = sb.systemctl("is-active", unit, check=False).stdout.strip()
            if state in ("inactive", "failed"):
                ok = state == "inactive"
                break
            time.sleep(0.05)
        assert ok, sb.journal(unit)
    finally:
        sb.run(["systemctl", "stop", unit], check=False)
        sb.run(["rm", "-rf", "--one-file-system", dest], check=False)


def test_busybox_rootfs_boots_and_halts(clean_sandbox: Sandbox) -> None:
    """busybox init prints its sysinit line on boot and its halt line when sent SIGPWR (the
    halt signal LXC uses), as tests of containers will look for. Run under systemd-nspawn
    inside the sandbox, whose console output goes to the unit's journal.

    KillMode=mixed, as systemd-nspawn@.service has: the stop's SIGTERM goes to nspawn only,
    which sends --kill-signal to init. With the default (control-group) systemd also sent
    SIGTERM to init itself (a reboot request, racing SIGPWR: the unit ended in nspawn's
    reboot status 133) and to the shutdown action busybox init had just vfork()ed; a vfork
    child killed before its exec can leave init waiting on a futex in the address space they
    shared, and the stop hung until TimeoutStopSec (90 s). Measured in the sandbox: 1 hang
    and 2 reboots in 6 stops before, 20 clean halts in 20 after."""
    sb = clean_sandbox
    dest = "/var/lib/machines/infra-bb"
    sb.run(["mkdir", "-p", "/var/lib/machines"])
    rootfs.busybox_rootfs(str(sb.path("/var/lib/machines")) + "/infra-bb", hostname="infra-bb")
    unit = "infra-bb.service"
    try:
        sb.run(["systemd-run", "--quiet", f"--unit={unit}", "--property=Delegate=yes",
                "--property=KillMode=mixed",
                "systemd-nspawn", "--quiet", "--keep-unit", "--register=no",
                "--console=read-only", "--kill-signal=SIGPWR", "--machine=infra-bb",
                f"--directory={dest}", "/sbin/init"])
        deadline = time.monotonic() + 10
        while rootfs.SYSINIT_LINE not in sb.journal(unit) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"{rootfs.SYSINIT_LINE} on infra-bb" in sb.journal(unit)
        sb.systemctl("stop", unit)
        assert rootfs.HALT_LINE in sb.journal(unit)
        # halted (nspawn exits 0), not rebooted (133) by a SIGTERM that reached init
        assert sb.systemctl("show", unit, "-p", "Result", "--value").stdout.strip() == \
            "success", sb.journal(unit)
    finally:
        sb.run(["systemctl", "stop", unit], check=False)
        sb.run(["rm", "-rf", "--one-file-system", dest], check=False)
