"""A nested QEMU VM with a real cgroup2 hierarchy, driven through qemu-guest-agent.

    with VM() as vm:                                   # boot(); shutdown() on exit
        rc, out, err = vm.run(["cat", "/sys/fs/cgroup/cgroup.controllers"])
        vm.put_tree("/work/main/tests/data", "/srv/data")   # copy a host tree in
        vm.install_lxcsd()                             # the repo, then install.sh --offline

    python -m tests.infra.vm.vm run -- systemctl status    # boot, run, shut down (timings)
    python -m tests.infra.vm.vm console                    # interactive serial console
                                                            # (root, no password; Ctrl-a x)

Why it looks like this:
* This host's cgroup2 tree has no memory/pids/cpu controllers and KVM does not work here, so
  the guest runs in software emulation (TCG, both host cores). Only one VM may run at a time:
  boot() takes a host-wide lock (/run/lxcsd-test-vm.lock) and waits for it.
* The root disk is the cached image (image.py) with snapshot=on: every boot starts from the
  same state and nothing reaches the cache. The kernel is booted directly (-kernel).
* No network (-nic none). Commands go through the guest agent (guest-exec, then
  guest-exec-status polled until it exits, output base64); files arrive on disks: put_tree()
  makes an ext4 image of a host tree (mkfs.ext4 -d) and hot-plugs it as an NVMe disk (QMP
  device_add on the i440fx root bus, ACPI hotplug), the guest mounts it read-only and copies
  it, then the disk is unplugged again.
* Each command runs under setsid, so a timeout can kill its whole process group. The agent
  reports a command finished only when its stdout/stderr are closed: start daemons with
  systemd-run, not with `cmd &`.
* QEMU gets PR_SET_PDEATHSIG: if the test process dies hard, the VM dies with it; atexit and
  the pytest fixture call shutdown() otherwise (guest poweroff, then QMP quit, then SIGKILL).

Not thread-safe: one caller drives a VM at a time.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from tests.infra.vm import image as image_module
from tests.infra.vm.image import Image
from tests.probe.build import build_attach_exec

REPO_ROOT = Path(__file__).resolve().parents[3]
QEMU = "qemu-system-x86_64"
STATE_BASE = Path("/var/tmp/lxcsd-vm")
LOCK_PATH = Path("/run/lxcsd-test-vm.lock")
AGENT_PORT = "org.qemu.guest_agent.0"
KERNEL_ARGS = ("root=" + image_module.ROOT_DEVICE, "rootfstype=ext4", "rw", "console=ttyS0",
               # Warnings and errors of the kernel only: printing to an emulated UART is slow.
               "loglevel=4",
               # A panic ends QEMU (with -no-reboot) instead of hanging until the timeout.
               "panic=-1",
               "systemd.unified_cgroup_hierarchy=1",
               # Plain status lines in the console log (it ends up in test reports).
               "systemd.log_color=0")
# The environment of guest commands (the agent's own is systemd's, not a login's).
CMD_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
# What install_lxcsd() leaves out of the source tree it delivers.
SOURCE_IGNORE = (".git", "__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                 ".venv", "venv", "build", "dist", "*.egg-info", ".hypothesis")
GUEST_SRC = "/usr/src/lxcsd"
PR_SET_PDEATHSIG = 1

Cmd = Sequence[str] | str


class VMError(RuntimeError):
    """The VM could not boot, answer, or be driven."""


class AgentError(VMError):
    """The guest agent answered with an error."""


class Result(NamedTuple):
    """What run() returns; unpacks as (rc, stdout, stderr), reads like CompletedProcess."""
    returncode: int
    stdout: str
    stderr: str


class VMCommandError(subprocess.CalledProcessError):
    """A guest command failed; str() shows its output."""

    def __str__(self) -> str:
        return (f"VM command {list(self.cmd)!r} exited with {self.returncode}\n"
                f"--- stdout ---\n{_tail(self.stdout or '', 40)}\n"
                f"--- stderr ---\n{_tail(self.stderr or '', 40)}")


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _argv(cmd: Cmd) -> list[str]:
    return ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def unavailable_reason() -> str | None:
    """Why the VM tier cannot run here (a skip reason), or None."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} is missing (apt-get install qemu-system-x86)"
    if os.geteuid() != 0:
        return "the VM tier needs root (image build: debootstrap, chroot; /run lock)"
    needed = ["mkfs.ext4"]  # put_tree
    try:
        built = image_module.cached_image(log=lambda m: None) is not None
    except (OSError, subprocess.SubprocessError, image_module.ImageError):
        built = False
    if not built:
        needed += ["debootstrap", "apt-get", "dpkg-deb", "unshare", "chroot"]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        return (f"missing {', '.join(missing)} (apt-get install debootstrap e2fsprogs "
                "qemu-system-x86)")
    return None


# ----------------------------------------------------------------------------------------
# JSON over a unix socket (QMP, guest agent)

class _JsonSocket:
    """Newline-delimited JSON objects over a unix stream socket, with deadlines."""

    def __init__(self, path: Path, deadline: float, alive: Callable[[], bool]) -> None:
        self.buf = b""
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline or not alive():
                    raise VMError(f"cannot connect to {path}") from None
                time.sleep(0.02)
        self.sock = sock

    def send(self, obj: dict[str, Any], prefix: bytes = b"") -> None:
        self.sock.sendall(prefix + json.dumps(obj).encode() + b"\n")

    def recv(self, deadline: float) -> dict[str, Any]:
        """The next JSON object; TimeoutError at the deadline."""
        while True:
            line, sep, rest = self.buf.partition(b"\n")
            if sep:
                self.buf = rest
                # 0xff is the agent's resync delimiter; it never occurs in UTF-8 JSON.
                line = line.replace(b"\xff", b"").strip()
                if line:
                    return dict(json.loads(line))
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:
                raise TimeoutError("no answer") from None
            if not chunk:
                raise VMError("socket closed by QEMU")
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


class _Qmp:
    def __init__(self, path: Path, deadline: float, alive: Callable[[], bool]) -> None:
        self.chan = _JsonSocket(path, deadline, alive)
        self.events: list[dict[str, Any]] = []
        self.chan.recv(deadline)  # greeting
        self.call("qmp_capabilities")

    def call(self, cmd: str, args: dict[str, Any] | None = None,
             timeout: float = 30.0) -> Any:
        self.chan.send({"execute": cmd, **({"arguments": args} if args else {})})
        deadline = time.monotonic() + timeout
        while True:
            msg = self.chan.recv(deadline)
            if "event" in msg:
                self.events.append(msg)
            elif "error" in msg:
                raise VMError(f"QMP {cmd}: {msg['error'].get('desc')}")
            elif "return" in msg:
                return msg["return"]

    def wait_event(self, name: str, match: Callable[[dict[str, Any]], bool],
                   timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and match(ev.get("data", {})):
                    self.events.remove(ev)
                    return True
            try:
                msg = self.chan.recv(deadline)
            except TimeoutError:
                return False
            if "event" in msg:
                self.events.append(msg)

    def close(self) -> None:
        self.chan.close()


class _Agent:
    """qemu-guest-agent client. Requests buffered before the agent ran, or abandoned after
    a timeout, leave stale answers in the stream: sync() (guest-sync-delimited with a fresh
    id) skips to the answer of its own request, and runs before any request after a
    timeout."""

    def __init__(self, path: Path, deadline: float, alive: Callable[[], bool]) -> None:
        self.chan = _JsonSocket(path, deadline, alive)
        self.synced = False

    def sync(self, timeout: float) -> None:
        ident = secrets.randbelow(1 << 31)
        self.chan.send({"execute": "guest-sync-delimited", "arguments": {"id": ident}},
                       prefix=b"\xff")
        deadline = time.monotonic() + timeout
        while True:
            msg = self.chan.recv(deadline)
            if msg.get("return") == ident:
                self.synced = True
                return

    def call(self, cmd: str, args: dict[str, Any] | None = None,
             timeout: float = 30.0) -> Any:
        if not self.synced:
            self.sync(timeout)
        self.chan.send({"execute": cmd, **({"arguments": args} if args else {})})
        try:
            msg = self.chan.recv(time.monotonic() + timeout)
        except TimeoutError:
            self.synced = False
            raise
        if "error" in msg:
            raise AgentError(f"guest agent {cmd}: {msg['error'].get('desc')}")
        return msg.get("return")

    def send_only(self, cmd: str, args: dict[str, Any] | None = None) -> None:
        """For commands that never answer (guest-shutdown)."""
        self.chan.send({"execute": cmd, **({"arguments": args} if args else {})})
        self.synced = False

    def close(self) -> None:
        self.chan.close()


# ----------------------------------------------------------------------------------------
# the host-wide one-VM lock

class _HostLock:
    def __init__(self, path: Path = LOCK_PATH) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, timeout: float) -> None:
        # flock() conflicts between our own descriptors too: a second VM in this process
        # would wait for the first one forever.
        if _RUNNING:
            raise VMError(f"one test VM at a time: {next(iter(_RUNNING))!r} runs in this "
                          "process; shut it down first")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                    os.close(fd)
                    raise VMError(f"another test VM runs (lock {self.path}, held by "
                                  f"{holder or '?'}); the host has room for one") from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = None


_RUNNING: set[VM] = set()


@atexit.register
def _shutdown_all() -> None:
    for vm in list(_RUNNING):
        vm.shutdown(timeout=20.0)


def _die_with_parent() -> None:
    """preexec_fn of QEMU: SIGKILL when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# ----------------------------------------------------------------------------------------

class VM:
    def __init__(self, *, name: str = "lxcsd-vm", memory_mb: int = 2048, cpus: int = 2,
                 image: Image | None = None, accel: str | None = None,
                 lock_timeout: float = 900.0, interactive: bool = False,
                 extra_args: Sequence[str] = ()) -> None:
        self.name = name
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.image = image
        self.accel = accel or os.environ.get("LXCSD_VM_ACCEL", "tcg")
        self.lock_timeout = lock_timeout
        self.interactive = interactive
        self.extra_args = list(extra_args)
        self.state_dir = STATE_BASE / name
        self.console_log = self.state_dir / "console.log"
        self.qemu_log = self.state_dir / "qemu.log"
        self.timings: dict[str, float] = {}
        self.system_state = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._qmp: _Qmp | None = None
        self._agent: _Agent | None = None
        self._lock = _HostLock()
        self._disks = 0

    def __enter__(self) -> VM:
        return self.boot()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"VM({self.name!r}, running={self.running})"

    # -- boot ----------------------------------------------------------------------------

    def boot(self, timeout: float = 300.0) -> VM:
        """Start QEMU and wait until the agent answers and systemd has booted (running or
        degraded). Raises VMError with the console's tail on failure."""
        if self.running:
            raise VMError(f"{self.name} is already running")
        if self.image is None:
            self.image = image_module.image()
        self._lock.acquire(self.lock_timeout)
        try:
            self._boot(timeout)
        except (VMError, OSError, TimeoutError, subprocess.TimeoutExpired) as e:
            diag = self.diagnostics()
            self.shutdown(timeout=10.0)
            raise VMError(f"{self.name} did not boot: {e}\n{diag}") from e
        except BaseException:
            self.shutdown(timeout=10.0)
            raise
        return self

    def _boot(self, timeout: float) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True)
        t0 = time.monotonic()
        deadline = t0 + timeout
        self._proc = self._spawn()
        _RUNNING.add(self)
        self._qmp = _Qmp(self.state_dir / "qmp.sock", t0 + 30, self._alive)
        self._agent = _Agent(self.state_dir / "qga.sock", t0 + 30, self._alive)
        self._wait_agent(deadline)
        self.timings["agent"] = round(time.monotonic() - t0, 2)
        self._wait_running(deadline)
        self.timings["boot"] = round(time.monotonic() - t0, 2)

    def qemu_argv(self) -> list[str]:
        assert self.image is not None
        sd = self.state_dir
        accel = (["-accel", "kvm", "-cpu", "host"] if self.accel == "kvm"
                 else ["-accel", "tcg,thread=multi", "-cpu", "max"])
        if self.interactive:
            console = ["-chardev", f"stdio,id=con,mux=on,signal=off,logfile={self.console_log}",
                       "-serial", "chardev:con", "-mon", "chardev=con,mode=readline"]
        else:
            console = ["-chardev", f"file,id=con,path={self.console_log}",
                       "-serial", "chardev:con"]
        return [
            QEMU, "-name", self.name, "-machine", "pc", *accel,
            "-smp", str(self.cpus), "-m", str(self.memory_mb),
            "-nodefaults", "-no-user-config", "-display", "none", "-nic", "none",
            # A guest reboot or panic ends QEMU: tests see it instead of a silent restart.
            "-no-reboot",
            "-kernel", str(self.image.kernel), "-append", " ".join(KERNEL_ARGS),
            "-drive", f"file={self.image.rootfs},if=none,id=root,format=raw,snapshot=on",
            "-device", "nvme,drive=root,serial=root",
            *console,
            "-chardev", f"socket,id=qga,path={sd / 'qga.sock'},server=on,wait=off",
            "-device", "virtio-serial-pci,id=vser",
            "-device", f"virtserialport,bus=vser.0,chardev=qga,name={AGENT_PORT}",
            "-device", "virtio-rng-pci",
            "-qmp", f"unix:{sd / 'qmp.sock'},server=on,wait=off",
            "-pidfile", str(sd / "qemu.pid"),
            *self.extra_args,
        ]

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = self.qemu_argv()
        (self.state_dir / "qemu.argv").write_text(" ".join(argv) + "\n")
        log = open(self.qemu_log, "wb")
        try:
            if self.interactive:
                return subprocess.Popen(argv, stderr=log, preexec_fn=_die_with_parent)
            # Its own session: a Ctrl-C meant for pytest must not kill the VM before the
            # fixture's finalizer shuts it down.
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            log.close()

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _check_alive(self) -> None:
        if not self._alive():
            rc = self._proc.returncode if self._proc else None
            raise VMError(f"QEMU exited ({rc})")

    def _wait_agent(self, deadline: float) -> None:
        assert self._agent is not None
        while True:
            self._check_alive()
            try:
                self._agent.sync(timeout=1.0)
                self._agent.call("guest-ping", timeout=10)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise VMError("the guest agent never answered") from None

    def _wait_running(self, deadline: float) -> None:
        left = max(deadline - time.monotonic(), 1.0)
        r = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=left)
        self.system_state = r.stdout.strip()
        if self.system_state not in ("running", "degraded"):
            raise VMError(f"systemd did not boot: is-system-running says "
                          f"{self.system_state!r}")

    def ensure_running(self, timeout: float = 300.0) -> bool:
        """Boot again (a fresh snapshot) if a test powered the VM off; True if it did."""
        if self.running:
            return False
        self.shutdown(timeout=5.0)  # reap QEMU, release the lock
        self.boot(timeout)
        return True

    @property
    def running(self) -> bool:
        return self._alive() and self._agent is not None

    @property
    def pid(self) -> int | None:
        """PID of the QEMU process (while it runs)."""
        return self._proc.pid if self._alive() and self._proc else None

    # -- commands ----------------------------------------------------------------------

    def run(self, cmd: Cmd, *, check: bool = True, timeout: float = 120.0,
            input: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
        """Run cmd (argv, or a string for /bin/sh -c) in the guest as root, cwd /, and
        return (returncode, stdout, stderr); a signal's death is -signum as in subprocess.
        check: raise VMCommandError on a non-zero status. On timeout the command's process
        group is killed and subprocess.TimeoutExpired raised."""
        agent = self._require_agent()
        argv = _argv(cmd)
        args: dict[str, Any] = {
            # setsid: the command leads its own process group, which a timeout kills whole.
            # util-linux's, not busybox's: that one runs its own applets for ls, ps, ...
            "path": "/usr/bin/setsid", "arg": argv, "capture-output": True,
            "env": [f"{k}={v}" for k, v in {**CMD_ENV, **(env or {})}.items()]}
        if input is not None:
            data = input.encode() if isinstance(input, str) else input
            args["input-data"] = base64.b64encode(data).decode()
        pid = agent.call("guest-exec", args)["pid"]
        status = self._wait_exec(pid, argv, time.monotonic() + timeout, timeout)
        result = _result(status)
        if check and result.returncode != 0:
            raise VMCommandError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def _wait_exec(self, pid: int, argv: list[str], deadline: float,
                   timeout: float) -> dict[str, Any]:
        agent = self._require_agent()
        # A status query costs ~1 ms, a trivial command 10-50 ms in the emulated guest: poll
        # every millisecond at first, then back off (a long sleep is pure added latency).
        delay = 0.001
        fast_until = time.monotonic() + 0.2
        while True:
            status: dict[str, Any] = agent.call("guest-exec-status", {"pid": pid})
            if status.get("exited"):
                return status
            if time.monotonic() > deadline:
                self._kill_group(pid)
                partial = _result(status)
                raise subprocess.TimeoutExpired(argv, timeout, partial.stdout, partial.stderr)
            self._check_alive()
            time.sleep(delay)
            if time.monotonic() > fast_until:
                delay = min(delay * 1.5, 0.02)

    def _kill_group(self, pid: int) -> None:
        agent = self._require_agent()
        killer = agent.call("guest-exec", {"path": "/bin/kill",
                                           "arg": ["-KILL", "--", f"-{pid}"]})["pid"]
        # Collect both statuses: the agent keeps them until asked.
        for p in (killer, pid):
            for _ in range(100):
                if agent.call("guest-exec-status", {"pid": p}).get("exited"):
                    break
                time.sleep(0.05)

    def _require_agent(self) -> _Agent:
        if self._agent is None or not self._alive():
            raise VMError(f"{self.name} is not running")
        return self._agent

    def run_in_unit(self, cmd: Cmd, *, unit: str | None = None,
                    properties: Sequence[str] = (), check: bool = True,
                    timeout: float = 120.0, input: str | bytes | None = None) -> Result:
        """Run cmd as a transient service (`systemd-run --pipe --wait --collect`), with
        properties such as "MemoryMax=32M": the way to put a command under cgroup limits."""
        argv = ["systemd-run", "--quiet", "--pipe", "--wait", "--collect",
                "--service-type=exec"]
        argv += [f"--unit={unit}"] if unit else []
        argv += [f"--property={p}" for p in properties]
        return self.run([*argv, "--", *_argv(cmd)], check=check, timeout=timeout, input=input)

    def systemctl(self, *args: str, check: bool = True) -> Result:
        return self.run(["systemctl", *args], check=check)

    def write_file(self, path: str, content: str | bytes, mode: int = 0o644) -> None:
        """Create a (small) file in the guest, parent directories included."""
        self.run(["/bin/sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"',
                  "sh", path, f"{mode:o}"], input=content)

    def read_file(self, path: str) -> str:
        return self.run(["cat", path]).stdout

    # -- files -------------------------------------------------------------------------

    def put_tree(self, host_dir: str | Path, guest_dir: str, *,
                 ignore: Iterable[str] = (), copy: bool = True, timeout: float = 600.0) -> None:
        """Deliver host_dir's contents to guest_dir (created; existing files overwritten).
        An ext4 image of the tree is hot-plugged as an NVMe disk and mounted read-only;
        copy=True copies it into guest_dir and unplugs the disk, copy=False mounts it at
        guest_dir (read-only) until shutdown. ignore: shutil.ignore_patterns() globs."""
        self._require_agent()
        self._disks += 1
        serial = f"src{self._disks}"
        img = self.state_dir / f"{serial}.img"
        _tree_image(Path(host_dir), img, tuple(ignore), self.state_dir / f"{serial}.stage")
        self._plug(serial, img)
        script = PUT_TREE_SCRIPT if copy else MOUNT_TREE_SCRIPT
        self.run(["/bin/sh", "-c", script, "sh", serial, guest_dir], timeout=timeout)
        if copy:
            self._unplug(serial)
            img.unlink(missing_ok=True)

    def _plug(self, serial: str, img: Path) -> None:
        assert self._qmp is not None
        self._qmp.call("blockdev-add", {
            "node-name": serial, "driver": "raw", "read-only": True,
            "file": {"driver": "file", "filename": str(img), "read-only": True}})
        self._qmp.call("device_add", {"driver": "nvme", "id": serial, "drive": serial,
                                      "serial": serial})

    def _unplug(self, serial: str) -> None:
        """Unplugging needs the guest's cooperation (ACPI eject); a disk that stays is
        harmless, so a timeout here only leaves it attached."""
        assert self._qmp is not None
        self._qmp.call("device_del", {"id": serial})
        if self._qmp.wait_event("DEVICE_DELETED", lambda d: d.get("device") == serial, 30):
            self._qmp.call("blockdev-del", {"node-name": serial})

    def install_lxcsd(self, src: str | Path = REPO_ROOT, prefix: str = "/usr/local",
                      dest: str = GUEST_SRC) -> Result:
        """Deliver the source tree to dest and run `packaging/install.sh --offline` there;
        it reuses the dependencies the image has in $prefix/lib/lxcsd/venv."""
        script = Path(src) / "packaging/install.sh"
        if not script.is_file():
            raise VMError(f"{script} missing")
        if prefix != "/usr/local":
            # --offline needs a venv with the dependencies already at the prefix.
            self.run(["cp", "-a", "/usr/local/lib/lxcsd", f"{prefix}/lib/"])
        self.run(["rm", "-rf", dest])
        self.put_tree(src, dest, ignore=SOURCE_IGNORE)
        # The image has no compiler (purged after building the venv): install.sh takes the
        # attach stub built here (static, so it runs in the guest) from build/.
        stub = build_attach_exec(Path(src))
        with tempfile.TemporaryDirectory() as staging:
            shutil.copy2(stub, staging)
            self.put_tree(staging, f"{dest}/build")
        r = self.run(["/bin/bash", f"{dest}/packaging/install.sh", "--offline",
                      "--prefix", prefix], timeout=900)
        # install.sh's exit status alone has let a failed pip step through: check the result.
        check = self.run([f"{prefix}/lib/lxcsd/venv/bin/python", "-c", "import lxcsd"],
                         check=False)
        if check.returncode != 0:
            raise VMError(f"install.sh --offline did not install lxcsd:\n{r.stdout}{r.stderr}"
                          f"{check.stderr}")
        return r

    # -- diagnostics -------------------------------------------------------------------

    def console(self) -> str:
        """Everything the guest wrote to its serial console in this boot."""
        return _read(self.console_log).replace("\r\n", "\n")

    def console_tail(self, lines: int = 100) -> str:
        return _tail(self.console(), lines)

    def journal(self, unit: str | None = None, lines: int = 200) -> str:
        argv = ["journalctl", "--no-pager", "-q", "-o", "short-precise", "-n", str(lines)]
        argv += ["-u", unit] if unit else []
        try:
            r = self.run(argv, check=False, timeout=60)
        except (VMError, subprocess.TimeoutExpired, TimeoutError) as e:
            return f"(journal unavailable: {e})"
        return r.stdout + (r.stderr if r.returncode else "")

    def diagnostics(self, lines: int = 60) -> str:
        parts = [f"--- VM {self.name}: qemu log ---", _tail(_read(self.qemu_log), 20),
                 "--- serial console ---", self.console_tail(lines)]
        return "\n".join(parts)

    # -- shutdown ----------------------------------------------------------------------

    def shutdown(self, timeout: float = 60.0) -> None:
        """Power the guest off (guest agent), wait up to timeout for QEMU to end, then QMP
        quit, then SIGKILL. Idempotent; safe on a half-booted VM."""
        proc = self._proc
        if proc is None:
            self._lock.release()
            return
        t0 = time.monotonic()
        if proc.poll() is None and self._agent is not None:
            try:
                self._agent.send_only("guest-shutdown", {"mode": "powerdown"})
            except OSError:
                pass
        if not _wait_exit(proc, timeout) and self._qmp is not None:
            try:
                self._qmp.call("quit", timeout=5)
            except (OSError, VMError, TimeoutError):
                pass
        if not _wait_exit(proc, 5):
            proc.kill()  # our own child, by its PID
            proc.wait()
        self.timings["shutdown"] = round(time.monotonic() - t0, 2)
        for chan in (self._agent, self._qmp):
            if chan is not None:
                chan.close()
        self._agent = self._qmp = None
        self._proc = None
        _RUNNING.discard(self)
        self._lock.release()
        for leftover in self.state_dir.glob("src*"):  # disk images; logs stay for post-mortems
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _result(status: dict[str, Any]) -> Result:
    if "signal" in status:
        rc = -int(status["signal"])
    else:
        rc = int(status.get("exitcode", -1))
    out = base64.b64decode(status.get("out-data", "")).decode(errors="replace")
    err = base64.b64decode(status.get("err-data", "")).decode(errors="replace")
    if status.get("out-truncated") or status.get("err-truncated"):
        err += "\n[output truncated by qemu-guest-agent (16 MiB per stream)]"
    return Result(rc, out, err)


# ----------------------------------------------------------------------------------------
# put_tree: disk images of host trees and the guest side

# Finds the hot-plugged disk by its NVMe serial in sysfs (no udev rules needed).
FIND_DISK = r"""
serial=$1 dest=$2 dev=
for _ in $(seq 300); do
    for b in /sys/block/nvme*n*; do
        [ "$(tr -d ' ' < "$b/device/serial" 2>/dev/null)" = "$serial" ] && dev=/dev/${b##*/}
    done
    [ -n "$dev" ] && [ -b "$dev" ] && break
    dev=
    sleep 0.1
done
[ -n "$dev" ] || { echo "put_tree: no NVMe disk with serial $serial appeared" >&2; exit 1; }
"""
PUT_TREE_SCRIPT = "set -eu\n" + FIND_DISK + r"""
mnt=/run/lxcsd-put-tree/$serial
mkdir -p "$mnt" "$dest"
mount -t ext4 -o ro "$dev" "$mnt"
cp -a "$mnt/." "$dest/"
umount "$mnt"
rmdir "$mnt"
rm -rf "$dest/lost+found"
"""
MOUNT_TREE_SCRIPT = "set -eu\n" + FIND_DISK + r"""
mkdir -p "$dest"
mount -t ext4 -o ro "$dev" "$dest"
"""


def _tree_image(src: Path, img: Path, ignore: tuple[str, ...], stage: Path) -> None:
    if not src.is_dir():
        raise VMError(f"put_tree: {src} is not a directory")
    tree = src
    if ignore:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.copytree(src, stage, symlinks=True, ignore=shutil.ignore_patterns(*ignore))
        tree = stage
    try:
        size, inodes = _ext4_needs(tree)
        image_module.make_ext4(tree, img, size, label="lxcsd-src", journal=False,
                               extra=("-N", str(inodes)))
    finally:
        if tree is stage:
            shutil.rmtree(stage, ignore_errors=True)


def _ext4_needs(tree: Path) -> tuple[int, int]:
    """(bytes, inodes) an ext4 file system with 4 KiB blocks needs to hold tree, with room
    to spare: every file and directory takes whole blocks and an inode."""
    blocks = inodes = 0
    for root, dirs, files in os.walk(tree):
        inodes += 1 + len(dirs) + len(files)
        blocks += 1
        for name in files:
            st = os.lstat(os.path.join(root, name))
            blocks += (st.st_size + 4095) // 4096 + 1
    inodes = inodes + inodes // 5 + 64
    size = (blocks + inodes // 16) * 4096
    size = size * 5 // 4 + (16 << 20)
    return (size + (1 << 20) - 1) // (1 << 20) * (1 << 20), inodes


# ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.infra.vm.vm",
                                 description="Boot the nested test VM by hand.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="boot, run a command, shut down; prints timings")
    r.add_argument("--install", action="store_true", help="install lxcsd first")
    r.add_argument("command", nargs="+")
    sub.add_parser("console", help="boot with the serial console on this terminal")
    args = ap.parse_args(argv)
    if args.cmd == "console":
        vm = VM(interactive=True)
        vm.boot()
        print(f"booted in {vm.timings['boot']} s; log in as root (no password); "
              "Ctrl-a x quits", file=sys.stderr)
        assert vm._proc is not None
        vm._proc.wait()
        vm.shutdown()
        return 0
    with VM() as vm:
        print(f"boot: {vm.timings}", file=sys.stderr)
        if args.install:
            t = time.monotonic()
            vm.install_lxcsd()
            print(f"install_lxcsd: {time.monotonic() - t:.2f} s", file=sys.stderr)
        t = time.monotonic()
        rc, out, err = vm.run(args.command, check=False, timeout=3600)
        print(f"command: {time.monotonic() - t:.2f} s, exit {rc}", file=sys.stderr)
        sys.stdout.write(out)
        sys.stderr.write(err)
    print(f"shutdown: {vm.timings['shutdown']} s", file=sys.stderr)
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
