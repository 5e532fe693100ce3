"""The systemd sandbox itself: boot, units, journal, reboot, teardown, namespaces."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.infra import sandbox as sandbox_module
from tests.infra.sandbox import Sandbox, SandboxError

# Does what lxcsd-helper does (docs/design.md, "Process design"): splits its delegated cgroup
# into monitor/payload leaves, forks the payload, hands it over with MAINPID=, READY=1, then
# BARRIER=1 so that systemd has processed the hand-over before the main process exits.
NOTIFY_SCRIPT = r"""
import array, os, select, socket
cg = "/sys/fs/cgroup" + open("/proc/self/cgroup").read().split("::", 1)[1].strip()
for leaf in ("monitor", "payload"):
    os.mkdir(f"{cg}/{leaf}")
with open(f"{cg}/monitor/cgroup.procs", "w") as f:
    f.write("0")
pid = os.fork()
if pid == 0:
    with open(f"{cg}/payload/cgroup.procs", "w") as f:
        f.write("0")
    os.execv("/bin/sleep", ["sleep", "infinity"])
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(f"MAINPID={pid}\nREADY=1\nSTATUS=handed over".encode(), addr)
r, w = os.pipe()
s.sendmsg([b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))], 0, addr)
os.close(w)
select.select([r], [], [], 10)
"""

AUTOSTART_UNIT = """\
[Unit]
Description=infra test: enabled, so started at boot

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mkdir -p /var/lib/infra-auto && echo boot >> /var/lib/infra-auto/boots'

[Install]
WantedBy=multi-user.target
"""


def show(sb: Sandbox, unit: str, *props: str) -> dict[str, str]:
    out = sb.systemctl("show", unit, "-p", ",".join(props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unified_cgroup(sb: Sandbox, cgroup_file: str = "/proc/self/cgroup", unit: bool = False) -> str:
    """The cgroup2 path in a /proc/PID/cgroup (the host also has v1 hierarchies)."""
    cmd = ["cat", cgroup_file]
    text = (sb.run_in_unit(cmd) if unit else sb.run(cmd)).stdout
    return next(ln[3:] for ln in text.splitlines() if ln.startswith("0::"))


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_boot_failure_is_diagnosed_and_cleaned_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "SYSTEMD", "/nonexistent/systemd")
    sb = Sandbox()
    with pytest.raises(SandboxError) as e:
        sb.start()
    assert "/nonexistent/systemd" in str(e.value)  # init's traceback, from the launcher log
    assert not sb.running and not sb.cgroup.exists() and not sb.state_dir.exists()


def test_boots_to_running_or_degraded(sandbox: Sandbox) -> None:
    state = sandbox.run(["systemctl", "is-system-running"], check=False).stdout.strip()
    assert state in ("running", "degraded"), sandbox.failed_unit_names()
    assert sandbox.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    assert sandbox.run(["systemd-detect-virt", "--container"],
                       check=False).stdout.strip() == "container-other"
    assert sandbox.run(["hostname"]).stdout.strip() == "lxcsd-sandbox"
    assert sandbox.timings["boot"] < 30


def test_isolated_from_host(new_sandbox: Callable[..., Sandbox]) -> None:
    sb = new_sandbox()
    links = sb.run(["ip", "-o", "link"]).stdout.splitlines()
    assert [ln.split(":")[1].strip() for ln in links] == ["lo"]
    assert sb.run(["ls", "-A", "/var/lib/lxc"]).stdout == ""  # the host's containers hidden
    host_id = Path("/etc/machine-id").read_text() if Path("/etc/machine-id").exists() else ""
    assert sb.path("/etc/machine-id").read_text() != host_id
    # sysctl writes would reach the host's kernel: /proc/sys is read-only (but for net)
    assert sb.run(["sh", "-c", "echo 1 > /proc/sys/kernel/sysrq"], check=False).returncode != 0
    sb.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
    sb.write_file("/etc/infra-overlay-check", "inside\n")
    assert not Path("/etc/infra-overlay-check").exists()


@pytest.mark.parametrize("kind", ["file", "transient"])
def test_notify_delegate_unit(clean_sandbox: Sandbox, kind: str) -> None:
    sb = clean_sandbox
    sb.write_file("/run/infra-notify.py", NOTIFY_SCRIPT)
    unit = f"infra-notify-{kind}.service"
    props = ["Type=notify", "NotifyAccess=main", "Delegate=yes"]
    exec_start = "/usr/bin/python3 /run/infra-notify.py"
    if kind == "file":
        body = "\n".join(["[Service]", *props, f"ExecStart={exec_start}"]) + "\n"
        sb.write_file(f"/etc/systemd/system/{unit}", body)
        sb.systemctl("daemon-reload")
        sb.systemctl("start", unit)
    else:
        sb.run(["systemd-run", "--quiet", f"--unit={unit}",
                *[f"--property={p}" for p in props], *exec_start.split()])
    st = show(sb, unit, "ActiveState", "SubState", "MainPID", "ControlGroup", "StatusText")
    assert (st["ActiveState"], st["SubState"], st["StatusText"]) == (
        "active", "running", "handed over"), sb.journal(unit)
    main = st["MainPID"]
    assert sb.run(["cat", f"/proc/{main}/comm"]).stdout.strip() == "sleep"
    assert unified_cgroup(sb, f"/proc/{main}/cgroup") == f"{st['ControlGroup']}/payload"
    sb.systemctl("stop", unit)
    assert sb.systemctl("is-active", unit, check=False).stdout.strip() == "inactive"


def test_run_in_unit(clean_sandbox: Sandbox) -> None:
    r = clean_sandbox.run_in_unit(["cat", "/proc/self/cgroup"], unit="infra-run.service")
    assert "0::/system.slice/infra-run.service" in r.stdout.splitlines()
    r = clean_sandbox.run_in_unit("read x; echo got $x; exit 3", input="hi\n", check=False)
    assert (r.returncode, r.stdout.strip()) == (3, "got hi")
    # run() itself stays outside the sandbox's cgroup tree
    assert unified_cgroup(clean_sandbox).startswith("/..")


def test_journal(clean_sandbox: Sandbox) -> None:
    sb = clean_sandbox
    marker = f"infra-journal-marker-{os.getpid()}"
    sb.run_in_unit(["systemd-cat", "-t", "infra", "echo", marker], unit="infra-journal.service")
    assert wait_for(lambda: marker in sb.journal(unit="infra-journal.service")), sb.journal()
    assert marker in sb.journal(lines=50)
    assert marker not in sb.journal(unit="systemd-journald.service")


def test_files_through_path(clean_sandbox: Sandbox) -> None:
    sb = clean_sandbox
    sb.write_file("/etc/infra-target", "inside\n")
    sb.run(["ln", "-sfn", "/etc/infra-target", "/etc/infra-link"])
    try:
        # an absolute symlink inside resolves inside, not to the host's /etc/infra-target
        assert sb.path("/etc/infra-link") == sb.path("/etc/infra-target")
        assert sb.path("/etc/infra-link").read_text() == "inside\n"
        assert sb.run(["cat", "/etc/infra-link"]).stdout == "inside\n"
        assert not Path("/etc/infra-target").exists()
    finally:
        sb.run(["rm", "-f", "/etc/infra-target", "/etc/infra-link"])


def test_user_namespaces(sandbox: Sandbox) -> None:
    r = sandbox.run(["unshare", "--user", "--map-root-user", "id", "-u"])
    assert r.stdout.strip() == "0"
    r = sandbox.run_in_unit(["unshare", "--user", "--map-root-user", "cat", "/proc/self/uid_map"])
    assert r.stdout.split()[:2] == ["0", "0"]


def test_user_namespaces_mount_proc_and_sysfs(sandbox: Sandbox) -> None:
    """As on a real host: a user namespace (with its own pid and net namespaces) may mount
    a fresh proc and sysfs, read-write, because uncovered instances exist (/dev/.lxc);
    the sandbox's own /proc/sys stays read-only."""
    script = ("mount -t proc proc /proc && mount -t sysfs sysfs /sys && "
              "grep -E ' /(proc|sys) ' /proc/self/mounts")
    r = sandbox.run_in_unit(["unshare", "--user", "--map-root-user", "--pid", "--fork",
                             "--net", "--mount", "sh", "-c", script])
    mounts = {line.split()[1]: line.split()[3].split(",")[0] for line in r.stdout.splitlines()}
    assert mounts.get("/proc") == "rw" and mounts.get("/sys") == "rw", r.stdout
    assert sandbox.run(["stat", "-c", "%a", "/dev/.lxc"]).stdout.strip() == "700"
    mode = sandbox.run(["findmnt", "-no", "OPTIONS", "/proc/sys"]).stdout
    assert mode.startswith("ro"), mode


def test_own_cgroup_v1_cgroups(new_sandbox: Callable[..., Sandbox]) -> None:
    """On this hybrid host each sandbox has its own cgroup in every v1 hierarchy (rooting
    its cgroup namespace there): what runs inside never lands in the host's v1 root."""
    from tests.infra import v1cgroups

    sb = new_sandbox()
    if not sb.cgroup_v1:
        pytest.skip("no cgroup v1 hierarchy on this host")
    for path in sb.cgroup_v1:
        assert path.name == sb.name and sb.pid in _pids(path), path
    inside = sb.run_in_unit(["cat", "/proc/self/cgroup"]).stdout.splitlines()
    assert all(line.endswith(":/") for line in inside if not line.startswith("0::")), inside
    paths = list(sb.cgroup_v1)
    assert sb.stop() == []
    assert not any(path.exists() for path in paths)
    assert all(not p.name.startswith(sb.name) for d in v1cgroups.own_dirs() for p in d.iterdir())


def _pids(cgroup_dir: Path) -> list[int]:
    return [int(x) for x in (cgroup_dir / "cgroup.procs").read_text().split()]


def test_machined_answers(clean_sandbox: Sandbox) -> None:
    clean_sandbox.run(["machinectl", "list", "--no-legend", "--no-pager"])
    assert clean_sandbox.systemctl("is-active", "systemd-machined.service").stdout.strip() == (
        "active")


def test_reset_undoes_what_a_test_added(sandbox: Sandbox) -> None:
    sandbox.checkpoint()
    sandbox.write_file("/etc/systemd/system/infra-reset.service",
                       "[Service]\nExecStart=/bin/sleep infinity\n")
    sandbox.systemctl("daemon-reload")
    sandbox.systemctl("start", "infra-reset.service")
    undone = sandbox.reset()
    assert "stopped infra-reset.service" in undone
    assert "removed /etc/systemd/system/infra-reset.service" in undone
    assert not sandbox.path("/etc/systemd/system/infra-reset.service").exists()
    state = sandbox.systemctl("is-active", "infra-reset.service", check=False).stdout.strip()
    assert state == "inactive"


def test_reboot_keeps_upper_layer(new_sandbox: Callable[..., Sandbox]) -> None:
    sb = new_sandbox()
    sb.write_file("/etc/systemd/system/infra-autostart.service", AUTOSTART_UNIT)
    sb.write_file("/root/infra-marker", "kept\n")
    sb.write_file("/run/infra-ephemeral", "gone\n")
    sb.systemctl("enable", "infra-autostart.service")
    old_pid, old_boot = sb.pid, sb.boot
    sb.reboot()
    assert (sb.boot, sb.pid != old_pid) == (old_boot + 1, True)
    assert sb.systemctl("is-enabled", "infra-autostart.service").stdout.strip() == "enabled"
    assert sb.systemctl("is-active", "infra-autostart.service").stdout.strip() == "active"
    assert sb.path("/var/lib/infra-auto/boots").read_text() == "boot\n"
    assert sb.path("/root/infra-marker").read_text() == "kept\n"
    assert not sb.path("/run/infra-ephemeral").exists()
    assert "--- lxcsd sandbox: boot 2 ---" in sb.console()


def _namespace_users(inodes: set[int], kind: str) -> list[int]:
    users = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(f"/proc/{entry.name}/ns/{kind}").st_ino in inodes:
                    users.append(int(entry.name))
            except OSError:
                pass
    return users


def _mounts_mentioning(text: str) -> list[str]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                lines = Path(f"/proc/{entry.name}/mountinfo").read_text().splitlines()
            except OSError:
                continue
            found += [f"{entry.name}: {ln}" for ln in lines if text in ln]
    return found


@pytest.mark.parametrize("how", ["poweroff", "kill"])
def test_stop_leaves_nothing(new_sandbox: Callable[..., Sandbox], how: str) -> None:
    sb = new_sandbox()
    sb.run(["systemd-run", "--quiet", "--unit=infra-sleeper", "sleep", "infinity"])
    sb.run("setsid sleep 1000 </dev/null >/dev/null 2>&1 &")  # outside systemd's cgroups
    launcher, init = sb.launcher_pid, sb.pid
    pidns = {os.stat(f"/proc/{init}/ns/pid").st_ino}
    mntns = {os.stat(f"/proc/{p}/ns/mnt").st_ino for p in (launcher, init)}
    assert sb.stop(kill=(how == "kill")) == []
    assert not os.path.exists(f"/proc/{launcher}") and not os.path.exists(f"/proc/{init}")
    assert _namespace_users(pidns, "pid") == []
    assert _namespace_users(mntns, "mnt") == []
    assert _mounts_mentioning(sb.name) == []
    assert not sb.cgroup.exists() and not sb.state_dir.exists()
    assert "Powering off." in sb.console_text or how == "kill"


def test_install_lxcsd(request: pytest.FixtureRequest,
                       new_sandbox: Callable[..., Sandbox]) -> None:
    """install.sh --offline, run inside. It reuses the host's venv; where the host has none
    (install.sh never run here), an empty venv made inside stands in for it."""
    if Path("/usr/local/lib/lxcsd/venv/bin/python").exists():
        sb = request.getfixturevalue("lxcsd_sandbox")
    else:
        sb = new_sandbox()
        sb.run(["python3", "-m", "venv", "--system-site-packages", "/usr/local/lib/lxcsd/venv"],
               timeout=300)
        sb.install_lxcsd()
    for f in ("/usr/local/libexec/lxcsd/lxcsd-helper", "/usr/local/bin/lxcsd",
              "/usr/local/lib/systemd/system-generators/lxcsd-generator"):
        assert os.access(sb.path(f), os.X_OK), f
    assert sb.path("/usr/local/lib/systemd/system/lxc@.service").is_file()
    assert sb.systemctl("is-enabled", "lxc-containers.target").stdout.strip() == "enabled"
    sb.systemctl("cat", "lxc@infra.service")


def test_ensure_running_boots_again(new_sandbox: Callable[..., Sandbox]) -> None:
    sb = new_sandbox()
    sb.write_file("/root/infra-marker", "x")
    sb.run(["systemctl", "--no-block", "poweroff"])
    assert wait_for(lambda: not sb.running)
    assert sb.ensure_running() and sb.running
    assert not sb.path("/root/infra-marker").exists()  # a fresh upper layer
