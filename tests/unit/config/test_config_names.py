"""Container names and their unit names: validation, escaping, exact unescaping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcsd.config import names
from lxcsd.errors import ConfigError


@pytest.mark.parametrize("name, escaped", [
    ("web1", "web1"),
    ("web-1.example:8080_x", "web-1.example:8080_x"),  # '-' stays: the unit uses %i
    ("my container", "my\\x20container"),
    (".hidden", "\\x2ehidden"),  # systemd refuses a leading dot
    ("a.b", "a.b"),
    ("naïve", "na\\xc3\\xafve"),
    ("back\\slash", "back\\x5cslash"),
    ("\udcff", "\\xff"),  # a name that is not UTF-8 (from a directory listing)
])
def test_escape(name: str, escaped: str) -> None:
    assert names.escape(name) == escaped
    assert names.unescape(escaped) == name
    assert names.unit_name(name) == f"lxc@{escaped}.service"
    assert names.name_from_unit(f"lxc@{escaped}.service") == name


@pytest.mark.parametrize("name, problem", [
    ("", "empty"), (".", "not a name"), ("..", "not a name"), ("a/b", "'/'"),
    ("a\x00b", "control character"), ("tab\there", "control character"),
    ("del\x7f", "control character"), ("x" * 256, "longer than 255"),
    ("é" * 60, "unit name"),  # 120 bytes, but 480 once escaped
])
def test_invalid_names(name: str, problem: str) -> None:
    assert not names.is_valid_name(name)
    with pytest.raises(ConfigError, match=problem):
        names.validate_name(name)


def test_longest_plain_name_fits_a_unit_name() -> None:
    longest = "x" * (255 - len("lxc@") - len(".service"))
    assert len(names.unit_name(longest)) == 255
    assert not names.is_valid_name(longest + "x")


@pytest.mark.parametrize("text", [
    "a\\x2db",  # an escaped '-' : escape() writes '-' as itself
    "\\x41",  # uppercase letters are never escaped
    "\\x2Eh",  # uppercase hex digits
    "trailing\\", "bad\\xZZ", "short\\x4", "naïve", "a\\x2fb", ".hidden",
])
def test_unescape_accepts_only_what_escape_writes(text: str) -> None:
    with pytest.raises(ConfigError):
        names.unescape(text)


def test_name_from_unit_needs_the_template() -> None:
    with pytest.raises(ConfigError):
        names.name_from_unit("lxc-web1.service")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_escape_round_trips_for_every_valid_name(name: str) -> None:
    if names.is_valid_name(name):
        escaped = names.escape(name)
        assert names.unescape(escaped) == name
        assert all(c.isascii() and c.isprintable() and c not in "/ " for c in escaped)
        assert not escaped.startswith(".")
    else:
        with pytest.raises(ConfigError):
            names.validate_name(name)


@given(st.binary(max_size=40))
def test_unescape_never_raises_anything_else(data: bytes) -> None:
    text = data.decode("latin-1")
    try:
        name = names.unescape(text)
    except ConfigError:
        return
    assert names.escape(name) == text
