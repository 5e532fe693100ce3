"""lxcsd config get|set|unset: LXC's get/set_config_item on the container's own file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcsd.cli.main import main

CONFIG = "# my container\nlxc.include = {common}\nlxc.uts.name = web\n\nlxc.tty.max = 2\n"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path))
    monkeypatch.setenv("LXCSD_LOCK_DIR", str(tmp_path / ".locks"))  # not the host's /run
    common = tmp_path / "common.conf"
    common.write_text("lxc.cap.drop = sys_module\nlxc.start.delay = 3\n")
    (tmp_path / "web").mkdir()
    path = tmp_path / "web" / "config"
    path.write_text(CONFIG.format(common=common))
    return path


def get(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["config", "get", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def test_get(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert get(capsys, "web", "lxc.uts.name") == ["web"]
    assert get(capsys, "web", "lxc.cap.drop") == ["sys_module"]  # from the include
    assert get(capsys, "web", "lxc.utsname") == ["web"]  # legacy names work
    assert get(capsys, "web", "lxc.start.auto") == []
    assert get(capsys, str(config), "lxc.tty.max") == ["2"]


def test_set_edits_in_place_and_keeps_the_rest(config: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    before = config.read_text()
    assert main(["config", "set", "web", "lxc.uts.name", "db"]) == 0
    assert main(["config", "set", "web", "lxc.mount.entry", "/srv srv none bind 0 0"]) == 0
    assert config.read_text() == before.replace("= web", "= db") + \
        "lxc.mount.entry = /srv srv none bind 0 0\n"
    assert get(capsys, "web", "lxc.mount.entry") == ["/srv srv none bind 0 0"]


def test_set_empty_overrides_the_include(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "set", "web", "lxc.cap.drop", ""]) == 0
    assert config.read_text().endswith("lxc.cap.drop =\n")
    assert get(capsys, "web", "lxc.cap.drop") == []


def test_set_refuses_invalid_values_and_leaves_the_file(config: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    before = config.read_text()
    assert main(["config", "set", "web", "lxc.tty.max", "lots"]) == 1
    assert "lxc.tty.max" in capsys.readouterr().err
    assert main(["config", "set", "web", "lxc.net.0.veth.pair", "v0"]) == 1
    assert "needs lxc.net.0.type = veth" in capsys.readouterr().err  # checked as a whole
    assert main(["config", "set", "web", "lxc.nope", "1"]) == 1
    assert config.read_text() == before


def test_unset(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "unset", "web", "lxc.tty.max"]) == 0
    assert "lxc.tty.max" not in config.read_text()
    assert config.read_text().startswith("# my container\n")
    assert main(["config", "unset", "web", "lxc.start.delay"]) == 0
    assert "included file" in capsys.readouterr().err  # it still comes from common.conf
