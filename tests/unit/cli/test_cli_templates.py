"""The create templates' pure parts: configs rendered from the shipped jinja2 files read back
through the config reader, the rootfs files (DHCP only for interfaces without an address),
an admin's override in the etc directory, strict rendering, the Debian preparation."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from lxcsd.cli import create
from lxcsd.config.build import warnings as config_warnings
from lxcsd.config.load import load_path
from lxcsd.errors import LxcsdError
from lxcsd.templates import busybox, debian, render

DEBIAN_DEFAULT = ("lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.flags = up\n\n"
                  "lxc.apparmor.profile = generated\nlxc.apparmor.allow_nesting = 1\n")


def values(tmp_path: Path, template: str, default: str = "", unprivileged: bool = False
           ) -> dict[str, object]:
    conf = tmp_path / "default.conf"
    conf.write_text(default)
    args = argparse.Namespace(name="c1", template=template, config=str(conf),
                              privileged=True, release=None)
    found = create.context(args, str(tmp_path / "lxc" / "c1"))
    if unprivileged:
        found["idmap"] = [("u", 0, 100000, 65536), ("g", 0, 100000, 65536)]
    return found


@pytest.mark.parametrize("template", ["busybox", "debian"])
def test_configs_read_back(tmp_path: Path, template: str) -> None:
    context = values(tmp_path, template, DEBIAN_DEFAULT, unprivileged=True)
    config = tmp_path / "config"
    config.write_text(render.render(template, "config.j2", context))
    text = config.read_text()
    assert text.startswith(f"# Container c1, made by: lxcsd create -t {template}\n"
                           f"# From {tmp_path / 'default.conf'}\nlxc.net.0.type = veth\n")
    assert "\n\n\n" not in text  # jinja blocks leave no holes
    container = load_path(str(config), "c1")
    assert container.uts_name == "c1" and container.pty_max == 1024
    assert container.rootfs.path == str(tmp_path / "lxc/c1/rootfs")
    assert container.apparmor.profile == "generated"  # default.conf's keys come first
    assert [m.as_tuple() for m in container.idmaps] == [("u", 0, 100000, 65536),
                                                        ("g", 0, 100000, 65536)]
    assert (container.signals.halt is not None) == (template == "busybox")
    assert create.dhcp_interfaces(container) == ["eth0"]
    assert not [w for w in config_warnings(container) if "not implement" not in str(w)]


def test_dhcp_interfaces_are_those_without_an_address(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\n"
                      "lxc.net.1.type = veth\nlxc.net.1.name = lan\n"
                      "lxc.net.1.ipv4.address = 10.1.0.5/24\nlxc.net.2.type = macvlan\n"
                      "lxc.net.2.link = eth9\nlxc.net.3.type = empty\n")
    assert create.dhcp_interfaces(load_path(str(config), "c1")) == ["eth0", "eth1"]


def test_busybox_rootfs_files(tmp_path: Path) -> None:
    context = values(tmp_path, "busybox")
    context["dhcp_interfaces"] = ["eth0"]
    root = tmp_path / "root"
    written = render.write_rootfs("busybox", str(root), context, busybox.MODES)
    assert "etc/inittab" in written and "usr/share/udhcpc/default.script" in written
    rcs = (root / "etc/init.d/rcS").read_text()
    assert "udhcpc -b -i eth0 -x hostname:c1 -s /usr/share/udhcpc/default.script" in rcs
    assert (root / "etc/init.d/rcS").stat().st_mode & 0o777 == 0o755
    assert (root / "etc/shadow").stat().st_mode & 0o777 == 0o600
    assert (root / "etc/hostname").read_text() == "c1\n"
    console = (root / "etc/init.d/console").read_text()
    assert "setsid -c /bin/sh -l\n" in console and "exec setsid" not in console
    context["dhcp_interfaces"] = []
    render.write_rootfs("busybox", str(root), context, busybox.MODES)
    assert "udhcpc" not in (root / "etc/init.d/rcS").read_text()


def test_debian_network_file_only_with_dhcp(tmp_path: Path) -> None:
    context = values(tmp_path, "debian")
    root = tmp_path / "root"
    network = root / "etc/systemd/network/80-lxcsd-dhcp.network"
    render.write_rootfs("debian", str(root), context, debian.MODES)
    assert not network.exists() and (root / "etc/hostname").read_text() == "c1\n"
    context["dhcp_interfaces"] = ["eth0", "lan"]
    render.write_rootfs("debian", str(root), context, debian.MODES)
    assert "[Match]\nName=eth0 lan\n\n[Network]\nDHCP=yes\n" in network.read_text()


def test_admin_overrides_and_additions(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "busybox/rootfs/etc").mkdir(parents=True)
    (etc / "busybox/rootfs/etc/inittab.j2").write_text("::sysinit:/bin/true # {{ name }}\n")
    (etc / "busybox/rootfs/etc/motd.j2").write_text("welcome to {{ name }}\n")
    (etc / "common").mkdir()
    (etc / "common/idmap.j2").write_text("# no id maps here\n")
    context = values(tmp_path, "busybox", unprivileged=True)
    root = tmp_path / "root"
    written = render.write_rootfs("busybox", str(root), context, busybox.MODES, str(etc))
    assert (root / "etc/inittab").read_text() == "::sysinit:/bin/true # c1\n"
    assert (root / "etc/motd").read_text() == "welcome to c1\n" and "etc/motd" in written
    assert "lxc.idmap" not in render.render("busybox", "config.j2", context, str(etc))


def test_a_broken_override_names_the_file(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "busybox").mkdir(parents=True)
    (etc / "busybox/config.j2").write_text("lxc.uts.name = {{ nmae }}\n")
    with pytest.raises(LxcsdError, match=r"template busybox/config.j2: 'nmae' is undefined"):
        render.render("busybox", "config.j2", values(tmp_path, "busybox"), str(etc))


def test_debian_prepare(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef\n")
    debian.prepare(str(tmp_path), "deb1")
    assert (tmp_path / "etc/machine-id").read_text() == ""
    for unit in debian.MASK:
        assert os.readlink(tmp_path / "etc/systemd/system" / unit) == "/dev/null"
    debian.prepare(str(tmp_path), "deb1")  # again: existing masks are replaced


def test_debootstrap_progress(tmp_path: Path) -> None:
    out_path = tmp_path / "out"
    with out_path.open("w") as out:  # not a terminal: one line per stage
        lines = debian.follow(["I: Retrieving InRelease\n", "I: Retrieving adduser 3.134\n",
                               "I: Validating adduser 3.134\n", "W: something\n",
                               "I: Base system installed successfully.\n"], out)
    assert len(lines) == 5
    shown = [line.split("] ", 1)[-1] for line in out_path.read_text().splitlines()]
    assert shown[:3] == ["downloading packages", "validating packages",
                         "base system installed"]
    assert shown[3].startswith("lxcsd: debootstrap done in ")
