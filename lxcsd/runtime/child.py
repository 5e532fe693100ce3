"""The container's side of ``lxcsd-helper start``: C1 (namespaces) and C2 (the new root, init).

    H ──fork──▶ C1: [unshare user; H writes maps] join shared namespaces, unshare the rest,
                    fork C2, send its pidfd, exit (or hold init until the hand-over)
                 └─▶ C2: PID 1 of the new pid namespace: build the root, hand the pty masters
                     to H, wait for H's go, pivot_root, drop privileges, exec init

Sync points (``exec_sync.Sync``, one socketpair shared by H, C1 and C2):
  0 H → C1   C1 is in the payload cgroup
  1 C1 → H   user namespace made            (only with lxc.idmap)
  2 H → C1   id maps written (+ the idmapped rootfs tree with idmap=container)
  3 C1 → H   C2 forked (+ C2's pidfd); C1 exits, or when H is not init's subreaper it
             stays init's parent until H hands init over (``hold_init``)
  4 H → C2   C2 is in its cgroup v1 leaves  (only on a host with v1 hierarchies): C2 makes
             the cgroup namespace now, before the first hook or the cgroup mount
  5 C2 → H   root built (+ console and tty pty masters)
  6 H → C2   host side done (network, prlimits, lxc.proc, start-host hooks): exec init

On a host with cgroup v1 hierarchies the container's cgroup namespace must be rooted at its
v1 leaves (lxcsd.runtime.cgroup_v1), and moving a process there waits for an RCU grace
period (6-17 ms measured here). So C1 leaves the cgroup namespace to C2, H moves C2 into
the leaves while C2 builds the root, and C2 unshares it once told (point 4): nothing the
container runs (hooks, init) ever sees a hierarchy's root, and the wait is off the critical
path.

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
    import signal as _signal  # typeshed has no _signal; signal's constants are the same
    from collections.abc import Callable
    from typing import Any, NoReturn

    from lxcsd.runtime.plan import StartPlan
else:
    import _signal  # not signal: it imports enum (see lxcsd.runtime.exec_sync)

SYNC_CGROUP, SYNC_USERNS, SYNC_MAPS, SYNC_FORKED, SYNC_V1, SYNC_BUILT, SYNC_GO = range(7)
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


def c1_main(plan: StartPlan, sync: exec_sync.Sync, report: exec_sync.Report,
            share_fds: list[tuple[str, int]], v1_leaves: bool,
            linger: tuple[int, int] | None = None) -> NoReturn:
    # Namespaces: all the host's. Cgroup: the payload (born there, clone3 CLONE_INTO_CGROUP);
    # in the v1 hierarchies, the helper's (v1_leaves: C2 is moved to its leaves at point 4).
    flags = plan.clone_flags & ~linux.CLONE_NEWCGROUP if v1_leaves else plan.clone_flags
    found: list[tuple[int, int, int]] = []  # C2's pid and pidfd, C2's "C1 is done" pipe

    def run() -> None:
        sync.wait(SYNC_CGROUP)
        idmapped_fd = -1
        for name, fd in share_fds:
            step(f"lxc.namespace.share.{name}", linux.setns, fd, 0)
            os.close(fd)
        if plan.userns:
            step("lxc.idmap: user namespace", linux.unshare, linux.CLONE_NEWUSER)
            sync.wake(SYNC_USERNS)
            fds = sync.wait(SYNC_MAPS, 1 if plan.rootfs.idmapped else 0)
            idmapped_fd = fds[0] if fds else -1
            # Become the namespace's root (the mapped host id) so what we make is its own.
            os.setgroups([])
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        step("lxc.namespace.clone: unshare", linux.unshare, flags)
        if plan.time_offsets:  # before any process is in the new time namespace: C2's fork
            step("lxc.time.offset", linux.write_file, "/proc/self/timens_offsets",
                 plan.time_offsets)
        gone_r, gone_w = os.pipe2(os.O_CLOEXEC)
        c2 = os.fork()
        if c2 == 0:
            os.close(gone_w)
            for fd in linger or ():
                os.close(fd)
            c2_main(plan, sync, report, idmapped_fd, gone_r, v1_leaves)
        c2_fd = os.pidfd_open(c2)
        sync.wake(SYNC_FORKED, [c2_fd])
        found.append((c2, c2_fd, gone_w))

    exec_sync.run_reporting(report, run)
    if linger is not None:
        c2, c2_fd, gone_w = found[0]
        sync.close()  # H and C2 see EOF when the other ends; the report pipe's EOF is exec
        os.close(report.write_fd)
        os.close(gone_w)
        hold_init(c2, c2_fd, *linger)
    os._exit(0)


def hold_init(c2: int, c2_fd: int, release: int, status_w: int) -> NoReturn:
    """C1 stays init's parent until H hands it over (when H is not its subreaper,
    ``plan.subreaper``): if init ends before, C1 reaps it and passes its wait status on
    ``status_w`` (its decimal text), so that the unit still ends as init did
    (lxcsd.runtime.start.init_ended). On H's word on ``release`` C1 stops init (SIGSTOP,
    which reaches a pid namespace's init from outside) and exits, saying ``stopped``: init
    becomes the child of systemd, which then takes it as a main process of its own (and
    waits for the KillSignal= it sends, docs/design.md "Process design") while it cannot
    end unseen; H continues it once systemd took it (``start.Starter.handover``). Only the
    parent sees how init ended: /proc and pidfd report a reboot(2) inside the container
    (its SIGHUP) as exit 0, hence a parent that lives this long. H's death (EOF without a
    word) ends C1 without stopping init."""
    import select

    poller = select.poll()
    poller.register(c2_fd, select.POLLIN)
    poller.register(release, select.POLLIN)
    while True:
        try:
            poller.poll()
            break
        except InterruptedError:
            continue
    result = os.waitid(os.P_PID, c2, os.WEXITED | os.WNOHANG)
    if (result is None or not result.si_pid) and os.read(release, 1):
        os.kill(c2, _signal.SIGSTOP)
        result = os.waitid(os.P_PID, c2, os.WEXITED | os.WSTOPPED)
    if result is not None and result.si_pid:
        stopped = result.si_code == os.CLD_STOPPED
        os.write(status_w, b"stopped" if stopped else str(wait_status(result)).encode())
    os._exit(0)


def wait_status(result: os.waitid_result) -> int:
    """A waitid result as the wait status waitpid gives (what ready.exit_as takes)."""
    if result.si_code == os.CLD_EXITED:
        return (result.si_status & 0xFF) << 8
    return result.si_status | (0x80 if result.si_code == os.CLD_DUMPED else 0)


# ------------------------------------------------------------------------------------------
# C2


class Root:
    """What C2's build steps share: fds of the new root and its /dev, the pty masters."""

    __slots__ = ("root_fd", "dev_fd", "devpts_fd", "console_slave", "masters", "tty_slaves",
                 "filter", "hooks", "labels", "notify", "sync", "cgroupns_pending")

    def __init__(self, sync: exec_sync.Sync, cgroupns_pending: bool) -> None:
        self.root_fd = self.dev_fd = self.devpts_fd = self.console_slave = -1
        self.masters: list[int] = []
        self.tty_slaves: list[int] = []
        self.filter: Any = None
        self.hooks: Any = None
        self.labels: list[tuple[int, str, str]] = []
        self.notify = False  # /run/host/notify bound (lxcsd.runtime.guestfs)
        self.sync = sync
        self.cgroupns_pending = cgroupns_pending  # sync point 4 still to come


def c2_main(plan: StartPlan, sync: exec_sync.Sync, report: exec_sync.Report, idmapped_fd: int,
            c1_gone: int, v1_leaves: bool) -> NoReturn:
    # Namespaces: user (maps written, we are its root) when lxc.idmap is set; new mount (a
    # copy of the host's), pid (we are its PID 1), uts, ipc, cgroup (rooted at the payload;
    # with v1 leaves, made by us at point 4), net unless lxc.net.0.type = none or
    # kept/shared; shared ones joined by C1. Root and /proc: still the host's.
    def run() -> None:
        root = Root(sync, v1_leaves)
        _prepare(plan, root)
        build_root(plan, root, idmapped_fd)
        cgroup_namespace(plan, root)
        os.read(c1_gone, 1)  # EOF: C1 sent point 3 and exited, so point 5 comes after it
        os.close(c1_gone)
        sync.wake(SYNC_BUILT, root.masters)
        for fd in root.masters:
            os.close(fd)
        sync.wait(SYNC_GO)
        finish(plan, root, report.write_fd)

    exec_sync.run_reporting(report, run)
    os._exit(1)


def _prepare(plan: StartPlan, root: Root) -> None:
    """Steps that need the host's /proc and module files: sysctls (per-namespace values
    written through the host's /proc, which shows our namespaces' values), hooks imported,
    labels and seccomp prepared."""
    if plan.sysctls:
        limits = optional_module("limits", "lxc.sysctl")
        step("lxc.sysctl", limits.apply_sysctls, plan.sysctls)
    if plan.hooks is not None and any(plan.hooks.has(hook) for hook in C2_HOOKS):
        # imported now: the start hook runs after pivot_root
        root.hooks = optional_module("hooks", "lxc.hook.*")
    if plan.labels:
        from lxcsd.runtime import lsm

        root.labels = step("security label", lsm.prepare, plan.labels)
    if plan.seccomp_bpf is not None:
        root.filter = step(f"lxc.seccomp.profile {plan.seccomp_profile}", _seccomp_program,
                           plan)


def _warn(message: str) -> None:
    os.write(2, f"lxcsd: warning: {message}\n".encode())


def _seccomp_program(plan: StartPlan) -> bytes | None:
    """The plan's compiled policy, or None when this process is already confined (the
    host runs lxcsd under seccomp) and lxc.seccomp.allow_nesting is not set: liblxc then
    skips the policy too, since the stacked filter might forbid what init needs in ways it
    cannot see."""
    from lxcsd.runtime import seccomp_policy

    if seccomp_policy.already_confined() and not plan.seccomp_nesting:
        _warn(f"lxc.seccomp.profile {plan.seccomp_profile} not loaded: already under a "
              "seccomp filter (set lxc.seccomp.allow_nesting = 1 to stack it)")
        return None
    return plan.seccomp_bpf


def cgroup_namespace(plan: StartPlan, root: Root) -> None:
    """With cgroup v1 leaves: wait until H moved us into them (point 4), then make the
    container's cgroup namespace, rooted there and at the payload. Once, before anything
    of the container's runs or mounts a cgroup file system."""
    if not root.cgroupns_pending:
        return
    root.cgroupns_pending = False
    root.sync.wait(SYNC_V1)
    if plan.clone_flags & linux.CLONE_NEWCGROUP:
        step("lxc.namespace.clone: cgroup namespace", linux.unshare, linux.CLONE_NEWCGROUP)


def _hook(plan: StartPlan, root: Root, hook: str) -> None:
    if root.hooks is not None and plan.hooks is not None and plan.hooks.has(hook):
        cgroup_namespace(plan, root)  # hooks run in the container's cgroup namespace
        step(f"lxc.hook.{hook}", root.hooks.run, plan.hooks, hook,
             rootfs_mount=plan.rootfs_mount)


def build_root(plan: StartPlan, root: Root, idmapped_fd: int) -> None:
    """Everything before pivot_root, in LXC's order (conf.c lxc_setup)."""
    step("mount namespace: make / a recursive slave", mounts.make_rslave)
    _hook(plan, root, "pre-mount")
    root.root_fd = step(f"lxc.rootfs.path {plan.rootfs.spec}", _mount_rootfs, plan, idmapped_fd)
    host_dev = os.open("/dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    null = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
    if plan.autodev:
        root.dev_fd = step("lxc.autodev: /dev tmpfs", dev.mount_dev, root.root_fd,
                           plan.autodev_size)
    _mount_auto(plan, root)
    root.notify = step("lxcsd.init.notify: /run tmpfs", guestfs.prepare_run, plan,
                       root.root_fd)
    _mount_entries(plan, root)
    _hook(plan, root, "mount")
    if plan.autodev:
        step("lxc.autodev: device nodes", dev.fill_dev, root.dev_fd, host_dev)
        if plan.optional_devices:
            step("lxc.autodev: " + ", ".join(plan.optional_devices), dev.fill_optional,
                 root.dev_fd, host_dev, plan.optional_devices)
        _hook(plan, root, "autodev")
    else:
        root.dev_fd = step("/dev of the rootfs", _open_dir, root.root_fd, "dev")
        os.close(step("/dev/pts of the rootfs", _open_dir, root.dev_fd, "pts"))
    if plan.auto_cgroup:
        cgroup_namespace(plan, root)
        step(f"lxc.mount.auto {plan.auto_cgroup}:{plan.auto_cgroup_mode}", mounts.mount_cgroup,
             root.root_fd, plan.auto_cgroup_mode)
    step("lxc.pty.max: devpts", _ptys, plan, root)
    if plan.autodev:
        step("lxc.autodev: /dev links, shm, mqueue", _dev_extras, root.dev_fd)
    files, dirs, readonly = mounts.protected_paths(plan.auto_proc, plan.auto_sys)
    step("masked paths", mounts.mask_paths, root.root_fd, files, dirs, null)
    step("read-only paths", mounts.make_readonly, root.root_fd, readonly)
    step("boot id", guestfs.bind_boot_id, root.root_fd, root.dev_fd)
    if root.notify:  # last: nothing the config mounts may hide it
        step("lxcsd.init.notify: /run/host", guestfs.make_run_host, plan, root.root_fd)
    os.close(host_dev)
    os.close(null)
    _identity(plan)


def _mount_auto(plan: StartPlan, root: Root) -> None:
    """lxc.mount.auto proc and sys."""
    net_rw = 12 in plan.keep_caps  # CAP_NET_ADMIN: /proc/sys/net stays writable
    if plan.auto_proc:
        step(f"lxc.mount.auto proc:{plan.auto_proc}", _in_userns_hint, plan, mounts.mount_proc,
             root.root_fd, plan.auto_proc, net_rw=net_rw)
    if plan.auto_sys:
        step(f"lxc.mount.auto sys:{plan.auto_sys}", _in_userns_hint, plan, mounts.mount_sys,
             root.root_fd, plan.auto_sys)


def _identity(plan: StartPlan) -> None:
    """Personality, host name, loopback, session keyring: the last steps before C2 reports
    the root built."""
    if plan.personality is not None:
        step(f"lxc.arch {plan.arch}", linux.personality, plan.personality)
    if plan.uts_name and plan.clone_flags & linux.CLONE_NEWUTS:
        step(f"lxc.uts.name {plan.uts_name}", linux.sethostname, plan.uts_name)
    if plan.net_kind == "empty" and plan.clone_flags & linux.CLONE_NEWNET:
        step("lxc.net: loopback up", linux.interface_up, "lo")
    if plan.keyring_session:
        limits = optional_module("limits", "lxc.keyring.session")
        step("lxc.keyring.session", limits.new_session_keyring)


def _in_userns_hint(plan: StartPlan, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
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


def _mount_rootfs(plan: StartPlan, idmapped_fd: int) -> int:
    r = plan.rootfs
    if r.kind == "overlay":  # (H made the mount point: a mapped root may not write there)
        return mounts.mount_rootfs("overlay", r.path, plan.rootfs_mount, lower=r.lower,
                                   upper=r.upper or None, flags=r.flags,
                                   clear_flags=r.clear_flags, propagation=r.propagation,
                                   data=r.data)
    return mounts.mount_rootfs("dir", r.path, plan.rootfs_mount, idmapped_fd=idmapped_fd,
                               flags=r.flags, clear_flags=r.clear_flags,
                               propagation=r.propagation, data=r.data)


def _mount_entries(plan: StartPlan, root: Root) -> None:
    """lxc.mount.fstab, lxc.mount.entry and the nesting helpers, as the plan lists them."""
    for op in plan.mounts:
        step(op.what, mounts.mount_entry, root.root_fd, op.source, op.target, op.fstype,
             flags=op.flags, clear_flags=op.clear_flags, propagation=op.propagation,
             data=op.data, bind=op.bind, recursive=op.recursive, create=op.create,
             optional=op.optional, relative=op.relative)


def _ptys(plan: StartPlan, root: Root) -> None:
    """A new devpts instance (lxc.pty.max ptys, plus the console and lxc.tty.max ttys, as
    LXC counts), the console and ttys allocated from it; their masters go to H."""
    count = plan.pty_max + plan.tty_max + 1
    root.devpts_fd = dev.mount_devpts(root.dev_fd, count, gid=plan.devpts_gid)
    if plan.console:
        master, slave, _ = dev.allocate_pty(root.devpts_fd)
        root.masters.append(master)
        root.console_slave = slave
        dev.bind_console(root.dev_fd, slave, plan.tty_dir)
    elif plan.console_device:
        # A host device (lxc.console.path), opened while the host's /dev is reachable.
        root.console_slave = os.open(plan.console_device,
                                     os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        dev.bind_console(root.dev_fd, plan.console_device, plan.tty_dir)  # a path: no chmod
    slaves = []
    for _ in range(plan.tty_max):
        master, slave, _ = dev.allocate_pty(root.devpts_fd)
        root.masters.append(master)
        slaves.append(slave)
    dev.bind_ttys(root.dev_fd, slaves, plan.tty_dir)
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


def finish(plan: StartPlan, root: Root, report_fd: int) -> NoReturn:
    """pivot_root, the start hooks, then privileges down and exec (seccomp before caps: it
    needs CAP_SYS_ADMIN without no_new_privs, caps.apply)."""
    from lxcsd.runtime import caps, seccomp_policy

    step("pivot_root", mounts.pivot_root, root.root_fd)
    _hook(plan, root, "start")
    step(f"lxc.init.cwd {plan.cwd}", os.chdir, plan.cwd)
    stdio = root.console_slave if root.console_slave >= 0 else \
        os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    # As liblxc: init gets the console as stdio in a session of its own, but not as its
    # controlling terminal, so that a getty or shell init starts on it can take it (in an
    # unprivileged container nothing could steal it from init: that needs CAP_SYS_ADMIN
    # in the host's user namespace).
    step("console: init's stdio", _session_stdio, stdio)
    load = None
    if root.filter is not None:
        program = root.filter

        def load() -> None:
            seccomp_policy.load_program(program)

    if root.labels:
        from lxcsd.runtime import lsm

        step("security label", lsm.apply, root.labels)
    step("lxc.cap.drop/lxc.cap.keep", caps.apply, plan.keep_caps, uid=plan.init_uid,
         gid=plan.init_gid, groups=plan.init_groups, load_seccomp=load)
    if plan.no_new_privs:
        step("lxc.no_new_privs", linux.prctl, linux.PR_SET_NO_NEW_PRIVS, 1)
    exec_sync.close_fds_except([report_fd])
    step(plan.exec_key, exec_init, plan.argv, guest.init_env(plan, root.notify))
    os._exit(1)  # not reached: exec_init raises or does not return
