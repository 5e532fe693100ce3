"""The lxcsd dispatcher: subcommand discovery, help, one-line errors, --debug."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lxcsd.cli import main as cli
from lxcsd.errors import LxcsdError
from lxcsd.paths import SOURCE_TREE


def test_help_lists_commands_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "check" in out and "config" in out and "examples:" in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_errors_are_one_line_unless_debug(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LXCSD_LXCPATH", "/nonexistent")
    assert cli.main(["check", "ghost"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lxcsd: no container 'ghost'") and err.count("\n") == 1
    for argv in (["--debug", "check", "ghost"], ["check", "ghost", "--debug"]):
        with pytest.raises(LxcsdError):
            cli.main(argv)


def test_module_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "lxcsd.cli.main", "--version"],
                            cwd=SOURCE_TREE, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("lxcsd ")
