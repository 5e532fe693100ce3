"""Start and stop latency of one busybox container, interleaved A B C A B C.

Busybox init's halt sequence sleeps about 2 s (SIGTERM to all, sleep, SIGKILL, sleep), the same
for every manager; so each round also stops a "prompt" container (the same tree, whose init is
a shell exiting at once on the halt signal): its stop time is the manager's own overhead.

Each cycle: timed start; untimed check that a container init (PID 1 of a new pid namespace,
host name = the container's name) runs; timed stop; untimed check that the init is gone and
the unit (if any) ended inactive with result success. A cycle failing a check is not counted
(it is listed); a runner failing 3 cycles in a row is dropped for the rest of the run.
"""

from __future__ import annotations

from bench.harness import Bench, BenchError, log, short_error, summary
from bench.options import Options
from bench.runners import Runner, make, require_running

NAME = "startstop"
RUNNERS = ("lxcsd", "lxc", "lxc-unit", "lxc-unit-wait", "nspawn", "nspawn-machined",
           "floor-simple", "floor-notify")
MAX_CONSECUTIVE_FAILURES = 3


def cycle(b: Bench, r: Runner, name: str) -> tuple[float, float, float | None]:
    """(start, stop) seconds and the CPU time of the start (ms, everything the benchmark
    runs: the manager, systemd, journald, the container's first steps; until 0.2 s after
    the start returned) of one checked cycle; BenchError if a check fails."""
    res = b.timed(r.start_cmds(name), timeout=60, cpu=True)
    if not res["ok"]:
        raise BenchError(f"start failed: {res.get('error', '')[-300:]}")
    start = res["total"]
    cpu = res.get("cpu_settled_ms")
    if r.container:
        require_running(b, r, [name])
    res = b.timed(r.stop_cmds(name), timeout=120)
    if not res["ok"]:
        raise BenchError(f"stop failed: {res.get('error', '')[-300:]}")
    problems = r.stopped_problems(b, [name])
    if problems:
        raise BenchError("after stop: " + "; ".join(problems))
    return start, res["total"], cpu


def run(b: Bench, opts: Options) -> dict:
    runners = make(RUNNERS, b)
    live = [r for r in runners if not r.unavailable]
    names = {r.key: r.name("busybox", 1) for r in live}
    prompt = {r.key: r.name("prompt", 1) for r in live}
    for r in live:
        r.create(b, names[r.key], "busybox")
        r.create(b, prompt[r.key], "prompt")
    b.daemon_reload()
    samples: dict[str, dict[str, list[float]]] = {
        r.key: {"start": [], "stop": [], "stop_prompt": [], "cpu": []} for r in runners}
    failures: dict[str, list[str]] = {r.key: [] for r in runners}
    streak = {r.key: 0 for r in runners}
    warmup, runs = opts.pick(quick=1, full=2), opts.runs or opts.pick(quick=3, full=15)
    try:
        for i in range(-warmup, runs):
            log(f"{NAME}: round {i + 1}/{runs}" + (" (warm-up)" if i < 0 else ""))
            for r in live:
                if r.unavailable:
                    continue
                try:
                    start, stop, cpu = cycle(b, r, names[r.key])
                    _, stop_prompt, _ = cycle(b, r, prompt[r.key])
                except BenchError as e:
                    failures[r.key].append(short_error(e))
                    log(f"{NAME}: {r.key}: {e}")
                    r.force_stop(b, [names[r.key], prompt[r.key]])
                    streak[r.key] += 1
                    if streak[r.key] >= MAX_CONSECUTIVE_FAILURES:
                        r.unavailable = f"{streak[r.key]} cycles in a row failed: {e}"
                    continue
                streak[r.key] = 0
                if i >= 0:
                    samples[r.key]["start"].append(start)
                    samples[r.key]["stop"].append(stop)
                    samples[r.key]["stop_prompt"].append(stop_prompt)
                    if cpu is not None:
                        samples[r.key]["cpu"].append(cpu / 1000)  # summary() takes seconds
    finally:
        for r in live:
            r.force_stop(b, [names[r.key], prompt[r.key]])
            r.destroy(b, [names[r.key], prompt[r.key]])
    return {
        "runs": runs, "warmup": warmup, "order": [r.key for r in runners],
        "runners": {r.key: {
            "label": r.label, "start_means": r.start_means, "stop_means": r.stop_means,
            "available": not r.unavailable and bool(samples[r.key]["start"]),
            "reason": r.unavailable, "start": summary(samples[r.key]["start"]),
            "stop": summary(samples[r.key]["stop"]),
            "stop_prompt": summary(samples[r.key]["stop_prompt"]),
            "cpu": summary(samples[r.key]["cpu"]), "samples": samples[r.key],
            "failures": failures[r.key][:10], "n_failures": len(failures[r.key]),
        } for r in runners},
    }
