"""pyroute2 access: the one module that imports it, and the netlink helpers lxcsd.net uses.

Import cost: pyroute2 0.9 costs ~100 ms whatever submodule is imported (its package
``__init__`` loads the whole netlink stack), so the only saving left is importing it only when
needed: ``lxcsd.net`` imports this module lazily.

Sockets in another network namespace: a netlink socket belongs to the namespace its creating
thread was in. :func:`open_in` joins the target namespace with ``setns``, creates the
IPRoute socket and returns to the original namespace at once, in the calling thread: no
helper process (pyroute2's ``netns=`` forks one per socket, ~10 ms) and no thread.
"""

from __future__ import annotations

import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from lxcsd import sys as lsys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["IPRoute", "NetlinkError", "open_host", "open_in", "index_of", "link_attr"]

AF_INET = 2
AF_INET6 = 10
NTF_PROXY = 0x08


def open_host() -> Any:
    """An IPRoute socket in the current network namespace, without event subscriptions."""
    return IPRoute(groups=0)


def open_in(netns_path: str) -> Any:
    """An IPRoute socket in the network namespace behind ``netns_path``
    (``/proc/PID/ns/net`` or a bind mount of it)."""
    target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        lsys.setns(target, lsys.CLONE_NEWNET)
        try:
            return IPRoute(groups=0)
        finally:
            lsys.setns(own, lsys.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(own)


def index_of(ipr: Any, name: str) -> int | None:
    """The ifindex of ``name`` in the socket's namespace, or None."""
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def link_attr(ipr: Any, index: int, attr: str) -> Any:
    """One attribute (``ifname``, ``address``, ``mtu``, ...) of link ``index``; None when the
    link is gone."""
    try:
        links = ipr.get_links(index)
    except NetlinkError:
        return None
    return links[0].get(attr) if links else None


def link_kind(ipr: Any, index: int) -> str | None:
    try:
        links = ipr.get_links(index)
    except NetlinkError:
        return None
    if not links:
        return None
    info = links[0].get("linkinfo")
    return info.get("kind") if info else None


def first_address(ipr: Any, index: int, family: int) -> str | None:
    """The first address of family ``family`` on link ``index`` (for ``gateway = auto``)."""
    for msg in ipr.get_addr(index=index, family=family):
        address = msg.get("address")
        if address and not (family == AF_INET6 and address.startswith("fe80")):
            return str(address)
    return None
