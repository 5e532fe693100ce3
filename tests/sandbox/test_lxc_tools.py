"""LXC's own tools and lxcsd containers, both ways, under a real systemd (the sandbox,
tests/infra/README.md) with lxcsd installed by install.sh and Debian's lxc 5.0.2 package as
the host has it: the lxc-* tools are the clients, not a mock of them.

- lxcsd runs the container: lxc-ls, lxc-info, lxc-attach, lxc-console, lxc-wait, lxc-stop
  see and drive it through the command socket lxcsd-console answers; lxc-start, lxc-destroy,
  lxc-copy and lxc-snapshot refuse it exactly as they refuse a container lxc-start runs.
- lxc-start runs the container: `systemctl start lxc@NAME` and `lxcsd start` refuse it in
  one line and leave it alone, `lxcsd ls/info` show it running under LXC, the generator
  does not autostart it, lxcsd destroy refuses it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.infra.sandbox import Sandbox

pytestmark = pytest.mark.skipif(shutil.which("lxc-start") is None,
                                 reason="needs Debian's lxc package on the host")

LXCSD = "/usr/local/bin/lxcsd"
LXCPATH = "/var/lib/lxc"
# Drives lxc-console on a pty: once it is connected, types each line when the output has
# settled; after DONE-OK appears (typed as DONE''-OK, so only the shell's output has it),
# Ctrl-a q, lxc-console's escape. Prints the output and STATUS=.
PTY_DRIVER = r'''
import os, pty, select, signal, sys, time
lines = [line.encode() + b"\r" for line in sys.argv[1].split(";;") + ["echo DONE''-OK"]]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out, t0, sent, quit_at = b"", time.monotonic(), 0, None
while time.monotonic() < t0 + 30:
    if select.select([fd], [], [], 0.3)[0]:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    elif sent < len(lines) and b"Ctrl+a q" in out:
        os.write(fd, lines[sent])
        sent += 1
    elif sent == len(lines) and quit_at is None and b"DONE-OK" in out:
        os.write(fd, b"\x01q")
        quit_at = time.monotonic()
if quit_at is None:
    os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print(f"\nSTATUS={os.waitstatus_to_exitcode(status)}")
'''


def wait_until(cond: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what or cond}"
        time.sleep(0.2)


def show(sb: Sandbox, unit: str, prop: str) -> str:
    return sb.systemctl("show", unit, "-p", prop, "--value").stdout.strip()


def lxc(sb: Sandbox, *args: str, timeout: float = 120) -> tuple[int, str, str]:
    result = sb.run(list(args), check=False, timeout=timeout)
    return result.returncode, result.stdout, result.stderr


def lxc_info(sb: Sandbox, name: str) -> dict[str, str]:
    _, out, _ = lxc(sb, "lxc-info", "-n", name)
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in
                                               out.splitlines())}


def create(sb: Sandbox, name: str, extra: str = "") -> None:
    sb.run([LXCSD, "create", name, "-f", "/dev/null"])
    if extra:
        with sb.path(f"{LXCPATH}/{name}/config").open("a") as f:
            f.write(extra)
    sb.systemctl("daemon-reload")


def init_of(sb: Sandbox, unit: str) -> int:
    return int(show(sb, unit, "MainPID"))


def unix_sockets(sb: Sandbox) -> list[str]:
    return [line.split()[-1] for line in sb.run(["cat", "/proc/net/unix"]).stdout.splitlines()
            if line.split()[-1].endswith("/command")]


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Iterator[Sandbox]:
    yield clean_lxcsd_sandbox
    # Containers lxc-start ran live outside any unit: stop them here, reset() cannot.
    for name in ("l1",):
        clean_lxcsd_sandbox.run(["lxc-stop", "-n", name, "-k"], check=False)


@pytest.fixture
def running(sb: Sandbox, tmp_path: Path) -> str:
    """x1: a busybox container lxcsd runs, with an address, a shell on tty1 and the probe."""
    from tests.probe.build import build_probe

    create(sb, "x1", "lxc.net.0.type = veth\nlxc.net.0.flags = up\n"
                     "lxc.net.0.ipv4.address = 10.0.3.7/24\nlxc.group = web\n")
    with sb.path(f"{LXCPATH}/x1/rootfs/etc/inittab").open("a") as f:
        f.write("tty1::respawn:/bin/sh\n")
    shutil.copy2(build_probe(tmp_path / "probe"), sb.path(f"{LXCPATH}/x1/rootfs/bin/probe"))
    assert sb.run([LXCSD, "start", "x1"], check=False).returncode == 0
    return "x1"


def test_lxc_ls_info_wait_see_it_running(sb: Sandbox, running: str) -> None:
    init = init_of(sb, "lxc@x1.service")
    info = lxc_info(sb, "x1")
    assert (info["State"], info["PID"]) == ("RUNNING", str(init))
    code, out, err = lxc(sb, "lxc-ls", "-f")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["x1"][:5] == ["x1", "RUNNING", "0", "web", "10.0.3.7"], out + err
    lxcsd_row = json.loads(sb.run([LXCSD, "ls", "--format", "json", "x1"]).stdout)[0]
    assert lxcsd_row["ipv4"] == ["10.0.3.7"] and lxcsd_row["pid"] == init
    assert lxc(sb, "lxc-ls", "--running")[1].split() == ["x1"]
    assert lxc(sb, "lxc-wait", "-n", "x1", "-s", "RUNNING", "-t", "5")[0] == 0
    assert unix_sockets(sb).count("@/var/lib/lxc/x1/command") == 1
    # A restart of lxcsd-console keeps the socket bound (its fd store) and answered.
    sb.systemctl("restart", "lxcsd-console.service")
    assert lxc_info(sb, "x1")["State"] == "RUNNING"


def test_lxc_attach_runs_inside_the_container(sb: Sandbox, running: str) -> None:
    init = init_of(sb, "lxc@x1.service")
    namespaces = ("mnt", "uts", "ipc", "pid", "net", "cgroup")
    script = ("for n in " + " ".join(namespaces) + "; do readlink /proc/self/ns/$n; done; "
              "cat /proc/self/cgroup; grep -E '^(CapBnd|Seccomp):' /proc/self/status; "
              "hostname; /bin/probe syscall keyctl 0")
    code, out, err = lxc(sb, "lxc-attach", "-n", "x1", "--", "sh", "-c", script)
    assert code == 0, err
    lines = out.splitlines()
    inside = dict(zip(namespaces, lines[:len(namespaces)], strict=True))
    for ns in namespaces:
        assert inside[ns] == sb.run(["readlink", f"/proc/{init}/ns/{ns}"]).stdout.strip()
    assert "0::/.lxc" in lines  # the attach leaf below init's cgroup, in its namespace
    status = dict(line.split(":\t") for line in lines if line.startswith(("CapBnd", "Seccomp")))
    init_status = sb.run(["grep", "-E", "^(CapBnd|Seccomp):", f"/proc/{init}/status"]).stdout
    assert status == dict(line.split(":\t") for line in init_status.splitlines())
    assert status["Seccomp"] == "2"
    assert "x1" in lines
    # The container's seccomp policy (lxcsd's default: keyctl is ENOSYS), as lxcsd attach.
    assert "keyctl ret=-1 errno=38" in lines
    ours = sb.run([LXCSD, "attach", "x1", "--", "/bin/probe", "syscall", "keyctl", "0"])
    assert ours.stdout.strip() == "keyctl ret=-1 errno=38"


def test_lxc_console_reaches_the_console_and_a_tty(sb: Sandbox, running: str) -> None:
    sb.write_file("/root/pty_driver.py", PTY_DRIVER)
    # tty 0: the console, through a proxy pty (the console goes on to the journal).
    result = sb.run(["python3", "/root/pty_driver.py", "echo proxy-$((6*7))",
                     "lxc-console", "-n", "x1", "-t", "0"], timeout=60)
    assert "Connected to tty 0" in result.stdout and "proxy-42" in result.stdout, result.stdout
    assert "STATUS=0" in result.stdout
    wait_until(lambda: "proxy-42" in sb.journal("lxc@x1.service", lines=50),
               what="the console output in the unit's journal")
    # lxc-console's default: the first free tty.
    result = sb.run(["python3", "/root/pty_driver.py", "tty", "lxc-console",
                     "-n", "x1"], timeout=60)
    assert "Connected to tty 1" in result.stdout and "/dev/tty1" in result.stdout, \
        result.stdout
    assert "STATUS=0" in result.stdout


def test_lxc_start_destroy_copy_snapshot_refuse_as_for_lxc(sb: Sandbox, running: str) -> None:
    """Each answer equals the one the same tool gives for a container lxc-start runs."""
    init = init_of(sb, "lxc@x1.service")
    create(sb, "l1")
    sb.run(["systemd-run", "--wait", "-q", "--unit=lxc-start-l1", "lxc-start", "-n", "l1", "-d"])
    assert lxc_info(sb, "l1")["State"] == "RUNNING"
    for tool, args in (("lxc-start", []), ("lxc-destroy", []), ("lxc-copy", ["-N", "NEW"]),
                       ("lxc-snapshot", [])):
        answers = {name: refusal(sb, tool, name, args) for name in ("x1", "l1")}
        assert answers["x1"] == answers["l1"], tool
        assert not sb.path(f"{LXCPATH}/x1-new", follow=False).exists()
    assert init_of(sb, "lxc@x1.service") == init and lxc_info(sb, "x1")["State"] == "RUNNING"
    assert sb.path(f"{LXCPATH}/x1/rootfs/bin/busybox").exists()
    assert not sb.path("/sys/fs/cgroup/lxc.payload.x1", follow=False).exists()  # no 2nd init
    commands = sb.run("cat /proc/[0-9]*/cmdline | tr '\\0' ' '", check=False).stdout
    assert "[lxc monitor] /var/lib/lxc x1" not in commands  # lxc-start started nothing
    assert "[lxc monitor] /var/lib/lxc l1" in commands  # (what it looks like when it does)
    assert unix_sockets(sb).count("@/var/lib/lxc/x1/command") == 1


def background(sb: Sandbox, command: str, out: str) -> None:
    """Run command inside, in the background: its output and then rc=STATUS go to out."""
    sb.run(f"{{ {command}; echo rc=$?; }} > {out} 2>&1 < /dev/null &")


def refusal(sb: Sandbox, tool: str, name: str, args: list[str]) -> tuple[int, list[str]]:
    """A tool's exit status and errors (stderr and its ERROR log, timestamps dropped), with
    the container's name replaced, to compare two containers' answers."""
    log = f"/tmp/{tool}-{name}.log"
    code, _, err = lxc(sb, tool, "-n", name, *[a.replace("NEW", f"{name}-new") for a in args],
                       "-l", "ERROR", "-o", log)
    logged = sb.run(["cat", log], check=False).stdout.splitlines()
    lines = err.splitlines() + [" ".join(t for i, t in enumerate(line.split()) if i != 2)
                                for line in logged]
    assert lines, f"{tool} -n {name} said nothing"
    return code, [line.replace(name, "NAME") for line in lines]


def test_lxc_stop_halts_and_the_unit_ends_inactive(sb: Sandbox, running: str) -> None:
    unit = "lxc@x1.service"
    background(sb, "timeout 60 lxc-monitor -n x1", "/tmp/monitor")  # through lxc-monitord
    background(sb, "lxc-wait -n x1 -s STOPPED -t 120", "/tmp/wait-stopped")
    time.sleep(0.5)
    code, _, err = lxc(sb, "lxc-stop", "-n", "x1")  # the halt signal, then the wait
    assert code == 0, err
    wait_until(lambda: show(sb, unit, "ActiveState") == "inactive", what="x1 inactive")
    assert show(sb, unit, "Result") == "success"
    wait_until(lambda: "rc=0" in sb.run(["cat", "/tmp/wait-stopped"]).stdout, what="lxc-wait")
    assert lxc_info(sb, "x1")["State"] == "STOPPED"
    assert "@/var/lib/lxc/x1/command" not in unix_sockets(sb)
    wait_until(lambda: "'x1' changed state to [STOPPED]" in sb.run(["cat", "/tmp/monitor"])
               .stdout, what="lxc-monitor's STOPPED line")
    assert "'x1' changed state to [STOPPING]" in sb.run(["cat", "/tmp/monitor"]).stdout
    # -k: liblxc's stop command, mapped to systemctl stop: inactive again, not failed.
    assert sb.run([LXCSD, "start", "x1"], check=False).returncode == 0
    code, _, err = lxc(sb, "lxc-stop", "-n", "x1", "-k")
    assert code == 0, err
    wait_until(lambda: show(sb, unit, "ActiveState") == "inactive", what="x1 inactive")
    assert show(sb, unit, "Result") == "success"
    assert "stop asked by lxc-stop" in sb.journal(unit, lines=50)
    # STOPPING while systemctl stop halts it.
    assert sb.run([LXCSD, "start", "x1"], check=False).returncode == 0
    background(sb, "lxc-wait -n x1 -s STOPPING -t 120", "/tmp/wait-stopping")
    time.sleep(0.5)
    sb.systemctl("stop", unit)
    wait_until(lambda: "rc=0" in sb.run(["cat", "/tmp/wait-stopping"]).stdout,
               what="lxc-wait -s STOPPING")


def test_a_container_lxc_start_runs_is_left_alone(sb: Sandbox) -> None:
    create(sb, "l1", "lxc.start.auto = 1\n")
    sb.run(["systemd-run", "--wait", "-q", "--unit=lxc-start-l1", "lxc-start", "-n", "l1", "-d"])
    info = lxc_info(sb, "l1")
    assert info["State"] == "RUNNING"
    init = int(info["PID"])
    result = sb.systemctl("start", "lxc@l1.service", check=False)
    assert result.returncode != 0
    journal = sb.journal("lxc@l1.service", lines=30)
    lines = [line for line in journal.splitlines() if "is running under lxc-start" in line]
    assert lines and lines[0].endswith("stop it with lxc-stop first"), journal
    pid = int(lines[0].split("(PID ")[1].split(")")[0])
    assert sb.run(["cat", f"/proc/{pid}/comm"]).stdout.strip() == "lxc-start"
    assert lxc_info(sb, "l1") == info and int(lxc_info(sb, "l1")["PID"]) == init  # untouched
    code = sb.run([LXCSD, "start", "l1"], check=False)
    assert code.returncode == 1
    assert code.stderr.strip() == (f"lxcsd: l1 is running under lxc-start (PID {pid}); "
                                   "stop it with lxc-stop first")
    row = json.loads(sb.run([LXCSD, "ls", "--format", "json", "l1"]).stdout)[0]
    assert (row["state"], row["pid"], row["runs_under"]) == ("RUNNING", init, "lxc")
    assert "RUNNING (LXC)" in sb.run([LXCSD, "ls", "l1"]).stdout
    assert f"LXC, lxc-start (PID {pid})" in sb.run([LXCSD, "info", "l1"]).stdout
    destroyed = sb.run([LXCSD, "destroy", "--force", "l1"], check=False)
    assert destroyed.returncode == 1 and "running under lxc-start" in destroyed.stderr
    assert sb.path(f"{LXCPATH}/l1/rootfs/bin/busybox").exists()
    # At a daemon-reload the generator leaves it out of the boot autostart.
    sb.systemctl("daemon-reload")
    wants = "/run/systemd/generator/lxc-containers.target.wants/lxc@l1.service"
    assert not sb.path(wants, follow=False).is_symlink()
    sb.run(["lxc-stop", "-n", "l1", "-k"])
    sb.systemctl("daemon-reload")
    assert sb.path(wants, follow=False).is_symlink()  # nobody runs it now: wired again
