"""vlan and ipvlan networks where the kernel has them: the host's kernel here has neither
802.1q nor ipvlan (test_net_devices.py skips them), the nested VM's Debian kernel has both.
The same tests run inside the guest, against the installed tree."""

from __future__ import annotations

import pytest

from tests.infra.vm.vm import VM

pytestmark = pytest.mark.network

GUEST_TREE = "/usr/src/lxcsd"
GUEST_PYTHON = "/usr/local/lib/lxcsd/venv/bin/python"


def test_vlan_ipvlan_macvlan_in_the_vm(lxcsd_vm: VM) -> None:
    result = lxcsd_vm.run(
        f"cd {GUEST_TREE} && modprobe -a 8021q ipvlan macvlan veth bridge; "
        f"{GUEST_PYTHON} -m pytest -q -rs -p no:cacheprovider "
        "tests/integration/net/test_net_devices.py -k 'vlan or ipvlan'",  # vlan, ipvlan, port VLANs
        check=False, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "4 passed" in output and "skipped" not in output, output
