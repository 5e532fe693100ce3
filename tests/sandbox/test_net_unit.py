"""lxcsd-net.service under a real systemd (the sandbox has its own network namespace, so the
bridge, the nft table and dnsmasq never reach the host's network), installed by
packaging/install.sh: dnsmasq becomes the unit's main process, a restart keeps the bridge
while a port is attached, a stop with no port removes bridge, table and dnsmasq."""

from __future__ import annotations

import shutil

import pytest

from tests.infra import e2e_util as u
from tests.infra.sandbox import Sandbox

pytestmark = pytest.mark.network

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


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq-base is not installed")
def test_container_on_lxcbr0_gets_a_lease_and_survives_a_restart(
        clean_lxcsd_sandbox: Sandbox) -> None:
    """The whole chain under systemd: lxcsd-net.service, then lxc@NAME with a veth on
    lxcbr0 (the generator wires Wants=/After=), DHCP from dnsmasq, a restart of
    lxcsd-net.service under the running container, and teardown of both."""

    sb = clean_lxcsd_sandbox
    name = "netdhcp"
    try:
        sb.systemctl("start", UNIT)
        u.make_busybox(sb, name, ["lxc.net.0.type = veth", "lxc.net.0.link = lxcbr0",
                                  "lxc.net.0.flags = up", "lxc.net.0.name = eth0",
                                  "lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx"])
        sb.systemctl("daemon-reload")
        assert UNIT in u.prop(sb, u.unit(name), "Wants")
        u.start(sb, name)
        lease = u.in_container(sb, name, ["/bin/busybox", "sh", "-c", "busybox udhcpc -i eth0 "
                                          "-n -q -t 10 -T 1 -s /bin/true 2>&1"])
        assert "obtained" in lease, lease
        address = lease.split("lease of ", 1)[1].split()[0]
        mac = u.in_container(sb, name, ["/bin/busybox", "cat", "/sys/class/net/eth0/address"])
        leases = sb.run("cat /var/lib/lxcsd/net/dnsmasq.lxcbr0.leases").stdout
        assert f"{mac.strip()} {address}" in leases, leases
        u.in_container(sb, name, ["/bin/busybox", "ip", "addr", "add", f"{address}/24",
                                  "dev", "eth0"])

        sb.systemctl("restart", UNIT)
        assert u.prop(sb, u.unit(name), "ActiveState") == "active"
        u.in_container(sb, name, ["/bin/busybox", "ping", "-c1", "-W5", "10.0.3.1"])

        sb.systemctl("stop", u.unit(name))
        assert not [n for n in _links(sb) if n.startswith("veth")], _links(sb)
        sb.systemctl("stop", UNIT)
        assert "lxcbr0" not in _links(sb)
    except Exception:
        print(sb.journal(UNIT))
        print(sb.journal(u.unit(name)))
        raise
    finally:
        sb.run(f"systemctl stop {u.unit(name)} {UNIT}", check=False)


def test_without_dnsmasq_the_unit_stays_active_and_etc_overrides(
        clean_lxcsd_sandbox: Sandbox) -> None:
    sb = clean_lxcsd_sandbox
    sb.write_file("/etc/lxcsd/net.conf", "bridge = lxcbr1\naddress = 10.0.9.1/24\n"
                  "nat = off\ndnsmasq = off\n", 0o644)
    try:
        sb.systemctl("start", UNIT)
        # start returns at READY=1; the unit's process exits just after, ending "running".
        u.wait_for(lambda: _prop(sb, "SubState") != "running", 10, "the set-up process to end")
        assert (_prop(sb, "ActiveState"), _prop(sb, "SubState"), _prop(sb, "MainPID")) == \
            ("active", "exited", "0")
        assert "inet 10.0.9.1/24" in sb.run("ip -4 addr show dev lxcbr1").stdout
        table = sb.run("nft list table ip lxcsd-net").stdout
        assert "masquerade" not in table and 'iifname "lxcbr1"' in table
        assert sb.run("pidof dnsmasq", check=False).returncode != 0
        sb.systemctl("stop", UNIT)
        assert "lxcbr1" not in _links(sb)
        assert sb.run("nft list table ip lxcsd-net", check=False).returncode != 0
    finally:
        sb.run(f"systemctl stop {UNIT}; rm -f /etc/lxcsd/net.conf", check=False)
