"""``lxcsd attach`` into containers started by ``lxcsd-helper start`` (no systemd): the
command runs inside, the exit status is the command's, a pty whenever the caller has a
terminal on any of fds 0-2, and the process the container can see before the command's
exec is the static stub from a sealed memfd (the hardening tier probes that from inside)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.infra import helper_util as hu
from tests.probe.build import build_attach_exec

SLEEP_INIT = "exec sleep 100000\n"
CLI = (f"import sys; sys.path[:0] = [{str(Path(__file__).resolve().parents[3])!r}]; "
       "sys.path.append('/usr/lib/python3/dist-packages'); "
       "from lxcsd.cli.main import main; sys.exit(main())")


@pytest.fixture(scope="module", autouse=True)
def _stub() -> None:
    build_attach_exec()


def attach_argv(name: str, *args: str) -> list[str]:
    return [sys.executable, "-c", CLI, "attach", name, *args]


def attach_env(lxcpath: hu.Lxcpath) -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LXCSD_LXCPATH": str(lxcpath.base),
            "LXCSD_RUN_DIR": str(lxcpath.run_dir)}


def attach(lxcpath: hu.Lxcpath, name: str, *args: str,
           stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(attach_argv(name, *args), env=attach_env(lxcpath), stdin=stdin,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def running(lxcpath: hu.Lxcpath, unit_cgroup: str) -> str:
    lxcpath.container("a1", init_script=SLEEP_INIT)
    started = lxcpath.start("a1", unit_cgroup)
    assert started.status == 0, started
    return "a1"


def test_runs_inside_with_the_commands_status(lxcpath: hu.Lxcpath, running: str) -> None:
    result = attach(lxcpath, running, "--", "sh", "-c",
                    "hostname; echo $$; cat /proc/self/cgroup; exit 3")
    assert result.returncode == 3, result.stderr
    hostname, pid, *cgroups = result.stdout.splitlines()
    assert hostname == "a1" and 1 < int(pid) < 100  # the container's pid namespace
    assert "0::/.lxc" in cgroups
    # v1 hierarchies (this host): init's cgroups, the container's own subtree
    assert all(line.split(":")[2] == "/" for line in cgroups if not line.startswith("0::"))
    result = attach(lxcpath, running, "--", "no-such-command")
    assert result.returncode == 127 and "no-such-command: No such file" in result.stderr
    result = attach(lxcpath, running, "--", "/etc/passwd")
    assert result.returncode == 126 and "Permission denied" in result.stderr
    result = attach(lxcpath, running, "-u", "65534", "--", "sh", "-c",
                    "id -u; grep CapEff /proc/self/status; kill -TERM $$")
    assert result.returncode == 128 + 15
    assert result.stdout.split() == ["65534", "CapEff:", "0000000000000000"]


def test_the_visible_process_is_the_sealed_stub(lxcpath: hu.Lxcpath, running: str) -> None:
    """Seen from the host while the command runs: the stub (our child, in the host's pid
    namespace) and the command have no host executable; the stub's exe is a memfd."""
    proc = subprocess.Popen(attach_argv(running, "--", "sleep", "30"), env=attach_env(lxcpath),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        stub = _wait_for_child_exe(proc.pid, "memfd:lxcsd-attach-exec")
        command = _wait_for_child_exe(stub, "bin/busybox")  # the container's (after exec)
        assert _status(command, "NSpid").split()[1:] and _status(stub, "NSpid").isdigit()
        files = {line.split(None, 5)[5] for line in
                 Path(f"/proc/{stub}/maps").read_text().splitlines()
                 if len(line.split(None, 5)) == 6 and line.split(None, 5)[5].startswith("/")}
        assert files == {"/memfd:lxcsd-attach-exec (deleted)"}  # no host file mapped
    finally:
        proc.kill()
        proc.wait()


def _status(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} for {pid}")


def _wait_for_child_exe(parent: int, prefix: str) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(f"/proc/{parent}/task/{parent}/children", encoding="ascii") as f:
            for pid in f.read().split():
                try:
                    if os.readlink(f"/proc/{pid}/exe").startswith("/" + prefix):
                        return int(pid)
                except OSError:
                    continue
        time.sleep(0.01)
    raise AssertionError(f"no child of {parent} runs {prefix}")


def test_pty_when_only_stdout_is_a_terminal(lxcpath: hu.Lxcpath, running: str) -> None:
    """stdin /dev/null, stdout a terminal: the command gets a pty of the container's own,
    not the caller's terminal (TIOCSTI into it would type at the caller's prompt)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(attach_argv(running, "--", "sh", "-c",
                                            "tty; readlink /proc/self/fd/1"),
                                env=attach_env(lxcpath), stdin=subprocess.DEVNULL,
                                stdout=slave, stderr=slave)
        os.close(slave)
        assert proc.wait(timeout=60) == 0
        out = _read_all(master)
    finally:
        os.close(master)
    assert out.count("/dev/pts/") == 2 and "not a tty" not in out, out
    result = attach(lxcpath, running, "--", "sh", "-c", "tty")  # no terminal anywhere
    assert result.stdout.strip() == "not a tty"


def _read_all(fd: int) -> str:
    data = b""
    while select.select([fd], [], [], 0.5)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def test_a_fifo_as_etc_passwd_does_not_hang_attach(lxcpath: hu.Lxcpath, running: str) -> None:
    """The container may make /etc/passwd anything: attach reads it without blocking."""
    root = lxcpath.base / running / "rootfs"
    (root / "etc/passwd").unlink()
    os.mkfifo(root / "etc/passwd")
    result = attach(lxcpath, running, "--", "echo", "ok")
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
