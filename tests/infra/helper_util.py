"""Start real containers through ``python -m lxcsd.runtime.main start NAME``, no systemd.

The test process plays systemd's part: it makes the helper's cgroup (a scratch cgroup2
directory standing for the unit's delegated one), listens on a datagram NOTIFY_SOCKET,
and is a child subreaper so that the container's init, orphaned when the helper exits,
becomes its child and is reaped by ``Started.stop``.

At the moment READY=1 arrives, the executable of MAINPID is recorded: it must already be
init's (not the helper's python), which proves READY follows the exec.
"""

from __future__ import annotations

import array
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from lxcsd import linux
from tests.infra import rootfs, v1cgroups

SUBID_LINE = "root:100000:65536"
BASE_CONFIG = """lxc.rootfs.path = dir:{root}
lxc.uts.name = {name}
lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed
lxc.pty.max = 8
lxc.tty.max = 1
"""


# What packaging/install.sh's launcher runs (there under #!/usr/bin/python3 -IS).
LAUNCHER = (f"import sys; sys.path[:0] = [{str(Path(__file__).resolve().parents[2])!r}]; "
            "sys.path.append('/usr/lib/python3/dist-packages'); "
            "from lxcsd.runtime.main import main; sys.exit(main())")


class Started:
    """What one ``lxcsd-helper start`` did, as the test saw it."""

    def __init__(self, status: int, stderr: str, messages: list[str],
                 exe_at_ready: str | None, state: dict[str, str] | None) -> None:
        self.status = status
        self.stderr = stderr
        self.messages = messages
        self.exe_at_ready = exe_at_ready
        self.state = state

    @property
    def fields(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for message in self.messages:
            for line in message.splitlines():
                key, _, value = line.partition("=")
                found[key] = value
        return found

    @property
    def init_pid(self) -> int:
        return int(self.fields["MAINPID"])

    def stop(self) -> None:
        """SIGKILL init and reap it (we are its subreaper)."""
        if "MAINPID" not in self.fields:
            return
        pid = self.init_pid
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        reap_until(pid)


def reap_until(pid: int) -> None:
    """Reap children until pid is reaped. As a subreaper we also adopt other orphans: a
    process of the container whose parent outside it (lxcsd attach's stub) died at the
    same moment; init's exit waits until such a zombie is reaped, so we must reap it."""
    while True:
        try:
            if os.waitpid(-1, 0)[0] == pid:
                return
        except ChildProcessError:
            return


def reap_orphans() -> None:
    """Reap whatever zombie children we have, without blocking."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return

    def __repr__(self) -> str:
        return f"Started(status={self.status}, messages={self.messages}, stderr={self.stderr!r})"


class Lxcpath:
    """A temporary lxcpath under /var/tmp (traversable by a mapped root) with containers."""

    def __init__(self, probe: Path | None) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="lxcsd-helper-", dir="/var/tmp"))
        self.base.chmod(0o755)
        self.run_dir = self.base / "run"
        self.probe = probe
        self.started: list[Started] = []

    def container(self, name: str, extra: str = "", *, owner: int | None = None,
                  init_script: str | None = None) -> Path:
        """A busybox container NAME (rootfs with /bin/probe); returns its rootfs.
        init_script: a shell script installed as /sbin/testinit and used as init."""
        root = rootfs.busybox_rootfs(self.base / name / "rootfs", hostname=name)
        if self.probe is not None:
            shutil.copy2(self.probe, root / "bin/probe")
        config = BASE_CONFIG.format(root=root, name=name)
        if init_script is not None:
            script = root / "sbin/testinit"
            script.write_text("#!/bin/sh\n" + init_script)
            script.chmod(0o755)
            config += "lxc.init.cmd = /sbin/testinit\n"
        (self.base / name / "config").write_text(config + extra)
        if owner is not None:
            chown_tree(root, owner, owner)
        return root

    def start(self, name: str, cgroup_dir: str, timeout: float = 30.0,
              env: dict[str, str] | None = None, kill_when: Path | None = None,
              python: list[str] | None = None, code: str = "") -> Started:
        """kill_when: SIGKILL the helper as soon as this file exists. python: the
        interpreter and its options (default: this one); code: what it runs with -c
        (default: LAUNCHER)."""
        result = start_helper(name, cgroup_dir, self.base, self.run_dir, timeout, env,
                              kill_when, python, code)
        self.started.append(result)
        return result

    def remove(self) -> None:
        for started in self.started:
            started.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def chown_tree(root: Path, uid: int, gid: int) -> None:
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(os.path.join(top, name), uid, gid)
    os.lchown(root, uid, gid)


def start_helper(name: str, cgroup_dir: str, lxcpath: Path, run_dir: Path, timeout: float,
                 extra_env: dict[str, str] | None = None, kill_when: Path | None = None,
                 python: list[str] | None = None, code: str = "") -> Started:
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    sock_path = str(lxcpath / f".notify-{name}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.bind(sock_path)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LXCSD_LXCPATH": str(lxcpath),
           "LXCSD_RUN_DIR": str(run_dir), "NOTIFY_SOCKET": sock_path,
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.update(extra_env or {})
    v1 = v1cgroups.existing(os.path.basename(cgroup_dir))
    pid = os.fork()
    if pid == 0:
        try:
            with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            v1cgroups.enter(v1)
            os.dup2(err_w, 2)
            devnull = os.open("/dev/null", os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            argv = (python or [sys.executable]) + ["-c", code or LAUNCHER, "start", name]
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.close(err_w)
    try:
        messages, exe_at_ready, stderr, status = _follow(pid, sock, err_r, timeout, kill_when)
    finally:
        sock.close()
        os.close(err_r)
        os.unlink(sock_path)
    state_file = run_dir / name / "state"
    state = None
    if state_file.exists():
        state = dict(line.split("=", 1) for line in state_file.read_text().splitlines())
    return Started(status, stderr, messages, exe_at_ready, state)


def _follow(pid: int, sock: socket.socket, err_r: int, timeout: float,
            kill_when: Path | None = None) -> tuple[list[str], str | None, str, int]:
    messages: list[str] = []
    exe_at_ready = None
    stderr = b""
    deadline = time.monotonic() + timeout
    err_open = True
    while True:
        fds = [sock] + ([err_r] if err_open else [])
        ready, _, _ = select.select(fds, [], [], 0.05)
        if sock in ready:
            message = _receive(sock)
            messages.append(message)
            if "READY=1" in message.splitlines():
                exe_at_ready = _exe_of(message)
        if err_open and err_r in ready:
            chunk = os.read(err_r, 65536)
            stderr += chunk
            err_open = bool(chunk)
        if kill_when is not None and kill_when.exists():
            os.kill(pid, signal.SIGKILL)
            kill_when = None
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            while select.select([sock], [], [], 0)[0]:
                messages.append(_receive(sock))
            if err_open:
                stderr += _drain(err_r)
            return messages, exe_at_ready, stderr.decode(errors="replace"), \
                os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the helper did not finish in {timeout} s: {stderr!r}")


def _drain(fd: int) -> bytes:
    chunks = []
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _receive(sock: socket.socket) -> str:
    """One notification; descriptors (BARRIER=1's) are closed, which releases the barrier."""
    fds = array.array("i")
    data, ancdata, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    for fd in fds:
        os.close(fd)
    return data.decode()


def _exe_of(message: str) -> str | None:
    for line in message.splitlines():
        if line.startswith("MAINPID="):
            try:
                return os.readlink(f"/proc/{line[8:]}/exe")
            except OSError:
                return None
    return None


def wait_file(path: Path, timeout: float = 10.0, end: str = "done\n") -> str:
    """The content of path once it exists and ends with end (a line "done")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            if text.endswith(end):
                return text
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written in {timeout} s")


def mountinfo(pid: int) -> dict[str, str]:
    """Mount point -> per-mount options, as process pid sees them."""
    found = {}
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            found[fields[4]] = fields[5]
    return found


def status_field(pid: int, key: str) -> str:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    raise KeyError(key)


def host_mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(path) or p.startswith(str(path) + "/")]
