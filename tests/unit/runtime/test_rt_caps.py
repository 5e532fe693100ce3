"""Capability names and LXC's lxc.cap.drop / lxc.cap.keep semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcsd.errors import LxcsdError
from lxcsd.runtime import caps


def test_names_match_linux_numbers() -> None:
    assert caps.NUMBERS["chown"] == 0 and caps.NUMBERS["sys_admin"] == 21
    assert caps.NUMBERS["mknod"] == 27 and caps.NUMBERS["checkpoint_restore"] == 40
    assert caps.name(21) == "sys_admin" and caps.name(63) == "63"


def test_number_accepts_lxc_spellings() -> None:
    assert caps.number("sys_admin", 40) == 21
    assert caps.number("CAP_SYS_ADMIN", 40) == 21
    assert caps.number("Sys_Admin", 40) == 21
    assert caps.number("12", 40) == 12


@pytest.mark.parametrize("word, message", [
    ("sys_nonsense", "unknown capability 'sys_nonsense'"),
    ("41", "unknown to the running kernel (cap_last_cap is 40)"),
    ("checkpoint_restore", "unknown to the running kernel (cap_last_cap is 39)"),
])
def test_number_errors(word: str, message: str) -> None:
    last = 39 if word == "checkpoint_restore" else 40
    with pytest.raises(LxcsdError) as err:
        caps.number(word, last)
    assert message in str(err.value)


def test_drop() -> None:
    kept = caps.keep_set(drop=["mac_admin", "mac_override", "sys_time", "sys_module",
                               "sys_rawio"], last=40)
    assert len(kept) == 36
    assert 21 in kept and caps.NUMBERS["sys_time"] not in kept


def test_keep_wins_over_drop() -> None:
    assert caps.keep_set(drop=["chown"], keep=["chown", "kill"], last=40) == {0, 5}


def test_keep_none_keyword() -> None:
    assert caps.keep_set(keep=["none"], last=40) == frozenset()
    assert caps.keep_set(keep=["sys_admin", "none", "kill"], last=40) == {5}
    assert caps.keep_set(keep=[], last=40) == frozenset()


def test_no_lists_keep_everything_the_kernel_knows() -> None:
    assert caps.keep_set(last=37) == frozenset(range(38))


def test_last_cap(tmp_path: Path) -> None:
    f = tmp_path / "cap_last_cap"
    f.write_text("40\n")
    assert caps.last_cap(str(f)) == 40
    assert caps.last_cap(str(tmp_path / "missing")) == len(caps.NAMES) - 1


def test_masks_and_names() -> None:
    assert caps.mask([0, 21]) == (1 << 21) | 1
    assert caps.names(0x1000021) == ["chown", "kill", "sys_resource"]


def test_status_caps_of_self() -> None:
    status = caps.status_caps()
    assert set(status) >= {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}
