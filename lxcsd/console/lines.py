"""Console output cut into journal lines.

A line ends at "\\n". A carriage return inside a line overwrites it on a terminal, and
journalctl shows a line holding one as "[N blob data]": such a line is reduced to its last
non-empty "\\r"-separated part, which is what a terminal shows in the common cases
(busybox's "\\rThe system is going down", progress counters, "\\r\\n" endings). Other bytes,
escape sequences included, are kept. MAX_LINE bytes without a newline make a line of their
own, so a console that never writes a newline still reaches the journal. What is left
without a newline (a "login: " prompt) is flushed as a line of its own after FLUSH_DELAY
seconds without a complete line. A line that is empty after all that is no journal entry
(the forwarder skips it).

Each line comes with the number of output bytes it ends at, so that the forwarder can
count exactly what the journal took (ring.py: ``sent``).
"""

from __future__ import annotations

MAX_LINE = 4096
FLUSH_DELAY = 0.5


def take_lines(data: bytes, flush: bool = False, limit: int = -1) -> list[tuple[bytes, int]]:
    """The journal lines at the start of ``data``, each as (line, offset in ``data`` just
    past it); with ``flush`` a partial line at the end too. At most ``limit`` lines when
    it is not negative."""
    found: list[tuple[bytes, int]] = []
    pos = 0
    while pos < len(data) and len(found) != limit:
        end = data.find(b"\n", pos, pos + MAX_LINE + 1)
        if end >= 0:
            found.append((_last_overwrite(data[pos:end]), end + 1))
            pos = end + 1
        elif len(data) - pos >= MAX_LINE:
            found.append((data[pos:pos + MAX_LINE], pos + MAX_LINE))
            pos += MAX_LINE
        else:
            if flush:
                found.append((_last_overwrite(data[pos:]), len(data)))
            break
    return found


def has_line(data: bytes) -> bool:
    """Whether ``data`` holds a complete line (or MAX_LINE bytes of one)."""
    return len(data) >= MAX_LINE or b"\n" in data


def _last_overwrite(line: bytes) -> bytes:
    """The last non-empty part of a line between carriage returns."""
    if b"\r" not in line:
        return line
    for part in reversed(line.split(b"\r")):
        if part:
            return part
    return b""
