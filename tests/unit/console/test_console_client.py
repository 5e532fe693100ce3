"""The client's key handling and escape parsing (lxcsd.console.client), as lxc-console."""

from __future__ import annotations

import termios
from typing import Any

import pytest

from lxcsd.console.client import EscapeFilter, escape_name, parse_escape, raw_mode


def test_ctrl_a_q_detaches_after_sending_what_came_before() -> None:
    assert EscapeFilter().feed(b"ls\r\x01q") == (b"ls\r", True)


def test_ctrl_a_twice_sends_one_ctrl_a() -> None:
    assert EscapeFilter().feed(b"\x01\x01x") == (b"\x01x", False)


def test_escape_then_another_key_sends_the_key() -> None:
    assert EscapeFilter().feed(b"\x01x") == (b"x", False)


def test_the_escape_may_end_one_read_and_q_start_the_next() -> None:
    keys = EscapeFilter()
    assert keys.feed(b"a\x01") == (b"a", False)
    assert keys.feed(b"q") == (b"", True)


def test_q_alone_is_typed() -> None:
    assert EscapeFilter().feed(b"quit\r") == (b"quit\r", False)


def test_another_escape() -> None:
    keys = EscapeFilter(parse_escape("^b"))
    assert keys.feed(b"\x01\x02q") == (b"\x01", True)


@pytest.mark.parametrize("text, value", [("^a", 1), ("^A", 1), ("^b", 2), ("^[", 27),
                                         ("^?", 127), ("x", ord("x"))])
def test_parse_escape(text: str, value: int) -> None:
    assert parse_escape(text) == value


@pytest.mark.parametrize("text", ["", "ab", "^1", "^ab"])
def test_parse_escape_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid escape"):
        parse_escape(text)


def test_escape_names() -> None:
    assert escape_name(1) == "Ctrl+a"
    assert escape_name(ord("~")) == "'~'"


def test_raw_mode_is_lxc_consoles() -> None:
    cooked: list[Any] = [termios.ICRNL | termios.IXON, termios.OPOST, termios.CS8,
              termios.ICANON | termios.ECHO | termios.ISIG, 38400, 38400, [b"\0"] * 32]
    iflag, oflag, _, lflag, _, _, cc = raw_mode(cooked)
    assert iflag & (termios.ICRNL | termios.IXON) == 0 and iflag & termios.IGNPAR
    assert oflag & termios.OPOST == 0
    assert lflag & (termios.ICANON | termios.ECHO | termios.ISIG) == 0
    assert (cc[termios.VMIN], cc[termios.VTIME]) == (1, 0)
    assert cooked[6][termios.VMIN] == b"\0"  # the saved settings are left alone
