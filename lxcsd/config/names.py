"""Container names: validation, and their systemd unit names (``lxc@NAME.service``).

liblxc checks almost nothing (lxc_container_new takes any string): a name is whatever is a
directory entry under the lxcpath, and ``lxc-ls``/autostart skip names starting with ``.``.
So a valid name is one path component (1-255 bytes, no ``/``, not ``.`` or ``..``, no NUL),
and lxcsd also refuses control characters and names whose unit name would pass systemd's
limit of 255 bytes.

Escaping for the unit instance: the unit template passes ``%i`` (the instance as written, not
``%I``), so names made of ``[A-Za-z0-9_.:-]`` appear verbatim, ``-`` included. Any other byte
(and a leading ``.``, which systemd does not allow) becomes ``\\xNN``, as systemd-escape does.
:func:`unescape` reverses exactly that and refuses every other spelling, so a container has
exactly one unit name.

API: :func:`validate_name`, :func:`escape`, :func:`unescape`, :func:`unit_name`,
:func:`name_from_unit`.
"""

from __future__ import annotations

from lxcsd.errors import ConfigError

UNIT_PREFIX = "lxc@"
UNIT_SUFFIX = ".service"
UNIT_NAME_MAX = 255
NAME_MAX = 255
_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")
_HEX = "0123456789abcdef"


def _bytes(name: str) -> bytes:
    # Names come from directory listings, where undecodable bytes are surrogates.
    return name.encode("utf-8", "surrogateescape")


def _problem(name: str) -> str:
    """What is wrong with a name, or "" when it is valid."""
    raw = _bytes(name)
    if not raw:
        return "the name is empty"
    if name in (".", ".."):
        return f"{name!r} is not a name"
    if b"/" in raw:
        return "the name contains '/'"
    if any(byte < 0x20 or byte == 0x7F for byte in raw):
        return "the name contains a control character"
    if len(raw) > NAME_MAX:
        return f"the name is longer than {NAME_MAX} bytes"
    if len(UNIT_PREFIX) + len(escape(name)) + len(UNIT_SUFFIX) > UNIT_NAME_MAX:
        return f"the unit name would be longer than {UNIT_NAME_MAX} bytes"
    return ""


def is_valid_name(name: str) -> bool:
    return not _problem(name)


def validate_name(name: str) -> str:
    """Return ``name`` if it can be a container name; raise ConfigError otherwise."""
    problem = _problem(name)
    if problem:
        raise ConfigError(f"invalid container name {name!r}: {problem}",
                          hint="use letters, digits and _ . : - (at most about 240 bytes)")
    return name


def escape(name: str) -> str:
    """The unit instance string for a container name (no validation)."""
    out = []
    for pos, byte in enumerate(_bytes(name)):
        if byte in _PLAIN and not (pos == 0 and byte == 0x2E):
            out.append(chr(byte))
        else:
            out.append("\\x" + _HEX[byte >> 4] + _HEX[byte & 15])
    return "".join(out)


def _unescape_bytes(text: str) -> bytes | None:
    if not text.isascii():
        return None  # escape() never produces non-ASCII
    raw = bytearray()
    pos = 0
    while pos < len(text):
        if text[pos] != "\\":
            raw.append(ord(text[pos]))
            pos += 1
            continue
        digits = text[pos + 2: pos + 4]
        if text[pos + 1: pos + 2] != "x" or len(digits) != 2 or digits.strip(_HEX):
            return None
        raw.append(int(digits, 16))
        pos += 4
    return bytes(raw)


def unescape(text: str) -> str:
    """The container name of a unit instance string; exactly reverses :func:`escape`.

    Raises ConfigError for anything :func:`escape` could not have produced (uppercase hex,
    escaped plain characters, invalid names)."""
    raw = _unescape_bytes(text)
    name = raw.decode("utf-8", "surrogateescape") if raw is not None else None
    if name is None or escape(name) != text:
        raise ConfigError(f"{text!r} is not an escaped container name",
                          hint="unit instances come from lxcsd's own escaping; "
                          "use the container name, e.g. 'lxcsd check NAME'")
    return validate_name(name)


def unit_name(name: str) -> str:
    """``lxc@ESCAPED.service`` for a valid container name."""
    return UNIT_PREFIX + escape(validate_name(name)) + UNIT_SUFFIX


def name_from_unit(unit: str) -> str:
    """The container name of ``lxc@ESCAPED.service``."""
    if not (unit.startswith(UNIT_PREFIX) and unit.endswith(UNIT_SUFFIX)):
        raise ConfigError(f"{unit!r} is not an lxc@NAME.service unit")
    return unescape(unit[len(UNIT_PREFIX): -len(UNIT_SUFFIX)])
