"""The lxcsd dispatcher: subcommand discovery, help, one-line errors, --debug."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

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


# What users type (lxc-* and systemctl habits); plumbing that units run is not among them.
USER_COMMANDS = {"attach", "check", "config", "console", "copy", "create", "destroy",
                 "generate", "info", "start", "stop", "restart", "enable", "disable", "ls",
                 "monitor", "net", "wait"}


def test_help_lists_what_users_type_and_no_plumbing() -> None:
    (commands,) = [action.choices for action in cli.build_parser()._actions
                   if isinstance(action, argparse._SubParsersAction)]
    assert set(commands) == USER_COMMANDS


@pytest.mark.parametrize("module, unit", [("lxcsd.net.main", "lxcsd-net.service"),
                                          ("lxcsd.generator.late", "lxcsd-autostart.service")])
def test_units_run_their_plumbing_from_libexec(module: str, unit: str) -> None:
    text = Path(SOURCE_TREE, "units", f"{unit}.in").read_text()
    assert "@LIBEXECDIR@/" in text and "@BINDIR@/lxcsd " not in text
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=SOURCE_TREE,
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("usage: lxcsd-"), result.stderr
    install = Path(SOURCE_TREE, "packaging/install.sh").read_text()
    assert f'"$libexec/{unit.removesuffix(".service")}" {module} ' in install
