"""What a container's start needs, decided from its config before anything is changed.

``make_plan(name, container)`` is the one validation of the start path: the helper runs it
before a cgroup or process exists and fails on the first ConfigError (file:line and key);
``lxcsd check`` runs the same function with ``errors=[]`` and reports every refusal. It
changes nothing on the host; it reads what it must know about it (``Host``: the cgroup2
controllers, AppArmor, the rootfs, policy files, /etc/subuid), so that whatever check
accepts, the start accepts too. The start path (``start``, ``child``) then only executes
the plan; what can still fail there is the system (a mount, a device), not the config.
"""

from __future__ import annotations

import os

from lxcsd import linux
from lxcsd.errors import ConfigError, LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from lxcsd.config.model import CgroupSetting, Container, MountEntry, Rootfs
    from lxcsd.runtime.apparmor_profile import Features
    from lxcsd.runtime.guest import Guest
    from lxcsd.runtime.lsm import Host as LsmHost
    from lxcsd.runtime.seccomp_policy import SeccompPolicy

NS_FLAGS = {
    "user": linux.CLONE_NEWUSER, "mnt": linux.CLONE_NEWNS, "pid": linux.CLONE_NEWPID,
    "uts": linux.CLONE_NEWUTS, "ipc": linux.CLONE_NEWIPC, "net": linux.CLONE_NEWNET,
    "cgroup": linux.CLONE_NEWCGROUP, "time": linux.CLONE_NEWTIME,
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
# liblxc's nesting helpers (conf.c): with lxc.apparmor.allow_nesting, proc and sysfs for a
# nested container's own proc/sys mounts; the generated profile denies them to the rest.
NESTING_MOUNTS = ("proc dev/.lxc/proc proc create=dir,optional 0 0",
                  "sys dev/.lxc/sys sysfs create=dir,optional 0 0")


class Plan:
    """The decided start of one container (built once, read by H, C1 and C2)."""

    __slots__ = ("name", "container", "clone_flags", "share", "userns", "uids", "gids",
                 "root_uid", "root_gid", "rootfs", "rootfs_mount", "argv", "env", "keep_caps",
                 "seccomp_profile", "seccomp_policy", "cgroup_settings", "controllers",
                 "monitor_dir", "payload_dir", "inner_dir", "console", "console_device",
                 "tty_max", "pty_max", "net_kind", "devpts_gid", "uts_name", "warnings",
                 "personality", "time_offsets", "labels", "apparmor", "nesting_mounts",
                 "optional_devices", "guest")

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
    seccomp_policy: SeccompPolicy | None
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
    warnings: list[ConfigError]
    personality: int | None
    time_offsets: str
    labels: list[tuple[str, str, str]]
    apparmor: Features | None
    nesting_mounts: tuple[MountEntry, ...]
    optional_devices: tuple[str, ...]
    # What the helper learns from the host and the root file system before forking
    # (lxcsd.runtime.guest.prepare): the container's UUID, the host's os-release, whether
    # init gets a notify socket. None until then (a plan only checked, not started).
    guest: Guest | None

    def __init__(self, name: str, container: Container) -> None:
        self.name = name
        self.container = container
        self.warnings = []
        self.labels = []
        self.apparmor = None
        self.nesting_mounts = ()
        self.seccomp_policy = None
        self.cgroup_settings = []
        self.controllers = []
        self.guest = None


class Host:
    """What the plan reads from the host: the cgroup2 controllers that exist (None: read
    them when needed) and the security modules (None: read them). Tests pass their own."""

    __slots__ = ("controllers", "lsm")

    def __init__(self, *, controllers: set[str] | None = None,
                 lsm: LsmHost | None = None) -> None:
        self.controllers = controllers
        self.lsm = lsm


def key_error(container: Container, key: str, message: str, hint: str = "") -> ConfigError:
    """A ConfigError at the last line that set key (or its prefix), else at the file."""
    path, line = container.config_path, 0
    for entry in container.entries:
        if entry.canonical == key or entry.canonical.startswith(key + "."):
            path, line = entry.path, entry.line
    return ConfigError(message, path=path, line=line, key=key, hint=hint)


def make_plan(name: str, container: Container, environ: Mapping[str, str] | None = None,
              datadir: str = "", *, host: Host | None = None,
              errors: list[ConfigError] | None = None) -> Plan:
    """The plan; the first refusal raises ConfigError, or with ``errors`` every refusal is
    appended there (a plan with refusals is for reporting only, never for a start)."""
    c = container
    plan = Plan(name, c)
    plan.uts_name = c.uts_name
    host = host or Host()
    env = os.environ if environ is None else environ
    steps: tuple[Callable[[], object], ...] = (
        lambda: _rootfs(plan, c),
        lambda: _init(plan, c, env),
        lambda: _idmap(plan, c),
        lambda: _namespaces(plan, c),
        lambda: _cgroups(plan, c, host),
        lambda: _caps(plan, c),
        lambda: _seccomp(plan, c, datadir),
        lambda: _security(plan, c, host),
        lambda: _terminals(plan, c),
        lambda: _devices(plan, c),
    )
    for step in steps:
        try:
            step()
        except ConfigError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return plan


def _terminals(plan: Plan, c: Container) -> None:
    # lxc.console.path: unset → a pty of the container's devpts, handed to lxcsd-console;
    # "none" → no console (init's stdio is /dev/null); a host device → bound as is.
    path = c.console.path
    plan.console = path is None
    plan.console_device = path if path not in (None, "none") else None
    if plan.console_device and not os.path.exists(plan.console_device):
        raise key_error(c, "lxc.console.path", f"{plan.console_device} does not exist")
    plan.tty_max = c.tty_max or 0
    plan.pty_max = c.pty_max or 0
    plan.personality = personality(c)
    if c.mounts.auto.shmounts:
        plan.warnings.append(key_error(c, "lxc.mount.auto", "shmounts: is not supported, "
                                       "ignored"))


def _devices(plan: Plan, c: Container) -> None:
    plan.optional_devices = optional_devices(c)


def _init(plan: Plan, c: Container, environ: Mapping[str, str]) -> None:
    plan.argv = init_argv(c)
    plan.env = init_env(c, environ)
    program = find_in_root(plan, c)
    if program is not None and not program:
        if not (c.execute_cmd or c.init.cmd):  # the default init: the rootfs lacks it
            raise key_error(c, "lxc.rootfs.path", f"{plan.rootfs.path} has no executable "
                            f"{plan.argv[0]} (the default lxc.init.cmd)",
                            "set lxc.init.cmd, or fix the root file system")
        key = "lxc.execute.cmd" if c.execute_cmd else "lxc.init.cmd"
        raise key_error(c, key, f"{plan.argv[0]} is not an executable file in the "
                        f"container's root ({plan.rootfs.path})")


# Hooks that run before init's exec and may put init in place (a pre-start hook mounting
# an image on the rootfs directory, a mount hook binding /usr).
ROOT_HOOKS = ("pre-start", "pre-mount", "mount", "autodev", "start")


def find_in_root(plan: Plan, c: Container) -> str | None:
    """Init's program inside a directory rootfs ("" when missing), None when the config
    may bring it in by a mount or a hook (an application container binds the host's /usr)
    or the root is not a plain directory."""
    rootfs = getattr(plan, "rootfs", None)
    if rootfs is None or rootfs.kind != "dir" or c.mounts.entries or c.mounts.fstab or \
            any(c.hooks.get(hook) for hook in ROOT_HOOKS):
        return None
    from lxcsd.runtime import safepath
    from lxcsd.runtime.execpath import DEFAULT_PATH  # the search exec_init does at the start

    name = plan.argv[0]
    dirs = [""] if "/" in name else plan.env.get("PATH", DEFAULT_PATH).split(":")
    root = os.open(rootfs.path or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for directory in dirs:
            path = os.path.join(directory or "/", name)
            try:
                fd = safepath.resolve(root, path)
            except OSError:
                continue
            mode = os.fstat(fd).st_mode
            os.close(fd)
            if mode & 0o170000 == 0o100000 and mode & 0o111:
                return path
    finally:
        os.close(root)
    return ""


def _caps(plan: Plan, c: Container) -> None:
    # net_admin only with a network namespace of the container's own: known once
    # _namespaces succeeded (after a refusal there, check has nothing more to say here).
    flags = getattr(plan, "clone_flags", None)
    if flags is None:
        return
    plan.keep_caps = keep_caps(c, private_net=bool(
        flags & linux.CLONE_NEWNET or "net" in plan.share))


def _seccomp(plan: Plan, c: Container, datadir: str) -> None:
    """The policy is read and parsed here (file:line errors for check); C2 compiles it."""
    plan.seccomp_profile = seccomp_profile(c, datadir)
    if not plan.seccomp_profile:
        return
    from lxcsd.runtime import seccomp_policy

    try:
        with open(plan.seccomp_profile, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as exc:
        raise key_error(c, "lxc.seccomp.profile", f"cannot read {plan.seccomp_profile}: "
                        f"{exc.strerror}") from None
    policy = seccomp_policy.parse(text, plan.seccomp_profile)  # errors: the policy's file:line
    if seccomp_policy.wants_notify(policy):
        raise key_error(c, "lxc.seccomp.profile", f"{plan.seccomp_profile}: seccomp notify "
                        "actions are not supported yet")
    plan.seccomp_policy = policy


def _security(plan: Plan, c: Container, host: Host) -> None:
    """lxc.apparmor.* and lxc.selinux.context (lxcsd.runtime.lsm)."""
    if not (c.apparmor.profile or c.selinux.context):
        return
    from lxcsd.runtime import lsm

    facts = host.lsm if host.lsm is not None else lsm.host_facts(c)
    try:
        decision = lsm.decide(c, plan.name, facts)
    except lsm.LabelError as exc:
        raise key_error(c, exc.key, exc.message, exc.hint) from None
    plan.labels = decision.labels
    plan.apparmor = decision.generate
    plan.warnings += [key_error(c, key, message) for key, message in decision.warnings]
    if decision.generate is not None and c.apparmor.allow_nesting:
        from lxcsd.config.values import parse_mount_entry

        plan.nesting_mounts = tuple(parse_mount_entry(line) for line in NESTING_MOUNTS)


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
    for lower in rootfs.lower if rootfs.kind == "overlay" else ():
        if not os.path.isdir(lower):
            raise key_error(c, "lxc.rootfs.path", f"overlay lower directory {lower} is not a "
                            "directory")
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
    _delegated(plan, c)


def _delegated(plan: Plan, c: Container) -> None:
    """The host ids must be delegated to the starting user in /etc/subuid and /etc/subgid
    (or be its own id), as newuidmap would require."""
    from lxcsd.runtime import idmap

    uid, gid = os.getuid(), os.getgid()
    user = idmap.user_name(uid)
    for kind, ranges, own in (("u", plan.uids, uid), ("g", plan.gids, gid)):
        try:
            idmap.check_delegated(ranges, kind, user=user, uid=uid, own_id=own,
                                  allow_own_id=True)
        except LxcsdError as exc:
            raise key_error(c, "lxc.idmap", exc.message, exc.hint) from None


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


def _cgroups(plan: Plan, c: Container, host: Host) -> None:
    d = c.cgroup_dir
    base = d.path + "/" if d.path else ""
    plan.monitor_dir = d.monitor or f"{base}lxc.monitor.{plan.name}"
    plan.payload_dir = d.container or f"{base}lxc.payload.{plan.name}"
    # lxc.cgroup.dir.container.inner: init lives (and its cgroup namespace is rooted) one
    # level below the payload, so the container cannot change the limits set on it.
    plan.inner_dir = d.container_inner
    from lxcsd.config.cgroups import translate_cgroup_v1

    pairs, errors = translate_cgroup_v1(c.cgroup_v1)
    if errors:
        raise errors[0]
    # devices.allow/deny have no cgroup2 file: the generator turns them into the unit's
    # DeviceAllow=, whose device program covers the payload. A lxc.cgroup2 line wins over
    # a translated v1 one for the same file.
    v2 = [s for s in c.cgroup2 if controller(s) != "devices"]
    own = {s.key for s in v2}
    translated: dict[str, CgroupSetting] = {}
    for setting, warning in pairs:
        if setting.key in own:
            warning.message = f"cgroup v1 key ignored: lxc.cgroup2.{setting.key} is set"
            warning.hint = ""
        else:
            translated.setdefault(f"{setting.key}={setting.value}", setting)
        plan.warnings.append(warning)
    plan.cgroup_settings = list(translated.values()) + v2
    plan.controllers = list(dict.fromkeys(controller(s) for s in plan.cgroup_settings
                                          if controller(s) not in CORE_CONTROLLERS))
    _controllers_available(plan, c, host)


def _controllers_available(plan: Plan, c: Container, host: Host) -> None:
    """A limit the host cannot apply fails the start (LXC: "Failed to set memory.max"),
    never a silently unlimited container."""
    if not plan.controllers:
        return
    available = host.controllers if host.controllers is not None else host_controllers()
    for name in plan.controllers:
        if name not in available:
            setting = next(s for s in plan.cgroup_settings if controller(s) == name)
            raise ConfigError(f"the cgroup2 controller {name!r} is not available on this "
                              f"host (it has: {' '.join(sorted(available)) or 'none'})",
                              path=setting.path, line=setting.line,
                              key=_written_key(c, setting),
                              hint="on a hybrid host the controller is bound to cgroup v1; "
                              "boot with systemd.unified_cgroup_hierarchy=1, or remove the "
                              "limit")


def _written_key(c: Container, setting: CgroupSetting) -> str:
    """The key as the config wrote it: lxc.cgroup2.FILE, or the v1 key it came from."""
    for v1 in c.cgroup_v1:
        if (v1.path, v1.line) == (setting.path, setting.line):
            return f"lxc.cgroup.{v1.key}"
    return f"lxc.cgroup2.{setting.key}"


def host_controllers() -> set[str]:
    """The controllers of the cgroup2 hierarchy (its root's cgroup.controllers): what a
    delegated unit can get at most."""
    from lxcsd.runtime import cgroup

    try:
        mountpoint, _ = cgroup.cgroup2_mount()
        return set(cgroup.available_controllers(mountpoint))
    except (OSError, LxcsdError):
        return set()


def optional_devices(c: Container) -> tuple[str, ...]:
    """The /dev nodes of lxcsd.runtime.dev.OPTIONAL_DEVICES (net/tun, fuse) that the
    container's device policy allows for reading and writing: all of them without device
    rules (lxc@.service's own DeviceAllow= list has both), else as the rules say, folded as
    the generator folds them for DeviceAllow= (cgroup2 keys win over v1 ones)."""
    from lxcsd.runtime.dev import OPTIONAL_DEVICES

    if not any(s.key.startswith("devices.") for s in c.cgroup2 + c.cgroup_v1):
        return tuple(name for name, _, _ in OPTIONAL_DEVICES)  # (no import: the usual case)
    from lxcsd.generator import devices

    rules = devices.device_rules(c.cgroup2) or devices.device_rules(c.cgroup_v1)
    if not rules:
        return tuple(name for name, _, _ in OPTIONAL_DEVICES)
    return tuple(name for name, major, minor in OPTIONAL_DEVICES
                 if devices.allows(rules, "c", major, minor, f"/dev/{name}"))


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

    return linux.PER_LINUX32 if c.arch in ARCHES_32 else None


def init_argv(c: Container) -> list[str]:
    argv = c.execute_cmd or c.init.cmd or DEFAULT_INIT
    return list(argv)


def init_env(c: Container, environ: Mapping[str, str]) -> dict[str, str]:
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
