"""Mounts onto hostile trees land inside the root; mount entries, rootfs kinds, masks."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd import linux
from lxcsd.runtime import mounts
from tests.integration.primitives import harness as h


@pytest.fixture
def base() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="lxcsd-prim-mnt-", dir="/var/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def hostile(base: Path) -> Path:
    """A root whose paths point out of it every way they can."""
    r = base / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "hostname").write_text("container\n")
    (r / "mnt").symlink_to("/etc")
    (r / "a").mkdir()
    (r / "a" / "b").symlink_to("../../../../../..")
    (r / "abs").symlink_to(str(base / "outside"))
    (r / "hn").symlink_to("/etc/hostname")
    (r / "loop").symlink_to("loop")
    (base / "outside").mkdir()
    return r


HOSTILE_TARGETS = [
    ("mnt", "etc"),                  # symlink to an absolute path
    ("a/b/etc", "etc"),              # symlink climbing above the root
    ("../../../etc", "etc"),         # '..' in the target itself
    ("abs", "home/outside"),         # absolute symlink to a real host directory: made inside
]


@pytest.mark.parametrize("target, landed", HOSTILE_TARGETS)
def test_tmpfs_entry_lands_inside(hostile: Path, base: Path, target: str, landed: str
                                  ) -> None:
    host_etc = os.stat("/etc")

    def inside() -> tuple[list[str], bool, int]:
        root = os.open(hostile, os.O_PATH | os.O_DIRECTORY)
        ok = mounts.mount_entry(root, "tmpfs", target, "tmpfs", data="size=64k",
                                create="dir")
        return h.mount_points(), ok, os.stat("/etc").st_dev

    points, ok, etc_dev = h.in_mount_ns(inside)
    assert ok
    assert etc_dev == host_etc.st_dev
    assert "/etc" not in points and str(base / "outside") not in points
    expected = str(hostile / landed) if landed != "home/outside" else \
        str(hostile / base.relative_to("/") / "outside")
    assert expected in points
    assert os.stat("/etc").st_dev == host_etc.st_dev  # and nothing leaked to the host


def test_file_bind_onto_symlinked_final_component(hostile: Path, base: Path) -> None:
    src = base / "src-hostname"
    src.write_text("bound\n")

    def inside() -> tuple[str, str]:
        root = os.open(hostile, os.O_PATH | os.O_DIRECTORY)
        mounts.mount_entry(root, str(src), "hn", "none", bind=True, flags=linux.MS_RDONLY)
        return (hostile / "etc/hostname").read_text(), Path("/etc/hostname").read_text()

    in_root, on_host = h.in_mount_ns(inside)
    assert in_root == "bound\n"
    assert on_host == Path("/etc/hostname").read_text() != "bound\n"


def test_loop_and_optional(hostile: Path) -> None:
    def inside() -> tuple[bool, str]:
        root = os.open(hostile, os.O_PATH | os.O_DIRECTORY)
        skipped = mounts.mount_entry(root, "tmpfs", "loop/x", "tmpfs", optional=True)
        try:
            mounts.mount_entry(root, "tmpfs", "loop/x", "tmpfs", create="dir")
        except OSError as exc:
            return skipped, str(exc)
        return skipped, ""

    skipped, message = h.in_mount_ns(inside)
    assert skipped is False
    assert "mount tmpfs on loop/x" in message and "loop/x" in message


def test_entry_options(base: Path) -> None:
    root_dir = base / "root"
    (root_dir / "srv").mkdir(parents=True)
    shared = base / "shared"
    (shared / "sub").mkdir(parents=True)
    (shared / "file").write_text("data\n")
    (root_dir / "in-root").mkdir()
    (root_dir / "in-root" / "x").write_text("relative\n")

    def inside() -> dict[str, object]:
        root = os.open(root_dir, os.O_PATH | os.O_DIRECTORY)
        # a source with a submount: bind copies it only with rbind
        sub = mounts.new_fs("tmpfs", "tmpfs", "size=16k")
        mounts.attach(sub, os.open(shared / "sub", os.O_PATH))
        (shared / "sub" / "marker").write_text("sub\n")
        mounts.mount_entry(root, str(shared), "srv/ro", "none", bind=True, recursive=True,
                           flags=linux.MS_RDONLY | linux.MS_NOSUID, create="dir")
        mounts.mount_entry(root, str(shared), "srv/plain", "none", bind=True, create="dir")
        mounts.mount_entry(root, str(shared / "file"), "etc/f", "none", bind=True,
                           create="file")
        mounts.mount_entry(root, "in-root", "srv/rel", "none", bind=True, relative=True,
                           create="dir")
        mounts.mount_entry(root, "tmpfs", "srv/tmp", "tmpfs", data="size=16k,mode=0700",
                           flags=linux.MS_NODEV | linux.MS_NOEXEC, create="dir")
        info = {}
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                info[fields[4]] = (fields[5], fields[-1])
        try:
            (root_dir / "srv/ro/new").write_text("x")
            ro_write = "allowed"
        except OSError as exc:
            ro_write = str(exc.strerror)
        return {
            "info": info, "ro_write": ro_write,
            "ro_sub": (root_dir / "srv/ro/sub/marker").exists(),
            "plain_sub": (root_dir / "srv/plain/sub/marker").exists(),
            "file": (root_dir / "etc/f").read_text(),
            "rel": (root_dir / "srv/rel/x").read_text(),
            "tmp_mode": oct(os.stat(root_dir / "srv/tmp").st_mode & 0o777),
        }

    got = h.in_mount_ns(inside)
    info = got["info"]
    assert info[str(root_dir / "srv/ro")][0].startswith("ro,nosuid")
    assert info[str(root_dir / "srv/ro/sub")][0].startswith("ro,")  # recursive ro
    assert got["ro_write"] == "Read-only file system"
    assert got["ro_sub"] and not got["plain_sub"]
    assert got["file"] == "data\n" and got["rel"] == "relative\n"
    assert info[str(root_dir / "srv/tmp")][0].startswith("rw,nodev,noexec")
    assert got["tmp_mode"] == "0o700"


def test_rootfs_dir_readonly_and_overlay(base: Path, bb_root: Path) -> None:
    upper = base / "ovl" / "delta"

    def inside() -> dict[str, object]:
        target = base / "mnt-ovl"
        target.mkdir()
        fd = mounts.mount_rootfs("overlay", "overlay", str(target), lower=[str(bb_root)],
                                 upper=str(upper), flags=linux.MS_NODEV)
        os.mkdir("new-dir", dir_fd=fd)
        ro_target = base / "mnt-ro"
        ro_target.mkdir()
        ro = mounts.mount_rootfs("dir", str(bb_root), str(ro_target), flags=linux.MS_RDONLY)
        try:
            os.mkdir("nope", dir_fd=ro)
            ro_result = "created"
        except OSError as exc:
            ro_result = str(exc.strerror)
        return {"ro": ro_result, "busybox": os.path.exists(target / "bin/busybox"),
                "points": h.mount_points(str(base))}

    got = h.in_mount_ns(inside)
    assert got["ro"] == "Read-only file system"
    assert got["busybox"]
    assert (upper / "new-dir").is_dir() and not (bb_root / "new-dir").exists()
    assert (base / "ovl" / "work").is_dir()  # LXC's workdir beside the upper directory
    assert not h.mount_points(str(base))  # the mounts died with the namespace


def test_unsupported_rootfs_kind(base: Path) -> None:
    def inside() -> str:
        try:
            mounts.mount_rootfs("zfs", "pool/c1", str(base))
        except Exception as exc:
            return str(exc)
        return ""

    assert "storage type 'zfs' is not supported" in h.in_mount_ns(inside)
