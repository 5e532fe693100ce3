"""Where the generator's messages go: /dev/kmsg, else the journal, else stderr.

A generator has no journal connection of its own at boot (it runs before journald), and
systemd 252 gives it PID 1's stdout/stderr, which are /dev/null: /dev/kmsg is the way into
the system log, as for quadlet and systemd's own generators. Where /dev/kmsg is not
writable (inside containers, the test sandbox) the journal's native socket is tried, which
exists at daemon-reload time; stderr is the last resort (and the choice for dry runs).

The kernel rate-limits writes to /dev/kmsg per open file (10 per 5 s with the default
``printk.devkmsg=ratelimit``), so the file is reopened every few messages: one broken
container logs one line per error, and a host may have many.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from lxcsd.systemd.journal import Journal

IDENT = "lxcsd-generator"
ERR = 3
WARNING = 4
NOTICE = 5
_KMSG_BURST = 9          # below the kernel's burst of 10 per open file
_KMSG_MAX = 900          # a kmsg record from user space holds ~1000 bytes
_LEVELS = {ERR: "error", WARNING: "warning", NOTICE: "notice"}


class Log:
    """Log sink. ``kmsg``/``journal`` False: straight to ``stream`` (tests, dry runs)."""

    def __init__(self, *, kmsg: bool = True, journal: bool = True,
                 stream: TextIO | None = None) -> None:
        self.use_kmsg = kmsg
        self.use_journal = journal
        self.stream = stream
        self.messages: list[tuple[int, str]] = []   # everything logged, for tests and --dry-run
        self._kmsg_fd = -1
        self._kmsg_count = 0
        self._journal: Journal | None = None

    def error(self, text: str) -> None:
        self.log(ERR, text)

    def warning(self, text: str) -> None:
        self.log(WARNING, text)

    def notice(self, text: str) -> None:
        self.log(NOTICE, text)

    def log(self, level: int, text: str) -> None:
        text = " ".join(text.split("\n"))
        self.messages.append((level, text))
        if not (self._to_kmsg(level, text) or self._to_journal(level, text)):
            self._to_stream(level, text)

    def errors(self) -> list[str]:
        return [text for level, text in self.messages if level <= ERR]

    def _to_kmsg(self, level: int, text: str) -> bool:
        if not self.use_kmsg:
            return False
        if self._kmsg_fd < 0 or self._kmsg_count >= _KMSG_BURST:
            self._close_kmsg()
            try:
                self._kmsg_fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
            except OSError:
                self.use_kmsg = False
                return False
        record = f"<{level}>{IDENT}[{os.getpid()}]: {text}"
        data = record.encode("utf-8", "backslashreplace")[:_KMSG_MAX]
        try:
            os.write(self._kmsg_fd, data + b"\n")
        except OSError:
            return False
        self._kmsg_count += 1
        return True

    def _close_kmsg(self) -> None:
        if self._kmsg_fd >= 0:
            os.close(self._kmsg_fd)
        self._kmsg_fd = -1
        self._kmsg_count = 0

    def _to_journal(self, level: int, text: str) -> bool:
        if not self.use_journal:
            return False
        if self._journal is None:
            from lxcsd.systemd.journal import JOURNAL_SOCKET, Journal

            if not os.path.exists(JOURNAL_SOCKET):
                self.use_journal = False
                return False
            self._journal = Journal()
        return self._journal.send(text, level, SYSLOG_IDENTIFIER=IDENT,
                                  SYSLOG_PID=str(os.getpid()))

    def _to_stream(self, level: int, text: str) -> None:
        stream = self.stream or sys.stderr
        try:
            stream.write(f"{IDENT}: {_LEVELS.get(level, 'info')}: {text}\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # nowhere left to report to; never fail the generator over a message

    def close(self) -> None:
        self._close_kmsg()
        if self._journal is not None:
            self._journal.close()
            self._journal = None
