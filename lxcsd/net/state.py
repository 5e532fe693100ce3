"""The network state file, ``STATE_DIR/net``: what cleanup needs, written before it is needed.

One record per line, tab-separated ``key=value`` fields; the first field is ``net=N`` (the
network index) or ``pin=PATH`` (a bind mount holding the container's network namespace).
Lines are only appended (``O_APPEND``): setup writes a record *before* creating a device and
appends the fields it learns later (a generated name, the container-side name) as another
line with the same ``net=N``, so a helper killed between two writes leaves a usable file.
Readers merge the lines of one index, later fields winning. Values escape ``\\``, tab and
newline so a ``script.down`` command survives. Plain text rather than JSON: cleanup of a
container without devices must not pay for importing json (it only reads this file).
"""

from __future__ import annotations

import os

FILE = "net"
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"))


def _escape(value: str) -> str:
    for raw, escaped in _ESCAPES:
        value = value.replace(raw, escaped)
    return value


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"t": "\t", "n": "\n"}.get(nxt, nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def path(state_dir: str) -> str:
    return os.path.join(state_dir, FILE)


def append(state_dir: str, **fields: object) -> None:
    """Append one record; fields with value None are left out."""
    line = "\t".join(f"{key}={_escape(str(value))}" for key, value in fields.items()
                     if value is not None) + "\n"
    fd = os.open(path(state_dir), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def parse(text: str) -> tuple[list[dict[str, str]], list[str]]:
    """(network records in index order, merged per index; pin paths)."""
    nets: dict[int, dict[str, str]] = {}
    pins: list[str] = []
    for line in text.splitlines():
        fields = {}
        for item in line.split("\t"):
            key, sep, value = item.partition("=")
            if sep:
                fields[key] = _unescape(value)
        if "pin" in fields:
            pins.append(fields["pin"])
        elif fields.get("net", "").lstrip("-").isdigit():
            nets.setdefault(int(fields["net"]), {}).update(fields)
    return [nets[index] for index in sorted(nets)], pins


def read(state_dir: str) -> tuple[list[dict[str, str]], list[str]] | None:
    """The parsed state file, or None when there is none."""
    try:
        with open(path(state_dir), encoding="utf-8", errors="replace") as handle:
            return parse(handle.read())
    except FileNotFoundError:
        return None


def remove(state_dir: str) -> None:
    try:
        os.unlink(path(state_dir))
    except FileNotFoundError:
        pass
