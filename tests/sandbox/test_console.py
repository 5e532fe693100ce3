"""lxcsd-console under a real systemd (the sandbox, tests/infra/README.md), installed by
packaging/install.sh: socket activation, console lines in `journalctl -u UNIT`, the file-
descriptor store across `systemctl restart` and a SIGKILL, `lxcsd console` on a terminal,
and the daemon's memory (PSS) idle and with 20 consoles.

A "container" is a transient unit doing what lxcsd-helper start does with the console: put
init (busybox sh) on a pty, register the master through lxcsd.console.handoff, hand init
over with MAINPID=, and exit. Its made-up unit name stands for lxc@NAME.service.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.infra.sandbox import Sandbox

PREFIX = "/usr/local"
VENV_PY = f"{PREFIX}/lib/lxcsd/venv/bin/python"
LIBEXEC = f"{PREFIX}/libexec/lxcsd"
TEST_DIR = "/tmp/lxcsd-console-test"
# LXC's monitor process: what the daemon's PSS per running container is measured against.
LXC_MONITOR_PSS_KB = 470

FAKE_HELPER = r'''
import fcntl, os, sys, termios
from lxcsd.systemd import sdnotify
from lxcsd.console import handoff

def start(name, unit, script):
    master, slave = os.openpty()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.execve("/bin/busybox", ["sh", "-c", script],
                  {"PS1": "# ", "TERM": "dumb", "PATH": "/usr/bin:/bin"})
    os.close(slave)
    ok = handoff.register(name, unit, master, [], pid=pid)
    os.close(master)
    return pid, ok

if sys.argv[1] == "one":  # a container unit: hand init over and exit
    pid, ok = start(*sys.argv[2:5])
    sdnotify.notify(f"MAINPID={pid}\nREADY=1\nSTATUS=console handed over: {ok}")
    sdnotify.notify_barrier()
else:  # "many N SCRIPT": N containers from one process that stays
    for i in range(int(sys.argv[2])):
        start(f"m{i}", f"fakect-m{i}.service", sys.argv[3].replace("@", str(i)))
    sdnotify.notify("READY=1")
    import signal
    signal.pause()
'''

VIEWER = r'''
import sys, select, time
from lxcsd.console import client, protocol
name, text, needle = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
sock, _ = client.request("attach", {"name": name})
sock.send(b"d" + text)
seen, deadline = b"", time.monotonic() + 20
while needle not in seen and time.monotonic() < deadline:
    if select.select([sock], [], [], 1)[0]:
        frame = sock.recv(protocol.MAX_MESSAGE)
        if not frame or frame[:1] == b"x":
            break
        seen += frame[1:]
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(0 if needle in seen else 1)
'''

LIST = "from lxcsd.console import client; print(repr(client.list_consoles()))"
RING = "import sys; from lxcsd.console import client; print(client.read_log(sys.argv[1]))"


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Sandbox:
    clean_lxcsd_sandbox.write_file(f"{TEST_DIR}/fake_helper.py", FAKE_HELPER)
    clean_lxcsd_sandbox.write_file(f"{TEST_DIR}/viewer.py", VIEWER)
    clean_lxcsd_sandbox.systemctl("start", "lxcsd-console.socket")
    return clean_lxcsd_sandbox


def start_container(sb: Sandbox, name: str, script: str = "exec sh -i") -> str:
    unit = f"fakect-{name}.service"
    sb.run(["systemd-run", "--quiet", f"--unit={unit}", "--property=Type=notify",
            "--property=NotifyAccess=all", "--", VENV_PY, f"{TEST_DIR}/fake_helper.py",
            "one", name, unit, script])
    status = show(sb, unit, "StatusText")["StatusText"]
    assert status == "console handed over: True", sb.journal(unit)
    return unit


def show(sb: Sandbox, unit: str, *props: str) -> dict[str, str]:
    out = sb.systemctl("show", unit, "-p", ",".join(props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def consoles(sb: Sandbox) -> list[tuple[str, str, list[int], int]]:
    value: list[tuple[str, str, list[int], int]] = eval(sb.run([VENV_PY, "-c", LIST]).stdout)
    return value


def ring(sb: Sandbox, name: str) -> str:
    return sb.run([VENV_PY, "-c", RING, name]).stdout


def wait(cond: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what or cond}"
        time.sleep(0.2)


def journal_entries(sb: Sandbox, unit: str) -> list[dict[str, str]]:
    out = sb.run(["journalctl", "--no-pager", "-u", unit, "-o", "json"], check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def messages(sb: Sandbox, unit: str) -> list[str]:
    return [str(e.get("MESSAGE", "")) for e in journal_entries(sb, unit)]


def type_and_expect(sb: Sandbox, name: str, text: str, needle: str) -> None:
    r = sb.run([VENV_PY, f"{TEST_DIR}/viewer.py", name, text, needle], check=False)
    assert r.returncode == 0, (r.stdout, r.stderr, sb.journal("lxcsd-console.service"))


def daemon_pid(sb: Sandbox) -> int:
    return int(show(sb, "lxcsd-console.service", "MainPID")["MainPID"])


def test_socket_activation(sb: Sandbox) -> None:
    assert sb.run(["stat", "-c", "%a %F", "/run/lxcsd/console.sock"]).stdout.strip() == \
        "600 socket"
    assert show(sb, "lxcsd-console.service", "ActiveState")["ActiveState"] == "inactive"
    assert consoles(sb) == []  # the first connection starts the service
    state = show(sb, "lxcsd-console.service", "ActiveState", "StatusText", "Type")
    assert state == {"ActiveState": "active", "Type": "notify",
                     "StatusText": "holding the consoles of 0 containers"}


def test_console_lines_in_the_journal_of_the_unit(sb: Sandbox) -> None:
    unit = start_container(sb, "c1", "echo hello from the c1 console; printf 'no newline yet'; "
                                     "exec sleep infinity")
    wait(lambda: "no newline yet" in messages(sb, unit), what="console lines in the journal")
    entry = next(e for e in journal_entries(sb, unit)
                 if e.get("MESSAGE") == "hello from the c1 console")
    # Filed as the container's init, in its unit (SCM_CREDENTIALS), not lxcsd-console's:
    # journald's rate limit for the unit is the container's own.
    init = show(sb, unit, "MainPID")["MainPID"]
    assert {k: entry.get(k) for k in ("OBJECT_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER",
                                      "CONTAINER_NAME", "LXCSD_CONSOLE", "_SYSTEMD_UNIT",
                                      "_PID", "_UID")} == {
        "OBJECT_SYSTEMD_UNIT": unit, "SYSLOG_IDENTIFIER": "c1/console",
        "CONTAINER_NAME": "c1", "LXCSD_CONSOLE": "1", "_SYSTEMD_UNIT": unit, "_PID": init,
        "_UID": "0"}
    short = sb.run(["journalctl", "--no-pager", "-u", unit, "-o", "short"]).stdout
    assert " c1/console[" in short and "]: hello from the c1 console" in short


def test_restart_and_kill_keep_the_console(sb: Sandbox) -> None:
    unit = start_container(sb, "c2", "echo before the restart; exec sh -i")
    wait(lambda: "before the restart" in ring(sb, "c2"), what="output in the ring buffer")
    before = daemon_pid(sb)
    sb.systemctl("restart", "lxcsd-console.service")
    assert daemon_pid(sb) != before
    assert consoles(sb) == [("c2", unit, [0], 0)]
    assert "before the restart" in ring(sb, "c2")  # kept in a memfd in the store meanwhile
    type_and_expect(sb, "c2", "echo after-restart-$((6*7))\r", "after-restart-42")
    wait(lambda: "after-restart-42" in messages(sb, unit), what="output after the restart")

    killed = daemon_pid(sb)
    sb.systemctl("kill", "--signal=SIGKILL", "lxcsd-console.service")
    wait(lambda: daemon_pid(sb) not in (0, killed), what="Restart=always")
    wait(lambda: show(sb, "lxcsd-console.service", "ActiveState")["ActiveState"] == "active")
    assert consoles(sb) == [("c2", unit, [0], 0)]
    type_and_expect(sb, "c2", "echo after-kill-$((7*6))\r", "after-kill-42")
    wait(lambda: "after-kill-42" in messages(sb, unit), what="output after SIGKILL")


def test_the_end_of_a_container_removes_its_console(sb: Sandbox) -> None:
    unit = start_container(sb, "c3")
    assert [c[0] for c in consoles(sb)] == ["c3"]
    sb.systemctl("stop", unit)
    wait(lambda: consoles(sb) == [], what="the console to go")


def client_command(sb: Sandbox) -> str:
    """`lxcsd console`; while install.sh's launchers have the "-I -S" shebang python
    refuses, the same dispatcher through the venv's python."""
    if sb.run(["lxcsd", "console", "--help"], check=False).returncode == 0:
        return "lxcsd console"
    return f"{VENV_PY} -m lxcsd.cli.main console"


def test_lxcsd_console_attaches(sb: Sandbox) -> None:
    start_container(sb, "c4")
    # `lxcsd console NAME` first checks that NAME is a container (a config in the lxcpath).
    sb.write_file("/var/lib/lxc/c4/config", "lxc.uts.name = c4\n")
    # script(1) gives the client a terminal; what is piped in is typed on it.
    typed = r"sleep 2; printf 'echo answer-$((6*7))\r'; sleep 2; printf '\001q'"
    r = sb.run(["/bin/sh", "-c", f"({typed}) | script -qfec '{client_command(sb)} c4' "
                                 "/dev/null"], timeout=60, check=False)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Connected to the console of c4" in r.stdout and "answer-42" in r.stdout


def pss_kb(sb: Sandbox, pid: int) -> int:
    rollup = sb.run(["cat", f"/proc/{pid}/smaps_rollup"]).stdout
    return int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")))


def test_memory_idle_and_with_20_consoles(sb: Sandbox, record_property: Callable[..., None],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert consoles(sb) == []
    pid = daemon_pid(sb)
    idle = pss_kb(sb, pid)
    boot = ("i=0; while [ $i -lt 100 ]; do echo container @ boot line $i: starting some "
            "service with a reasonably long console line; i=$((i+1)); done; exec sh -i")
    sb.run(["systemd-run", "--quiet", "--unit=fakect-many.service", "--property=Type=notify",
            "--", VENV_PY, f"{TEST_DIR}/fake_helper.py", "many", "20", boot])
    wait(lambda: len(consoles(sb)) == 20, what="20 consoles")
    wait(lambda: sum("boot line 99" in m for m in messages(sb, "fakect-m19.service")) == 1,
         what="the last container's output in the journal")
    time.sleep(1)
    loaded = pss_kb(sb, pid)
    record_property("pss_idle_kb", idle)
    record_property("pss_20_consoles_kb", loaded)
    with capsys.disabled():
        print(f"\nlxcsd-console PSS: idle {idle} kB, with 20 consoles {loaded} kB "
              f"= {loaded / 20:.0f} kB per container (LXC monitor: {LXC_MONITOR_PSS_KB} kB)")
    assert loaded / 20 <= LXC_MONITOR_PSS_KB
