"""lxcsd.runtime.lsm: which label goes where, with the module files faked in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcsd.config.load import load_path
from lxcsd.errors import LxcsdError
from lxcsd.runtime import lsm


def container(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "config"
    config.write_text(text)
    return load_path(str(config))


def test_apparmor_label_written_to_the_exec_attribute(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    enabled, attr = tmp_path / "enabled", tmp_path / "exec"
    enabled.write_text("Y\n")
    attr.write_text("")
    monkeypatch.setattr(lsm, "AA_ATTRS", (str(tmp_path / "missing"), str(attr)))
    assert lsm.apparmor_enabled(str(enabled))
    assert not lsm.apparmor_enabled(str(tmp_path / "absent"))
    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: True)
    prepared = lsm.prepare(container(tmp_path, "lxc.apparmor.profile = lxc-default\n"))
    assert [(text, key) for _, text, key in prepared] == [("exec lxc-default",
                                                            "lxc.apparmor.profile")]
    lsm.apply(prepared)
    assert attr.read_text() == "exec lxc-default"


def test_missing_module_warns_and_unconfined_asks_nothing(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: False)
    monkeypatch.setattr(lsm, "SELINUX_ENFORCE", str(tmp_path / "no-selinux"))
    warnings: list[str] = []
    c = container(tmp_path, "lxc.apparmor.profile = p\nlxc.selinux.context = a:b:c:s0\n")
    assert lsm.prepare(c, warnings.append) == []
    assert [w.split(" ignored")[0] for w in warnings] == ["lxc.apparmor.profile",
                                                          "lxc.selinux.context"]
    assert lsm.wanted(container(tmp_path, "lxc.apparmor.profile = unconfined\n")) == []
    assert lsm.wanted(container(tmp_path, "lxc.apparmor.profile = unchanged\n")) == []


def test_generated_profiles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LxcsdError, match="does not generate"):
        lsm.wanted(container(tmp_path, "lxc.apparmor.profile = generated\n"))
