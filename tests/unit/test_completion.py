"""Bash completion (completion/lxcsd.bash), driven the way bash drives it: a real bash loads
the file through bash-completion's own loader (as /usr/share/bash-completion/completions/
lxcsd would be loaded), `complete -p lxcsd` names the function, and the function is called
with COMP_WORDS/COMP_CWORD as readline sets them. Container names come from a real
`lxcsd ls -1` (this tree, on PATH) over an lxcpath in tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")

DRIVER = r"""
source "$BASH_COMPLETION"
_completion_loader lxcsd            # what bash-completion runs on the first Tab
spec=$(complete -p lxcsd) || exit 3
func=${spec##*-F }; func=${func%% *}
read -ra COMP_WORDS <<< "$LINE"
[[ $LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE=$LINE; COMP_POINT=${#LINE}
"$func" lxcsd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def test_completion_is_fresh() -> None:
    pytest.importorskip("shtab")
    result = subprocess.run([sys.executable, str(ROOT / "packaging/completion.py"), "--check"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    if not BASH_COMPLETION.exists():
        pytest.skip("needs bash-completion (packaging/setup.sh test installs it)")
    completions = tmp_path / "share" / "bash-completion" / "completions"
    completions.mkdir(parents=True)
    shutil.copy(ROOT / "completion/lxcsd.bash", completions / "lxcsd")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "lxcsd").write_text(f'#!/bin/sh\nexec {sys.executable} -m lxcsd.cli.main "$@"\n')
    (bindir / "lxcsd").chmod(0o755)
    lxcpath = tmp_path / "lxc"
    for name in ("web1", "web2", "db"):
        (lxcpath / name).mkdir(parents=True)
        (lxcpath / name / "config").write_text(f"lxc.uts.name = {name}\n")
    other = tmp_path / "other"
    (other / "elsewhere").mkdir(parents=True)
    (other / "elsewhere" / "config").write_text("")
    return {"PATH": f"{bindir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
            "XDG_DATA_DIRS": str(tmp_path / "share"), "BASH_COMPLETION": str(BASH_COMPLETION),
            "LXCSD_LXCPATH": str(lxcpath), "HOME": str(tmp_path), "OTHER": str(other)}


def complete(env: dict[str, str], line: str) -> list[str]:
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER],
                            env={**env, "LINE": line}, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return sorted(word for word in result.stdout.splitlines() if word)


def test_commands_and_options(shell_env: dict[str, str]) -> None:
    assert complete(shell_env, "lxcsd st") == ["start", "stop"]
    assert {"attach", "console", "create", "info", "ls"} <= set(complete(shell_env, "lxcsd "))
    assert complete(shell_env, "lxcsd ls --ru") == ["--running"]
    assert "--fancy-format" in complete(shell_env, "lxcsd ls --")
    assert complete(shell_env, "lxcsd config g") == ["get"]


def test_choices_of_templates_and_formats(shell_env: dict[str, str]) -> None:
    assert complete(shell_env, "lxcsd create web3 -t ") == ["busybox", "debian"]
    assert complete(shell_env, "lxcsd ls --format ") == ["json", "table"]


def test_container_names_from_the_lxcpath(shell_env: dict[str, str]) -> None:
    assert complete(shell_env, "lxcsd info ") == ["db", "web1", "web2"]
    assert complete(shell_env, "lxcsd info w") == ["web1", "web2"]
    assert complete(shell_env, "lxcsd info -n ") == ["db", "web1", "web2"]
    assert complete(shell_env, "lxcsd config get ") == ["db", "web1", "web2"]
    assert complete(shell_env, "lxcsd destroy -f d") == ["db"]


def test_a_typed_lxcpath_is_used(shell_env: dict[str, str]) -> None:
    other = shell_env["OTHER"]
    assert complete(shell_env, f"lxcsd info -P {other} ") == ["elsewhere"]
    assert complete(shell_env, f"lxcsd info --lxcpath={other} ") == ["elsewhere"]
    listed = complete(shell_env, f"lxcsd ls -P {os.path.dirname(other)}/")
    assert f"{other}/" in listed or other in listed
