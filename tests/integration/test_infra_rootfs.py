"""Test root file systems (tests/infra/rootfs.py): busybox runs in a chroot, the Debian tree
is built (cached), prepared, copied, and a failed build leaves no cache entry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.infra import rootfs


def test_busybox_rootfs_runs_in_chroot(busybox_root: Path) -> None:
    out = subprocess.run(["chroot", str(busybox_root), "/bin/busybox", "echo", "hello"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "hello\n"
    out = subprocess.run(["chroot", str(busybox_root), "/etc/init.d/rcS"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(rootfs.SYSINIT_LINE)


def test_failed_build_leaves_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rootfs, "ROOTFS_CACHE", tmp_path / "rootfs")
    monkeypatch.setattr(rootfs, "DEB_CACHE", tmp_path / "debs")
    dead_mirror = "http://127.0.0.1:9/debian"  # connection refused: debootstrap fails fast
    for _ in range(2):
        with pytest.raises(RuntimeError, match="debootstrap failed"):
            rootfs.debian_rootfs(mirror=dead_mirror)
    entries = sorted(p.name for p in (tmp_path / "rootfs").iterdir())
    # no complete-looking entry; the first attempt's leftovers were removed by the second
    assert [e for e in entries if not e.startswith(".")] == []
    assert len([e for e in entries if e.startswith(".tmp-")]) == 1


def test_debian_rootfs_prepared(debian_root: Path) -> None:
    assert debian_root.is_dir() and debian_root.parent.joinpath("build.json").is_file()
    assert os.path.realpath(debian_root / "sbin/init").endswith("/systemd")
    assert (debian_root / "etc/machine-id").read_text() == ""
    assert not (debian_root / "etc/hostname").exists()
    root_entry = [ln for ln in (debian_root / "etc/shadow").read_text().splitlines()
                  if ln.startswith("root:")]
    assert root_entry[0].split(":")[1] == ""
    for unit in ("getty@.service", "serial-getty@.service", "systemd-firstboot.service"):
        assert os.readlink(debian_root / "etc/systemd/system" / unit) == "/dev/null"
    assert not (debian_root / "etc/systemd/system/timers.target.wants").exists()
    for tool in ("usr/bin/ip", "usr/bin/ps", "usr/bin/dbus-daemon"):
        assert (debian_root / tool).exists(), tool


def test_debian_rootfs_copy(debian_root: Path, tmp_path: Path) -> None:
    dest = rootfs.debian_rootfs_copy(tmp_path / "copy", src=debian_root)
    assert (dest / "etc/lxcsd-test-rootfs").is_file()
    assert os.readlink(dest / "sbin/init") == os.readlink(debian_root / "sbin/init")
