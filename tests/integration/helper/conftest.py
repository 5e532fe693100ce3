"""Fixtures for starting containers through lxcsd-helper directly (helper_util)."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.errors import LxcsdError
from lxcsd.runtime import cgroup
from tests.infra import v1cgroups
from tests.integration.helper import helper_util as hu
from tests.probe.build import build_probe


@pytest.fixture(autouse=True)
def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("namespaces and mounts need root")


@pytest.fixture(scope="session")
def helper_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the static probe")
    return build_probe(tmp_path_factory.mktemp("probe") / "probe")


@pytest.fixture
def lxcpath(helper_probe: Path) -> Iterator[hu.Lxcpath]:
    path = hu.Lxcpath(helper_probe)
    yield path
    path.remove()


@pytest.fixture(scope="session")
def helper_subids() -> None:
    """/etc/subuid and /etc/subgid delegate 100000-165535 to root (added when absent)."""
    for path in ("/etc/subuid", "/etc/subgid"):
        text = Path(path).read_text() if os.path.exists(path) else ""
        if hu.SUBID_LINE not in text.splitlines():
            with open(path, "a", encoding="ascii") as f:
                f.write(("" if not text or text.endswith("\n") else "\n") + hu.SUBID_LINE + "\n")


@pytest.fixture
def unit_cgroup() -> Iterator[str]:
    """A scratch cgroup2 directory standing for lxc@NAME.service's delegated cgroup, and
    cgroups of the same name in the host's v1 hierarchies (a unit's on a hybrid systemd
    host; start_helper puts the helper in them); removed (processes killed) after the
    test."""
    name = f"lxcsd-helper-{uuid.uuid4().hex[:10]}"
    path = os.path.join(cgroup.own_cgroup_dir(), name)
    os.mkdir(path)
    v1 = v1cgroups.make(name)
    yield path
    _remove_v2(path)
    assert v1cgroups.remove(v1) == []


def _remove_v2(path: str) -> None:
    if os.path.isdir(path):
        cgroup.kill_all(path)
        for _ in range(200):
            hu.reap_orphans()  # a zombie we adopted can hold init (and its cgroup) back
            try:
                cgroup.remove(path)
                break
            except LxcsdError:
                time.sleep(0.02)
    assert not os.path.exists(path), f"cgroup {path} was not removed"
