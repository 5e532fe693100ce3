"""The console ring buffer (lxcsd.console.ring)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lxcsd.console.ring import Ring


def test_grows_only_as_output_arrives() -> None:
    ring = Ring(1 << 20)
    assert len(ring) == 0 and len(ring.buf) == 0
    ring.write(b"hello")
    assert ring.read() == b"hello"
    assert len(ring.buf) == 5


def test_wraps_keeping_the_last_bytes() -> None:
    ring = Ring(8)
    ring.write(b"abcdef")
    ring.write(b"ghij")
    assert ring.read() == b"cdefghij"
    ring.write(b"k")
    assert ring.read() == b"defghijk"
    assert len(ring.buf) == 8


def test_a_write_larger_than_the_ring() -> None:
    ring = Ring(4)
    ring.write(b"ab")
    ring.write(b"0123456789")
    assert ring.read() == b"6789"


def test_clear_frees_the_memory() -> None:
    ring = Ring(8)
    ring.write(b"0123456789")
    ring.clear()
    assert ring.read() == b"" and len(ring.buf) == 0
    ring.write(b"xy")
    assert ring.read() == b"xy"


@given(size=st.integers(1, 64), writes=st.lists(st.binary(max_size=100), max_size=30))
def test_always_the_tail_of_everything_written(size: int, writes: list[bytes]) -> None:
    ring = Ring(size)
    for data in writes:
        ring.write(data)
    assert ring.read() == b"".join(writes)[-size:] if writes else ring.read() == b""
    assert len(ring.buf) <= size
