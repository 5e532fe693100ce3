"""The lxcsd command line against LXC's own tools, interruptions and unknown names, under the
real systemd of the sandbox (Debian's lxc package provides lxc-info and lxc-destroy there):

- lxcsd and lxc-* exclude each other through LXC's container lock (lxcsd.lock): lxc-create
  waits while `lxcsd create` of the same name holds it (a debootstrap hanging on its mirror;
  SIGTERM then makes lxcsd clean up and exit 143), `lxcsd config set` waits while
  lxc-destroy holds it (then finds nothing and says so), and of `lxcsd destroy` and
  `lxc-destroy` racing for one container exactly one succeeds;
- Ctrl-C of `lxcsd stop` and `lxcsd wait` on a real pty exits 130 without a traceback;
- stop, disable, wait, ls, console, info of a container that does not exist say so at once;
- destroy leaves no failed unit behind.
"""

from __future__ import annotations

import time

import pytest

from tests.infra import e2e_util as u
from tests.infra.sandbox import Sandbox

VENV_PY = "/usr/local/lib/lxcsd/venv/bin/python"
DRIVER = "/tmp/lxcsd-test-pty.py"
# Runs argv on a pty, types Ctrl-C once `ready` showed (and `after` seconds passed), prints
# the output and "STATUS=<exit status>".
PTY_DRIVER = r'''
import os, pty, select, sys, time
after, ready, argv = float(sys.argv[1]), sys.argv[2].encode(), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out, sent, start = b"", False, time.monotonic()
while time.monotonic() < start + 60:
    if not sent and time.monotonic() > start + after and ready in out:
        os.write(fd, b"\x03")
        sent = True
    if select.select([fd], [], [], 0.1)[0]:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print(f"\nSTATUS={os.waitstatus_to_exitcode(status)}")
'''
SLOW_HOOK = "#!/bin/sh\ntouch \"$0.ran\"\nsleep 4\n"


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Sandbox:
    clean_lxcsd_sandbox.write_file(DRIVER, PTY_DRIVER)
    clean_lxcsd_sandbox.write_file("/tmp/slow-hook", SLOW_HOOK, 0o755)
    return clean_lxcsd_sandbox


def timed(sb: Sandbox, command: str) -> tuple[float, str]:
    """(seconds, output) of a shell command in the sandbox."""
    r = sb.run(f"t0=$(date +%s%N); {command}; echo; echo took=$((($(date +%s%N)-t0)/1000000))",
               check=False, timeout=120)
    took = int(r.stdout.rsplit("took=", 1)[1]) / 1000
    return took, r.stdout + r.stderr


HANG = ("python3 -c 'import socket, time; s = socket.socket(); "
        "s.bind((\"127.0.0.1\", 18089)); s.listen(8); time.sleep(60)' & ")


def test_lxc_create_waits_while_lxcsd_create_holds_the_lock(sb: Sandbox) -> None:
    took, out = timed(sb, HANG + "sleep 0.5; lxcsd create lk1 -t debian --mirror "
                      "http://127.0.0.1:18089/debian & C=$!; "
                      "until ls -a /var/lib/lxc | grep -q lxcsd-create; do sleep 0.1; done; "
                      "(sleep 3; grep -c -- '->' /proc/locks | sed 's/^/waiters=/'; "
                      "kill -TERM $C) & lxc-create -n lk1 -t none >/dev/null; "
                      "echo lxc-create=$?; wait $C; echo lxcsd=$?; kill %1")
    assert took > 2.5, out  # lxc-create waited for lxcsd create's lock
    assert "waiters=1" in out  # blocked in the kernel on that OFD lock
    assert "lxc-create=0" in out and "lxcsd=143" in out, out
    assert "Traceback" not in out
    # lxcsd's hidden build is gone; lxc-create's container is the one there.
    assert sb.run("ls -a /var/lib/lxc").stdout.split() == [".", "..", "lk1"]
    sb.run(["lxc-destroy", "-n", "lk1"])


def test_lxcsd_waits_while_lxc_destroy_holds_the_lock(sb: Sandbox) -> None:
    u.make_busybox(sb, "lk2", ["lxc.hook.destroy = /tmp/slow-hook"])  # runs under LXC's lock
    took, out = timed(sb, "rm -f /tmp/slow-hook.ran; lxc-destroy -n lk2 & "
                          "while [ ! -e /tmp/slow-hook.ran ]; do sleep 0.05; done; "
                          "lxcsd config set lk2 lxc.start.auto 1; echo status=$?; wait")
    assert took > 3, out
    assert "lxcsd: waiting for lk2: another command (lxcsd or lxc-*) holds its lock " \
           "/run/lxc/lock/var/lib/lxc/.lk2" in out
    assert "no container 'lk2'" in out and "status=1" in out
    assert sb.run(["test", "-e", f"{u.LXCPATH}/lk2"], check=False).returncode == 1


def test_lxcsd_destroy_and_lxc_destroy_one_wins(sb: Sandbox) -> None:
    for round_ in range(5):
        name = f"both{round_}"
        u.make_busybox(sb, name)
        out = sb.run(f"lxcsd destroy {name} 2>/tmp/a.err & A=$!; "
                     f"lxc-destroy -n {name} 2>/tmp/b.err & B=$!; "
                     "wait $A; echo a=$?; wait $B; echo b=$?; cat /tmp/a.err /tmp/b.err",
                     check=False).stdout
        codes = sorted(line[2:] for line in out.splitlines() if line[:2] in ("a=", "b="))
        assert codes[0] == "0" and codes[1] != "0", out
        assert "Traceback" not in out
        assert sb.run(["test", "-e", f"{u.LXCPATH}/{name}"], check=False).returncode == 1


def ctrl_c(sb: Sandbox, after: float, ready: str, *argv: str) -> tuple[int, str]:
    out = sb.run([VENV_PY, DRIVER, str(after), ready, *argv], timeout=120).stdout
    text, _, status = out.rpartition("STATUS=")
    return int(status), text


def test_ctrl_c_of_wait_and_stop(sb: Sandbox) -> None:
    u.make_busybox(sb, "cc1", ["lxc.init.cmd = /bin/sh -c \"trap '' USR1; "
                                "while :; do sleep 1; done\""])  # ignores its halt signal
    sb.write_file("/etc/systemd/system/lxc@cc1.service.d/test.conf",
                  "[Service]\nTimeoutStopSec=5\n")
    sb.systemctl("daemon-reload")
    code, out = ctrl_c(sb, 1, "", "lxcsd", "wait", "cc1", "RUNNING")  # it is not running
    assert code == 130 and "Traceback" not in out, out
    u.start(sb, "cc1")
    code, out = ctrl_c(sb, 1, "", "lxcsd", "stop", "cc1")
    assert code == 130 and "Traceback" not in out, out
    # As with systemctl, the stop job goes on without the client.
    assert u.wait_state(sb, u.unit("cc1"), {"inactive", "failed"}, 30)


def test_commands_on_a_container_that_does_not_exist(sb: Sandbox) -> None:
    for args in (["stop"], ["disable"], ["wait", "RUNNING"], ["ls"], ["console"], ["info"],
                 ["start"], ["destroy"]):
        argv = ["lxcsd", args[0], "ghost", *args[1:]]
        started = time.monotonic()
        r = sb.run(argv, check=False, timeout=30)
        assert time.monotonic() - started < 20, argv  # wait does not wait for nothing
        assert r.returncode == 1 and "no container 'ghost'" in r.stderr, (argv, r.stderr)
        assert len(r.stderr.splitlines()) == 1


def test_destroy_leaves_no_failed_unit(sb: Sandbox) -> None:
    u.make_busybox(sb, "gone1", ["lxc.init.cmd = /bin/false"])
    sb.systemctl("daemon-reload")
    sb.systemctl("start", u.unit("gone1"), check=False)
    u.wait_state(sb, u.unit("gone1"), {"failed"})
    sb.run(["lxcsd", "destroy", "gone1"])
    failed = sb.systemctl("list-units", "--failed", "--no-legend", "lxc@*").stdout
    assert "gone1" not in failed
    assert u.prop(sb, u.unit("gone1"), "ActiveState") == "inactive"
