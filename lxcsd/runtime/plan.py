"""The start of one container as plain data: :class:`StartPlan`, what the helper executes.

``lxcsd.runtime.compiler.make_plan`` decides it from the config model (every refusal there,
with file:line); the helper then only executes it (``start``, ``child``): every mount,
hook command, prlimit, sysctl, capability set, id map and the compiled seccomp program is
in it, and nothing of the config model is. A plan is plain data (str, int, bytes, lists,
tuples, dicts, frozensets and the small records below), so it is written to a file by
``marshal`` (``lxcsd.runtime.planfile``) when the generator compiles it at daemon-reload,
and read back by the helper without importing any of ``lxcsd.config``.

Hot path: this module imports only ``os`` and ``lxcsd.errors``.
"""

from __future__ import annotations

import os

from lxcsd.runtime.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from lxcsd.errors import ConfigError
    from lxcsd.net.spec import NetPlan
    from lxcsd.runtime.guest import Guest
    from lxcsd.runtime.hooks import HookSet
    from lxcsd.runtime.seccomp_policy import SeccompPolicy

# lxcsd.runtime.planfile.FORMAT is bumped whenever a field below changes meaning: a plan
# file of another format is ignored (and compiled again) rather than misread.


class RootfsPlan(Record):
    """lxc.rootfs.*: ``kind`` dir or overlay, ``path`` (dir) or the overlay's ``lower``
    and ``upper``; lxc.rootfs.options as mount flags; ``idmapped``: idmap=container."""

    __slots__ = ("kind", "spec", "path", "lower", "upper", "flags", "clear_flags",
                 "propagation", "data", "idmapped")
    kind: str
    spec: str
    path: str
    lower: tuple[str, ...]
    upper: str
    flags: int
    clear_flags: int
    propagation: int
    data: str
    idmapped: bool


class MountOp(Record):
    """One mount of lxc.mount.fstab, lxc.mount.entry or the nesting helpers, in order:
    ``target`` inside the root, ``source`` a host path (inside the root with
    ``relative``), the options as ``lxcsd.runtime.mounts.mount_entry`` takes them;
    ``what`` names it in errors ("lxc.mount.entry = LINE")."""

    __slots__ = ("what", "source", "target", "fstype", "flags", "clear_flags", "propagation",
                 "data", "bind", "recursive", "create", "optional", "relative")
    what: str
    source: str
    target: str
    fstype: str
    flags: int
    clear_flags: int
    propagation: int
    data: str
    bind: bool
    recursive: bool
    create: str | None
    optional: bool
    relative: bool


class CgroupValue(Record):
    """One cgroup2 file to write in the payload, with the config line that asked for it."""

    __slots__ = ("key", "value", "path", "line")
    key: str
    value: str
    path: str
    line: int

    def where(self) -> str:
        return f"{self.path}:{self.line}: lxc.cgroup2.{self.key}"


# StartPlan fields holding records, and how each is stored: one record, or a list of them
# (hooks and networks: their own records, whose modules are imported only when present).
_RECORDS: dict[str, tuple[str, type[Record]]] = {
    "rootfs": ("one", RootfsPlan), "mounts": ("list", MountOp),
    "cgroup_settings": ("list", CgroupValue),
}
# Fields that exist only while a plan is made or run, never in a plan file.
_TRANSIENT = ("seccomp_policy", "warnings", "guest", "env")


class StartPlan:
    """The decided start of one container (built once, read by H, C1 and C2)."""

    __slots__ = (
        # who
        "name", "instance", "unit", "config_path", "lxcpath",
        # namespaces and ids
        "clone_flags", "share", "userns", "uids", "gids", "root_uid", "root_gid",
        "devpts_gid", "time_offsets", "uts_name", "personality", "arch",
        # the root
        "rootfs", "rootfs_mount", "mounts", "auto_proc", "auto_sys", "auto_cgroup",
        "auto_cgroup_mode", "autodev", "autodev_size", "optional_devices", "console",
        "console_device", "tty_max", "pty_max", "tty_dir", "net_kind", "keyring_session",
        # init
        "argv", "env_items", "env", "exec_key", "cwd", "init_uid", "init_gid", "init_groups",
        "keep_caps", "no_new_privs", "notify",
        # security
        "seccomp_profile", "seccomp_bpf", "seccomp_nesting", "seccomp_policy", "labels",
        "apparmor",
        # process settings
        "sysctls", "prlimits", "procs", "hooks",
        # cgroups
        "cgroup_settings", "controllers", "monitor_dir", "payload_dir", "inner_dir",
        # what the start hands on: console service, LXC's tools, state file, networks
        "console_options", "lxc_items", "state_fields", "networks",
        # how systemd stops it (the unit's drop-in says the same: lxcsd.runtime.compiler._stop),
        # and whether the helper stays init's subreaper for that
        "stop", "subreaper",
        # messages
        "warnings", "notes",
        # learnt by the helper at start (lxcsd.runtime.guest.prepare)
        "guest",
    )

    name: str
    instance: str
    unit: str
    config_path: str
    lxcpath: str
    clone_flags: int
    share: dict[str, str]
    userns: bool
    uids: list[tuple[int, int, int]]
    gids: list[tuple[int, int, int]]
    root_uid: int
    root_gid: int
    devpts_gid: int | None
    time_offsets: str
    uts_name: str | None
    personality: int | None
    arch: str | None
    rootfs: RootfsPlan
    rootfs_mount: str
    mounts: list[MountOp]
    auto_proc: str | None
    auto_sys: str | None
    auto_cgroup: str | None
    auto_cgroup_mode: str | None
    autodev: bool
    autodev_size: int
    optional_devices: tuple[str, ...]
    console: bool
    console_device: str | None
    tty_max: int
    pty_max: int
    tty_dir: str | None
    net_kind: str
    keyring_session: bool
    argv: list[str]
    # lxc.environment and lxc.environment.runtime: (NAME, VALUE), or (NAME, None) for "the
    # helper's own value", resolved at each start into env (init_env).
    env_items: list[tuple[str, str | None]]
    env: dict[str, str]
    exec_key: str
    cwd: str
    init_uid: int
    init_gid: int
    init_groups: list[int]
    keep_caps: frozenset[int]
    no_new_privs: bool
    notify: bool | None
    seccomp_profile: str | None
    seccomp_bpf: bytes | None
    seccomp_nesting: bool
    seccomp_policy: SeccompPolicy | None
    labels: list[tuple[str, str, str]]
    # lxc.apparmor.profile = generated: (profile name, policy namespace or "", profile text)
    apparmor: tuple[str, str, str] | None
    sysctls: list[tuple[str, str, str]]
    prlimits: list[tuple[str, int, int, int, str]]
    procs: list[tuple[str, str, str]]
    hooks: HookSet | None
    cgroup_settings: list[CgroupValue]
    controllers: list[str]
    monitor_dir: str
    payload_dir: str
    inner_dir: str | None
    console_options: dict[str, str]
    lxc_items: dict[str, str]
    state_fields: dict[str, str | int]
    networks: NetPlan | None
    stop: dict[str, int]
    subreaper: bool
    warnings: list[ConfigError]
    notes: list[str]
    # What the helper learns from the host and the root file system before forking
    # (lxcsd.runtime.guest.prepare): the container's UUID, the host's os-release, whether
    # init gets a notify socket. None until then (a plan only checked, not started).
    guest: Guest | None

    def __init__(self, name: str) -> None:
        self.name = name
        # Read by later steps when lxcsd check goes on past a refusal in an earlier one.
        self.rootfs_mount = ""
        self.clone_flags = 0
        self.share = {}
        self.net_kind = "empty"
        self.instance = name
        self.stop = {}
        self.subreaper = True
        self.warnings = []
        self.notes = []
        self.labels = []
        self.apparmor = None
        self.mounts = []
        self.seccomp_policy = None
        self.seccomp_bpf = None
        self.cgroup_settings = []
        self.controllers = []
        self.hooks = None
        self.networks = None
        self.guest = None

    @property
    def has_netlink(self) -> bool:
        """lxcsd.net has work (devices, or script.up/down hooks)."""
        return self.net_kind == "netlink"

    # -- plain data ----------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """Every field but the transient ones, as marshal-able data."""
        data: dict[str, Any] = {}
        for name in self.__slots__:
            if name in _TRANSIENT:
                continue
            value = getattr(self, name)
            kind = _RECORDS.get(name)
            if kind is not None:
                value = value.dump() if kind[0] == "one" else [v.dump() for v in value]
            elif name in ("hooks", "networks") and value is not None:
                value = value.dump()
            data[name] = value
        return data

    @classmethod
    def load(cls, data: Mapping[str, Any], environ: Mapping[str, str] | None = None
             ) -> StartPlan:
        """A plan from ``dump()``'s data; init's environment resolved from ``environ``
        (this process's by default). KeyError for a field the data lacks."""
        plan = cls(data["name"])
        for name in cls.__slots__:
            if name in _TRANSIENT:
                continue
            value = data[name]
            kind = _RECORDS.get(name)
            if kind is not None:
                record = kind[1]
                value = record.load(value) if kind[0] == "one" else \
                    [record.load(v) for v in value]
            elif name == "hooks" and value is not None:
                from lxcsd.runtime.hooks import HookSet

                value = HookSet.load(value)
            elif name == "networks" and value is not None:
                from lxcsd.net.spec import NetPlan

                value = NetPlan.load(value)
            setattr(plan, name, value)
        plan.env = init_env(plan.env_items, plan.tty_max, plan.tty_dir,
                            os.environ if environ is None else environ)
        return plan


def init_env(items: list[tuple[str, str | None]], tty_max: int, tty_dir: str | None,
             environ: Mapping[str, str]) -> dict[str, str]:
    """LXC's: a clean environment, container=lxc, container_ttys for systemd, then
    lxc.environment and lxc.environment.runtime (NAME alone passes the helper's value)."""
    env = {"container": "lxc"}
    if tty_max:
        prefix = f"{tty_dir}/" if tty_dir else ""
        env["container_ttys"] = " ".join(f"{prefix}tty{n}" for n in range(1, tty_max + 1))
    for key, value in items:
        if value is None:
            if key in environ:
                env[key] = environ[key]
        else:
            env[key] = value
    return env
