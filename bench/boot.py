"""Debian (systemd as init) boot time: from the start command until `systemctl
is-system-running --wait`, run in the container's mount namespace, says running or degraded.

The same cached debootstrap tree (tests/infra/rootfs.py) is copied once per runner. Start
commands: lxcsd `systemctl start lxc@NAME` (returns when the guest's systemd sent READY=1);
LXC `lxc-start -d` (no lxc-wait: the figure runs to "system running" anyway); nspawn
`systemctl start bench-nspawn@NAME` (`-b`; returns once init started) and the same with
`--notify-ready=yes` (returns when the guest sent READY=1, as lxcsd); lxcsd with
`lxcsd.init.notify = 0` shows the readiness at exec it had before. The time also
shows when start returned, when the init appeared and when the container's systemd listened.
Each boot is followed by a checked stop (timed too, informational). Interleaved A B C.
"""

from __future__ import annotations

from bench.harness import Bench, BenchError, log, short_error, summary
from bench.options import Options
from bench.runners import LxcRunner, Runner, make

NAME = "boot"
RUNNERS = ("lxcsd", "lxcsd-exec", "lxc", "nspawn", "nspawn-ready")


def boot_cmds(r: Runner, name: str) -> list[list[str]]:
    cmds = r.start_cmds(name)
    return cmds[:1] if isinstance(r, LxcRunner) else cmds   # lxc-start -d, not lxc-wait


def one(b: Bench, r: Runner, name: str) -> dict:
    args: list[str] = []
    for c in boot_cmds(r, name):
        args += [*c, "---"]
    res = b.inside("boot", name, "--timeout", "90", "--", *args, timeout=120)
    stop = b.timed(r.stop_cmds(name), timeout=120)
    problems = r.stopped_problems(b, [name])
    if not res["ok"]:
        raise BenchError(f"boot: {res.get('state', '')} {res.get('error', '')[-300:]} "
                         f"{res.get('failed_units', '')}")
    if not stop["ok"] or problems:
        raise BenchError(f"stop: {stop.get('error', '')[-200:]} {'; '.join(problems)}")
    return {**res, "stop_s": stop["total"]}


def run(b: Bench, opts: Options) -> dict:
    runs = opts.runs or opts.pick(quick=2, full=7)
    runners = make(RUNNERS, b)
    live = [r for r in runners if not r.unavailable]
    names = {r.key: r.name("debian", 1) for r in live}
    for r in live:
        log(f"{NAME}: copying the Debian tree for {r.key}")
        r.create(b, names[r.key], "debian")
    b.daemon_reload()
    samples: dict[str, list[dict]] = {r.key: [] for r in runners}
    failures: dict[str, list[str]] = {r.key: [] for r in runners}
    try:
        for i in range(-1, runs):
            log(f"{NAME}: round {i + 1}/{runs}" + (" (warm-up)" if i < 0 else ""))
            for r in live:
                if len(failures[r.key]) >= 3:
                    r.unavailable = r.unavailable or f"3 boots failed: {failures[r.key][-1]}"
                    continue
                try:
                    res = one(b, r, names[r.key])
                except BenchError as e:
                    failures[r.key].append(short_error(e))
                    log(f"{NAME}: {r.key}: {e}")
                    r.force_stop(b, [names[r.key]])
                    continue
                if i >= 0:
                    samples[r.key].append(res)
    finally:
        for r in live:
            r.force_stop(b, [names[r.key]])
            r.destroy(b, [names[r.key]])
    out = {}
    for r in runners:
        s = samples[r.key]
        out[r.key] = {
            "label": r.label, "available": not r.unavailable and bool(s),
            "reason": r.unavailable, "failures": failures[r.key][:5],
            "running": summary([x["system_running"] for x in s]),
            "start_returned": summary([x["start_returned"] for x in s]),
            "pid1_listening": summary([x["pid1_listening"] for x in s]),
            "stop": summary([x["stop_s"] for x in s]),
            "states": sorted({x["state"] for x in s}),
            "degraded_units": sorted({x["failed_units"].strip() for x in s
                                      if x["failed_units"].strip()})[:3],
            "samples": [x["system_running"] for x in s],
        }
    return {"runs": runs, "order": [r.key for r in runners], "runners": out}
