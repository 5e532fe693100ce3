"""pytest fixtures for the systemd sandbox; registered by tests/conftest.py:

    pytest_plugins = ["tests.infra.fixtures"]

Fixtures:
    sandbox              session: one booted Sandbox for the whole run
    lxcsd_sandbox        session: the same sandbox with lxcsd installed by install.sh --offline
    clean_sandbox        function: the session sandbox (booted again if a test stopped it),
                         reset() after the test: units the test started are stopped, files
                         it added under RESET_DIRS removed, failed units reset
    clean_lxcsd_sandbox  function: the same for lxcsd_sandbox
    new_sandbox          function: a factory of private sandboxes, stopped after the test
    busybox_root         function: a busybox rootfs in tmp_path
    debian_root          session: path of the cached Debian rootfs (built on first use)
    debian_service_root  session: the same with a real service (nginx-light) installed

On a test failure the journal of each sandbox the test used (last 200 lines) and its failed
units are attached to the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra import rootfs
from tests.infra.sandbox import Sandbox


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the systemd sandbox needs root")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    _require_root()
    sb = Sandbox().start()
    yield sb
    sb.stop()


@pytest.fixture(scope="session")
def lxcsd_sandbox(sandbox: Sandbox) -> Sandbox:
    sandbox.install_lxcsd()
    sandbox.checkpoint()  # tests reset to "lxcsd installed", not to before it
    return sandbox


@pytest.fixture
def clean_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    sandbox.ensure_running()  # an earlier test may have powered it off
    yield sandbox
    sandbox.reset()


@pytest.fixture
def clean_lxcsd_sandbox(lxcsd_sandbox: Sandbox) -> Iterator[Sandbox]:
    lxcsd_sandbox.ensure_running()
    yield lxcsd_sandbox
    lxcsd_sandbox.reset()


@pytest.fixture
def new_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """new_sandbox(**Sandbox options) boots a sandbox of the test's own."""
    _require_root()
    made: list[Sandbox] = []

    def make(**kwargs: Any) -> Sandbox:
        sb = Sandbox(**kwargs)
        made.append(sb)
        return sb.start()

    yield make
    for sb in made:
        sb.stop()


@pytest.fixture
def busybox_root(tmp_path: Path) -> Path:
    return rootfs.busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture(scope="session")
def debian_root() -> Path:
    _require_root()
    return rootfs.debian_rootfs()


@pytest.fixture(scope="session")
def debian_service_root() -> Path:
    _require_root()
    return rootfs.debian_service_rootfs()


def _sandboxes_of(item: pytest.Item) -> list[Sandbox]:
    funcargs = getattr(item, "funcargs", {})
    found: dict[int, Sandbox] = {}
    for value in funcargs.values():
        if isinstance(value, Sandbox):
            found[id(value)] = value
    return list(found.values())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for sb in _sandboxes_of(item):
            if sb.running:
                text = sb.journal(lines=200)
                failed = ", ".join(sb.failed_unit_names()) or "none"
                report.sections.append(
                    (f"sandbox {sb.name} journal ({call.when})",
                     f"failed units: {failed}\n{text}"))
    return report
