"""The generator's config modules stay import-light (docs/design.md, "Imports")."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lxcsd.paths import SOURCE_TREE

PYTHON = "/usr/bin/python3"  # Debian's, as the generator runs
FORBIDDEN = {"dataclasses", "typing", "enum", "re", "pathlib", "json", "argparse", "logging",
             "inspect", "shlex", "subprocess", "asyncio", "difflib"}
DATA = Path(__file__).parent / "data"


def imported_modules(code: str) -> set[str]:
    result = subprocess.run([PYTHON, "-I", "-S", "-X", "importtime", "-c",
                             f"import sys; sys.path.insert(0, {SOURCE_TREE!r})\n{code}"],
                            capture_output=True, text=True, check=True)
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.split("|")[-1].strip() for line in lines[1:]}


@pytest.mark.skipif(not Path(PYTHON).exists(), reason="needs Debian's python3")
def test_loading_configs_imports_nothing_heavy() -> None:
    configs = [str(p) for p in sorted(DATA.glob("*.conf"))]
    modules = imported_modules(
        "from lxcsd.config.load import discover, load_path, lxcpaths\n"
        "from lxcsd.config import names, values, globalconf\n"
        f"for path in {configs!r}:\n"
        "    c = load_path(path)\n"
        "    names.unit_name('web-1')\n"
        "values.parse_signal('SIGRTMIN+3')\n"
        "discover(['/nonexistent'])\n"
    )
    assert "lxcsd.config.load" in modules
    assert not modules & FORBIDDEN, sorted(modules & FORBIDDEN)
