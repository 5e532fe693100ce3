"""A Debian bookworm container with systemd as its init, as lxc@NAME.service in the sandbox:
it boots to running (or degraded, the failed units printed), machined knows it
(`machinectl status`, `journalctl -M NAME` reads the guest's own journal, `machinectl
poweroff` ends the unit cleanly), and an unprivileged (lxc.idmap) variant boots too.
"""

from __future__ import annotations

import pytest

from tests.infra import e2e_util as u
from tests.infra.sandbox import Sandbox

BOOT_TIMEOUT = 180.0


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox, debian_root: object) -> Sandbox:
    return clean_lxcsd_sandbox


def boot(sb: Sandbox, name: str, unprivileged: bool = False) -> str:
    """Start the container and wait until its systemd finished booting; its state."""
    u.make_debian(sb, name, unprivileged=unprivileged)
    sb.systemctl("daemon-reload")
    u.start(sb, name)
    # systemd inside answers once its private socket exists (a moment after exec).
    pid = str(u.main_pid(sb, name))
    u.wait_for(lambda: sb.run(["nsenter", "-t", pid, "-a", "test", "-S",
                               "/run/systemd/private"], check=False).returncode == 0,
               BOOT_TIMEOUT, f"systemd's socket in {name}")
    r = sb.run(["nsenter", "-t", pid, "-a", "systemctl",
                "is-system-running", "--wait"], check=False, timeout=BOOT_TIMEOUT)
    state = r.stdout.strip()
    if state == "degraded":
        failed = u.in_container(sb, name, ["systemctl", "--failed", "--no-legend", "--plain"])
        print(f"{name} degraded; failed units inside:\n{failed}")
    assert state in ("running", "degraded"), \
        f"{name}: {state!r}\n{r.stderr}\n{u.journal_text(sb, u.unit(name))[-4000:]}"
    return state


def test_debian_boots_and_machined_knows_it(sb: Sandbox) -> None:
    boot(sb, "deb1")
    pid = u.main_pid(sb, "deb1")
    assert u.in_container(sb, "deb1", ["cat", "/proc/1/comm"]).strip() == "systemd"
    assert u.in_container(sb, "deb1", ["hostname"]).strip() == "deb1"
    status = sb.run(["machinectl", "status", "deb1", "--no-pager"]).stdout
    assert f"Leader: {pid} (systemd)" in status, status
    assert "OS: Debian GNU/Linux 12 (bookworm)" in status, status
    # The guest's own journal, read through machined: what its journald wrote.
    guest = sb.run(["journalctl", "-M", "deb1", "--no-pager", "-q", "-o", "short",
                    "-t", "systemd"]).stdout
    assert "Reached target multi-user.target" in guest, guest[-3000:]
    assert " deb1 systemd[1]: " in guest  # the guest's host name, the guest's PID 1
    # machinectl poweroff: SIGRTMIN+4 to the guest's systemd, which shuts down; its
    # reboot(2) ends init with SIGINT: inactive, not failed.
    sb.run(["machinectl", "poweroff", "deb1"])
    assert u.wait_state(sb, "lxc@deb1.service", {"inactive", "failed"}, BOOT_TIMEOUT) \
        == "inactive", u.status(sb, "lxc@deb1.service")
    names = sb.run(["machinectl", "list", "--no-legend"]).stdout.split()
    assert "deb1" not in names
    journal = u.journal_text(sb, "lxc@deb1.service")
    assert "System Power Off" in journal or "Reached target poweroff.target" in journal \
        or "Power-Off" in journal, journal[-3000:]


def test_unprivileged_debian_boots(sb: Sandbox) -> None:
    boot(sb, "udeb1", unprivileged=True)
    uid_map = u.in_container(sb, "udeb1", ["cat", "/proc/1/uid_map"]).split()
    assert uid_map == ["0", str(u.ID_BASE), str(u.ID_COUNT)]
    # Root inside is an unprivileged user outside.
    pid = u.main_pid(sb, "udeb1")
    status = sb.run(["cat", f"/proc/{pid}/status"]).stdout
    uid_line = next(x for x in status.splitlines() if x.startswith("Uid:"))
    assert uid_line.split()[1] == str(u.ID_BASE)
    sb.systemctl("stop", "lxc@udeb1.service")
    assert u.prop(sb, "lxc@udeb1.service", "ActiveState") == "inactive"
