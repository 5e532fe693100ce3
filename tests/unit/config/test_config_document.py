"""Editing a container's own file: set/unset keep every other line as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcsd.config import query
from lxcsd.config.document import ConfigDocument
from lxcsd.config.load import load_path
from lxcsd.config.reader import parse_line
from lxcsd.errors import ConfigError

ORIGINAL = (
    "# Template used to create this container\n"
    "lxc.net.0.type = veth\n"
    "lxc.net.0.link = lxcbr0\n"
    "\n"
    "# The hostname\n"
    "lxc.uts.name=web   \n"
    "lxc.mount.entry = proc proc proc 0 0\n"
    "lxc.cap.drop = sys_admin\n"
    "lxc.net.1.type = empty\n"
    "# the end\n"
)


def doc(text: str = ORIGINAL) -> ConfigDocument:
    return ConfigDocument("/nonexistent/config", text)


def test_set_replaces_a_single_value_in_place() -> None:
    d = doc()
    assert d.set("lxc.uts.name", "db") == "lxc.uts.name"
    assert d.text() == ORIGINAL.replace("lxc.uts.name=web   ", "lxc.uts.name=db")


def test_set_appends_a_new_key_and_list_values_at_the_end() -> None:
    d = doc()
    d.set("lxc.start.auto", "1")
    d.set("lxc.mount.entry", "sys sys sysfs 0 0")
    assert d.text() == ORIGINAL + "lxc.start.auto = 1\nlxc.mount.entry = sys sys sysfs 0 0\n"


def test_set_network_key_goes_with_its_network() -> None:
    d = doc()
    d.set("lxc.net.0.flags", "up")
    assert d.text() == ORIGINAL.replace("lxc.net.0.link = lxcbr0\n",
                                        "lxc.net.0.link = lxcbr0\nlxc.net.0.flags = up\n")


def test_empty_value_removes_own_lines_and_resets() -> None:
    d = doc()
    d.set("lxc.cap.drop", "")
    assert d.text() == ORIGINAL.replace("lxc.cap.drop = sys_admin\n", "") + "lxc.cap.drop =\n"


def test_unset_removes_every_line_of_a_key_and_its_subkeys() -> None:
    d = doc()
    assert d.unset("lxc.mount.entry") == 1
    assert d.unset("lxc.net.0") == 2
    assert d.unset("lxc.start.auto") == 0
    assert d.text() == ("# Template used to create this container\n\n# The hostname\n"
                        "lxc.uts.name=web   \nlxc.cap.drop = sys_admin\n"
                        "lxc.net.1.type = empty\n# the end\n")


def test_legacy_lines_are_edited_under_their_current_name() -> None:
    d = doc("lxc.utsname = old\nlxc.network.type = veth\nlxc.network.link = br0\n")
    d.set("lxc.uts.name", "new")
    d.set("lxc.net.0.link", "br1")
    assert d.text() == "lxc.utsname = new\nlxc.network.type = veth\nlxc.network.link = br1\n"
    assert d.get("lxc.utsname") == ["new"]


def test_crlf_line_endings_are_kept() -> None:
    d = doc("lxc.uts.name = a\r\nlxc.tty.max = 1\r\n")
    d.set("lxc.uts.name", "b")
    assert d.text() == "lxc.uts.name = b\r\nlxc.tty.max = 1\r\n"


def test_file_without_final_newline() -> None:
    d = doc("lxc.uts.name = a")
    d.set("lxc.tty.max", "2")
    assert d.text() == "lxc.uts.name = a\nlxc.tty.max = 2\n"


@pytest.mark.parametrize("key, value, message", [
    ("lxc.tty.max", "many", "not a valid number"),
    ("lxc.bogus", "1", "unknown key"),
    ("lxc.network.link", "br0", "legacy unindexed"),
    ("lxc.include", "/x", "cannot be set"),
    ("lxc.uts.name", "a\nlxc.cap.drop = x", "line break"),
])
def test_set_refuses_bad_values_before_editing(key: str, value: str, message: str) -> None:
    d = doc()
    with pytest.raises(ConfigError, match=message):
        d.set(key, value)
    assert d.text() == ORIGINAL


@given(st.text(alphabet=st.characters(blacklist_characters="\n\r\0",
                                      blacklist_categories=("Cs",)), max_size=30))
def test_values_are_quoted_so_the_reader_gets_them_back(value: str) -> None:
    d = doc("")
    d.set("lxc.apparmor.profile", value)
    lines = [parse_line(line) for line in d.lines]
    entries = [entry for entry in lines if entry is not None]
    assert [entry.value for entry in entries] == [value]


def test_save_is_atomic_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(ORIGINAL)
    os.chmod(path, 0o600)
    d = ConfigDocument.load(str(path))
    d.set("lxc.uts.name", "saved")
    d.save()
    assert load_path(str(path)).uts_name == "saved"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["config"]


def test_query_values_follow_resets(tmp_path: Path) -> None:
    common = tmp_path / "common.conf"
    common.write_text("lxc.cap.drop = chown\nlxc.cgroup2.pids.max = 10\nlxc.sysctl.x.y = 1\n")
    path = tmp_path / "config"
    path.write_text(f"lxc.include = {common}\nlxc.cap.drop = sys_admin\n"
                    "lxc.cgroup2.memory.max = 1G\nlxc.net.0.type = veth\n"
                    "lxc.net.0.link = br0\nlxc.sysctl.x.y = 2\nlxc.utsname = u\n")
    c = load_path(str(path))
    assert query.values(c, "lxc.cap.drop") == ["chown", "sys_admin"]
    assert query.values(c, "lxc.cgroup2") == ["lxc.cgroup2.pids.max = 10",
                                              "lxc.cgroup2.memory.max = 1G"]
    assert query.values(c, "lxc.sysctl.x.y") == ["2"]
    assert query.values(c, "lxc.uts.name") == query.values(c, "lxc.utsname") == ["u"]
    assert query.values(c, "lxc.net.0.link") == ["br0"]
    assert query.values(c, "lxc.tty.max") == []
    path.write_text(path.read_text() + "lxc.cap.keep =\nlxc.net.0.type = macvlan\n")
    c = load_path(str(path))
    assert query.values(c, "lxc.cap.drop") == [] and query.values(c, "lxc.net.0.link") == []
