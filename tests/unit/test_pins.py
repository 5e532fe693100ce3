"""Every tool and library pip installs is pinned to an exact version in
packaging/constraints.txt, so a new release upstream cannot turn CI red on a new machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "packaging/constraints.txt"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[0-9][0-9A-Za-z.]*", version), f"not exact: {line}"
            out[_norm(name)] = version
    return out


def _requirement_name(req: str) -> str:
    return _norm(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0])


def test_project_dependencies_and_extras_are_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    missing = {_requirement_name(r) for r in wanted} - set(pins())
    assert not missing, f"not pinned in {CONSTRAINTS.name}: {sorted(missing)}"


def test_every_pip_install_uses_the_constraints() -> None:
    for script in ("packaging/setup.sh", "packaging/install.sh"):
        for line in (ROOT / script).read_text().splitlines():
            if re.search(r"pip\"? install\b", line) and "--no-deps" not in line:
                assert "-c " in line, f"{script}: pip install without constraints: {line}"


def test_test_tools_in_setup_are_pinned() -> None:
    text = (ROOT / "packaging/setup.sh").read_text()
    body = text[text.index("run_tests() {"):]
    body = body[:body.index("}")]
    tools = re.findall(r"^\s+((?:[a-z][a-z0-9_-]*\s*)+)$", body, re.M)
    names = {_norm(n) for group in tools for n in group.split()}
    assert {"pytest", "mypy", "ruff"} <= names
    assert names <= set(pins()), sorted(names - set(pins()))
