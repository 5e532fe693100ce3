"""Where lxcsd's time goes: profiles kept beside the results (bench/results/profile/).

Inside the sandbox, with lxcsd installed:
  generator-importtime.txt    `python3 -I -S -X importtime lxcsd-generator` on 100 configs:
                              the slowest imports (cumulative), and any module docs/design.md
                              keeps off hot paths
  generator-pyinstrument.txt  pyinstrument's call tree of the generator on 1000 configs
  helper-importtime.txt       the same for `lxcsd-helper start` (a drop-in runs it under
                              -X importtime; its stderr goes to the journal)
  helper-pyinstrument.txt     pyinstrument's call tree of `lxcsd-helper start` (a drop-in)
"""

from __future__ import annotations

import os
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
    variants = {"importtime": f"/usr/bin/python3 -I -S -X importtime {LXCSD_HELPER} start %i"}
    if py:
        variants["pyinstrument"] = (f"{py} -m pyinstrument -r text -o /run/bench-helper-prof.txt"
                                    f" {LXCSD_HELPER} start %i")
    try:
        for what, cmd in variants.items():
            b.write(f"/run/systemd/system/{unit}.d/{DROPIN}",
                    f"# lxcsd bench: profile the helper\n[Service]\nExecStart=\n"
                    f"ExecStart={cmd}\n")
            b.daemon_reload()
            since = time.strftime("%Y-%m-%d %H:%M:%S")
            res = b.timed(r.start_cmds(name), timeout=60)
            time.sleep(0.3)
            b.timed(r.stop_cmds(name), timeout=60)
            if what == "importtime":
                j = b.run(["journalctl", "-u", unit, "--since", since, "-o", "cat",
                           "--no-pager"], check=False).stdout
                it = importtime(j)
                out["helper_importtime"] = {k: v for k, v in it.items() if k != "slowest"} | {
                    "slowest": it["slowest"][:8], "start_ok": res["ok"]}
                (PROFILE_DIR / "helper-importtime.txt").write_text(
                    _format("lxcsd-helper start (busybox), -X importtime", it))
            else:
                p = b.sb.path("/run/bench-helper-prof.txt")
                (PROFILE_DIR / "helper-pyinstrument.txt").write_text(
                    "lxcsd-helper start (busybox), pyinstrument (children forked by the helper "
                    "may be missing)\n\n" + (p.read_text() if p.exists() else "(no output)"))
    finally:
        b.run(["rm", "-rf", f"/run/systemd/system/{unit}.d"], check=False)
        r.force_stop(b, [name])
        r.destroy(b, [name])


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
    out["files"] = sorted(p.name for p in PROFILE_DIR.glob("*.txt")) if os.path.isdir(
        PROFILE_DIR) else []
    return out
