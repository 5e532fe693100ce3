"""Host memory per running container: PSS of the supervising processes, for N containers.

PSS (proportional set size, /proc/PID/smaps_rollup) divides shared pages among the processes
sharing them, so summing it over processes never counts a page twice. For each runner and N:
start N busybox containers, check all run, wait 1 s, read every process's PSS, then stop.

  supervisor  LXC: the `[lxc monitor]` processes; nspawn: the systemd-nspawn processes;
              lxcsd: every lxcsd process (the one shared lxcsd-console service, any helper
              still alive) plus anything in a container's unit cgroup outside its payload
              leaf. Summed, divided by N.
  init        the container's own init (the same program for all), mean per container.
  payload     init and all its descendants, per container.
  all Δ       PSS of every process in the sandbox with N containers minus before them
              (includes systemd's own growth per unit), divided by N. Informational.
"""

from __future__ import annotations

import statistics
import time

from bench.harness import Bench, BenchError, log
from bench.options import Options
from bench.runners import Runner, make, require_running

NAME = "memory"
RUNNERS = ("lxcsd", "lxc", "nspawn")


def _sum_kb(procs: list[dict]) -> int:
    return sum(p["pss_kb"] or 0 for p in procs)


def _not_us(procs: list[dict]) -> list[dict]:
    return [p for p in procs if "bench/inside.py" not in p["cmdline"]]


def measure(b: Bench, r: Runner, names: list[str]) -> dict:
    before = _sum_kb(_not_us(b.procs()))
    cmds, parallel = r.start_all(names)
    res = b.timed(cmds, timeout=300, parallel=parallel)
    if not res["ok"]:
        raise BenchError(f"{r.key}: starting {len(names)} failed: {res.get('failed')}"
                         f"{res.get('error', '')[-300:]}")
    try:
        require_running(b, r, names, timeout=20)
        time.sleep(1.0)
        inits = b.inits()
        procs = _not_us(b.procs())
    finally:
        cmds, parallel = r.stop_all(names)
        b.timed(cmds, timeout=300, parallel=parallel)
        problems = r.stopped_problems(b, names)
        if problems:
            r.force_stop(b, names)
    by_pid = {p["pid"]: p for p in procs}
    children: dict[int, list[int]] = {}
    for p in procs:
        children.setdefault(p["ppid"], []).append(p["pid"])
    init_pids = [inits[n] for n in names if n in inits and inits[n] in by_pid]

    def tree(pid: int) -> list[dict]:
        out, todo = [], [pid]
        while todo:
            q = todo.pop()
            if q in by_pid:
                out.append(by_pid[q])
            todo += children.get(q, [])
        return out

    sup = r.overhead(procs, names)
    n = len(names)
    return {
        "n": n,
        "supervisor_kb_per_container": _sum_kb(sup) / n,
        "supervisor_processes": len(sup),
        "supervisor_names": sorted({p["comm"] for p in sup}),
        "init_kb_mean": statistics.fmean(by_pid[p]["pss_kb"] or 0 for p in init_pids)
        if init_pids else None,
        "payload_kb_per_container": sum(_sum_kb(tree(p)) for p in init_pids) / n,
        "all_delta_kb_per_container": (_sum_kb(procs) - before) / n,
        "pid1_kb": by_pid.get(1, {}).get("pss_kb"),
        "stop_problems": problems[:5],
    }


def run(b: Bench, opts: Options) -> dict:
    counts = opts.pick_list(quick=[1, 5], full=[1, 20, 50])
    runners = make(RUNNERS, b)
    live = [r for r in runners if not r.unavailable]
    names = {r.key: [r.name("busybox", i) for i in range(1, max(counts) + 1)] for r in live}
    results: dict[str, dict] = {r.key: {"label": r.label, "available": not r.unavailable,
                                        "reason": r.unavailable, "by_n": {}} for r in runners}
    log(f"{NAME}: creating {max(counts)} containers for each of {[r.key for r in live]}")
    for r in live:
        for n in names[r.key]:
            r.create(b, n, "busybox")
    b.daemon_reload()
    try:
        for count in counts:
            for r in live:
                log(f"{NAME}: {r.key} with {count} containers")
                try:
                    results[r.key]["by_n"][str(count)] = measure(b, r, names[r.key][:count])
                except BenchError as e:
                    log(f"{NAME}: {e}")
                    results[r.key]["by_n"][str(count)] = {"error": str(e)[:500]}
                    r.force_stop(b, names[r.key])
    finally:
        for r in live:
            r.force_stop(b, names[r.key])
            r.destroy(b, names[r.key])
    for r in runners:
        results[r.key]["available"] = not r.unavailable and any(
            "error" not in v for v in results[r.key]["by_n"].values())
    return {"counts": counts, "order": [r.key for r in runners], "runners": results}
