"""lxcsd-net's bridge, NAT and dnsmasq (lxcsd.net.service), in a network namespace the test
creates: a container gets a DHCP lease from dnsmasq, a restart keeps the bridge and the
container's connectivity, a stop with no container left removes everything."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import netharness as nh
import pytest

import lxcsd.net as net
from lxcsd.config import netconf
from lxcsd.net import service
from lxcsd.net.spec import plan_of

pytestmark = pytest.mark.network

NET_CONF = """\
bridge = lxcbr0
address = 10.0.3.1/24
dhcp_range = 10.0.3.100,10.0.3.150
nat = on
"""


def _nft_table() -> str:
    result = subprocess.run(["nft", "list", "table", "ip", service.TABLE],
                            capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


def _forwarding() -> str:
    with open("/proc/sys/net/ipv4/ip_forward") as handle:
        return handle.read().strip()


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq-base is not installed")
def test_dhcp_lease_restart_keeps_bridge_stop_removes_all(tmp_path: Path) -> None:
    conf_file = tmp_path / "net.conf"
    conf_file.write_text(NET_CONF)
    run_dir, lease_dir = str(tmp_path / "run"), str(tmp_path / "lease")

    def body() -> dict[str, object]:
        seen: dict[str, object] = {"forward before": _forwarding()}
        conf = netconf.load([str(conf_file)])
        c = nh.container(tmp_path, "d", "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\n"
                         "lxc.net.0.flags = up\nlxc.net.0.hwaddr = 00:16:3e:xx:xx:xx\n")
        box = nh.Box()
        try:
            seen["dnsmasq"] = service.up(conf, run_dir=run_dir, lease_dir=lease_dir)
            seen["table"] = _nft_table()
            seen["forward"] = _forwarding()
            net.setup(plan_of(c), box.pid, str(tmp_path / "state"))
            seen["udhcpc"] = box.sh("udhcpc -i eth0 -n -q -t 10 -T 1 -s /bin/true 2>&1")
            seen["mac"] = box.mac("eth0")
            seen["leases"] = Path(lease_dir, "dnsmasq.lxcbr0.leases").read_text()
            box.sh("ip addr add 10.0.3.20/24 dev eth0")
            # Restart: the bridge has a port, so it stays; so does the container's link.
            seen["kept"] = service.down(run_dir=run_dir)
            seen["table after restart stop"] = _nft_table()
            service.up(conf, run_dir=run_dir, lease_dir=lease_dir)
            box.sh("ping -c1 -W5 10.0.3.1")
            net.cleanup("d", str(tmp_path / "state"))
        finally:
            seen["final kept"] = service.down(run_dir=run_dir)
            box.kill()
        seen["links"] = sorted(nh.links())
        seen["table after stop"] = _nft_table()
        seen["forward after stop"] = _forwarding()
        return seen

    seen = nh.in_netns(body)
    assert seen["dnsmasq"]
    assert "masquerade" in seen["table"] and "10.0.3.0/24" in seen["table"]
    assert seen["forward"] == "1"
    assert "obtained" in seen["udhcpc"], seen["udhcpc"]
    lease = [line for line in seen["leases"].splitlines() if seen["mac"] in line]
    assert lease, seen["leases"]
    address = lease[0].split()[2]
    assert address.startswith("10.0.3.") and 100 <= int(address.rsplit(".", 1)[1]) <= 150
    assert f"lease of {address} obtained" in seen["udhcpc"]
    assert len(seen["kept"]) == 1 and seen["kept"][0].startswith("veth")
    assert seen["table after restart stop"] == ""
    assert seen["final kept"] == []
    assert seen["links"] == ["lo"]
    assert seen["table after stop"] == ""
    assert seen["forward after stop"] == seen["forward before"]


def test_net_conf_layering_and_errors(tmp_path: Path) -> None:
    etc = tmp_path / "etc.conf"
    shipped = tmp_path / "shipped.conf"
    etc.write_text("bridge = br7\n# address = 1.2.3.4\nnat = off\n")
    shipped.write_text("bridge = lxcbr0\naddress = 192.168.50.1\nnetmask = 255.255.255.0\n")
    conf = netconf.load([str(etc), str(shipped)])
    assert (conf.bridge, str(conf.interface), conf.nat) == ("br7", "192.168.50.1/24", False)
    assert conf.dhcp_range == ("192.168.50.2", "192.168.50.254") and conf.dhcp_max == 253
    assert "masquerade" not in service.ruleset(conf, conf.bridge)
    etc.write_text("dhcp_range = 10.0.0.2,10.0.0.9\n")
    with pytest.raises(netconf.ConfigError) as caught:
        netconf.load([str(etc), str(shipped)])
    assert str(caught.value).startswith(f"{etc}:1: dhcp_range: ")
    etc.write_text("brige = x\n")
    with pytest.raises(netconf.ConfigError, match="unknown setting"):
        netconf.load([str(etc)])
