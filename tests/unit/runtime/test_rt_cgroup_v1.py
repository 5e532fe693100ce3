"""lxcsd.runtime.cgroup_v1, the pure parts: which hierarchies, which mount reaches them."""

from __future__ import annotations

from lxcsd.runtime import cgroup_v1

# This host's /proc/self/cgroup (hybrid: v1 controllers, cgroup2 with the rest).
PROC_CGROUP = """9:name=systemd:/
8:pids:/
4:memory:/process_api/71f6
2:cpu,cpuacct:/
0::/
"""
MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 /process_api /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
35 30 0:31 /other /mnt/pids rw - cgroup cgroup rw,pids
"""


def test_hierarchies_are_the_v1_lines() -> None:
    found = cgroup_v1.hierarchies(PROC_CGROUP)
    assert [(h.controllers, h.path) for h in found] == [
        ("name=systemd", "/"), ("pids", "/"), ("memory", "/process_api/71f6"),
        ("cpu,cpuacct", "/")]
    assert cgroup_v1.hierarchies("0::/system.slice/x.service\n") == []  # cgroup2 only


def test_options_select_the_hierarchy() -> None:
    assert cgroup_v1.Hierarchy("cpu,cpuacct", "/").options() == [("cpu", None),
                                                                 ("cpuacct", None)]
    assert cgroup_v1.Hierarchy("name=systemd", "/").options() == [("none", None),
                                                                  ("name", "systemd")]


def test_mount_for_matches_controllers_and_root() -> None:
    h = {h.controllers: h for h in cgroup_v1.hierarchies(PROC_CGROUP)}
    assert cgroup_v1.mount_for(h["cpu,cpuacct"], MOUNTINFO)[:2] == \
        ("/sys/fs/cgroup/cpu,cpuacct", "/")
    assert cgroup_v1.mount_for(h["memory"], MOUNTINFO)[:2] == \
        ("/sys/fs/cgroup/memory", "/process_api")
    assert cgroup_v1.mount_for(h["name=systemd"], MOUNTINFO)[:2] == \
        ("/sys/fs/cgroup/systemd", "/")  # xattr is a flag, not a controller
    # Mounted only at a subtree that does not hold our cgroup: a detached mount is used.
    assert cgroup_v1.mount_for(h["pids"], MOUNTINFO) is None
    assert cgroup_v1.mount_for(cgroup_v1.Hierarchy("cpu", "/"), MOUNTINFO) is None
