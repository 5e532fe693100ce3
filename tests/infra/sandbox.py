"""A real systemd as PID 1 in namespaces, for tests of lxcsd as systemd services.

    with Sandbox() as sb:                       # boots; sb.stop() on exit
        sb.run(["systemctl", "start", "foo.service"])
        sb.path("/etc/foo.conf").write_text("x")  # host path into the sandbox
        sb.reboot()                             # same overlay upper layer afterwards

How it boots is described in _launcher.py. The sandbox sees the host's ``/`` through an overlay
whose upper layer is a tmpfs (writes never reach the host), has its own pid, mount, cgroup,
net (loopback only), uts and ipc namespaces, and a cgroup2 tree rooted at a child cgroup of
the caller's (in the host's cgroup v1 hierarchies too: a child of the caller's in each).
It is test isolation, not a security boundary.

Limits: the host's cgroup2 hierarchy has only the controllers the host did not bind to v1
(here: hugetlb), so memory/cpu/pids limits do not apply inside; the "vm" tests cover those.
There is no network beyond loopback and no package installation inside.
"""

from __future__ import annotations

import atexit
import errno
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.infra import v1cgroups

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("_launcher.py")
STATE_BASE = Path("/run/lxcsd-sandbox")
CACHE_DIR = Path("/var/cache/lxcsd-test")
# Debian's interpreter: the launcher needs the standard library only, never the venv.
SYSTEM_PYTHON = "/usr/bin/python3"
SYSTEMD = "/lib/systemd/systemd"
NAME_PREFIX = "lxcsd-sandbox-"

# The environment of commands run inside: nothing of pytest's (PYTHONPATH, venv, pager).
CMD_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
# What reset() cleans: entries a test added under these directories are removed.
RESET_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/etc/lxc", "/var/lib/lxc",
              "/run/lxc", "/run/lxcsd", "/var/lib/lxcsd")
# Unit types reset() stops when a test started them (not slices or devices).
STOPPABLE = {"service", "socket", "timer", "path", "target", "scope", "mount", "automount",
             "swap"}

Cmd = Sequence[str] | str


class SandboxError(RuntimeError):
    """The sandbox could not boot, answer, or be torn down cleanly."""


class SandboxCommandError(subprocess.CalledProcessError):
    """A command inside the sandbox failed; str() shows its output."""

    def __str__(self) -> str:
        out = _tail(_text(self.stdout), 40)
        err = _tail(_text(self.stderr), 40)
        return (f"sandbox command {list(self.cmd)!r} exited with {self.returncode}\n"
                f"--- stdout ---\n{out}\n--- stderr ---\n{err}")


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _argv(cmd: Cmd) -> list[str]:
    return ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ns_inode(pid: int | str, ns: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{ns}").st_ino
    except OSError:
        return None


def _read(path: Path | str, default: str = "") -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return default


# ----------------------------------------------------------------------------------------
# cgroup2 on the host

def cgroup2_mount() -> Path:
    """Where the host mounts the cgroup2 hierarchy (/sys/fs/cgroup or .../unified)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return Path(left.split()[4].replace("\\040", " "))
    raise SandboxError("the host has no cgroup2 mount; the sandbox's systemd needs one")


def sandbox_cgroup_parent() -> Path:
    """Our own cgroup2 cgroup: sandboxes get children of it."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return cgroup2_mount() / line[3:].strip().lstrip("/")
    raise SandboxError("this process has no cgroup2 membership")


def kill_cgroup(cg: Path) -> None:
    """SIGKILL everything in a cgroup tree (cgroup.kill, else each listed process)."""
    if (cg / "cgroup.kill").exists():
        (cg / "cgroup.kill").write_text("1")
        return
    for procs in cg.rglob("cgroup.procs"):
        for pid in _read(procs).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def cgroup_populated(cg: Path) -> bool:
    return "populated 1" in _read(cg / "cgroup.events")


def cgroup_is_empty(cg: Path) -> bool:
    return not cgroup_populated(cg)


def remove_cgroup(cg: Path) -> None:
    """rmdir a cgroup tree bottom-up (control files go with their directory)."""
    if not cg.exists():
        return
    for dirpath, _dirs, _files in sorted(os.walk(cg), key=lambda w: -len(w[0])):
        os.rmdir(dirpath)


def sweep_stale() -> list[str]:
    """Remove what sandboxes of dead test processes left (cgroups, state directories)."""
    removed = []
    candidates = list(sandbox_cgroup_parent().glob(NAME_PREFIX + "*"))
    v1_parents = v1cgroups.own_dirs()
    candidates += [p for d in v1_parents for p in d.glob(NAME_PREFIX + "*")]
    candidates += list(STATE_BASE.glob(NAME_PREFIX + "*")) if STATE_BASE.exists() else []
    for path in candidates:
        try:
            owner = int(path.name[len(NAME_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if _alive(owner):
            continue
        if path.is_relative_to(STATE_BASE):
            shutil.rmtree(path, ignore_errors=True)
        elif path.parent in v1_parents:
            v1cgroups.remove([path])  # emptied with its cgroup2 twin (the same processes)
        else:
            kill_cgroup(path)
            _wait(functools.partial(cgroup_is_empty, path), 10)
            remove_cgroup(path)
        removed.append(str(path))
    return removed


def _wait(cond: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# ----------------------------------------------------------------------------------------
# Paths inside

def resolve_in_root(root: str, path: str, follow_last: bool = True) -> str:
    """Resolve symlinks of `path` as the sandbox would: absolute targets start at its root.

    (Opening /proc/PID/root/a/link where link -> /etc/x would otherwise reach the host's
    /etc/x: the kernel resolves an absolute target against the caller's root.)
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = resolved + [part]
        full = root + "/" + "/".join(candidate)
        if (parts or follow_last) and os.path.islink(full):
            links += 1
            if links > 40:
                raise OSError(errno.ELOOP, "too many symlinks in the sandbox", path)
            target = os.readlink(full)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved = candidate
    return "/" + "/".join(resolved)


class Checkpoint:
    """What reset() returns to: active units and the entries of RESET_DIRS."""

    __slots__ = ("active", "entries")

    def __init__(self, *, active: dict[str, str], entries: dict[str, set[str]]) -> None:
        self.active = active
        self.entries = entries


# ----------------------------------------------------------------------------------------

_LIVE: set[Sandbox] = set()


@atexit.register
def _stop_all() -> None:
    for sb in list(_LIVE):
        sb.stop(check=False)


class Sandbox:
    """One systemd sandbox. start() boots it, stop() tears it down (and verifies that)."""

    def __init__(self, *, hostname: str = "lxcsd-sandbox",
                 binds: Sequence[str] | None = None,
                 hide: Sequence[str] = ("/var/lib/lxc",),
                 mask: Sequence[str] = (),
                 tmpfs_size: str = "50%",
                 boot_timeout: float = 120.0,
                 container: str = "lxcsd-test") -> None:
        """binds: host directories bind-mounted read-only at the same path (default: this
        source tree and the root-filesystem cache). hide: host directories that appear empty
        inside (the host's containers must not autostart). mask: extra units to mask."""
        self.name = f"{NAME_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self.hostname = hostname
        self.binds = list(binds) if binds is not None else [str(REPO_ROOT), str(CACHE_DIR)]
        self.hide = list(hide)
        self.mask = list(mask)
        self.tmpfs_size = tmpfs_size
        self.boot_timeout = boot_timeout
        self.container = container
        self.state_dir = STATE_BASE / self.name
        self.cgroup = sandbox_cgroup_parent() / self.name
        self.cgroup_v1: list[Path] = []
        self.failed_units: list[str] = []
        self.timings: dict[str, float] = {}
        self.console_text = ""      # the console log, kept after stop()
        self.boot = 0
        self._pid = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidns: set[int] = set()
        self._mntns: set[int] = set()
        self._checkpoint: Checkpoint | None = None
        self._installed: tuple[str, str] | None = None  # install_lxcsd() arguments

    # -- life cycle ----------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(check=exc[0] is None)

    def start(self) -> Sandbox:
        """Boot, wait until systemd is running (or degraded), take a checkpoint."""
        if os.geteuid() != 0:
            raise SandboxError("the sandbox needs root (namespaces, mounts, cgroups)")
        sweep_stale()
        t0 = time.monotonic()
        self._spawn_launcher()
        try:
            self._wait_boot(1, t0 + self.boot_timeout)
            self.wait_running(timeout=max(1.0, t0 + self.boot_timeout - time.monotonic()))
        except BaseException as e:
            diag = self.diagnostics()
            self.stop(check=False)
            if isinstance(e, SandboxError):
                raise SandboxError(f"{e}\n{diag}") from None
            raise
        self.timings["boot"] = time.monotonic() - t0
        self.checkpoint()
        return self

    def ensure_running(self) -> bool:
        """Boot again (on a fresh upper layer) if a test powered the sandbox off or killed
        it; lxcsd is installed again if it was. Returns whether a new boot was needed."""
        if self.running:
            return False
        self.stop(check=False)
        self.start()
        if self._installed:
            self.install_lxcsd(*self._installed)
            self.checkpoint()
        return True

    def _spawn_launcher(self) -> None:
        layer = self.state_dir / "layer"
        layer.mkdir(parents=True)
        self.cgroup.mkdir()
        self.cgroup_v1 = v1cgroups.make(self.name)
        self.boot = 0
        (self.state_dir / "boot.json").unlink(missing_ok=True)
        cfg = {
            "parent": os.getpid(), "state": str(self.state_dir), "layer": str(layer),
            "cgroup": str(self.cgroup), "tmpfs_size": self.tmpfs_size,
            "cgroup_v1": [str(path) for path in self.cgroup_v1],
            "hostname": self.hostname, "container": self.container, "systemd": SYSTEMD,
            "hide": self.hide, "mask": self.mask,
            "binds": [{"src": b, "dst": b, "ro": True} for b in self.binds],
        }
        for b in self.binds:
            if b == str(CACHE_DIR):
                CACHE_DIR.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "config.json").write_text(json.dumps(cfg, indent=1))
        log = open(self.state_dir / "launcher.log", "wb")
        # Own session: a Ctrl-C at pytest's terminal reaches pytest, whose teardown stops us.
        self._proc = subprocess.Popen(
            [SYSTEM_PYTHON, "-I", "-S", str(LAUNCHER), str(self.state_dir / "config.json")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        _LIVE.add(self)

    def _wait_boot(self, boot: int, deadline: float) -> None:
        """Wait for boot number `boot` to have forked its init, and note its namespaces."""
        info: dict[str, int] = {}

        def booted() -> bool:
            nonlocal info
            self._check_launcher()
            try:
                info = json.loads((self.state_dir / "boot.json").read_text())
            except (OSError, ValueError):
                return False
            return info["boot"] >= boot

        if not _wait(booted, max(0.0, deadline - time.monotonic())):
            raise SandboxError(f"boot {boot} did not start within the timeout")
        self.boot, self._pid = info["boot"], info["pid"]
        launcher_ns = _ns_inode(self._proc.pid, "mnt")  # type: ignore[union-attr]
        if launcher_ns is not None and launcher_ns != _ns_inode("self", "mnt"):
            self._mntns.add(launcher_ns)

    def _check_launcher(self) -> None:
        if self._proc is None:
            raise SandboxError("the sandbox is not started")
        code = self._proc.poll()
        if code is not None:
            raise SandboxError(f"the sandbox launcher exited with status {code}")

    def _init_ready(self) -> bool:
        """systemd has exec'd in new namespaces and listens on its private socket."""
        self._check_launcher()
        pid = self._pid
        if _read(f"/proc/{pid}/comm").strip() != "systemd":
            return False
        pidns = _ns_inode(pid, "pid")
        if pidns is None or pidns == _ns_inode("self", "pid"):
            return False
        mntns = _ns_inode(pid, "mnt")
        launcher_ns = _ns_inode(self._proc.pid, "mnt")  # type: ignore[union-attr]
        if mntns is None or mntns in (_ns_inode("self", "mnt"), launcher_ns):
            return False  # not yet unshared: still the launcher's
        self._pidns.add(pidns)
        self._mntns.add(mntns)
        return os.path.exists(f"/proc/{pid}/root/run/systemd/private")

    def wait_running(self, timeout: float = 120.0) -> str:
        """`systemctl is-system-running --wait`; accepts degraded (and records the failed
        units in self.failed_units), raises SandboxError otherwise."""
        deadline = time.monotonic() + timeout
        if not _wait(self._init_ready, timeout):
            raise SandboxError("systemd did not come up in the sandbox")
        try:
            r = self.run(["systemctl", "is-system-running", "--wait"], check=False,
                         timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            jobs = self.run(["systemctl", "list-jobs", "--no-legend"], check=False, timeout=10)
            raise SandboxError(f"sandbox systemd still starting after {timeout:.0f} s; "
                               f"jobs:\n{jobs.stdout}") from None
        state = r.stdout.strip()
        self.failed_units = self.failed_unit_names() if state == "degraded" else []
        if state not in ("running", "degraded"):
            raise SandboxError(f"sandbox systemd is {state!r}, not running: {r.stderr.strip()}"
                               f"\nfailed units: {self.failed_unit_names()}")
        return state

    def failed_unit_names(self) -> list[str]:
        r = self.run(["systemctl", "list-units", "--failed", "--plain", "--no-legend",
                      "--full"], check=False, timeout=30)
        return [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]

    def reboot(self, timeout: float | None = None) -> None:
        """`systemctl reboot` inside; waits for the next boot to be running. The overlay's
        upper layer (files, enabled units) is kept; /run and /tmp start empty."""
        timeout = timeout or self.boot_timeout
        t0 = time.monotonic()
        boot = self.boot
        self.run(["systemctl", "--no-block", "reboot"])
        self._wait_boot(boot + 1, t0 + timeout)
        self.wait_running(timeout=max(1.0, t0 + timeout - time.monotonic()))
        self.timings["reboot"] = time.monotonic() - t0

    def stop(self, timeout: float = 60.0, check: bool = True, kill: bool = False) -> list[str]:
        """Power off (SIGRTMIN+4 to systemd: orderly, needs no D-Bus), SIGKILL the launcher
        if that takes longer than `timeout` (at once with kill=True: each process of the
        sandbox dies with its parent), then remove and verify: no process left in the
        sandbox's namespaces or cgroup, no mount, no cgroup or state directory. Returns the
        leftovers found (raises SandboxError about them when check is true)."""
        if self._proc is None:
            return []
        t0 = time.monotonic()
        if self._proc.poll() is None:
            if not kill:
                self._signal_init(signal.SIGRTMIN + 4)
            try:
                self._proc.wait(0 if kill else timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self.console_text = _read(self.state_dir / "console.log")
        leftovers = self._teardown()
        self._proc = None
        _LIVE.discard(self)
        self.timings["stop"] = time.monotonic() - t0
        if leftovers and check:
            raise SandboxError("sandbox teardown left: " + "; ".join(leftovers))
        return leftovers

    def _kill(self) -> None:
        """SIGKILL systemd (the kernel kills its pid namespace), so that its parent reaps it
        and the launcher exits; SIGKILL the launcher only if that does not happen. (Killing
        the launcher first also takes everything down, through PR_SET_PDEATHSIG, but leaves
        the init's zombie to the host's init, which may reap it late.)"""
        assert self._proc is not None
        self._signal_init(signal.SIGKILL)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(30)

    def _signal_init(self, sig: int) -> None:
        """Signal our systemd, checking first that the pid still is it (pid reuse)."""
        if _ns_inode(self._pid, "pid") in self._pidns:
            try:
                os.kill(self._pid, sig)
            except ProcessLookupError:
                pass

    def _teardown(self) -> list[str]:
        ok = _wait(lambda: not self._leftover_processes() and not cgroup_populated(self.cgroup),
                   5)
        if not ok and self.cgroup.exists():
            kill_cgroup(self.cgroup)
            _wait(lambda: not self._leftover_processes() and not cgroup_populated(self.cgroup),
                  10)
        leftovers = [f"process {p}" for p in self._leftover_processes()]
        if cgroup_populated(self.cgroup):
            leftovers.append(f"populated cgroup {self.cgroup}")
        try:
            remove_cgroup(self.cgroup)
        except OSError as e:
            leftovers.append(f"cgroup {self.cgroup}: {e}")
        # With what lxcsd made below them (as remove_cgroup does for the cgroup2 tree).
        leftovers += [f"cgroup v1 {p}" for p in v1cgroups.remove(self.cgroup_v1)]
        leftovers += [f"mount {m}" for m in self.host_mounts()]
        if not leftovers and not os.environ.get("LXCSD_SANDBOX_KEEP"):
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return leftovers

    def _leftover_processes(self) -> list[int]:
        """Host pids still in one of the sandbox's pid or mount namespaces."""
        found = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and (_ns_inode(entry.name, "pid") in self._pidns
                                         or _ns_inode(entry.name, "mnt") in self._mntns):
                found.append(int(entry.name))
        return found

    def host_mounts(self) -> list[str]:
        """Mounts of this sandbox visible on the host (there should never be any)."""
        found = []
        for src in ("/proc/self/mountinfo", "/proc/1/mountinfo"):
            found += [ln for ln in _read(src).splitlines() if str(self.state_dir) in ln]
        return found

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """Host pid of the sandbox's systemd (PID 1 inside); changes on reboot."""
        self._check_launcher()
        return self._pid

    @property
    def launcher_pid(self) -> int:
        self._check_launcher()
        return self._proc.pid  # type: ignore[union-attr]

    # -- commands and files --------------------------------------------------------------

    def run(self, cmd: Cmd, *, check: bool = True, timeout: float = 120.0,
            input: str | bytes | None = None, env: dict[str, str] | None = None,
            text: bool = True) -> subprocess.CompletedProcess[str]:
        """Run cmd (argv, or a string for /bin/sh -c) in all the sandbox's namespaces, cwd /.
        It stays in the caller's cgroup: use run_in_unit() for the sandbox's cgroup tree."""
        pid = self.pid
        self._check_isolated(pid)
        argv = ["nsenter", "-t", str(pid), "-a", "-r", "-w", "--", *_argv(cmd)]
        r = subprocess.run(argv, input=input, capture_output=True, text=text, timeout=timeout,
                           env={**CMD_ENV, **(env or {})},
                           stdin=subprocess.DEVNULL if input is None else None)
        if check and r.returncode != 0:
            raise SandboxCommandError(r.returncode, _argv(cmd), r.stdout, r.stderr)
        return r

    @staticmethod
    def _check_isolated(pid: int) -> None:
        """Refuse to nsenter a process that still shares a namespace with us (an init that
        has not unshared yet): the command would act on the host."""
        for ns in ("mnt", "pid", "net", "uts", "ipc", "cgroup"):
            mine, its = _ns_inode("self", ns), _ns_inode(pid, ns)
            if its is None or its == mine:
                raise SandboxError(f"pid {pid} is not in a {ns} namespace of its own")

    def run_in_unit(self, cmd: Cmd, *, unit: str | None = None,
                    properties: Sequence[str] = (), env: dict[str, str] | None = None,
                    check: bool = True, timeout: float = 120.0,
                    input: str | bytes | None = None) -> subprocess.CompletedProcess[str]:
        """Run cmd as a transient service of the sandbox's systemd (`systemd-run --pipe
        --wait`): in its cgroup tree, with properties such as "Delegate=yes"."""
        argv = ["systemd-run", "--quiet", "--pipe", "--wait", "--collect",
                "--service-type=exec"]
        argv += [f"--unit={unit}"] if unit else []
        argv += [f"--property={p}" for p in properties]
        argv += [f"--setenv={k}={v}" for k, v in (env or {}).items()]
        return self.run([*argv, "--", *_argv(cmd)], check=check, timeout=timeout, input=input)

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["systemctl", *args], check=check)

    def path(self, p: str, follow: bool = True) -> Path:
        """Host path of p inside the sandbox (through /proc/PID/root), symlinks resolved the
        way the sandbox sees them. Valid while this boot runs."""
        root = f"/proc/{self.pid}/root"
        return Path(root + resolve_in_root(root, p, follow_last=follow))

    def write_file(self, p: str, content: str | bytes, mode: int = 0o644) -> Path:
        """Create p (and its parent directories) inside the sandbox."""
        target = self.path(p)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content)
        else:
            target.write_bytes(content)
        target.chmod(mode)
        return target

    def journal(self, unit: str | None = None, lines: int = 200) -> str:
        """The last `lines` lines of the sandbox's journal (of one unit if given)."""
        argv = ["journalctl", "--no-pager", "-q", "-o", "short-precise", "-n", str(lines)]
        argv += ["-u", unit] if unit else []
        try:
            r = self.run(argv, check=False, timeout=30)
        except (SandboxError, subprocess.TimeoutExpired) as e:
            return f"(journal unavailable: {e})"
        return r.stdout + (r.stderr if r.returncode else "")

    def console(self) -> str:
        """What the sandbox's systemd wrote to its console, across boots."""
        return _read(self.state_dir / "console.log") or self.console_text

    def diagnostics(self, lines: int = 80) -> str:
        """Launcher log, console and journal tails: for failure messages."""
        parts = [f"--- sandbox {self.name}: launcher log ---",
                 _tail(_read(self.state_dir / "launcher.log"), lines),
                 "--- console ---", _tail(self.console(), lines)]
        if self.running:
            parts += ["--- journal ---", self.journal(lines=lines)]
        return "\n".join(parts)

    # -- installing lxcsd --------------------------------------------------------------

    def install_lxcsd(self, src: str | Path | None = None,
                      prefix: str = "/usr/local") -> subprocess.CompletedProcess[str]:
        """Install lxcsd inside as a user would: `packaging/install.sh --offline` run in the
        sandbox. --offline reuses the host's venv at $prefix/lib/lxcsd/venv (the sandbox sees
        it through the overlay), so the host must have run install.sh (setup.sh does)."""
        src = str(src or REPO_ROOT)
        script = f"{src}/packaging/install.sh"
        if not self.path(script).is_file():
            raise SandboxError(f"{script} is not visible in the sandbox (pass its tree in "
                               "binds=, or use a path outside /tmp and /run)")
        venv = f"{prefix}/lib/lxcsd/venv/bin/python"
        if not self.path(venv).exists():
            raise SandboxError(f"{venv} missing: install.sh --offline reuses the host's venv; "
                               f"run `packaging/install.sh --prefix {prefix}` on the host first")
        r = self.run(["/bin/bash", script, "--offline", "--prefix", prefix], timeout=600)
        self._installed = (src, prefix)
        return r

    # -- cheap reset between tests ---------------------------------------------------------

    def active_units(self) -> dict[str, str]:
        """Loaded units and their ActiveState."""
        r = self.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "--full"],
                     timeout=30)
        units = {}
        for line in r.stdout.splitlines():
            fields = line.split()
            if fields and fields[0] == "●":
                fields = fields[1:]
            if len(fields) >= 3:
                units[fields[0]] = fields[2]
        return units

    def _entries(self, d: str) -> set[str]:
        base = self.path(d)
        found: set[str] = set()
        for dirpath, dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, base)
            found.update(os.path.normpath(os.path.join(rel, n)) for n in dirs + files)
        return found

    def checkpoint(self) -> None:
        """Remember the current state as the one reset() returns to."""
        self._checkpoint = Checkpoint(active=self.active_units(),
                                      entries={d: self._entries(d) for d in RESET_DIRS})

    def reset(self) -> list[str]:
        """Undo what a test added since the checkpoint: stop units it started, delete files
        it created under RESET_DIRS (unmounting what it mounted there), reset failed units,
        daemon-reload. Files it changed, and units it stopped, are not restored. Returns
        what was undone."""
        cp = self._checkpoint
        if cp is None or not self.running:
            return []
        undone = self._stop_new_units(cp)
        removed = self._remove_new_entries(cp)
        undone += removed
        if removed:
            self.run(["systemctl", "daemon-reload"], check=False)
        self.run(["systemctl", "reset-failed"], check=False)
        return undone

    def _stop_new_units(self, cp: Checkpoint) -> list[str]:
        started = [u for u, state in self.active_units().items()
                   if state != "inactive" and cp.active.get(u, "inactive") == "inactive"
                   and u.rsplit(".", 1)[-1] in STOPPABLE]
        if started:
            self.run(["systemctl", "stop", "--", *started], check=False, timeout=120)
        return [f"stopped {u}" for u in started]

    def _remove_new_entries(self, cp: Checkpoint) -> list[str]:
        removed = []
        for d in RESET_DIRS:
            new = sorted(self._entries(d) - cp.entries.get(d, set()))
            done: list[str] = []
            for rel in new:
                if any(rel.startswith(p + "/") for p in done):
                    continue
                inside = os.path.join(d, rel)
                self._unmount_under(inside)
                target = self.path(inside, follow=False)
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
                done.append(rel)
                removed.append(f"removed {inside}")
        return removed

    def _unmount_under(self, inside: str) -> None:
        mounts = [ln.split()[4] for ln in _read(f"/proc/{self.pid}/mountinfo").splitlines()]
        under = [m for m in mounts if m == inside or m.startswith(inside + "/")]
        for m in sorted(under, key=len, reverse=True):
            self.run(["umount", "-l", m], check=False)


def main() -> None:
    """python -m tests.infra.sandbox [N]: boot, reboot and stop N times; print the timings."""
    import statistics
    import sys

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        with Sandbox() as sb:
            sb.reboot()
        for k, v in sb.timings.items():
            samples.setdefault(k, []).append(v)
    for k, vs in samples.items():
        print(f"{k:7s} median {statistics.median(vs) * 1000:6.0f} ms  "
              f"min {min(vs) * 1000:6.0f}  max {max(vs) * 1000:6.0f}  (n={len(vs)})")


if __name__ == "__main__":
    main()
