"""lxcsd.net.setup/cleanup on real devices, in a network namespace each test creates.

The "host" is the test's namespace (netharness.in_netns); containers are busybox processes
in their own network namespaces. What is checked is what a user would check: addresses and
routes as `ip` shows them inside, pings, the kernel's link attributes, the host's interface
list after cleanup.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import netharness as nh
import pytest

import lxcsd.net as net
from lxcsd.errors import ConfigError
from lxcsd.net.spec import plan_of

pytestmark = pytest.mark.network

VETH = """
lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx
lxc.net.0.ipv4.address = {address}/24
lxc.net.0.ipv4.gateway = {gateway}
"""


def _state(tmp: Path, name: str) -> str:
    return str(tmp / "run" / name)


def test_veth_on_bridge_gets_address_gateway_and_pings(tmp_path: Path) -> None:
    def body() -> None:
        nh.make_bridge("br0", "10.0.3.1/24")
        c = nh.container(tmp_path, "c1", VETH.format(address="10.0.3.10", gateway="auto"))
        box = nh.Box()
        try:
            assert net.needs_netlink(c)
            assert net.setup(plan_of(c), box.pid, _state(tmp_path, "c1")) == ["eth0"]
            addr = box.sh("ip -4 addr show dev eth0")
            assert "inet 10.0.3.10/24 brd 10.0.3.255" in addr
            assert "default via 10.0.3.1 dev eth0" in box.sh("ip route")
            mac = box.mac("eth0")
            assert mac.startswith("00:16:3e:") and "x" not in mac
            box.sh("ping -c1 -W5 10.0.3.1")
            host_ends = [n for n in nh.links() if n.startswith("veth")]
            assert len(host_ends) == 1
            assert os.path.exists(f"/sys/class/net/br0/brif/{host_ends[0]}")
            net.cleanup("c1", _state(tmp_path, "c1"))
            assert sorted(nh.links()) == ["br0", "lo"]
            net.cleanup("c1", _state(tmp_path, "c1"))  # idempotent
            # The templated MAC is the same at the next start.
            assert net.setup(plan_of(c), box.pid, _state(tmp_path, "c1")) == ["eth0"]
            assert box.mac("eth0") == mac
            net.cleanup("c1", _state(tmp_path, "c1"))
        finally:
            box.kill()

    nh.in_netns(body)


def test_two_containers_on_one_bridge_ping_each_other(tmp_path: Path) -> None:
    def body() -> None:
        nh.make_bridge("br0", "10.0.3.1/24")
        boxes = []
        try:
            for name, address in (("a", "10.0.3.11"), ("b", "10.0.3.12")):
                c = nh.container(tmp_path, name, VETH.format(address=address,
                                                             gateway="10.0.3.1"))
                boxes.append(nh.Box())
                net.setup(plan_of(c), boxes[-1].pid, _state(tmp_path, name))
            boxes[0].sh("ping -c1 -W5 10.0.3.12")
            boxes[1].sh("ping -c1 -W5 10.0.3.11")
            macs = {box.mac("eth0") for box in boxes}
            assert len(macs) == 2  # the template is filled per container
        finally:
            for name in ("a", "b"):
                net.cleanup(name, _state(tmp_path, name))
            for box in boxes:
                box.kill()
        assert sorted(nh.links()) == ["br0", "lo"]

    nh.in_netns(body)


def _child_links(tmp_path: Path, text: str) -> dict[str, object]:
    """Set up ``text``'s networks on parent up0 (a veth end); what the kernel reports."""

    def body() -> dict[str, object]:
        nh.make_veth("up0", "up0peer")
        c = nh.container(tmp_path, "m", text)
        box = nh.Box()
        try:
            names = net.setup(plan_of(c), box.pid, _state(tmp_path, "m"))
            from lxcsd.net import nl

            info = {}
            with nl.open_in(f"/proc/{box.pid}/ns/net") as inner:
                for name in names:
                    link = inner.get_links(nl.index_of(inner, name))[0]
                    data = nl.attr(link, "linkinfo", "data")
                    info[name] = (nl.attr(link, "linkinfo", "kind"),
                                  dict(data["attrs"]) if data else {}, nl.attr(link, "mtu"))
            addresses = box.sh("ip -4 addr")
            host = sorted(nh.links())
            net.cleanup("m", _state(tmp_path, "m"))
            return {"names": names, "info": info, "addresses": addresses, "host": host}
        finally:
            box.kill()

    return nh.in_netns(body)  # type: ignore[no-any-return]


def test_macvlan_with_its_mode(tmp_path: Path) -> None:
    got = _child_links(tmp_path, """
lxc.net.0.type = macvlan
lxc.net.0.link = up0
lxc.net.0.macvlan.mode = bridge
lxc.net.0.name = mv0
lxc.net.0.flags = up
lxc.net.0.mtu = 1400
lxc.net.0.ipv4.address = 192.168.7.2/24
lxc.net.1.type = macvlan
lxc.net.1.link = up0
""")
    assert got["names"] == ["mv0", "eth0"]
    kind, attrs, mtu = got["info"]["mv0"]
    assert kind == "macvlan" and attrs["IFLA_MACVLAN_MODE"] == "bridge" and mtu == 1400
    assert got["info"]["eth0"][1]["IFLA_MACVLAN_MODE"] == "private"  # LXC's default
    assert "inet 192.168.7.2/24" in got["addresses"]
    assert got["host"] == ["lo", "up0", "up0peer"]  # nothing left host-side


@pytest.mark.skipif(not nh.kernel_has("vlan"), reason="this kernel has no 802.1q support")
def test_vlan_with_its_id(tmp_path: Path) -> None:
    got = _child_links(tmp_path, "lxc.net.0.type = vlan\nlxc.net.0.link = up0\n"
                       "lxc.net.0.vlan.id = 42\nlxc.net.0.name = vl42\n")
    kind, attrs, _ = got["info"]["vl42"]
    assert kind == "vlan" and attrs["IFLA_VLAN_ID"] == 42


@pytest.mark.skipif(not nh.kernel_has("ipvlan"), reason="this kernel has no ipvlan support")
def test_ipvlan_with_its_mode(tmp_path: Path) -> None:
    got = _child_links(tmp_path, "lxc.net.0.type = ipvlan\nlxc.net.0.link = up0\n"
                       "lxc.net.0.ipvlan.mode = l2\nlxc.net.0.name = ipv0\n")
    kind, attrs, _ = got["info"]["ipv0"]
    assert kind == "ipvlan" and attrs["IFLA_IPVLAN_MODE"] == 0


@pytest.mark.skipif(not nh.kernel_has("vlan_filtering"),
                    reason="this kernel's bridge has no VLAN filtering")
def test_veth_bridge_port_vlans(tmp_path: Path) -> None:
    def body() -> tuple[str, str]:
        _iproute2("link", "add", "br0", "type", "bridge", "vlan_filtering", "1")
        _iproute2("link", "set", "br0", "up")
        c = nh.container(tmp_path, "bv", "lxc.net.0.type = veth\nlxc.net.0.link = br0\n"
                         "lxc.net.0.veth.pair = vbv0\nlxc.net.0.veth.vlan.id = 10\n"
                         "lxc.net.0.veth.vlan.tagged.id = 20\n"
                         "lxc.net.0.veth.vlan.tagged.id = 30\n")
        box = nh.Box()
        try:
            net.setup(plan_of(c), box.pid, _state(tmp_path, "bv"))
            import subprocess

            vlans = subprocess.run(["bridge", "-j", "vlan", "show", "dev", "vbv0"],
                                   capture_output=True, text=True, check=True).stdout
            net.cleanup("bv", _state(tmp_path, "bv"))
            _iproute2("link", "set", "br0", "type", "bridge", "vlan_filtering", "0")
            error = ""
            try:
                net.setup(plan_of(c), box.pid, _state(tmp_path, "bv"))
            except ConfigError as err:
                error = str(err)
            return vlans, error
        finally:
            box.kill()

    import json

    vlans, error = nh.in_netns(body)
    ports = {entry.get("ifname"): entry["vlans"] for entry in json.loads(vlans)}
    got = {v["vlan"]: sorted(v.get("flags", [])) for v in ports["vbv0"]}
    assert got == {10: ["Egress Untagged", "PVID"], 20: [], 30: []}
    assert "lxc.net.0.veth.vlan.id: VLAN filtering is off on 'br0'" in error


PHYS = """
lxc.net.0.type = phys
lxc.net.0.link = {link}
lxc.net.0.name = eth1
lxc.net.0.flags = up
lxc.net.0.ipv4.address = 10.9.0.2/24
"""


@pytest.mark.parametrize("how", ["cleanup", "init killed", "helper killed"])
def test_phys_moves_in_and_comes_back_with_its_name(tmp_path: Path, how: str) -> None:
    def body() -> None:
        index = nh.make_veth("dummy7", "dummy7peer")
        c = nh.container(tmp_path, "p", PHYS.format(link="dummy7"))
        box = nh.Box()
        try:
            if how == "helper killed":
                _setup_in_killed_helper(c, box.pid, _state(tmp_path, "p"))
            else:
                assert net.setup(plan_of(c), box.pid, _state(tmp_path, "p")) == ["eth1"]
            assert "dummy7" not in nh.links()
            assert "10.9.0.2/24" in box.sh("ip -4 addr show dev eth1")
            if how == "init killed":
                box.kill()  # the namespace is pinned: the device is not lost with it
            net.cleanup("p", _state(tmp_path, "p"))
            assert nh.links().get("dummy7") == index
            assert not os.path.exists(os.path.join(_state(tmp_path, "p"), "netns"))
        finally:
            box.kill()

    nh.in_netns(body)


def _setup_in_killed_helper(c: object, pid: int, state_dir: str) -> None:
    """setup in a forked "helper" that is SIGKILLed right after it (no cleanup of its own)."""
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - child
        os.close(ready_r)
        net.setup(plan_of(c), pid, state_dir)  # type: ignore[arg-type]
        os.write(ready_w, b"1")
        time.sleep(60)
        os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)


def test_host_side_gone_after_helper_and_init_sigkill(tmp_path: Path) -> None:
    def body() -> None:
        nh.make_bridge("br0", "10.0.3.1/24")
        c = nh.container(tmp_path, "k", VETH.format(address="10.0.3.20", gateway="dev"))
        box = nh.Box()
        try:
            _setup_in_killed_helper(c, box.pid, _state(tmp_path, "k"))
            assert "default dev eth0" in box.sh("ip route")
            assert any(n.startswith("veth") for n in nh.links())
            net.cleanup("k", _state(tmp_path, "k"))  # init still running
            assert sorted(nh.links()) == ["br0", "lo"]
            assert box.links() == ["lo"]
            # Again, with init SIGKILLed first: its namespace takes the pair with it.
            net.setup(plan_of(c), box.pid, _state(tmp_path, "k"))
            box.kill()
            net.cleanup("k", _state(tmp_path, "k"))
            assert sorted(nh.links()) == ["br0", "lo"]
        finally:
            box.kill()

    nh.in_netns(body)


def test_script_hooks_get_lxc_environment(tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$LXC_HOOK_TYPE $LXC_NET_TYPE $LXC_NET_PARENT "
                    f"$LXC_NET_PEER $LXC_NAME $*\" >> {log}\n")
    hook.chmod(0o755)

    def body() -> str:
        nh.make_bridge("br0", "10.0.3.1/24")
        c = nh.container(tmp_path, "h", f"""
lxc.hook.version = 1
lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.0.veth.pair = vhook0
lxc.net.0.script.up = {hook}
lxc.net.0.script.down = {hook}
lxc.net.1.type = empty
lxc.net.1.script.up = {hook}
""")
        box = nh.Box()
        try:
            assert net.setup(plan_of(c), box.pid, _state(tmp_path, "h")) == ["eth0"]
            assert "vhook0" in nh.links()
            net.cleanup("h", _state(tmp_path, "h"))
            return " ".join(box.links())
        finally:
            box.kill()

    assert nh.in_netns(body).split() == ["lo"]
    assert log.read_text().splitlines() == [
        "up veth br0 vhook0 h veth br0 vhook0",
        "up empty   h empty",  # no LXC_NET_PARENT, LXC_NET_PEER for empty
        "down veth br0 vhook0 h veth br0 vhook0",
    ]


def test_hook_version_0_arguments(tmp_path: Path) -> None:
    log = tmp_path / "args.log"
    hook = tmp_path / "hook0.sh"
    hook.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n")
    hook.chmod(0o755)

    def body() -> None:
        nh.make_veth("up0", "up0peer")
        c = nh.container(tmp_path, "v0", f"lxc.net.0.type = macvlan\nlxc.net.0.link = up0\n"
                         f"lxc.net.0.script.up = {hook}\n")
        box = nh.Box()
        try:
            net.setup(plan_of(c), box.pid, _state(tmp_path, "v0"))
            net.cleanup("v0", _state(tmp_path, "v0"))
        finally:
            box.kill()

    nh.in_netns(body)
    assert log.read_text() == "v0 net up macvlan up0\n"


def test_missing_bridge_names_the_key_and_leaves_nothing(tmp_path: Path) -> None:
    def body() -> str:
        nh.make_bridge("br0", "10.0.3.1/24")
        c = nh.container(tmp_path, "e", VETH.format(address="10.0.3.30", gateway="auto")
                         + "lxc.net.1.type = veth\nlxc.net.1.link = nosuchbr\n")
        box = nh.Box()
        try:
            with pytest.raises(ConfigError) as caught:
                net.setup(plan_of(c), box.pid, _state(tmp_path, "e"))
            assert sorted(nh.links()) == ["br0", "lo"]  # network 0 undone
            assert box.links() == ["lo"]
            return str(caught.value)
        finally:
            box.kill()

    message = nh.in_netns(body)
    config = tmp_path / "e" / "config"
    line = config.read_text().splitlines().index("lxc.net.1.link = nosuchbr") + 1
    assert message.startswith(f"{config}:{line}: lxc.net.1.link: bridge 'nosuchbr' does not "
                              "exist")


def test_router_mode_routes_to_the_container(tmp_path: Path) -> None:
    def body() -> tuple[str, str]:
        c = nh.container(tmp_path, "r", """
lxc.net.0.type = veth
lxc.net.0.veth.mode = router
lxc.net.0.veth.pair = vr0
lxc.net.0.flags = up
lxc.net.0.ipv4.address = 10.5.0.2/32
lxc.net.0.ipv4.gateway = 169.254.0.1
""")
        box = nh.Box()
        try:
            net.setup(plan_of(c), box.pid, _state(tmp_path, "r"))
            host_routes = nh.host_sh("ip route")
            inside = box.sh("ip route")
            nh.host_sh("ip addr add 169.254.0.1/32 dev vr0")
            box.sh("ping -c1 -W5 169.254.0.1")
            net.cleanup("r", _state(tmp_path, "r"))
            return host_routes, inside
        finally:
            box.kill()

    host_routes, inside = nh.in_netns(body)
    assert "10.5.0.2 dev vr0" in host_routes
    assert "default via 169.254.0.1 dev eth0" in inside
    assert "169.254.0.1 dev eth0" in inside


def test_router_mode_with_l2proxy_on_the_uplink(tmp_path: Path) -> None:
    def body() -> tuple[str, str, str]:
        nh.make_veth("up0", "up0peer")
        c = nh.container(tmp_path, "l2", """
lxc.net.0.type = veth
lxc.net.0.veth.mode = router
lxc.net.0.link = up0
lxc.net.0.l2proxy = 1
lxc.net.0.flags = up
lxc.net.0.ipv4.address = 10.6.0.2/32
""")
        box = nh.Box()
        try:
            net.setup(plan_of(c), box.pid, _state(tmp_path, "l2"))
            proxies = _iproute2("neigh", "show", "proxy")
            with open("/proc/sys/net/ipv4/conf/up0/proxy_arp") as handle:
                proxy_arp = handle.read().strip()
            net.cleanup("l2", _state(tmp_path, "l2"))
            return proxies, proxy_arp, _iproute2("neigh", "show", "proxy")
        finally:
            box.kill()

    proxies, proxy_arp, after = nh.in_netns(body)
    assert "10.6.0.2 dev up0" in proxies and proxy_arp == "1"
    assert "10.6.0.2" not in after


def _iproute2(*args: str) -> str:
    """iproute2's ip (busybox's has no "neigh show proxy")."""
    import subprocess

    return subprocess.run(["/usr/sbin/ip", *args], capture_output=True, text=True,
                          check=True).stdout


def test_ipv6_address_and_gateway(tmp_path: Path) -> None:
    def body() -> tuple[str, str]:
        nh.make_bridge("br0", "10.0.3.1/24")
        c = nh.container(tmp_path, "v6", """
lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.0.flags = up
lxc.net.0.ipv6.address = fd00:3::10/64
lxc.net.0.ipv6.gateway = fd00:3::1
lxc.net.1.type = veth
lxc.net.1.link = br0
lxc.net.1.flags = up
lxc.net.1.ipv4.address = 192.168.9.5/24
lxc.net.1.ipv4.gateway = 10.1.1.1
""")
        box = nh.Box()
        try:
            assert net.setup(plan_of(c), box.pid, _state(tmp_path, "v6")) == ["eth0", "eth1"]
            return box.sh("ip -6 addr show dev eth0; ip -6 route"), box.sh("ip route")
        finally:
            net.cleanup("v6", _state(tmp_path, "v6"))
            box.kill()

    six, four = nh.in_netns(body)
    assert "inet6 fd00:3::10/64" in six
    assert "default via fd00:3::1 dev eth0" in six
    # A gateway outside the address's subnet gets a device route first (as liblxc).
    assert "10.1.1.1 dev eth1" in four and "default via 10.1.1.1 dev eth1" in four


def test_setup_undoes_a_previous_start_that_was_never_cleaned_up(tmp_path: Path) -> None:
    def body() -> list[str]:
        nh.make_bridge("br0", "10.0.3.1/24")
        c = nh.container(tmp_path, "re", "lxc.net.0.type = veth\nlxc.net.0.link = br0\n")
        old, new = nh.Box(), nh.Box()
        try:
            net.setup(plan_of(c), old.pid, _state(tmp_path, "re"))  # then no cleanup
            net.setup(plan_of(c), new.pid, _state(tmp_path, "re"))
            ends = [n for n in nh.links() if n.startswith("veth")]
            old_links = old.links()
            net.cleanup("re", _state(tmp_path, "re"))
            assert sorted(nh.links()) == ["br0", "lo"]
            return [str(len(ends))] + old_links
        finally:
            old.kill()
            new.kill()

    assert nh.in_netns(body) == ["1", "lo"]
