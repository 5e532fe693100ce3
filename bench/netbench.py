"""Network start overhead in the one command: runs bench/netstart.py (a standalone script).

netstart.py unshares its own network and mount namespaces, so it runs as a child process
(never in bench/run.py's process): the host's interpreter running this, the source tree on
PYTHONPATH. It writes bench/results/data/netstart.json itself (so does every run of it by hand):
this reads it at once and returns it, and run.py saves it as data/network.json with the run's
metadata (measured, machine, quick, load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.harness import DATA, log, raw_path
from bench.options import Options
from tests.infra.sandbox import REPO_ROOT

NAME = "network"


def run(_b: object, opts: Options) -> dict:
    runs = opts.runs or opts.pick(quick=3, full=15)
    warmup = opts.pick(quick=1, full=2)
    argv = [sys.executable, "-m", "bench.netstart", "--runs", str(runs), "--warmup",
            str(warmup)]
    log(f"{NAME}: {' '.join(argv)}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    raw_path("netstart.txt").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        tail = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()][-1:]
        return {"available": False,
                "reason": f"bench/netstart.py exits {r.returncode}: {' '.join(tail)[:300]}"}
    data = json.loads((DATA / "netstart.json").read_text())
    return {"available": True, "text": r.stdout, **data}
