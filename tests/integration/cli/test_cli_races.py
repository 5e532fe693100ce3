"""lxcsd create, copy and destroy racing themselves (real processes, as root, in a temporary
lxcpath): of three identical commands started at once exactly one succeeds, the others exit
1 with one line saying why, nobody prints a traceback, and nothing half-made is ever seen or
left behind. Ctrl-C of a create under a real pty (a debootstrap that hangs on its mirror)
exits 130 and leaves nothing; not being root says so. Against LXC's own tools:
tests/sandbox/test_e2e_cli_races.py."""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = str(Path(__file__).resolve().parents[3])
ROUNDS = 5
RACERS = 3


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "lxc").mkdir()
    return {**os.environ, "LXCSD_LXCPATH": str(tmp_path / "lxc"),
            "LXCSD_RUN_DIR": str(tmp_path / "run"), "LXCSD_LOCK_DIR": str(tmp_path / "lock"),
            "PYTHONPATH": REPO}


def lxcsd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lxcsd.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def race(env: dict[str, str], *args: str) -> list[tuple[int, str]]:
    """RACERS copies of one command started together: [(exit status, stderr)]."""
    procs = [subprocess.Popen([sys.executable, "-m", "lxcsd.cli.main", *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(RACERS)]
    return [(p.wait(120), p.stderr.read() if p.stderr else "") for p in procs]


def one_winner(results: list[tuple[int, str]], lost: str) -> None:
    assert "Traceback" not in "".join(err for _, err in results), results
    assert sorted(code for code, _ in results) == [0] + [1] * (RACERS - 1), results
    for code, err in results:
        if code:
            assert len(err.splitlines()) == 1 and lost in err, err


def hidden(env: dict[str, str]) -> list[str]:
    return [n for n in os.listdir(env["LXCSD_LXCPATH"]) if n.startswith(".")]


class Watch:
    """Looks at LXCPATH/NAME as fast as it can while a race runs: whenever the directory
    is there, its config must be there too (a half-made container must never show)."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.directory = Path(env["LXCSD_LXCPATH"]) / name
        self.seen = self.half = 0
        self.done = False
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self) -> None:
        while not self.done:
            if self.directory.is_dir():
                self.seen += 1
                self.half += not (self.directory / "config").is_file()

    def stop(self) -> None:
        self.done = True
        self.thread.join()


def test_concurrent_creates(env: dict[str, str]) -> None:
    for round_ in range(ROUNDS):
        name = f"new{round_}"
        watch = Watch(env, name)
        results = race(env, "create", name, "-f", "/dev/null")
        watch.stop()
        one_winner(results, "already exists")
        assert watch.half == 0
        assert lxcsd(env, "check", name).returncode == 0
    assert hidden(env) == []


def test_concurrent_copies(env: dict[str, str]) -> None:
    assert lxcsd(env, "create", "src", "-f", "/dev/null").returncode == 0
    for round_ in range(ROUNDS):
        name = f"copy{round_}"
        watch = Watch(env, name)
        one_winner(race(env, "copy", "src", name), "already exists")
        watch.stop()
        assert watch.half == 0
        config = (Path(env["LXCSD_LXCPATH"]) / name / "config").read_text()
        assert f"lxc.uts.name = {name}" in config
    assert hidden(env) == []


def test_concurrent_destroys(env: dict[str, str]) -> None:
    for round_ in range(ROUNDS):
        name = f"old{round_}"
        assert lxcsd(env, "create", name, "-f", "/dev/null").returncode == 0
        one_winner(race(env, "destroy", name), f"no container {name!r}")
        assert not (Path(env["LXCSD_LXCPATH"]) / name).exists()
    assert hidden(env) == []


def test_config_edits_wait_for_the_lock(env: dict[str, str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """config set and config apply (issue 20's) take LXC's lock of the container, as
    liblxc's save_config: while another command holds it they wait and say so; once it
    is free, each edit lands and neither loses the other's."""
    from lxcsd.lock import ContainerLock

    assert lxcsd(env, "create", "ed", "-f", "/dev/null").returncode == 0
    fragment = tmp_path / "frag.conf"
    fragment.write_text("lxc.start.order = 7\n")
    monkeypatch.setenv("LXCSD_LOCK_DIR", env["LXCSD_LOCK_DIR"])
    with ContainerLock(env["LXCSD_LXCPATH"], "ed"):
        edits = [subprocess.Popen([sys.executable, "-m", "lxcsd.cli.main", "config", *args],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
                 for args in (["apply", "ed", str(fragment)],
                              ["set", "ed", "lxc.start.auto", "1"])]
        time.sleep(2)  # past lxcsd.lock.QUIET_WAIT: both say they wait
        assert [p.poll() for p in edits] == [None, None]
    results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in edits]
    assert [code for code, _ in results] == [0, 0], results
    for _, err in results:
        assert "lxcsd: waiting for ed: another command (lxcsd or lxc-*) holds its lock" in err
    config = (Path(env["LXCSD_LXCPATH"]) / "ed" / "config").read_text()
    assert "lxc.start.order = 7" in config and "lxc.start.auto = 1" in config, config


def hanging_mirror() -> tuple[socket.socket, str]:
    """An HTTP server that accepts and never answers: debootstrap waits on it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server, f"http://127.0.0.1:{server.getsockname()[1]}/debian"


def under_pty(env: dict[str, str], args: list[str], interrupt_after: float,
              ready: str = "") -> tuple[int, str]:
    """Run lxcsd on a real pty, type Ctrl-C after interrupt_after seconds (or once `ready`
    was printed); (exit status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "lxcsd.cli.main", *args], env)
    out, sent = b"", False
    deadline, stop = time.monotonic() + 60, time.monotonic() + interrupt_after
    while time.monotonic() < deadline:
        if not sent and time.monotonic() >= stop and ready.encode() in out:
            os.write(fd, b"\x03")  # the terminal turns it into SIGINT for the job
            sent = True
        if select.select([fd], [], [], 0.1)[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
    done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:  # still running at the deadline: fail, not hang
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


@pytest.mark.skipif(not os.path.exists("/usr/sbin/debootstrap"), reason="needs debootstrap")
def test_ctrl_c_during_create_leaves_nothing(env: dict[str, str]) -> None:
    server, mirror = hanging_mirror()
    try:
        code, out = under_pty(env, ["create", "deb", "-t", "debian", "--mirror", mirror], 3)
    finally:
        server.close()
    assert code == 130, out
    assert "Traceback" not in out
    assert os.listdir(env["LXCSD_LXCPATH"]) == []  # neither deb nor a hidden build
    assert lxcsd(env, "create", "deb", "-f", "/dev/null").returncode == 0  # lock released


def test_not_root_says_so(env: dict[str, str]) -> None:
    for args in (["create", "x"], ["copy", "a", "b"], ["destroy", "x"]):
        r = subprocess.run([sys.executable, "-m", "lxcsd.cli.main", *args], env=env,
                           capture_output=True, text=True, timeout=60,
                           user=65534, group=65534, cwd="/")
        assert r.returncode == 1 and "must be run as root" in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
