"""pytest fixtures for the nested VM; registered by tests/conftest.py:

    pytest_plugins = ["tests.infra.fixtures", "tests.infra.vm.fixtures"]

Fixtures:
    vm          session: one booted VM for the whole run (the image is built first if it is
                not cached: about a minute). Skipped, with the reason, where QEMU, root or
                the build tools are missing. Booted again if a test powered it off.
    lxcsd_vm    session: the same VM with lxcsd installed by `packaging/install.sh --offline`

Tests using either get the `vm` marker automatically, so `-m "not vm"` leaves them out. On a
test failure the VM's serial console tail and journal tail are attached to the report.
The VM is always shut down: by the fixture's finalizer, else atexit, else (pytest killed)
QEMU's parent-death signal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.vm.vm import VM, unavailable_reason

VM_FIXTURES = frozenset({"vm", "lxcsd_vm"})


@pytest.fixture(scope="session")
def vm() -> Iterator[VM]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"nested VM unavailable: {reason}")
    lock_timeout = float(os.environ.get("LXCSD_VM_LOCK_TIMEOUT", "900"))
    machine = VM(lock_timeout=lock_timeout)
    try:
        machine.boot()
        yield machine
    finally:
        machine.shutdown()


@pytest.fixture(scope="session")
def lxcsd_vm(vm: VM) -> VM:
    vm.install_lxcsd()
    vm.lxcsd_installed = True  # type: ignore[attr-defined]  # read by _vm_alive
    return vm


@pytest.fixture(autouse=True)
def _vm_alive(request: pytest.FixtureRequest) -> None:
    """A test before may have powered the session VM off: boot it again for this one. A
    boot is a fresh snapshot of the image, so lxcsd is installed again for lxcsd_vm tests;
    also when the VM was booted again by a test that only needed `vm` (lxcsd_vm, a session
    fixture, had installed into the boot before)."""
    if VM_FIXTURES & set(request.fixturenames):
        machine: VM = request.getfixturevalue("vm")
        rebooted = machine.ensure_running()
        # Before lxcsd_vm's first use, that fixture installs.
        wanted = "lxcsd_vm" in request.fixturenames and getattr(machine, "lxcsd_installed", False)
        if wanted and (rebooted or not _installed(machine)):
            machine.install_lxcsd()


def _installed(machine: VM) -> bool:
    return machine.run(["test", "-x", "/usr/local/bin/lxcsd", "-a", "-d",
                        "/usr/src/lxcsd/tests"], check=False).returncode == 0


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if VM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.vm)


def _vms_of(item: pytest.Item) -> list[VM]:
    found: dict[int, VM] = {}
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, VM):
            found[id(value)] = value
    return list(found.values())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for machine in _vms_of(item):
            report.sections.append((f"VM {machine.name} serial console ({call.when})",
                                    machine.console_tail(100)))
            if machine.running:
                report.sections.append((f"VM {machine.name} journal ({call.when})",
                                        machine.journal(lines=100)))
    return report
