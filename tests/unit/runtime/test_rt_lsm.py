"""lxcsd.runtime.lsm: which label goes where, for hosts described by lsm.Host (this host has
neither AppArmor nor SELinux; the VM tier has AppArmor), and the attribute writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxcsd.config.load import load_path
from lxcsd.runtime import lsm
from lxcsd.runtime.apparmor_profile import Features

AA_HOST = lsm.Host(apparmor=Features(), profiles={"lxc-container-default-cgns"},
                   parser="/sbin/apparmor_parser")


def decide(tmp_path: Path, text: str, host: lsm.Host) -> lsm.Decision:
    config = tmp_path / "c1" / "config"
    config.parent.mkdir(exist_ok=True)
    config.write_text(text)
    return lsm.decide(load_path(str(config)), "c1", host)


def test_generated_profile_on_an_apparmor_host(tmp_path: Path) -> None:
    d = decide(tmp_path, "lxc.apparmor.profile = generated\n", AA_HOST)
    ns = f"lxc-c1_<{str(tmp_path).replace('/', '-')}>"
    assert d.labels == [("lxc.apparmor.profile", f"lxc-c1_<{tmp_path}>//&:{ns}:", "AppArmor")]
    assert d.generate is AA_HOST.apparmor and d.warnings == []


def test_without_apparmor_one_warning_and_no_label(tmp_path: Path) -> None:
    d = decide(tmp_path, "lxc.apparmor.profile = generated\nlxc.apparmor.allow_nesting = 1\n",
               lsm.Host())
    assert d.labels == [] and d.generate is None
    assert d.warnings == [("lxc.apparmor.profile", "'generated' ignored: AppArmor is not "
                           "enabled on this host; no profile is generated and the container "
                           "runs unconfined")]
    d = decide(tmp_path, "lxc.apparmor.profile = p\nlxc.selinux.context = a:b:c:s0\n",
               lsm.Host())
    assert [(key, w.split(":")[0]) for key, w in d.warnings] == [
        ("lxc.apparmor.profile", "'p' ignored"), ("lxc.selinux.context", "ignored")]


def test_refusals(tmp_path: Path) -> None:
    no_parser = lsm.Host(apparmor=Features(), profiles=set(), parser=None)
    with pytest.raises(lsm.LabelError, match="needs apparmor_parser") as err:
        decide(tmp_path, "lxc.apparmor.profile = generated\n", no_parser)
    assert err.value.key == "lxc.apparmor.profile"
    with pytest.raises(lsm.LabelError, match="'missing' is not loaded"):
        decide(tmp_path, "lxc.apparmor.profile = missing\n", AA_HOST)
    no_mount = lsm.Host(apparmor=Features(mount=False), profiles=set(), parser="/p")
    with pytest.raises(lsm.LabelError, match="mount rules") as err:
        decide(tmp_path, "lxc.apparmor.profile = generated\n", no_mount)
    assert "allow_incomplete = 1" in err.value.hint
    d = decide(tmp_path, "lxc.apparmor.profile = generated\n"
               "lxc.apparmor.allow_incomplete = 1\n", no_mount)
    assert d.generate is not None and "not enforced" in d.warnings[0][1]


def test_named_unconfined_and_selinux(tmp_path: Path) -> None:
    d = decide(tmp_path, "lxc.apparmor.profile = lxc-container-default-cgns\n", AA_HOST)
    assert d.labels == [("lxc.apparmor.profile", "lxc-container-default-cgns", "AppArmor")]
    for profile in ("unconfined", "unchanged"):
        assert decide(tmp_path, f"lxc.apparmor.profile = {profile}\n", AA_HOST).labels == []
    stacked = decide(tmp_path, "lxc.apparmor.profile = a//&:ns:\n", AA_HOST)  # not checked
    assert stacked.labels[0][1] == "a//&:ns:"
    d = decide(tmp_path, "lxc.selinux.context = u:r:lxc_t:s0\n", lsm.Host(selinux=True))
    assert d.labels == [("lxc.selinux.context", "u:r:lxc_t:s0", "SELinux")]


def test_exec_attribute_written_by_its_opener(tmp_path: Path) -> None:
    """prepare opens self/attr/...exec under a /proc directory fd (attach's host /proc),
    falling back from attr/apparmor/ to attr/; apply writes AppArmor's "exec LABEL"."""
    (tmp_path / "self/attr").mkdir(parents=True)
    (tmp_path / "self/attr/exec").write_text("")
    proc = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        prepared = lsm.prepare([("lxc.apparmor.profile", "lxc-c1", "AppArmor")], proc=proc)
        lsm.apply(prepared)
    finally:
        os.close(proc)
    assert (tmp_path / "self/attr/exec").read_text() == "exec lxc-c1"


def test_state_fields_round_trip() -> None:
    labels = [("lxc.apparmor.profile", "p//&:ns:", "AppArmor"),
              ("lxc.selinux.context", "u:r:t:s0:c1,c2", "SELinux")]
    fields = lsm.state_fields(labels)
    assert fields == {"apparmor_label": "p//&:ns:", "selinux_context": "u:r:t:s0:c1,c2"}
    assert lsm.recorded(fields) == labels and lsm.recorded({}) == []
