"""A container's networks as the start plan carries them: plain records with the fields of
the config model's ``Network`` (``lxcsd.config.model``), so that ``lxcsd.net.setup`` runs
from a compiled plan without the config reader (docs/design.md, "The start path").

:func:`plan_of` makes a :class:`NetPlan` from the model (compile time); the records dump to
tuples for the plan file and load back. ``where`` keeps the file:line of every
``lxc.net.N.*`` key, so that errors at start still name the config line.
"""

from __future__ import annotations

from lxcsd.runtime.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.config.model import Container


class IPv4Address(Record):
    __slots__ = ("address", "prefix", "broadcast")
    address: str
    prefix: int
    broadcast: str


class IPAddress(Record):
    __slots__ = ("address", "prefix")
    address: str
    prefix: int


# Network fields holding addresses, and their record.
_ADDRESSES: dict[str, type[Record]] = {
    "ipv4_addresses": IPv4Address, "ipv6_addresses": IPAddress,
    "veth_ipv4_routes": IPAddress, "veth_ipv6_routes": IPAddress,
}


class NetSpec(Record):
    """One ``lxc.net.N``: the config model's ``Network`` fields (a unit test keeps the two
    lists equal); addresses as the records above."""

    __slots__ = (
        "index", "type", "up", "link", "name", "hwaddr", "mtu", "l2proxy",
        "ipv4_addresses", "ipv4_gateway", "ipv6_addresses", "ipv6_gateway",
        "script_up", "script_down",
        "veth_mode", "veth_pair", "veth_ipv4_routes", "veth_ipv6_routes", "veth_vlan_id",
        "veth_vlan_tagged_ids", "veth_n_rxqueues", "veth_n_txqueues",
        "macvlan_mode", "ipvlan_mode", "ipvlan_isolation", "vlan_id",
    )
    index: int
    type: str | None
    up: bool | None
    link: str | None
    name: str | None
    hwaddr: str | None
    mtu: int | None
    l2proxy: bool | None
    ipv4_addresses: tuple[IPv4Address, ...]
    ipv4_gateway: str | None
    ipv6_addresses: tuple[IPAddress, ...]
    ipv6_gateway: str | None
    script_up: str | None
    script_down: str | None
    veth_mode: str | None
    veth_pair: str | None
    veth_ipv4_routes: tuple[IPAddress, ...]
    veth_ipv6_routes: tuple[IPAddress, ...]
    veth_vlan_id: int | None
    veth_vlan_tagged_ids: tuple[int, ...]
    veth_n_rxqueues: int | None
    veth_n_txqueues: int | None
    macvlan_mode: str | None
    ipvlan_mode: str | None
    ipvlan_isolation: str | None
    vlan_id: int | None

    def dump(self) -> tuple[Any, ...]:
        return tuple(tuple(a.dump() for a in getattr(self, name)) if name in _ADDRESSES
                     else getattr(self, name) for name in self.__slots__)

    @classmethod
    def load(cls, values: tuple[Any, ...]) -> NetSpec:
        spec: NetSpec = Record.load.__func__(cls, values)  # type: ignore[attr-defined]
        for name, record in _ADDRESSES.items():
            setattr(spec, name, tuple(record.load(a) for a in getattr(spec, name)))
        return spec


class NetPlan(Record):
    """What ``lxcsd.net.setup`` needs: the container's name, config file, hook version,
    networks in index order, and "lxc.net.N.SUB" → (file, line) of the line that set it."""

    __slots__ = ("name", "config_path", "hook_version", "networks", "where")
    name: str
    config_path: str
    hook_version: int
    networks: list[NetSpec]
    where: dict[str, tuple[str, int]]

    def dump(self) -> tuple[Any, ...]:
        return (self.name, self.config_path, self.hook_version,
                [n.dump() for n in self.networks], self.where)

    @classmethod
    def load(cls, values: tuple[Any, ...]) -> NetPlan:
        name, config_path, hook_version, networks, where = values
        return cls(name=name, config_path=config_path, hook_version=hook_version,
                   networks=[NetSpec.load(n) for n in networks], where=where)


def plan_of(container: Container) -> NetPlan:
    """The container's networks as plain records (compile time)."""
    networks = []
    for net in container.net:
        fields = {name: getattr(net, name) for name in NetSpec.__slots__}
        for name, record in _ADDRESSES.items():
            fields[name] = tuple(record.load(tuple(getattr(a, f) for f in record.__slots__))
                                 for a in fields[name])
        networks.append(NetSpec(**fields))
    where = {}
    for entry in container.entries:
        if entry.canonical.startswith("lxc.net.") and entry.error is None:
            where[entry.canonical] = (entry.path, entry.line)
    return NetPlan(name=container.name, config_path=container.config_path,
                   hook_version=container.hook_version or 0, networks=networks, where=where)
