"""lxcsd.runtime.compiler: what a start does, decided from real config files (no system calls)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcsd import linux, paths
from lxcsd.config.load import load_path
from lxcsd.errors import ConfigError
from lxcsd.runtime import caps, lsm
from lxcsd.runtime import compiler as p
from lxcsd.runtime.plan import StartPlan

# A host with every cgroup2 controller and no security module (tests that need others
# pass their own).
HOST = p.Host(controllers={"cpu", "cpuset", "io", "memory", "pids", "hugetlb"},
              lsm=lsm.Host())


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "c1" / "rootfs"
    (root / "sbin").mkdir(parents=True)
    (root / "sbin/init").write_text("#!/bin/sh\n")
    (root / "sbin/init").chmod(0o755)
    return root


def make(rootfs: Path, text: str, environ: dict[str, str] | None = None,
         host: p.Host = HOST) -> StartPlan:
    config = rootfs.parent / "config"
    config.write_text(f"lxc.rootfs.path = dir:{rootfs}\n" + text)
    return p.make_plan("c1", load_path(str(config)), environ or {}, datadir=paths.datadir(),
                       host=host)


def fails(rootfs: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        make(rootfs, text)
    return err.value


def test_defaults(rootfs: Path) -> None:
    plan = make(rootfs, "")
    assert plan.argv == ["/sbin/init"]
    assert plan.env == {"container": "lxc"}
    assert plan.rootfs_mount == str(rootfs)
    assert plan.monitor_dir == "lxc.monitor.c1" and plan.payload_dir == "lxc.payload.c1"
    assert plan.seccomp_profile == f"{paths.datadir()}/common.seccomp"
    assert plan.seccomp_policy is not None and plan.seccomp_policy.rules  # parsed here
    assert plan.net_kind == "empty" and plan.console and not plan.userns
    flags = plan.clone_flags
    for flag in (linux.CLONE_NEWNS, linux.CLONE_NEWPID, linux.CLONE_NEWUTS, linux.CLONE_NEWIPC,
                 linux.CLONE_NEWNET, linux.CLONE_NEWCGROUP):
        assert flags & flag
    assert not flags & linux.CLONE_NEWUSER
    assert 16 not in plan.keep_caps and 21 in plan.keep_caps  # sys_module dropped (LXC)
    assert plan.keep_caps == _numbers(p.DEFAULT_CAP_RETAIN + ("net_admin",))


def test_init_env_and_ttys(rootfs: Path) -> None:
    (rootfs / "bin").mkdir()
    (rootfs / "bin/app").write_bytes(b"")
    (rootfs / "bin/app").chmod(0o755)
    plan = make(rootfs, "lxc.execute.cmd = /bin/app --flag\nlxc.tty.max = 2\n"
                "lxc.environment = A=1\nlxc.environment = HOME\nlxc.environment = MISSING\n"
                "lxc.environment.runtime = B=2\n", environ={"HOME": "/root"})
    assert plan.argv == ["/bin/app", "--flag"]
    assert plan.env == {"container": "lxc", "container_ttys": "tty1 tty2", "A": "1",
                        "HOME": "/root", "B": "2"}


def test_network_kinds(rootfs: Path) -> None:
    assert make(rootfs, "lxc.net.0.type = none\n").net_kind == "none"
    none = make(rootfs, "lxc.net.0.type = none\n").clone_flags
    assert not none & linux.CLONE_NEWNET
    assert make(rootfs, "lxc.net.0.type = empty\n").net_kind == "empty"
    assert make(rootfs, "lxc.net.0.type = veth\nlxc.net.0.link = br0\n").net_kind == "netlink"


def test_namespace_keys(rootfs: Path) -> None:
    plan = make(rootfs, "lxc.namespace.keep = net ipc\n")
    assert not plan.clone_flags & (linux.CLONE_NEWNET | linux.CLONE_NEWIPC)
    assert plan.net_kind == "host"
    plan = make(rootfs, "lxc.namespace.share.uts = 1234\n")
    assert not plan.clone_flags & linux.CLONE_NEWUTS and plan.share == {"uts": "1234"}
    err = fails(rootfs, "lxc.namespace.keep = mnt\n")
    assert err.key == "lxc.namespace.keep" and err.line == 2


def test_idmap(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subids = {"u": rootfs.parent / "subuid", "g": rootfs.parent / "subgid"}
    for path in subids.values():
        path.write_text("root:100000:65536\n")
    monkeypatch.setattr(p.os, "getuid", lambda: 0)
    monkeypatch.setattr(p.os, "getgid", lambda: 0)
    from lxcsd.runtime import idmap

    monkeypatch.setattr(idmap, "SUBID_FILES", {k: str(v) for k, v in subids.items()})
    plan = make(rootfs, "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n")
    assert plan.userns and (plan.root_uid, plan.root_gid) == (100000, 100000)
    assert plan.uids == [(0, 100000, 65536)] and plan.devpts_gid == 5
    plan = make(rootfs, "lxc.idmap = u 0 100000 1\nlxc.idmap = g 0 100000 1\n")
    assert plan.devpts_gid is None  # gid 5 unmapped: devpts without gid=
    err = fails(rootfs, "lxc.idmap = u 1 100000 10\nlxc.idmap = g 1 100000 10\n")
    assert err.key == "lxc.idmap" and "root" in err.message
    err = fails(rootfs, "lxc.idmap = u 0 200000 65536\nlxc.idmap = g 0 100000 65536\n")
    assert (err.key, err.line) == ("lxc.idmap", 3)  # newuidmap's rule, checked up front
    assert "200000-265535 are not delegated to root" in err.message


def test_cgroup_keys(rootfs: Path) -> None:
    plan = make(rootfs, "lxc.cgroup2.memory.max = 64M\nlxc.cgroup2.pids.max = 10\n"
                "lxc.cgroup2.cgroup.max.depth = 2\nlxc.cgroup2.memory.high = 32M\n")
    assert plan.controllers == ["memory", "pids"]  # cgroup.* needs no controller
    assert [s.key for s in plan.cgroup_settings][:2] == ["memory.max", "pids.max"]
    plan = make(rootfs, "lxc.cgroup.dir = lxc/ct\n")
    assert plan.payload_dir == "lxc/ct/lxc.payload.c1"
    assert plan.monitor_dir == "lxc/ct/lxc.monitor.c1"
    plan = make(rootfs, "lxc.cgroup.dir.container = a\nlxc.cgroup.dir.monitor = b\n")
    assert (plan.payload_dir, plan.monitor_dir) == ("a", "b")
    plan = make(rootfs, "lxc.cgroup.memory.limit_in_bytes = 1G\n")  # cgroup v1: translated
    assert [(s.key, s.value) for s in plan.cgroup_settings] == [("memory.max", "1G")]
    (warning,) = plan.warnings
    assert (warning.key, warning.line) == ("lxc.cgroup.memory.limit_in_bytes", 2)
    assert "applied as lxc.cgroup2.memory.max = 1G" in warning.message
    make(rootfs, "lxc.cgroup.devices.allow = c 1:3 rwm\n")  # left to the unit's DeviceAllow=
    plan = make(rootfs, "lxc.cgroup2.devices.allow = c 1:3 rwm\nlxc.cgroup2.pids.max = 5\n")
    assert [s.key for s in plan.cgroup_settings] == ["pids.max"]  # devices: the generator's
    assert plan.controllers == ["pids"]


def _numbers(names: tuple[str, ...]) -> frozenset[int]:
    return frozenset(caps.NUMBERS[name] for name in names)


def test_caps_and_seccomp(rootfs: Path) -> None:
    plan = make(rootfs, "lxc.cap.keep = chown kill\n")
    assert plan.keep_caps == frozenset({0, 5})  # keep: exactly its list, defaults or not
    assert make(rootfs, "lxc.cap.keep = chown sys_rawio\n").keep_caps == {0, 17}
    policy = rootfs.parent / "p.seccomp"
    policy.write_text("2\ndenylist\nkexec_load errno 1\n")
    assert make(rootfs, f"lxc.seccomp.profile = {policy}\n").seccomp_profile == str(policy)


def test_cap_drop_adds_to_the_default_drops(rootfs: Path) -> None:
    """As LXC reads a config after lxc.include = common.conf: drop lines add, an empty
    value clears the defaults too."""
    default = make(rootfs, "").keep_caps
    # Debian's lxc-create configs and the old lxcsd templates: a subset of the defaults.
    plan = make(rootfs, "lxc.cap.drop = sys_module mac_admin mac_override sys_time\n")
    assert plan.keep_caps == default
    assert caps.NUMBERS["sys_rawio"] not in plan.keep_caps  # not replaced (the old hole)
    plan = make(rootfs, "lxc.cap.drop = net_raw\n")
    assert plan.keep_caps == default - {caps.NUMBERS["net_raw"]}
    for dangerous in ("sys_rawio", "syslog", "bpf", "perfmon", "sys_module", "sys_time",
                      "mac_admin", "mac_override", "sys_pacct", "wake_alarm", "block_suspend",
                      "audit_read", "checkpoint_restore", "ipc_lock"):
        assert caps.NUMBERS[dangerous] not in default, dangerous
    plan = make(rootfs, "lxc.cap.drop = sys_admin\nlxc.cap.drop =\nlxc.cap.drop = mknod\n")
    assert plan.keep_caps == frozenset(range(caps.last_cap() + 1)) - {caps.NUMBERS["mknod"]}
    assert len(make(rootfs, "lxc.cap.drop =\n").keep_caps) == caps.last_cap() + 1


def test_net_admin_only_with_a_network_namespace(rootfs: Path) -> None:
    net_admin = caps.NUMBERS["net_admin"]
    assert net_admin in make(rootfs, "").keep_caps  # own (empty) network namespace
    assert net_admin not in make(rootfs, "lxc.net.0.type = none\n").keep_caps  # the host's
    assert net_admin not in make(rootfs, "lxc.namespace.keep = net\n").keep_caps
    assert net_admin in make(rootfs, "lxc.net.0.type = none\nlxc.cap.drop =\n").keep_caps


def test_documented_default_drops_match_the_plan() -> None:
    from lxcsd.config.keys import CAP_DROP_DEFAULT

    dropped = [n for n in caps.NAMES if n not in p.DEFAULT_CAP_RETAIN + ("net_admin",)]
    assert " ".join(dropped) + " and any newer" in CAP_DROP_DEFAULT


def test_rootfs_is_required(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("lxc.uts.name = x\n")
    with pytest.raises(ConfigError) as err:
        p.make_plan("c1", load_path(str(config)), {}, host=HOST)
    assert err.value.key == "lxc.rootfs.path" and "no root file system" in err.value.message


def test_missing_rootfs_dir_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("lxc.uts.name = x\nlxc.rootfs.path = /nonexistent/rootfs\n")
    with pytest.raises(ConfigError) as err:
        p.make_plan("c1", load_path(str(config)), {}, host=HOST)
    assert (err.value.line, err.value.key) == (2, "lxc.rootfs.path")
    assert str(err.value).startswith(f"{config}:2: lxc.rootfs.path: /nonexistent/rootfs")


def test_overlay_needs_a_mount_point(rootfs: Path) -> None:
    config = rootfs.parent / "config"
    config.write_text(f"lxc.rootfs.path = overlay:{rootfs}:{rootfs.parent}/upper\n")
    with pytest.raises(ConfigError) as err:
        p.make_plan("c1", load_path(str(config)), {}, host=HOST)
    assert err.value.key == "lxc.rootfs.mount"
    config.write_text(f"lxc.rootfs.path = overlay:{rootfs}:{rootfs.parent}/upper\n"
                      f"lxc.rootfs.mount = {rootfs.parent}/mnt\n")
    plan = p.make_plan("c1", load_path(str(config)), {}, host=HOST)
    assert plan.rootfs.kind == "overlay" and plan.rootfs_mount == f"{rootfs.parent}/mnt"


def test_arch_personality(rootfs: Path) -> None:
    assert make(rootfs, "lxc.arch = i686\n").personality == linux.PER_LINUX32
    assert make(rootfs, "lxc.arch = x86_64\n").personality is None
    assert make(rootfs, "").personality is None


def test_time_offsets(rootfs: Path) -> None:
    plan = make(rootfs, "lxc.time.offset.boot = 2h\nlxc.time.offset.monotonic = -1500ms\n")
    assert plan.time_offsets == "monotonic -2 500000000\nboottime 7200 0\n"
    assert plan.clone_flags & linux.CLONE_NEWTIME
    assert not make(rootfs, "").clone_flags & linux.CLONE_NEWTIME


def test_cgroup_mount_needs_a_cgroup_namespace(rootfs: Path) -> None:
    err = fails(rootfs, "lxc.mount.auto = cgroup:mixed\nlxc.namespace.keep = cgroup\n")
    assert err.key == "lxc.mount.auto" and "host's whole cgroup tree" in str(err)
    make(rootfs, "lxc.mount.auto = proc:mixed\nlxc.namespace.keep = cgroup\n")  # no mount
    make(rootfs, "lxc.mount.auto = cgroup:mixed\n")
