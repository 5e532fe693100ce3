"""lxcsd check: file:line diagnostics, warnings, exit status, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lxcsd.cli.main import main


@pytest.fixture
def lxcpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path))
    for name, text in {
        "good": "lxc.uts.name = good\nlxc.utsname = old\nfoo = bar\n",
        "bad": "lxc.uts.name = bad\nlxc.signal.halt = TERM\nlxc.net.0.type = wifi\n",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config").write_text(text)
    return tmp_path


def test_check_good_config_warns_and_succeeds(lxcpath: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from lxcsd.config import keys

    monkeypatch.setattr(keys.EXACT["lxc.uts.name"], "implemented", False)  # implemented now
    assert main(["check", "good"]) == 0
    out, err = capsys.readouterr()
    config = lxcpath / "good" / "config"
    assert f"{config}:2: warning: lxc.utsname: legacy key, now lxc.uts.name" in out
    assert f"{config}:3: warning: foo: ignored" in out
    assert f"{config}:1: warning: lxc.uts.name: recognized, but lxcsd does not implement" in out
    assert "good: 0 error(s)" in err


def test_check_bad_config_fails_with_every_error(lxcpath: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "bad", "--no-warnings"]) == 1
    out = capsys.readouterr().out.splitlines()
    config = lxcpath / "bad" / "config"
    assert out == [
        f"{config}:2: error: lxc.signal.halt: invalid signal 'TERM' "
        "(LXC needs the SIG prefix: SIGTERM)",
        f"{config}:3: error: lxc.net.0.type: 'wifi' is not one of veth, macvlan, ipvlan, "
        "vlan, phys, empty, none (write one of: veth macvlan ipvlan vlan phys empty none)",
    ]


def test_check_by_path_and_all(lxcpath: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(lxcpath / "good" / "config")]) == 0
    assert main(["check", "--all"]) == 1
    err = capsys.readouterr().err
    assert "bad: 2 error(s)" in err and "good: 0 error(s)" in err


def test_check_json(lxcpath: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "bad", "good", "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    bad, good = document["results"]
    assert (bad["name"], bad["ok"], good["ok"]) == ("bad", False, True)
    assert bad["errors"][0] == {"path": str(lxcpath / "bad" / "config"), "line": 2,
                                "key": "lxc.signal.halt", "message": "invalid signal 'TERM'",
                                "hint": "LXC needs the SIG prefix: SIGTERM"}
    assert any(w["key"] == "lxc.utsname" for w in good["warnings"])


def test_check_needs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 1
    assert "nothing to check" in capsys.readouterr().err


def test_check_warns_when_debians_lxc_service_autostarts_it_too(
        lxcpath: Path, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from lxcsd.liblxc import lxcservice

    root = tmp_path_factory.mktemp("root")
    monkeypatch.setattr(lxcservice, "ROOT", str(root))
    (lxcpath / "auto").mkdir()
    (lxcpath / "auto" / "config").write_text("lxc.uts.name = auto\nlxc.start.auto = 1\n")
    assert main(["check", "auto"]) == 0
    assert "lxc.service" not in capsys.readouterr().out  # not enabled: nothing to say
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "lxc.service").symlink_to("/lib/systemd/system/lxc.service")
    assert main(["check", "auto"]) == 0  # a warning, not an error
    out = capsys.readouterr().out
    assert (f"{lxcpath}/auto/config: warning: lxc.start.auto: Debian's lxc.service is "
            "enabled and autostarts this container too") in out
