"""cgroup2 leaves on this host's real cgroup2 tree (/sys/fs/cgroup/unified here, with only
hugetlb), and a container in its cgroup namespace seeing only its payload cgroup."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lxcsd.errors import LxcsdError
from lxcsd.runtime import cgroup
from tests.integration.primitives import harness as h


def test_leaves_move_enable_write_remove(scratch_cgroup: str) -> None:
    monitor = cgroup.create(scratch_cgroup, cgroup.monitor_name("c1"))
    payload = cgroup.create(scratch_cgroup, cgroup.payload_name("c1"))
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    try:
        cgroup.move(pid, payload)
        assert cgroup.procs(payload) == [pid]
        assert cgroup.own_cgroup(pid).endswith("/lxc.payload.c1")
        assert cgroup.own_cgroup_dir(pid) == payload
        # no memory/pids here (hybrid host): reported, not fatal
        missing = cgroup.enable_controllers(scratch_cgroup, ["memory", "pids"])
        assert missing == ["memory", "pids"]
        with pytest.raises(LxcsdError) as err:
            cgroup.write_settings(payload, [("memory.max", "64M")])
        assert f"cannot open {payload}/memory.max" in str(err.value)
        cgroup.write(payload, "cgroup.max.descendants", "10")
        assert Path(payload, "cgroup.max.descendants").read_text() == "10\n"
        with pytest.raises(LxcsdError) as err:
            cgroup.remove(payload)
        assert "processes are still in it" in str(err.value)
        assert cgroup.kill_all(payload)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    cgroup.remove(payload)
    cgroup.remove(monitor)
    assert os.listdir(scratch_cgroup) == [n for n in os.listdir(scratch_cgroup)
                                          if not n.startswith("lxc.")]


def test_chown_delegated_real_files(scratch_cgroup: str) -> None:
    payload = cgroup.create(scratch_cgroup, "lxc.payload.c2")
    changed = cgroup.chown_delegated(payload, 100000, 100000)
    assert payload in changed and os.path.join(payload, "cgroup.procs") in changed
    assert os.path.join(payload, "cgroup.subtree_control") in changed
    for path in changed:
        assert os.stat(path).st_uid == 100000
    assert os.stat(os.path.join(payload, "cgroup.stat")).st_uid == 0  # not delegated


def test_container_sees_its_cgroup_namespace(bb_root: Path, scratch_cgroup: str) -> None:
    payload = cgroup.create(scratch_cgroup, "lxc.payload.c3")
    os.mkdir(os.path.join(payload, "made-by-host"))
    script = "grep ^0:: /proc/self/cgroup; ls /sys/fs/cgroup | grep made-by-host; mkdir " \
             "/sys/fs/cgroup/init.scope && echo $$ > /sys/fs/cgroup/init.scope/cgroup.procs" \
             " && grep ^0:: /proc/self/cgroup"
    result = h.run(h.Spec(rootfs=str(bb_root), argv=["/bin/sh", "-c", script],
                          build=h.busybox_build, cgroup_dir=payload)).check()
    assert result.lines[:2] == ["0::/", "made-by-host"]
    assert result.lines[-1] == "0::/init.scope"
    assert os.path.isdir(os.path.join(payload, "init.scope"))


def test_unprivileged_container_delegated_cgroup(mapped_root: Path, scratch_cgroup: str,
                                                 subids: list[str]) -> None:
    payload = cgroup.create(scratch_cgroup, "lxc.payload.c4")
    cgroup.chown_delegated(payload, 100000, 100000)
    script = "mkdir /sys/fs/cgroup/init.scope && echo $$ > " \
             "/sys/fs/cgroup/init.scope/cgroup.procs && grep ^0:: /proc/self/cgroup"
    result = h.run(h.Spec(rootfs=str(mapped_root), argv=["/bin/sh", "-c", script],
                          build=h.busybox_build, cgroup_dir=payload,
                          userns=h.DEFAULT_MAP)).check()
    assert result.lines[-1] == "0::/init.scope"
    assert os.stat(os.path.join(payload, "init.scope")).st_uid == 100000
