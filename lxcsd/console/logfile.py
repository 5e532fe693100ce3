"""``lxc.console.logfile`` with LXC's ``lxc.console.size`` and ``lxc.console.rotate``.

As LXC's terminal.c does: the file is opened for appending (never truncated at start);
with a size limit, what does not fit is written after rotating (the file becomes FILE.1, a
new FILE starts) or, without rotate, after truncating the file; a chunk larger than the
limit keeps only its first ``size`` bytes. Size 0 means no limit. A file that is not a
regular file (a FIFO, a tty) is written to without limit or rotation, and never blocks.
"""

from __future__ import annotations

import os
import stat

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


class ConsoleLog:
    __slots__ = ("path", "size", "rotate", "fd", "regular")

    def __init__(self, path: str, size: int = 0, rotate: bool = False) -> None:
        self.path = path
        self.size = size
        self.rotate = rotate
        self.fd = -1
        self.regular = True
        self.open()

    def open(self) -> None:
        """Raises OSError when the file cannot be opened."""
        self.fd = os.open(self.path, _FLAGS, 0o600)
        self.regular = stat.S_ISREG(os.fstat(self.fd).st_mode)

    def write(self, data: bytes) -> None:
        """Raises OSError (the caller reports it and goes on)."""
        if self.size <= 0 or not self.regular:
            self._write(data)
            return
        space = self.size - os.fstat(self.fd).st_size
        if len(data) <= space:
            self._write(data)
            return
        if space > 0:
            self._write(data[:space])
            data = data[space:]
        self._start_over()
        self._write(data[:self.size])

    def _start_over(self) -> None:
        if not self.rotate:
            os.ftruncate(self.fd, 0)
            return
        os.close(self.fd)
        self.fd = -1
        try:
            os.replace(self.path, self.path + ".1")
        finally:
            self.open()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                return  # a FIFO nobody reads: drop rather than stall every console

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
