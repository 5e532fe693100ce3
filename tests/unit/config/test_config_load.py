"""Finding containers: lxcpaths, discovery, load_container, and /etc/lxc/lxc.conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcsd.config import load
from lxcsd.config.globalconf import read_global_config
from lxcsd.errors import ConfigError


def container(lxcpath: Path, name: str, text: str = "lxc.uts.name = x\n") -> Path:
    directory = lxcpath / name
    directory.mkdir(parents=True)
    (directory / "config").write_text(text)
    return directory / "config"


def test_lxcpaths_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXCSD_LXCPATH", "/a::/b:")
    assert load.lxcpaths() == ["/a", "/b"]


def test_discover_skips_what_lxc_ls_skips(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    container(one, "web")
    container(one, "db")
    container(one, ".hidden")
    (one / "nocfg").mkdir()
    (one / "file").write_text("")
    container(two, "web", "lxc.uts.name = shadowed\n")
    container(two, "cache")
    found = load.discover([str(one), str(two), str(tmp_path / "missing")])
    assert found == [("db", str(one / "db/config")), ("web", str(one / "web/config")),
                     ("cache", str(two / "cache/config"))]


def test_discover_uses_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    container(tmp_path, "c1")
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path))
    assert load.discover() == [("c1", str(tmp_path / "c1/config"))]


def test_load_container_first_lxcpath_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    container(tmp_path / "a", "web", "lxc.uts.name = first\n")
    container(tmp_path / "b", "web", "lxc.uts.name = second\n")
    monkeypatch.setenv("LXCSD_LXCPATH", f"{tmp_path}/a:{tmp_path}/b")
    c = load.load_container("web")
    assert (c.name, c.uts_name, c.config_path) == ("web", "first", f"{tmp_path}/a/web/config")
    assert load.load_container("web", f"{tmp_path}/b").uts_name == "second"


def test_load_container_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path))
    with pytest.raises(ConfigError, match="no container 'nope'"):
        load.load_container("nope")
    with pytest.raises(ConfigError, match="invalid container name"):
        load.load_container("../etc")


def test_name_of_a_config_path(tmp_path: Path) -> None:
    assert load.load_path(str(container(tmp_path, "web"))).name == "web"
    other = tmp_path / "test.conf"
    other.write_text("")
    assert load.load_path(str(other)).name == "test"
    assert load.load_path(str(other), "given").name == "given"


def test_global_config(tmp_path: Path) -> None:
    conf = tmp_path / "lxc.conf"
    conf.write_text("# comment\nlxc.lxcpath = /srv/lxc//\nlxc.lxcpath = /ignored\n"
                    "  lxc.default_config=/etc/lxc/custom.conf\nlxc.bogus = 1\n"
                    "lxc.cgroup.pattern =\n")
    g = read_global_config(str(conf))
    assert g.lxcpath == "/srv/lxc"  # the first line wins, as in liblxc; trailing '/' removed
    assert g.default_config == "/etc/lxc/custom.conf"
    assert g.bdev_lvm_vg == "lxc" and g.cgroup_pattern is None
    assert [(w.line, w.key) for w in g.warnings] == [(5, "lxc.bogus")]


def test_global_config_defaults_and_lxcpaths(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    g = read_global_config(str(tmp_path / "missing.conf"))
    assert (g.lxcpath, g.default_config) == ("/var/lib/lxc", "/etc/lxc/default.conf")
    monkeypatch.delenv("LXCSD_LXCPATH", raising=False)
    conf = tmp_path / "lxc.conf"
    conf.write_text("lxc.lxcpath = /srv/containers\n")
    monkeypatch.setattr("lxcsd.config.globalconf.GLOBAL_CONF", str(conf))
    assert load.lxcpaths() == ["/srv/containers"]
