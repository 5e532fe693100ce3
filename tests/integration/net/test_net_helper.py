"""A real container with a veth network, started by ``python -m lxcsd.runtime.main start``
(tests/infra/helper_util.py plays systemd) inside a network namespace the test
creates: init finds eth0 configured when it starts, the "host" pings it, and
``lxcsd-helper cleanup`` after init's SIGKILL leaves no host-side interface."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import netharness as nh
import pytest

from tests.infra import helper_util as hu

pytestmark = pytest.mark.network

CONFIG = """lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.0.veth.pair = vhelper0
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.net.0.ipv4.address = 10.0.3.10/24
lxc.net.0.ipv4.gateway = auto
"""
# What init sees the moment it runs (before anything else could configure the network).
INIT = """ip -4 addr show dev eth0 > /netseen
ip route >> /netseen
echo done >> /netseen
exec sleep 1000
"""


UNPRIVILEGED = "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n"


@pytest.mark.parametrize("mapped", [False, True], ids=["privileged", "unprivileged"])
def test_helper_starts_container_with_veth(unit_cgroup: str, subids: None,
                                           mapped: bool) -> None:
    def body() -> dict[str, object]:
        nh.make_bridge("br0", "10.0.3.1/24")
        lxcpath = hu.Lxcpath(None)
        try:
            root = lxcpath.container("netc", CONFIG + (UNPRIVILEGED if mapped else ""),
                                     init_script=INIT, owner=100000 if mapped else None)
            started = lxcpath.start("netc", unit_cgroup)
            assert started.status == 0, started
            seen = hu.wait_file(root / "netseen")
            owner = os.stat(root / "netseen").st_uid
            host_ends = sorted(nh.links())
            nh.host_sh("ping -c1 -W5 10.0.3.10")
            started.stop()
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LXCSD_LXCPATH": str(lxcpath.base),
                   "LXCSD_RUN_DIR": str(lxcpath.run_dir),
                   "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
            cleanup = subprocess.run([sys.executable, "-m", "lxcsd.runtime.main", "cleanup",
                                      "netc"], env=env, capture_output=True, text=True)
            return {"seen": seen, "owner": owner, "ifaces": (started.state or {}).get("ifaces"),
                    "host ends": host_ends, "cleanup": cleanup.returncode,
                    "cleanup stderr": cleanup.stderr, "after": sorted(nh.links()),
                    "state left": os.path.exists(lxcpath.run_dir / "netc" / "net")}
        finally:
            lxcpath.remove()

    got = nh.in_netns(body)
    assert got["owner"] == (100000 if mapped else 0)  # init ran as mapped root
    assert "inet 10.0.3.10/24" in got["seen"]
    assert "default via 10.0.3.1 dev eth0" in got["seen"]
    assert got["ifaces"] == "eth0"
    assert got["host ends"] == ["br0", "lo", "vhelper0"]
    assert got["cleanup"] == 0, got["cleanup stderr"]
    assert got["after"] == ["br0", "lo"]
    assert not got["state left"]


def test_helper_empty_network_has_only_lo_up(unit_cgroup: str) -> None:
    def body() -> str:
        lxcpath = hu.Lxcpath(None)
        try:
            root = lxcpath.container("emptyc", "lxc.net.0.type = empty\n",
                                     init_script="ip link > /netseen\necho done >> /netseen\n"
                                     "exec sleep 1000\n")
            started = lxcpath.start("emptyc", unit_cgroup)
            assert started.status == 0, started
            seen = hu.wait_file(root / "netseen")
            started.stop()
            return seen
        finally:
            lxcpath.remove()

    lines = [line for line in nh.in_netns(body).splitlines() if line[:1].isdigit()]
    assert len(lines) == 1 and lines[0].startswith("1: lo: <LOOPBACK,UP"), lines


def test_helper_runs_script_up_of_an_empty_network(unit_cgroup: str) -> None:
    """lxc.net.N.script.up runs for an empty network too (as liblxc), in a real start."""
    def body() -> str:
        lxcpath = hu.Lxcpath(None)
        try:
            hook = lxcpath.base / "up.sh"
            hook.write_text("#!/bin/sh\necho \"$LXC_NAME: $@\" > \"$0.ran\"\n")
            hook.chmod(0o755)
            lxcpath.container("hookc", f"lxc.net.0.type = empty\nlxc.net.0.script.up = {hook}\n",
                              init_script="exec sleep 1000\n")
            started = lxcpath.start("hookc", unit_cgroup)
            assert started.status == 0, started
            ran = Path(f"{hook}.ran")
            text = ran.read_text() if ran.exists() else "hook did not run"
            started.stop()
            return text
        finally:
            lxcpath.remove()

    seen = nh.in_netns(body)
    # lxc.hook.version 0: arguments NAME net up TYPE, as liblxc passes them.
    assert seen.split() == ["hookc:", "hookc", "net", "up", "empty"], seen


def test_helper_phys_back_after_init_sigkill_and_cleanup(unit_cgroup: str) -> None:
    def body() -> dict[str, object]:
        index = nh.make_veth("uplink7", "uplink7peer")
        lxcpath = hu.Lxcpath(None)
        try:
            root = lxcpath.container(
                "physc", "lxc.net.0.type = phys\nlxc.net.0.link = uplink7\n"
                "lxc.net.0.name = eth3\nlxc.net.0.flags = up\n",
                init_script="ip link > /netseen\necho done >> /netseen\nexec sleep 1000\n")
            started = lxcpath.start("physc", unit_cgroup)
            assert started.status == 0, started
            seen = hu.wait_file(root / "netseen")
            moved_out = "uplink7" not in nh.links()
            started.stop()  # SIGKILL init: its namespace is pinned, the device not lost
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LXCSD_LXCPATH": str(lxcpath.base),
                   "LXCSD_RUN_DIR": str(lxcpath.run_dir),
                   "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
            cleanup = subprocess.run([sys.executable, "-m", "lxcsd.runtime.main", "cleanup",
                                      "physc"], env=env, capture_output=True, text=True)
            return {"seen": seen, "moved out": moved_out, "cleanup": cleanup.returncode,
                    "stderr": cleanup.stderr, "index": index, "after": nh.links(),
                    "run dir": sorted(os.listdir(lxcpath.run_dir))
                    if lxcpath.run_dir.exists() else []}
        finally:
            lxcpath.remove()

    got = nh.in_netns(body)
    assert "eth3" in got["seen"] and got["moved out"]
    assert got["cleanup"] == 0, got["stderr"]
    assert got["after"].get("uplink7") == got["index"]
    assert "physc" not in got["run dir"]
