"""Generator wall time: lxcsd-generator against Podman's quadlet, 10/100/1000 containers.

Both run the way systemd runs generators, inside the sandbox: three output directories on a
tmpfs (emptied before each run by hyperfine's --prepare), input from a directory of N
containers: lxcsd reads N LXC configs (`LXCSD_LXCPATH=DIR`, DIR/NAME/config, the busybox
config plus lxc.start.auto = 1, a root with /sbin/init: each start plan compiles), quadlet
reads N `.container` files of the same meaning (`QUADLET_UNIT_DIRS=DIR`: image, name, host
name, no network, init, WantedBy). hyperfine (`-N`, no shell) times them; rounds alternate
the order (A B C, C B A, ...) and their samples are pooled. Each generator's output is
checked once per N: one unit (or drop-in) per container.

lxcsd is timed twice: as at a daemon-reload with unchanged configs (its compiled plans and
facts cache in /run from the run before: lxcsd.generator.facts), and cold, as at boot (the
cache removed before each run: every config read and every plan compiled and written).
"""

from __future__ import annotations

import json
import os

from bench import quadlet
from bench.harness import Bench, BenchError, log, raw_path, short_error, summary
from bench.options import Options
from bench.runners import LXCSD_GENERATOR, LxcsdRunner, busybox_config

NAME = "generator"
BASE = "/run/bench-gen"
OUT = f"{BASE}/out"
PLANS = f"{BASE}/plans"  # lxcsd's compiled plans and facts cache (/run/lxcsd-plans)

QUADLET_CONTAINER = """\
# lxcsd bench: the quadlet equivalent of LXC container {name}
[Unit]
Description=bench container {name}

[Container]
Image=docker.io/library/busybox:latest
ContainerName={name}
HostName={name}
Network=none
Exec=/sbin/init

[Install]
WantedBy=multi-user.target
"""


def make_tree(b: Bench, n: int) -> tuple[str, str]:
    """N configs for each; returns (lxcpath, quadlet dir) inside."""
    lxc, qd = f"{BASE}/{n}/lxc", f"{BASE}/{n}/quadlet"
    b.run(["mkdir", "-p", lxc, qd])
    host_lxc, host_qd = b.sb.path(lxc), b.sb.path(qd)
    for i in range(1, n + 1):
        name = f"gen-{i}"
        d = host_lxc / name
        (d / "rootfs/sbin").mkdir(parents=True)
        (d / "rootfs/sbin/init").write_text("#!/bin/sh\n")  # busybox's place, not systemd
        (d / "rootfs/sbin/init").chmod(0o755)
        (d / "config").write_text(busybox_config(name, extra="lxc.start.auto = 1\n")
                                  .replace("/var/lib/lxc/", f"{lxc}/"))
        (host_qd / f"{name}.container").write_text(QUADLET_CONTAINER.format(name=name))
    return lxc, qd


def check_outputs(b: Bench, cmd: list[str], env: dict[str, str], n: int, what: str) -> str:
    """Run once into a fresh OUT; return a problem or ""."""
    b.run(["/bin/sh", f"{BASE}/prep.sh"])
    r = b.run(cmd, check=False, env=env, timeout=300)
    if r.returncode != 0:
        return f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}"
    found = set()
    for _dirpath, dirs, files in os.walk(b.sb.path(OUT)):
        for entry in dirs + files:
            if what == "quadlet" and entry.endswith(".service"):
                found.add(entry.removesuffix(".service"))
            if what.startswith("lxcsd") and entry.startswith("lxc@gen-"):
                found.add(entry.split("@", 1)[1].split(".service", 1)[0])
    missing = n - len({f for f in found if f.startswith("gen-")})
    return f"output for {missing} of {n} containers missing" if missing else ""


COLD = "lxcsd-cold"  # the same command, its cache removed before each run


def hyperfine(b: Bench, cmds: dict[str, list[str]], env: dict[str, str], runs: int,
              rounds: int, tag: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in cmds}
    keys = list(cmds)
    for rnd in range(rounds):
        order = keys if rnd % 2 == 0 else keys[::-1]
        export = f"{BASE}/hf-{tag}-{rnd}.json"
        argv = ["hyperfine", "-N", "--style", "none", "--warmup", "3", "--runs", str(runs),
                "--export-json", export]
        for k in order:  # one --prepare per command, in the commands' order
            argv += ["--prepare", f"/bin/sh {BASE}/prep{'-cold' if k == COLD else ''}.sh"]
        argv += [" ".join(cmds[k]) for k in order]
        b.run(argv, env=env, timeout=1200)
        data = json.loads(b.sb.path(export).read_text())
        raw_path(f"hyperfine-{tag}-{rnd}.json").write_text(json.dumps(data))
        for k, res in zip(order, data["results"], strict=True):
            times[k] += res["times"]
    return times


def run(b: Bench, opts: Options) -> dict:
    counts = opts.pick_list(quick=[10, 100], full=[10, 100, 1000])
    runs = opts.runs or opts.pick(quick=10, full=20)
    rounds = opts.pick(quick=2, full=4)
    q = quadlet.fetch()  # run.py fetches it before the sandbox boots, which binds the cache
    if not b.sb.path(str(q)).exists():
        raise BenchError(f"{q} is not visible in the sandbox")
    lx = LxcsdRunner()
    lx.unavailable = b.lxcsd_install_error
    gen_reason = lx.unavailable or LxcsdRunner._probe_generator(b)
    if gen_reason:
        log(f"{NAME}: lxcsd generator not available: {gen_reason}")
    prep = f"rm -rf {OUT}\nmkdir -p {OUT}/normal {OUT}/early {OUT}/late\n"
    b.write(f"{BASE}/prep.sh", prep, 0o755)
    b.write(f"{BASE}/prep-cold.sh", prep + f"rm -rf {PLANS}\n", 0o755)
    cmds = {"quadlet": [str(q), f"{OUT}/normal", f"{OUT}/early", f"{OUT}/late"]}
    if not gen_reason:
        lxcsd = [LXCSD_GENERATOR, f"{OUT}/normal", f"{OUT}/early", f"{OUT}/late"]
        cmds = {"lxcsd": lxcsd, COLD: lxcsd, **cmds}
    results: dict[str, dict] = {}
    for n in counts:
        log(f"{NAME}: {n} containers")
        lxcpath, qdir = make_tree(b, n)
        env = {"LXCSD_LXCPATH": lxcpath, "QUADLET_UNIT_DIRS": qdir, "LXCSD_PLAN_DIR": PLANS}
        checks = {k: check_outputs(b, c, env, n, k) for k, c in cmds.items()}
        ok = {k: c for k, c in cmds.items() if not checks[k]}
        for k, problem in checks.items():
            if problem:
                log(f"{NAME}: {k} with {n}: {problem}")
        try:
            times = hyperfine(b, ok, env, runs, rounds, str(n)) if ok else {}
        except Exception as e:  # noqa: BLE001
            times, checks = {}, {k: short_error(e) for k in cmds}
        results[str(n)] = {k: {"problem": checks.get(k) or None,
                               "time": summary(times.get(k, [])),
                               "samples": times.get(k, [])} for k in cmds}
        b.run(["rm", "-rf", f"{BASE}/{n}", PLANS], check=False)
    return {
        "counts": counts, "runs_per_round": runs, "rounds": rounds,
        "quadlet": {"path": str(q), "version": quadlet.version(q),
                    "source": (q.parent / "source").read_text().strip()
                    if (q.parent / "source").exists() else ""},
        "lxcsd": {"available": not gen_reason, "reason": gen_reason},
        "by_n": results,
    }


def prepare(opts: Options) -> None:
    """Before the sandbox boots: it binds the cache directory only if it exists then."""
    quadlet.fetch()
