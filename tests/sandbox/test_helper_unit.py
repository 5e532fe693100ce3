"""lxcsd-helper start under a real systemd (the sandbox), installed by packaging/install.sh:
`systemctl start lxc@NAME` leaves the unit active with the container's init as its main
process, init's console lines in `journalctl -u lxc@NAME`, and a bad config fails the unit
at once with file:line in its journal."""

from __future__ import annotations

import time

from tests.infra import rootfs
from tests.infra.sandbox import Sandbox

CONFIG = """lxc.rootfs.path = dir:/var/lib/lxc/{name}/rootfs
lxc.uts.name = {name}
lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed
lxc.pty.max = 8
lxc.tty.max = 1
"""


def _container(sb: Sandbox, name: str, extra: str = "") -> None:
    rootfs.busybox_rootfs(sb.path("/var/lib/lxc") / name / "rootfs", hostname=name)
    sb.write_file(f"/var/lib/lxc/{name}/config", CONFIG.format(name=name) + extra, 0o644)


def _wait_journal(sb: Sandbox, unit: str, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        journal = sb.journal(unit, lines=200)
        if text in journal or time.monotonic() > deadline:
            return journal
        time.sleep(0.2)


def test_unit_runs_busybox_init(clean_lxcsd_sandbox: Sandbox) -> None:
    sb = clean_lxcsd_sandbox
    _container(sb, "c1")
    sb.systemctl("start", "lxc@c1")
    state = sb.systemctl("show", "-p", "ActiveState", "-p", "MainPID", "-p", "StatusText",
                         "lxc@c1").stdout
    fields = dict(line.split("=", 1) for line in state.splitlines())
    assert fields["ActiveState"] == "active", sb.journal("lxc@c1")
    pid = fields["MainPID"]
    assert fields["StatusText"] == f"Running, init PID {pid}"
    assert sb.run(f"readlink /proc/{pid}/exe").stdout.strip() == "/bin/busybox"
    assert sb.run(f"nsenter -t {pid} -a hostname").stdout.strip() == "c1"
    journal = _wait_journal(sb, "lxc@c1", f"{rootfs.SYSINIT_LINE} on c1")
    assert f"{rootfs.SYSINIT_LINE} on c1" in journal  # init's console, through lxcsd-console
    assert "lxcsd: c1 running, init PID" in journal
    cgroup = sb.run(f"cat /proc/{pid}/cgroup").stdout
    assert "/system.slice/lxc@c1.service/lxc.payload.c1" in cgroup \
        or "/machine.slice/lxc@c1.service/lxc.payload.c1" in cgroup


def test_bad_config_fails_the_unit_with_file_and_line(clean_lxcsd_sandbox: Sandbox) -> None:
    sb = clean_lxcsd_sandbox
    _container(sb, "bad1", "lxc.cap.drop = no_such_cap\n")
    result = sb.systemctl("start", "lxc@bad1", check=False)
    assert result.returncode != 0
    state = sb.systemctl("show", "-p", "ActiveState", "lxc@bad1").stdout.strip()
    assert state in ("ActiveState=failed", "ActiveState=inactive")
    journal = sb.journal("lxc@bad1")
    assert "/var/lib/lxc/bad1/config:6: lxc.cap.drop" in journal, journal


def test_console_logfile_and_ring_through_the_helper(clean_lxcsd_sandbox: Sandbox) -> None:
    """lxc.console.* reach lxcsd-console through the helper's hand-over."""
    sb = clean_lxcsd_sandbox
    _container(sb, "cl1", "lxc.console.logfile = /var/log/lxc-cl1.log\n"
                          "lxc.console.buffer.size = 64KB\n")
    sb.systemctl("start", "lxc@cl1")
    line = f"{rootfs.SYSINIT_LINE} on cl1"
    _wait_journal(sb, "lxc@cl1", line)
    assert line in sb.run("cat /var/log/lxc-cl1.log").stdout
    assert line in sb.run("/usr/local/bin/lxcsd console --show-log cl1").stdout
