"""The project's own static checks, so CI keeps them: ruff over the code and the tests, mypy
(strict settings in pyproject.toml) over the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        __import__(module)
    except ImportError:
        pytest.skip(f"{module} is not installed (packaging/setup.sh test installs it)")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=600)


def test_ruff() -> None:
    r = _tool("ruff", "check", "lxcsd", "tests", "bench", "generators", "packaging", "ansible")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy() -> None:
    r = _tool("mypy", "--cache-dir", "/tmp/lxcsd-mypy-cache", "lxcsd")
    assert r.returncode == 0, r.stdout + r.stderr
