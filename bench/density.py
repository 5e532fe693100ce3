"""Density: N busybox containers started at once on this 2-core machine, then stopped.

lxcsd and nspawn: one `systemctl start` naming all N units (systemd runs the jobs
concurrently; it returns when all are ready); LXC: N `lxc-start -d && lxc-wait -s RUNNING`
chains launched at once. Then: how many inits really run (waiting up to 20 s), one stop of
all, and whether every container stopped cleanly (init gone, unit inactive with result
success, lxc-ls not running). Rounds are interleaved A B C A B C.
"""

from __future__ import annotations

from bench.harness import Bench, log, summary
from bench.options import Options
from bench.runners import Runner, make

NAME = "density"
RUNNERS = ("lxcsd", "lxc", "nspawn")


def one_round(b: Bench, r: Runner, names: list[str]) -> dict:
    cmds, parallel = r.start_all(names)
    start = b.timed(cmds, timeout=600, parallel=parallel, cpu=True)
    missing = b.wait_inits(names, present=True, timeout=20)
    cmds, parallel = r.stop_all(names)
    stop = b.timed(cmds, timeout=600, parallel=parallel)
    problems = r.stopped_problems(b, names)
    if problems:
        r.force_stop(b, names)
    return {
        "start_s": start["total"], "start_ok": start["ok"],
        "start_cpu_s": (start.get("cpu_settled_ms") or 0) / 1000,
        "start_errors": (start.get("failed") or [])[:3] if parallel else start.get("error", ""),
        "running": len(names) - len(missing), "all_running": not missing and start["ok"],
        "stop_s": stop["total"], "stop_ok": stop["ok"], "stopped_clean": not problems,
        "stop_problems": problems[:5], "n_stop_problems": len(problems),
    }


def run(b: Bench, opts: Options) -> dict:
    n = opts.pick(quick=10, full=100)
    rounds = opts.runs or opts.pick(quick=1, full=3)
    runners = make(RUNNERS, b)
    live = [r for r in runners if not r.unavailable]
    names = {r.key: [r.name("busybox", i) for i in range(1, n + 1)] for r in live}
    log(f"{NAME}: creating {n} containers for each of {[r.key for r in live]}")
    for r in live:
        for name in names[r.key]:
            r.create(b, name, "busybox")
    b.daemon_reload()
    out: dict[str, list[dict]] = {r.key: [] for r in runners}
    try:
        for i in range(rounds):
            for r in live:
                log(f"{NAME}: round {i + 1}/{rounds}: {r.key}, {n} containers")
                out[r.key].append(one_round(b, r, names[r.key]))
                log(f"{NAME}: {r.key}: {out[r.key][-1]}")
    finally:
        for r in live:
            r.force_stop(b, names[r.key])
            r.destroy(b, names[r.key])
    res = {}
    for r in runners:
        rs = out[r.key]
        res[r.key] = {
            "label": r.label, "available": not r.unavailable and bool(rs),
            "reason": r.unavailable, "rounds": rs,
            "start": summary([x["start_s"] for x in rs]),
            "stop": summary([x["stop_s"] for x in rs]),
            "cpu": summary([x.get("start_cpu_s", 0) for x in rs]),
            "all_running": bool(rs) and all(x["all_running"] for x in rs),
            "all_stopped_clean": bool(rs) and all(x["stopped_clean"] for x in rs),
            "min_running": min((x["running"] for x in rs), default=0),
        }
    return {"n": n, "rounds": rounds, "order": [r.key for r in runners], "runners": res}
