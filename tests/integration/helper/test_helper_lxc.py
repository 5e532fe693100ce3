"""``lxcsd-helper start`` and ``cleanup`` next to a container LXC's own lxc-start runs (its
command socket answered as LXC's monitor answers it: tests/infra/lxc_monitor.py; the
sandbox test uses a real lxc-start): the start refuses in one line before it touches
anything, and the cleanup systemd runs after that failed start leaves the container alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lxcsd.liblxc import owner, wire
from tests.infra import helper_util as hu
from tests.infra.lxc_monitor import FakeMonitor


def cleanup(lxcpath: hu.Lxcpath, name: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LXCSD_LXCPATH": str(lxcpath.base),
           "LXCSD_RUN_DIR": str(lxcpath.run_dir)}
    return subprocess.run([sys.executable, "-c", hu.LAUNCHER, "cleanup", name], env=env,
                          capture_output=True, text=True, timeout=60)


def test_start_refuses_what_lxc_start_runs(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    marker = lxcpath.base / "post-stop-ran"
    lxcpath.container("c1", f"lxc.hook.post-stop = /bin/sh -c 'touch {marker}'\n")
    monitor = FakeMonitor(wire.socket_name(str(lxcpath.base), "c1"))
    try:
        started = lxcpath.start("c1", unit_cgroup)
        comm = Path("/proc/self/comm").read_text().strip()
        assert started.status == 1, started
        assert (f"lxcsd: error: c1 is running under {comm} (PID {os.getpid()}); stop it "
                "with lxc-stop first") in started.stderr.splitlines()
        assert "starting c1" not in started.stderr  # refused before anything
        assert [m for m in started.messages if m.startswith("STATUS=Failed: c1 is running")]
        assert not [n for n in os.listdir(unit_cgroup) if n.startswith("lxc.")]
        assert not (lxcpath.run_dir / "c1").exists()
        done = cleanup(lxcpath, "c1")  # systemd's ExecStopPost= after the failed start
        assert "post-stop hooks skipped" in done.stderr, done.stderr
        assert not marker.exists()
    finally:
        monitor.close()


def test_start_binds_the_command_socket(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    """Without lxcsd-console (none here) the socket goes with the helper: the warning says
    LXC's tools will not see the container; with it, tests/integration/console and the
    sandbox test show the hand-over."""
    lxcpath.container("c2")
    started = lxcpath.start("c2", unit_cgroup)
    assert started.status == 0, started
    assert "LXC's tools (lxc-ls, lxc-start...) seeing it running" in started.stderr
    assert owner.probe(str(lxcpath.base), "c2") is None
