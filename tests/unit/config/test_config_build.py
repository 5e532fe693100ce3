"""Folding lines into the model: liblxc's reset rules, networks, legacy translation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lxcsd.config import keys
from lxcsd.config.build import warnings as config_warnings
from lxcsd.config.load import check_path, load_path
from lxcsd.config.model import Container
from lxcsd.config.values import SIGRTMIN
from lxcsd.errors import ConfigError

Load = Callable[[str], Container]


@pytest.fixture
def load(tmp_path: Path) -> Load:
    def load(text: str) -> Container:
        path = tmp_path / "config"
        path.write_text(text)
        return load_path(str(path))

    return load


def fails(load: Load, text: str, message: str, line: int | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(text)
    assert message in str(info.value)
    if line is not None:
        assert info.value.line == line
    return info.value


def test_unset_keys_are_none_and_sections_exist(load: Load) -> None:
    c = load("")
    assert c.uts_name is None and c.signals.halt is None and c.console.path is None
    assert c.rootfs.path is None and c.mounts.entries == () and c.net == ()
    assert c.caps_drop == () and c.caps_keep is None and c.hooks == {} and c.sysctl == {}


@pytest.mark.parametrize("key, value, attribute, empty", [
    ("lxc.cap.drop", "sys_admin", "caps_drop", ()),
    ("lxc.mount.entry", "proc proc proc 0 0", "mounts.entries", ()),
    ("lxc.group", "web", "groups", ()),
    ("lxc.environment", "A=1", "environment", ()),
    ("lxc.apparmor.raw", "deny /x rw,", "apparmor.raw", ()),
    ("lxc.init.groups", "4", "init.groups", ()),
    ("lxc.cgroup2.devices.allow", "c 1:3 rwm", "cgroup2", ()),
    ("lxc.hook.start", "/bin/true", "hooks", {}),
    ("lxc.sysctl.kernel.domainname", "x", "sysctl", {}),
])
def test_an_empty_value_resets_a_list(load: Load, key: str, value: str, attribute: str,
                                      empty: object) -> None:
    def get(c: Container) -> object:
        obj: object = c
        for part in attribute.split("."):
            obj = getattr(obj, part)
        return obj

    assert get(load(f"{key} = {value}\n{key} = {value}\n")) not in ((), {})
    assert get(load(f"{key} = {value}\n{key} =\n")) == empty
    after = get(load(f"{key} = {value}\n{key} =\n{key} = {value}\n"))
    assert len(after) == 1  # type: ignore[arg-type]


def test_idmaps_reset(load: Load) -> None:
    maps = "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n"
    assert len(load(maps).idmaps) == 2
    assert load(maps + "lxc.idmap =\n").idmaps == ()
    assert [m.host_id for m in load(maps + "lxc.idmap =\n" + maps.replace("1000", "2000")).idmaps
            ] == [200000, 200000]


def test_scalars_take_the_last_value_and_reset_to_unset(load: Load) -> None:
    c = load("lxc.uts.name = a\nlxc.uts.name = b\nlxc.tty.max = 4\nlxc.tty.max =\n")
    assert c.uts_name == "b" and c.tty_max is None


def test_autodev_empty_means_off_as_in_liblxc(load: Load) -> None:
    assert load("lxc.autodev =\n").autodev is False
    assert load("").autodev is None


def test_signals(load: Load) -> None:
    c = load("lxc.signal.halt = SIGRTMIN+3\nlxc.signal.stop = 0\nlxc.signal.reboot = 1\n"
             "lxc.monitor.signal.pdeath = 0\n")
    assert c.signals.halt == SIGRTMIN + 3 and c.signals.stop is None and c.signals.reboot == 1
    assert c.monitor_signal_pdeath == 0  # 0 is meaningful there: no signal


def test_keyed_prefixes_replace_in_place_and_remove_by_name(load: Load) -> None:
    c = load("lxc.sysctl.a.b = 1\nlxc.sysctl.c.d = 2\nlxc.sysctl.a.b = 3\n"
             "lxc.prlimit.nofile = 10\nlxc.prlimit.nproc = 5\nlxc.prlimit.nofile =\n")
    assert list(c.sysctl.items()) == [("a.b", "3"), ("c.d", "2")]
    assert list(c.prlimit) == ["nproc"]


def test_cgroup_settings_keep_order_repeats_and_location(load: Load) -> None:
    c = load("lxc.cgroup2.devices.deny = a\nlxc.cgroup2.memory.max = 1G\n"
             "lxc.cgroup2.devices.allow = c 1:3 rwm\nlxc.cgroup2.devices.allow = c 1:5 rwm\n"
             "lxc.cgroup2.devices.allow =\nlxc.cgroup.memory.limit_in_bytes = 1G\n")
    assert [(s.key, s.value, s.line) for s in c.cgroup2] == [
        ("devices.deny", "a", 1), ("memory.max", "1G", 2)]
    assert [s.key for s in c.cgroup_v1] == ["memory.limit_in_bytes"]
    assert load("lxc.cgroup2.pids.max = 5\nlxc.cgroup2 =\n").cgroup2 == ()


def test_caps_drop_and_keep_share_one_list(load: Load) -> None:
    assert load("lxc.cap.keep = none\n").caps_keep == ()  # drop everything
    c = load("lxc.cap.keep = sys_admin net_admin\nlxc.cap.keep = none chown\n")
    assert c.caps_keep == ("chown",) and c.caps_drop == ()
    c = load("lxc.cap.drop = sys_admin\nlxc.cap.drop =\nlxc.cap.keep = chown\n")
    assert c.caps_keep == ("chown",)
    fails(load, "lxc.cap.drop = sys_admin\nlxc.cap.keep = chown\n", "mutually exclusive", 2)
    fails(load, "lxc.cap.keep = chown\nlxc.cap.drop = sys_admin\n", "mutually exclusive", 2)
    fails(load, "lxc.cap.drop = none\n", "only valid for lxc.cap.keep")


def test_caps_cleared_records_an_empty_value(load: Load) -> None:
    """An empty lxc.cap.drop/keep (or keep = none) clears what came before it, lxcsd's
    default drops included: the model records that it happened."""
    assert load("lxc.cap.drop = sys_admin\n").caps_cleared is False
    c = load("lxc.cap.drop =\nlxc.cap.drop = sys_admin\n")
    assert c.caps_cleared is True and c.caps_drop == ("sys_admin",)
    assert load("lxc.cap.keep =\n").caps_cleared is True
    assert load("lxc.cap.keep = none chown\n").caps_cleared is True


def test_namespaces(load: Load) -> None:
    c = load("lxc.namespace.clone = net ipc\nlxc.namespace.clone = net uts\n"
             "lxc.namespace.share.net = 42\n")
    assert c.namespace.clone == ("net", "ipc", "uts") and c.namespace.share == {"net": "42"}
    fails(load, "lxc.namespace.keep = net\nlxc.namespace.clone = ipc\n", "exclude each other")
    fails(load, "lxc.namespace.share.mount = x\n", "unknown namespace")


def test_mount_auto_groups_replace_each_other(load: Load) -> None:
    c = load("lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed\nlxc.mount.auto = sys:rw\n"
             "lxc.mount.auto = cgroup2:ro shmounts:/run/shared\n")
    auto = c.mounts.auto
    assert (auto.proc, auto.sys) == ("mixed", "rw")
    assert (auto.cgroup, auto.cgroup_mode, auto.cgroup_force) == ("cgroup2", "ro", True)
    assert auto.shmounts == ("/run/shared", "/dev/.lxc-mounts")
    assert load("lxc.mount.auto = proc\nlxc.mount.auto =\n").mounts.auto.proc is None
    fails(load, "lxc.mount.auto = proc:ro\n", "invalid filesystem to automount 'proc:ro'")


def test_hooks(load: Load) -> None:
    c = load("lxc.hook.start = /a\nlxc.hook.stop = /b\nlxc.hook.start = /c\n"
             "lxc.hook.version = 1\n")
    assert c.hooks == {"start": ("/a", "/c"), "stop": ("/b",)} and c.hook_version == 1
    assert load("lxc.hook.start = /a\nlxc.hook.stop = /b\nlxc.hook =\n").hooks == {}
    assert load("lxc.hook.start = /a\nlxc.hook.stop = /b\nlxc.hook.start =\n").hooks == {
        "stop": ("/b",)}


def test_networks_are_sorted_by_index_and_typed(load: Load) -> None:
    c = load("lxc.net.2.type = phys\nlxc.net.2.link = eth2\nlxc.net.0.type = veth\n"
             "lxc.net.0.ipv4.address = 10.0.0.2/24\nlxc.net.0.ipv4.address = 10.0.1.2/24\n"
             "lxc.net.00.mtu = 1400\n")
    assert [(n.index, n.type) for n in c.net] == [(0, "veth"), (2, "phys")]
    assert [a.address for a in c.net[0].ipv4_addresses] == ["10.0.0.2", "10.0.1.2"]
    assert c.net[0].mtu == 1400  # liblxc reads the index in base 10: 00 is 0


def test_setting_the_type_resets_the_network(load: Load) -> None:
    c = load("lxc.net.0.link = br0\nlxc.net.0.type = veth\n")
    assert c.net[0].link is None  # liblxc discards keys set before the type
    assert any("set before its type" in w.message for w in config_warnings(c))
    assert load("lxc.net.0.type = veth\nlxc.net.0.type =\n").net[0].type is None


def test_removing_networks(load: Load) -> None:
    text = "lxc.net.0.type = veth\nlxc.net.1.type = empty\n"
    assert [n.index for n in load(text + "lxc.net.0 =\n").net] == [1]
    assert load(text + "lxc.net =\n").net == ()
    assert load(text + "lxc.net.0.link =\n").net[0].link is None


def test_type_specific_keys_need_the_type(load: Load) -> None:
    fails(load, "lxc.net.0.type = macvlan\nlxc.net.0.veth.pair = v0\n",
          "lxc.net.0.veth.pair needs lxc.net.0.type = veth", 2)
    fails(load, "lxc.net.0.vlan.id = 5\n", "needs lxc.net.0.type = vlan", 1)
    fails(load, "lxc.net.0.type = veth\nlxc.net.0.ipvlan.mode = l2\n", "type = ipvlan")


def test_legacy_networks_are_numbered_like_lxc_update_config(load: Load) -> None:
    c = load("lxc.network.type = veth\nlxc.network.link = br0\nlxc.network.ipv4 = 10.0.0.2/24\n"
             "lxc.network.type = empty\nlxc.network.name = lo\n")
    assert [(n.index, n.type, n.link) for n in c.net] == [(0, "veth", "br0"), (1, "empty", None)]
    assert c.net[1].name == "lo" and c.net[0].ipv4_addresses[0].prefix == 24
    assert [e.canonical for e in c.entries][:3] == [
        "lxc.net.0.type", "lxc.net.0.link", "lxc.net.0.ipv4.address"]
    fails(load, "lxc.network.link = br0\n", "before any lxc.network.type")
    fails(load, "lxc.net.0.type = veth\nlxc.network.type = veth\n", "mixed with lxc.net.N")


def test_legacy_keys_translate_and_warn(load: Load) -> None:
    c = load("lxc.utsname = u\nlxc.aa_profile = unconfined\nlxc.se_context = ctx\n"
             "lxc.console = none\nlxc.seccomp = /p\nlxc.loglevel = 3\nlxc.logfile = /l\n"
             "lxc.init_uid = 5\nlxc.init_gid = 6\nlxc.rebootsignal = SIGTERM\n"
             "lxc.limit = \nlxc.devttydir = lxc\nlxc.syslog = daemon\n"
             "lxc.aa_allow_incomplete = 1\n")
    assert (c.uts_name, c.apparmor.profile, c.selinux.context) == ("u", "unconfined", "ctx")
    assert (c.console.path, c.seccomp.profile, c.log.level, c.log.file) == (
        "none", "/p", 3, "/l")
    assert (c.init.uid, c.init.gid, c.signals.reboot, c.tty_dir) == (5, 6, 15, "lxc")
    assert c.log.syslog == "daemon" and c.apparmor.allow_incomplete is True
    legacy = [w.key for w in config_warnings(c) if w.message.startswith("legacy key")]
    assert legacy[:3] == ["lxc.utsname", "lxc.aa_profile", "lxc.se_context"]


def test_cross_key_checks(load: Load) -> None:
    fails(load, "lxc.idmap = u 0 100000 65536\nlxc.idmap = u 1000 100000 1\n"
          "lxc.idmap = g 0 100000 65536\n", "overlap")
    fails(load, "lxc.idmap = u 0 100000 65536\n", "no 'g' mapping")
    fails(load, "lxc.cgroup.dir = a\nlxc.cgroup.dir.container = b\n"
          "lxc.cgroup.dir.monitor = c\n", "excludes")
    fails(load, "lxc.cgroup.dir.container = b\n", "must be set together")
    fails(load, "lxc.cgroup.dir = /abs\n", "may not be absolute")
    fails(load, "lxc.cgroup.dir = a/../../b\n", "walk upwards")


def test_unimplemented_keys_warn_once_per_key(load: Load, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    for name in ("lxc.mount.entry", "lxc.cap.drop"):  # both implemented by now
        monkeypatch.setattr(keys.EXACT[name], "implemented", False)
    c = load("lxc.mount.entry = proc proc proc 0 0\nlxc.mount.entry = sys sys sysfs 0 0\n"
             "lxc.cap.drop =\n")
    messages = [(w.key, w.line) for w in config_warnings(c) if "not implement" in w.message]
    assert messages == [("lxc.mount.entry", 1)]  # a reset line alone changes nothing


def test_warnings_follow_the_implemented_flag(load: Load, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys.EXACT["lxc.uts.name"], "implemented", True)
    assert not any(w.key == "lxc.uts.name" for w in config_warnings(load("lxc.uts.name = x\n")))


def test_check_collects_errors_and_keeps_the_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("lxc.net.0.type = veth\nlxc.net.0.veth.pair = a-very-long-name-x\n"
                    "lxc.net.0.link = br0\n")
    container, errors = check_path(str(path))
    assert [e.line for e in errors] == [2]
    assert container is not None and container.net[0].link == "br0"
