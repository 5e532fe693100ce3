"""lxcsd-net.service under a real systemd (the sandbox has its own network namespace, so the
bridge, the nft table and dnsmasq never reach the host's network), installed by
packaging/install.sh: dnsmasq becomes the unit's main process, a restart keeps the bridge
while a port is attached, a stop with no port removes bridge, table and dnsmasq."""

from __future__ import annotations

import shutil

import pytest

from tests.infra.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.root, pytest.mark.network]

UNIT = "lxcsd-net.service"


def _prop(sb: Sandbox, name: str) -> str:
    return sb.run(f"systemctl show -P {name} {UNIT}").stdout.strip()


def _links(sb: Sandbox) -> list[str]:
    return sorted(sb.run("ls /sys/class/net").stdout.split())


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq-base is not installed")
def test_lxcsd_net_unit_start_restart_stop(clean_lxcsd_sandbox: Sandbox) -> None:
    sb = clean_lxcsd_sandbox
    try:
        sb.systemctl("start", UNIT)
        assert _prop(sb, "ActiveState") == "active"
        main = _prop(sb, "MainPID")
        assert sb.run(f"cat /proc/{main}/comm").stdout.strip() == "dnsmasq"
        assert "lxcbr0" in _links(sb)
        assert "inet 10.0.3.1/24" in sb.run("ip -4 addr show dev lxcbr0").stdout
        assert "masquerade" in sb.run("nft list table ip lxcsd-net").stdout
        assert sb.run("cat /proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
        assert "dnsmasq" in _prop(sb, "StatusText") or "DHCP" in _prop(sb, "StatusText")

        # A container's port on the bridge: a restart must leave it attached.
        sb.run("ip link add vethtest0 type veth peer name vethtest1 && "
               "ip link set vethtest0 master lxcbr0 up")
        sb.systemctl("restart", UNIT)
        assert _prop(sb, "ActiveState") == "active"
        assert sb.run("cat /sys/class/net/vethtest0/master/uevent").stdout.count(
            "INTERFACE=lxcbr0") == 1
        assert _prop(sb, "MainPID") not in ("0", main)

        # A crash of dnsmasq fails the unit, and Restart=on-failure brings it back.
        sb.run(f"kill -9 {_prop(sb, 'MainPID')}")
        sb.run(f"for i in $(seq 100); do [ \"$(systemctl show -P NRestarts {UNIT})\" -ge 1 ] "
               f"&& systemctl is-active -q {UNIT} && exit 0; sleep 0.1; done; exit 1")

        sb.run("ip link del vethtest0")
        sb.systemctl("stop", UNIT)
        assert "lxcbr0" not in _links(sb)
        assert sb.run("nft list table ip lxcsd-net", check=False).returncode != 0
        assert sb.run("pidof dnsmasq", check=False).returncode != 0
    except Exception:
        print(sb.journal(UNIT))
        raise
    finally:
        sb.run(f"systemctl stop {UNIT}; ip link del vethtest0", check=False)
