"""Config parse rate: runs bench/parse_bench.py (a standalone script) when it exists.

It runs on the host (it needs no systemd), from the source tree, with the lxcsd venv's
interpreter (Debian's python3 with lxcsd's dependencies). Its output is kept as it is: the
last line when it is JSON, otherwise the text.
"""

from __future__ import annotations

import json
import os
import subprocess

from bench.harness import BENCH_DIR, log, raw_path
from bench.options import Options
from tests.infra.sandbox import REPO_ROOT

NAME = "parse"
SCRIPT = BENCH_DIR / "parse_bench.py"
PYTHONS = ("/usr/local/lib/lxcsd/venv/bin/python", "/usr/bin/python3")


def run(_b: object, opts: Options) -> dict:
    if not SCRIPT.exists():
        return {"available": False, "reason": "bench/parse_bench.py does not exist yet"}
    py = next(p for p in PYTHONS if os.access(p, os.X_OK))
    argv = [py, str(SCRIPT)] + (["--quick"] if opts.quick else [])
    log(f"{NAME}: {' '.join(argv)}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    if r.returncode != 0 and opts.quick and "--quick" in (r.stderr or ""):
        argv = argv[:2]  # the script has no --quick
        r = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT,
                           env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    raw_path("parse_bench.txt").write_text(r.stdout + "\n--- stderr ---\n" + r.stderr)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return {"available": False, "reason": f"parse_bench.py exited {r.returncode}: "
                + " | ".join(tail)}
    lines = r.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if lines else None
    except ValueError:
        data = None
    return {"available": True, "command": " ".join(argv[1:]), "json": data,
            "text": "\n".join(lines[-40:])}
