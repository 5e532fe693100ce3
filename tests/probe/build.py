"""Build tests/probe/probe.c as a static binary, for root file systems that have no libc."""

from __future__ import annotations

import subprocess
from pathlib import Path

PROBE_SOURCE = Path(__file__).resolve().parent / "probe.c"


def build_probe(out: Path) -> Path:
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out), str(PROBE_SOURCE)],
                   check=True, capture_output=True)
    return out
