"""Would Debian's lxc.service autostart a container too (lxcsd.liblxc.lxcservice)?

Against the files Debian's lxc package uses (/usr/libexec/lxc/lxc-containers reads
/etc/default/lxc: LXC_AUTO, BOOTGROUPS, OPTIONS) in a tmp root."""

from __future__ import annotations

import os
from pathlib import Path

from lxcsd.liblxc import lxcservice


def enable(root: Path) -> None:
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "lxc.service").symlink_to("/lib/systemd/system/lxc.service")


def test_enabled_and_masked(tmp_path: Path) -> None:
    assert not lxcservice.enabled(str(tmp_path))
    enable(tmp_path)
    assert lxcservice.enabled(str(tmp_path))
    os.symlink("/dev/null", tmp_path / "etc/systemd/system/lxc.service")
    assert not lxcservice.enabled(str(tmp_path))  # masked: it never runs


def test_defaults_select_onboot_and_ungrouped(tmp_path: Path) -> None:
    values = lxcservice.settings(str(tmp_path))  # no /etc/default/lxc: the script's defaults
    assert values == {"LXC_AUTO": "true", "BOOTGROUPS": "onboot,", "OPTIONS": ""}
    assert lxcservice.selects(True, [], values)
    assert lxcservice.selects(True, ["onboot"], values)
    assert not lxcservice.selects(True, ["web"], values)
    assert not lxcservice.selects(False, [], values)


def test_etc_default_lxc(tmp_path: Path) -> None:
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/default/lxc").write_text(
        '# comment\nLXC_AUTO="true"\nBOOTGROUPS="web"\nOPTIONS=\n')
    values = lxcservice.settings(str(tmp_path))
    assert lxcservice.selects(True, ["web"], values)
    assert not lxcservice.selects(True, [], values)
    (tmp_path / "etc/default/lxc").write_text('OPTIONS="-a"\n')
    assert lxcservice.selects(True, ["any"], lxcservice.settings(str(tmp_path)))
    (tmp_path / "etc/default/lxc").write_text('LXC_AUTO="false"\n')
    assert not lxcservice.selects(True, [], lxcservice.settings(str(tmp_path)))


def test_double_autostart_warning(tmp_path: Path) -> None:
    assert lxcservice.double_autostart(True, [], str(tmp_path)) == ""  # not enabled
    enable(tmp_path)
    text = lxcservice.double_autostart(True, [], str(tmp_path))
    assert "Debian's lxc.service is enabled" in text and "systemctl disable lxc.service" in text
    assert lxcservice.double_autostart(False, [], str(tmp_path)) == ""
