"""lxc.cgroup.* (cgroup v1) keys: translated to cgroup2 by the table in lxcsd.config.keys, or
refused naming why (configs written for LXC on cgroup v1 hosts; the values follow the
kernel's cgroup-v2.rst and crun's conversions). The VM tier checks a translated limit holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcsd.config.cgroups import CGROUP_V1, translate_cgroup_v1
from lxcsd.config.load import check_path
from lxcsd.config.model import CgroupSetting


def translate(**v1: str) -> tuple[dict[str, str], list[str], list[str]]:
    settings = tuple(CgroupSetting(key=key.replace("__", "."), value=value, path="c", line=n)
                     for n, (key, value) in enumerate(v1.items(), 1))
    pairs, errors = translate_cgroup_v1(settings)
    return ({s.key: s.value for s, _ in pairs}, [w.message for _, w in pairs],
            [f"{e.line}: {e.key}: {e.message}" for e in errors])


@pytest.mark.parametrize(("v1", "v2", "value", "expected"), [
    ("memory.limit_in_bytes", "memory.max", "256M", "256M"),
    ("memory.limit_in_bytes", "memory.max", "-1", "max"),
    ("memory.soft_limit_in_bytes", "memory.low", "1073741824", "1073741824"),
    ("cpu.shares", "cpu.weight", "1024", "39"),  # the v1 default is close to v2's 100/256
    ("cpu.shares", "cpu.weight", "2", "1"),
    ("cpu.shares", "cpu.weight", "262144", "10000"),
    ("cpuset.cpus", "cpuset.cpus", "0-1", "0-1"),
    ("pids.max", "pids.max", "max", "max"),
    ("blkio.weight", "io.weight", "500", "4950"),
    ("blkio.throttle.read_bps_device", "io.max", "8:0 1048576", "8:0 rbps=1048576"),
    ("blkio.throttle.write_iops_device", "io.max", "8:16 100", "8:16 wiops=100"),
    ("freezer.state", "cgroup.freeze", "FROZEN", "1"),
    ("hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.max", "4M", "4M"),
])
def test_translations(v1: str, v2: str, value: str, expected: str) -> None:
    settings, warnings, errors = translate(**{v1.replace(".", "__"): value})
    assert (settings, errors) == ({v2: expected}, [])
    assert warnings == [f"cgroup v1 key, applied as lxc.cgroup2.{v2} = {expected}"]


def test_combined_files() -> None:
    settings, _, _ = translate(cpu__cfs_quota_us="50000", cpu__cfs_period_us="100000")
    assert settings == {"cpu.max": "50000 100000"}
    assert translate(cpu__cfs_quota_us="-1")[0] == {"cpu.max": "max 100000"}
    settings, _, errors = translate(memory__limit_in_bytes="1G",
                                    memory__memsw__limit_in_bytes="1536M")
    assert settings == {"memory.max": "1G", "memory.swap.max": str(512 << 20)} and not errors
    _, _, errors = translate(memory__memsw__limit_in_bytes="1G")
    assert errors == ["1: lxc.cgroup.memory.memsw.limit_in_bytes: memory.memsw.limit_in_bytes "
                      "needs a memory.limit_in_bytes to translate"]


def test_refusals_say_why() -> None:
    _, _, errors = translate(net_cls__classid="0x100001", memory__swappiness="10",
                             memory__kmem__limit_in_bytes="1G", foo__bar="1",
                             cpu__shares="lots", memory__limit_in_bytes="12 parsecs")
    assert errors == [
        "1: lxc.cgroup.net_cls.classid: cgroup v1 key with no cgroup2 equivalent: cgroup2 "
        "has no net_cls; nftables matches cgroup2 paths (socket cgroupv2)",
        "2: lxc.cgroup.memory.swappiness: cgroup v1 key with no cgroup2 equivalent: cgroup2 "
        "has no per-cgroup swappiness",
        "3: lxc.cgroup.memory.kmem.limit_in_bytes: cgroup v1 key with no cgroup2 equivalent: "
        "kernel memory is counted in memory.max under cgroup2",
        "4: lxc.cgroup.foo.bar: cgroup v1 key with no cgroup2 equivalent: lxcsd knows no "
        "cgroup2 equivalent",
        "5: lxc.cgroup.cpu.shares: cpu.shares must be an integer, not 'lots'",
        "6: lxc.cgroup.memory.limit_in_bytes: '12 parsecs' is not a size in bytes"]


def test_devices_stay_with_the_generator() -> None:
    assert translate(devices__allow="c 1:3 rwm", devices__deny="a") == ({}, [], [])
    assert all(not v1.startswith("devices.") for v1 in CGROUP_V1)


def test_cgroup2_values_the_kernel_would_refuse_are_config_errors(tmp_path: Path) -> None:
    """An invalid limit is reported with file:line when the config is read (check), not
    first by the kernel at start."""
    config = tmp_path / "config"
    config.write_text("lxc.cgroup2.memory.max = 512M\nlxc.cgroup2.pids.max = max\n"
                      "lxc.cgroup2.cpu.max = 50000 100000\nlxc.cgroup2.cpuset.cpus = 0-1,3\n"
                      "lxc.cgroup2.memory.high = lots\nlxc.cgroup2.cpu.weight = 0\n"
                      "lxc.cgroup2.io.bfq.weight = anything\n")
    _, errors = check_path(str(config))
    assert [(e.line, e.key, e.message) for e in errors] == [
        (5, "lxc.cgroup2.memory.high", "'lots' is not a size in bytes"),
        (6, "lxc.cgroup2.cpu.weight", "'0' is not an integer from 1 to 10000")]
