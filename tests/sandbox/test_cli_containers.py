"""lxcsd's container commands under a real systemd (the sandbox, tests/infra/README.md),
installed by packaging/install.sh, on busybox containers made by `lxcsd create`:
start/stop/restart/enable/disable through D-Bus, ls/info, wait/monitor on D-Bus signals,
attach (exit status, hostname, pid namespace, cgroup, pty, unprivileged), a failed start's
report, destroy --force."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from tests.infra.sandbox import Sandbox

LXCSD = "/usr/local/bin/lxcsd"
VENV_PY = "/usr/local/lib/lxcsd/venv/bin/python"
LXCPATH = "/var/lib/lxc"

PTY_DRIVER = r'''
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out, sent, deadline = b"", False, time.monotonic() + 30
while time.monotonic() < deadline:
    if select.select([fd], [], [], 0.5)[0]:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if not sent and b"# " in out:  # the shell's prompt
        os.write(fd, b"tty; echo $((6*7)); exit 5\r")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print(f"\nSTATUS={os.waitstatus_to_exitcode(status)}")
'''


def wait_until(cond: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what or cond}"
        time.sleep(0.2)


def lxcsd(sb: Sandbox, *args: str, check: bool = True) -> tuple[int, str, str]:
    result = sb.run([LXCSD, *args], check=check)
    return result.returncode, result.stdout, result.stderr


def show(sb: Sandbox, unit: str, prop: str) -> str:
    return sb.systemctl("show", unit, "-p", prop, "--value").stdout.strip()


def create(sb: Sandbox, name: str, *extra: str) -> None:
    lxcsd(sb, "create", name, "-f", "/dev/null", *extra)
    sb.systemctl("daemon-reload")


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Iterator[Sandbox]:
    yield clean_lxcsd_sandbox


@pytest.fixture
def running(sb: Sandbox) -> str:
    create(sb, "t1")
    code, _, err = lxcsd(sb, "start", "t1")
    assert code == 0, err
    return "t1"


def test_start_ls_info_stop(sb: Sandbox, running: str) -> None:
    unit = "lxc@t1.service"
    assert show(sb, unit, "ActiveState") == "active"  # start returned after the job
    main_pid = int(show(sb, unit, "MainPID"))
    _, out, _ = lxcsd(sb, "ls", "--format", "json")
    (row,) = [r for r in json.loads(out) if r["name"] == "t1"]
    # lxcsd create's default: unprivileged, with proc and sys mounted (proc:mixed sys:mixed)
    assert (row["state"], row["pid"], row["unprivileged"]) == ("RUNNING", main_pid, True)
    mounts = sb.run(["grep", "-E", " /(proc|sys) ", f"/proc/{main_pid}/mounts"]).stdout
    assert {line.split()[1] for line in mounts.splitlines()} >= {"/proc", "/sys"}
    _, out, _ = lxcsd(sb, "ls")
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["NAME", "STATE", "AUTOSTART"]
    assert any(r.split()[:2] == ["t1", "RUNNING"] for r in rows)
    _, out, _ = lxcsd(sb, "info", "t1")
    assert f"PID:          {main_pid}" in out and "State:        RUNNING" in out
    assert "Processes:" in out and f"Config:       {LXCPATH}/t1/config" in out
    assert lxcsd(sb, "info", "-s", "t1")[1].strip() == "RUNNING"
    code, _, err = lxcsd(sb, "restart", "t1")
    assert code == 0, err
    assert int(show(sb, unit, "MainPID")) not in (0, main_pid)  # a new init
    assert lxcsd(sb, "stop", "t1")[0] == 0
    assert show(sb, unit, "ActiveState") == "inactive"  # halted: not failed
    _, out, _ = lxcsd(sb, "ls", "--stopped", "--format", "json")
    assert [r["name"] for r in json.loads(out)] == ["t1"]


def test_attach_runs_in_the_container(sb: Sandbox, running: str) -> None:
    init = show(sb, "lxc@t1.service", "MainPID")
    script = "hostname; echo $$; readlink /proc/self/ns/pid; cat /proc/self/cgroup; exit 3"
    result = sb.run([LXCSD, "attach", "t1", "--", "sh", "-c", script], check=False)
    assert result.returncode == 3, result.stderr
    hostname, pid, pidns, *cgroups = result.stdout.splitlines()
    assert hostname == "t1"
    assert pidns == sb.run(["readlink", f"/proc/{init}/ns/pid"]).stdout.strip()
    assert 1 < int(pid) < 100  # a pid of the container's namespace, not the sandbox's
    assert "0::/.lxc" in cgroups  # the payload's attach leaf, in the cgroup namespace
    result = sb.run([LXCSD, "attach", "t1", "--", "no-such-command"], check=False)
    assert result.returncode == 127 and "no-such-command" in result.stderr
    result = sb.run([LXCSD, "attach", "t1", "-u", "65534", "--cwd", "/tmp", "--clear-env",
                     "--", "sh", "-c", "id -u; pwd; grep CapEff /proc/self/status; env"])
    uid, cwd, capeff, *env = result.stdout.splitlines()
    assert (uid, cwd, capeff.split()[1]) == ("65534", "/tmp", "0000000000000000")
    assert sorted(line.split("=")[0] for line in env) == ["PATH", "PWD", "SHLVL", "container"]


def test_attach_with_a_terminal(sb: Sandbox, running: str) -> None:
    sb.write_file("/tmp/pty_driver.py", PTY_DRIVER)
    result = sb.run([VENV_PY, "/tmp/pty_driver.py", LXCSD, "attach", "t1"])
    out = result.stdout
    assert "STATUS=5" in out, out
    assert "\n42" in out.replace("\r", "") and "/dev/pts/" in out, out


def test_attach_unprivileged(sb: Sandbox) -> None:
    create(sb, "u1", "--unprivileged")
    assert lxcsd(sb, "start", "u1")[0] == 0
    result = sb.run([LXCSD, "attach", "u1", "--", "sh", "-c",
                     "id -u; touch /tmp/made; grep -E ' /(proc|sys) ' /proc/mounts"])
    uid, *mounts = result.stdout.splitlines()
    assert uid == "0"
    assert {line.split()[1] for line in mounts} == {"/proc", "/sys"}  # proc:mixed sys:mixed
    owner = sb.run(["stat", "-c", "%u", f"{LXCPATH}/u1/rootfs/tmp/made"]).stdout.strip()
    base = sb.run(["stat", "-c", "%u", f"{LXCPATH}/u1/rootfs"]).stdout.strip()
    assert owner == base != "0"  # the container's root is the mapped one
    _, out, _ = lxcsd(sb, "ls", "--format", "json", "u1")
    assert json.loads(out)[0]["unprivileged"] is True


def test_wait_and_monitor(sb: Sandbox) -> None:
    create(sb, "t1")
    assert lxcsd(sb, "wait", "t1", "STOPPED", "--timeout", "5")[0] == 0  # already so
    code, _, err = lxcsd(sb, "wait", "t1", "RUNNING", "--timeout", "1", check=False)
    assert code == 1 and "not RUNNING" in err
    sb.run(f"{LXCSD} monitor --initial t1 > /tmp/monitor.log 2>&1 & echo $! > /tmp/monitor.pid")
    log = sb.path("/tmp/monitor.log")
    wait_until(lambda: "[STOPPED]" in log.read_text(), what="monitor's initial line")
    # wait blocks until the start (queued by --no-block) has made the container RUNNING.
    result = sb.run(f"{LXCSD} start --no-block t1 && {LXCSD} wait t1 'RUNNING|FAILED' "
                    "--timeout 60 && systemctl is-active lxc@t1")
    assert result.stdout.strip() == "active"
    assert lxcsd(sb, "stop", "t1")[0] == 0
    expected = ["STOPPED", "STARTING", "RUNNING", "STOPPING", "STOPPED"]

    def states() -> list[str]:
        return [line.split("[")[1].rstrip("]") for line in log.read_text().splitlines()
                if line.startswith("'t1'")]

    wait_until(lambda: states() == expected, what=f"monitor lines {expected}")
    sb.run("kill $(cat /tmp/monitor.pid)")


def test_failed_start_reports_status_and_journal(sb: Sandbox) -> None:
    create(sb, "bad")
    sb.run(["sed", "-i", "s|^lxc.rootfs.path = .*|lxc.rootfs.path = dir:/nonexistent|",
            f"{LXCPATH}/bad/config"])
    sb.systemctl("daemon-reload")
    code, _, err = lxcsd(sb, "start", "bad", check=False)
    assert code == 1
    assert "lxc@bad.service: failed" in err
    assert "/nonexistent is not a directory" in err  # the helper's line, from the journal
    code, _, err = lxcsd(sb, "start", "ghost", check=False)
    assert code == 1 and "no container 'ghost'" in err


def test_enable_disable(sb: Sandbox) -> None:
    create(sb, "t1")
    link = "/etc/systemd/system/lxc-containers.target.wants/lxc@t1.service"
    assert lxcsd(sb, "enable", "t1")[0] == 0
    assert sb.path(link, follow=False).is_symlink()
    assert show(sb, "lxc@t1.service", "UnitFileState") == "enabled"
    _, out, _ = lxcsd(sb, "ls", "--format", "json", "t1")
    assert json.loads(out)[0]["autostart"] is True
    assert lxcsd(sb, "disable", "t1")[0] == 0
    assert not sb.path(link, follow=False).is_symlink()


def test_destroy_force_stops_first(sb: Sandbox, running: str) -> None:
    code, _, err = lxcsd(sb, "destroy", "t1", check=False)
    assert code == 1 and "is running" in err
    assert lxcsd(sb, "destroy", "--force", "t1")[0] == 0
    assert show(sb, "lxc@t1.service", "ActiveState") in ("inactive", "failed")
    assert not sb.path(f"{LXCPATH}/t1", follow=False).exists()


def test_attach_systemd_guest(sb: Sandbox, debian_root: object) -> None:
    """A Debian container with systemd as init: attach waits for its boot with the guest's
    own systemctl, lands in the payload's .lxc leaf beside the guest's init.scope, and the
    guest's shell is root's bash from its /etc/passwd."""
    from tests.infra.rootfs import debian_rootfs_copy

    debian_rootfs_copy(f"{LXCPATH}/d1/rootfs", src=str(debian_root), run=sb.run)
    sb.write_file(f"{LXCPATH}/d1/config", "\n".join([
        f"lxc.rootfs.path = dir:{LXCPATH}/d1/rootfs", "lxc.uts.name = d1",
        "lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed", "lxc.autodev = 1",
        "lxc.pty.max = 64", "lxc.tty.max = 1", ""]))
    sb.systemctl("daemon-reload")
    assert lxcsd(sb, "start", "d1")[0] == 0
    # systemctl needs the guest manager's socket, made a moment after init starts.
    wait = "while [ ! -S /run/systemd/private ]; do sleep 0.1; done; " \
        "exec systemctl is-system-running --wait"
    result = sb.run([LXCSD, "attach", "d1", "--", "sh", "-c", wait], check=False, timeout=180)
    assert result.stdout.strip() in ("running", "degraded"), result.stdout + result.stderr
    result = sb.run([LXCSD, "attach", "d1", "--", "sh", "-c",
                     "cat /proc/self/cgroup; ls /sys/fs/cgroup"])
    assert "0::/.lxc" in result.stdout and "init.scope" in result.stdout
    shell = sb.run([LXCSD, "attach", "d1", "--", "sh", "-c", "echo $0"], check=False)
    assert shell.stdout.strip() == "sh"
    result = sb.run(f"echo 'echo $BASH_VERSION' | {LXCSD} attach d1")  # no command: the shell
    assert result.stdout.strip().startswith("5.")
    assert lxcsd(sb, "stop", "d1")[0] == 0


def test_start_reloads_for_new_or_changed_configs(sb: Sandbox) -> None:
    lxcsd(sb, "create", "a1", "-f", "/dev/null")  # no daemon-reload: the generator has not
    lxcsd(sb, "create", "a2", "-f", "/dev/null")  # seen them
    code, _, err = lxcsd(sb, "start", "a1", "a2")  # both jobs queued, then waited for
    assert code == 0 and "reloading systemd for the config of a1, a2" in err
    for unit in ("lxc@a1.service", "lxc@a2.service"):
        assert show(sb, unit, "ActiveState") == "active"
        assert f"/run/systemd/generator/{unit}.d/" in show(sb, unit, "DropInPaths")
    code, _, err = lxcsd(sb, "restart", "a1")
    assert code == 0 and "reloading" not in err
    with sb.path(f"{LXCPATH}/a1/config").open("a") as f:
        f.write("lxc.start.order = 5\n")
    code, _, err = lxcsd(sb, "restart", "a1")
    assert code == 0 and "reloading systemd for the config of a1" in err
    assert lxcsd(sb, "stop", "a1", "a2")[0] == 0


def test_ls_and_info_show_the_containers_addresses(sb: Sandbox) -> None:
    """Addresses come from inside the container's network namespace (a veth whose host end
    stays unattached: the sandbox's own network namespace)."""
    create(sb, "n1")
    with sb.path(f"{LXCPATH}/n1/config").open("a") as f:
        f.write("lxc.group = web\nlxc.net.0.type = veth\nlxc.net.0.flags = up\n"
                "lxc.net.0.ipv4.address = 10.0.3.5/24\n"
                "lxc.net.0.ipv6.address = fd00::5/64\n")
    assert lxcsd(sb, "start", "n1")[0] == 0
    _, out, _ = lxcsd(sb, "ls", "--format", "json", "--group", "web")
    (row,) = json.loads(out)
    assert (row["name"], row["ipv4"], row["ipv6"]) == ("n1", ["10.0.3.5"], ["fd00::5"])
    _, out, _ = lxcsd(sb, "info", "n1")
    assert "IP:           10.0.3.5" in out and "IP:           fd00::5" in out
    assert "Groups:       web" in out
    _, out, _ = lxcsd(sb, "ls", "--group", "db")
    assert out == ""


def test_attach_passes_sigterm_on(sb: Sandbox, running: str) -> None:
    """SIGTERM to lxcsd reaches the command (which exits 7 from its trap); lxcsd returns
    the command's status."""
    command = ("trap 'echo got TERM; exit 7' TERM; touch /tmp/trap-set; "
               "while :; do sleep 1; done")
    script = (f"{LXCSD} attach t1 -- sh -c \"{command}\" & p=$!; "
              f"while [ ! -e {LXCPATH}/t1/rootfs/tmp/trap-set ]; do sleep 0.1; done; "
              "kill -TERM $p; wait $p; echo rc=$?")
    result = sb.run(script, timeout=60)
    assert "got TERM" in result.stdout and "rc=7" in result.stdout, result.stdout
