"""Id maps: kernel validity rules, newuidmap-style delegation checks against subuid files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcsd.errors import LxcsdError
from lxcsd.runtime import idmap

SUBUID = """\
# comment lines and junk are skipped as shadow does
root:100000:65536
1000:300000:65536
alice:200000:1000
alice:201000:1000
broken line
bob:x:10
"""


def test_split_and_text() -> None:
    uids, gids = idmap.split_maps([("u", 0, 100000, 65536), ("g", 0, 100000, 65536),
                                   ("u", 65536, 0, 1)])
    assert uids == [(0, 100000, 65536), (65536, 0, 1)] and gids == [(0, 100000, 65536)]
    assert idmap.map_text(uids) == "0 100000 65536\n65536 0 1\n"


@pytest.mark.parametrize("ranges, message", [
    ([(0, 100000, 0)], "the count at least 1"),
    ([(0, 2**32 - 10, 10)], "ids must be 0..4294967294"),
    ([(0, 100000, 10), (5, 200000, 10)], "overlap on the container side"),
    ([(0, 100000, 10), (10, 100005, 10)], "overlap on the host side"),
    ([(i, 100000 + i, 1) for i in range(341)], "341 uids ranges, the kernel takes at most 340"),
])
def test_validate_errors(ranges: list[tuple[int, int, int]], message: str) -> None:
    with pytest.raises(LxcsdError) as err:
        idmap.validate(ranges, "u")
    assert message in str(err.value)


def test_validate_accepts_adjacent_ranges() -> None:
    idmap.validate([(0, 100000, 10), (10, 100010, 10), (20, 0, 1)], "g")


def test_parse_subids_by_name_and_uid() -> None:
    assert idmap.parse_subids(SUBUID, "root", 0) == [(100000, 65536)]
    assert idmap.parse_subids(SUBUID, "carol", 1000) == [(300000, 65536)]
    assert idmap.parse_subids(SUBUID, "alice", 1001) == [(200000, 1000), (201000, 1000)]
    assert idmap.parse_subids(SUBUID, "bob", 1002) == []


def test_covered_by_adjacent_entries() -> None:
    allowed = [(201000, 1000), (200000, 1000)]
    assert idmap.covered(200000, 2000, allowed)
    assert idmap.covered(200500, 1000, allowed)
    assert not idmap.covered(200000, 2001, allowed)
    assert not idmap.covered(199999, 2, allowed)


@pytest.fixture
def subuid(tmp_path: Path) -> str:
    path = tmp_path / "subuid"
    path.write_text(SUBUID)
    return str(path)


def test_check_delegated_ok(subuid: str) -> None:
    idmap.check_delegated([(0, 100000, 65536)], "u", user="root", uid=0, own_id=0,
                          path=subuid)
    idmap.check_delegated([(0, 200000, 2000)], "u", user="alice", uid=1001, own_id=1001,
                          path=subuid)


def test_check_delegated_error_names_range_and_file(subuid: str) -> None:
    with pytest.raises(LxcsdError) as err:
        idmap.check_delegated([(0, 100000, 65536), (65536, 300000, 10)], "u", user="root",
                              uid=0, own_id=0, path=subuid)
    text = str(err.value)
    assert "lxc.idmap = u 65536 300000 10: host uids 300000-300009 are not delegated to " \
           f"root in {subuid} (it has 100000-165535)" in text
    assert f"add 'root:300000:10' to {subuid}" in text


def test_own_id_only_when_allowed(subuid: str) -> None:
    with pytest.raises(LxcsdError) as err:
        idmap.check_delegated([(0, 0, 1)], "g", user="root", uid=0, own_id=0, path=subuid)
    assert "host gids 0-0 are not delegated" in str(err.value)
    idmap.check_delegated([(0, 0, 1)], "g", user="root", uid=0, own_id=0, path=subuid,
                          allow_own_id=True)
    with pytest.raises(LxcsdError):  # only a single id, only the caller's own
        idmap.check_delegated([(0, 0, 2)], "g", user="root", uid=0, own_id=0, path=subuid,
                              allow_own_id=True)


def test_missing_file_delegates_nothing(tmp_path: Path) -> None:
    with pytest.raises(LxcsdError) as err:
        idmap.check_delegated([(0, 100000, 1)], "u", user="root", uid=0, own_id=0,
                              path=str(tmp_path / "none"))
    assert "(it has nothing)" in str(err.value)


def test_host_id() -> None:
    ranges = [(0, 100000, 65536), (65536, 5000, 1)]
    assert idmap.host_id(ranges, 0) == 100000 and idmap.host_id(ranges, 65536) == 5000
    assert idmap.host_id(ranges, 70000) is None
