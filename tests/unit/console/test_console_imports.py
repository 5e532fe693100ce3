"""The hot paths stay import-light (docs/design.md, "Imports"): the daemon and the helper's
hand-over import none of the heavy modules, checked with -X importtime as the helper and
the service are started (Debian's python3, -I -S, as the launchers do)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# docs/design.md's list, plus pystemd. Not enum: the socket module (allowed there) brings it.
FORBIDDEN = {"dataclasses", "typing", "re", "pathlib", "argparse", "subprocess", "json",
             "asyncio", "logging", "shlex", "inspect", "pystemd"}


def imported(module: str) -> set[str]:
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); import {module}"
    r = subprocess.run(["/usr/bin/python3", "-I", "-S", "-X", "importtime", "-c", code],
                       capture_output=True, text=True, check=True)
    return {line.split("|")[-1].strip() for line in r.stderr.splitlines() if "|" in line}


@pytest.mark.parametrize("module", ["lxcsd.console.daemon", "lxcsd.console.handoff"])
def test_hot_path_imports(module: str) -> None:
    heavy = {m for m in imported(module) if m.split(".")[0] in FORBIDDEN}
    assert not heavy, f"{module} imports {sorted(heavy)}"


def test_the_daemon_keeps_its_memory_small() -> None:
    """socket and signal bring enum, selectors, collections and array: 1 MB of the
    long-lived daemon's memory (lxcsd/console/daemon.py's docstring)."""
    modules = imported("lxcsd.console.daemon")
    assert not modules & {"socket", "signal", "enum", "selectors", "collections", "array"}
