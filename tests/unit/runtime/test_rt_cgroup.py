"""cgroup2 helpers on files that stand in for a cgroup directory (the real cgroup2 tree is
exercised in tests/integration/primitives/test_prim_cgroup.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxcsd.errors import LxcsdError
from lxcsd.runtime import cgroup

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
MOUNTINFO_PURE = """\
24 1 0:22 / /run rw - tmpfs tmpfs rw
29 23 0:25 /lxc.payload.c1 /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
50 24 0:25 / /run/with\\040space rw - cgroup2 cgroup2 rw
"""


def test_names() -> None:
    assert cgroup.monitor_name("c1") == "lxc.monitor.c1"
    assert cgroup.payload_name("c1") == "lxc.payload.c1"


@pytest.mark.parametrize("path", ["/abs", "a/../b", "..", "", "/", "./."])
def test_check_relative_refuses(path: str) -> None:
    with pytest.raises(LxcsdError) as err:
        cgroup.check_relative(path)
    assert "must be a relative path without '..'" in str(err.value)


def test_check_relative_cleans() -> None:
    assert cgroup.check_relative("lxc//c1/./") == "lxc/c1"


def test_cgroup2_mount(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert cgroup.cgroup2_mount(str(info)) == ("/sys/fs/cgroup/unified", "/")
    info.write_text(MOUNTINFO_PURE)  # /sys/fs/cgroup preferred; escapes decoded
    assert cgroup.cgroup2_mount(str(info)) == ("/sys/fs/cgroup", "/lxc.payload.c1")
    info.write_text(MOUNTINFO.splitlines()[0] + "\n")
    with pytest.raises(LxcsdError, match="no cgroup2 file system is mounted"):
        cgroup.cgroup2_mount(str(info))


def test_own_cgroup_dir_of_self() -> None:
    path = cgroup.own_cgroup_dir()
    assert os.path.isfile(os.path.join(path, "cgroup.procs"))
    assert str(os.getpid()) in Path(path, "cgroup.procs").read_text().split()


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    d = tmp_path / "cg"
    d.mkdir()
    (d / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for name in ("cgroup.subtree_control", "cgroup.procs", "cgroup.threads", "memory.max",
                 "memory.oom.group"):
        (d / name).write_text("")
    return d


def test_enable_controllers_reports_missing(fake: Path) -> None:
    missing = cgroup.enable_controllers(str(fake), ["memory", "pids", "hugetlb", "memory"])
    assert missing == ["hugetlb"]
    assert (fake / "cgroup.subtree_control").read_text() == "+memory +pids"


def test_enable_nothing_available_writes_nothing(fake: Path) -> None:
    (fake / "cgroup.controllers").write_text("\n")
    (fake / "cgroup.subtree_control").chmod(0o444)
    assert cgroup.enable_controllers(str(fake), ["memory"]) == ["memory"]


def test_write_settings_and_errors(fake: Path) -> None:
    cgroup.write_settings(str(fake), [("memory.max", "512M")])
    assert (fake / "memory.max").read_text() == "512M"
    with pytest.raises(LxcsdError) as err:
        cgroup.write(str(fake), "pids.max", "10")
    assert f"cannot open {fake}/pids.max" in str(err.value)
    assert "the controller is not enabled here or unknown" in str(err.value)
    with pytest.raises(LxcsdError, match="invalid cgroup file name '../x'"):
        cgroup.write(str(fake), "../x", "1")


def test_create_and_remove(tmp_path: Path) -> None:
    path = cgroup.create(str(tmp_path), "lxc.payload.c1")
    assert os.path.isdir(path)
    with pytest.raises(LxcsdError, match="already exists"):
        cgroup.create(str(tmp_path), "lxc.payload.c1")
    assert cgroup.create(str(tmp_path), "lxc.payload.c1", exist_ok=True) == path
    os.makedirs(os.path.join(path, "init.scope", "deeper"))
    cgroup.remove(path)
    assert not os.path.exists(path)
    cgroup.remove(path)  # gone already: fine
    with pytest.raises(LxcsdError):
        cgroup.create(str(tmp_path), "../escape")


def test_chown_delegated(fake: Path) -> None:
    files = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "memory.oom.group",
             "memory.reclaim")
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    changed = cgroup.chown_delegated(str(fake), 100000, 100000, files)
    assert changed == [str(fake)] + [str(fake / n) for n in files[:4]]  # no memory.reclaim
    assert all(os.stat(p).st_uid == 100000 for p in changed)
    assert os.stat(fake / "memory.max").st_uid == os.geteuid()


def test_delegate_files(tmp_path: Path) -> None:
    f = tmp_path / "delegate"
    f.write_text("cgroup.procs\ncgroup.threads\nmemory.oom.group\n")
    assert cgroup.delegate_files(str(f)) == ("cgroup.procs", "cgroup.threads",
                                             "memory.oom.group")
    assert cgroup.delegate_files(str(tmp_path / "none")) == cgroup.DEFAULT_DELEGATE
