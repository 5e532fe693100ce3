"""The console ring in a memfd (lxcsd.console.ring): the ring buffer and the journal's
queue, and what a new process finds in it after the old one was killed."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcsd.console import ring as ring_module
from lxcsd.console.ring import HEADER_SIZE, Ring


@pytest.fixture
def ring() -> Ring:
    return Ring.create("test", 16, 8)


def test_memory_is_taken_as_output_arrives() -> None:
    ring = Ring.create("test", 1 << 20, 1 << 20)
    before = os.fstat(ring.fd).st_blocks
    ring.write(b"hello")
    assert ring.read() == b"hello"
    # A page or two (the header's and the first data page's), not a megabyte.
    assert (os.fstat(ring.fd).st_blocks - before) * 512 <= 8192
    ring.close()


def test_shows_the_last_visible_bytes(ring: Ring) -> None:
    for chunk in (b"abcdef", b"ghij"):
        ring.write(chunk)
        ring.mark_sent(len(chunk))
    assert ring.read() == b"cdefghij"
    assert len(ring) == 8


def test_unsent_bytes_are_never_overwritten(ring: Ring) -> None:
    assert ring.write(b"0123456789") == 10
    assert ring.room() == 6
    assert ring.write(b"abcdefghij") == 6  # the rest waits in the container, not here
    assert ring.unsent() == b"0123456789abcdef"
    ring.mark_sent(4)
    assert ring.room() == 4 and ring.unsent() == b"456789abcdef"
    assert ring.write(b"wxyz") == 4
    assert ring.unsent() == b"456789abcdefwxyz"  # across the wrap


def test_reads_a_descriptor_straight_in_across_the_wrap(ring: Ring) -> None:
    ring.write(b"0123456789abc")
    ring.mark_sent(13)
    read_end, write_end = os.pipe()
    os.write(write_end, b"ABCDEFGH")
    assert ring.read_from(read_end, 100) == b"ABCDEFGH"
    assert ring.unsent() == b"ABCDEFGH" and ring.read() == b"ABCDEFGH"
    os.write(write_end, b"more than fits" * 2)
    ring.mark_sent(8)
    assert len(ring.read_from(read_end, 100)) == 16  # room() bounds it
    for fd in (read_end, write_end):
        os.close(fd)


def test_a_new_process_finds_everything(ring: Ring) -> None:
    """What a daemon started after a SIGKILL maps: the same bytes and counters."""
    ring.write(b"line one\nline tw")
    ring.mark_sent(9)
    again = Ring(os.dup(ring.fd))
    assert (again.written, again.sent, again.unsent()) == (16, 9, b"line tw")
    again.close()
    ring.close()


def test_clear_keeps_the_journals_queue(ring: Ring) -> None:
    ring.write(b"abc")
    ring.clear()
    assert ring.read() == b"" and len(ring) == 0
    assert ring.unsent() == b"abc"
    ring.write(b"xy")
    assert ring.read() == b"xy"


def test_consume_drops_what_liblxcs_console_log_read(ring: Ring) -> None:
    """LXC_CMD_CONSOLE_LOG without clear moves the read address past what it returned
    (lxccmd.py); the journal's queue is not touched, and a new process sees the same."""
    ring.write(b"abcdefghij")  # visible 8: "cdefghij"
    ring.consume(3)
    assert ring.read() == b"fghij" and ring.unsent() == b"abcdefghij"
    again = Ring(os.dup(ring.fd))
    assert again.read() == b"fghij"
    again.close()
    ring.consume(100)
    assert ring.read() == b"" and len(ring) == 0
    ring.write(b"kl")
    assert ring.read() == b"kl"


@pytest.mark.parametrize("content", [b"", b"x" * HEADER_SIZE, b"lxcsdrg1" + b"\xff" * 100])
def test_a_memfd_without_a_ring_is_refused(content: bytes) -> None:
    fd = os.memfd_create("not-a-ring")
    os.write(fd, content)
    with pytest.raises(ValueError):
        Ring(fd)
    os.close(fd)


@given(capacity=st.integers(1, 64), visible=st.integers(0, 64),
       steps=st.lists(st.tuples(st.binary(max_size=100), st.integers(0, 100)), max_size=30))
def test_never_loses_or_invents_a_byte(capacity: int, visible: int,
                                       steps: list[tuple[bytes, int]]) -> None:
    ring = Ring.create("test", capacity, visible)
    taken, sent = b"", 0
    for data, send in steps:
        taken += data[:ring.write(data)]
        count = min(send, ring.written - ring.sent)
        assert ring.unsent()[:count] == taken[sent:sent + count]
        ring.mark_sent(count)
        sent += count
    assert ring.unsent() == taken[sent:]
    assert ring.read() == (taken[-min(visible, capacity):] if visible else b"")
    ring.close()


def test_a_read_cut_short_by_sigkill_is_kept() -> None:
    """What a daemon killed as its readv returned left: the bytes the kernel put in the
    zeroed region, `reading` still set, `written` not yet moved. The next daemon keeps
    them (up to the last non-NUL byte)."""
    ring = Ring.create("test", 64, 64)
    ring.write(b"before\n")
    start = HEADER_SIZE + ring.written
    ring.view[start:start + 32] = bytes(32)  # read_from's zeroing
    struct.pack_into("=I", ring.map, ring_module.READING_AT, 32)  # the header field
    ring.view[start:start + 6] = b"after\n"  # what the kernel copied before the kill
    again = Ring(os.dup(ring.fd))
    assert again.unsent() == b"before\nafter\n" and again.written == 13
    assert Ring(os.dup(ring.fd)).written == 13  # recovered once, recorded
    ring.close()
    again.close()


def test_read_from_leaves_no_reading_mark(ring: Ring) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"x" * 10)
    ring.read_from(read_end, 100)
    assert Ring(os.dup(ring.fd)).written == 10
    for fd in (read_end, write_end):
        os.close(fd)


def test_a_small_console_read_costs_one_page() -> None:
    """read_from zeroes only bytes that held output: 100 bytes read into a fresh 64 KiB ring
    make one page resident (header and data share it), not the 4 KiB region it may read."""
    ring = Ring.create("test", 64 << 10, 64 << 10)
    read_end, write_end = os.pipe()
    os.write(write_end, b"x" * 100)
    assert ring.read_from(read_end, 4096) == b"x" * 100
    assert os.fstat(ring.fd).st_blocks * 512 == 4096
    for fd in (read_end, write_end):
        os.close(fd)
    ring.close()


def test_old_output_is_zeroed_before_a_read_over_it() -> None:
    """After the wrap, the region a read may fill is zeroed first (the kill recovery counts
    up to its last non-NUL byte): old output past what the read brought is gone."""
    ring = Ring.create("test", 10000, 10000)
    ring.write(b"o" * 9000)
    ring.mark_sent(9000)
    read_end, write_end = os.pipe()
    os.write(write_end, b"new")
    ring.read_from(read_end, 6000)  # region 9000..15000: 1000 fresh bytes, 5000 old ones
    assert ring.range(9003, 15000) == bytes(5997)
    assert ring.range(9000, 9003) == b"new"
    for fd in (read_end, write_end):
        os.close(fd)
    ring.close()
