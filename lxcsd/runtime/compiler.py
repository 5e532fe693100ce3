"""A container's config model → its :class:`~lxcsd.runtime.plan.StartPlan`, decided before
anything is changed.

``make_plan(name, container)`` is the one validation of the start path: the generator runs
it at every daemon-reload and writes the plan for the helper (``lxcsd.runtime.planfile``),
the helper runs it when no fresh plan exists, and ``lxcsd check`` runs the same function
with ``errors=[]`` and reports every refusal, so whatever check accepts, the start accepts
too. It changes nothing on the host; it reads what it must know about it (``Host``: the
cgroup2 controllers, AppArmor, the rootfs, policy files, /etc/subuid), and it resolves
everything the start would otherwise look up in the config: mount entries to targets in the
root, fstab files to mount entries, hook commands to argv words, file:line of every key that
can fail at start, the seccomp policy to a BPF program (cached by the policy's hash). The
start path (``start``, ``child``) then only executes the plan; what can still fail there is
the system (a mount, a device), not the config.
"""

from __future__ import annotations

import os

from lxcsd import linux
from lxcsd.errors import ConfigError, LxcsdError
from lxcsd.runtime.plan import CgroupValue, MountOp, RootfsPlan, StartPlan, init_env

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # typeshed has no _signal; signal's names are the same
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from lxcsd.config.model import CgroupSetting, Container, MountEntry
    from lxcsd.runtime.hooks import HookSet
    from lxcsd.runtime.lsm import Host as LsmHost
    from lxcsd.runtime.seccomp_policy import SeccompPolicy
else:
    import _signal

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
# Controllers whose files need no enabling: they exist in every cgroup2 directory.
CORE_CONTROLLERS = ("cgroup",)
TTY_GID = 5
# liblxc's nesting helpers (conf.c): with lxc.apparmor.allow_nesting, proc and sysfs for a
# nested container's own proc/sys mounts; the generated profile denies them to the rest.
NESTING_MOUNTS = ("proc dev/.lxc/proc proc create=dir,optional 0 0",
                  "sys dev/.lxc/sys sysfs create=dir,optional 0 0")
# Parsed seccomp policies and their BPF programs by (path, text), for a process compiling
# many containers (the generator meets the same policy in every container).
_POLICIES: dict[tuple[str, str], tuple[SeccompPolicy, bytes]] = {}
# Hooks that run before init's exec and may put init in place (a pre-start hook mounting
# an image on the rootfs directory, a mount hook binding /usr).
ROOT_HOOKS = ("pre-start", "pre-mount", "mount", "autodev", "start")


class Host:
    """What the plan reads from the host: the cgroup2 controllers that exist, the security
    modules. Tests pass their own."""

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
              errors: list[ConfigError] | None = None) -> StartPlan:
    """The plan; the first refusal raises ConfigError, or with ``errors`` every refusal is
    appended there (a plan with refusals is for reporting only, never for a start)."""
    c = container
    plan = StartPlan(name)
    host = host or Host()
    env = os.environ if environ is None else environ
    steps: tuple[Callable[[], object], ...] = (
        lambda: _identity(plan, c),
        lambda: _rootfs(plan, c),
        lambda: _init(plan, c, env),
        lambda: _idmap(plan, c),
        lambda: _namespaces(plan, c),
        lambda: _cgroups(plan, c, host),
        lambda: _caps(plan, c),
        lambda: _seccomp(plan, c, datadir),
        lambda: _security(plan, c, host),
        lambda: _terminals(plan, c),
        lambda: _mounts(plan, c),
        lambda: _process(plan, c),
        lambda: _handover(plan, c),
        lambda: _stop(plan, c),
    )
    for step in steps:
        try:
            step()
        except ConfigError as exc:
            if errors is None:
                raise
            errors.append(exc)
    plan.notes = [str(warning) for warning in plan.warnings]
    return plan


# ------------------------------------------------------------------------------------------
# The steps, in order


def _identity(plan: StartPlan, c: Container) -> None:
    from lxcsd.config.names import escape

    plan.instance = escape(plan.name)
    plan.unit = f"lxc@{plan.instance}.service"
    plan.config_path = c.config_path
    plan.lxcpath = os.path.dirname(os.path.dirname(os.path.abspath(c.config_path)))
    plan.uts_name = c.uts_name
    plan.arch = c.arch


def _rootfs(plan: StartPlan, c: Container) -> None:
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
    o = rootfs.mount_options
    plan.rootfs = RootfsPlan(
        kind=rootfs.kind, spec=rootfs.spec, path=rootfs.path or "", lower=tuple(rootfs.lower),
        upper=rootfs.upper or "", flags=o.flags if o else 0,
        clear_flags=o.clear_flags if o else 0, propagation=o.propagation if o else 0,
        data=o.data if o else "", idmapped=o is not None and o.idmap == "container")
    mount = rootfs.mount or (rootfs.path if rootfs.kind == "dir" else None)
    if mount is None:
        raise key_error(c, "lxc.rootfs.mount", "an overlay rootfs needs lxc.rootfs.mount",
                        "set lxc.rootfs.mount to an empty directory")
    plan.rootfs_mount = mount


def _init(plan: StartPlan, c: Container, environ: Mapping[str, str]) -> None:
    plan.argv = list(c.execute_cmd or c.init.cmd or DEFAULT_INIT)
    plan.exec_key = "lxc.execute.cmd" if c.execute_cmd else "lxc.init.cmd"
    plan.tty_max = c.tty_max or 0
    plan.tty_dir = c.tty_dir
    plan.env_items = list(c.environment) + list(c.environment_runtime)
    plan.env = init_env(plan.env_items, plan.tty_max, plan.tty_dir, environ)
    plan.cwd = c.init.cwd or "/"
    plan.init_uid, plan.init_gid = c.init.uid or 0, c.init.gid or 0
    plan.init_groups = list(c.init.groups)
    plan.no_new_privs = bool(c.no_new_privs)
    plan.notify = c.init.notify
    program = find_in_root(plan, c)
    if program is not None and not program:
        if not (c.execute_cmd or c.init.cmd):  # the default init: the rootfs lacks it
            raise key_error(c, "lxc.rootfs.path", f"{plan.rootfs.path} has no executable "
                            f"{plan.argv[0]} (the default lxc.init.cmd)",
                            "set lxc.init.cmd, or fix the root file system")
        raise key_error(c, plan.exec_key, f"{plan.argv[0]} is not an executable file in the "
                        f"container's root ({plan.rootfs.path})")


def find_in_root(plan: StartPlan, c: Container) -> str | None:
    """Init's program inside a directory rootfs ("" when missing), None when the config
    may bring it in or replace it (a mount over its path or a directory on it: an
    application container binds the host's /usr; an fstab; a hook) or the root is not a
    plain directory."""
    lookups = init_lookups(plan, c)
    if lookups is None:
        return None
    return lookups[-1][0] if lookups and lookups[-1][2] else ""


def init_lookups(plan: StartPlan, c: Container
                 ) -> list[tuple[str, str, tuple[int, ...]]] | None:
    """The search for init's program in the root that exec_init makes at the start (the
    path as configured, or each PATH directory in turn), resolved inside the root: (path
    tried, the host path it resolves to or "", the stamp of the program, () for a path that
    is not it) up to the program found. None as for :func:`find_in_root`."""
    rootfs = getattr(plan, "rootfs", None)
    if rootfs is None or rootfs.kind != "dir" or c.mounts.fstab or \
            any(c.hooks.get(hook) for hook in ROOT_HOOKS):
        return None
    from lxcsd.runtime import safepath
    from lxcsd.runtime.execpath import DEFAULT_PATH  # the search exec_init does at the start
    from lxcsd.runtime.planfile import stamp_of

    targets = _mount_targets(plan, c)
    name = plan.argv[0]
    dirs = [""] if "/" in name else plan.env.get("PATH", DEFAULT_PATH).split(":")
    lookups: list[tuple[str, str, tuple[int, ...]]] = []
    root = os.open(rootfs.path or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for directory in dirs:
            path = os.path.join(directory or "/", name)
            if _covered(path, targets):
                return None
            found = safepath.lookup(root, path)
            if found is None:
                lookups.append((path, "", ()))
                continue
            real, st = found
            if _covered(os.path.relpath(real, rootfs.path or "/"), targets):
                return None  # a symlink into a mounted tree (merged /usr: /sbin -> usr/sbin)
            program = safepath.is_program(st)
            lookups.append((path, real, stamp_of(st) if program else ()))
            if program:
                break
    finally:
        os.close(root)
    return lookups


def _mount_targets(plan: StartPlan, c: Container) -> list[str]:
    """The lxc.mount.entry targets inside the root, normalized ("" for the root itself)."""
    from lxcsd.runtime import mounts

    prefixes = rootfs_prefixes(plan, c)
    found = []
    for entry in c.mounts.entries:
        target = mounts.container_target(entry.target, prefixes)
        if target is not None:
            found.append(os.path.normpath("/" + target).strip("/"))
    return found


def _covered(path: str, targets: list[str]) -> bool:
    """Whether a mount on one of ``targets`` hides or replaces ``path`` (inside the root)."""
    rel = os.path.normpath("/" + path).strip("/")
    return any(t == "" or rel == t or rel.startswith(t + "/") for t in targets)


def _idmap(plan: StartPlan, c: Container) -> None:
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


def _delegated(plan: StartPlan, c: Container) -> None:
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


def _namespaces(plan: StartPlan, c: Container) -> None:
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
    if plan.net_kind == "netlink":
        from lxcsd.net.spec import plan_of

        plan.networks = plan_of(c)


def _cgroups(plan: StartPlan, c: Container, host: Host) -> None:
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
    settings = list(translated.values()) + v2
    plan.cgroup_settings = [CgroupValue(key=s.key, value=s.value, path=s.path, line=s.line)
                            for s in settings]
    plan.controllers = list(dict.fromkeys(controller(s) for s in settings
                                          if controller(s) not in CORE_CONTROLLERS))
    _controllers_available(plan, c, settings, host)


def _controllers_available(plan: StartPlan, c: Container, settings: list[CgroupSetting],
                           host: Host) -> None:
    """A limit the host cannot apply fails the start (LXC: "Failed to set memory.max"),
    never a silently unlimited container."""
    if not plan.controllers:
        return
    available = host.controllers if host.controllers is not None else host_controllers()
    for name in plan.controllers:
        if name not in available:
            setting = next(s for s in settings if controller(s) == name)
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


def _caps(plan: StartPlan, c: Container) -> None:
    # net_admin only with a network namespace of the container's own (after _namespaces).
    plan.keep_caps = keep_caps(c, private_net=bool(
        plan.clone_flags & linux.CLONE_NEWNET or "net" in plan.share))


def _seccomp(plan: StartPlan, c: Container, datadir: str) -> None:
    """The policy is read and parsed here (file:line errors for check), and compiled to the
    BPF program C2 loads (lxcsd.runtime.seccomp_policy.compiled), once per policy text in
    this process."""
    plan.seccomp_profile = seccomp_profile(c, datadir)
    plan.seccomp_nesting = bool(c.seccomp.allow_nesting)
    if not plan.seccomp_profile:
        return
    try:
        with open(plan.seccomp_profile, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as exc:
        raise key_error(c, "lxc.seccomp.profile", f"cannot read {plan.seccomp_profile}: "
                        f"{exc.strerror}") from None
    key = (plan.seccomp_profile, text)
    if key not in _POLICIES:
        _POLICIES[key] = _compile_policy(c, plan.seccomp_profile, text)
    plan.seccomp_policy, plan.seccomp_bpf = _POLICIES[key]


def _compile_policy(c: Container, path: str, text: str) -> tuple[SeccompPolicy, bytes]:
    from lxcsd.runtime import seccomp_policy

    policy = seccomp_policy.parse(text, path)  # errors: its file:line
    if seccomp_policy.wants_notify(policy):
        raise key_error(c, "lxc.seccomp.profile", f"{path}: seccomp notify actions are not "
                        "supported yet")
    try:
        return policy, seccomp_policy.compiled(policy)
    except ImportError:
        raise key_error(c, "lxc.seccomp.profile", f"{path}: cannot compile the policy: the "
                        "libseccomp binding (seccomp) is not installed",
                        "apt-get install python3-seccomp") from None


def _security(plan: StartPlan, c: Container, host: Host) -> None:
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
    plan.warnings += [key_error(c, key, message) for key, message in decision.warnings]
    if decision.generate is not None:
        from lxcsd.runtime import apparmor_profile as text

        feats = decision.generate
        body = text.profile_text(plan.name, plan.lxcpath, feats,
                                 nesting=bool(c.apparmor.allow_nesting),
                                 unprivileged=bool(c.idmaps), raw=c.apparmor.raw)
        namespace = text.namespace_name(plan.name, plan.lxcpath) if feats.namespaced else ""
        plan.apparmor = (text.profile_name(plan.name, plan.lxcpath), namespace, body)


def _terminals(plan: StartPlan, c: Container) -> None:
    # lxc.console.path: unset → a pty of the container's devpts, handed to lxcsd-console;
    # "none" → no console (init's stdio is /dev/null); a host device → bound as is.
    path = c.console.path
    plan.console = path is None
    plan.console_device = path if path not in (None, "none") else None
    if plan.console_device and not os.path.exists(plan.console_device):
        raise key_error(c, "lxc.console.path", f"{plan.console_device} does not exist")
    plan.pty_max = c.pty_max or 0
    plan.personality = personality(c)
    plan.optional_devices = optional_devices(c)
    if c.mounts.auto.shmounts:
        plan.warnings.append(key_error(c, "lxc.mount.auto", "shmounts: is not supported, "
                                       "ignored"))


def _mounts(plan: StartPlan, c: Container) -> None:
    """lxc.mount.auto, lxc.autodev, and every mount of lxc.mount.fstab, lxc.mount.entry and
    the nesting helpers, in the order C2 makes them."""
    auto = c.mounts.auto
    plan.auto_proc, plan.auto_sys = auto.proc, auto.sys
    plan.auto_cgroup = auto.cgroup
    plan.auto_cgroup_mode = (auto.cgroup_mode or "mixed") if auto.cgroup else None
    plan.autodev = c.autodev is not False
    from lxcsd.runtime import dev

    plan.autodev_size = c.autodev_tmpfs_size or dev.DEFAULT_TMPFS_SIZE
    prefixes = rootfs_prefixes(plan, c)
    if c.mounts.fstab:
        plan.mounts += mount_ops(_fstab_entries(c), prefixes, f"lxc.mount.fstab {c.mounts.fstab}")
    plan.mounts += mount_ops(c.mounts.entries, prefixes, "lxc.mount.entry")
    if plan.apparmor is not None and c.apparmor.allow_nesting:
        from lxcsd.config.values import parse_mount_entry

        nesting = [parse_mount_entry(line) for line in NESTING_MOUNTS]
        plan.mounts += mount_ops(nesting, prefixes, "lxc.apparmor.allow_nesting")


def rootfs_prefixes(plan: StartPlan, c: Container) -> list[str]:
    """Host paths an absolute mount target may start with (liblxc: the rootfs mount, the
    rootfs path, LXCPATH/NAME/rootfs)."""
    prefixes = [plan.rootfs_mount]
    if c.rootfs.path and c.rootfs.kind == "dir":
        prefixes.append(c.rootfs.path)
    prefixes.append(os.path.join(os.path.dirname(c.config_path), "rootfs"))
    return prefixes


def mount_ops(entries: Sequence[MountEntry], prefixes: Sequence[str], key: str
              ) -> list[MountOp]:
    from lxcsd.runtime import mounts

    ops = []
    for entry in entries:
        target = mounts.container_target(entry.target, prefixes)
        if target is None:
            continue  # liblxc: "Ignoring mount point" outside the rootfs
        o = entry.opts
        source, relative = entry.source, o.relative
        if not relative and (o.bind or o.flags & linux.MS_MOVE):
            inside = mounts.source_in_root(source, prefixes)
            if inside is not None:  # resolved in the root: a symlink cannot reach the host
                source, relative = inside, True
        ops.append(MountOp(
            what=f"{key} = {entry.raw}", source=source, target=target, fstype=entry.fstype,
            flags=o.flags, clear_flags=o.clear_flags, propagation=o.propagation, data=o.data,
            bind=o.bind, recursive=o.recursive, create=o.create, optional=o.optional,
            relative=relative))
    return ops


def _fstab_entries(c: Container) -> list[MountEntry]:
    """lxc.mount.fstab's lines, parsed as lxc.mount.entry values."""
    from lxcsd.config import values

    path = c.mounts.fstab or ""
    entries = []
    number = 0
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):  # noqa: B007 - the error names it
                text = line.strip()
                if text and not text.startswith("#"):
                    entries.append(values.parse_mount_entry(text))
    except OSError as exc:
        raise key_error(c, "lxc.mount.fstab", f"cannot read {path}: {exc.strerror}") from None
    except Exception as exc:
        raise key_error(c, "lxc.mount.fstab", f"{path}:{number}: {exc}") from None
    return entries


def _process(plan: StartPlan, c: Container) -> None:
    """lxc.sysctl.*, lxc.prlimit.*, lxc.proc.*, lxc.keyring.session, lxc.hook.*."""
    from lxcsd.runtime import limits

    plan.sysctls = limits.sysctl_plan(c)
    plan.procs = limits.proc_plan(c)
    for name in c.prlimit:
        try:
            limits.resource_number(name)
        except LxcsdError as exc:
            raise key_error(c, f"lxc.prlimit.{name}", exc.message) from None
    plan.prlimits = limits.prlimit_plan(c)
    plan.keyring_session = c.keyring_session is not False
    plan.hooks = hook_set(c, plan.rootfs_mount) if any(c.hooks.values()) else None


def hook_set(c: Container, rootfs_mount: str | None = None) -> HookSet:
    """The container's hooks, each command split as LXC splits lxc.init.cmd."""
    from lxcsd.config.values import split_quoted
    from lxcsd.runtime import hooks

    commands = {}
    for hook, texts in c.hooks.items():
        key = f"lxc.hook.{hook}"
        commands[hook] = [(text, tuple(split_quoted(text)), _located(c, key, text))
                          for text in texts]
    return hooks.HookSet(
        name=c.name, config_path=c.config_path, rootfs_spec=c.rootfs.spec,
        rootfs_mount=rootfs_mount or c.rootfs.mount or hooks.DEFAULT_ROOTFS_MOUNT,
        console_path=c.console.path, console_logfile=c.console.logfile,
        version=c.hook_version or 0, env_hooks=list(c.environment_hooks),
        env=list(c.environment), commands=commands)


def _located(c: Container, key: str, value: str) -> str:
    """'path:line' of the last config line setting key to value, else the config file."""
    for entry in reversed(c.entries):
        if entry.canonical == key and entry.value == value:
            return entry.location()
    return c.config_path


def _handover(plan: StartPlan, c: Container) -> None:
    """What the start passes on: the console service's options, the answers LXC's tools
    get (lxcsd.liblxc.items), what stop and cleanup read from the state file."""
    from lxcsd.console.options import ConsoleOptions
    from lxcsd.liblxc.items import preset
    from lxcsd.runtime import state

    plan.console_options = ConsoleOptions.from_console(c.console).fields()
    plan.lxc_items = preset(c, "")
    plan.state_fields = state.config_fields(c)


def _stop(plan: StartPlan, c: Container) -> None:
    """How systemd stops this container (the generator writes it into the unit's drop-in,
    the start checks the unit says the same): ``halt`` the signal systemd sends init as
    KillSignal=, so that no ExecStop= process is needed (0: unknown, ExecStop= applies
    liblxc's rule at stop time); ``stop`` lxc.signal.stop (0: unset, SIGKILL);
    ``exec_stop`` 1 when ExecStop= must run; ``cleanup`` 1 when ExecStopPost= has
    something to undo.

    lxc.signal.stop other than SIGKILL needs ExecStop=, which sends it when the halt times
    out (lxcsd.runtime.stop): FinalKillSignal= would replace systemd's final SIGKILL of
    the whole cgroup (systemd.kill(5)), and an init without a handler for it (a pid
    namespace's init drops it) would then outlive `systemctl stop`. Unset or SIGKILL, it
    is that final SIGKILL.

    systemd waits for a main process that received KillSignal= only when that process was
    its own child when it became the main process (otherwise it sends SIGKILL at once:
    systemd 252's unit_kill_context, "main_pid_alien"). Init is systemd's child at the
    hand-over when the helper is not its subreaper (``plan.subreaper``): C1 exits and the
    kernel gives C2 to PID 1. The helper stays init's subreaper, and ExecStop= does the
    halt, for a guest that reports its own readiness: while it boots, the helper reaps init
    to end as it did (lxcsd.runtime.ready)."""
    kind = init_kind(plan, c)
    plan.subreaper = plan.notify is True or (plan.notify is None and kind != "other")
    halt = c.signals.halt or DEFAULT_HALT.get(kind or "")
    final = (c.signals.stop or _signal.SIGKILL) == _signal.SIGKILL
    plan.stop = {"halt": halt or 0, "stop": c.signals.stop or 0,
                 "exec_stop": int(not halt or plan.subreaper or bool(c.hooks.get("stop"))
                                  or not final),
                 "cleanup": int(needs_cleanup(plan, c))}


# liblxc's halt signals (do_lxcapi_shutdown): SIGRTMIN+3 when init blocks it (systemd
# does), else SIGPWR (sysvinit, busybox init); libc's SIGRTMIN, as lxcsd.runtime.stop.
SIGRTMIN_3: int = _signal.SIGRTMIN + 3
SIGPWR: int = _signal.SIGPWR
DEFAULT_HALT = {"systemd": SIGRTMIN_3, "other": SIGPWR}


def init_kind(plan: StartPlan, c: Container) -> str | None:
    """"systemd" when init's program resolves in the root to a file named systemd (as
    lxcsd.runtime.guestfs decides it at start), "other" for another program, None when
    init cannot be looked at now (brought by a mount or hook, an overlay root)."""
    program = find_in_root(plan, c)
    if not program:
        return None
    from lxcsd.runtime import guestfs

    root = os.open(plan.rootfs.path or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return "systemd" if guestfs.init_is_systemd(root, program) else "other"
    finally:
        os.close(root)


def needs_cleanup(plan: StartPlan, c: Container) -> bool:
    """Whether something outlives the container's namespaces for ExecStopPost= to undo:
    post-stop hooks, network devices and their records, a generated AppArmor profile, a
    state directory systemd's RuntimeDirectory= cannot name (an escaped instance). Not the
    cgroup v1 leaves of a hybrid host: lxcsd-console removes them once init has exited
    (lxcsd.console.lxcwork.remove_cgroup_v1), as liblxc's monitor does, off the stop's
    path (ExecStopPost= cost a stop ~38 ms here)."""
    if c.hooks.get("post-stop") or plan.net_kind == "netlink" or plan.apparmor is not None:
        return True
    return plan.instance != plan.name


# ------------------------------------------------------------------------------------------
# Pieces (also used by lxcsd attach and the generator)


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


def controller(setting: CgroupSetting | CgroupValue) -> str:
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


def keep_caps(c: Container, *, private_net: bool = True) -> frozenset[int]:
    """The capability set of the container's root: lxc.cap.keep when set, else the
    default set (DEFAULT_CAP_RETAIN) minus lxc.cap.drop. private_net: the container has a
    network namespace other than the host's (net_admin is kept then)."""
    from lxcsd.runtime import caps

    key = "lxc.cap.keep" if c.caps_keep is not None else "lxc.cap.drop"
    last = _last_cap()
    try:
        if c.caps_keep is not None:
            return caps.keep_set(keep=c.caps_keep, last=last)
        kept = caps.keep_set(c.caps_drop, last=last)
    except Exception as exc:
        raise key_error(c, key, str(exc)) from None
    if c.caps_cleared:
        return kept
    return kept & default_caps(private_net, last)


_LAST_CAP: list[int] = []


def _last_cap() -> int:
    """The kernel's last capability, read once per process."""
    if not _LAST_CAP:
        from lxcsd.runtime import caps

        _LAST_CAP.append(caps.last_cap())
    return _LAST_CAP[0]


def default_caps(private_net: bool, last: int) -> frozenset[int]:
    """DEFAULT_CAP_RETAIN (+ net_admin with a private network) as numbers the kernel knows."""
    from lxcsd.runtime import caps

    names = DEFAULT_CAP_RETAIN + (PRIVATE_NET_CAPS if private_net else ())
    return frozenset(n for n in (caps.NUMBERS[name] for name in names) if n <= last)


def seccomp_profile(c: Container, datadir: str) -> str | None:
    """lxc.seccomp.profile, or the shipped default (seccomp_policy.policy_path)."""
    from lxcsd.runtime.seccomp_policy import policy_path

    return policy_path(c.seccomp.profile, datadir)


# ------------------------------------------------------------------------------------------
# Compiled plans (lxcsd.runtime.planfile)


def dependencies(plan: StartPlan, container: Container,
                 sources: list[tuple[str, tuple[int, ...]]]) -> list[tuple[Any, ...]]:
    """Everything a plan was compiled from (``planfile.unchanged`` checks them): the config
    and its includes (``sources``, as the reader read them), the seccomp policy, the fstab,
    /etc/subuid and /etc/subgid, and what decided which config NAME means (/etc/lxc/lxc.conf;
    the lxcpaths before it must not gain a NAME/config), each as (path, stamp); init's
    program in the root as (rootfs, program, the search's lookups: :func:`init_lookups`),
    looked up again inside the root, never stat'd from the host through the container's
    symlinks. lxcsd's own code is checked apart (planfile.code_dependencies): the same for
    every plan a process compiles, the generator's cache keeps it once, not per container."""
    from lxcsd.runtime.planfile import stamp

    paths = [p for p in (plan.seccomp_profile, container.mounts.fstab) if p]
    if plan.userns:
        from lxcsd.runtime.idmap import SUBID_FILES

        paths += list(SUBID_FILES.values())
    deps: list[tuple[Any, ...]] = list(sources)
    deps += [(path, stamp(path)) for path in dict.fromkeys(paths)]
    lookups = init_lookups(plan, container)
    if lookups:
        deps.append((plan.rootfs.path or "/", plan.argv[0], tuple(lookups)))
    deps += _lookup_dependencies(plan.name, container.config_path)
    return deps


_LXCPATHS: dict[str | None, tuple[list[tuple[str, tuple[int, ...]]], list[str]]] = {}


def _lxcpaths() -> tuple[list[tuple[str, tuple[int, ...]]], list[str]]:
    """(what the lxcpaths depend on, the lxcpaths), read once per process and
    $LXCSD_LXCPATH."""
    from lxcsd.config.globalconf import GLOBAL_CONF, LXCPATH_ENV, lxcpaths

    env = os.environ.get(LXCPATH_ENV)
    if env not in _LXCPATHS:
        from lxcsd.runtime.planfile import stamp

        deps = [(GLOBAL_CONF, stamp(GLOBAL_CONF))] if env is None else []
        _LXCPATHS[env] = (deps, lxcpaths())
    return _LXCPATHS[env]


def _lookup_dependencies(name: str, config: str) -> list[tuple[str, tuple[int, ...]]]:
    from lxcsd.runtime.planfile import stamp

    found, paths = _lxcpaths()
    deps = list(found)
    for lxcpath in paths:
        candidate = os.path.join(lxcpath, name, "config")
        if candidate == config:
            break
        deps.append((candidate, stamp(candidate)))
    return deps


def compile_file(name: str, config_path: str, *, datadir: str = "",
                 host: Host | None = None) -> tuple[StartPlan, dict[str, object]]:
    """Load the config at ``config_path``, make the plan, and the content of its plan file
    (lxcsd.runtime.planfile.compiled). Raises ConfigError as make_plan does."""
    from lxcsd.config.load import load_with_sources
    from lxcsd.runtime import planfile

    container, sources = load_with_sources(config_path, name)
    plan = make_plan(name, container, datadir=datadir, host=host)
    deps = dependencies(plan, container, sources)
    dumped = plan.dump()
    data = planfile.compiled(dumped, deps, planfile.host_facts(dumped))
    return plan, data
