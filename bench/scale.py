"""Scale: 1000 busybox containers with lxc.start.auto = 1 come up as at boot, all run, all
stop; time, CPU and host memory beside LXC and systemd-nspawn.

    lxcsd   `systemctl daemon-reload` (the generator reads 1000 configs, compiles 1000 start
            plans), then `systemctl start lxc-containers.target` (what boot does: the target
            wants every autostart container and is ordered after them, so it returns when
            all are ready); stop: `systemctl stop` naming every lxc@NAME.service (what a
            shutdown does: lxc-containers.target deliberately does not propagate stops)
    LXC     `lxc-autostart` (what Debian's lxc.service runs at boot: one container after
            another, each until it runs); stop: `lxc-autostart -s` (lxc.service's stop)
    nspawn  one `systemctl start` naming 1000 bench-nspawn@NAME.service; stop the same

The containers run the bench's *prompt* busybox tree (init exits as soon as it gets the halt
signal: busybox's own halt sleeps 2 s, which would make LXC's one-by-one stop last 2000 s),
one tree per manager shared by its 1000 containers (read-only in use; a tree per container
would only add 1000 copies to the sandbox's tmpfs, the same for every manager).

Figures: wall time of each step, and of the start until every init runs (lxc-autostart
returns once it launched the last container); CPU time of the start until then (everything
the benchmark runs, bench.harness.cpu_stat); running inits counted (20 s grace); memory
with all running: PSS of every process in the sandbox minus before (per container), the
managers' own processes
(supervisor, as bench/memory.py), and the host's MemAvailable drop per container (kernel
memory for namespaces, cgroups and page tables included; other work on this shared machine
moves it, so it is informational). Managers run one after another, once each: 1000
containers are minutes of work, not a sample distribution.
"""

from __future__ import annotations

import time

from bench.harness import REPO_ROOT, Bench, BenchError, log
from bench.memory import _not_us, _sum_kb
from bench.options import Options
from bench.runners import LXCPATH, MACHINES, PROMPT_INIT, Runner, busybox_config, make

NAME = "scale"
RUNNERS = ("lxcsd", "lxc", "nspawn")
SHARED = "/var/lib/bench-scale"


def mem_available_kb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def make_tree(b: Bench, key: str) -> str:
    """The prompt busybox tree shared by one manager's containers (os-release for nspawn)."""
    root = f"{SHARED}/{key}"
    b.run(["/usr/bin/python3", "-c",
           "import sys; sys.path.insert(0, sys.argv[1]);"
           "from tests.infra import rootfs; rootfs.busybox_rootfs(sys.argv[2], 'scale')",
           str(REPO_ROOT), root])
    host = b.sb.path(root)
    (host / "sbin/init").unlink()
    (host / "sbin/init").write_text(PROMPT_INIT)
    (host / "sbin/init").chmod(0o755)
    (host / "etc/os-release").write_text("NAME=BusyBox\nID=busybox\n")
    return root


def lay_out(b: Bench, r: Runner, names: list[str], tree: str) -> None:
    """Configs for names, all on tree."""
    if r.key == "nspawn":
        r.setup(b)
        for name in names:
            b.sb.path(MACHINES).mkdir(parents=True, exist_ok=True)
            (b.sb.path(MACHINES) / name).symlink_to(tree)
            b.write(f"/etc/bench-nspawn/{name}.env",  # a shared tree: nspawn's lock is
                    "KILL_SIGNAL=SIGUSR1\nNSPAWN_REGISTER=no\nNOTIFY_READY=no\n"  # shared
                    "NSPAWN_EXTRA=--read-only\n")  # only with --read-only
        return
    for name in names:
        text = busybox_config(name, extra="lxc.start.auto = 1\n")
        text = text.replace(f"dir:{LXCPATH}/{name}/rootfs", f"dir:{tree}")
        b.write(f"{LXCPATH}/{name}/config", text)


def commands(r: Runner, names: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    if r.key == "lxcsd":
        return ([["systemctl", "start", "lxc-containers.target"]],
                [["systemctl", "stop", "--", *(f"lxc@{n}.service" for n in names)]])
    if r.key == "lxc":
        return [["lxc-autostart"]], [["lxc-autostart", "-s", "-t", "30"]]
    units = [f"bench-nspawn@{n}.service" for n in names]
    return [["systemctl", "start", "--", *units]], [["systemctl", "stop", "--", *units]]


def measure(b: Bench, r: Runner, names: list[str]) -> dict:
    n = len(names)
    before_pss = _sum_kb(_not_us(b.procs()))
    before_mem = mem_available_kb()
    out: dict = {"available": True}
    if r.key == "lxcsd":
        t0 = time.perf_counter()
        b.daemon_reload()
        out["daemon_reload_s"] = time.perf_counter() - t0
    start, stop = commands(r, names)
    prefix = names[0].rsplit("-", 1)[0] + "-"
    res = b.timed(start, timeout=3600, cpu=True, until_inits=(prefix, n))
    out.update(start_s=res["total"], start_ok=res["ok"], start_error=res.get("error", "")[-300:],
               all_running_s=res.get("all_running", res["total"]),
               start_cpu_s=(res.get("cpu_settled_ms") or 0) / 1000)
    missing = b.wait_inits(names, present=True, timeout=20)
    out["running"] = n - len(missing)
    time.sleep(1.0)
    procs = _not_us(b.procs())
    out["pss_delta_kb_per_container"] = (_sum_kb(procs) - before_pss) / n
    out["supervisor_kb_per_container"] = _sum_kb(r.overhead(procs, names)) / n
    out["mem_available_drop_kb_per_container"] = (before_mem - mem_available_kb()) / n
    res = b.timed(stop, timeout=3600)
    out.update(stop_s=res["total"], stop_ok=res["ok"])
    problems = r.stopped_problems(b, names)
    out.update(stopped_clean=not problems and res["ok"], stop_problems=problems[:5],
               n_stop_problems=len(problems))
    if problems:
        r.force_stop(b, names)
    return out


def run(b: Bench, opts: Options) -> dict:
    n = opts.pick(quick=50, full=1000)
    runners = make(RUNNERS, b)
    results: dict[str, dict] = {}
    for r in runners:
        if r.unavailable:
            results[r.key] = {"label": r.label, "available": False, "reason": r.unavailable}
            continue
        names = [r.name("prompt", i) for i in range(1, n + 1)]
        log(f"{NAME}: {r.key}: laying out {n} containers")
        tree = make_tree(b, r.key)
        lay_out(b, r, names, tree)
        try:
            log(f"{NAME}: {r.key}: {n} containers")
            results[r.key] = {"label": r.label, **measure(b, r, names)}
            log(f"{NAME}: {r.key}: {results[r.key]}")
        except (BenchError, OSError) as e:
            results[r.key] = {"label": r.label, "available": False, "reason": str(e)[:300]}
        finally:
            r.force_stop(b, names)
            _remove(b, r, names)
    return {"n": n, "order": list(RUNNERS), "runners": results}


def _remove(b: Bench, r: Runner, names: list[str]) -> None:
    if r.key == "nspawn":
        b.run(["rm", "-rf", *(f"{MACHINES}/{n}" for n in names)], check=False, timeout=600)
        b.run(["rm", "-rf", "/etc/bench-nspawn"], check=False)
        return
    for i in range(0, len(names), 200):
        b.run(["rm", "-rf", *(f"{LXCPATH}/{n}" for n in names[i:i + 200])], check=False,
              timeout=600)
    b.daemon_reload()
