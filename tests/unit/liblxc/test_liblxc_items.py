"""GET_CONFIG_ITEM answers (lxcsd.liblxc.items) for real configs read by lxcsd.config,
formatted as liblxc's getters in confile.c print them (checked with lxc-ls/lxc-attach
against a real lxc-start container: lxc.start.auto came back "0", lxc.group and lxc.idmap
unset came back as "no value")."""

from __future__ import annotations

from pathlib import Path

from lxcsd.config.load import load_path
from lxcsd.liblxc.items import running_item
from lxcsd.net import state as net_state

CONFIG = """\
lxc.uts.name = web
lxc.rootfs.path = dir:/srv/web/rootfs
lxc.group = onboot
lxc.group = web
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.1.type = veth
lxc.net.1.veth.pair = vweb1
"""


def item(tmp_path: Path, key: str, text: str = CONFIG) -> str | None:
    config = tmp_path / "config"
    config.write_text(text)
    (tmp_path / "run").mkdir(exist_ok=True)
    return running_item(load_path(str(config), "web"), key, str(tmp_path / "run"),
                        datadir="/usr/share/lxcsd")


def test_single_and_list_values(tmp_path: Path) -> None:
    assert item(tmp_path, "lxc.uts.name") == "web"
    assert item(tmp_path, "lxc.group") == "onboot\nweb\n"
    assert item(tmp_path, "lxc.idmap") == "u 0 100000 65536\ng 0 100000 65536\n"
    assert item(tmp_path, "lxc.net.0.link") == "br0"
    assert item(tmp_path, "lxc.utsname") == "web"  # a legacy name, as liblxc accepts it


def test_numbers_liblxc_always_prints(tmp_path: Path) -> None:
    assert item(tmp_path, "lxc.start.auto") == "0"
    assert item(tmp_path, "lxc.no_new_privs") == "0"
    assert item(tmp_path, "lxc.start.auto", CONFIG + "lxc.start.auto = 1\n") == "1"


def test_no_value(tmp_path: Path) -> None:
    assert item(tmp_path, "lxc.arch") is None
    assert item(tmp_path, "lxc.no.such.key") is None
    assert item(tmp_path, "lxc.idmap", "lxc.uts.name = web\n") is None


def test_seccomp_is_the_policy_in_force(tmp_path: Path) -> None:
    """lxc-attach loads what this names: lxcsd's default when the config names none."""
    assert item(tmp_path, "lxc.seccomp.profile") == "/usr/share/lxcsd/common.seccomp"
    assert item(tmp_path, "lxc.seccomp") == "/usr/share/lxcsd/common.seccomp"
    mine = CONFIG + "lxc.seccomp.profile = /etc/lxc/mine.seccomp\n"
    assert item(tmp_path, "lxc.seccomp.profile", mine) == "/etc/lxc/mine.seccomp"


def test_veth_pair_is_the_running_name(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    net_state.append(str(tmp_path / "run"), net=0, type="veth", host="vethAbC123", link="br0")
    net_state.append(str(tmp_path / "run"), net=1, type="veth", host="vweb1")
    assert item(tmp_path, "lxc.net.0.veth.pair") == "vethAbC123"  # generated at start
    assert item(tmp_path, "lxc.net.1.veth.pair") == "vweb1"  # configured
    assert item(tmp_path, "lxc.net.2.veth.pair") is None


def test_preset_records_what_lxc_tools_ask(tmp_path: Path) -> None:
    from lxcsd.liblxc.items import preset
    from lxcsd.liblxc.wire import decode_item

    config = tmp_path / "config"
    config.write_text(CONFIG)
    (tmp_path / "run").mkdir()
    net_state.append(str(tmp_path / "run"), net=0, type="veth", host="vethAbC123")
    fields = preset(load_path(str(config), "web"), str(tmp_path / "run"), "/usr/share/lxcsd")
    answers = {key[len("item."):]: decode_item(value) for key, value in fields.items()}
    assert answers["lxc.start.auto"] == "0" and answers["lxc.group"] == "onboot\nweb\n"
    assert answers["lxc.idmap"] == "u 0 100000 65536\ng 0 100000 65536\n"
    assert answers["lxc.arch"] is None  # recorded as "no value": no worker for it
    assert answers["lxc.seccomp.profile"] == answers["lxc.seccomp"] == \
        "/usr/share/lxcsd/common.seccomp"
    assert (answers["lxc.net.0.type"], answers["lxc.net.0.link"],
            answers["lxc.net.0.veth.pair"]) == ("veth", "br0", "vethAbC123")
    assert answers["lxc.net.1.veth.pair"] == "vweb1"
    assert "lxc.net.2.type" in answers and answers["lxc.net.2.type"] is None  # lxc-info's end
