"""Set up a container's networks from the host (H), before its init runs.

Namespaces at this point: H is in the host's network and mount namespaces; the container's
network namespace is that of ``init_pid`` (C2, waiting on a sync point), reachable as
``/proc/INIT/ns/net``. Steps, per ``lxc.net.N`` in index order (as liblxc):

1. record in the state file what cleanup will need (before creating anything);
2. host side: create the device (veth pair with its peer born in the container's
   namespace; macvlan/ipvlan/vlan born there too; phys moved in), host-end settings
   (bridge port, routes, proxy entries), then ``script.up`` (liblxc runs it at this point);
3. container side, through a netlink socket opened in the container's namespace: rename
   (``name``, else the kernel's ``eth%d``), ``hwaddr``, ``mtu``, addresses, ``flags = up``,
   gateways. Loopback is brought up last.

Any failure undoes everything recorded so far (:func:`lxcsd.net.teardown.cleanup_state`)
and raises a ConfigError naming ``lxc.net.N.KEY`` and its file:line when a key is at fault.
"""

from __future__ import annotations

import os

from lxcsd import linux
from lxcsd.errors import ConfigError

from . import hooks, names, state
from .teardown import cleanup_state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .spec import NetPlan, NetSpec

NETLINK_TYPES = ("veth", "macvlan", "ipvlan", "vlan", "phys")
PIN = "netns"
MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8}
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
IPVLAN_FLAGS = {"bridge": 0, "private": 1, "vepa": 2}


class Ctx:
    """What every step needs: the networks, where the namespace is, the two sockets."""

    def __init__(self, plan: NetPlan, init_pid: int, state_dir: str) -> None:
        self.plan = plan
        self.pid = init_pid
        self.state_dir = state_dir
        self.netns = f"/proc/{init_pid}/ns/net"
        self.nl: Any = None  # lxcsd.net.nl, imported only when a network needs it
        self.host: Any = None
        self.inner: Any = None
        self.hook_version = plan.hook_version


def setup_all(plan: NetPlan, init_pid: int, state_dir: str) -> list[str]:
    ctx = Ctx(plan, init_pid, state_dir)
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    if os.path.exists(state.path(state_dir)):
        # A previous start's leftovers (its cleanup never ran): undo them first, or their
        # records would be merged with this start's and the old devices forgotten.
        cleanup_state(plan.name, state_dir)
    created: list[str] = []
    try:
        _open(ctx)
        for net in plan.networks:
            name = _setup_one(ctx, net)
            if name:
                created.append(name)
        if ctx.inner is not None:
            ctx.inner.link("set", index=1, state="up")
        return created
    except BaseException:
        _close(ctx)
        cleanup_state(plan.name, state_dir)
        raise
    finally:
        _close(ctx)


def _open(ctx: Ctx) -> None:
    types = {net.type for net in ctx.plan.networks}
    if not types.intersection(NETLINK_TYPES):
        return
    if "phys" in types:
        _pin_netns(ctx)
    from . import nl

    ctx.nl = nl
    ctx.host = nl.open_host()
    ctx.inner = nl.open_in(ctx.netns)


def _close(ctx: Ctx) -> None:
    for sock in (ctx.host, ctx.inner):
        if sock is not None:
            sock.close()
    ctx.host = ctx.inner = None


def _pin_netns(ctx: Ctx) -> None:
    """Hold the container's network namespace with a bind mount, so that phys devices can
    be given back by cleanup after init died (see lxcsd.net's docstring)."""
    pin = os.path.join(ctx.state_dir, PIN)
    state.append(ctx.state_dir, pin=pin)
    os.close(os.open(pin, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    linux.mount(ctx.netns, pin, None, linux.MS_BIND)
    ctx.netns = pin


# --- errors ---------------------------------------------------------------------------------


def key_error(plan: NetPlan, net: NetSpec, sub: str, message: str,
              hint: str = "") -> ConfigError:
    """A ConfigError at the line that set ``lxc.net.N.SUB`` (else at the type's line, else at
    the config file)."""
    for canonical in (f"lxc.net.{net.index}.{sub}", f"lxc.net.{net.index}.type"):
        found = plan.where.get(canonical)
        if found is not None:
            return ConfigError(message, path=found[0], line=found[1],
                               key=f"lxc.net.{net.index}.{sub}", hint=hint)
    return ConfigError(message, path=plan.config_path, key=f"lxc.net.{net.index}.{sub}",
                       hint=hint)


def _nl_error(ctx: Ctx, net: NetSpec, sub: str, what: str, err: Exception) -> ConfigError:
    code = getattr(err, "code", 0)
    reason = os.strerror(code) if code else str(err)
    return key_error(ctx.plan, net, sub, f"{what}: {reason}")


# --- one network ----------------------------------------------------------------------------


def _setup_one(ctx: Ctx, net: NetSpec) -> str | None:
    if net.type in (None, "none", "empty"):
        if net.type != "none" and (net.script_up or net.script_down):
            state.append(ctx.state_dir, net=net.index, type="empty", down=net.script_down,
                         hookver=ctx.hook_version,
                         config=ctx.plan.config_path if net.script_down else None)
            _run_up(ctx, net, "empty", "", "")
        return None
    if net.type == "veth":
        host, inner = _create_veth(ctx, net)
        _run_up(ctx, net, "veth", net.link or "", host)
    elif net.type == "phys":
        inner = _move_phys(ctx, net)
        _run_up(ctx, net, "phys", net.link or "", "")
    else:
        inner = _create_child(ctx, net)
        _run_up(ctx, net, net.type, net.link or "", "")
    name = _configure_inside(ctx, net, inner)
    state.append(ctx.state_dir, net=net.index, inner=name)
    return name


def _run_up(ctx: Ctx, net: NetSpec, net_type: str, link: str, peer: str) -> None:
    if not net.script_up:
        return
    status = hooks.run(net.script_up, name=ctx.plan.name,
                       config_file=ctx.plan.config_path, version=ctx.hook_version,
                       hook="up", net_type=net_type, link=link, peer=peer)
    if status != 0:
        raise key_error(ctx.plan, net, "script.up", f"{net.script_up!r} exited with "
                        f"status {status}")


def _link_index(ctx: Ctx, net: NetSpec, role: str) -> int:
    if not net.link:
        raise key_error(ctx.plan, net, "link", f"a {net.type} network needs a {role}",
                        f"set lxc.net.{net.index}.link")
    index = ctx.nl.index_of(ctx.host, net.link)
    if index is None:
        hint = "start lxcsd-net.service" if net.type == "veth" else ""
        raise key_error(ctx.plan, net, "link", f"{role} {net.link!r} does not exist", hint)
    return int(index)


# --- veth -----------------------------------------------------------------------------------


def _create_veth(ctx: Ctx, net: NetSpec) -> tuple[str, str]:
    """The pair, its host end configured; returns (host end, container end's current name)."""
    router = net.veth_mode == "router"
    bridge = _link_index(ctx, net, "bridge") if net.link and not router else None
    host = net.veth_pair or names.random_ifname("veth")
    inner = names.random_ifname("veth")
    mtu = net.mtu or (ctx.nl.link_attr(ctx.host, bridge, "mtu") if bridge else None)
    state.append(ctx.state_dir, net=net.index, type="veth", host=host, link=net.link,
                 down=net.script_down, hookver=ctx.hook_version,
                 config=ctx.plan.config_path if net.script_down else None)
    peer: dict[str, Any] = {"ifname": inner, "net_ns_pid": ctx.pid}
    if mtu:
        peer["mtu"] = mtu
    if net.veth_n_rxqueues:
        peer["num_rx_queues"] = net.veth_n_rxqueues
    if net.veth_n_txqueues:
        peer["num_tx_queues"] = net.veth_n_txqueues
    try:
        ctx.host.link("add", ifname=host, kind="veth", peer=peer, **({"mtu": mtu} if mtu else {}))
    except ctx.nl.NetlinkError as err:
        sub = "veth.pair" if net.veth_pair else "type"
        raise _nl_error(ctx, net, sub, f"cannot create veth pair {host!r}", err) from err
    index = ctx.nl.index_of(ctx.host, host)
    state.append(ctx.state_dir, net=net.index, hostindex=index)
    mac = ctx.nl.link_attr(ctx.host, index, "address")
    settings: dict[str, Any] = {"address": names.host_hwaddr(mac)} if mac else {}
    if bridge is not None:
        _sysctl(f"/proc/sys/net/ipv6/conf/{host}/disable_ipv6", "1")
        settings["master"] = bridge
    try:
        ctx.host.link("set", index=index, state="up", **settings)
    except ctx.nl.NetlinkError as err:
        raise _nl_error(ctx, net, "link", f"cannot attach {host!r} to {net.link!r}",
                        err) from err
    if bridge is not None:
        _bridge_vlans(ctx, net, index)
    _host_routes(ctx, net, index, router)
    return host, inner


def _bridge_vlans(ctx: Ctx, net: NetSpec, port: int) -> None:
    """veth.vlan.id / veth.vlan.tagged.id on the bridge port, as liblxc: the bridge must
    filter VLANs; the default PVID is replaced by the untagged VLAN (none: no untagged
    VLAN), tagged VLANs are added."""
    if net.veth_vlan_id is None and not net.veth_vlan_tagged_ids:
        return
    sub = "veth.vlan.id" if net.veth_vlan_id is not None else "veth.vlan.tagged.id"
    sysfs = f"/sys/class/net/{net.link}/bridge"
    if _read(f"{sysfs}/vlan_filtering") != "1":
        raise key_error(ctx.plan, net, sub, f"VLAN filtering is off on {net.link!r}",
                        f"ip link set {net.link} type bridge vlan_filtering 1")
    nl = ctx.nl
    try:
        if net.veth_vlan_id is not None:
            default = int(_read(f"{sysfs}/default_pvid") or 0)
            if default and default != net.veth_vlan_id:
                ctx.host.bridge_vlan("del", index=port, vid=default)
            if net.veth_vlan_id > 0:
                ctx.host.bridge_vlan("add", index=port, vid=net.veth_vlan_id,
                                     flags=nl.BRIDGE_VLAN_INFO_PVID
                                     | nl.BRIDGE_VLAN_INFO_UNTAGGED)
        for vid in net.veth_vlan_tagged_ids:
            sub = "veth.vlan.tagged.id"
            ctx.host.bridge_vlan("add", index=port, vid=vid)
    except nl.NetlinkError as err:
        raise _nl_error(ctx, net, sub, "cannot set the bridge port's VLANs", err) from err


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return ""


def _host_routes(ctx: Ctx, net: NetSpec, index: int, router: bool) -> None:
    """veth.ipv4/ipv6.route; in router mode also routes to the container's addresses and
    proxy entries for its gateways (liblxc's router mode)."""
    routes = [(r.address, r.prefix, "veth.ipv4.route") for r in net.veth_ipv4_routes]
    routes += [(r.address, r.prefix, "veth.ipv6.route") for r in net.veth_ipv6_routes]
    if router:
        routes += [(a.address, 32, "ipv4.address") for a in net.ipv4_addresses]
        routes += [(a.address, 128, "ipv6.address") for a in net.ipv6_addresses]
    for address, prefix, sub in routes:
        try:
            ctx.host.route("add", dst=f"{address}/{prefix}", oif=index, scope=253)
        except ctx.nl.NetlinkError as err:
            raise _nl_error(ctx, net, sub, f"cannot route {address}/{prefix}", err) from err
    if not router:
        return
    host = ctx.nl.link_attr(ctx.host, index, "ifname")
    for gateway, family, six in ((net.ipv4_gateway, ctx.nl.AF_INET, ""),
                                 (net.ipv6_gateway, ctx.nl.AF_INET6, "6")):
        if gateway and gateway not in ("auto", "dev"):
            _sysctl(f"/proc/sys/net/ipv{six or 4}/conf/{host}/forwarding", "1")
            if six:
                _sysctl(f"/proc/sys/net/ipv6/conf/{host}/proxy_ndp", "1")
            _proxy(ctx, net, index, gateway, family, f"ipv{six or 4}.gateway")


def _proxy(ctx: Ctx, net: NetSpec, index: int, address: str, family: int, sub: str) -> None:
    try:
        ctx.host.neigh("add", dst=address, ifindex=index, family=family,
                       flags=ctx.nl.NTF_PROXY)
    except ctx.nl.NetlinkError as err:
        if getattr(err, "code", 0) != 17:  # EEXIST: already proxied
            raise _nl_error(ctx, net, sub, f"cannot add proxy entry {address}", err) from err


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except FileNotFoundError:
        pass  # no IPv6 in this kernel


# --- macvlan, ipvlan, vlan: born in the container's namespace -------------------------------


def _create_child(ctx: Ctx, net: NetSpec) -> str:
    parent = _link_index(ctx, net, "parent interface")
    inner = names.random_ifname(str(net.type)[:4])
    state.append(ctx.state_dir, net=net.index, type=net.type, link=net.link,
                 down=net.script_down, hookver=ctx.hook_version,
                 config=ctx.plan.config_path if net.script_down else None)
    spec: dict[str, Any] = {"ifname": inner, "kind": net.type, "link": parent,
                            "net_ns_pid": ctx.pid}
    sub = "type"
    if net.type == "macvlan":
        spec["macvlan_mode"] = MACVLAN_MODES[net.macvlan_mode or "private"]
        sub = "macvlan.mode"
    elif net.type == "ipvlan":
        spec["ipvlan_mode"] = IPVLAN_MODES[net.ipvlan_mode or "l3"]
        if (net.ipvlan_isolation or "bridge") != "bridge":
            raise key_error(ctx.plan, net, "ipvlan.isolation", "only bridge isolation "
                            "is implemented", "remove the key")
        sub = "ipvlan.mode"
    elif net.type == "vlan":
        if net.vlan_id is None:
            raise key_error(ctx.plan, net, "vlan.id", "a vlan network needs a VLAN id",
                            f"set lxc.net.{net.index}.vlan.id")
        spec["vlan_id"] = net.vlan_id
        sub = "vlan.id"
    if net.mtu:
        spec["mtu"] = net.mtu
    try:
        ctx.host.link("add", **spec)
    except ctx.nl.NetlinkError as err:
        raise _nl_error(ctx, net, sub, f"cannot create {net.type} on {net.link!r}",
                        err) from err
    return inner


# --- phys -----------------------------------------------------------------------------------


def _move_phys(ctx: Ctx, net: NetSpec) -> str:
    index = _link_index(ctx, net, "device")
    mtu = ctx.nl.link_attr(ctx.host, index, "mtu")
    state.append(ctx.state_dir, net=net.index, type="phys", orig=net.link, ifindex=index,
                 mtu=mtu, link=net.link, down=net.script_down, hookver=ctx.hook_version,
                 config=ctx.plan.config_path if net.script_down else None)
    try:
        ctx.host.link("set", index=index, state="down")
        ctx.host.link("set", index=index, net_ns_pid=ctx.pid)
    except ctx.nl.NetlinkError as err:
        raise _nl_error(ctx, net, "link", f"cannot move {net.link!r} into the container",
                        err) from err
    return str(net.link)


# --- inside the container's namespace -------------------------------------------------------


def _configure_inside(ctx: Ctx, net: NetSpec, current: str) -> str:
    inner = ctx.inner
    index = ctx.nl.index_of(inner, current)
    if index is None:
        raise key_error(ctx.plan, net, "type", f"{current!r} did not arrive in the "
                        "container's network namespace")
    settings: dict[str, Any] = {"ifname": net.name or "eth%d"}
    if net.hwaddr:
        settings["address"] = names.fill_hwaddr(net.hwaddr, ctx.plan.name, net.index)
    if net.mtu:
        settings["mtu"] = net.mtu
    for key, value in settings.items():
        sub = {"ifname": "name", "address": "hwaddr"}.get(key, key)
        try:
            inner.link("set", index=index, **{key: value})
        except ctx.nl.NetlinkError as err:
            raise _nl_error(ctx, net, sub, f"cannot set {sub} {value}", err) from err
    name = str(ctx.nl.link_attr(inner, index, "ifname"))
    _addresses(ctx, net, index)
    if net.up:
        inner.link("set", index=index, state="up")
    _gateway(ctx, net, index, 4, net.ipv4_gateway, [a.address for a in net.ipv4_addresses],
             [a.prefix for a in net.ipv4_addresses])
    _gateway(ctx, net, index, 6, net.ipv6_gateway, [a.address for a in net.ipv6_addresses],
             [a.prefix for a in net.ipv6_addresses])
    if net.l2proxy:
        _l2proxy(ctx, net)
    return name


def _addresses(ctx: Ctx, net: NetSpec, index: int) -> None:
    for a in net.ipv4_addresses:
        try:
            ctx.inner.addr("add", index=index, address=a.address, prefixlen=a.prefix,
                           broadcast=a.broadcast)
        except ctx.nl.NetlinkError as err:
            raise _nl_error(ctx, net, "ipv4.address", f"cannot add {a.address}/{a.prefix}",
                            err) from err
    for b in net.ipv6_addresses:
        try:
            ctx.inner.addr("add", index=index, address=b.address, prefixlen=b.prefix,
                           family=ctx.nl.AF_INET6)
        except ctx.nl.NetlinkError as err:
            raise _nl_error(ctx, net, "ipv6.address", f"cannot add {b.address}/{b.prefix}",
                            err) from err


def _gateway(ctx: Ctx, net: NetSpec, index: int, version: int, gateway: str | None,
             addresses: list[str], prefixes: list[int]) -> None:
    if not gateway:
        return
    sub = f"ipv{version}.gateway"
    if not net.up:
        raise key_error(ctx.plan, net, sub, "a gateway needs the interface up",
                        f"set lxc.net.{net.index}.flags = up")
    family = ctx.nl.AF_INET if version == 4 else ctx.nl.AF_INET6
    default = "0.0.0.0/0" if version == 4 else "::/0"
    if gateway == "auto":
        gateway = _auto_gateway(ctx, net, family, sub)
    try:
        if gateway == "dev":
            ctx.inner.route("add", dst=default, oif=index, scope=253, family=family)
            return
        if not _on_link(gateway, addresses, prefixes, version):
            # liblxc adds a device route to a gateway outside the container's subnets.
            ctx.inner.route("add", dst=f"{gateway}/{32 if version == 4 else 128}", oif=index,
                            scope=253, family=family)
        ctx.inner.route("add", dst=default, gateway=gateway, oif=index, family=family)
    except ctx.nl.NetlinkError as err:
        raise _nl_error(ctx, net, sub, f"cannot add default route via {gateway}", err) from err


def _auto_gateway(ctx: Ctx, net: NetSpec, family: int, sub: str) -> str:
    """``gateway = auto``: the first address of the link (the bridge) on the host."""
    if not net.link or net.veth_mode == "router":
        raise key_error(ctx.plan, net, sub, "auto needs a bridge in lxc.net.N.link")
    link = _link_index(ctx, net, "bridge")
    address = ctx.nl.first_address(ctx.host, link, family)
    if address is None:
        raise key_error(ctx.plan, net, sub, f"auto: {net.link!r} has no address of "
                        "that family")
    return str(address)


def _on_link(gateway: str, addresses: list[str], prefixes: list[int], version: int) -> bool:
    target = _to_int(gateway, version)
    bits = 32 if version == 4 else 128
    for address, prefix in zip(addresses, prefixes, strict=False):
        shift = bits - prefix
        if _to_int(address, version) >> shift == target >> shift:
            return True
    return False


def _to_int(address: str, version: int) -> int:
    import socket

    family = socket.AF_INET if version == 4 else socket.AF_INET6
    return int.from_bytes(socket.inet_pton(family, address), "big")


def _l2proxy(ctx: Ctx, net: NetSpec) -> None:
    """``l2proxy = 1``: the link answers neighbour requests for the container's addresses."""
    link = _link_index(ctx, net, "link")
    link_name = str(net.link)
    if net.ipv4_addresses:
        _sysctl(f"/proc/sys/net/ipv4/conf/{link_name}/proxy_arp", "1")
    if net.ipv6_addresses:
        _sysctl(f"/proc/sys/net/ipv6/conf/{link_name}/proxy_ndp", "1")
    for a in net.ipv4_addresses:
        state.append(ctx.state_dir, net=net.index, **{f"proxy4_{a.address}": link_name})
        _proxy(ctx, net, link, a.address, ctx.nl.AF_INET, "l2proxy")
    for b in net.ipv6_addresses:
        state.append(ctx.state_dir, net=net.index, **{f"proxy6_{b.address}": link_name})
        _proxy(ctx, net, link, b.address, ctx.nl.AF_INET6, "l2proxy")

