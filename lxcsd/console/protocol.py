"""The messages spoken on the console service's socket (AF_UNIX, SOCK_SEQPACKET).

Each packet is one message, so no framing is needed. A connection starts with one request
and one reply, both text (UTF-8), one line per field, values never containing a newline:

    request:  VERB "\\n" *(KEY "=" VALUE "\\n")
    reply:    "ok" | "error" "\\n" *(KEY "=" VALUE "\\n")          (error carries message=)

A key given twice keeps both values, joined by "\\n" (lossless: values hold no newline).

Verbs (keys in brackets are optional):

    register  name unit fds [logfile logsize logrotate buffer journal]   fds as SCM_RIGHTS
              fds= names the passed descriptors in order: "pid" (a pidfd of the container's
              init), "0" (the console), "N" (tty N)
    attach    name [tty]          tty 0 (the default) is the console
    log       name [read clear]   ring buffer contents; read=0 clear=1 only clears
    list                          reply: container=NAME<TAB>UNIT<TAB>TTYS<TAB>VIEWERS, repeated

After "ok" to attach, both sides send frames whose first byte is their type:

    d + bytes        output (daemon → client) or input (client → daemon)
    w + "ROWS COLS"  the client's window size (client → daemon)
    x + reason       the session ends (daemon → client), e.g. the container stopped

After "ok" (with size=N) to log, the daemon sends d frames and closes the connection.

Imported by the helper on its hot path: standard library only, no json.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping

DEFAULT_SOCKET = "/run/lxcsd/console.sock"
# Lets tests (and a developer) run a private daemon; the socket itself is root-only.
SOCKET_ENV = "LXCSD_CONSOLE_SOCKET"

FRAME_DATA = b"d"[0]
FRAME_WINSIZE = b"w"[0]
FRAME_END = b"x"[0]

# A SOCK_SEQPACKET message larger than the receive buffer is truncated: requests and frames
# stay far below this, and log replies are split into chunks of this size.
MAX_MESSAGE = 65536
# The kernel passes at most 253 descriptors in one message (SCM_MAX_FD).
MAX_FDS = 253


class ProtocolError(ValueError):
    """A message that does not follow the protocol above, or an error reply.

    ``code`` classifies error replies for clients: "unknown" (no such container), "notty"
    (no such tty), "nobuffer" (no ring buffer), "denied", "invalid".
    """

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


def socket_path() -> str:
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def encode(verb: str,
           fields: Mapping[str, object] | list[tuple[str, object]] | None = None) -> bytes:
    """A message; fields as a mapping, or as pairs when a key repeats."""
    lines = [verb]
    pairs = fields if isinstance(fields, list) else (fields or {}).items()
    for key, value in pairs:
        text = str(value)
        if "\n" in text or "\n" in key or "=" in key or not key:
            raise ProtocolError(f"cannot encode {key}={text!r}: newline or bad key")
        lines.append(f"{key}={text}")
    return ("\n".join(lines) + "\n").encode()


def decode(data: bytes) -> tuple[str, dict[str, str]]:
    """Split a message into its verb and fields; raises ProtocolError."""
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise ProtocolError(f"message is not UTF-8: {e}") from None
    verb, _, rest = text.partition("\n")
    fields: dict[str, str] = {}
    for line in rest.split("\n"):
        if line:
            _add_field(fields, line)
    return verb, fields


def _add_field(fields: dict[str, str], line: str) -> None:
    key, sep, value = line.partition("=")
    if not sep or not key:
        raise ProtocolError(f"not a key=value line: {line!r}")
    fields[key] = f"{fields[key]}\n{value}" if key in fields else value


def ok(fields: Mapping[str, object] | list[tuple[str, object]] | None = None) -> bytes:
    return encode("ok", fields)


def error(message: str, code: str = "invalid") -> bytes:
    return encode("error", {"message": message.replace("\n", " "), "code": code})


def check_reply(data: bytes) -> dict[str, str]:
    """The fields of an "ok" reply; raises ProtocolError with the daemon's message otherwise."""
    if not data:
        raise ProtocolError("the console service closed the connection without replying")
    verb, fields = decode(data)
    if verb == "ok":
        return fields
    raise ProtocolError(fields.get("message") or f"unexpected reply {verb!r}",
                        fields.get("code", "invalid"))


def check_name(name: str) -> str:
    """A container name the protocol can carry; raises ProtocolError."""
    if not name or len(name) > 255 or "/" in name or not name.isprintable():
        raise ProtocolError(f"invalid container name {name!r}")
    return name


def connect(path: str | None = None, timeout: float = 5.0) -> socket.socket:
    """A connection to the console service, with `timeout` on every operation.

    Connecting succeeds as soon as systemd holds the socket, before the service has started
    (socket activation): the request then waits in the socket until the service reads it.
    """
    import socket  # here: the daemon never connects, and the socket module costs it 1 MB

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(path or socket_path())
    except BaseException:
        sock.close()
        raise
    return sock
