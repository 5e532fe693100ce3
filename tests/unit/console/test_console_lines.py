"""Console output cut into journal lines (lxcsd.console.lines)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lxcsd.console.lines import MAX_LINE, has_line, take_lines


def lines(data: bytes, flush: bool = False) -> list[bytes]:
    return [line for line, _ in take_lines(data, flush)]


def test_splits_on_lf_and_crlf_and_keeps_other_bytes() -> None:
    assert lines(b"one\r\ntwo\n\x1b[32mOK\x1b[0m \x07x\n") == [
        b"one", b"two", b"\x1b[32mOK\x1b[0m \x07x"]


def test_carriage_returns_keep_what_a_terminal_shows_last() -> None:
    # journalctl shows a line with "\r" in it as a blob; busybox starts lines with one.
    assert lines(b"\rThe system is going down NOW!\n10%\r55%\r100%\r\n\r\r\n") == [
        b"The system is going down NOW!", b"100%", b""]


def test_each_line_says_where_it_ends() -> None:
    assert take_lines(b"ab\ncd\r\nprompt: ") == [(b"ab", 3), (b"cd", 7)]
    assert take_lines(b"ab\ncd\r\nprompt: ", flush=True)[-1] == (b"prompt: ", 15)
    assert take_lines(b"a\nb\nc\n", limit=2) == [(b"a", 2), (b"b", 4)]


def test_a_partial_line_waits_unless_flushed() -> None:
    assert take_lines(b"login: ") == []
    assert not has_line(b"login: ") and has_line(b"x\n")


def test_long_lines_are_capped() -> None:
    data = b"x" * (2 * MAX_LINE + 10)
    assert take_lines(data) == [(b"x" * MAX_LINE, MAX_LINE), (b"x" * MAX_LINE, 2 * MAX_LINE)]
    assert lines(b"y" * MAX_LINE + b"\n") == [b"y" * MAX_LINE]  # exactly MAX_LINE: one line
    assert has_line(b"z" * MAX_LINE)


no_cr = st.binary(max_size=300).map(lambda b: b.replace(b"\r", b""))


@given(no_cr, st.booleans())
def test_no_byte_is_lost_but_the_newlines(data: bytes, flush: bool) -> None:
    found = take_lines(data, flush)
    end = found[-1][1] if found else 0
    assert b"".join(line for line, _ in found) == data[:end].replace(b"\n", b"")
    assert all(len(line) <= MAX_LINE for line, _ in found)
    assert end == len(data) if flush else b"\n" not in data[end:]
