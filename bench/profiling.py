"""Where lxcsd's time goes: profiles kept beside the results (bench/results/profile/).

Inside the sandbox, with lxcsd installed:
  generator-importtime.txt    `python3 -I -S -X importtime lxcsd-generator` on 100 configs:
                              the slowest imports (cumulative), and any module docs/design.md
                              keeps off hot paths
  generator-pyinstrument.txt  pyinstrument's call tree of the generator on 1000 configs
  helper-importtime.txt       the same for `lxcsd-helper start` (a drop-in runs it under
                              -X importtime; its stderr goes to the journal)
  helper-pyinstrument.txt     pyinstrument's call tree of `lxcsd-helper start` (a drop-in)
  helper-timing.txt           the helper's own perf_counter marks (LXCSD_START_TIMING=1 through
                              a drop-in) over several starts, median per step, beside the
                              `systemctl start` time of the same starts: what is left over is
                              the interpreter, the imports and systemd's round trip
  stop-importtime.txt,        -X importtime of `lxcsd-helper stop` (ExecStop=) and `cleanup`
  cleanup-importtime.txt      (ExecStopPost=): each stop runs two Python processes
"""

from __future__ import annotations

import json
import os
import statistics
import time

from bench.generator import BASE, OUT, make_tree
from bench.harness import RESULTS, Bench, log, short_error
from bench.options import Options
from bench.runners import LXCSD_GENERATOR, LXCSD_HELPER, LxcsdRunner

NAME = "profile"
PROFILE_DIR = RESULTS / "profile"
FORBIDDEN = ("dataclasses", "typing", "enum", "re", "pathlib", "argparse", "subprocess",
             "json", "asyncio", "logging", "shlex", "inspect")
PYINSTRUMENT_PYTHONS = ("/var/tmp/lxcsd-dev/bin/python", "/usr/local/lib/lxcsd/venv/bin/python")
DROPIN = "zzz-lxcsd-bench-profile.conf"


def importtime(stderr: str, top: int = 20) -> dict:
    """Parse -X importtime output: total, slowest cumulative, forbidden modules seen."""
    rows = []
    for line in stderr.splitlines():
        if "import time:" not in line or "self [us]" in line:
            continue
        parts = line.split("import time:", 1)[1].split("|")
        if len(parts) == 3:
            try:
                rows.append((int(parts[0]), int(parts[1]), parts[2].rstrip()))
            except ValueError:
                continue
    top_level = [r for r in rows if not r[2].startswith("  ")]
    total = sum(r[1] for r in top_level)
    slowest = sorted(rows, key=lambda r: -r[1])[:top]
    seen = sorted({r[2].strip() for r in rows if r[2].strip() in FORBIDDEN})
    return {"total_ms": total / 1000, "modules": len(rows), "forbidden_seen": seen,
            "slowest": [{"module": r[2].strip(), "self_ms": r[0] / 1000,
                         "cumulative_ms": r[1] / 1000} for r in slowest]}


def _format(title: str, it: dict) -> str:
    lines = [title, f"total import time {it['total_ms']:.1f} ms over {it['modules']} modules",
             "hot-path modules docs/design.md forbids, seen: "
             + (", ".join(it["forbidden_seen"]) or "none"), "",
             f"{'cumulative ms':>14} {'self ms':>8}  module"]
    lines += [f"{r['cumulative_ms']:14.2f} {r['self_ms']:8.2f}  {r['module']}"
              for r in it["slowest"]]
    return "\n".join(lines) + "\n"


def _pyinstrument(b: Bench) -> str | None:
    for py in PYINSTRUMENT_PYTHONS:
        if b.run([py, "-c", "import pyinstrument"], check=False).returncode == 0:
            return py
    return None


def profile_generator(b: Bench, out: dict, py: str | None) -> None:
    lxcpath, _ = make_tree(b, 100)
    b.write(f"{BASE}/prep.sh", f"rm -rf {OUT}\nmkdir -p {OUT}/normal {OUT}/early {OUT}/late\n",
            0o755)
    b.run(["/bin/sh", f"{BASE}/prep.sh"])
    r = b.run(["/usr/bin/python3", "-I", "-S", "-X", "importtime", LXCSD_GENERATOR,
               f"{OUT}/normal", f"{OUT}/early", f"{OUT}/late"], check=False,
              env={"LXCSD_LXCPATH": lxcpath})
    it = importtime(r.stderr)
    out["generator_importtime"] = {k: v for k, v in it.items() if k != "slowest"} | {
        "slowest": it["slowest"][:8], "exit": r.returncode}
    (PROFILE_DIR / "generator-importtime.txt").write_text(
        _format("lxcsd-generator, 100 configs, python3 -I -S -X importtime", it))
    if py:
        lxcpath, _ = make_tree(b, 1000)
        b.run(["/bin/sh", f"{BASE}/prep.sh"])
        r = b.run([py, "-m", "pyinstrument", "-r", "text", "--show-all", "-o",
                   f"{BASE}/gen.txt", LXCSD_GENERATOR, f"{OUT}/normal", f"{OUT}/early",
                   f"{OUT}/late"], check=False, env={"LXCSD_LXCPATH": lxcpath})
        text = b.sb.path(f"{BASE}/gen.txt").read_text() if r.returncode == 0 else (
            f"pyinstrument run failed ({r.returncode}):\n{r.stderr[-3000:]}")
        (PROFILE_DIR / "generator-pyinstrument.txt").write_text(
            "lxcsd-generator, 1000 configs, pyinstrument\n\n" + text)
    b.run(["rm", "-rf", BASE], check=False)


def profile_helper(b: Bench, out: dict, py: str | None) -> None:
    r = LxcsdRunner()
    name = r.name("busybox", "prof")
    r.create(b, name, "busybox")
    unit = f"lxc@{name}.service"
    it_py = f"/usr/bin/python3 -I -S -X importtime {LXCSD_HELPER}"
    variants = {"importtime": f"ExecStart=\nExecStart={it_py} start %i\nExecStop=\n"
                f"ExecStop={it_py} stop %i $MAINPID\nExecStopPost=\n"
                f"ExecStopPost={it_py} cleanup %i\n"}
    if py:
        variants["pyinstrument"] = (
            f"ExecStart=\nExecStart={py} -m pyinstrument -r text --show-all"
            " -o /run/bench-helper-prof.txt"
            f" {LXCSD_HELPER} start %i\n")
    try:
        for what, body in variants.items():
            b.write(f"/run/systemd/system/{unit}.d/{DROPIN}",
                    f"# lxcsd bench: profile the helper\n[Service]\n{body}")
            b.daemon_reload()
            since = time.strftime("%Y-%m-%d %H:%M:%S")
            time.sleep(1.0)  # --since has a resolution of seconds
            res = b.timed(r.start_cmds(name), timeout=60)
            time.sleep(0.3)
            b.timed(r.stop_cmds(name), timeout=60)
            if what == "importtime":
                for verb, text in _by_verb(_journal_by_pid(b, unit, since)).items():
                    it = importtime(text)
                    key = "helper_importtime" if verb == "start" else f"{verb}_importtime"
                    out[key] = {k: v for k, v in it.items() if k != "slowest"} | {
                        "slowest": it["slowest"][:8], "start_ok": res["ok"]}
                    fname = "helper" if verb == "start" else verb
                    (PROFILE_DIR / f"{fname}-importtime.txt").write_text(
                        _format(f"lxcsd-helper {verb} (busybox), -X importtime", it))
            else:
                p = b.sb.path("/run/bench-helper-prof.txt")
                (PROFILE_DIR / "helper-pyinstrument.txt").write_text(
                    "lxcsd-helper start (busybox), pyinstrument (children forked by the helper "
                    "may be missing)\n\n" + (p.read_text() if p.exists() else "(no output)"))
    finally:
        b.run(["rm", "-rf", f"/run/systemd/system/{unit}.d"], check=False)
        r.force_stop(b, [name])
        r.destroy(b, [name])


def _journal_by_pid(b: Bench, unit: str, since: str) -> dict[int, str]:
    """The unit's journal lines since `since`, grouped by process, in order of appearance."""
    r = b.run(["journalctl", "-u", unit, "--since", since, "-o", "json", "--no-pager",
               "--output-fields=_PID,MESSAGE"], check=False)
    out: dict[int, list[str]] = {}
    for line in r.stdout.splitlines():
        try:
            e = json.loads(line)
            pid, msg = int(e.get("_PID", 0)), e.get("MESSAGE")
        except (ValueError, TypeError):
            continue
        if pid and isinstance(msg, str):
            out.setdefault(pid, []).append(msg)
    return {pid: "\n".join(lines) for pid, lines in out.items()
            if any("import time:" in ln for ln in lines)}


def _by_verb(per_pid: dict[int, str]) -> dict[str, str]:
    """Which importtime dump is which verb: by the verb's module; the start helper's forked
    children (which import lazily) are counted with start."""
    out = {"start": "", "stop": "", "cleanup": ""}
    for text in per_pid.values():
        mods = {ln.rsplit("|", 1)[-1].strip() for ln in text.splitlines() if "|" in ln}
        verb = next((v for v in ("cleanup", "start", "stop") if f"lxcsd.runtime.{v}" in mods),
                    "start")
        out[verb] += text + "\n"
    return {k: v for k, v in out.items() if v}


def parse_marks(line: str) -> dict[str, float]:
    """'lxcsd: timing ms: config 1.20, cgroups 0.50, ..., total 9.1' -> {step: ms}."""
    out: dict[str, float] = {}
    for part in line.split("timing ms:", 1)[1].split(","):
        words = part.split()
        if len(words) >= 2:
            try:
                out[" ".join(words[:-1])] = float(words[-1])
            except ValueError:
                continue
    return out


def helper_timing(b: Bench, out: dict, runs: int) -> None:
    """Start a busybox container `runs` times with LXCSD_START_TIMING=1: the helper's own
    marks per step against the `systemctl start` time of the same starts."""
    r = LxcsdRunner()
    name = r.name("prompt", "marks")
    r.create(b, name, "prompt")  # the same start; its init exits at once on the halt signal
    unit = f"lxc@{name}.service"
    b.write(f"/run/systemd/system/{unit}.d/{DROPIN}",
            "# lxcsd bench: the helper's timing marks\n[Service]\n"
            "Environment=LXCSD_START_TIMING=1\n")
    b.daemon_reload()
    starts: list[float] = []
    marks: list[dict[str, float]] = []
    try:
        for i in range(runs + 1):
            since = time.strftime("%Y-%m-%d %H:%M:%S")
            time.sleep(1.0)
            res = b.timed(r.start_cmds(name), timeout=60)
            b.timed(r.stop_cmds(name), timeout=60)
            if not res["ok"] or i == 0:  # the first is a warm-up
                continue
            j = b.run(["journalctl", "-u", unit, "--since", since, "-o", "cat", "--no-pager"],
                      check=False).stdout
            lines = [ln for ln in j.splitlines() if "timing ms:" in ln]
            if lines:
                starts.append(res["total"] * 1000)
                marks.append(parse_marks(lines[-1]))
    finally:
        b.run(["rm", "-rf", f"/run/systemd/system/{unit}.d"], check=False)
        r.force_stop(b, [name])
        r.destroy(b, [name])
    if not marks:
        out["helper_timing_error"] = "no 'timing ms:' line in the journal"
        return
    steps = list(marks[0])
    med = {s: statistics.median(m.get(s, 0.0) for m in marks) for s in steps}
    start_med = statistics.median(starts)
    out["helper_timing"] = {"runs": len(marks), "systemctl_start_ms": start_med,
                            "steps_ms": med}
    lines = [f"lxcsd-helper start (busybox tree), LXCSD_START_TIMING=1, median of {len(marks)} "
             "starts (after one warm-up)", "",
             f"{'ms':>9}  step (perf_counter marks inside the helper, from start.main())"]
    lines += [f"{v:9.2f}  {s}" for s, v in med.items()]
    inner = med.get("total", sum(v for s, v in med.items() if s != "total"))
    lines += ["", f"{start_med:9.2f}  `systemctl start lxc@NAME` of the same starts",
              f"{start_med - inner:9.2f}  of which outside the marks: systemd's round trip, "
              "the interpreter's start-up, the imports before start.main()"]
    (PROFILE_DIR / "helper-timing.txt").write_text("\n".join(lines) + "\n")


def run(b: Bench, opts: Options) -> dict:
    r = LxcsdRunner()
    r.setup(b)
    if r.generator_unavailable or (r.unavailable and b.lxcsd_install_error):
        return {"available": False, "reason": r.unavailable}
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    py = _pyinstrument(b)
    out: dict = {"available": True, "pyinstrument": py,
                 "helper_available": not r.unavailable, "reason": r.unavailable}
    log(f"{NAME}: generator")
    try:
        profile_generator(b, out, py)
    except Exception as e:  # noqa: BLE001
        out["generator_error"] = short_error(e)
    if not r.unavailable:
        log(f"{NAME}: helper")
        try:
            profile_helper(b, out, py)
        except Exception as e:  # noqa: BLE001
            out["helper_error"] = short_error(e)
        log(f"{NAME}: helper timing marks")
        try:
            helper_timing(b, out, opts.runs or opts.pick(quick=3, full=10))
        except Exception as e:  # noqa: BLE001
            out["helper_timing_error"] = short_error(e)
    out["files"] = sorted(p.name for p in PROFILE_DIR.glob("*.txt")) if os.path.isdir(
        PROFILE_DIR) else []
    return out
