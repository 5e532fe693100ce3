"""The console ring buffer: the last ``size`` bytes of a container's console output.

Memory is taken as output arrives, not up front: most consoles write a few KiB at boot and
little after, so 20 containers with a 128 KiB buffer each do not cost 2.5 MiB of memory
for nothing. Once ``size`` bytes have been written the buffer stops growing and wraps.
"""

from __future__ import annotations


class Ring:
    __slots__ = ("size", "buf", "pos")

    def __init__(self, size: int) -> None:
        self.size = size
        self.buf = bytearray()
        # Where the next byte goes once the buffer is full (and where the oldest byte is).
        self.pos = 0

    def write(self, data: bytes) -> None:
        if len(data) >= self.size:
            self.buf[:] = data[len(data) - self.size:]
            self.pos = 0
            return
        room = self.size - len(self.buf)
        if room > 0:
            self.buf += data[:room]
            data = data[room:]
        if data:
            self._wrap(data)

    def _wrap(self, data: bytes) -> None:
        end = self.pos + len(data)
        if end <= self.size:
            self.buf[self.pos:end] = data
        else:
            first = self.size - self.pos
            self.buf[self.pos:] = data[:first]
            self.buf[:end - self.size] = data[first:]
        self.pos = end % self.size

    def read(self) -> bytes:
        """The contents, oldest byte first."""
        return bytes(self.buf[self.pos:]) + bytes(self.buf[:self.pos])

    def clear(self) -> None:
        self.buf = bytearray()
        self.pos = 0

    def __len__(self) -> int:
        return len(self.buf)
