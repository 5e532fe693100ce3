"""The create templates' pure parts: the Debian preparation on a tree, the config lines
both templates add (they must read back through the config reader)."""

from __future__ import annotations

import os
from pathlib import Path

from lxcsd.cli.create import config_text
from lxcsd.config.load import load_path
from lxcsd.templates import busybox, debian


def test_debian_prepare(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef\n")
    debian.prepare(str(tmp_path), "deb1")
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert (tmp_path / "etc/hostname").read_text() == "deb1\n"
    for unit in debian.MASK:
        assert os.readlink(tmp_path / "etc/systemd/system" / unit) == "/dev/null"
    debian.prepare(str(tmp_path), "deb1")  # again: existing masks are replaced


def test_template_configs_read_back(tmp_path: Path) -> None:
    for module, halt in ((busybox, "SIGUSR1"), (debian, None)):
        directory = tmp_path / module.__name__.rsplit(".", 1)[1]
        (directory / "rootfs").mkdir(parents=True)
        text = config_text("c1", str(directory), "x", module.config_lines("c1"), "/dev/null")
        (directory / "config").write_text(text)
        container = load_path(str(directory / "config"), "c1")
        assert container.uts_name == "c1"
        assert container.rootfs.path == str(directory / "rootfs")
        assert container.pty_max == 1024
        assert (container.signals.halt is not None) == (halt is not None)
        assert not [w for w in container.warnings if "not implement" not in str(w)]
