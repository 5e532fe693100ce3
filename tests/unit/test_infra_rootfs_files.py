"""Test root file systems (tests/infra/rootfs.py): a busybox tree's layout, the Debian cache key."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.infra import rootfs


def test_busybox_rootfs_layout(tmp_path: Path) -> None:
    rootfs.busybox_applets()  # the applet list is computed once per process
    t0 = time.monotonic()
    root = rootfs.busybox_rootfs(tmp_path / "r", hostname="bb1")
    assert time.monotonic() - t0 < 0.5
    assert os.readlink(root / "sbin/init") == "/bin/busybox"
    assert os.readlink(root / "bin/sh") == "/bin/busybox"
    inittab = (root / "etc/inittab").read_text()
    assert "::sysinit:/etc/init.d/rcS" in inittab
    assert rootfs.HALT_LINE in inittab
    assert (root / "etc/hostname").read_text() == "bb1\n"
    for d in ("dev", "proc", "sys", "tmp", "run"):
        assert (root / d).is_dir() and not any((root / d).iterdir())


def test_debian_key_covers_inputs() -> None:
    base = rootfs.debian_key("bookworm", "minbase", ["a", "b"], "http://m")
    assert base == rootfs.debian_key("bookworm", "minbase", ["b", "a"], "http://m")
    assert base != rootfs.debian_key("bookworm", "minbase", ["a"], "http://m")
    assert base != rootfs.debian_key("trixie", "minbase", ["a", "b"], "http://m")
    assert base != rootfs.debian_key("bookworm", "minbase", ["a", "b"], "http://n")
