"""liblxc's command socket addresses, without the wire format (lxcsd.liblxc.wire): which
abstract name a container's socket has, and which of them listen now.

os only: the generator asks whether a container runs under lxc-start for every autostart
container at every daemon-reload, and needs nothing else of liblxc's protocol then.
"""

from __future__ import annotations

import os

SUN_PATH = 108  # sizeof(sockaddr_un.sun_path)
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def fnv1a_64(data: bytes) -> int:
    """FNV-1a, 64 bits: liblxc's fnv_64a_buf with FNV1A_64_INIT (utils.c)."""
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & _MASK64
    return value


def socket_name(lxcpath: str, name: str, suffix: str = "command") -> bytes:
    """The abstract address (leading NUL, no trailing one) liblxc binds and connects to
    (lxc_make_abstract_socket_name): ``LXCPATH/NAME/SUFFIX`` when it fits in 105 bytes,
    else ``lxc/HASH/SUFFIX`` with HASH the FNV-1a of ``LXCPATH/NAME`` in 16 hex digits."""
    text = os.fsencode(f"{lxcpath}/{name}/{suffix}")
    if len(text) >= SUN_PATH - 2:  # liblxc's snprintf() into sun_path[1..106] ran over
        digest = fnv1a_64(os.fsencode(f"{lxcpath}/{name}"))
        text = b"lxc/%016x/%s" % (digest, os.fsencode(suffix))
    return b"\0" + text


PROC_NET_UNIX = "/proc/net/unix"
_ACCEPTCON = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags: the socket listens


def listening_abstract(path: str = PROC_NET_UNIX) -> frozenset[bytes] | None:
    """The abstract names of the unix sockets that listen in this network namespace, as
    /proc/net/unix shows them (``@`` for each NUL byte, the leading one included); None
    when it cannot be read. One read instead of one connect() per container (the
    generator); see :func:`may_listen`."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError:
        return None
    found = set()
    for line in text.split(b"\n")[1:]:
        fields = line.split(None, 7)
        if len(fields) == 8 and fields[7][:1] == b"@":
            try:
                listens = int(fields[3], 16) & _ACCEPTCON
            except ValueError:
                continue
            if listens:
                found.add(fields[7])
    return frozenset(found)


def may_listen(address: bytes, listening: frozenset[bytes] | None) -> bool:
    """False only when :func:`listening_abstract`'s answer shows nothing listens on
    ``address`` (a name with a newline cannot be told from the file: True)."""
    if listening is None or b"\n" in address:
        return True
    return address.replace(b"\0", b"@") in listening
