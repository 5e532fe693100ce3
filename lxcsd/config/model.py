"""The typed container model built from an LXC config (see docs/design.md, "Data flow").

Every class is a plain class with ``__slots__`` and a keyword-only ``__init__`` (no
dataclasses: they cost 12 ms at import, and the generator loads this module at every boot).
Instances are built once by :mod:`lxcsd.config.build` and treated as immutable afterwards.

Conventions that callers rely on:

- ``None`` means "the config does not set this": apply LXC's default (each default is
  documented in the key table, :mod:`lxcsd.config.keys`, and in docs/config-keys.md).
- Lists are tuples, in config order, after LXC's reset rules (an empty value clears a list).
- Mappings (``sysctl``, ``prlimit``, ``hooks``, ``namespace.share``) are dicts in config order.

Sections whose keys are all unset share one empty instance (for example ``Console()``), so
reading ``container.console.path`` never needs a ``None`` check on ``console`` itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.errors import ConfigError

    from .keys import Key


class Entry:
    """One ``key = value`` line as read, with where it came from.

    ``key`` is the key as written; ``canonical`` is the current name after legacy
    translation (``lxc.utsname`` → ``lxc.uts.name``). The other slots are the reader's
    pre-parsed form, used by the builder: ``spec`` (the table entry, None for lines LXC
    ignores), ``sub`` (the part after a prefix key, or a network subkey), ``index`` (network
    index), ``item`` (the parsed value), ``error`` (a ConfigError to raise when this entry is
    applied) and ``note`` (a warning about a line that is ignored).
    """

    __slots__ = (
        "key", "value", "path", "line", "canonical", "spec", "sub", "index", "item", "error",
        "note",
    )

    def __init__(
        self,
        *,
        key: str,
        value: str,
        path: str,
        line: int,
        canonical: str = "",
        spec: Key | None = None,
        sub: str = "",
        index: int = -1,
        item: Any = None,
        error: ConfigError | None = None,
        note: str = "",
    ) -> None:
        self.key = key
        self.value = value
        self.path = path
        self.line = line
        self.canonical = canonical or key
        self.spec = spec
        self.sub = sub
        self.index = index
        self.item = item
        self.error = error
        self.note = note

    def location(self) -> str:
        return f"{self.path}:{self.line}"

    def __repr__(self) -> str:
        return f"Entry({self.location()}: {self.key} = {self.value!r})"


_new = object.__new__


def make_entry(
    key: str, value: str, path: str, line: int, canonical: str, spec: Key | None, sub: str,
    index: int,
) -> Entry:
    """Entry(...) without keyword parsing: the reader makes one per line, and keyword
    arguments cost 2.5 times as much (the reader is on the generator's hot path)."""
    entry: Entry = _new(Entry)
    entry.key = key
    entry.value = value
    entry.path = path
    entry.line = line
    entry.canonical = canonical
    entry.spec = spec
    entry.sub = sub
    entry.index = index
    entry.item = None
    entry.error = None
    entry.note = ""
    return entry


class IdMap:
    """``lxc.idmap = u|g NS_ID HOST_ID COUNT``."""

    __slots__ = ("kind", "ns_id", "host_id", "count")

    def __init__(self, *, kind: str, ns_id: int, host_id: int, count: int) -> None:
        self.kind = kind
        self.ns_id = ns_id
        self.host_id = host_id
        self.count = count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self.as_tuple() == other.as_tuple()

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def as_tuple(self) -> tuple[str, int, int, int]:
        return (self.kind, self.ns_id, self.host_id, self.count)

    def __repr__(self) -> str:
        return f"IdMap({self.kind} {self.ns_id} {self.host_id} {self.count})"


class MountOptions:
    """Mount options split the way LXC does (conf.c: parse_lxc_mount_attrs, parse_mount_attrs).

    ``flags``: MS_* bits to set; ``clear_flags``: MS_* bits the options clear (``rw``,
    ``dev``, ...); ``propagation``: MS_SHARED/SLAVE/PRIVATE/UNBINDABLE (| MS_REC) or 0;
    ``data``: filesystem-specific options joined with ``,``; ``bind``/``recursive``:
    ``bind``/``rbind``. LXC-only options: ``create`` ("dir", "file" or None), ``optional``,
    ``relative``, ``idmap`` (a user namespace path, "container", or None).
    """

    __slots__ = (
        "flags", "clear_flags", "propagation", "data", "bind", "recursive", "create",
        "optional", "relative", "idmap",
    )

    def __init__(
        self,
        *,
        flags: int = 0,
        clear_flags: int = 0,
        propagation: int = 0,
        data: str = "",
        bind: bool = False,
        recursive: bool = False,
        create: str | None = None,
        optional: bool = False,
        relative: bool = False,
        idmap: str | None = None,
    ) -> None:
        self.flags = flags
        self.clear_flags = clear_flags
        self.propagation = propagation
        self.data = data
        self.bind = bind
        self.recursive = recursive
        self.create = create
        self.optional = optional
        self.relative = relative
        self.idmap = idmap


class MountEntry:
    """``lxc.mount.entry``: one fstab line (fstab(5), with getmntent's ``\\040`` escapes).

    ``options`` are the raw comma-separated words; ``opts`` is their parsed form.
    ``target`` is usually relative to the container's root (LXC prefixes the rootfs mount).
    """

    __slots__ = ("source", "target", "fstype", "options", "freq", "passno", "opts", "raw")

    def __init__(
        self,
        *,
        source: str,
        target: str,
        fstype: str,
        options: tuple[str, ...],
        freq: int,
        passno: int,
        opts: MountOptions,
        raw: str,
    ) -> None:
        self.source = source
        self.target = target
        self.fstype = fstype
        self.options = options
        self.freq = freq
        self.passno = passno
        self.opts = opts
        self.raw = raw

    def __repr__(self) -> str:
        return f"MountEntry({self.raw!r})"


class MountAuto:
    """``lxc.mount.auto``, after LXC's rule that a later token replaces an earlier one of the
    same group.

    ``proc``: "mixed" or "rw"; ``sys``: "ro", "mixed" or "rw"; ``cgroup``: "cgroup",
    "cgroup-full" or "cgroup2", with ``cgroup_mode`` "mixed", "ro", "rw" or None (no
    specifier: rw with CAP_SYS_ADMIN, else mixed) and ``cgroup_force``; ``shmounts``:
    (host path, container path) or None. None everywhere means nothing is auto-mounted.
    """

    __slots__ = ("proc", "sys", "cgroup", "cgroup_mode", "cgroup_force", "shmounts")

    def __init__(
        self,
        *,
        proc: str | None = None,
        sys: str | None = None,
        cgroup: str | None = None,
        cgroup_mode: str | None = None,
        cgroup_force: bool = False,
        shmounts: tuple[str, str] | None = None,
    ) -> None:
        self.proc = proc
        self.sys = sys
        self.cgroup = cgroup
        self.cgroup_mode = cgroup_mode
        self.cgroup_force = cgroup_force
        self.shmounts = shmounts


class Mounts:
    """``lxc.mount.*``: auto mounts, fstab-style entries in order, and an fstab file."""

    __slots__ = ("auto", "entries", "fstab")

    def __init__(
        self,
        *,
        auto: MountAuto | None = None,
        entries: tuple[MountEntry, ...] = (),
        fstab: str | None = None,
    ) -> None:
        self.auto = auto if auto is not None else EMPTY_MOUNT_AUTO
        self.entries = entries
        self.fstab = fstab


class Rootfs:
    """``lxc.rootfs.*``.

    ``spec`` is ``lxc.rootfs.path`` as written; ``kind`` the storage type from its
    ``TYPE:`` prefix ("dir" when there is none; "overlayfs" reads as "overlay"); ``path``
    what follows the prefix (for overlay: the whole ``lower:upper`` string); ``lower`` and
    ``upper`` the overlay layers. ``mount`` is ``lxc.rootfs.mount`` (LXC's default:
    the configured rootfs mount directory), ``options`` ``lxc.rootfs.options`` as written and
    ``mount_options`` parsed, ``managed`` ``lxc.rootfs.managed`` (default True).
    """

    __slots__ = (
        "spec", "kind", "path", "lower", "upper", "mount", "options", "mount_options", "managed",
    )

    def __init__(
        self,
        *,
        spec: str | None = None,
        kind: str | None = None,
        path: str | None = None,
        lower: tuple[str, ...] = (),
        upper: str | None = None,
        mount: str | None = None,
        options: str | None = None,
        mount_options: MountOptions | None = None,
        managed: bool | None = None,
    ) -> None:
        self.spec = spec
        self.kind = kind
        self.path = path
        self.lower = lower
        self.upper = upper
        self.mount = mount
        self.options = options
        self.mount_options = mount_options
        self.managed = managed


class RootfsPath:
    """The parsed value of ``lxc.rootfs.path`` (merged into :class:`Rootfs`)."""

    __slots__ = ("spec", "kind", "path", "lower", "upper")

    def __init__(
        self, *, spec: str, kind: str, path: str, lower: tuple[str, ...], upper: str | None
    ) -> None:
        self.spec = spec
        self.kind = kind
        self.path = path
        self.lower = lower
        self.upper = upper


class IPv4Address:
    """``lxc.net.N.ipv4.address = ADDR[/PREFIX] [BROADCAST]`` with LXC's computed defaults
    (prefix from the address class, broadcast from address and prefix)."""

    __slots__ = ("address", "prefix", "broadcast")

    def __init__(self, *, address: str, prefix: int, broadcast: str) -> None:
        self.address = address
        self.prefix = prefix
        self.broadcast = broadcast

    def __repr__(self) -> str:
        return f"IPv4Address({self.address}/{self.prefix} brd {self.broadcast})"


class IPAddress:
    """An address with a prefix length: IPv6 addresses, and veth routes of both families."""

    __slots__ = ("address", "prefix")

    def __init__(self, *, address: str, prefix: int) -> None:
        self.address = address
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"IPAddress({self.address}/{self.prefix})"


class Network:
    """One ``lxc.net.N`` interface; attribute names are the subkeys with ``.`` → ``_``.

    ``type``: veth, macvlan, ipvlan, vlan, phys, empty, none (None when never set; LXC then
    treats it as empty). ``up`` is ``flags = up``. Gateways are an address, "auto" or "dev".
    ``veth_vlan_id`` is an int, or -1 for "none". Modes left None take LXC's defaults:
    veth.mode bridge, macvlan.mode private, ipvlan.mode l3, ipvlan.isolation bridge.
    ``hwaddr`` is kept as written: LXC replaces each ``x`` with a random hex digit at start.
    """

    __slots__ = (
        "index", "type", "up", "link", "name", "hwaddr", "mtu", "l2proxy",
        "ipv4_addresses", "ipv4_gateway", "ipv6_addresses", "ipv6_gateway",
        "script_up", "script_down",
        "veth_mode", "veth_pair", "veth_ipv4_routes", "veth_ipv6_routes", "veth_vlan_id",
        "veth_vlan_tagged_ids", "veth_n_rxqueues", "veth_n_txqueues",
        "macvlan_mode", "ipvlan_mode", "ipvlan_isolation", "vlan_id",
    )

    def __init__(
        self,
        *,
        index: int,
        type: str | None = None,
        up: bool | None = None,
        link: str | None = None,
        name: str | None = None,
        hwaddr: str | None = None,
        mtu: int | None = None,
        l2proxy: bool | None = None,
        ipv4_addresses: tuple[IPv4Address, ...] = (),
        ipv4_gateway: str | None = None,
        ipv6_addresses: tuple[IPAddress, ...] = (),
        ipv6_gateway: str | None = None,
        script_up: str | None = None,
        script_down: str | None = None,
        veth_mode: str | None = None,
        veth_pair: str | None = None,
        veth_ipv4_routes: tuple[IPAddress, ...] = (),
        veth_ipv6_routes: tuple[IPAddress, ...] = (),
        veth_vlan_id: int | None = None,
        veth_vlan_tagged_ids: tuple[int, ...] = (),
        veth_n_rxqueues: int | None = None,
        veth_n_txqueues: int | None = None,
        macvlan_mode: str | None = None,
        ipvlan_mode: str | None = None,
        ipvlan_isolation: str | None = None,
        vlan_id: int | None = None,
    ) -> None:
        self.index = index
        self.type = type
        self.up = up
        self.link = link
        self.name = name
        self.hwaddr = hwaddr
        self.mtu = mtu
        self.l2proxy = l2proxy
        self.ipv4_addresses = ipv4_addresses
        self.ipv4_gateway = ipv4_gateway
        self.ipv6_addresses = ipv6_addresses
        self.ipv6_gateway = ipv6_gateway
        self.script_up = script_up
        self.script_down = script_down
        self.veth_mode = veth_mode
        self.veth_pair = veth_pair
        self.veth_ipv4_routes = veth_ipv4_routes
        self.veth_ipv6_routes = veth_ipv6_routes
        self.veth_vlan_id = veth_vlan_id
        self.veth_vlan_tagged_ids = veth_vlan_tagged_ids
        self.veth_n_rxqueues = veth_n_rxqueues
        self.veth_n_txqueues = veth_n_txqueues
        self.macvlan_mode = macvlan_mode
        self.ipvlan_mode = ipvlan_mode
        self.ipvlan_isolation = ipvlan_isolation
        self.vlan_id = vlan_id

    def __repr__(self) -> str:
        return f"Network({self.index}, type={self.type}, link={self.link}, name={self.name})"


class CgroupSetting:
    """One ``lxc.cgroup2.KEY = VALUE`` (or v1 ``lxc.cgroup.KEY``), with its location."""

    __slots__ = ("key", "value", "path", "line")

    def __init__(self, *, key: str, value: str, path: str, line: int) -> None:
        self.key = key
        self.value = value
        self.path = path
        self.line = line

    def __repr__(self) -> str:
        return f"CgroupSetting({self.key} = {self.value!r} at {self.path}:{self.line})"


class CgroupDir:
    """``lxc.cgroup.dir`` (``path``) and ``lxc.cgroup.dir.{monitor,monitor.pivot,container,
    container.inner}``: paths relative to the cgroup LXC starts in."""

    __slots__ = ("path", "monitor", "monitor_pivot", "container", "container_inner")

    def __init__(
        self,
        *,
        path: str | None = None,
        monitor: str | None = None,
        monitor_pivot: str | None = None,
        container: str | None = None,
        container_inner: str | None = None,
    ) -> None:
        self.path = path
        self.monitor = monitor
        self.monitor_pivot = monitor_pivot
        self.container = container
        self.container_inner = container_inner


class Prlimit:
    """``lxc.prlimit.NAME = SOFT[:HARD]``; :data:`RLIM_INFINITY` (-1, as Python's
    ``resource`` module) for "unlimited"."""

    __slots__ = ("soft", "hard")

    def __init__(self, *, soft: int, hard: int) -> None:
        self.soft = soft
        self.hard = hard

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prlimit) and (self.soft, self.hard) == (other.soft, other.hard)

    def __hash__(self) -> int:
        return hash((self.soft, self.hard))

    def __repr__(self) -> str:
        return f"Prlimit({self.soft}:{self.hard})"


RLIM_INFINITY = -1


class Console:
    """``lxc.console.*``: ``path`` (a device, or "none"), ``logfile``, ``size`` and
    ``buffer_size`` in bytes (LXC's rounding applied: at least a page, a power of two),
    ``rotate``."""

    __slots__ = ("path", "logfile", "size", "buffer_size", "rotate")

    def __init__(
        self,
        *,
        path: str | None = None,
        logfile: str | None = None,
        size: int | None = None,
        buffer_size: int | None = None,
        rotate: bool | None = None,
    ) -> None:
        self.path = path
        self.logfile = logfile
        self.size = size
        self.buffer_size = buffer_size
        self.rotate = rotate


class Init:
    """``lxc.init.*``: ``cmd`` as an argv tuple (split as LXC does, quotes group words),
    ``uid``, ``gid``, supplementary ``groups``, ``cwd``; ``notify`` is lxcsd's own
    ``lxcsd.init.notify`` (None: auto, True/False: forced)."""

    __slots__ = ("cmd", "uid", "gid", "groups", "cwd", "notify")

    def __init__(
        self,
        *,
        cmd: tuple[str, ...] | None = None,
        uid: int | None = None,
        gid: int | None = None,
        groups: tuple[int, ...] = (),
        cwd: str | None = None,
        notify: bool | None = None,
    ) -> None:
        self.cmd = cmd
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.cwd = cwd
        self.notify = notify


class Signals:
    """``lxc.signal.{halt,reboot,stop}`` as numbers (a value of 0 reads as None, as in LXC)."""

    __slots__ = ("halt", "reboot", "stop")

    def __init__(
        self, *, halt: int | None = None, reboot: int | None = None, stop: int | None = None
    ) -> None:
        self.halt = halt
        self.reboot = reboot
        self.stop = stop


class Start:
    """``lxc.start.{auto,delay,order}``."""

    __slots__ = ("auto", "delay", "order")

    def __init__(
        self, *, auto: bool | None = None, delay: int | None = None, order: int | None = None
    ) -> None:
        self.auto = auto
        self.delay = delay
        self.order = order


class Seccomp:
    """``lxc.seccomp.*``."""

    __slots__ = ("profile", "allow_nesting", "notify_proxy", "notify_cookie")

    def __init__(
        self,
        *,
        profile: str | None = None,
        allow_nesting: bool | None = None,
        notify_proxy: str | None = None,
        notify_cookie: str | None = None,
    ) -> None:
        self.profile = profile
        self.allow_nesting = allow_nesting
        self.notify_proxy = notify_proxy
        self.notify_cookie = notify_cookie


class AppArmor:
    """``lxc.apparmor.*``; ``raw`` lines in order."""

    __slots__ = ("profile", "allow_incomplete", "allow_nesting", "raw")

    def __init__(
        self,
        *,
        profile: str | None = None,
        allow_incomplete: bool | None = None,
        allow_nesting: bool | None = None,
        raw: tuple[str, ...] = (),
    ) -> None:
        self.profile = profile
        self.allow_incomplete = allow_incomplete
        self.allow_nesting = allow_nesting
        self.raw = raw


class SELinux:
    """``lxc.selinux.context`` and ``lxc.selinux.context.keyring``."""

    __slots__ = ("context", "context_keyring")

    def __init__(
        self, *, context: str | None = None, context_keyring: str | None = None
    ) -> None:
        self.context = context
        self.context_keyring = context_keyring


class Namespaces:
    """``lxc.namespace.*``: ``clone`` and ``keep`` as tuples of /proc/PID/ns names (None when
    unset: clone every namespace the config needs), ``share`` namespace name → pid, container
    name or path."""

    __slots__ = ("clone", "keep", "share")

    def __init__(
        self,
        *,
        clone: tuple[str, ...] | None = None,
        keep: tuple[str, ...] | None = None,
        share: dict[str, str] | None = None,
    ) -> None:
        self.clone = clone
        self.keep = keep
        self.share = share if share is not None else {}


class TimeOffsets:
    """``lxc.time.offset.{boot,monotonic}`` in nanoseconds."""

    __slots__ = ("boot", "monotonic")

    def __init__(self, *, boot: int | None = None, monotonic: int | None = None) -> None:
        self.boot = boot
        self.monotonic = monotonic


class Log:
    """``lxc.log.*``: ``level`` 0 (trace) .. 8 (fatal), ``file``, ``syslog`` facility."""

    __slots__ = ("level", "file", "syslog")

    def __init__(
        self, *, level: int | None = None, file: str | None = None, syslog: str | None = None
    ) -> None:
        self.level = level
        self.file = file
        self.syslog = syslog


EMPTY_MOUNT_AUTO = MountAuto()
_ROOTFS = Rootfs()
_MOUNTS = Mounts()
_CGROUP_DIR = CgroupDir()
_SECCOMP = Seccomp()
_APPARMOR = AppArmor()
_SELINUX = SELinux()
_CONSOLE = Console()
_INIT = Init()
_SIGNALS = Signals()
_START = Start()
_NAMESPACES = Namespaces()
_TIME_OFFSETS = TimeOffsets()
_LOG = Log()

# Every section of Container: attribute name -> class. The builder constructs a section only
# when one of its keys is set; otherwise the Container keeps the shared empty instance.
SECTIONS: dict[str, type] = {
    "rootfs": Rootfs,
    "mounts": Mounts,
    "cgroup_dir": CgroupDir,
    "seccomp": Seccomp,
    "apparmor": AppArmor,
    "selinux": SELinux,
    "console": Console,
    "init": Init,
    "signals": Signals,
    "start": Start,
    "namespace": Namespaces,
    "time_offset": TimeOffsets,
    "log": Log,
}


class Container:
    """A container's whole configuration, typed (see the module docstring for conventions).

    ``entries`` holds every applied line (includes expanded) with file and line, for
    diagnostics and ``lxcsd config get``. ``warnings`` lists ConfigErrors worth showing but
    not fatal: keys lxcsd does not implement yet, legacy keys, ignored lines.
    """

    __slots__ = (
        "name", "config_path", "entries", "_warnings", "_build_warnings",
        "arch", "uts_name", "rootfs", "mounts", "idmaps", "net",
        "cgroup2", "cgroup_v1", "cgroup_dir", "cgroup_relative",
        "caps_drop", "caps_keep", "caps_cleared", "no_new_privs", "seccomp", "apparmor",
        "selinux",
        "autodev", "autodev_tmpfs_size", "tty_max", "tty_dir", "pty_max", "console",
        "environment", "environment_runtime", "environment_hooks",
        "init", "execute_cmd", "signals", "start", "groups", "hooks", "hook_version",
        "sysctl", "prlimit", "proc", "keyring_session", "namespace", "time_offset",
        "monitor_unshare", "monitor_signal_pdeath", "log", "ephemeral", "sched_core",
    )

    def __init__(
        self,
        *,
        name: str,
        config_path: str,
        entries: tuple[Entry, ...] = (),
        build_warnings: tuple[ConfigError, ...] = (),
        arch: str | None = None,
        uts_name: str | None = None,
        rootfs: Rootfs = _ROOTFS,
        mounts: Mounts = _MOUNTS,
        idmaps: tuple[IdMap, ...] = (),
        net: tuple[Network, ...] = (),
        cgroup2: tuple[CgroupSetting, ...] = (),
        cgroup_v1: tuple[CgroupSetting, ...] = (),
        cgroup_dir: CgroupDir = _CGROUP_DIR,
        cgroup_relative: bool | None = None,
        caps_drop: tuple[str, ...] = (),
        caps_keep: tuple[str, ...] | None = None,
        caps_cleared: bool = False,
        no_new_privs: bool | None = None,
        seccomp: Seccomp = _SECCOMP,
        apparmor: AppArmor = _APPARMOR,
        selinux: SELinux = _SELINUX,
        autodev: bool | None = None,
        autodev_tmpfs_size: int | None = None,
        tty_max: int | None = None,
        tty_dir: str | None = None,
        pty_max: int | None = None,
        console: Console = _CONSOLE,
        environment: tuple[tuple[str, str | None], ...] = (),
        environment_runtime: tuple[tuple[str, str | None], ...] = (),
        environment_hooks: tuple[tuple[str, str | None], ...] = (),
        init: Init = _INIT,
        execute_cmd: tuple[str, ...] | None = None,
        signals: Signals = _SIGNALS,
        start: Start = _START,
        groups: tuple[str, ...] = (),
        hooks: dict[str, tuple[str, ...]] | None = None,
        hook_version: int | None = None,
        sysctl: dict[str, str] | None = None,
        prlimit: dict[str, Prlimit] | None = None,
        proc: tuple[tuple[str, str], ...] = (),
        keyring_session: bool | None = None,
        namespace: Namespaces = _NAMESPACES,
        time_offset: TimeOffsets = _TIME_OFFSETS,
        monitor_unshare: bool | None = None,
        monitor_signal_pdeath: int | None = None,
        log: Log = _LOG,
        ephemeral: bool | None = None,
        sched_core: bool | None = None,
    ) -> None:
        self.name = name
        self.config_path = config_path
        self.entries = entries
        self._build_warnings = build_warnings
        self._warnings: list[ConfigError] | None = None
        self.arch = arch
        self.uts_name = uts_name
        self.rootfs = rootfs
        self.mounts = mounts
        self.idmaps = idmaps
        self.net = net
        self.cgroup2 = cgroup2
        self.cgroup_v1 = cgroup_v1
        self.cgroup_dir = cgroup_dir
        self.cgroup_relative = cgroup_relative
        self.caps_drop = caps_drop
        self.caps_keep = caps_keep
        self.caps_cleared = caps_cleared
        self.no_new_privs = no_new_privs
        self.seccomp = seccomp
        self.apparmor = apparmor
        self.selinux = selinux
        self.autodev = autodev
        self.autodev_tmpfs_size = autodev_tmpfs_size
        self.tty_max = tty_max
        self.tty_dir = tty_dir
        self.pty_max = pty_max
        self.console = console
        self.environment = environment
        self.environment_runtime = environment_runtime
        self.environment_hooks = environment_hooks
        self.init = init
        self.execute_cmd = execute_cmd
        self.signals = signals
        self.start = start
        self.groups = groups
        self.hooks = hooks if hooks is not None else {}
        self.hook_version = hook_version
        self.sysctl = sysctl if sysctl is not None else {}
        self.prlimit = prlimit if prlimit is not None else {}
        self.proc = proc
        self.keyring_session = keyring_session
        self.namespace = namespace
        self.time_offset = time_offset
        self.monitor_unshare = monitor_unshare
        self.monitor_signal_pdeath = monitor_signal_pdeath
        self.log = log
        self.ephemeral = ephemeral
        self.sched_core = sched_core

    @property
    def warnings(self) -> list[ConfigError]:
        """Warnings, computed on first use: the generator never looks at them, so a boot
        does not pay for building one message per unimplemented key."""
        if self._warnings is None:
            from .build import collect_warnings

            self._warnings = collect_warnings(self.entries, self._build_warnings)
        return self._warnings

    def __repr__(self) -> str:
        return f"Container({self.name!r}, {self.config_path!r})"


def to_data(value: Any) -> Any:
    """Plain data (dicts, lists, str, int, bool, None) for a model object: for JSON output
    and for comparing models in tests. Entries and private slots are left out."""
    if isinstance(value, (tuple, list)):
        return [to_data(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_data(item) for key, item in value.items()}
    slots = getattr(type(value), "__slots__", None)
    if slots is None:
        return value
    container = isinstance(value, Container)
    data = {name: to_data(getattr(value, name)) for name in slots
            if not name.startswith("_") and not (container and name == "entries")}
    if container:
        data["warnings"] = [str(warning) for warning in value.warnings]
    return data
