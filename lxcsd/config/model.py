"""The typed container model built from an LXC config (see docs/design.md, "Data flow").

Every class is a :class:`~lxcsd.config.record.Record`: frozen, slotted, keyword-only, its
fields written once and checked by mypy. Instances are built once by
:mod:`lxcsd.config.build`.

Conventions that callers rely on:

- ``None`` means "the config does not set this": apply LXC's default (each default is
  documented in the key table, :mod:`lxcsd.config.keys`, and in docs/config-keys.md).
- Lists are tuples, in config order, after LXC's reset rules (an empty value clears a list).
- Mappings (``sysctl``, ``prlimit``, ``hooks``, ``namespace.share``) are dicts in config order.

Sections whose keys are all unset share one empty instance (for example ``Console()``), so
reading ``container.console.path`` never needs a ``None`` check on ``console`` itself.
"""

from __future__ import annotations

from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.errors import ConfigError

    from .keys import Key


class Entry(Record, frozen=False):
    """One ``key = value`` line as read, with where it came from.

    ``key`` is the key as written; ``canonical`` is the current name after legacy
    translation (``lxc.utsname`` → ``lxc.uts.name``). The other fields are the reader's
    pre-parsed form, used by the builder: ``spec`` (the table entry, None for lines LXC
    ignores), ``sub`` (the part after a prefix key, or a network subkey), ``index`` (network
    index), ``item`` (the parsed value), ``error`` (a ConfigError to raise when this entry is
    applied) and ``note`` (a warning about the line).

    Mutable: the reader fills an entry in steps (its hot path makes one per line without
    keyword arguments, see ``lxcsd.config.reader``). Entries are lines at places, equal
    only to themselves (the builder keys its maps by entry).
    """

    key: str
    value: str
    path: str
    line: int
    canonical: str = ""
    spec: Key | None = None
    sub: str = ""
    index: int = -1
    item: Any = None
    error: ConfigError | None = None
    note: str = ""

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def location(self) -> str:
        return f"{self.path}:{self.line}"

    def __repr__(self) -> str:
        return f"Entry({self.location()}: {self.key} = {self.value!r})"


class IdMap(Record):
    """``lxc.idmap = u|g NS_ID HOST_ID COUNT``."""

    kind: str
    ns_id: int
    host_id: int
    count: int

    def as_tuple(self) -> tuple[str, int, int, int]:
        return (self.kind, self.ns_id, self.host_id, self.count)

    def __repr__(self) -> str:
        return f"IdMap({self.kind} {self.ns_id} {self.host_id} {self.count})"


class MountOptions(Record):
    """Mount options split the way LXC does (conf.c: parse_lxc_mount_attrs, parse_mount_attrs).

    ``flags``: MS_* bits to set; ``clear_flags``: MS_* bits the options clear (``rw``,
    ``dev``, ...); ``propagation``: MS_SHARED/SLAVE/PRIVATE/UNBINDABLE (| MS_REC) or 0;
    ``data``: filesystem-specific options joined with ``,``; ``bind``/``recursive``:
    ``bind``/``rbind``. LXC-only options: ``create`` ("dir", "file" or None), ``optional``,
    ``relative``, ``idmap`` (a user namespace path, "container", or None).
    """

    flags: int = 0
    clear_flags: int = 0
    propagation: int = 0
    data: str = ""
    bind: bool = False
    recursive: bool = False
    create: str | None = None
    optional: bool = False
    relative: bool = False
    idmap: str | None = None


class MountEntry(Record):
    """``lxc.mount.entry``: one fstab line (fstab(5), with getmntent's ``\\040`` escapes).

    ``options`` are the raw comma-separated words; ``opts`` is their parsed form.
    ``target`` is usually relative to the container's root (LXC prefixes the rootfs mount).
    """

    source: str
    target: str
    fstype: str
    options: tuple[str, ...]
    freq: int
    passno: int
    opts: MountOptions
    raw: str

    def __repr__(self) -> str:
        return f"MountEntry({self.raw!r})"


class MountAuto(Record):
    """``lxc.mount.auto``, after LXC's rule that a later token replaces an earlier one of the
    same group.

    ``proc``: "mixed" or "rw"; ``sys``: "ro", "mixed" or "rw"; ``cgroup``: "cgroup",
    "cgroup-full" or "cgroup2", with ``cgroup_mode`` "mixed", "ro", "rw" or None (no
    specifier: rw with CAP_SYS_ADMIN, else mixed) and ``cgroup_force``; ``shmounts``:
    (host path, container path) or None. None everywhere means nothing is auto-mounted.
    """

    proc: str | None = None
    sys: str | None = None
    cgroup: str | None = None
    cgroup_mode: str | None = None
    cgroup_force: bool = False
    shmounts: tuple[str, str] | None = None


EMPTY_MOUNT_AUTO = MountAuto()


class Mounts(Record):
    """``lxc.mount.*``: auto mounts, fstab-style entries in order, and an fstab file."""

    auto: MountAuto = EMPTY_MOUNT_AUTO
    entries: tuple[MountEntry, ...] = ()
    fstab: str | None = None


class Rootfs(Record):
    """``lxc.rootfs.*``.

    ``spec`` is ``lxc.rootfs.path`` as written; ``kind`` the storage type from its
    ``TYPE:`` prefix ("dir" when there is none; "overlayfs" reads as "overlay"); ``path``
    what follows the prefix (for overlay: the whole ``lower:upper`` string); ``lower`` and
    ``upper`` the overlay layers. ``mount`` is ``lxc.rootfs.mount`` (LXC's default:
    the configured rootfs mount directory), ``options`` ``lxc.rootfs.options`` as written and
    ``mount_options`` parsed, ``managed`` ``lxc.rootfs.managed`` (default True).
    """

    spec: str | None = None
    kind: str | None = None
    path: str | None = None
    lower: tuple[str, ...] = ()
    upper: str | None = None
    mount: str | None = None
    options: str | None = None
    mount_options: MountOptions | None = None
    managed: bool | None = None


class RootfsPath(Record):
    """The parsed value of ``lxc.rootfs.path`` (merged into :class:`Rootfs`)."""

    spec: str
    kind: str
    path: str
    lower: tuple[str, ...]
    upper: str | None


class IPv4Address(Record):
    """``lxc.net.N.ipv4.address = ADDR[/PREFIX] [BROADCAST]`` with LXC's computed defaults
    (prefix from the address class, broadcast from address and prefix)."""

    address: str
    prefix: int
    broadcast: str

    def __repr__(self) -> str:
        return f"IPv4Address({self.address}/{self.prefix} brd {self.broadcast})"


class IPAddress(Record):
    """An address with a prefix length: IPv6 addresses, and veth routes of both families."""

    address: str
    prefix: int

    def __repr__(self) -> str:
        return f"IPAddress({self.address}/{self.prefix})"


class Network(Record):
    """One ``lxc.net.N`` interface; attribute names are the subkeys with ``.`` → ``_``.

    ``type``: veth, macvlan, ipvlan, vlan, phys, empty, none (None when never set; LXC then
    treats it as empty). ``up`` is ``flags = up``. Gateways are an address, "auto" or "dev".
    ``veth_vlan_id`` is an int, or -1 for "none". Modes left None take LXC's defaults:
    veth.mode bridge, macvlan.mode private, ipvlan.mode l3, ipvlan.isolation bridge.
    ``hwaddr`` is kept as written: LXC replaces each ``x`` with a random hex digit at start.
    """

    index: int
    type: str | None = None
    up: bool | None = None
    link: str | None = None
    name: str | None = None
    hwaddr: str | None = None
    mtu: int | None = None
    l2proxy: bool | None = None
    ipv4_addresses: tuple[IPv4Address, ...] = ()
    ipv4_gateway: str | None = None
    ipv6_addresses: tuple[IPAddress, ...] = ()
    ipv6_gateway: str | None = None
    script_up: str | None = None
    script_down: str | None = None
    veth_mode: str | None = None
    veth_pair: str | None = None
    veth_ipv4_routes: tuple[IPAddress, ...] = ()
    veth_ipv6_routes: tuple[IPAddress, ...] = ()
    veth_vlan_id: int | None = None
    veth_vlan_tagged_ids: tuple[int, ...] = ()
    veth_n_rxqueues: int | None = None
    veth_n_txqueues: int | None = None
    macvlan_mode: str | None = None
    ipvlan_mode: str | None = None
    ipvlan_isolation: str | None = None
    vlan_id: int | None = None

    def __repr__(self) -> str:
        return f"Network({self.index}, type={self.type}, link={self.link}, name={self.name})"


class CgroupSetting(Record):
    """One ``lxc.cgroup2.KEY = VALUE`` (or v1 ``lxc.cgroup.KEY``), with its location."""

    key: str
    value: str
    path: str
    line: int

    def __repr__(self) -> str:
        return f"CgroupSetting({self.key} = {self.value!r} at {self.path}:{self.line})"


class CgroupDir(Record):
    """``lxc.cgroup.dir`` (``path``) and ``lxc.cgroup.dir.{monitor,monitor.pivot,container,
    container.inner}``: paths relative to the cgroup LXC starts in."""

    path: str | None = None
    monitor: str | None = None
    monitor_pivot: str | None = None
    container: str | None = None
    container_inner: str | None = None


RLIM_INFINITY = -1


class Prlimit(Record):
    """``lxc.prlimit.NAME = SOFT[:HARD]``; :data:`RLIM_INFINITY` (-1, as Python's
    ``resource`` module) for "unlimited"."""

    soft: int
    hard: int

    def __repr__(self) -> str:
        return f"Prlimit({self.soft}:{self.hard})"


class Console(Record):
    """``lxc.console.*``: ``path`` (a device, or "none"), ``logfile``, ``size`` and
    ``buffer_size`` in bytes (LXC's rounding applied: at least a page, a power of two),
    ``rotate``."""

    path: str | None = None
    logfile: str | None = None
    size: int | None = None
    buffer_size: int | None = None
    rotate: bool | None = None


class Init(Record):
    """``lxc.init.*``: ``cmd`` as an argv tuple (split as LXC does, quotes group words),
    ``uid``, ``gid``, supplementary ``groups``, ``cwd``; ``notify`` is lxcsd's own
    ``lxcsd.init.notify`` (None: auto, True/False: forced)."""

    cmd: tuple[str, ...] | None = None
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    cwd: str | None = None
    notify: bool | None = None


class Signals(Record):
    """``lxc.signal.{halt,reboot,stop}`` as numbers (a value of 0 reads as None, as in LXC)."""

    halt: int | None = None
    reboot: int | None = None
    stop: int | None = None


class Start(Record):
    """``lxc.start.{auto,delay,order}``."""

    auto: bool | None = None
    delay: int | None = None
    order: int | None = None


class Seccomp(Record):
    """``lxc.seccomp.*``."""

    profile: str | None = None
    allow_nesting: bool | None = None
    notify_proxy: str | None = None
    notify_cookie: str | None = None


class AppArmor(Record):
    """``lxc.apparmor.*``; ``raw`` lines in order."""

    profile: str | None = None
    allow_incomplete: bool | None = None
    allow_nesting: bool | None = None
    raw: tuple[str, ...] = ()


class SELinux(Record):
    """``lxc.selinux.context`` and ``lxc.selinux.context.keyring``."""

    context: str | None = None
    context_keyring: str | None = None


class Namespaces(Record):
    """``lxc.namespace.*``: ``clone`` and ``keep`` as tuples of /proc/PID/ns names (None when
    unset: clone every namespace the config needs), ``share`` namespace name → pid, container
    name or path."""

    clone: tuple[str, ...] | None = None
    keep: tuple[str, ...] | None = None
    share: dict[str, str] = {}


class TimeOffsets(Record):
    """``lxc.time.offset.{boot,monotonic}`` in nanoseconds."""

    boot: int | None = None
    monotonic: int | None = None


class Log(Record):
    """``lxc.log.*``: ``level`` 0 (trace) .. 8 (fatal), ``file``, ``syslog`` facility."""

    level: int | None = None
    file: str | None = None
    syslog: str | None = None


# Every section of Container: attribute name -> class. The builder constructs a section only
# when one of its keys is set; otherwise the Container keeps the shared empty instance.
SECTIONS: dict[str, type[Record]] = {
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


class Container(Record):
    """A container's whole configuration, typed (see the module docstring for conventions).

    ``entries`` holds every applied line (includes expanded) with file and line, for
    diagnostics and ``lxcsd config get``. ``build_warnings`` are the builder's own warnings
    (a network's keys discarded by its later type line); ``lxcsd.config.build.warnings``
    adds those of single lines (keys lxcsd does not implement yet, legacy keys, ignored
    lines): computed when asked, since the generator and the helper never ask.
    """

    name: str
    config_path: str
    entries: tuple[Entry, ...] = ()
    build_warnings: tuple[ConfigError, ...] = ()
    arch: str | None = None
    uts_name: str | None = None
    rootfs: Rootfs = Rootfs()
    mounts: Mounts = Mounts()
    idmaps: tuple[IdMap, ...] = ()
    net: tuple[Network, ...] = ()
    cgroup2: tuple[CgroupSetting, ...] = ()
    cgroup_v1: tuple[CgroupSetting, ...] = ()
    cgroup_dir: CgroupDir = CgroupDir()
    cgroup_relative: bool | None = None
    caps_drop: tuple[str, ...] = ()
    caps_keep: tuple[str, ...] | None = None
    caps_cleared: bool = False
    no_new_privs: bool | None = None
    seccomp: Seccomp = Seccomp()
    apparmor: AppArmor = AppArmor()
    selinux: SELinux = SELinux()
    autodev: bool | None = None
    autodev_tmpfs_size: int | None = None
    tty_max: int | None = None
    tty_dir: str | None = None
    pty_max: int | None = None
    console: Console = Console()
    environment: tuple[tuple[str, str | None], ...] = ()
    environment_runtime: tuple[tuple[str, str | None], ...] = ()
    environment_hooks: tuple[tuple[str, str | None], ...] = ()
    init: Init = Init()
    execute_cmd: tuple[str, ...] | None = None
    signals: Signals = Signals()
    start: Start = Start()
    groups: tuple[str, ...] = ()
    hooks: dict[str, tuple[str, ...]] = {}
    hook_version: int | None = None
    sysctl: dict[str, str] = {}
    prlimit: dict[str, Prlimit] = {}
    proc: tuple[tuple[str, str], ...] = ()
    keyring_session: bool | None = None
    namespace: Namespaces = Namespaces()
    time_offset: TimeOffsets = TimeOffsets()
    monitor_unshare: bool | None = None
    monitor_signal_pdeath: int | None = None
    log: Log = Log()
    ephemeral: bool | None = None
    sched_core: bool | None = None

    def __repr__(self) -> str:
        return f"Container({self.name!r}, {self.config_path!r})"


def to_data(value: Any) -> Any:
    """Plain data (dicts, lists, str, int, bool, None) for a model object: for JSON output
    and for comparing models in tests. Entries and warnings are left out."""
    if isinstance(value, (tuple, list)):
        return [to_data(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_data(item) for key, item in value.items()}
    if not isinstance(value, Record):
        return value
    skip = ("entries", "build_warnings") if isinstance(value, Container) else ()
    return {name: to_data(getattr(value, name)) for name in value.__record_fields__
            if name not in skip}
