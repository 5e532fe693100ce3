"""Console output cut into journal lines (lxcsd.console.lines)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lxcsd.console.lines import FLUSH_DELAY, MAX_LINE, LineSplitter


def test_splits_on_lf_and_crlf_and_keeps_other_bytes() -> None:
    lines = LineSplitter().feed(b"one\r\ntwo\n\x1b[32mOK\x1b[0m \x07x\n", 0.0)
    assert lines == [b"one", b"two", b"\x1b[32mOK\x1b[0m \x07x"]


def test_carriage_returns_keep_what_a_terminal_shows_last() -> None:
    # journalctl shows a line with "\r" in it as a blob; busybox starts lines with one.
    lines = LineSplitter().feed(b"\rThe system is going down NOW!\n10%\r55%\r100%\r\n\r\r\n", 0.0)
    assert lines == [b"The system is going down NOW!", b"100%", b""]


def test_a_crlf_split_across_reads() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"abc\r", 0.0) == []
    assert splitter.feed(b"\ndef", 0.1) == [b"abc"]
    assert splitter.pending == b"def"


def test_partial_line_is_due_after_the_delay_from_its_first_byte() -> None:
    splitter = LineSplitter()
    assert splitter.deadline() is None
    splitter.feed(b"login: ", 10.0)
    splitter.feed(b"x", 10.3)  # more of the same line does not postpone it
    assert splitter.deadline() == 10.0 + FLUSH_DELAY
    assert splitter.flush() == b"login: x"
    assert splitter.deadline() is None and splitter.flush() is None


def test_completed_lines_restart_the_clock() -> None:
    splitter = LineSplitter()
    splitter.feed(b"a", 1.0)
    splitter.feed(b"\nb", 2.0)
    assert splitter.deadline() == 2.0 + FLUSH_DELAY


def test_long_lines_are_capped() -> None:
    splitter = LineSplitter()
    lines = splitter.feed(b"x" * (2 * MAX_LINE + 10), 0.0)
    assert lines == [b"x" * MAX_LINE] * 2
    assert splitter.pending == b"x" * 10
    assert splitter.feed(b"y" * (MAX_LINE + 1) + b"\n", 0.0) == [
        b"x" * 10 + b"y" * (MAX_LINE - 10), b"y" * 11]


no_cr = st.binary(max_size=50).map(lambda b: b.replace(b"\r", b""))


@given(st.lists(no_cr, max_size=20))
def test_no_byte_is_lost_but_the_newlines(chunks: list[bytes]) -> None:
    splitter = LineSplitter()
    out = [line for chunk in chunks for line in splitter.feed(chunk, 0.0)]
    rest = splitter.flush()
    assert b"".join(out) + (rest or b"") == b"".join(chunks).replace(b"\n", b"")
    assert all(len(line) <= MAX_LINE for line in out)
