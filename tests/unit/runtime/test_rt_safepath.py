"""safepath against hostile root trees: resolution and creation never leave the root.
(Mounting onto the results is tested in tests/integration/primitives.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.runtime import safepath


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the root standing in for the host's /etc."""
    d = tmp_path / "host"
    (d / "etc").mkdir(parents=True)
    (d / "etc" / "passwd").write_text("host\n")
    return d


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("container\n")
    (r / "mnt").symlink_to("/etc")                       # absolute: means the root's /etc
    (r / "a").mkdir()
    (r / "a" / "b").symlink_to("../../../..")            # climbs above the root
    (r / "abs-host").symlink_to(str(outside / "etc"))    # points at the "host" by path
    (r / "loop1").symlink_to("loop2")
    (r / "loop2").symlink_to("loop1")
    (r / "file-link").symlink_to("/etc/passwd")
    (r / "dangling").symlink_to("/run/made/by/link")
    (r / "rel-dangling").symlink_to("../newdir/sub")
    (r / "proc-link").symlink_to("/proc/self/root")      # a magic link if followed as one
    return r


@pytest.fixture
def root_fd(root: Path) -> Iterator[int]:
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def _where(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_components() -> None:
    assert safepath.components("/a//b/./c/") == ["a", "b", "c"]
    assert safepath.components("a/../b") == ["a", "..", "b"]
    assert safepath.components("/") == []


@pytest.mark.parametrize("target, expected", [
    ("mnt", "etc"),
    ("mnt/passwd", "etc/passwd"),
    ("a/b/etc", "etc"),
    ("a/b/../../etc/passwd", "etc/passwd"),
    ("../../../etc", "etc"),
    ("/etc/../../../etc", "etc"),
    ("file-link", "etc/passwd"),
    ("/", ""),
])
def test_resolve_stays_inside(root: Path, root_fd: int, target: str, expected: str) -> None:
    assert _where(safepath.resolve(root_fd, target)) == str(root / expected).rstrip("/")


def test_absolute_symlink_to_a_host_path_is_read_inside(root: Path, root_fd: int,
                                                        outside: Path) -> None:
    # abs-host -> <tmp>/host/etc exists on the host, not inside the root
    with pytest.raises(FileNotFoundError) as err:
        safepath.resolve(root_fd, "abs-host/passwd")
    assert err.value.filename == "/abs-host/passwd"


def test_symlink_loop(root_fd: int) -> None:
    with pytest.raises(OSError) as err:
        safepath.resolve(root_fd, "loop1/x")
    assert err.value.errno == 40  # ELOOP
    assert err.value.filename == "/loop1/x"


def test_magic_link_refused(root_fd: int) -> None:
    # /proc/self/root from inside the root is whatever /proc is there: here nothing.
    with pytest.raises(OSError):
        safepath.resolve(root_fd, "proc-link/etc")


def test_create_dir_through_hostile_links(root: Path, root_fd: int, outside: Path) -> None:
    before = sorted(os.listdir(outside / "etc"))
    fd = safepath.open_in_root(root_fd, "a/b/etc/new/deeper", create="dir")
    assert _where(fd) == str(root / "etc/new/deeper")
    fd = safepath.open_in_root(root_fd, "mnt/viamnt", create="dir")
    assert _where(fd) == str(root / "etc/viamnt")
    assert sorted(os.listdir(outside / "etc")) == before


def test_create_file_and_parents(root: Path, root_fd: int) -> None:
    fd = safepath.open_in_root(root_fd, "/x/y/z.conf", create="file", file_mode=0o600)
    assert _where(fd) == str(root / "x/y/z.conf")
    assert (root / "x/y/z.conf").stat().st_mode & 0o777 == 0o600
    assert (root / "x").is_dir()


def test_create_existing_is_opened(root: Path, root_fd: int) -> None:
    assert _where(safepath.open_in_root(root_fd, "etc/passwd", create="file")) == \
        str(root / "etc/passwd")
    assert (root / "etc/passwd").read_text() == "container\n"


def test_create_follows_dangling_symlink_inside(root: Path, root_fd: int) -> None:
    fd = safepath.open_in_root(root_fd, "dangling", create="file")
    assert _where(fd) == str(root / "run/made/by/link")
    assert (root / "run/made/by/link").is_file()


def test_create_follows_relative_dangling_symlink_clamped(root: Path, root_fd: int) -> None:
    # rel-dangling -> ../newdir/sub: ".." at the root stays at the root
    fd = safepath.open_in_root(root_fd, "rel-dangling/leaf", create="dir")
    assert _where(fd) == str(root / "newdir/sub/leaf")


def test_create_in_symlink_loop_fails(root_fd: int) -> None:
    with pytest.raises(OSError) as err:
        safepath.open_in_root(root_fd, "loop1/x", create="dir")
    assert err.value.errno == 40


def test_create_rejects_unknown_kind(root_fd: int) -> None:
    with pytest.raises(ValueError):
        safepath.open_in_root(root_fd, "x", create="fifo")


def test_file_where_dir_expected(root_fd: int) -> None:
    with pytest.raises(NotADirectoryError):
        safepath.open_in_root(root_fd, "etc/passwd/sub", create="dir")


def test_proc_fd_path_and_same_file(root: Path, root_fd: int) -> None:
    assert safepath.proc_fd_path(7) == "/proc/self/fd/7"
    fd = safepath.resolve(root_fd, "mnt")
    other = os.open(root / "etc", os.O_PATH)
    try:
        assert safepath.same_file(fd, other)
    finally:
        os.close(fd)
        os.close(other)
