"""lxcsd.net's pure parts: state file, names and MACs, hook command lines, needs_netlink,
error locations, the nft ruleset, and the import-light promise of lxcsd.net."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import lxcsd.net as net
from lxcsd.config import netconf
from lxcsd.config.load import load_path
from lxcsd.errors import ConfigError
from lxcsd.net import hooks, names, service, state


def _container(tmp_path: Path, text: str, name: str = "c1") -> object:
    config = tmp_path / name / "config"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    return load_path(str(config), name)


def test_state_appends_merge_per_network_and_escape(tmp_path: Path) -> None:
    state.append(str(tmp_path), pin="/run/x/netns")
    state.append(str(tmp_path), net=0, type="veth", host="vethA", down="echo a\tb\\n\nc")
    state.append(str(tmp_path), net=1, type="phys", orig="eth9", mtu=None)
    state.append(str(tmp_path), net=0, hostindex=7)
    records, pins = state.read(str(tmp_path)) or ([], [])
    assert pins == ["/run/x/netns"]
    assert records == [
        {"net": "0", "type": "veth", "host": "vethA", "down": "echo a\tb\\n\nc",
         "hostindex": "7"},
        {"net": "1", "type": "phys", "orig": "eth9"},
    ]
    state.remove(str(tmp_path))
    assert state.read(str(tmp_path)) is None
    state.remove(str(tmp_path))  # idempotent


def test_state_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    records, _ = state.parse("net=0\ttype=veth\thost=vethA\nnet=0\thosti")
    assert records == [{"net": "0", "type": "veth", "host": "vethA"}]


def test_hwaddr_template_is_stable_per_container_and_index() -> None:
    mac = names.fill_hwaddr("00:16:3e:xx:xx:xx", "web", 0)
    assert re.fullmatch(r"00:16:3e(:[0-9a-f]{2}){3}", mac)
    assert names.fill_hwaddr("00:16:3e:xx:xx:xx", "web", 0) == mac
    assert names.fill_hwaddr("00:16:3e:xx:xx:xx", "web", 1) != mac
    assert names.fill_hwaddr("00:16:3e:xx:xx:xx", "db", 0) != mac
    assert names.fill_hwaddr("00:16:3E:12:34:56", "web", 0) == "00:16:3e:12:34:56"
    first = int(names.fill_hwaddr("xx:xx:xx:xx:xx:xx", "web", 0)[:2], 16)
    assert first & 1 == 0 and first & 2 == 2  # unicast, locally administered
    assert names.host_hwaddr("00:16:3e:01:02:03") == "fe:16:3e:01:02:03"


def test_random_ifname_like_lxc() -> None:
    name = names.random_ifname("veth")
    assert re.fullmatch(r"veth[a-zA-Z0-9]{6}", name)
    assert names.random_ifname("veth") != name


def test_hook_command_lines_as_liblxc() -> None:
    args = hooks.script_args("veth", "br0", "vethX")
    assert hooks.command_line("/x/up", "web", 0, "up", args) == \
        "exec /x/up 'web' 'net' 'up' veth br0 vethX"
    assert hooks.command_line("/x/up", "web", 1, "down", args) == "exec /x/up veth br0 vethX"
    assert hooks.script_args("vlan", "eth0", "") == ["vlan"]
    assert hooks.script_args("phys", "eth3", "") == ["phys", "eth3"]
    env = hooks.hook_env(name="web", config_file="/c", version=1, hook="up", args=args)
    assert (env["LXC_HOOK_TYPE"], env["LXC_HOOK_SECTION"], env["LXC_NET_TYPE"],
            env["LXC_NET_PARENT"], env["LXC_NET_PEER"], env["LXC_NAME"]) == \
        ("up", "net", "veth", "br0", "vethX", "web")
    env = hooks.hook_env(name="web", config_file="/c", version=0, hook="up", args=args)
    assert "LXC_NET_TYPE" not in env and env["LXC_NAME"] == "web"


@pytest.mark.parametrize(("text", "expected"), [
    ("", False),
    ("lxc.net.0.type = empty\n", False),
    ("lxc.net.0.type = none\n", False),
    ("lxc.net.0.type = empty\nlxc.net.0.script.up = /bin/true\n", True),
    ("lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\n", True),
    ("lxc.net.0.type = empty\nlxc.net.1.type = phys\nlxc.net.1.link = eth1\n", True),
    ("lxc.network.type = macvlan\nlxc.network.link = eth0\n", True),
])
def test_needs_netlink(tmp_path: Path, text: str, expected: bool) -> None:
    assert net.needs_netlink(_container(tmp_path, text)) is expected  # type: ignore[arg-type]


def test_key_errors_point_at_the_line(tmp_path: Path) -> None:
    from lxcsd.net.create import key_error
    from lxcsd.net.spec import NetPlan, plan_of

    c = plan_of(_container(tmp_path, "lxc.uts.name = c1\nlxc.net.0.type = veth\n"
                           "lxc.net.0.link = br9\n"))  # type: ignore[arg-type]
    c = NetPlan.load(c.dump())  # as the helper reads it from the compiled plan
    error = key_error(c, c.networks[0], "link", "bridge 'br9' does not exist")
    assert str(error) == f"{tmp_path}/c1/config:3: lxc.net.0.link: bridge 'br9' does not exist"
    error = key_error(c, c.networks[0], "veth.pair", "in use")
    assert str(error).startswith(f"{tmp_path}/c1/config:2: lxc.net.0.veth.pair: ")


def test_ruleset_text(tmp_path: Path) -> None:
    conf_file = tmp_path / "net.conf"
    conf_file.write_text("bridge = br5\naddress = 172.20.0.1/16\n")
    conf = netconf.load([str(conf_file)])
    text = service.ruleset(conf, conf.bridge)
    assert "ip saddr 172.20.0.0/16 ip daddr != 172.20.0.0/16 masquerade" in text
    assert 'iifname "br5" udp dport { 53, 67 } accept' in text
    argv = service.dnsmasq_argv(conf, "/run/x", "/var/x", "/usr/sbin/dnsmasq")
    assert "--dhcp-range=172.20.0.2,172.20.255.254" in argv
    assert "--interface=br5" in argv and "--listen-address=172.20.0.1" in argv


def test_shipped_net_conf_matches_generator_reading() -> None:
    shipped = netconf.shipped_path()
    conf = netconf.load([shipped])
    assert conf.bridge == netconf.bridge_name([shipped]) == "lxcbr0"
    assert str(conf.interface) == "10.0.3.1/24" and conf.nat and conf.dnsmasq


def test_generator_and_lxcsd_net_name_the_same_bridge(tmp_path: Path) -> None:
    """One reader: the bridge the generator orders containers after is the one lxcsd-net
    makes, comments and empty values included; the generator only never fails."""
    etc, shipped = tmp_path / "etc.conf", tmp_path / "shipped.conf"
    shipped.write_text("bridge = br1\n")
    for text, bridge in (("bridge = br7  # ours\n", "br7"), ("bridge =\n", "lxcbr0"),
                         ("# bridge = br8\n", "br1"), ("bridge = br2\nbridge = br3\n", "br3")):
        etc.write_text(text)
        files = [str(etc), str(shipped)]
        assert netconf.load(files).bridge == netconf.bridge_name(files) == bridge, text
    etc.write_text("bogus = 1\nbridge = br4\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        netconf.load([str(etc)])
    assert netconf.bridge_name([str(etc)]) == "br4"
    etc.write_bytes(b"bridge = \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        netconf.load([str(etc)])
    assert netconf.bridge_name([str(etc), str(shipped)]) == "br1"


def test_lxcsd_net_imports_no_netlink_until_needed(tmp_path: Path) -> None:
    """needs_netlink and a cleanup without devices must not import pyroute2 (~100 ms)."""
    code = (
        "import sys, lxcsd.net as n\n"
        "from lxcsd.config.load import load_path\n"
        f"c = load_path({str(tmp_path / 'config')!r}, 'x')\n"
        "assert not n.needs_netlink(c)\n"
        f"n.cleanup('x', {str(tmp_path / 'state')!r})\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pyroute2', 'json', 'asyncio')]\n"
        "assert not bad, bad\n"
    )
    (tmp_path / "config").write_text("lxc.net.0.type = empty\n")
    (tmp_path / "state").mkdir()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(tmp_path),
                   env={"PYTHONPATH": str(Path(__file__).resolve().parents[3])})


def test_preload_imports_netlink_only_when_needed(tmp_path: Path) -> None:
    code = (
        "import sys, lxcsd.net as n\n"
        "from lxcsd.config.load import load_path\n"
        "from lxcsd.net.spec import plan_of\n"
        f"n.preload(plan_of(load_path({str(tmp_path / 'empty')!r}, 'e')))\n"
        "assert 'pyroute2' not in sys.modules\n"
        f"n.preload(plan_of(load_path({str(tmp_path / 'veth')!r}, 'v')))\n"
        "assert 'pyroute2.netlink.rtnl.ifinfmsg' in sys.modules\n"
        "assert 'lxcsd.net.create' in sys.modules\n"
    )
    (tmp_path / "empty").write_text("lxc.net.0.type = empty\n")
    (tmp_path / "veth").write_text("lxc.net.0.type = veth\nlxc.net.0.link = br0\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(tmp_path),
                   env={"PYTHONPATH": str(Path(__file__).resolve().parents[3])})
