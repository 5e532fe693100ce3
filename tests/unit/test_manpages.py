"""man/ and docs/cli.md are what packaging/manpages.py makes from the parsers, the units and
the docs (a changed --help or unit comment without a regenerated page fails here), and
every page renders with man-db and groff without a warning."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lxcsd.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("lxcsd.1", "lxcsd-generator.8", "lxc@.service.8")


def test_man_pages_are_fresh() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "packaging/manpages.py"), "--check"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found[sub.prog] = sub
                found.update(commands(sub))
    return found


def render(page: str) -> tuple[str, str]:
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": ""}
    result = subprocess.run(["man", "--warnings", "-l", "-E", "UTF-8", str(ROOT / "man" / page)],
                            capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


@pytest.mark.skipif(shutil.which("man") is None, reason="needs man-db")
@pytest.mark.parametrize("page", PAGES)
def test_pages_render_without_warnings(page: str) -> None:
    out, err = render(page)
    assert err == "" and "NAME" in out and "SEE ALSO" in out


@pytest.mark.skipif(shutil.which("man") is None, reason="needs man-db")
def test_lxcsd_page_has_every_command_and_its_options() -> None:
    out, _ = render("lxcsd.1")
    for prog, parser in commands(build_parser()).items():
        assert f"\n   {prog}\n" in out, f"no section for {prog}"
        for option in parser._option_string_actions:
            assert option in out, f"{prog}: {option} missing"


@pytest.mark.skipif(shutil.which("man") is None, reason="needs man-db")
def test_service_page_shows_each_setting_of_the_unit() -> None:
    out, _ = render("lxc@.service.8")
    unit = (ROOT / "units/lxc@.service.in").read_text()
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            key = line.split("=", 1)[0]
            assert f"{key}=" in out, key
    assert "systemctl edit lxc@NAME" in " ".join(out.split())


def test_cli_doc_has_every_command_and_its_options() -> None:
    """docs/cli.md is generated from the same parsers (and kept fresh above)."""
    text = (ROOT / "docs/cli.md").read_text()
    for prog, parser in commands(build_parser()).items():
        assert f"\n## {prog}\n" in text and f"](#{prog.replace(' ', '-')})" in text, prog
        for option in set(parser._option_string_actions) - {"-h", "--help"}:
            assert f"`{option}" in text, f"{prog}: {option} missing"
