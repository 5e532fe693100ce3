"""The container's side of ``lxcsd-helper start``: C1 (namespaces) and C2 (the new root, init).

    H ──fork──▶ C1: [unshare user; H writes maps] join shared namespaces, unshare the rest,
                    fork C2, send its pidfd, exit
                 └─▶ C2: PID 1 of the new pid namespace: build the root, hand the pty masters
                     to H, wait for H's go, pivot_root, drop privileges, exec init

Sync points (``exec_sync.Sync``, one socketpair shared by H, C1 and C2):
  0 H → C1   C1 is in the payload cgroup
  1 C1 → H   user namespace made            (only with lxc.idmap)
  2 H → C1   id maps written (+ the idmapped rootfs tree with idmap=container)
  3 C1 → H   C2 forked (+ C2's pidfd); C1 exits
  4 C2 → H   root built (+ console and tty pty masters)
  5 H → C2   host side done (network, prlimits, lxc.proc, start-host hooks): exec init

Failures are reported on the exec report pipe (``exec_sync.Report``) as one message naming the
step and the config key; its EOF without a message is the proof that init was executed.

Everything C2 needs after pivot_root (seccomp, hooks) is imported before it: the host's
module files are out of reach afterwards.
"""

from __future__ import annotations

import os
import sys

from lxcsd import linux
from lxcsd.errors import LxcsdError
from lxcsd.runtime import dev, exec_sync, guest, guestfs, mounts
from lxcsd.runtime.execpath import DEFAULT_PATH

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from lxcsd.runtime.plan import Plan

SYNC_CGROUP, SYNC_USERNS, SYNC_MAPS, SYNC_FORKED, SYNC_BUILT, SYNC_GO = range(6)
C2_HOOKS = ("pre-mount", "mount", "autodev", "start")


def optional_module(name: str, keys: str) -> Any:
    """lxcsd.runtime.hooks / lxcsd.runtime.limits, imported only when a container uses
    them. A missing one fails the start, naming the keys it would have applied (a broken
    installation must not start containers without their hooks or limits). The start
    hooks run after pivot_root: hooks.py imports at module level everything its run()
    needs."""
    try:
        __import__(f"lxcsd.runtime.{name}")
    except ModuleNotFoundError as exc:
        raise LxcsdError(f"{keys}: cannot apply them: {exc}") from None
    return sys.modules[f"lxcsd.runtime.{name}"]


def step(what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one build step; a failure names the step (with its config key)."""
    try:
        return func(*args, **kwargs)
    except LxcsdError as exc:
        raise LxcsdError(f"{what}: {exc}") from None
    except OSError as exc:
        text = exc.strerror or str(exc)
        if exc.filename and str(exc.filename) not in text:
            text = f"{text}: {exc.filename}"
        raise LxcsdError(f"{what}: {text}") from None


# ------------------------------------------------------------------------------------------
# C1


def c1_main(plan: Plan, sync: exec_sync.Sync, report: exec_sync.Report,
            share_fds: list[tuple[str, int]]) -> NoReturn:
    # Namespaces: all the host's. Cgroup: the payload (H moved us before sync point 0).
    def run() -> None:
        sync.wait(SYNC_CGROUP)
        idmapped_fd = -1
        for name, fd in share_fds:
            step(f"lxc.namespace.share.{name}", linux.setns, fd, 0)
            os.close(fd)
        if plan.userns:
            step("lxc.idmap: user namespace", linux.unshare, linux.CLONE_NEWUSER)
            sync.wake(SYNC_USERNS)
            fds = sync.wait(SYNC_MAPS, 1 if idmapped_rootfs(plan) else 0)
            idmapped_fd = fds[0] if fds else -1
            # Become the namespace's root (the mapped host id) so what we make is its own.
            os.setgroups([])
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        step("lxc.namespace.clone: unshare", linux.unshare, plan.clone_flags)
        if plan.time_offsets:  # before any process is in the new time namespace: C2's fork
            step("lxc.time.offset", linux.write_file, "/proc/self/timens_offsets",
                 plan.time_offsets)
        gone_r, gone_w = os.pipe2(os.O_CLOEXEC)
        c2 = os.fork()
        if c2 == 0:
            os.close(gone_w)
            c2_main(plan, sync, report, idmapped_fd, gone_r)
        sync.wake(SYNC_FORKED, [os.pidfd_open(c2)])

    exec_sync.run_reporting(report, run)
    os._exit(0)


def idmapped_rootfs(plan: Plan) -> bool:
    opts = plan.rootfs.mount_options
    return opts is not None and opts.idmap == "container"


# ------------------------------------------------------------------------------------------
# C2


class Root:
    """What C2's build steps share: fds of the new root and its /dev, the pty masters."""

    __slots__ = ("root_fd", "dev_fd", "devpts_fd", "console_slave", "masters", "tty_slaves",
                 "filter", "hooks", "labels", "notify")

    def __init__(self) -> None:
        self.root_fd = self.dev_fd = self.devpts_fd = self.console_slave = -1
        self.masters: list[int] = []
        self.tty_slaves: list[int] = []
        self.filter: Any = None
        self.hooks: Any = None
        self.labels: list[tuple[int, str, str]] = []
        self.notify = False  # /run/host/notify bound (lxcsd.runtime.guestfs)


def c2_main(plan: Plan, sync: exec_sync.Sync, report: exec_sync.Report, idmapped_fd: int,
            c1_gone: int) -> NoReturn:
    # Namespaces: user (maps written, we are its root) when lxc.idmap is set; new mount (a
    # copy of the host's), pid (we are its PID 1), uts, ipc, cgroup (rooted at the payload),
    # net unless lxc.net.0.type = none or kept/shared; shared ones joined by C1.
    # Root and /proc: still the host's.
    def run() -> None:
        root = Root()
        _prepare(plan, root)
        build_root(plan, root, idmapped_fd)
        os.read(c1_gone, 1)  # EOF: C1 sent point 3 and exited, so point 4 comes after it
        os.close(c1_gone)
        sync.wake(SYNC_BUILT, root.masters)
        for fd in root.masters:
            os.close(fd)
        sync.wait(SYNC_GO)
        finish(plan, root, report.write_fd)

    exec_sync.run_reporting(report, run)
    os._exit(1)


def _prepare(plan: Plan, root: Root) -> None:
    """Steps that need the host's /proc and module files: sysctls (per-namespace values
    written through the host's /proc, which shows our namespaces' values), hooks and
    seccomp imported and compiled."""
    c = plan.container
    if c.sysctl:
        limits = optional_module("limits", "lxc.sysctl")
        if limits is not None:
            step("lxc.sysctl", limits.apply_sysctls, c)
    if any(c.hooks.get(hook) for hook in C2_HOOKS):
        root.hooks = optional_module("hooks", "lxc.hook.*")
    if plan.labels:
        from lxcsd.runtime import lsm

        root.labels = step("security label", lsm.prepare, plan.labels)
    if plan.seccomp_policy is not None:
        root.filter = step(f"lxc.seccomp.profile {plan.seccomp_profile}", _compile_seccomp,
                           plan.seccomp_policy, c.seccomp.allow_nesting)


def _warn(message: str) -> None:
    os.write(2, f"lxcsd: warning: {message}\n".encode())


def _compile_seccomp(policy: Any, allow_nesting: bool | None) -> Any:
    """The filter of the plan's parsed policy, or None when this process is already
    confined (the host runs lxcsd under seccomp) and lxc.seccomp.allow_nesting is not set:
    liblxc then skips the policy too, since the stacked filter might forbid what init needs
    in ways it cannot see."""
    from lxcsd.runtime import seccomp_policy

    if seccomp_policy.already_confined() and not allow_nesting:
        _warn(f"lxc.seccomp.profile {policy.path} not loaded: already under a seccomp filter "
              "(set lxc.seccomp.allow_nesting = 1 to stack it)")
        return None
    flt, _unknown = seccomp_policy.build_filter(policy)
    return flt


def _hook(plan: Plan, root: Root, hook: str) -> None:
    if root.hooks is not None and plan.container.hooks.get(hook):
        step(f"lxc.hook.{hook}", root.hooks.run, plan.container, hook,
             rootfs_mount=plan.rootfs_mount)


def build_root(plan: Plan, root: Root, idmapped_fd: int) -> None:
    """Everything before pivot_root, in LXC's order (conf.c lxc_setup)."""
    c = plan.container
    step("mount namespace: make / a recursive slave", mounts.make_rslave)
    _hook(plan, root, "pre-mount")
    root.root_fd = step(f"lxc.rootfs.path {plan.rootfs.spec}", _mount_rootfs, plan, idmapped_fd)
    host_dev = os.open("/dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    null = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
    auto = c.mounts.auto
    if c.autodev is not False:
        root.dev_fd = step("lxc.autodev: /dev tmpfs", dev.mount_dev, root.root_fd,
                           c.autodev_tmpfs_size or dev.DEFAULT_TMPFS_SIZE)
    net_rw = 12 in plan.keep_caps  # CAP_NET_ADMIN: /proc/sys/net stays writable
    if auto.proc:
        step(f"lxc.mount.auto proc:{auto.proc}", _in_userns_hint, plan, mounts.mount_proc,
             root.root_fd, auto.proc, net_rw=net_rw)
    if auto.sys:
        step(f"lxc.mount.auto sys:{auto.sys}", _in_userns_hint, plan, mounts.mount_sys,
             root.root_fd, auto.sys)
    root.notify = step("lxcsd.init.notify: /run tmpfs", guestfs.prepare_run, plan,
                       root.root_fd)
    _mount_fstab(plan, root)
    _mount_entries(plan, root)
    if plan.nesting_mounts:
        _mount_entries(plan, root, plan.nesting_mounts, "lxc.apparmor.allow_nesting")
    _hook(plan, root, "mount")
    if c.autodev is not False:
        step("lxc.autodev: device nodes", dev.fill_dev, root.dev_fd, host_dev)
        if plan.optional_devices:
            step("lxc.autodev: " + ", ".join(plan.optional_devices), dev.fill_optional,
                 root.dev_fd, host_dev, plan.optional_devices)
        _hook(plan, root, "autodev")
    else:
        root.dev_fd = step("/dev of the rootfs", _open_dir, root.root_fd, "dev")
        os.close(step("/dev/pts of the rootfs", _open_dir, root.dev_fd, "pts"))
    if auto.cgroup:
        mode = auto.cgroup_mode or "mixed"
        step(f"lxc.mount.auto {auto.cgroup}:{mode}", mounts.mount_cgroup, root.root_fd, mode)
    step("lxc.pty.max: devpts", _ptys, plan, root)
    if c.autodev is not False:
        step("lxc.autodev: /dev links, shm, mqueue", _dev_extras, root.dev_fd)
    files, dirs, readonly = mounts.protected_paths(auto.proc, auto.sys)
    step("masked paths", mounts.mask_paths, root.root_fd, files, dirs, null)
    step("read-only paths", mounts.make_readonly, root.root_fd, readonly)
    step("boot id", guestfs.bind_boot_id, root.root_fd, root.dev_fd)
    if root.notify:  # last: nothing the config mounts may hide it
        step("lxcsd.init.notify: /run/host", guestfs.make_run_host, plan, root.root_fd)
    os.close(host_dev)
    os.close(null)
    if plan.personality is not None:
        step(f"lxc.arch {c.arch}", linux.personality, plan.personality)
    if plan.uts_name and plan.clone_flags & linux.CLONE_NEWUTS:
        step(f"lxc.uts.name {plan.uts_name}", linux.sethostname, plan.uts_name)
    if plan.net_kind == "empty" and plan.clone_flags & linux.CLONE_NEWNET:
        step("lxc.net: loopback up", linux.interface_up, "lo")
    if c.keyring_session is not False:
        limits = optional_module("limits", "lxc.keyring.session")
        if limits is not None:
            step("lxc.keyring.session", limits.new_session_keyring, c)


def _in_userns_hint(plan: Plan, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """func(...); EPERM in a user namespace gets the kernel's reason as a hint."""
    try:
        return func(*args, **kwargs)
    except PermissionError as exc:
        if not plan.userns:
            raise
        raise LxcsdError(f"{exc.strerror}", "in a user namespace the kernel mounts proc and "
                         "sysfs only where the host's are fully visible, with nothing mounted "
                         "over them (not inside a container whose /proc is masked)") from None


def _open_dir(root_fd: int, path: str) -> int:
    from lxcsd.runtime import safepath

    return safepath.open_in_root(root_fd, path, create="dir",
                                 flags=os.O_PATH | os.O_DIRECTORY)


def _mount_rootfs(plan: Plan, idmapped_fd: int) -> int:
    r = plan.rootfs
    o = r.mount_options
    kwargs: dict[str, Any] = {}
    if o is not None:
        kwargs = {"flags": o.flags, "clear_flags": o.clear_flags,
                  "propagation": o.propagation, "data": o.data}
    if r.kind == "overlay":  # (H made the mount point: a mapped root may not write there)
        return mounts.mount_rootfs("overlay", r.path or "", plan.rootfs_mount, lower=r.lower,
                                   upper=r.upper, **kwargs)
    return mounts.mount_rootfs("dir", r.path or "", plan.rootfs_mount, idmapped_fd=idmapped_fd,
                               **kwargs)


def _rootfs_prefixes(plan: Plan) -> list[str]:
    c = plan.container
    prefixes = [plan.rootfs_mount]
    if c.rootfs.path and c.rootfs.kind == "dir":
        prefixes.append(c.rootfs.path)
    prefixes.append(os.path.join(os.path.dirname(c.config_path), "rootfs"))
    return prefixes


def _mount_entries(plan: Plan, root: Root, entries: Any = None, key: str = "lxc.mount.entry"
                   ) -> None:
    prefixes = _rootfs_prefixes(plan)
    for entry in plan.container.mounts.entries if entries is None else entries:
        target = mounts.container_target(entry.target, prefixes)
        if target is None:
            continue  # liblxc: "Ignoring mount point" outside the rootfs
        o = entry.opts
        source, relative = entry.source, o.relative
        if not relative and (o.bind or o.flags & linux.MS_MOVE):
            inside = mounts.source_in_root(source, prefixes)
            if inside is not None:  # resolved in the root: a symlink cannot reach the host
                source, relative = inside, True
        step(f"{key} = {entry.raw}", mounts.mount_entry, root.root_fd, source, target,
             entry.fstype, flags=o.flags, clear_flags=o.clear_flags,
             propagation=o.propagation, data=o.data, bind=o.bind, recursive=o.recursive,
             create=o.create, optional=o.optional, relative=relative)


def _mount_fstab(plan: Plan, root: Root) -> None:
    path = plan.container.mounts.fstab
    if not path:
        return
    from lxcsd.config import values

    entries = []
    number = 0
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):  # noqa: B007 - the error names it
                text = line.strip()
                if text and not text.startswith("#"):
                    entries.append(values.parse_mount_entry(text))
    except OSError as exc:
        raise LxcsdError(f"lxc.mount.fstab: cannot read {path}: {exc.strerror}") from None
    except Exception as exc:
        raise LxcsdError(f"lxc.mount.fstab: {path}:{number}: {exc}") from None
    _mount_entries(plan, root, entries, f"lxc.mount.fstab {path}")


def _ptys(plan: Plan, root: Root) -> None:
    """A new devpts instance (lxc.pty.max ptys, plus the console and lxc.tty.max ttys, as
    LXC counts), the console and ttys allocated from it; their masters go to H."""
    c = plan.container
    count = plan.pty_max + plan.tty_max + 1
    root.devpts_fd = dev.mount_devpts(root.dev_fd, count, gid=plan.devpts_gid)
    if plan.console:
        master, slave, _ = dev.allocate_pty(root.devpts_fd)
        root.masters.append(master)
        root.console_slave = slave
        dev.bind_console(root.dev_fd, slave, c.tty_dir)
    elif plan.console_device:
        # A host device (lxc.console.path), opened while the host's /dev is reachable.
        root.console_slave = os.open(plan.console_device,
                                     os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        dev.bind_console(root.dev_fd, plan.console_device, c.tty_dir)  # a path: no chmod
    slaves = []
    for _ in range(plan.tty_max):
        master, slave, _ = dev.allocate_pty(root.devpts_fd)
        root.masters.append(master)
        slaves.append(slave)
    dev.bind_ttys(root.dev_fd, slaves, c.tty_dir)
    for fd in slaves:
        os.close(fd)


def find_program(name: str, env: dict[str, str]) -> str:
    """name looked up in PATH (init's, else LXC's default) when it has no '/'."""
    if "/" in name:
        return name
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise LxcsdError(f"{name}: not found in PATH")


def exec_init(argv: list[str], env: dict[str, str]) -> NoReturn:
    """execve init (argv[0] kept as written, as execvp does); the error names the program."""
    path = find_program(argv[0], env)
    try:
        os.execve(path, argv, env)
    except OSError as exc:
        raise OSError(exc.errno, f"exec {path}: {exc.strerror}") from None


def _dev_extras(dev_fd: int) -> None:
    dev.make_symlinks(dev_fd)
    dev.mount_shm(dev_fd)
    dev.mount_mqueue(dev_fd)


def _session_stdio(fd: int) -> None:
    os.setsid()
    exec_sync.set_stdio(fd, controlling=False)


def finish(plan: Plan, root: Root, report_fd: int) -> NoReturn:
    """pivot_root, the start hooks, then privileges down and exec (seccomp before caps: it
    needs CAP_SYS_ADMIN without no_new_privs, caps.apply)."""
    from lxcsd.runtime import caps, seccomp_policy

    c = plan.container
    step("pivot_root", mounts.pivot_root, root.root_fd)
    _hook(plan, root, "start")
    cwd = c.init.cwd or "/"
    step(f"lxc.init.cwd {cwd}", os.chdir, cwd)
    stdio = root.console_slave if root.console_slave >= 0 else \
        os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    # As liblxc: init gets the console as stdio in a session of its own, but not as its
    # controlling terminal, so that a getty or shell init starts on it can take it (in an
    # unprivileged container nothing could steal it from init: that needs CAP_SYS_ADMIN
    # in the host's user namespace).
    step("console: init's stdio", _session_stdio, stdio)
    load = None
    if root.filter is not None:
        flt = root.filter

        def load() -> None:
            seccomp_policy.load(flt)

    if root.labels:
        from lxcsd.runtime import lsm

        step("security label", lsm.apply, root.labels)
    uid, gid = c.init.uid or 0, c.init.gid or 0
    step("lxc.cap.drop/lxc.cap.keep", caps.apply, plan.keep_caps, uid=uid, gid=gid,
         groups=list(c.init.groups), load_seccomp=load)
    if c.no_new_privs:
        step("lxc.no_new_privs", linux.prctl, linux.PR_SET_NO_NEW_PRIVS, 1)
    exec_sync.close_fds_except([report_fd])
    what = "lxc.execute.cmd" if c.execute_cmd else "lxc.init.cmd"
    step(what, exec_init, plan.argv, guest.init_env(plan, root.notify))
    os._exit(1)  # not reached: exec_init raises or does not return
