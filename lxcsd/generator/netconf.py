"""The default bridge of ``lxcsd-net.service``: the ``bridge`` key of its net.conf.

Only what the generator needs, read without the network code: ``key = value`` lines, ``#``
comments, blank lines. ``/etc/lxcsd/net.conf`` is read first, then the shipped
``$datadir/net.conf``; the first file that sets ``bridge`` wins, else :data:`DEFAULT_BRIDGE`.
A file that cannot be read counts as not setting it: the generator must never fail on it.
"""

from __future__ import annotations

import os

from lxcsd.paths import datadir

ETC_NET_CONF = "/etc/lxcsd/net.conf"
DEFAULT_BRIDGE = "lxcbr0"


def net_conf_files() -> list[str]:
    return [ETC_NET_CONF, os.path.join(datadir(), "net.conf")]


def read_key(path: str, key: str) -> str | None:
    """The value of the last ``key = value`` line of ``path``, or None."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1 << 16)
    except OSError:
        return None
    found = None
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key and not name.lstrip().startswith("#"):
            found = value.strip()
    return found


def bridge_name(files: list[str] | None = None) -> str:
    for path in net_conf_files() if files is None else files:
        value = read_key(path, "bridge")
        if value:
            return value
    return DEFAULT_BRIDGE
