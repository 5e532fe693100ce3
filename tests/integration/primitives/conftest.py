"""Fixtures for the runtime primitive tests: busybox roots with the static probe inside,
optionally owned by the container's mapped root (the probe, subordinate ids and scratch
cgroups are tests/conftest.py's)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra import helper_util, rootfs


def _make_root(probe: Path, owner: int | None = None) -> Path:
    # Not in tmp_path: pytest's base directory is 0700, which the container's mapped root
    # could not traverse (LXC needs a traversable path to an unprivileged rootfs, too).
    base = Path(tempfile.mkdtemp(prefix="lxcsd-prim-", dir="/var/tmp"))
    base.chmod(0o755)
    root = rootfs.busybox_rootfs(base / "rootfs")
    shutil.copy2(probe, root / "bin/probe")
    if owner is not None:
        helper_util.chown_tree(root, owner, owner)
    return root


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
