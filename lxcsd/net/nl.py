"""rtnetlink for lxcsd.net: pyroute2's message classes on a plain synchronous socket.

Measured on this machine (Debian python3 -I -S, bench/netstart.py): ``import pyroute2``
costs ~250 ms, because the package ``__init__`` imports its whole API (NDB, IPDB, conntrack,
nl80211, asyncio, multiprocessing...), and each ``IPRoute`` request goes through an asyncio
event loop. A container start with one veth took ~350 ms more than without. So:

- :func:`import_messages` imports only the rtnetlink message modules (``ifinfmsg``,
  ``ifaddrmsg``, ``rtmsg``, ``ndmsg``), with a bare module object standing in for the
  ``pyroute2`` package so its ``__init__`` never runs (~55 ms instead of ~250 ms). If a
  pyroute2 release moves these modules, the full package is imported instead (slower, same
  result).
- :class:`Rtnl` sends pyroute2-encoded requests on an ``AF_NETLINK`` socket and decodes the
  replies with the same classes: a request is a ``sendto`` and a ``recv``.

Messages and attributes are pyroute2's (``attr(msg, "ifname")``, nested ``IFLA_LINKINFO``), so
lxcsd never packs netlink structures by hand. Another namespace: a netlink socket belongs to
the namespace its creating thread was in, so :func:`open_in` joins the target with ``setns``,
creates the socket and returns at once — no helper process (pyroute2's ``netns=`` forks one).
"""

from __future__ import annotations

import errno
import os
import socket
import sys

from lxcsd import linux

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

AF_INET = 2
AF_INET6 = 10
NTF_PROXY = 0x08
IFF_UP = 0x1
NETLINK_ROUTE = 0

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSG_ERROR = 2
NLMSG_DONE = 3

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
AF_BRIDGE = 7
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE = 24
RTM_NEWNEIGH, RTM_DELNEIGH = 28, 29

_GETS = (RTM_GETLINK, RTM_GETADDR)
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0


class NetlinkError(OSError):
    """A negative netlink acknowledgement; ``code`` is the errno (as pyroute2's)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code, message or os.strerror(code))
        self.code = code


_MESSAGES: dict[str, Any] = {}


def import_messages() -> dict[str, Any]:
    if _MESSAGES:
        return _MESSAGES
    if "pyroute2" not in sys.modules:
        import importlib.util

        spec = importlib.util.find_spec("pyroute2")
        if spec is not None and spec.submodule_search_locations:
            stub = type(sys)("pyroute2")
            stub.__path__ = list(spec.submodule_search_locations)
            stub.__spec__ = spec
            sys.modules["pyroute2"] = stub
    try:
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        from pyroute2.netlink.rtnl.ndmsg import ndmsg
        from pyroute2.netlink.rtnl.rtmsg import rtmsg
    except ImportError:
        for name in [m for m in sys.modules if m == "pyroute2" or m.startswith("pyroute2.")]:
            del sys.modules[name]
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        from pyroute2.netlink.rtnl.ndmsg import ndmsg
        from pyroute2.netlink.rtnl.rtmsg import rtmsg
    _MESSAGES.update(link=ifinfmsg, addr=ifaddrmsg, route=rtmsg, neigh=ndmsg)
    return _MESSAGES


def _nla_name(cls: Any, key: str) -> str:
    return str(cls.name2nla(key)) if cls.prefix else key.upper()


class Rtnl:
    """One rtnetlink socket; the calls mirror pyroute2's IPRoute for what lxcsd uses."""

    def __init__(self) -> None:
        self.msg = import_messages()
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ----------------------------------------------------------------------

    def request(self, kind: str, msg_type: int, flags: int, fields: dict[str, Any],
                attrs: list[list[Any]]) -> list[Any]:
        cls = self.msg[kind]
        msg = cls()
        for key, value in fields.items():
            msg[key] = value
        msg["attrs"] = attrs
        self.seq += 1
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = NLM_F_REQUEST | flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(bytes(msg.data))
        # NLM_F_DUMP shares bits with NLM_F_EXCL: only GET requests dump.
        return self._replies(cls, dump=msg_type in _GETS and flags & NLM_F_DUMP == NLM_F_DUMP)

    def _replies(self, cls: Any, dump: bool) -> list[Any]:
        found: list[Any] = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length = int.from_bytes(data[offset:offset + 4], sys.byteorder)
                msg_type = int.from_bytes(data[offset + 4:offset + 6], sys.byteorder)
                seq = int.from_bytes(data[offset + 8:offset + 12], sys.byteorder)
                chunk = data[offset:offset + length]
                offset += (length + 3) & ~3
                if seq != self.seq or length < 16:
                    continue
                if msg_type == NLMSG_DONE:
                    return found
                if msg_type == NLMSG_ERROR:
                    code = -int.from_bytes(chunk[16:20], sys.byteorder, signed=True)
                    if code:
                        raise NetlinkError(code)
                    if not dump:
                        return found
                    continue
                msg = cls(chunk)
                msg.decode()
                found.append(msg)
                if not dump:
                    return found  # a GET without NLM_F_ACK: the one reply is all

    # --- links --------------------------------------------------------------------------

    def _link_attrs(self, spec: dict[str, Any]) -> tuple[dict[str, Any], list[list[Any]]]:
        cls = self.msg["link"]
        fields: dict[str, Any] = {"family": 0, "index": spec.pop("index", 0), "flags": 0,
                                  "change": 0}
        state = spec.pop("state", None)
        if state is not None:
            fields["flags"] = IFF_UP if state == "up" else 0
            fields["change"] = IFF_UP
        kind = spec.pop("kind", None)
        peer = spec.pop("peer", None)
        data: list[list[Any]] = []
        if kind is not None:
            data_cls = cls.ifinfo.data_map.get(kind)
            for key in list(spec):
                if data_cls is not None and key.startswith(f"{kind}_"):
                    data.append([_nla_name(data_cls, key), spec.pop(key)])
            if peer is not None:
                data.append(["VETH_INFO_PEER", {"attrs": [
                    [_nla_name(cls, key), value] for key, value in peer.items()]}])
        attrs = [[_nla_name(cls, key), value] for key, value in spec.items()]
        if kind is not None:
            info: list[list[Any]] = [["IFLA_INFO_KIND", kind]]
            if data:
                info.append(["IFLA_INFO_DATA", {"attrs": data}])
            attrs.append(["IFLA_LINKINFO", {"attrs": info}])
        return fields, attrs

    def link(self, command: str, **spec: Any) -> list[Any]:
        """``add`` (``ifname``, ``kind``, kind data as ``KIND_ATTR``, ``peer`` for veth),
        ``set`` (``index`` + attributes, ``state="up"|"down"``), ``del`` (``index``)."""
        fields, attrs = self._link_attrs(dict(spec))
        if command == "add":
            return self.request("link", RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                                fields, attrs)
        if command == "set":
            return self.request("link", RTM_NEWLINK, NLM_F_ACK, fields, attrs)
        if command == "del":
            return self.request("link", RTM_DELLINK, NLM_F_ACK, fields, attrs)
        raise ValueError(command)

    def get_links(self, index: int | None = None) -> list[Any]:
        if index is None:
            return self.request("link", RTM_GETLINK, NLM_F_DUMP, {"family": 0}, [])
        return self.request("link", RTM_GETLINK, 0, {"family": 0, "index": index}, [])

    def link_lookup(self, ifname: str) -> list[int]:
        try:
            found = self.request("link", RTM_GETLINK, 0, {"family": 0},
                                 [["IFLA_IFNAME", ifname]])
        except NetlinkError as err:
            if err.code == errno.ENODEV:
                return []
            raise
        return [int(msg["index"]) for msg in found]

    def bridge_vlan(self, command: str, *, index: int, vid: int, flags: int = 0) -> list[Any]:
        """``add``/``del`` VLAN ``vid`` on bridge port ``index`` (``bridge vlan add``)."""
        msg_type = {"add": RTM_SETLINK, "del": RTM_DELLINK}[command]
        return self.request("link", msg_type, NLM_F_ACK, {"family": AF_BRIDGE, "index": index},
                            [["IFLA_AF_SPEC", {"attrs": [
                                ["IFLA_BRIDGE_VLAN_INFO", {"flags": flags, "vid": vid}]]}]])

    # --- addresses, routes, neighbours --------------------------------------------------

    def addr(self, command: str, *, index: int, address: str, prefixlen: int,
             broadcast: str | None = None, family: int = AF_INET) -> list[Any]:
        if command != "add":
            raise ValueError(command)
        attrs: list[list[Any]] = [["IFA_LOCAL", address], ["IFA_ADDRESS", address]]
        if broadcast and family == AF_INET:
            attrs.append(["IFA_BROADCAST", broadcast])
        return self.request("addr", RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                            {"family": family, "prefixlen": prefixlen, "index": index,
                             "scope": 0}, attrs)

    def get_addr(self, *, index: int, family: int) -> list[Any]:
        return [msg for msg in self.request("addr", RTM_GETADDR, NLM_F_DUMP,
                                            {"family": family}, [])
                if msg["index"] == index]

    def route(self, command: str, *, dst: str, oif: int, gateway: str | None = None,
              scope: int = RT_SCOPE_UNIVERSE, family: int = AF_INET) -> list[Any]:
        if command != "add":
            raise ValueError(command)
        address, _, prefix = dst.partition("/")
        attrs: list[list[Any]] = [["RTA_OIF", oif]]
        length = int(prefix) if prefix else (32 if family == AF_INET else 128)
        if length:
            attrs.append(["RTA_DST", address])
        if gateway:
            attrs.append(["RTA_GATEWAY", gateway])
        return self.request("route", RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                            {"family": family, "dst_len": length, "table": RT_TABLE_MAIN,
                             "proto": RTPROT_BOOT, "scope": scope, "type": RTN_UNICAST},
                            attrs)

    def neigh(self, command: str, *, dst: str, ifindex: int, family: int,
              flags: int = 0) -> list[Any]:
        msg_type = {"add": RTM_NEWNEIGH, "del": RTM_DELNEIGH}[command]
        extra = NLM_F_CREATE | NLM_F_EXCL if command == "add" else 0
        return self.request("neigh", msg_type, NLM_F_ACK | extra,
                            {"family": family, "ifindex": ifindex, "flags": flags,
                             "state": 0x80 if command == "add" else 0},  # NUD_PERMANENT
                            [["NDA_DST", dst]])


# --- helpers the rest of lxcsd.net uses ---------------------------------------------------


def open_host() -> Rtnl:
    """An rtnetlink socket in the current network namespace."""
    return Rtnl()


def open_in(netns_path: str) -> Rtnl:
    """An rtnetlink socket in the network namespace behind ``netns_path``
    (``/proc/PID/ns/net`` or a bind mount of it)."""
    target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(target, linux.CLONE_NEWNET)
        try:
            return Rtnl()
        finally:
            linux.setns(own, linux.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(own)


def index_of(ipr: Rtnl, name: str) -> int | None:
    """The ifindex of ``name`` in the socket's namespace, or None."""
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def _link(ipr: Rtnl, index: int) -> Any:
    try:
        links = ipr.get_links(index)
    except NetlinkError:
        return None
    return links[0] if links else None


def attr(msg: Any, *path: str) -> Any:
    """An attribute or field of a decoded message, nested along path: ``attr(link,
    "ifname")``, ``attr(link, "linkinfo", "kind")``; None when absent.

    Always a tuple to pyroute2's ``get``: pyroute2 0.7 (Debian bookworm's python3-pyroute2)
    walks a str key as a path of its characters and returns None, 0.9 wraps it itself."""
    return msg.get(path)


def link_attr(ipr: Rtnl, index: int, name: str) -> Any:
    """One attribute (``ifname``, ``address``, ``mtu``, ``master``) of link ``index``;
    None when the link is gone."""
    link = _link(ipr, index)
    return None if link is None else attr(link, name)


def link_kind(ipr: Rtnl, index: int) -> str | None:
    link = _link(ipr, index)
    kind = None if link is None else attr(link, "linkinfo", "kind")
    return None if kind is None else str(kind)


def first_address(ipr: Rtnl, index: int, family: int) -> str | None:
    """The first address of family ``family`` on link ``index`` (for ``gateway = auto``)."""
    for msg in ipr.get_addr(index=index, family=family):
        address = attr(msg, "address")
        if address and not (family == AF_INET6 and str(address).startswith("fe80")):
            return str(address)
    return None
