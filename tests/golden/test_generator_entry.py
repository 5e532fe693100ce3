"""The generator as systemd runs it (the source launcher, Debian's python3 -I -S, three output
directories) and as users run it (`lxcsd generate --dry-run`): exit status, what is
written or printed, and where problems go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lxcsd.paths import SOURCE_TREE

LAUNCHER = os.path.join(SOURCE_TREE, "generators", "lxcsd-generator")


def make_lxcpath(root: Path) -> Path:
    lxcpath = root / "lxc"
    configs = {"good": "lxc.start.auto = 1\nlxc.start.order = 1\n",
               "next": "lxc.start.auto = 1\nlxc.start.order = 2\n",
               "broken": "lxc.start.auto = 1\nlxc.nonsense = 3\n"}
    for name, text in configs.items():
        (lxcpath / name).mkdir(parents=True)
        (lxcpath / name / "config").write_text(text)
    return lxcpath


def run_launcher(args: list[str], lxcpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LXCSD_LXCPATH": str(lxcpath)}
    return subprocess.run([LAUNCHER, *args], capture_output=True, text=True, env=env,
                          timeout=60)


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs Debian's python3")
def test_launcher_writes_into_the_normal_dir(tmp_path: Path) -> None:
    lxcpath = make_lxcpath(tmp_path)
    dirs = [tmp_path / d for d in ("normal", "early", "late")]
    for directory in dirs:
        directory.mkdir()
    result = run_launcher(["--no-kmsg", *map(str, dirs)], lxcpath)
    assert result.returncode == 0, result.stderr
    normal = dirs[0]
    assert (normal / "lxc@good.service.d" / "10-lxcsd.conf").is_file()
    assert "After=lxc@good.service" in \
        (normal / "lxc@next.service.d" / "10-lxcsd.conf").read_text()
    assert sorted(os.listdir(normal / "lxc-containers.target.wants")) == [
        "lxc@broken.service", "lxc@good.service", "lxc@next.service"]
    assert not os.listdir(dirs[1]) and not os.listdir(dirs[2])
    # No temporary file left behind, and the broken config was reported, not fatal.
    assert not [p for p in normal.rglob(".#*")]
    assert f"{lxcpath}/broken/config:2: lxc.nonsense: unknown key" in result.stderr


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs Debian's python3")
def test_launcher_refuses_wrong_arguments(tmp_path: Path) -> None:
    for args in ([], [str(tmp_path), str(tmp_path)], ["--bogus", str(tmp_path)]):
        result = run_launcher(args, tmp_path)
        assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs Debian's python3")
def test_launcher_survives_an_unwritable_output(tmp_path: Path) -> None:
    """A generator that fails makes systemd warn at every boot: exit 0, say why."""
    lxcpath = make_lxcpath(tmp_path)
    missing = tmp_path / "no-such-dir"
    result = run_launcher(["--no-kmsg", str(missing), str(missing), str(missing)], lxcpath)
    assert result.returncode == 0
    assert f"cannot open the output directory {missing}" in result.stderr


def test_lxcsd_generate_dry_run(tmp_path: Path) -> None:
    lxcpath = make_lxcpath(tmp_path)
    cmd = [sys.executable, "-m", "lxcsd.cli.main", "generate", "--dry-run", "-P", str(lxcpath)]
    everything = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                                cwd=SOURCE_TREE)
    assert everything.returncode == 0, everything.stderr
    assert "---lxc@good.service.d/10-lxcsd.conf---" in everything.stdout
    assert "---lxc-containers.target.wants/lxc@next.service -> " in everything.stdout
    assert "lxc.nonsense: unknown key" in everything.stderr
    one = subprocess.run([*cmd, "next"], capture_output=True, text=True, timeout=60,
                         cwd=SOURCE_TREE)
    assert one.returncode == 0
    headers = [line for line in one.stdout.splitlines() if line.startswith("---")]
    assert headers and all("lxc@next.service" in line for line in headers), headers
    # The order still comes from every container: next follows good.
    assert "After=lxc@good.service" in one.stdout


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs Debian's python3")
def test_a_container_lxc_start_runs_is_not_autostarted(tmp_path: Path) -> None:
    """At a daemon-reload while lxc-start runs "good" (its command socket answered as LXC's
    monitor answers: tests/infra/lxc_monitor.py), lxc-containers.target does not want it;
    "next", which nobody runs, keeps its place."""
    from lxcsd.liblxc.wire import socket_name
    from tests.infra.lxc_monitor import FakeMonitor

    lxcpath = make_lxcpath(tmp_path)
    normal = tmp_path / "normal"
    normal.mkdir()
    monitor = FakeMonitor(socket_name(str(lxcpath), "good"))
    try:
        result = run_launcher(["--no-kmsg", str(normal)], lxcpath)
    finally:
        monitor.close()
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(normal / "lxc-containers.target.wants")) == [
        "lxc@broken.service", "lxc@next.service"]
    assert "container good runs under" in result.stderr
    assert "lxc-containers.target does not start it" in result.stderr
