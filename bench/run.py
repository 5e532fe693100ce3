#!/usr/bin/python3
"""Benchmark lxcsd against LXC, systemd-nspawn and Podman quadlet on this machine.

    bench/run.py                  everything (about 10-15 minutes), then the report
    bench/run.py --quick          a fast smoke pass (fewer runs, fewer containers)
    bench/run.py --only startstop --only boot
    bench/run.py --report         only re-render bench/results/README.md and plots
    python -m bench ...           the same

Run as root from anywhere. Each benchmark boots its own systemd sandbox
(tests/infra/sandbox.py), installs lxcsd into it, measures every runner there in the same
run (interleaved), removes everything, and writes bench/results/data/NAME.json; the report
(bench/results/README.md and PNG plots) is made from all of those files, so --only updates
one benchmark's figures and keeps the others'. Logs go to bench/results/raw/ (not committed).
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback

if __package__ in (None, ""):  # run as a script: import as the package, never bench/ itself
    _repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(
        os.path.abspath(__file__))]
    sys.path.insert(0, _repo)
    __package__ = "bench"  # noqa: A001

from bench import boot as boot_bench  # noqa: E402
from bench import density, generator, memory, netbench, profiling, scale, startstop  # noqa: E402
from bench import parse as parse_bench  # noqa: E402
from bench.harness import Bench, log, raw_path, save  # noqa: E402
from bench.options import Options  # noqa: E402

# name -> (module, needs a sandbox)
BENCHMARKS = {
    "startstop": (startstop, True),
    "memory": (memory, True),
    "density": (density, True),
    "boot": (boot_bench, True),
    "generator": (generator, True),
    "parse": (parse_bench, False),
    "network": (netbench, False),
    "profile": (profiling, True),
    "scale": (scale, True),
}


def plotting_python() -> str | None:
    """An interpreter with matplotlib, if this one has none (Debian's python3 usually)."""
    try:
        import matplotlib  # noqa: F401
        return None
    except ImportError:
        pass
    for py in ("/usr/local/lib/lxcsd/venv/bin/python", "/var/tmp/lxcsd-dev/bin/python"):
        if os.access(py, os.X_OK) and py != sys.executable:
            r = subprocess.run([py, "-c", "import matplotlib"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return py
    return None


def uptime_load() -> str:
    """The 1/5/15-minute load averages, as uptime prints them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run_one(name: str, opts: Options) -> bool:
    module, sandboxed = BENCHMARKS[name]
    log(f"=== {name} ===")
    t0 = time.monotonic()
    load_before = uptime_load()
    try:
        if hasattr(module, "prepare"):
            module.prepare(opts)
        if sandboxed:
            with Bench() as b:
                data = module.run(b, opts)
        else:
            data = module.run(None, opts)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - one benchmark failing must not stop the others
        tb = traceback.format_exc()
        raw_path(f"{name}-error.txt").write_text(tb)
        log(f"{name} failed: {e} (traceback in bench/results/raw/{name}-error.txt)")
        save(name, {"error": f"{type(e).__name__}: {e}"[:2000], "quick": opts.quick})
        return False
    data["seconds"] = round(time.monotonic() - t0, 1)
    data["load"] = [load_before, uptime_load()]  # the machine is shared: say how busy it was
    data["quick"] = opts.quick
    save(name, data)
    log(f"{name} done in {data['seconds']} s")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a fast smoke pass")
    ap.add_argument("--only", action="append", choices=list(BENCHMARKS), metavar="NAME",
                    help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    ap.add_argument("--runs", type=int, help="repetitions (overrides each benchmark's)")
    ap.add_argument("--report", action="store_true", help="only re-render the report")
    args = ap.parse_args(argv)
    if os.geteuid() != 0 and not args.report:
        print("bench/run.py needs root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 1
    ok = True
    if not args.report:
        opts = Options(quick=args.quick, runs=args.runs)
        for name in args.only or list(BENCHMARKS):
            ok = run_one(name, opts) and ok
    py = plotting_python()
    if py:  # render with an interpreter that has matplotlib
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        r = os.spawnve(os.P_WAIT, py, [py, "-m", "bench.report"],
                       {**os.environ, "PYTHONPATH": repo})
        ok = ok and r == 0
    else:
        from bench import report
        report.main()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
