"""A container's console output in a memfd: the ring buffer and the journal's queue.

One buffer serves two readers. ``lxcsd console --show-log`` reads the last ``visible``
bytes (``lxc.console.buffer.size``). The journal forwarder (forward.py) reads what it has
not sent yet: the bytes between ``sent`` and ``written``. The daemon never overwrites
unsent bytes: it reads a console only as far as ``room()`` allows, so a journal that
cannot take more holds the container's output back in the kernel (backpressure) instead of
losing it.

The memfd sits in the service's file-descriptor store from registration on, and the
counters live in it too, so neither a restart nor a SIGKILL of the daemon loses console
output: the next daemon maps the same memory and sends from ``sent`` on. A SIGKILL between
a send and the update of ``sent`` repeats that line (the forwarder updates ``sent`` after
each line). A SIGKILL is delivered when a system call returns, so the return of the
``readv`` that reads a console into this memory is a likely moment for it (measured: about
one kill in 25 during a flood lost the 4 KiB just read, before ``reading``): the region is
zeroed and its size recorded in ``reading`` before the read, and a ring found with
``reading`` set counts what the kernel put there, up to its last non-NUL byte, as written.
Trailing NUL bytes of that one read are what such a kill can cost.

Memory is taken as output arrives, not up front: memfd pages exist once written, so a
console that wrote 2 KiB costs one page whatever the capacity.

Layout: a 64-byte header (magic, capacity, visible, written, sent, cleared, reading), then
``capacity`` bytes of data; byte N of the output (counted from the container's start) is
at data offset N % capacity.
"""

from __future__ import annotations

import mmap
import os
import struct

MAGIC = b"lxcsdrg1"
_HEADER = struct.Struct("=8sII3QI")  # magic capacity visible written sent cleared reading
HEADER_SIZE = 64
_WRITTEN = struct.Struct("=Q")
_READING = struct.Struct("=I")
_WRITTEN_AT = 16  # offsets of the counters in the header
_SENT_AT = 24
_CLEARED_AT = 32
READING_AT = 40
_ZEROS = bytes(4096)  # zeroing runs in page-sized steps: a 64 KiB constant cost 64 kB


class Ring:
    __slots__ = ("fd", "map", "view", "capacity", "visible", "written", "sent", "cleared")

    def __init__(self, fd: int) -> None:
        """The ring in memfd ``fd`` (made by ``create``); raises ValueError when the memfd
        does not hold one. The ring owns ``fd`` from here on."""
        size = os.fstat(fd).st_size
        if size < HEADER_SIZE:
            raise ValueError("ring memfd too small")
        self.map = mmap.mmap(fd, size)
        magic, capacity, visible, written, sent, cleared, reading = _HEADER.unpack_from(
            self.map)
        if (magic != MAGIC or capacity != size - HEADER_SIZE or not 0 < capacity
                or visible > capacity or not cleared <= written or not sent <= written
                or written - sent + reading > capacity):
            self.map.close()
            raise ValueError("ring memfd holds no valid ring")
        self.fd = fd
        self.view = memoryview(self.map)
        self.capacity = int(capacity)
        self.visible = int(visible)
        self.written = int(written)
        self.sent = int(sent)
        self.cleared = int(cleared)
        if reading:
            self._recover(int(reading))

    @classmethod
    def create(cls, name: str, capacity: int, visible: int) -> Ring:
        """A new, empty ring of ``capacity`` bytes showing at most ``visible`` of them."""
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, HEADER_SIZE + capacity)
            os.pwrite(fd, _HEADER.pack(MAGIC, capacity, min(visible, capacity), 0, 0, 0, 0),
                      0)
            return cls(fd)
        except BaseException:
            os.close(fd)
            raise

    # -- output in ----------------------------------------------------------------------------

    def room(self) -> int:
        """How many bytes may be written without overwriting unsent ones."""
        return self.capacity - (self.written - self.sent)

    def read_from(self, fd: int, limit: int) -> bytes:
        """Read up to ``limit`` bytes (at most ``room()``) from ``fd`` straight into the
        ring; the bytes read (b"" at end of file). OSError as os.read raises it."""
        count = min(limit, self.room())
        if count <= 0:
            return b""
        start = self.written % self.capacity
        first = min(count, self.capacity - start)
        buffers = [self.view[HEADER_SIZE + start:HEADER_SIZE + start + first]]
        if first < count:
            buffers.append(self.view[HEADER_SIZE:HEADER_SIZE + count - first])
        self._zero_old(buffers)
        _READING.pack_into(self.map, READING_AT, count)
        got = os.readv(fd, buffers)
        self._set_written(self.written + got)
        _READING.pack_into(self.map, READING_AT, 0)
        return self.range(self.written - got, self.written)

    def _zero_old(self, buffers: list[memoryview]) -> None:
        """Zero what earlier output left in the region about to be read (see ``reading``).
        Bytes that never held output are zero already: an untouched memfd page reads as
        zeros, and zeroing it would make it resident (a page per console for nothing, the
        4 KiB past a small console's first page). Output byte N sits where byte
        N - capacity was, so the region holds old bytes from capacity - written on."""
        skip = max(0, self.capacity - self.written)
        for buffer in buffers:
            for at in range(min(skip, len(buffer)), len(buffer), len(_ZEROS)):
                end = min(at + len(_ZEROS), len(buffer))
                buffer[at:end] = _ZEROS[:end - at]
            skip = max(0, skip - len(buffer))

    def _recover(self, reading: int) -> None:
        """The previous daemon died in or right after a read: keep what it read."""
        data = self.range(self.written, self.written + reading)
        self._set_written(self.written + len(data.rstrip(b"\0")))
        _READING.pack_into(self.map, READING_AT, 0)

    def write(self, data: bytes) -> int:
        """Append what fits (``room()``); how many bytes were taken."""
        data = data[:self.room()]
        pos = self.written
        while pos < self.written + len(data):
            start = pos % self.capacity
            chunk = data[pos - self.written:pos - self.written + self.capacity - start]
            self.view[HEADER_SIZE + start:HEADER_SIZE + start + len(chunk)] = chunk
            pos += len(chunk)
        self._set_written(pos)
        return len(data)

    def _set_written(self, value: int) -> None:
        self.written = value
        _WRITTEN.pack_into(self.map, _WRITTEN_AT, value)

    # -- output out ---------------------------------------------------------------------------

    def range(self, begin: int, end: int) -> bytes:
        """Output bytes begin..end (absolute counts, within the last ``capacity``)."""
        parts = []
        while begin < end:
            start = begin % self.capacity
            stop = min(start + end - begin, self.capacity)
            parts.append(self.view[HEADER_SIZE + start:HEADER_SIZE + stop])
            begin += stop - start
        return b"".join(parts)

    def unsent(self) -> bytes:
        return self.range(self.sent, self.written)

    def mark_sent(self, count: int) -> None:
        self.sent += count
        _WRITTEN.pack_into(self.map, _SENT_AT, self.sent)

    def read(self) -> bytes:
        """The ring buffer as ``lxcsd console --show-log`` shows it: the last ``visible``
        bytes written since the last clear, oldest first."""
        return self.range(max(self.cleared, self.written - self.visible), self.written)

    def clear(self) -> None:
        """Empty the visible buffer; unsent output stays queued for the journal."""
        self.cleared = self.written
        _WRITTEN.pack_into(self.map, _CLEARED_AT, self.cleared)

    def consume(self, count: int) -> None:
        """Drop the oldest ``count`` bytes of the visible buffer, as liblxc's
        lxc_ringbuf_move_read_addr after a console_log read; unsent output stays queued."""
        start = max(self.cleared, self.written - self.visible)
        self.cleared = min(self.written, start + max(0, count))
        _WRITTEN.pack_into(self.map, _CLEARED_AT, self.cleared)

    def __len__(self) -> int:
        return min(self.written - self.cleared, self.visible)

    def close(self) -> None:
        """Unmap and close the memfd (the caller removes it from the store first)."""
        if self.fd >= 0:
            self.view.release()
            self.map.close()
            os.close(self.fd)
            self.fd = -1
