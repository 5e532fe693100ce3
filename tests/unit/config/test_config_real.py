"""Real-shaped configs: what LXC's templates write (tests/unit/config/data/), and every config
Debian's lxc package ships in /usr/share/lxc/config."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from lxcsd.config import reader
from lxcsd.config.build import build
from lxcsd.config.build import warnings as config_warnings
from lxcsd.config.load import load_path
from lxcsd.config.model import Container, to_data
from lxcsd.config.values import MS_RDONLY, MS_REC, MS_SLAVE, SIGRTMIN

DATA = Path(__file__).parent / "data"
LXC_CONFIG = "/usr/share/lxc/config"
needs_lxc = pytest.mark.skipif(not os.path.isdir(LXC_CONFIG), reason="Debian's lxc not installed")


def data(name: str) -> Container:
    return load_path(str(DATA / name))


def real(container: Container) -> list[str]:
    """Warnings other than "not implemented yet" (those change as lxcsd grows)."""
    return [str(w) for w in config_warnings(container) if "not implement" not in w.message]


@needs_lxc
@pytest.mark.parametrize("path", sorted(glob.glob(f"{LXC_CONFIG}/*.conf")))
def test_every_shipped_lxc_config_parses(path: str) -> None:
    container = load_path(path)
    assert real(container) == []


@needs_lxc
def test_common_conf_as_lxc_reads_it() -> None:
    c = load_path(f"{LXC_CONFIG}/common.conf")
    assert (c.tty_dir, c.pty_max, c.tty_max) == ("lxc", 1024, 4)
    assert c.caps_drop == ("mac_admin", "mac_override", "sys_time", "sys_module", "sys_rawio")
    assert c.hooks == {"clone": ("/usr/share/lxc/hooks/clonehostname",)}
    assert [s.value for s in c.cgroup2][:3] == ["a", "c *:* m", "b *:* m"]
    assert (c.mounts.auto.cgroup, c.mounts.auto.cgroup_mode, c.mounts.auto.proc,
            c.mounts.auto.sys) == ("cgroup", "mixed", "mixed", "mixed")
    assert c.seccomp.profile == f"{LXC_CONFIG}/common.seccomp"


@needs_lxc
def test_busybox_template_output() -> None:
    c = data("busybox.conf")
    assert real(c) == []
    assert c.uts_name == "bb"  # the template writes it quoted
    assert (c.rootfs.kind, c.rootfs.path) == ("dir", "/var/lib/lxc/bb/rootfs")
    assert (c.signals.halt, c.signals.reboot) == (10, 15)
    assert (c.autodev, c.tty_max, c.pty_max) == (True, 5, 1)
    assert c.caps_drop == ("sys_module", "mac_admin", "mac_override", "sys_time")
    assert (c.mounts.auto.proc, c.mounts.auto.sys, c.mounts.auto.cgroup_mode) == (
        "mixed", "ro", "mixed")
    shm, mqueue, lib = c.mounts.entries[:3]
    assert (shm.source, shm.target, shm.fstype, shm.opts.create) == ("shm", "dev/shm",
                                                                     "tmpfs", "dir")
    assert mqueue.opts.optional and lib.opts.bind and lib.opts.flags == MS_RDONLY
    assert [(n.type, n.link, n.up) for n in c.net] == [("veth", "lxcbr0", True)]
    assert (c.apparmor.profile, c.apparmor.allow_nesting) == ("generated", True)


@needs_lxc
def test_download_template_output() -> None:
    c = data("download-debian.conf")
    assert real(c) == []
    assert (c.uts_name, c.arch) == ("deb12", "linux64")
    assert c.net[0].hwaddr == "00:16:3e:9a:51:0c"
    assert len(c.cgroup2) == 13 and c.mounts.auto.proc == "mixed"  # from common.conf
    assert c.idmaps == ()


@needs_lxc
def test_unprivileged_config_with_userns_conf() -> None:
    c = data("download-debian-unprivileged.conf")
    assert real(c) == []
    assert [m.as_tuple() for m in c.idmaps] == [("u", 0, 100000, 65536), ("g", 0, 100000, 65536)]
    # userns.conf clears what common.conf set for privileged containers.
    assert c.cgroup2 == () and c.cgroup_v1 == () and c.caps_drop == () and c.caps_keep is None
    assert c.tty_dir is None and c.mounts.auto.sys == "rw" and c.mounts.auto.proc == "mixed"
    assert c.net[0].hwaddr == "00:16:3e:xx:xx:xx"  # x: random at each start


@needs_lxc
def test_debian_template_output() -> None:
    c = data("debian-template.conf")
    assert real(c) == []
    assert (c.tty_max, c.pty_max, c.arch, c.uts_name) == (4, 1024, "amd64", "deb")
    assert c.tty_dir is None  # debian.common.conf clears common.conf's lxc.tty.dir
    assert [s.value for s in c.cgroup_v1][-4:] == ["c 254:0 rm", "c 10:200 rwm",
                                                   "c 10:228 rwm", "c 10:232 rwm"]


@needs_lxc
def test_legacy_config_reads_as_lxc_update_config_would_write_it() -> None:
    c = data("legacy-2.0.conf")
    assert (c.uts_name, c.tty_max, c.pty_max) == ("old", 4, 1024)
    assert (c.rootfs.kind, c.rootfs.path) == ("dir", "/var/lib/lxc/old/rootfs")
    assert (c.signals.halt, c.signals.stop) == (SIGRTMIN + 3, 9)
    assert c.apparmor.profile == "unconfined" and c.mounts.fstab == "/var/lib/lxc/old/fstab"
    assert (c.log.level, c.log.file) == (1, "/var/log/lxc/old.log")
    assert c.init.cmd == ("/sbin/init", "--log-target=console")
    assert (c.prlimit["nofile"].soft, c.prlimit["nofile"].hard) == (1024, 65536)
    veth, macvlan = c.net
    assert (veth.index, veth.type, veth.link, veth.name, veth.up) == (0, "veth", "lxcbr0",
                                                                     "eth0", True)
    assert [(a.address, a.prefix) for a in veth.ipv4_addresses] == [("10.0.3.5", 24)]
    assert veth.ipv4_gateway == "10.0.3.1" and veth.hwaddr == "00:16:3e:12:34:56"
    assert (macvlan.index, macvlan.macvlan_mode, macvlan.link) == (1, "bridge", "eth1")
    assert [(a.address, a.prefix) for a in macvlan.ipv6_addresses] == [("fd00::5", 64)]
    legacy = {w.key for w in config_warnings(c) if w.message.startswith("legacy key")}
    assert {"lxc.utsname", "lxc.network.type", "lxc.network.ipv4", "lxc.limit.nofile",
            "lxc.rootfs", "lxc.id_map"} <= legacy
    assert any(w.key == "lxc.pivotdir" and "ignored" in w.message for w in config_warnings(c))


def test_several_networks() -> None:
    c = data("multi-net.conf")
    assert real(c) == []
    assert [(n.index, n.type) for n in c.net] == [(0, "veth"), (1, "veth"), (2, "macvlan"),
                                                  (3, "vlan"), (4, "ipvlan"), (5, "phys"),
                                                  (10, "empty")]
    eth0 = c.net[0]
    assert (eth0.name, eth0.veth_pair, eth0.mtu, eth0.veth_vlan_id) == ("eth0", "vr-router0",
                                                                        9000, 10)
    assert [a.broadcast for a in eth0.ipv4_addresses] == ["192.168.10.255", "192.168.11.255"]
    assert (eth0.ipv6_gateway, eth0.veth_vlan_tagged_ids) == ("auto", (20, 30))
    assert eth0.script_up == "/usr/local/bin/net-up router"
    routed = c.net[1]
    assert (routed.veth_mode, routed.ipv4_gateway) == ("router", "dev")
    assert [(r.address, r.prefix) for r in routed.veth_ipv4_routes] == [("10.99.0.0", 16)]
    assert [(r.address, r.prefix) for r in routed.veth_ipv6_routes] == [("fd99::", 48)]
    assert (c.net[2].macvlan_mode, c.net[2].l2proxy) == ("bridge", True)
    assert c.net[3].vlan_id == 100
    assert (c.net[4].ipvlan_mode, c.net[4].ipvlan_isolation) == ("l2", "private")
    assert (c.net[5].link, c.net[5].name) == ("enp3s0f1", "wan0")


@needs_lxc
def test_mounts_hooks_and_resources() -> None:
    c = data("mounts-hooks.conf")
    assert real(c) == []
    assert (c.rootfs.kind, c.rootfs.lower, c.rootfs.upper) == (
        "overlay", ("/var/lib/lxc/base/rootfs",), "/var/lib/lxc/svc/delta0")
    assert c.rootfs.mount_options is not None and c.rootfs.mount_options.idmap == "container"
    assert c.mounts.fstab == "/var/lib/lxc/svc/fstab"
    fuse, data_, files, tmp, kcore, apt = c.mounts.entries
    assert fuse.source == "/sys/fs/fuse/connections"  # common.conf's comes first
    assert files.source == "/srv/My Files" and files.opts.recursive and files.opts.optional
    assert tmp.opts.data == "size=512m,mode=1777" and tmp.fstype == "tmpfs"
    assert kcore.opts.relative and apt.opts.idmap == "container"
    assert apt.opts.propagation == MS_SLAVE | MS_REC
    assert c.hooks["post-stop"] == ("/usr/share/lxcfs/lxc.reboot.hook",
                                    "/usr/local/lib/svc/cleanup")
    assert c.hooks["clone"] == ("/usr/share/lxc/hooks/clonehostname",) and c.hook_version == 1
    own = [(s.key, s.value) for s in c.cgroup2 if s.path.endswith("mounts-hooks.conf")]
    assert own == [("memory.max", "2G"), ("memory.high", "1536M"),
                   ("cpu.max", "200000 100000"), ("pids.max", "4096"),
                   ("devices.allow", "c 10:200 rwm")]
    assert c.sysctl == {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "4096"}
    assert c.prlimit["memlock"].soft == -1 and c.proc == (("oom_score_adj", "-100"),)
    assert c.environment == (("APP_ENV", "production"), ("TZ", None))
    assert c.environment_runtime == (("JAVA_OPTS", "-Xmx1g -Dfoo=a=b"),)
    assert (c.start.auto, c.start.delay, c.start.order) == (True, 5, -10)
    assert c.groups == ("onboot", "web", "frontend")
    assert c.init.cmd == ("/sbin/init", "systemd.log_level=debug quiet")
    assert (c.init.groups, c.init.cwd) == ((4, 27), "/srv")
    assert c.namespace.keep == ("net",) and c.namespace.share == {"ipc": "other"}
    assert c.time_offset.boot == -2 * 3600 * 10**9 and c.monitor_signal_pdeath == 0
    assert (c.console.buffer_size, c.console.size) == (128 * 1024, 128 * 1024)
    assert (c.cgroup_relative, c.cgroup_dir.container, c.cgroup_dir.container_inner) == (
        True, "lxc.payload.svc", "ns")


@needs_lxc
@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.conf")))
def test_folding_includes_once_gives_the_same_model(name: str) -> None:
    """The builder reuses the fold of an include when it can (lxcsd.config.build): the
    model must be exactly what folding every line gives."""
    path = str(DATA / name)
    reader.clear_cache()
    entries = reader.read_config(path)
    plain = build(list(entries), name="c", config_path=path)  # a list: no segments
    build(entries, name="c", config_path=path)  # computes and stores the folds
    again = build(reader.read_config(path), name="c", config_path=path)  # uses them
    assert to_data(again) == to_data(plain)


def test_folded_include_does_not_hide_what_the_container_set_before(tmp_path: Path) -> None:
    common = tmp_path / "common.conf"
    common.write_text("lxc.tty.max = 4\nlxc.mount.entry = proc proc proc 0 0\n")
    config = tmp_path / "config"
    config.write_text(f"lxc.mount.entry = sys sys sysfs 0 0\nlxc.include = {common}\n")
    other = tmp_path / "other"
    other.write_text(f"lxc.include = {common}\n")
    load_path(str(other))  # the fold of common.conf is now known
    c = load_path(str(config))
    assert [m.source for m in c.mounts.entries] == ["sys", "proc"] and c.tty_max == 4
