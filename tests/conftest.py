"""Test-suite wiring. The tiers are folders (README.md, "Testing"):

    tests/unit         pure: the config reader, plans, the CLI, lint, imports, docs freshness
    tests/golden       the generator's golden cases, each checked by systemd-analyze verify
    tests/integration  root (marker root): real namespaces, cgroups, busybox roots, veth
                       pairs in test network namespaces (also marker network)
    tests/sandbox      root (sandbox): a real systemd as PID 1 in namespaces
    tests/hardening    root (hardening): a hostile root inside containers
    tests/vm           QEMU (vm): a nested VM with every cgroup2 controller and AppArmor

Each tier's conftest.py sets its markers (tests/infra/tiers.py); a test marked ``root`` is
skipped, saying so, when pytest does not run as root. The fixtures the root tiers share are
here; the sandbox's and the VM's are plugins with their machinery (tests/infra/fixtures.py,
tests/infra/vm/fixtures.py):

    probe          session: tests/probe/probe.c built static (skipped without gcc)
    subids         session: /etc/subuid and /etc/subgid delegate 100000-165535 to root
    scratch_cgroup a cgroup2 directory under this process's, removed after the test
    unit_cgroup    the same standing for lxc@NAME.service's delegated cgroup, with cgroups
                   of its name in the host's v1 hierarchies (where a unit has them)
    lxcpath        a temporary lxcpath of busybox containers started by lxcsd-helper
                   (tests/infra/helper_util.py)
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests exercise the source tree, not an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lxcsd.errors import LxcsdError  # noqa: E402 - after the path above
from lxcsd.runtime import cgroup  # noqa: E402
from tests.infra import helper_util, v1cgroups  # noqa: E402
from tests.probe.build import build_probe  # noqa: E402

pytest_plugins = ["tests.infra.fixtures", "tests.infra.vm.fixtures"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is not None and os.geteuid() != 0:
        pytest.skip("needs root (namespaces, mounts, cgroups)")


def _ignored_here(signum: int, frame: object) -> None:
    """The test run itself still ignores it; an exec'd child gets the default back."""


# Children inherit ignored signals across exec: started by `nohup`, a `&` in a script or a CI
# runner, the suite's lxcsd commands would ignore the Ctrl-C a test types or the SIGHUP it
# sends, and the test would measure its caller, not lxcsd. A handler instead of SIG_IGN
# keeps the run immune and gives what it executes a terminal session's dispositions.
for _sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
    if signal.getsignal(_sig) == signal.SIG_IGN:
        signal.signal(_sig, _ignored_here)


# The code under test installs signal handlers (lxcsd's CLI catches SIGTERM to clean up): one
# test's handlers must not stay for the next tests, nor reach the children they fork.
_KEPT_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)


@pytest.fixture(autouse=True)
def _signal_dispositions() -> Iterator[None]:
    saved = [(sig, signal.getsignal(sig)) for sig in _KEPT_SIGNALS]
    yield
    for sig, handler in saved:
        if handler is not None:
            signal.signal(sig, handler)


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the static probe")
    return build_probe(tmp_path_factory.mktemp("probe") / "probe")


@pytest.fixture(scope="session")
def subids() -> None:
    """Adds the line only where it is missing (packaging/setup.sh test adds it too)."""
    for path in ("/etc/subuid", "/etc/subgid"):
        text = Path(path).read_text() if os.path.exists(path) else ""
        if helper_util.SUBID_LINE not in text.splitlines():
            with open(path, "a", encoding="ascii") as f:
                f.write(("" if not text or text.endswith("\n") else "\n")
                        + helper_util.SUBID_LINE + "\n")


def _remove_cgroup(path: str, *, reap: bool = False) -> None:
    """Kill what is left in ``path`` and remove it; killed processes leave asynchronously.
    ``reap``: a container's init this process adopted (lxcsd-helper tests make it a child
    subreaper) stays a zombie in the cgroup until reaped."""
    if os.path.isdir(path):
        cgroup.kill_all(path)
        for _ in range(200):
            if reap:
                helper_util.reap_orphans()
            try:
                cgroup.remove(path)
                break
            except LxcsdError:
                time.sleep(0.02)
    assert not os.path.exists(path), f"cgroup {path} was not removed"


@pytest.fixture
def scratch_cgroup() -> Iterator[str]:
    path = os.path.join(cgroup.own_cgroup_dir(), f"lxcsd-test-{uuid.uuid4().hex[:12]}")
    os.mkdir(path)
    yield path
    _remove_cgroup(path)


@pytest.fixture
def unit_cgroup() -> Iterator[str]:
    """lxcsd's own v1 leaves go into the v1 cgroups, not into the host's v1 roots."""
    name = f"lxcsd-unit-{uuid.uuid4().hex[:10]}"
    path = os.path.join(cgroup.own_cgroup_dir(), name)
    os.mkdir(path)
    v1 = v1cgroups.make(name)
    yield path
    _remove_cgroup(path, reap=True)
    assert v1cgroups.remove(v1) == []


@pytest.fixture
def lxcpath(probe: Path) -> Iterator[helper_util.Lxcpath]:
    path = helper_util.Lxcpath(probe)
    yield path
    path.remove()
