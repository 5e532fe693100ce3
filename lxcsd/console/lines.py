"""Console output cut into journal lines.

A line ends at "\\n". A carriage return inside a line overwrites it on a terminal, and
journalctl shows a line holding one as "[N blob data]": such a line is reduced to its last
non-empty "\\r"-separated part, which is what a terminal shows in the common cases
(busybox's "\\rThe system is going down", progress counters, "\\r\\n" endings). Other bytes,
escape sequences included, are kept. A line longer than MAX_LINE is cut into pieces, so a
console that never writes a newline costs at most MAX_LINE bytes here. What is left without
a newline (a "login: " prompt) is flushed as a line of its own after FLUSH_DELAY seconds
without more output.
"""

from __future__ import annotations

MAX_LINE = 4096
FLUSH_DELAY = 0.5


class LineSplitter:
    __slots__ = ("pending", "since")

    def __init__(self) -> None:
        self.pending = b""
        # When the oldest byte of `pending` arrived (monotonic seconds); 0 when empty.
        self.since = 0.0

    def feed(self, data: bytes, now: float) -> list[bytes]:
        """Complete lines in pending + data; the rest stays pending."""
        if not self.pending:
            self.since = now
        *lines, rest = (self.pending + data).split(b"\n")
        lines = [_last_overwrite(line) for line in lines]
        while len(rest) >= MAX_LINE:
            lines.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        if lines:
            self.since = now
        self.pending = rest
        return [piece for line in lines for piece in _cut(line)]

    def deadline(self) -> float | None:
        """When the pending partial line is due, or None."""
        return self.since + FLUSH_DELAY if self.pending else None

    def flush(self) -> bytes | None:
        """Take the pending partial line."""
        line, self.pending = self.pending, b""
        line = _last_overwrite(line)
        return line if line else None


def _last_overwrite(line: bytes) -> bytes:
    """The last non-empty part of a line between carriage returns."""
    if b"\r" not in line:
        return line
    for part in reversed(line.split(b"\r")):
        if part:
            return part
    return b""


def _cut(line: bytes) -> list[bytes]:
    if len(line) <= MAX_LINE:
        return [line]
    return [line[i:i + MAX_LINE] for i in range(0, len(line), MAX_LINE)]
