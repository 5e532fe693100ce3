#!/usr/bin/env python3
"""How much one veth network adds to a container's start: ``python -m bench.netstart``.

As root. Everything runs in a private network + mount namespace this script creates (a
bridge ``br0`` 10.0.3.1/24 in it; the host's network is never touched). Two busybox
containers, the same but for their network: ``lo`` (no lxc.net: loopback only) and ``veth``
(one veth on br0 with a static address and gateway). Each run starts one with the helper as
the unit would — Debian's ``/usr/bin/python3 -I -S`` with this source tree first on sys.path
and the installed venv's site-packages (pyroute2) after it, as packaging/install.sh's launcher
does — and times fork → ``READY=1`` on a NOTIFY_SOCKET this script listens on; init is then
SIGKILLed and ``lxcsd-helper cleanup`` runs (timed too). Runs alternate lo, veth, lo, ...
after warm-up rounds. ``LXCSD_START_TIMING=1`` gives the helper's own breakdown; the
``lxc.net`` step's share is reported. Also, in the same interpreter: ``import pyroute2`` (the
whole package) and what lxcsd.net.nl imports instead (its rtnetlink message modules).

Prints a table and writes ``bench/results/data/netstart.json``. Not part of bench/run.py's
set (it needs no sandbox); figures are observations of one run, never assertions.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TREE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TREE))

from lxcsd import linux  # noqa: E402
from lxcsd.runtime import cgroup  # noqa: E402
from tests.infra import rootfs  # noqa: E402

PYTHON = "/usr/bin/python3"
VENV = "/usr/local/lib/lxcsd/venv"
BRIDGE = "br0"
NETWORK = """lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx
lxc.net.0.ipv4.address = 10.0.3.10/24
lxc.net.0.ipv4.gateway = 10.0.3.1
"""


def purelib() -> str:
    out = subprocess.run([f"{VENV}/bin/python", "-c",
                          "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def launcher(directory: Path) -> Path:
    """lxcsd-helper as install.sh writes it, but with this source tree first."""
    path = directory / "lxcsd-helper"
    path.write_text(f"#!{PYTHON} -IS\nimport sys\n"
                    f"sys.path[:0] = [{str(TREE)!r}, {purelib()!r}]\n"
                    "sys.path.append('/usr/lib/python3/dist-packages')\n"
                    "from lxcsd.runtime.main import main\nsys.exit(main())\n")
    path.chmod(0o755)
    return path


def enter_private_network() -> None:
    linux.unshare(linux.CLONE_NEWNET | linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.interface_up("lo")
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("add", ifname=BRIDGE, kind="bridge")
        index = ipr.link_lookup(ifname=BRIDGE)[0]
        ipr.addr("add", index=index, address="10.0.3.1", prefixlen=24)
        ipr.link("set", index=index, state="up")


class Runner:
    def __init__(self, base: Path, helper: Path, cgroup_dir: str) -> None:
        self.base = base
        self.helper = helper
        self.cgroup_dir = cgroup_dir
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LXCSD_LXCPATH": str(base),
                    "LXCSD_RUN_DIR": str(base / "run"), "LXCSD_START_TIMING": "1"}

    def container(self, name: str, extra: str) -> None:
        root = rootfs.busybox_rootfs(self.base / name / "rootfs", hostname=name)
        (self.base / name / "config").write_text(
            f"lxc.rootfs.path = dir:{root}\nlxc.uts.name = {name}\n"
            "lxc.mount.auto = proc:mixed sys:mixed\n" + extra)

    def start(self, name: str) -> tuple[float, float | None, int]:
        """(ms fork → READY=1, ms of the lxc.net step or None, init pid)."""
        sock_path = str(self.base / f".notify-{uuid.uuid4().hex[:6]}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.bind(sock_path)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        env = dict(self.env, NOTIFY_SOCKET=sock_path)
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            try:
                with open(os.path.join(self.cgroup_dir, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
                os.dup2(err_w, 2)
                os.execve(str(self.helper), [str(self.helper), "start", name], env)
            finally:
                os._exit(127)
        os.close(err_w)
        ready_ms, init_pid = None, 0
        deadline = time.monotonic() + 30
        while ready_ms is None:
            if not select.select([sock], [], [], 0.05)[0]:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done or time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: no READY=1: {os.read(err_r, 65536).decode()}")
                continue
            data, _, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(64))
            fields = dict(line.partition("=")[::2] for line in data.decode().splitlines())
            if "MAINPID" in fields:
                init_pid = int(fields["MAINPID"])
            if fields.get("READY") == "1":
                ready_ms = (time.perf_counter() - t0) * 1000
        _, status = os.waitpid(pid, 0)
        stderr = b""
        while chunk := os.read(err_r, 65536):
            stderr += chunk
        os.close(err_r)
        sock.close()
        os.unlink(sock_path)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{name}: helper failed: {stderr.decode()}")
        return ready_ms, _net_step(stderr.decode()), init_pid

    def stop(self, name: str, init_pid: int) -> float:
        os.kill(init_pid, signal.SIGKILL)
        os.waitpid(init_pid, 0)
        t0 = time.perf_counter()
        subprocess.run([str(self.helper), "cleanup", name], env=self.env, check=True,
                       capture_output=True)
        return (time.perf_counter() - t0) * 1000


def _net_step(stderr: str) -> float | None:
    for line in stderr.splitlines():
        if "timing ms:" in line:
            for part in line.split("timing ms:", 1)[1].split(","):
                words = part.split()
                if words and words[0] == "network":
                    return float(words[-1])
    return None


def pyroute2_import_ms(runs: int = 5) -> float:
    code = (f"import sys, time; sys.path[:0] = [{purelib()!r}]; t = time.perf_counter(); "
            "import pyroute2; print((time.perf_counter() - t) * 1000)")
    samples = [float(subprocess.run([PYTHON, "-I", "-S", "-c", code], capture_output=True,
                                    text=True, check=True).stdout) for _ in range(runs)]
    return statistics.median(samples)


def messages_import_ms(runs: int = 5) -> float:
    """What lxcsd.net.nl really imports: pyroute2's rtnetlink message modules only."""
    code = (f"import sys, time; sys.path[:0] = [{str(TREE)!r}, {purelib()!r}]; "
            "t = time.perf_counter(); from lxcsd.net import nl; nl.import_messages(); "
            "print((time.perf_counter() - t) * 1000)")
    samples = [float(subprocess.run([PYTHON, "-I", "-S", "-c", code], capture_output=True,
                                    text=True, check=True).stdout) for _ in range(runs)]
    return statistics.median(samples)


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(samples), 2), "min": round(min(samples), 2),
            "max": round(max(samples), 2), "n": len(samples)}


def measure(runs: int, warmup: int) -> dict[str, object]:
    if os.geteuid() != 0:
        raise SystemExit("netstart: run as root")
    base = Path(tempfile.mkdtemp(prefix="lxcsd-netstart-", dir="/var/tmp"))
    base.chmod(0o755)
    cgroup_dir = os.path.join(cgroup.own_cgroup_dir(), f"lxcsd-netstart-{uuid.uuid4().hex[:8]}")
    os.mkdir(cgroup_dir)
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    try:
        enter_private_network()
        runner = Runner(base, launcher(base), cgroup_dir)
        runner.container("lo", "")
        runner.container("veth", NETWORK)
        got: dict[str, dict[str, list[float]]] = {
            kind: {"ready": [], "net": [], "cleanup": []} for kind in ("lo", "veth")}
        for round_ in range(warmup + runs):
            for kind in ("lo", "veth"):
                ready, net_ms, init_pid = runner.start(kind)
                cleanup_ms = runner.stop(kind, init_pid)
                if round_ >= warmup:
                    got[kind]["ready"].append(ready)
                    got[kind]["cleanup"].append(cleanup_ms)
                    if net_ms is not None:
                        got[kind]["net"].append(net_ms)
        result: dict[str, object] = {
            kind: {what: summary(values) for what, values in parts.items() if values}
            for kind, parts in got.items()}
        result["added_ms"] = round(statistics.median(got["veth"]["ready"])
                                   - statistics.median(got["lo"]["ready"]), 2)
        result["pyroute2_import_ms"] = round(pyroute2_import_ms(), 2)
        result["lxcsd_netlink_import_ms"] = round(messages_import_ms(), 2)
        result["runs"] = runs
        return result
    finally:
        cgroup.kill_all(cgroup_dir)
        for _ in range(100):
            try:
                cgroup.remove(cgroup_dir)
                break
            except OSError:
                time.sleep(0.05)
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    result = measure(args.runs, args.warmup)
    out = TREE / "bench" / "results" / "data" / "netstart.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"start → READY=1, ms (median, min–max over {args.runs} interleaved runs):")
    for kind in ("lo", "veth"):
        part = result[kind]
        assert isinstance(part, dict)
        ready = part["ready"]
        line = f"  {kind:5} {ready['median']:7.1f} ({ready['min']:.1f}–{ready['max']:.1f})"
        if "net" in part:
            line += f"   lxc.net step {part['net']['median']:.1f}"
        line += f"   cleanup {part['cleanup']['median']:.1f}"
        print(line)
    print(f"one veth adds {result['added_ms']} ms; import pyroute2 (whole package) "
          f"{result['pyroute2_import_ms']} ms, what lxcsd.net.nl imports "
          f"{result['lxcsd_netlink_import_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
