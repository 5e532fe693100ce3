"""What a container's start needs, decided from its config before anything is changed.

Pure (no system calls, no files written): ``make_plan(container)`` raises ConfigError naming
the key, with file:line where the model keeps it, for whatever the runtime cannot do, so a
bad config fails before a cgroup or a process exists. The start path (``start``, ``child``)
then only executes the plan.
"""

from __future__ import annotations

import os

from lxcsd import sys as _sys
from lxcsd.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.config.model import CgroupSetting, Container, Rootfs

NS_FLAGS = {
    "user": _sys.CLONE_NEWUSER, "mnt": _sys.CLONE_NEWNS, "pid": _sys.CLONE_NEWPID,
    "uts": _sys.CLONE_NEWUTS, "ipc": _sys.CLONE_NEWIPC, "net": _sys.CLONE_NEWNET,
    "cgroup": _sys.CLONE_NEWCGROUP, "time": _sys.CLONE_NEWTIME,
}
# The capabilities a container keeps unless its config says otherwise: systemd-nspawn's
# default set (src/nspawn/nspawn.c, arg_caps_retain), plus net_admin when the container has
# a network namespace of its own (nspawn adds it for a private network). Everything else is
# dropped, capabilities of newer kernels included: this covers LXC's common.conf drops
# (mac_admin mac_override sys_time sys_module sys_rawio) and what reaches the host's kernel
# from a privileged container (syslog: the kernel log; bpf, perfmon: system-wide programs
# and perf events; sys_pacct, wake_alarm, block_suspend, audit_read, ipc_lock,
# checkpoint_restore). lxc.cap.drop lines add to the drops (as after LXC's
# lxc.include = common.conf); an empty lxc.cap.drop forgets them, as in liblxc;
# lxc.cap.keep lists the whole set instead. docs/config-keys.md states the same list
# (lxc.cap.drop's default; a unit test keeps the two in step).
DEFAULT_CAP_RETAIN = (
    "audit_control", "audit_write", "chown", "dac_override", "dac_read_search", "fowner",
    "fsetid", "ipc_owner", "kill", "lease", "linux_immutable", "mknod", "net_bind_service",
    "net_broadcast", "net_raw", "setfcap", "setgid", "setpcap", "setuid", "sys_admin",
    "sys_boot", "sys_chroot", "sys_nice", "sys_ptrace", "sys_resource", "sys_tty_config",
)
PRIVATE_NET_CAPS = ("net_admin",)
DEFAULT_INIT = ("/sbin/init",)
DEFAULT_SECCOMP = "common.seccomp"
# Controllers whose files need no enabling: they exist in every cgroup2 directory.
CORE_CONTROLLERS = ("cgroup",)
TTY_GID = 5


class Plan:
    """The decided start of one container (built once, read by H, C1 and C2)."""

    __slots__ = ("name", "container", "clone_flags", "share", "userns", "uids", "gids",
                 "root_uid", "root_gid", "rootfs", "rootfs_mount", "argv", "env", "keep_caps",
                 "seccomp_profile", "cgroup_settings", "controllers", "monitor_dir",
                 "payload_dir", "inner_dir", "console", "console_device", "tty_max",
                 "pty_max", "net_kind", "devpts_gid", "uts_name", "warnings",
                 "personality", "time_offsets")

    clone_flags: int
    share: dict[str, str]
    userns: bool
    uids: list[tuple[int, int, int]]
    gids: list[tuple[int, int, int]]
    root_uid: int
    root_gid: int
    rootfs: Rootfs
    rootfs_mount: str
    argv: list[str]
    env: dict[str, str]
    keep_caps: frozenset[int]
    seccomp_profile: str | None
    cgroup_settings: list[CgroupSetting]
    controllers: list[str]
    monitor_dir: str
    payload_dir: str
    inner_dir: str | None
    console: bool
    console_device: str | None
    tty_max: int
    pty_max: int
    net_kind: str
    devpts_gid: int | None
    uts_name: str | None
    warnings: list[str]
    personality: int | None
    time_offsets: str

    def __init__(self, name: str, container: Container) -> None:
        self.name = name
        self.container = container


def key_error(container: Container, key: str, message: str, hint: str = "") -> ConfigError:
    """A ConfigError at the last line that set key (or its prefix), else at the file."""
    path, line = container.config_path, 0
    for entry in container.entries:
        if entry.canonical == key or entry.canonical.startswith(key + "."):
            path, line = entry.path, entry.line
    return ConfigError(message, path=path, line=line, key=key, hint=hint)


def make_plan(name: str, container: Container, environ: dict[str, str] | None = None,
              datadir: str = "") -> Plan:
    plan = Plan(name, container)
    plan.uts_name = container.uts_name
    _rootfs(plan, container)
    _idmap(plan, container)
    _namespaces(plan, container)
    _cgroups(plan, container)
    plan.argv = init_argv(container)
    plan.env = init_env(container, os.environ if environ is None else environ)
    plan.keep_caps = keep_caps(container, private_net=bool(
        plan.clone_flags & _sys.CLONE_NEWNET or "net" in plan.share))
    plan.seccomp_profile = seccomp_profile(container, datadir)
    # lxc.console.path: unset → a pty of the container's devpts, handed to lxcsd-console;
    # "none" → no console (init's stdio is /dev/null); a host device → bound as is.
    path = container.console.path
    plan.console = path is None
    plan.console_device = path if path not in (None, "none") else None
    plan.tty_max = container.tty_max or 0
    plan.pty_max = container.pty_max or 0
    plan.warnings = []
    plan.personality = personality(container)
    if container.mounts.auto.shmounts:
        plan.warnings.append("lxc.mount.auto shmounts: is not supported, ignored")
    return plan


def _rootfs(plan: Plan, c: Container) -> None:
    rootfs = c.rootfs
    if not rootfs.spec:
        raise key_error(c, "lxc.rootfs.path", "no root file system configured",
                        "set lxc.rootfs.path = /var/lib/lxc/NAME/rootfs (lxcsd never runs a "
                        "container on the host's root)")
    if rootfs.kind not in ("dir", "overlay"):
        raise key_error(c, "lxc.rootfs.path", f"storage type {rootfs.kind!r} is not supported",
                        "use a directory or overlay:LOWER:UPPER")
    if rootfs.kind == "dir" and not os.path.isdir(rootfs.path or ""):
        raise key_error(c, "lxc.rootfs.path", f"{rootfs.path} is not a directory")
    plan.rootfs = rootfs
    mount = rootfs.mount or (rootfs.path if rootfs.kind == "dir" else None)
    if mount is None:
        raise key_error(c, "lxc.rootfs.mount", "an overlay rootfs needs lxc.rootfs.mount",
                        "set lxc.rootfs.mount to an empty directory")
    plan.rootfs_mount = mount


def _idmap(plan: Plan, c: Container) -> None:
    plan.uids = [(m.ns_id, m.host_id, m.count) for m in c.idmaps if m.kind == "u"]
    plan.gids = [(m.ns_id, m.host_id, m.count) for m in c.idmaps if m.kind == "g"]
    plan.userns = bool(c.idmaps)
    plan.root_uid = plan.root_gid = 0
    plan.devpts_gid = TTY_GID
    if not plan.userns:
        return
    from lxcsd.runtime import idmap

    try:
        idmap.validate(plan.uids, "u")
        idmap.validate(plan.gids, "g")
    except Exception as exc:
        raise key_error(c, "lxc.idmap", str(exc)) from None
    root_uid = idmap.host_id(plan.uids, 0)
    root_gid = idmap.host_id(plan.gids, 0)
    if root_uid is None or root_gid is None:
        raise key_error(c, "lxc.idmap", "the container's root (uid and gid 0) is not mapped",
                        "add e.g. u 0 100000 65536 and g 0 100000 65536")
    plan.root_uid, plan.root_gid = root_uid, root_gid
    if idmap.host_id(plan.gids, TTY_GID) is None:
        plan.devpts_gid = None


def _namespaces(plan: Plan, c: Container) -> None:
    nets = [n for n in c.net if n.type is not None]
    # "netlink": lxcsd.net.setup has work (devices, or script.up/down hooks, which also run
    # for empty networks); "empty": loopback only, brought up inside without lxcsd.net.
    hooks = any(n.script_up or n.script_down for n in nets)
    plan.net_kind = "none" if nets and all(n.type == "none" for n in nets) else \
        ("empty" if all(n.type in (None, "empty") for n in nets) and not hooks else "netlink")
    names = ["mnt", "pid", "uts", "ipc", "cgroup"] + ([] if plan.net_kind == "none" else ["net"])
    if c.namespace.clone is not None:
        names = [n for n in c.namespace.clone if n != "user"]
    for name in c.namespace.keep or ():
        if name in ("mnt", "pid"):
            raise key_error(c, "lxc.namespace.keep", f"keeping the host's {name} namespace is "
                            "not supported", "a system container needs its own mnt and pid")
        if name in names:
            names.remove(name)
    plan.share = dict(c.namespace.share)
    for name in plan.share:
        if name in ("mnt", "pid", "user"):
            raise key_error(c, f"lxc.namespace.share.{name}", f"sharing the {name} namespace "
                            "is not supported")
        if name in names:
            names.remove(name)
    for name in ("mnt", "pid"):
        if name not in names:
            names.append(name)
    t = c.time_offset
    plan.time_offsets = time_offsets(t.boot, t.monotonic)
    if plan.time_offsets and "time" not in names:
        names.append("time")  # liblxc: offsets imply a new time namespace
    if plan.net_kind != "none" and "net" not in names and "net" not in plan.share:
        plan.net_kind = "host"
    if c.mounts.auto.cgroup and "cgroup" not in names and "cgroup" not in plan.share:
        # liblxc refuses too: without a cgroup namespace of the container's own, a cgroup2
        # mount shows the host's whole tree, writable by a privileged container.
        raise key_error(c, "lxc.mount.auto", f"{c.mounts.auto.cgroup}: the container "
                        "would see the host's whole cgroup tree (it has no cgroup "
                        "namespace of its own)", "drop the cgroup item or the cgroup "
                        "entry of lxc.namespace.keep/lxc.namespace.clone")
    plan.clone_flags = 0
    for name in names:
        plan.clone_flags |= NS_FLAGS[name]


def _cgroups(plan: Plan, c: Container) -> None:
    d = c.cgroup_dir
    base = d.path + "/" if d.path else ""
    plan.monitor_dir = d.monitor or f"{base}lxc.monitor.{plan.name}"
    plan.payload_dir = d.container or f"{base}lxc.payload.{plan.name}"
    # lxc.cgroup.dir.container.inner: init lives (and its cgroup namespace is rooted) one
    # level below the payload, so the container cannot change the limits set on it.
    plan.inner_dir = d.container_inner
    for setting in c.cgroup_v1:
        if not setting.key.startswith("devices."):
            raise ConfigError(f"cgroup v1 key lxc.cgroup.{setting.key} on a cgroup2 host",
                              path=setting.path, line=setting.line,
                              key=f"lxc.cgroup.{setting.key}",
                              hint=f"write lxc.cgroup2.{setting.key} with its cgroup2 name "
                              "and value (e.g. memory.max, pids.max)")
    # devices.allow/deny have no cgroup2 file: the generator turns them into the unit's
    # DeviceAllow= (lxcsd.generator.devices), whose device program covers the payload.
    plan.cgroup_settings = [s for s in c.cgroup2 if controller(s) != "devices"]
    plan.controllers = list(dict.fromkeys(controller(s) for s in plan.cgroup_settings
                                          if controller(s) not in CORE_CONTROLLERS))


def controller(setting: CgroupSetting) -> str:
    return setting.key.partition(".")[0]


def time_offsets(boot: int | None, monotonic: int | None) -> str:
    """/proc/PID/timens_offsets text for lxc.time.offset.* (nanoseconds), "" for none."""
    lines = []
    for clock, value in (("monotonic", monotonic), ("boottime", boot)):
        if value:
            secs, nsecs = divmod(value, 1_000_000_000)
            lines.append(f"{clock} {secs} {nsecs}\n")
    return "".join(lines)


def personality(c: Container) -> int | None:
    """lxc.arch: a 32-bit name selects PER_LINUX32 (liblxc's lxc_config_parse_arch);
    a 64-bit name or none leaves the helper's own."""
    from lxcsd.config.values import ARCHES_32

    return _sys.PER_LINUX32 if c.arch in ARCHES_32 else None


def init_argv(c: Container) -> list[str]:
    argv = c.execute_cmd or c.init.cmd or DEFAULT_INIT
    return list(argv)


def init_env(c: Container, environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """LXC's: a clean environment, container=lxc, container_ttys for systemd, then
    lxc.environment and lxc.environment.runtime (NAME alone passes the host's value)."""
    env = {"container": "lxc"}
    if c.tty_max:
        prefix = f"{c.tty_dir}/" if c.tty_dir else ""
        env["container_ttys"] = " ".join(f"{prefix}tty{n}" for n in range(1, c.tty_max + 1))
    for key, value in tuple(c.environment) + tuple(c.environment_runtime):
        if value is None:
            if key in environ:
                env[key] = environ[key]
        else:
            env[key] = value
    return env


def keep_caps(c: Container, *, private_net: bool = True) -> frozenset[int]:
    """The capability set of the container's root: lxc.cap.keep when set, else the
    default set (DEFAULT_CAP_RETAIN) minus lxc.cap.drop. private_net: the container has a
    network namespace other than the host's (net_admin is kept then)."""
    from lxcsd.runtime import caps

    key = "lxc.cap.keep" if c.caps_keep is not None else "lxc.cap.drop"
    last = caps.last_cap()
    try:
        if c.caps_keep is not None:
            return caps.keep_set(keep=c.caps_keep, last=last)
        kept = caps.keep_set(c.caps_drop, last=last)
    except Exception as exc:
        raise key_error(c, key, str(exc)) from None
    if c.caps_cleared:
        return kept
    return kept & default_caps(private_net, last)


def default_caps(private_net: bool, last: int) -> frozenset[int]:
    """DEFAULT_CAP_RETAIN (+ net_admin with a private network) as numbers the kernel knows."""
    from lxcsd.runtime import caps

    names = DEFAULT_CAP_RETAIN + (PRIVATE_NET_CAPS if private_net else ())
    return frozenset(n for n in (caps.NUMBERS[name] for name in names) if n <= last)


def seccomp_profile(c: Container, datadir: str) -> str | None:
    """lxc.seccomp.profile; when unset, the shipped default denylist (LXC's templates
    include common.conf, which sets common.seccomp); an empty value disables seccomp."""
    profile = c.seccomp.profile
    if profile is None:
        if not datadir:
            from lxcsd import paths

            datadir = paths.datadir()
        return os.path.join(datadir, DEFAULT_SECCOMP)
    return profile or None
