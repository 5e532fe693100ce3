"""The one table of LXC config keys: parsing, validation, ``lxcsd check`` and docs use it.

Each :class:`Key` has a name (exact, like ``lxc.uts.name``; a prefix, like ``lxc.cgroup2``
for ``lxc.cgroup2.*``; or a network subkey, like ``type`` for ``lxc.net.N.type``), a
parser (:mod:`.parsers`: how its lines fold into a value), the model attribute it fills
(``dest``: ``"uts_name"``, or ``"console.path"`` for a section attribute), legacy (pre-2.1)
aliases, an ``implemented`` flag, a one-line doc and LXC's default. ``Key.apply`` folds one
pre-parsed line into the builder's state (:mod:`.build`); network keys fold as liblxc does
(see :class:`NetKey`).

``implemented`` is False for keys the runtime does not honour yet; ``lxcsd check`` warns
about them. Regenerate docs/config-keys.md after changing the table:
``python -m lxcsd.config.docs``.

Lookup: :func:`lookup` maps a key as written to ``(Key, canonical name, sub, index)``.
"""

from __future__ import annotations

from lxcsd.errors import ConfigError

from . import values as v
from .globalconf import GLOBAL_KEYS
from .parsers import (
    RESET,
    AutoMounts,
    Bare,
    Caps,
    CgroupMulti,
    Extend,
    Hooks,
    Hwaddr,
    Keyed,
    ListOf,
    NamespaceList,
    Noted,
    Parser,
    ProcList,
    Required,
    check_namespace,
    check_sysctl,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .model import Entry

    Conv = Callable[[str], Any]


# --- the table --------------------------------------------------------------------------------


class Key:
    """One row of the table. ``kind``: "exact", "prefix" (``NAME.*`` and bare ``NAME``) or
    "net" (``lxc.net.N.NAME``). ``section``/``field``: where the value goes in the model."""

    __slots__ = (
        "name", "kind", "parser", "section", "field", "legacy", "implemented", "doc",
        "default", "pattern", "group",
    )

    def __init__(
        self,
        name: str,
        parser: Parser,
        dest: str,
        doc: str,
        *,
        kind: str = "exact",
        legacy: tuple[str, ...] = (),
        default: str = "",
        implemented: bool = False,
        pattern: str = "",
        group: str = "",
    ) -> None:
        section, _, field = dest.rpartition(".")
        self.name = name
        self.kind = kind
        self.parser = parser
        self.section = section or None
        self.field = field
        self.legacy = legacy
        self.implemented = implemented
        self.doc = doc
        self.default = default
        self.pattern = pattern or name
        self.group = group

    @property
    def is_list(self) -> bool:
        return self.parser.is_list

    def apply(self, state: dict[str, Any], entry: Entry) -> None:
        """Fold a pre-parsed entry into the builder's state (see :mod:`lxcsd.config.build`)."""
        section = self.section
        target = state if section is None else state.get(section) or state.setdefault(section, {})
        field = self.field
        target[field] = self.parser.merge(target.get(field), entry, target)

    def __repr__(self) -> str:
        return f"Key({self.pattern})"


class NetKey(Key):
    """``lxc.net.N.SUB``: ``requires`` is the network type this subkey is only valid for.

    Networks fold as liblxc applies them: ``lxc.net.N.type`` resets the network's other keys
    (so it comes first), a type-specific key needs the matching type, and legacy
    ``lxc.network.*`` lines (index < -1, see :data:`LEGACY_NET_NEW`) number their networks
    from 0 as lxc-update-config does. State: ``state["net"][index][field]``; the legacy
    numbering's own keys start with ``_`` (the builder drops them), and ``_resolved`` maps
    a legacy entry to the key it stands for (``lxc.net.0.link``).
    """

    __slots__ = ("requires",)

    def __init__(self, sub: str, parser: Parser, doc: str, *, requires: str = "",
                 legacy: tuple[str, ...] = (), default: str = "",
                 implemented: bool = False) -> None:
        field = _NET_FIELDS.get(sub, sub.replace(".", "_"))
        super().__init__(sub, parser, field, doc, kind="net", legacy=legacy, default=default,
                         pattern=f"lxc.net.[i].{sub}", group="Network",
                         implemented=implemented)
        self.requires = requires

    def apply(self, state: dict[str, Any], entry: Entry) -> None:
        index = _net_index(state, entry)
        nets = state.setdefault("net", {})
        if self.name == "type":
            _set_type(state, entry, nets, index)
            return
        net = nets.get(index)
        if net is None:
            if entry.item is RESET:
                return
            net = nets[index] = {}
        requires = self.requires
        if requires and entry.item is not RESET and net.get("type") != requires:
            raise v.bad(f"lxc.net.{index}.{self.name} needs lxc.net.{index}.type = {requires}",
                        f"set lxc.net.{index}.type = {requires} before this line")
        net[self.field] = self.parser.merge(net.get(self.field), entry, net)


def _net_index(state: dict[str, Any], entry: Entry) -> int:
    """The network index of an entry, numbering legacy unindexed lxc.network.* networks."""
    legacy = entry.index < -1
    style = state.setdefault("_net_style", legacy)
    if style != legacy:
        raise v.bad("legacy lxc.network.* keys mixed with lxc.net.N.* keys",
                    "convert the file with lxc-update-config")
    if not legacy:
        return entry.index
    if entry.index == LEGACY_NET_NEW:
        state["_legacy_net"] = index = state.get("_legacy_next", 0)
        state["_legacy_next"] = index + 1
    elif (index := state.get("_legacy_net", -1)) < 0:
        raise v.bad(f"{entry.key} comes before any lxc.network.type",
                    "a legacy network starts with its lxc.network.type line")
    state.setdefault("_resolved", {})[id(entry)] = f"lxc.net.{index}.{entry.sub}"
    return int(index)


def _set_type(state: dict[str, Any], entry: Entry, nets: dict[int, dict[str, Any]],
              index: int) -> None:
    old = nets.get(index)
    if old and set(old) - {"type"} and entry.item is not RESET:
        warning = config_error(v.bad(
            f"keys of lxc.net.{index} set before its type are discarded",
            f"move lxc.net.{index}.type above the network's other keys: liblxc resets them"),
            entry)
        state.setdefault("_warnings", []).append(warning)
    nets[index] = {} if entry.item is RESET else {"type": entry.item}


class IncludeKey(Key):
    """``lxc.include``: the reader expands it in place; nothing to fold."""

    __slots__ = ()

    def apply(self, state: dict[str, Any], entry: Entry) -> None:
        pass


class NetResetKey(Key):
    """``lxc.net =`` (every network) and ``lxc.net.N =`` (network N)."""

    __slots__ = ()

    def apply(self, state: dict[str, Any], entry: Entry) -> None:
        nets = state.setdefault("net", {})
        if entry.index == -1:
            nets.clear()
            state.pop("_legacy_net", None)
        else:
            nets.pop(entry.index, None)


# lxc.net.N.* subkeys lxcsd.net implements (the rest warn as not implemented yet).
_NET_IMPLEMENTED = frozenset((
    "type", "flags", "link", "l2proxy", "mtu", "name", "hwaddr", "ipv4.address",
    "ipv4.gateway", "ipv6.address", "ipv6.gateway", "script.up", "script.down", "veth.mode",
    "veth.pair", "veth.ipv4.route", "veth.ipv6.route", "veth.n_rxqueues", "veth.n_txqueues",
    "veth.vlan.id", "veth.vlan.tagged.id",
    "macvlan.mode", "ipvlan.mode", "vlan.id",
))

# Network model attributes whose names differ from the subkey (lists are plural).
_NET_FIELDS = {
    "flags": "up", "ipv4.address": "ipv4_addresses", "ipv6.address": "ipv6_addresses",
    "veth.ipv4.route": "veth_ipv4_routes", "veth.ipv6.route": "veth_ipv6_routes",
    "veth.vlan.tagged.id": "veth_vlan_tagged_ids",
}


def _scalar(conv: Conv, type_doc: str, empty: Any = None) -> Parser:
    return Parser(conv, type_doc, empty)


def _signal_or_default(value: str) -> int | None:
    return v.parse_signal(value) or None  # liblxc: 0 means "use the default"


def _rootfs_options(value: str) -> tuple[str, Any]:
    return (value, v.parse_rootfs_options(value))


_BOOL = "0|1"
_HOOK_TYPES = ("pre-start", "pre-mount", "mount", "autodev", "start-host", "start", "stop",
               "post-stop", "clone", "destroy")
# Hooks the helper runs today (clone and destroy belong to commands lxcsd lacks yet).
_HOOKS_RUN = frozenset(("pre-start", "pre-mount", "mount", "autodev", "start-host", "start",
                        "stop", "post-stop"))
_HOOK_DOCS = {
    "pre-start": "in the host's namespaces before ttys, consoles or mounts are set up",
    "pre-mount": "in the container's mount namespace before the rootfs is set up",
    "mount": "in the container's namespaces after mounting, before pivot_root",
    "autodev": "after the mount hooks, before pivot_root, when lxc.autodev = 1",
    "start-host": "in the host's namespaces after setup, right before init starts",
    "start": "in the container right before init is executed",
    "stop": "in the host's namespaces with references to the container's namespaces after it stops",
    "post-stop": "in the host's namespaces after the container has stopped",
    "clone": "when the container is cloned",
    "destroy": "when the container is destroyed",
}


def _general() -> list[Key]:
    g = "General"
    return [
        IncludeKey("lxc.include", Parser(v.parse_string, "file or directory"), "include",
                   "Read a config file here; for a directory (or a path ending in '/') read "
                   "its *.conf files in sorted order; a missing directory is skipped.",
                   implemented=True, group=g),
        Key("lxc.arch", _scalar(v.parse_arch, "architecture"), "arch", "Architecture the "
            "container sees: 32-bit names (i686, x86, armhf, ...) select the linux32 "
            "personality.", default="the host's", implemented=True, group=g),
        Key("lxc.uts.name", _scalar(v.parse_hostname, "hostname"), "uts_name", "Hostname inside "
            "the container's UTS namespace (at most 64 bytes).", legacy=("lxc.utsname",),
            default="unchanged (the host's)", implemented=True, group=g),
        Key("lxc.ephemeral", _scalar(v.parse_bool, _BOOL), "ephemeral", "1: destroy the container "
            "when it shuts down.", default="0", group=g),
        Key("lxc.sched.core", _scalar(v.parse_bool, _BOOL), "sched_core", "1: put the container "
            "in its own core-scheduling domain.", default="0", group=g),
        Key("lxc.proc", ProcList(), "proc", "Write VALUE to /proc/PID/FILE of the container's "
            "init.", kind="prefix", pattern="lxc.proc.[file]", implemented=True, group=g),
    ]


def _init_keys() -> list[Key]:
    g = "Init"
    cmd = "command (argv, quotes group words)"
    return [
        Key("lxc.init.cmd", _scalar(v.parse_command, cmd), "init.cmd", "Program to run as init, "
            "a path inside the container and arguments.", legacy=("lxc.init_cmd",),
            default="/sbin/init", implemented=True, group=g),
        Key("lxc.execute.cmd", _scalar(v.parse_command, cmd), "execute_cmd", "Command that "
            "lxc-execute runs when none is given.", implemented=True, group=g),
        Key("lxc.init.cwd", _scalar(v.parse_path, "path"), "init.cwd", "Working directory of "
            "init, inside the container.", default="/", implemented=True, group=g),
        Key("lxc.init.uid", _scalar(v.parse_uint, "uid"), "init.uid", "User id init runs as.",
            legacy=("lxc.init_uid",), default="0", implemented=True, group=g),
        Key("lxc.init.gid", _scalar(v.parse_uint, "gid"), "init.gid", "Group id init runs as.",
            legacy=("lxc.init_gid",), default="0", implemented=True, group=g),
        Key("lxc.init.groups", Extend(v.parse_gid_list, "comma-separated gids"), "init.groups",
            "Supplementary group ids of init.", default="none", implemented=True, group=g),
        Key("lxc.signal.halt", _scalar(_signal_or_default, "signal"), "signals.halt", "Signal "
            "sent to init to shut the container down cleanly.", legacy=("lxc.haltsignal",),
            default="SIGPWR (SIGRTMIN+3 when init blocks SIGPWR, e.g. systemd)",
            implemented=True, group=g),
        Key("lxc.signal.reboot", _scalar(_signal_or_default, "signal"), "signals.reboot",
            "Signal sent to init to reboot the container.", legacy=("lxc.rebootsignal",),
            default="SIGINT", group=g),
        Key("lxc.signal.stop", _scalar(_signal_or_default, "signal"), "signals.stop", "Signal "
            "sent to init to kill the container when a clean shutdown times out.",
            legacy=("lxc.stopsignal",), default="SIGKILL", implemented=True, group=g),
        Key("lxcsd.init.notify", _scalar(v.parse_auto_bool, "auto|0|1"), "init.notify",
            "lxcsd's own key (liblxc ignores lines not starting with lxc.): 1 gives init a "
            "notify socket (/run/host/notify, $NOTIFY_SOCKET) and the unit becomes active "
            "when init sends READY=1, as systemd-nspawn --notify-ready=yes; 0: active once "
            "init has been executed; auto: 1 when init is systemd.",
            default="auto", implemented=True, group=g),
    ]


def _net(sub: str, parser: Parser, doc: str, requires: str = "", default: str = "",
        legacy: tuple[str, ...] = ()) -> NetKey:
    """A network subkey; its legacy lxc.network.SUB alias unless LXC 2.1 added it."""
    old = legacy or ((f"lxc.network.{sub}",) if not sub.startswith(("veth.ipv", "veth.n",
                      "veth.mode", "veth.vlan", "ipvlan", "l2proxy")) else ())
    return NetKey(sub, parser, doc, requires=requires, default=default, legacy=old,
                  implemented=sub in _NET_IMPLEMENTED)


def _network_keys() -> list[Key]:
    g = "Network"
    addr = "address"
    return [
        NetResetKey("lxc.net", Bare(v.parse_string, "empty"), "net", "An empty value removes "
                    "every network so far; lxc.net.N = (empty) removes network N.",
                    legacy=("lxc.network",), implemented=True, group=g),
        _net("type", _scalar(v.choice("veth", "macvlan", "ipvlan", "vlan", "phys", "empty",
                                     "none"), "veth|macvlan|ipvlan|vlan|phys|empty|none"),
            "Network type; set it first: setting it resets the network's other keys.",
            default="empty (loopback only)"),
        _net("flags", _scalar(v.parse_net_flags, "up"), "'up' brings the interface up.",
            default="down"),
        _net("link", _scalar(v.parse_ifname, "interface"), "Host interface: the bridge (veth), "
            "the parent (macvlan, ipvlan, vlan) or the device to move in (phys; NAME+ matches "
            "a prefix)."),
        _net("l2proxy", _scalar(v.parse_bool, _BOOL), "1: add neighbour proxy entries on the "
            "link for the container's addresses.", default="0"),
        _net("mtu", _scalar(v.parse_mtu, "bytes"), "MTU of the interface.", default="the kernel's"),
        _net("name", _scalar(v.parse_ifname, "interface"), "Interface name inside the container.",
            default="assigned by the kernel (eth0, ...)"),
        _net("hwaddr", Hwaddr(v.parse_hwaddr, "MAC (x = random digit)"), "MAC address; each "
            "'x' is replaced by a random hex digit; text after the six octets is ignored with "
            "a warning, as liblxc reads only them.", default="random"),
        _net("ipv4.address", ListOf(v.parse_ipv4_address, "ADDR[/PREFIX] [BROADCAST]"),
            "IPv4 address; repeat for several.", default="none (classful prefix and computed "
            "broadcast when omitted)", legacy=("lxc.network.ipv4",)),
        _net("ipv4.gateway", _scalar(v.parse_ipv4_gateway, f"{addr}|auto|dev"), "IPv4 default "
            "gateway: an address, auto (the link's address) or dev (a device route)."),
        _net("ipv6.address", ListOf(v.parse_ipv6_address, "ADDR[/PREFIX]"), "IPv6 address; "
            "repeat for several.", default="none (prefix 64 when omitted)",
            legacy=("lxc.network.ipv6",)),
        _net("ipv6.gateway", _scalar(v.parse_ipv6_gateway, f"{addr}|auto|dev"), "IPv6 default "
            "gateway: an address, auto or dev."),
        _net("script.up", _scalar(v.parse_string, "command"), "Host command run after the "
            "network is created and configured."),
        _net("script.down", _scalar(v.parse_string, "command"), "Host command run before the "
            "network is destroyed."),
    ]


def _network_type_keys() -> list[Key]:
    """The subkeys of one network type (``requires``)."""
    return [
        _net("veth.mode", _scalar(v.choice("bridge", "router"), "bridge|router"), "veth only: "
            "attach the host end to lxc.net.N.link (bridge), or route to it (router).",
            requires="veth", default="bridge"),
        _net("veth.pair", _scalar(v.parse_ifname, "interface"), "veth only: name of the host "
            "end.", requires="veth", default="vethXXXXXX"),
        _net("veth.ipv4.route", ListOf(v.parse_ipv4_route, "NET/PREFIX"), "veth only: host route "
            "to the container; repeat for several.", requires="veth"),
        _net("veth.ipv6.route", ListOf(v.parse_ipv6_route, "NET/PREFIX"), "veth only: IPv6 host "
            "route to the container.", requires="veth"),
        _net("veth.vlan.id", _scalar(v.parse_bridge_vlan_id, "1-4094|none"), "veth only: "
            "untagged VLAN of the bridge port; none leaves the default VLAN.", requires="veth"),
        _net("veth.vlan.tagged.id", ListOf(v.parse_tagged_vlan_id, "1-4094"), "veth only: tagged "
            "VLAN of the bridge port; repeat for several.", requires="veth"),
        _net("veth.n_rxqueues", _scalar(v.parse_positive_int, "count"), "veth only: receive "
            "queues of the container end.", requires="veth"),
        _net("veth.n_txqueues", _scalar(v.parse_positive_int, "count"), "veth only: transmit "
            "queues of the container end.", requires="veth"),
        _net("macvlan.mode", _scalar(v.choice("private", "vepa", "bridge", "passthru"),
                                    "private|vepa|bridge|passthru"), "macvlan only: mode.",
            requires="macvlan", default="private"),
        _net("ipvlan.mode", _scalar(v.choice("l3", "l3s", "l2"), "l3|l3s|l2"), "ipvlan only: "
            "mode.", requires="ipvlan", default="l3"),
        _net("ipvlan.isolation", _scalar(v.choice("bridge", "private", "vepa"),
                                        "bridge|private|vepa"), "ipvlan only: isolation.",
            requires="ipvlan", default="bridge"),
        _net("vlan.id", _scalar(v.parse_vlan_id, "0-65535"), "vlan only: VLAN id on the link.",
            requires="vlan"),
    ]


def _terminal_keys() -> list[Key]:
    g = "Terminals"
    size = "bytes, KB/MB/GB, or auto"
    return [
        Key("lxc.pty.max", _scalar(v.parse_uint, "count"), "pty_max", "Mount a private devpts "
            "instance allowing this many ptys.", legacy=("lxc.pts",),
            default="0: no private devpts instance", implemented=True, group=g),
        Key("lxc.tty.max", _scalar(v.parse_uint, "count"), "tty_max", "Number of ttys "
            "(/dev/ttyN) for gettys.", legacy=("lxc.tty",), default="0", implemented=True, group=g),
        Key("lxc.tty.dir", _scalar(v.parse_name_max, "name"), "tty_dir", "Directory under /dev "
            "for the console and tty devices (symlinked from /dev).",
            legacy=("lxc.devttydir",), default="none: devices directly in /dev",
            implemented=True, group=g),
        Key("lxc.console.path", _scalar(v.parse_path, "path|none"), "console.path", "Host "
            "device for the console; none disables it.", legacy=("lxc.console",),
            default="a new pty", implemented=True, group=g),
        Key("lxc.console.logfile", _scalar(v.parse_path, "path"), "console.logfile", "File the "
            "console output is written to.", default="none", implemented=True, group=g),
        Key("lxc.console.size", _scalar(v.parse_console_size, size), "console.size", "Limit of "
            "the console log file (at least a page, rounded up to a power of 2).",
            default="0: unlimited", implemented=True, group=g),
        Key("lxc.console.buffer.size", _scalar(v.parse_console_size, size),
            "console.buffer_size", "Size of the in-memory console ring buffer (auto: 128 KiB).",
            default="0: no ring buffer", implemented=True, group=g),
        Key("lxc.console.rotate", _scalar(v.parse_bool, _BOOL), "console.rotate", "1: rotate "
            "the console log file.", default="0", implemented=True, group=g),
    ]


def _mount_keys() -> list[Key]:
    g = "Mounts"
    return [
        Key("lxc.autodev", _scalar(v.parse_bool, _BOOL, empty=False), "autodev", "1: mount a "
            "tmpfs on /dev and create a minimal set of devices. An empty value means 0 "
            "(liblxc).", default="1", implemented=True, group=g),
        Key("lxc.autodev.tmpfs.size", _scalar(v.parse_tmpfs_size, "bytes"),
            "autodev_tmpfs_size", "Size of the /dev tmpfs.", default="500000",
            implemented=True, group=g),
        Key("lxc.mount.auto", AutoMounts(), "mounts.auto", "Kernel filesystems mounted "
            "automatically: proc, sys, cgroup, cgroup-full, cgroup2 with :mixed/:ro/:rw/:force, "
            "shmounts:HOST[:CONTAINER].", default="none", implemented=True, group=g),
        Key("lxc.mount.entry", ListOf(v.parse_mount_entry, "fstab line"), "mounts.entries",
            "A mount, as an fstab line; relative targets are under the rootfs. LXC options: "
            "create=dir|file, optional, relative, idmap=.", implemented=True, group=g),
        Key("lxc.mount.fstab", Required(v.parse_path, "path"), "mounts.fstab", "A file of "
            "fstab lines, read like lxc.mount.entry.", legacy=("lxc.mount",),
            implemented=True, group=g),
        Key("lxc.rootfs.path", _scalar(v.parse_rootfs_path, "[TYPE:]PATH"), "rootfs.path",
            "Root filesystem: a directory, TYPE:PATH (dir, btrfs, zfs, lvm, loop, nbd, rbd), or "
            "overlay:LOWER[:LOWER...]:UPPER.", legacy=("lxc.rootfs",),
            default="none: the host's root", implemented=True, group=g),
        Key("lxc.rootfs.mount", _scalar(v.parse_path, "path"), "rootfs.mount", "Where the "
            "rootfs is mounted on the host before pivot_root.", default="LXC's rootfs mount "
            "directory", implemented=True, group=g),
        Key("lxc.rootfs.options", _scalar(_rootfs_options, "mount options"), "rootfs.options",
            "Extra mount options for the rootfs, idmap=container|PATH included.",
            implemented=True, group=g),
        Key("lxc.rootfs.managed", _scalar(v.parse_bool, _BOOL), "rootfs.managed", "0: storage "
            "is not managed by LXC (never deleted or changed).", default="1", group=g),
    ]


_RELATIVE_0 = ("lxc.cgroup.relative = 0 has no effect: lxcsd always puts the container's "
               "cgroups inside its unit's delegated cgroup, as = 1 does")


def _cgroup_keys() -> list[Key]:
    g = "Control groups"
    rel = "relative path"
    return [
        Key("lxc.cgroup2", CgroupMulti(v2=True), "cgroup2", "Write VALUE to CONTROLLER.FILE in "
            "the container's cgroup (unified hierarchy); devices.allow/deny set device access; "
            "the values of common limits (memory.max, pids.max, cpu.max, ...) are checked.",
            kind="prefix", pattern="lxc.cgroup2.[controller].[file]", implemented=True, group=g),
        Key("lxc.cgroup", CgroupMulti(), "cgroup_v1", "cgroup v1 setting: translated to its "
            "cgroup2 equivalent with a warning (memory.limit_in_bytes → memory.max, "
            "cpu.shares → cpu.weight, ...; devices.* → the unit's DeviceAllow=), refused when "
            "there is none.", kind="prefix", pattern="lxc.cgroup.[controller].[file]",
            implemented=True, group=g),
        Key("lxc.cgroup.dir", _scalar(v.parse_cgroup_dir, rel), "cgroup_dir.path", "Cgroup "
            "path for the container, relative to the starting cgroup.", implemented=True, group=g),
        Key("lxc.cgroup.dir.container", _scalar(v.parse_cgroup_dir, rel), "cgroup_dir.container",
            "Like lxc.cgroup.dir for the container only (with lxc.cgroup.dir.monitor).",
            implemented=True, group=g),
        Key("lxc.cgroup.dir.container.inner", _scalar(v.parse_cgroup_inner, "name"),
            "cgroup_dir.container_inner", "Subdirectory where the container's cgroup namespace "
            "starts, so limits set above it cannot be changed from inside.",
            implemented=True, group=g),
        Key("lxc.cgroup.dir.monitor", _scalar(v.parse_cgroup_dir, rel), "cgroup_dir.monitor",
            "Cgroup path of the monitor process.", implemented=True, group=g),
        Key("lxc.cgroup.dir.monitor.pivot", _scalar(v.parse_cgroup_dir, rel),
            "cgroup_dir.monitor_pivot", "Cgroup the monitor moves to when the container stops.",
            group=g),
        Key("lxc.cgroup.relative", Noted(v.parse_bool, _BOOL, {False: _RELATIVE_0}),
            "cgroup_relative", "1: never escape to the root cgroup. lxcsd always puts the "
            "container's cgroups inside lxc@NAME.service's delegated cgroup, as 1 does; 0 "
            "has no effect (a warning).", default="0 (lxcsd: always 1)", implemented=True,
            group=g),
    ]


# lxcsd.runtime.plan.DEFAULT_CAP_RETAIN's complement (a unit test keeps them in step).
CAP_DROP_DEFAULT = (
    "systemd-nspawn's set: ipc_lock sys_module sys_rawio sys_pacct sys_time mac_override "
    "mac_admin syslog wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore "
    "and any newer capability are dropped; net_admin too when the container shares the "
    "host's network namespace. LXC: none (its templates' common.conf: mac_admin "
    "mac_override sys_time sys_module sys_rawio)"
)


def _security_keys() -> list[Key]:
    g = "Security"
    return [
        Key("lxc.cap.drop", Caps(keep=False), "caps", "Capabilities to drop (lowercase, no "
            "CAP_ prefix, space-separated), in addition to lxcsd's default drops; an empty "
            "value clears the list, default drops included (as after LXC's common.conf).",
            default=CAP_DROP_DEFAULT, implemented=True, group=g),
        Key("lxc.cap.keep", Caps(keep=True), "caps", "Capabilities to keep, dropping all "
            "others (the default drops do not apply); none clears the list (alone: drop "
            "everything).", implemented=True, group=g),
        Key("lxc.no_new_privs", _scalar(v.parse_bool, _BOOL), "no_new_privs", "1: set "
            "PR_SET_NO_NEW_PRIVS for init.", default="0", implemented=True, group=g),
        Key("lxc.idmap", ListOf(v.parse_idmap, "u|g NSID HOSTID COUNT"), "idmaps", "User or "
            "group id mapping; any mapping puts the container in a user namespace.",
            legacy=("lxc.id_map",), default="none: privileged container",
            implemented=True, group=g),
        Key("lxc.apparmor.profile", _scalar(v.parse_string, "profile"), "apparmor.profile",
            "AppArmor profile of init and attached commands: a loaded profile's name, "
            "unconfined, unchanged, or generated (a per-container profile as LXC makes, "
            "loaded at start and unloaded at stop). Ignored with a warning on a host without "
            "AppArmor.", legacy=("lxc.aa_profile",),
            default="unconfined (LXC: lxc-container-default-cgns)", implemented=True, group=g),
        Key("lxc.apparmor.allow_incomplete", _scalar(v.parse_bool, _BOOL),
            "apparmor.allow_incomplete", "1: start even when the kernel lacks AppArmor mount "
            "restrictions.", legacy=("lxc.aa_allow_incomplete",), default="0",
            implemented=True, group=g),
        Key("lxc.apparmor.allow_nesting", _scalar(v.parse_bool, _BOOL), "apparmor.allow_nesting",
            "1: a generated profile allows nested containers (pivot_root, any mount), and "
            "proc and sysfs are mounted at /dev/.lxc/{proc,sys} for them (only under the "
            "generated profile, which keeps the rest of the container out of them).",
            default="0", implemented=True, group=g),
        Key("lxc.apparmor.raw", ListOf(v.parse_string, "profile line"), "apparmor.raw",
            "Raw line appended to a generated profile.", implemented=True, group=g),
        Key("lxc.selinux.context", _scalar(v.parse_string, "context"), "selinux.context",
            "SELinux context of the container.", legacy=("lxc.se_context",),
            default="unchanged (unconfined_t)", implemented=True, group=g),
        Key("lxc.selinux.context.keyring", _scalar(v.parse_string, "context"),
            "selinux.context_keyring", "SELinux context of the container's session keyring.",
            default="lxc.selinux.context", group=g),
        Key("lxc.keyring.session", _scalar(v.parse_bool, _BOOL), "keyring_session", "0: "
            "inherit the session keyring instead of creating a new one (as the man page "
            "says; liblxc's code reads the value the other way round).", default="1",
            implemented=True, group=g),
        Key("lxc.seccomp.profile", _scalar(v.parse_path, "path"), "seccomp.profile", "Seccomp "
            "policy file (LXC's format, version 1 or 2).", legacy=("lxc.seccomp",),
            default="none", implemented=True, group=g),
        Key("lxc.seccomp.allow_nesting", _scalar(v.parse_bool, _BOOL), "seccomp.allow_nesting",
            "1: stack filters even if one is already loaded.", default="0",
            implemented=True, group=g),
        Key("lxc.seccomp.notify.proxy", _scalar(v.parse_seccomp_proxy, "unix:PATH|unix:@NAME"),
            "seccomp.notify_proxy", "Socket that seccomp notifications are forwarded to.",
            group=g),
        Key("lxc.seccomp.notify.cookie", _scalar(v.parse_string, "string"),
            "seccomp.notify_cookie", "String sent with proxied seccomp notifications.", group=g),
    ]


def _namespace_keys() -> list[Key]:
    g = "Namespaces"
    return [
        Key("lxc.namespace.clone", NamespaceList("keep"), "namespace.clone", "Namespaces to "
            "create (names from /proc/PID/ns).", default="all the config needs",
            implemented=True, group=g),
        Key("lxc.namespace.keep", NamespaceList("clone"), "namespace.keep", "Namespaces to "
            "inherit from the starting process.", default="none", implemented=True, group=g),
        Key("lxc.namespace.share", Keyed(v.parse_string, "pid|container|path",
                                         check_namespace), "namespace.share",
            "Join a namespace of a process (pid), another container (name) or a container "
            "path.", kind="prefix", pattern="lxc.namespace.share.[namespace]",
            implemented=True, group=g),
        Key("lxc.time.offset.boot", _scalar(v.parse_time_offset, "integer + h|m|s|ms|us|ns"),
            "time_offset.boot", "Offset of CLOCK_BOOTTIME in a new time namespace.",
            implemented=True, group=g),
        Key("lxc.time.offset.monotonic", _scalar(v.parse_time_offset,
                                                 "integer + h|m|s|ms|us|ns"),
            "time_offset.monotonic", "Offset of CLOCK_MONOTONIC in a new time namespace.",
            implemented=True, group=g),
    ]


def _resource_keys() -> list[Key]:
    g = "Resources"
    return [
        Key("lxc.prlimit", Keyed(v.parse_prlimit, "SOFT[:HARD]", v.check_prlimit_name),
            "prlimit", "Resource limit (setrlimit name without RLIMIT_, lowercase); numbers "
            "or unlimited.", kind="prefix", pattern="lxc.prlimit.[name]",
            legacy=("lxc.limit.[name]",), default="inherited", implemented=True,
            group=g),
        Key("lxc.sysctl", Keyed(v.parse_string, "value", check_sysctl), "sysctl", "Kernel "
            "parameter set inside the container.", kind="prefix",
            pattern="lxc.sysctl.[name]", implemented=True, group=g),
    ]


def _hook_keys() -> list[Key]:
    g = "Hooks"
    keys = [
        Key("lxc.hook.version", _scalar(v.parse_hook_version, "0|1"), "hook_version", "1: pass "
            "hook information in environment variables instead of arguments.", default="0",
            implemented=True, group=g),
        Key("lxc.hook", Hooks(""), "hooks", "An empty value removes every hook defined so far.",
            implemented=True, group=g),
    ]
    for hook in _HOOK_TYPES:
        keys.append(Key(f"lxc.hook.{hook}", Hooks(hook), "hooks", f"Command run "
                        f"{_HOOK_DOCS[hook]}; repeat for several.",
                        implemented=hook in _HOOKS_RUN, group=g))
    return keys


def _runtime_keys() -> list[Key]:
    g = "Logging and autostart"
    env = "NAME=VALUE or NAME"
    return [
        Key("lxc.log.level", _scalar(v.parse_log_level, "0-8 or TRACE..FATAL"), "log.level",
            "Log level, 0 (trace) to 8 (fatal).", legacy=("lxc.loglevel",), default="5 (ERROR)",
            group=g),
        Key("lxc.log.file", _scalar(v.parse_path, "path"), "log.file", "Log file.",
            legacy=("lxc.logfile",), default="none", group=g),
        Key("lxc.log.syslog", _scalar(v.parse_syslog, "daemon|local0-7"), "log.syslog",
            "Also log to syslog with this facility.", legacy=("lxc.syslog",), default="none",
            group=g),
        Key("lxc.start.auto", _scalar(v.parse_bool, _BOOL), "start.auto", "1: start the "
            "container at boot.", default="0", group=g),
        Key("lxc.start.delay", _scalar(v.parse_uint, "seconds"), "start.delay", "Seconds to "
            "wait after starting it before starting the next container.", default="0", group=g),
        Key("lxc.start.order", _scalar(v.parse_int, "integer"), "start.order", "Autostart "
            "order: lower starts earlier.", default="0", group=g),
        Key("lxc.group", Extend(v.parse_words, "group names"), "groups", "Container groups "
            "(space-separated; repeatable); 'onboot' starts first at boot.", group=g),
        Key("lxc.monitor.unshare", _scalar(lambda text: v.parse_uint(text) != 0, "0|1"),
            "monitor_unshare", "Non-zero: unshare the mount namespace before pre-start hooks.",
            default="0", group=g),
        Key("lxc.monitor.signal.pdeath", _scalar(v.parse_signal, "signal"),
            "monitor_signal_pdeath", "Signal init gets when the monitor dies; 0 for none.",
            default="SIGKILL", group=g),
        Key("lxc.environment", ListOf(v.parse_env, env), "environment", "Environment variable "
            "for init and hooks; NAME alone passes the host's value.", implemented=True, group=g),
        Key("lxc.environment.runtime", ListOf(v.parse_env, env), "environment_runtime",
            "Environment variable for init only.", implemented=True, group=g),
        Key("lxc.environment.hooks", ListOf(v.parse_env, env), "environment_hooks",
            "Environment variable for hooks only.", implemented=True, group=g),
    ]


KEYS: tuple[Key, ...] = tuple(
    _general() + _init_keys() + _network_keys() + _network_type_keys() + _terminal_keys()
    + _mount_keys() + _cgroup_keys() + _security_keys() + _namespace_keys() + _resource_keys()
    + _hook_keys() + _runtime_keys()
)

# --- lookup -----------------------------------------------------------------------------------

EXACT: dict[str, Key] = {k.name: k for k in KEYS if k.kind != "net"}
PREFIX: dict[str, Key] = {k.name + ".": k for k in KEYS if k.kind == "prefix"}
NET: dict[str, NetKey] = {k.name: k for k in KEYS if isinstance(k, NetKey)}
LEGACY: dict[str, str] = {
    old: k.name for k in KEYS if k.kind == "exact" for old in k.legacy
}
LEGACY_PREFIX = {"lxc.limit.": "lxc.prlimit."}
LEGACY_NET_SUB = {"ipv4": "ipv4.address", "ipv6": "ipv6.address"}
# Removed in LXC 2.1; lxc-update-config deletes these lines.
REMOVED = {"lxc.rootfs.backend", "lxc.pivotdir", "lxc.kmsg"}

# Network indexes the builder assigns to legacy unindexed lxc.network.* keys.
LEGACY_NET_NEW = -2  # lxc.network.type: the next network
LEGACY_NET_CURRENT = -3  # any other lxc.network.KEY: the last one started


class UnknownKey(Exception):
    """Raised by :func:`lookup`; the reader turns it into a located ConfigError.

    ``near`` (a word and the names it may be a typo of) makes the hint a suggestion,
    computed only when the hint is read: difflib costs an import, and the reader looks up
    keys it then ignores (lxc.pivotdir)."""

    def __init__(self, message: str, hint: str = "",
                 near: tuple[str, dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self._hint = hint
        self.near = near

    @property
    def hint(self) -> str:
        if not self._hint and self.near is not None:
            self._hint = _suggest(*self.near)
        return self._hint


def _net_lookup(key: str, rest: str, legacy: bool) -> tuple[Key, str, str, int]:
    """``rest`` is what follows "lxc.net." (or "lxc.network.")."""
    digits, dot, sub = rest.partition(".")
    if not (digits.isascii() and digits.isdigit()):
        if legacy and rest:
            return _legacy_unindexed_net(key, rest)
        raise UnknownKey(f"unknown network key {key!r}", "write lxc.net.INDEX.KEY, e.g. "
                         "lxc.net.0.type")
    index = int(digits)
    if index >= 2**31 - 1:
        raise UnknownKey(f"network index {digits} is too large")
    if not dot:
        return EXACT["lxc.net"], f"lxc.net.{index}", "", index
    sub = LEGACY_NET_SUB.get(sub, sub) if legacy else sub
    spec = NET.get(sub)
    if spec is None:
        raise UnknownKey(f"unknown network key {key!r}", near=(sub, NET))
    return spec, f"lxc.net.{index}.{sub}", sub, index


def _legacy_unindexed_net(key: str, sub: str) -> tuple[Key, str, str, int]:
    sub = LEGACY_NET_SUB.get(sub, sub)
    spec = NET.get(sub)
    if spec is None or not spec.legacy:
        raise UnknownKey(f"unknown legacy network key {key!r}",
                         "run lxc-update-config, or write lxc.net.INDEX.KEY")
    index = LEGACY_NET_NEW if sub == "type" else LEGACY_NET_CURRENT
    return spec, f"lxc.net.?.{sub}", sub, index


def _suggest(word: str, choices: dict[str, Any]) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f"did you mean {close[0]}?" if close else "see docs/config-keys.md for every key"


def lookup(key: str) -> tuple[Key, str, str, int]:
    """Resolve a key as written: (table entry, canonical key, sub, network index).

    ``sub`` is the part after a prefix key (``memory.max`` for ``lxc.cgroup2.memory.max``)
    or a network subkey; ``index`` is the network index, or -1. Legacy keys resolve to their
    current name. Raises :class:`UnknownKey`.
    """
    found = RESOLVED.get(key)
    if found is None:
        found = _net_lookup(key, key[8:], False) if key.startswith("lxc.net.") else \
            _lookup_slow(key)
        if len(RESOLVED) < 4096:  # bounded: keys come from files
            RESOLVED[key] = found
    return found


# lookup()'s results so far (the reader reads it directly: one dict lookup per line).
RESOLVED: dict[str, tuple[Key, str, str, int]] = {
    name: (spec, name, "", -1) for name, spec in EXACT.items()
}


def _lookup_slow(key: str) -> tuple[Key, str, str, int]:
    if key in GLOBAL_KEYS:
        raise UnknownKey(f"{key} is a system-wide setting, not a container's",
                         "it belongs in /etc/lxc/lxc.conf (lxc.system.conf(5)); liblxc "
                         "refuses it in a container config too")
    dot = key.find(".", 4)
    while dot > 0:
        spec = PREFIX.get(key[: dot + 1])
        if spec is not None:
            return _prefix_entry(spec, key, key[dot + 1:])
        dot = key.find(".", dot + 1)
    return _legacy_lookup(key)


def _prefix_entry(spec: Key, key: str, sub: str) -> tuple[Key, str, str, int]:
    if not sub:
        raise UnknownKey(f"{key!r} needs a name after the dot", f"write {spec.pattern}")
    return spec, key, sub, -1


def _legacy_lookup(key: str) -> tuple[Key, str, str, int]:
    canonical = LEGACY.get(key)
    if canonical is not None:
        return EXACT[canonical], canonical, "", -1
    if key == "lxc.network":
        return EXACT["lxc.net"], "lxc.net", "", -1
    if key.startswith("lxc.network."):
        return _net_lookup(key, key[12:], True)
    for old, new in LEGACY_PREFIX.items():
        if key == old[:-1] or key.startswith(old):
            spec, canonical, sub, index = lookup(new[:-1] + key[len(old) - 1:])
            return spec, canonical, sub, index
    raise UnknownKey(f"unknown key {key!r}", near=(key, EXACT))


def find(canonical: str) -> Key:
    """The table entry for a canonical key (docs, CLI); raises UnknownKey."""
    return lookup(canonical)[0]


def is_legacy(key: str, canonical: str) -> bool:
    """A legacy key as written (lxc.net.N keys renumbered from lxc.network are not)."""
    return key != canonical and not key.startswith("lxc.net.")


def config_error(exc: UnknownKey | ConfigError, entry: Entry) -> ConfigError:
    """Locate an error at an entry's file, line and key."""
    if isinstance(exc, UnknownKey):
        return ConfigError(exc.message, path=entry.path, line=entry.line, key=entry.key,
                           hint=exc.hint)
    exc.path = exc.path or entry.path
    exc.line = exc.line or entry.line
    exc.key = exc.key or entry.key
    return exc
