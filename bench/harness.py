"""Host side of the benchmark: the sandbox it measures in, statistics, result files.

Every measurement of something systemd runs happens inside one systemd sandbox
(tests/infra/sandbox.py); the timing itself is done there by bench/inside.py, so entering the
sandbox is never part of a figure.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.infra.sandbox import (
    CACHE_DIR,
    CMD_ENV,
    REPO_ROOT,
    Sandbox,
    SandboxCommandError,
    sandbox_cgroup_parent,
)

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
DATA = RESULTS / "data"        # one small JSON file per benchmark: what the report is made of
RAW = RESULTS / "raw"          # logs, journals, hyperfine exports (gitignored)
BENCH_CACHE = Path("/var/cache/lxcsd-bench")
INSIDE = str(BENCH_DIR / "inside.py")
SYSTEM_PYTHON = "/usr/bin/python3"


class BenchError(RuntimeError):
    """A benchmark could not measure what it should (a container did not run or stop)."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------
# statistics

def summary(samples: Sequence[float]) -> dict[str, float | int]:
    """median/min/max/n of samples in seconds, reported in milliseconds."""
    if not samples:
        return {"n": 0}
    ms = [s * 1000 for s in samples]
    return {"n": len(ms), "median": statistics.median(ms), "min": min(ms), "max": max(ms),
            "mean": statistics.fmean(ms)}


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# ----------------------------------------------------------------------------------------
# results

def save(name: str, data: dict) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "measured": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "machine": machine(), **data}
    path = DATA / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    return path


def load_all() -> dict[str, dict]:
    out: dict[str, dict] = {}
    if DATA.is_dir():
        for p in sorted(DATA.glob("*.json")):
            try:
                out[p.stem] = json.loads(p.read_text())
            except ValueError:
                continue
    return out


def raw_path(name: str) -> Path:
    RAW.mkdir(parents=True, exist_ok=True)
    return RAW / name


def _cmd_out(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr) else ""
    except (OSError, subprocess.TimeoutExpired):
        return "(not installed)"


_MACHINE: dict[str, str] = {}


def machine() -> dict[str, str]:
    """What the figures were measured on (they are only comparable within one run)."""
    if not _MACHINE:
        cpu = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        _MACHINE.update({
            "kernel": platform.release(), "cpu": cpu, "cpus": str(os.cpu_count()),
            "memory": f"{int(mem) // 1024 // 1024} GiB", "lxcsd_commit": rev,
            "systemd": _cmd_out(["systemctl", "--version"]),
            "lxc": _cmd_out(["lxc-start", "--version"]),
            "podman": _cmd_out(["podman", "--version"]),
            "hyperfine": _cmd_out(["hyperfine", "--version"]),
        })
    return dict(_MACHINE)


# ----------------------------------------------------------------------------------------
# CPU accounting

CPU_LEAF_PREFIX = "lxcsd-bench-"
_CPU_STAT: list[Path] = []


def cpu_stat() -> Path:
    """cpu.stat of a cgroup2 leaf this process moves into once: every process the benchmark
    makes (its sandboxes and all in them, the commands timed, LXC's monitors) is below it,
    so its usage_usec is the CPU time a start costs the machine, whoever spends it. Other
    engineers' processes on this machine are not in it."""
    if not _CPU_STAT:
        parent = sandbox_cgroup_parent()
        for stale in parent.glob(CPU_LEAF_PREFIX + "*"):  # left by earlier runs (empty)
            try:
                stale.rmdir()
            except OSError:
                pass
        leaf = parent / f"{CPU_LEAF_PREFIX}{os.getpid()}"
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        _CPU_STAT.append(leaf / "cpu.stat")
    return _CPU_STAT[0]


# ----------------------------------------------------------------------------------------
# the sandbox

class Bench:
    """One systemd sandbox to measure in, with lxcsd installed (when it installs) and the
    incumbents' units. Use as a context manager: the sandbox (and every container in it)
    goes away on exit, also on failure."""

    def __init__(self, *, install_lxcsd: bool = True) -> None:
        binds = [str(REPO_ROOT), str(CACHE_DIR)]
        if BENCH_CACHE.is_dir():
            binds.append(str(BENCH_CACHE))
        cpu_stat()  # before the sandbox exists: it is made below this process's cgroup
        self.sb = Sandbox(hostname="lxcsd-bench", binds=binds, tmpfs_size="75%",
                          container="lxcsd-bench")
        self.want_lxcsd = install_lxcsd
        self.lxcsd_install_error: str | None = None

    def __enter__(self) -> Bench:
        self.sb.start()
        try:
            if self.want_lxcsd:
                self._install_lxcsd()
        except BaseException:
            self.sb.stop(check=False)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        left = self.sb.stop(check=False, timeout=120)
        if left:
            log(f"sandbox teardown left: {left}")

    def _install_lxcsd(self) -> None:
        try:
            self.sb.install_lxcsd()
        except Exception as e:  # noqa: BLE001 - any failure means "lxcsd not available"
            self.lxcsd_install_error = f"packaging/install.sh --offline failed: {_short(e)}"
            raw_path("lxcsd-install.log").write_text(str(e))

    # -- running things inside ---------------------------------------------------------

    def run(self, cmd: list[str] | str, *, check: bool = True, timeout: float = 120.0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.sb.run(cmd, check=check, timeout=timeout, env=env)

    def inside(self, *args: str, timeout: float = 120.0,
               env: dict[str, str] | None = None, cpu: bool = False) -> dict:
        """Run bench/inside.py in the sandbox; its JSON answer. cpu: inside.py reads the CPU
        time of everything the benchmark runs (cpu_stat) around its commands, through a
        descriptor opened here (the sandbox's /sys/fs/cgroup shows only its own tree)."""
        if cpu:
            return self._inside_cpu(list(args), timeout, env)
        r = self.sb.run([SYSTEM_PYTHON, "-I", "-S", INSIDE, *args], check=False,
                        timeout=timeout + 30, env=env)
        return _answer(r, args)

    def _inside_cpu(self, args: list[str], timeout: float, env: dict[str, str] | None) -> dict:
        fd = os.open(cpu_stat(), os.O_RDONLY | os.O_CLOEXEC)
        try:
            argv = ["nsenter", "-t", str(self.sb.pid), "-a", "-r", "-w", "--", SYSTEM_PYTHON,
                    "-I", "-S", INSIDE, args[0], "--cpu-fd", str(fd), *args[1:]]
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30,
                               env={**CMD_ENV, **(env or {})}, stdin=subprocess.DEVNULL,
                               pass_fds=(fd,))
        finally:
            os.close(fd)
        return _answer(r, args)


    def timed(self, cmds: Sequence[Sequence[str]], *, timeout: float = 60.0,
              parallel: bool = False, cpu: bool = False,
              until_inits: tuple[str, int] | None = None) -> dict:
        """Run commands inside (one after another, or all at once) and time them there;
        cpu: also the CPU time everything spent meanwhile ("cpu_ms", and "cpu_settled_ms"
        including the 0.2 s after the commands returned); until_inits (prefix, count): then
        wait for that many container inits ("all_running": seconds from the start)."""
        args: list[str] = []
        for c in cmds:
            args += [*c, "---"]
        extra = ["--until-inits", until_inits[0], str(until_inits[1])] if until_inits else []
        return self.inside("par" if parallel else "time", "--timeout", str(timeout), *extra,
                           "--", *args,
                           timeout=timeout * (1 if parallel else max(1, len(cmds))), cpu=cpu)

    def find_init(self, name: str, timeout: float = 5.0) -> int | None:
        return self.inside("find-init", name, "--timeout", str(timeout), timeout=timeout)["pid"]

    def inits(self) -> dict[str, int]:
        """host name -> pid of every container init running in the sandbox."""
        return {i["hostname"]: i["pid"] for i in self.inside("inits")["inits"]
                if i["hostname"]}

    def procs(self) -> list[dict]:
        return self.inside("procs")["procs"]

    def wait_inits(self, names: Sequence[str], present: bool, timeout: float) -> list[str]:
        """Wait until every name has (present) or none has (not present) a running init;
        return the names that are still wrong at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            running = self.inits()
            wrong = [n for n in names if (n in running) != present]
            if not wrong or time.monotonic() > deadline:
                return wrong
            time.sleep(0.1)

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        self.sb.write_file(path, text, mode)

    def daemon_reload(self) -> None:
        self.run(["systemctl", "daemon-reload"], timeout=300)

    def unit_states(self, units: Sequence[str]) -> dict[str, tuple[str, str]]:
        """unit -> (ActiveState, Result)."""
        out: dict[str, tuple[str, str]] = {}
        for i in range(0, len(units), 200):
            chunk = list(units[i:i + 200])
            r = self.run(["systemctl", "show", "-p", "Id,ActiveState,Result", "--", *chunk],
                         check=False)
            for block in r.stdout.strip().split("\n\n"):
                kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
                if "Id" in kv:
                    out[kv["Id"]] = (kv.get("ActiveState", "?"), kv.get("Result", "?"))
        return out

    def journal(self, unit: str | None = None, lines: int = 80) -> str:
        return self.sb.journal(unit, lines)


def _answer(r: subprocess.CompletedProcess[str], args: Sequence[str]) -> dict:
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError(f"inside.py {args[0]} gave no answer (rc {r.returncode}): "
                         f"{r.stderr[-2000:]}") from None


def _short(e: BaseException, lines: int = 6) -> str:
    if isinstance(e, SandboxCommandError):
        text = (e.stderr or "") + (e.stdout or "")
        tail = [ln for ln in str(text).strip().splitlines() if ln.strip()][-lines:]
        return " | ".join(tail) or f"exit {e.returncode}"
    return " ".join(str(e).split())[:400]


def short_error(e: BaseException) -> str:
    return _short(e)


def shjoin(cmd: Sequence[str]) -> str:
    return shlex.join(list(cmd))
