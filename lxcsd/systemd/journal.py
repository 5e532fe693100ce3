"""journald's native protocol (systemd-journald.service(8)): one datagram per entry.

By hand for the same reasons as :mod:`.sdnotify`: pystemd costs ~25 ms to import, and the
console service, which forwards every console line to the journal of ``lxc@NAME.service``,
lives as long as the host (``_socket``, not ``socket``: ~1 MB less in it, measured).
"""

from __future__ import annotations

import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

JOURNAL_SOCKET = "/run/systemd/journal/socket"


def _journal_field(key: str, value: str) -> bytes:
    data = value.encode(errors="replace")
    if b"\n" not in data:
        return key.encode() + b"=" + data + b"\n"
    # Multi-line values use the binary form: KEY\n<64-bit little-endian length><data>\n
    return key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"


def journal_fields(priority: int, fields: Mapping[str, str]) -> bytes:
    """PRIORITY= and the other fields of an entry, encoded: an entry is MESSAGE= + these."""
    parts = [_journal_field("PRIORITY", str(priority))]
    parts += [_journal_field(k, v) for k, v in fields.items()]
    return b"".join(parts)


def journal_payload(message: str, priority: int, fields: Mapping[str, str]) -> bytes:
    return _journal_field("MESSAGE", message) + journal_fields(priority, fields)


class Journal:
    """A connection to journald's native socket, reused for many entries (console lines)."""

    def __init__(self, socket_path: str = JOURNAL_SOCKET) -> None:
        self.socket_path = socket_path
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)

    def send(self, message: str, priority: int = 6, **fields: str) -> bool:
        """Log one entry; False when journald is not there (never raises for that)."""
        try:
            self.sock.sendto(journal_payload(message, priority, fields), self.socket_path)
        except OSError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()
