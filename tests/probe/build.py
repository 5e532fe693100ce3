"""Build the static C programs tests need: tests/probe/probe.c (for root file systems that
have no libc) and lxcsd's own attach stub (libexec/lxcsd-attach-exec.c) where a source
checkout looks for it (lxcsd.paths.attach_exec: build/), as packaging/install.sh builds it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROBE_SOURCE = Path(__file__).resolve().parent / "probe.c"
HOSTILE_SOURCE = Path(__file__).resolve().parent / "hostile.c"
ATTACH_EXEC_SOURCE = Path(__file__).resolve().parents[2] / "libexec/lxcsd-attach-exec.c"


def build_probe(out: Path, source: Path = PROBE_SOURCE) -> Path:
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out), str(source)],
                   check=True, capture_output=True)
    return out


def build_attach_exec(tree: Path | None = None) -> Path:
    """TREE/build/lxcsd-attach-exec (this tree's: where lxcsd.paths.attach_exec looks in a
    checkout), rebuilt when older than its source, with install.sh's flags; written to a
    temporary name and renamed, as test runs may build it at once."""
    tree = tree or ATTACH_EXEC_SOURCE.parents[1]
    source = tree / "libexec/lxcsd-attach-exec.c"
    out = tree / "build/lxcsd-attach-exec"
    if out.exists() and out.stat().st_mtime >= source.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}")
    subprocess.run(["gcc", "-static", "-Os", "-s", "-Wall", "-Wextra", "-o", str(tmp),
                    str(source)], check=True, capture_output=True)
    tmp.rename(out)
    return out
