"""Fixtures for the runtime primitive tests: the static probe, busybox roots (with the probe
inside, optionally owned by the container's mapped root), /etc/subuid entries, and a
scratch cgroup2 directory that is always removed."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.errors import LxcsdError
from lxcsd.runtime import cgroup
from tests.infra import rootfs
from tests.probe.build import build_probe

SUBID_LINE = "root:100000:65536"


@pytest.fixture(autouse=True)
def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("namespaces and mounts need root")


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/probe/probe.c built static (once per session)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the static probe")
    out = tmp_path_factory.mktemp("probe") / "probe"
    return build_probe(out)


def _make_root(probe: Path, owner: int | None = None) -> Path:
    # Not in tmp_path: pytest's base directory is 0700, which the container's mapped root
    # could not traverse (LXC needs a traversable path to an unprivileged rootfs, too).
    base = Path(tempfile.mkdtemp(prefix="lxcsd-prim-", dir="/var/tmp"))
    base.chmod(0o755)
    root = rootfs.busybox_rootfs(base / "rootfs")
    shutil.copy2(probe, root / "bin/probe")
    if owner is not None:
        chown_tree(root, owner, owner)
    return root


def chown_tree(root: Path, uid: int, gid: int) -> None:
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(os.path.join(top, name), uid, gid)
    os.lchown(root, uid, gid)


@pytest.fixture
def bb_root(probe: Path) -> Iterator[Path]:
    """A busybox root with /bin/probe, owned by root."""
    root = _make_root(probe)
    yield root
    shutil.rmtree(root.parent)


@pytest.fixture
def mapped_root(probe: Path) -> Iterator[Path]:
    """A busybox root owned by host 100000:100000 (the container root of DEFAULT_MAP)."""
    root = _make_root(probe, owner=100000)
    yield root
    shutil.rmtree(root.parent)


@pytest.fixture(scope="session")
def subids() -> list[str]:
    """Make sure /etc/subuid and /etc/subgid delegate 100000-165535 to root, adding the
    line only when absent (the set-up script should do this; see the report). Returns the
    files changed."""
    changed = []
    for path in ("/etc/subuid", "/etc/subgid"):
        text = Path(path).read_text() if os.path.exists(path) else ""
        if SUBID_LINE not in text.splitlines():
            with open(path, "a", encoding="ascii") as f:
                f.write(("" if not text or text.endswith("\n") else "\n") + SUBID_LINE + "\n")
            changed.append(path)
    return changed


@pytest.fixture
def scratch_cgroup() -> Iterator[str]:
    """A unique cgroup2 directory under this process's cgroup, removed (with children)
    after the test; processes left in it are killed first."""
    path = os.path.join(cgroup.own_cgroup_dir(), f"lxcsd-test-{uuid.uuid4().hex[:12]}")
    os.mkdir(path)
    yield path
    if os.path.isdir(path):
        cgroup.kill_all(path)
        for _ in range(100):
            try:
                cgroup.remove(path)
                break
            except LxcsdError:
                time.sleep(0.05)  # killed processes leave the cgroup asynchronously
    assert not os.path.exists(path), f"cgroup {path} was not removed"
