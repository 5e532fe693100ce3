"""A and B of ``lxcsd attach`` (lxcsd.attach's docstring): from the fork in P up to the
exec of the stub, which forks the command into the container's pid namespace.

``Prepared`` is computed by P on the host before anything changes namespace (imports, the
seccomp filter: after setns nothing may be loaded from the host's file system); ``run`` is
A's whole life; ``enter_cgroup`` and ``remove_attach_leaf`` the cgroup it goes to.
"""

from __future__ import annotations

import os
import socket
import stat

from lxcsd import linux
from lxcsd.errors import LxcsdError
from lxcsd.runtime import dev, exec_sync
from lxcsd.runtime.execpath import DEFAULT_PATH, find_command

from .options import DEFAULT_SHELL, EXIT_NOT_FOUND, EXIT_SETUP, Options, build_env, passwd_entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from lxcsd.config.model import Container

ATTACH_LEAF = ".lxc"
# /proc/PID/ns entries and their setns flags; "user" first matters only for the
# one-fd-per-namespace fallback (a pidfd setns orders them itself).
NAMESPACES = (
    ("user", linux.CLONE_NEWUSER), ("mnt", linux.CLONE_NEWNS), ("pid", linux.CLONE_NEWPID),
    ("uts", linux.CLONE_NEWUTS), ("ipc", linux.CLONE_NEWIPC), ("net", linux.CLONE_NEWNET),
    ("cgroup", linux.CLONE_NEWCGROUP), ("time", linux.CLONE_NEWTIME),
)


def differing_namespaces(pid: int) -> list[tuple[str, int]]:
    """The namespaces of pid that this process is not in (joining one's own user
    namespace is an error, and a container may share some with the host)."""
    found = []
    for name, flag in NAMESPACES:
        try:
            theirs = os.stat(f"/proc/{pid}/ns/{name}").st_ino
            ours = os.stat(f"/proc/self/ns/{name}").st_ino
        except FileNotFoundError:
            continue  # a kernel without this namespace type
        if theirs != ours:
            found.append((name, flag))
    return found


def attach_cgroup(payload: str, owner: tuple[int, int] | None) -> str:
    """The cgroup an attached process goes to (lxcsd.attach's docstring); made if needed."""
    leaf = os.path.join(payload, ATTACH_LEAF)
    try:
        os.mkdir(leaf, 0o755)
        if owner is not None:
            from lxcsd.runtime import cgroup

            cgroup.chown_delegated(leaf, *owner)
    except FileExistsError:
        pass
    except OSError:
        return payload
    return leaf


def enter_cgroup(payload: str | None, owner: tuple[int, int] | None) -> str | None:
    """Move this process into the attach cgroup; returns where it went (None: nowhere)."""
    if payload is None:
        return None
    target = attach_cgroup(payload, owner)
    errors = []
    for directory in dict.fromkeys((target, payload)):
        try:
            with open(os.path.join(directory, "cgroup.procs"), "w", encoding="ascii") as f:
                f.write(str(os.getpid()))
            return directory
        except OSError as exc:
            errors.append(f"{directory}: {exc.strerror}")
    raise LxcsdError(f"cannot move the attached process into {payload} ({'; '.join(errors)})")


def remove_attach_leaf(payload: str | None) -> None:
    """After the command: the attach leaf, unless another attach uses it."""
    if payload is None:
        return
    try:
        os.rmdir(os.path.join(payload, ATTACH_LEAF))
    except OSError:
        pass  # in use by another attach, or never made


class Prepared:
    """What A and B need, computed on the host before any namespace changes (imports, the
    seccomp filter: after setns nothing may be loaded from the host's file system)."""

    def __init__(self, name: str, container: Container, opts: Options, init_pid: int) -> None:
        from lxcsd.runtime import caps, compiler

        private_net = any(name == "net" for name, _ in differing_namespaces(init_pid))
        self.keep_caps = compiler.keep_caps(container, private_net=private_net)
        self.filter: Any = None
        profile = compiler.seccomp_profile(container, "")
        if profile:
            from lxcsd.runtime import seccomp_policy

            policy = seccomp_policy.read(profile)
            if seccomp_policy.wants_notify(policy):
                # Nobody would answer the notifications: the command's calls would hang.
                raise LxcsdError(f"{profile}: seccomp notify actions are not supported "
                                 "by lxcsd attach")
            self.filter, _ = seccomp_policy.build_filter(policy)
            self.load_seccomp = seccomp_policy.load
        self.no_new_privs = bool(container.no_new_privs)
        self.env = build_env(os.environ, container, opts)
        self.owner = _root_owner(container)
        self.caps = caps
        self.labels = _labels_of(name)
        try:
            self.host_cwd = os.getcwd()
        except OSError:
            self.host_cwd = "/"


def _root_owner(container: Container) -> tuple[int, int] | None:
    """Host uid/gid of the container's root for unprivileged containers."""
    if not container.idmaps:
        return None
    uid = next((m.host_id for m in container.idmaps if m.kind == "u" and m.ns_id == 0), None)
    gid = next((m.host_id for m in container.idmaps if m.kind == "g" and m.ns_id == 0), None)
    return (uid, gid) if uid is not None and gid is not None else None


def _labels_of(name: str) -> tuple[list[tuple[str, str, str]], int] | None:
    """The labels init got (state file) and a host /proc fd to apply them through."""
    from lxcsd.runtime import lsm, state

    labels = lsm.recorded(state.read(name) or {})
    if not labels:
        return None
    return labels, os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


# ------------------------------------------------------------------------------------------
# A and B


def run(pid: int, pidfd: int, payload: str | None, prepared: Prepared, opts: Options,
        report: exec_sync.Report, sock: socket.socket, host_slave: int, stub: int) -> NoReturn:
    """A: join init's cgroup and namespaces, then become the command (via the stub)."""
    # Namespaces: all the host's. Cgroup: the caller's, until enter_cgroup.
    def step() -> None:
        # Before anything of the container can reach us, and until our exec: no ptrace, no
        # /proc/PID/{exe,mem,map_files} for anyone without CAP_SYS_PTRACE over the host.
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        enter_cgroup(payload, prepared.owner)
        from lxcsd.runtime import cgroup_v1

        cgroup_v1.join_cgroups_of(pid)  # init's, on a host with v1 hierarchies
        _join(pid, pidfd)
        # Namespaces: init's (user, mount: root and cwd are the container's root, uts, ipc,
        # net, cgroup); pid and time apply to our children: the stub forks the command.
        # We stay in the host's pid namespace, where the container cannot see us.
        _enter(prepared, opts, report, sock, host_slave, stub)

    exec_sync.run_reporting(report, step)
    os._exit(EXIT_SETUP)


def _enter(prepared: Prepared, opts: Options, report: exec_sync.Report,
           sock: socket.socket, host_slave: int, stub: int) -> None:
    """In the container's namespaces: terminal, cwd, the command's privileges, then exec
    the stub, which forks the command into the container's pid namespace."""
    if prepared.owner is not None:
        # Host root is unmapped here: become the container's root first (keeping the
        # capabilities the new user namespace gave us).
        prepared.caps.switch_user(0, 0)
    passwd = _read_file("/etc/passwd")
    uid = opts.uid if opts.uid is not None else 0
    entry = passwd_entry(passwd, uid) if passwd else None
    gid = opts.gid if opts.gid is not None else (entry[0] if entry and opts.uid else 0)
    slave = _terminal(sock, host_slave) if host_slave >= 0 else -1
    sock.close()
    if slave >= 0:
        _try_fchown(slave, uid, gid)
        exec_sync.set_stdio(slave, controlling=False)  # the stub's child takes it as ctty
        os.close(slave)
    _chdir(opts.cwd, prepared.host_cwd)
    argv = opts.argv or [_shell(entry)]
    # The security label (lxc.apparmor.profile, change-on-exec) is written while we still
    # may (before no_new_privs and the uid switch); it applies from the exec of the stub,
    # so the stub and the command run confined.
    _apply_labels(prepared.labels)
    # The last privileged step: from here on we hold only what the command will hold.
    _privileges(prepared, uid, gid)
    path = find_command(argv[0], prepared.env.get("PATH", DEFAULT_PATH))
    if path is None:
        report.fail(f"{argv[0]}: No such file or directory", EXIT_NOT_FOUND)
    report_fd = os.dup(report.write_fd)
    os.set_inheritable(report_fd, True)  # for the stub, which makes it close-on-exec
    exec_sync.close_fds_except([report_fd, stub])
    stub_argv = ["lxcsd-attach-exec", "t" if slave >= 0 else "-", str(report_fd), path or "",
                 *argv]
    try:
        os.execve(stub, stub_argv, prepared.env)
    except OSError as exc:
        report.fail(f"exec of the attach stub failed: {exc.strerror}", EXIT_SETUP)


def _join(pid: int, pidfd: int) -> None:
    namespaces = differing_namespaces(pid)
    flags = 0
    for _, flag in namespaces:
        flags |= flag
    if not flags:
        return
    try:
        linux.setns(pidfd, flags)
        return
    except OSError as exc:
        if exc.errno != 22:  # EINVAL: a kernel before 5.8 (no pidfd setns)
            raise
    fds = [(name, os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
           for name, _ in namespaces]
    for name, fd in fds:
        try:
            linux.setns(fd, 0)
        except OSError as exc:
            raise OSError(exc.errno, f"join the {name} namespace: {exc.strerror}") from None
        finally:
            os.close(fd)


def _read_file(path: str, limit: int = 1 << 20) -> str | None:
    """A regular file of the container (its /etc/passwd), None otherwise: the container
    may have made it a FIFO, which a plain open would wait on forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _terminal(sock: socket.socket, host_slave: int) -> int:
    """A pty from the container's devpts (its master goes to P), else the host's reserve
    (P is told "h"); returns the slave."""
    try:
        devpts = os.open("/dev/pts", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            master, slave, _ = dev.allocate_pty(devpts)
        finally:
            os.close(devpts)
    except OSError:
        sock.send(b"h")
        return host_slave
    socket.send_fds(sock, [b"m"], [master])
    os.close(master)
    os.close(host_slave)
    return slave


def _try_fchown(fd: int, uid: int, gid: int) -> None:
    try:
        os.fchown(fd, uid, gid)
    except OSError:
        pass  # lxc-attach too goes on with a terminal it could not hand over


def _chdir(cwd: str | None, host_cwd: str) -> None:
    if cwd is not None:
        try:
            os.chdir(cwd)
        except OSError as exc:
            raise OSError(exc.errno, f"--cwd {cwd}: {exc.strerror}") from None
        return
    try:
        os.chdir(host_cwd)
    except OSError:
        os.chdir("/")


def _shell(entry: tuple[int, str, str] | None) -> str:
    if entry and entry[2] and os.access(entry[2], os.X_OK):
        return entry[2]
    return DEFAULT_SHELL


def _apply_labels(labels: tuple[list[tuple[str, str, str]], int] | None) -> None:
    """In B: the labels take effect at its exec (the kernel wants B itself to write)."""
    if labels is not None:
        from lxcsd.runtime import lsm

        lsm.apply(lsm.prepare(labels[0], proc=labels[1]))


def _privileges(prepared: Prepared, uid: int, gid: int) -> None:
    """Bounding set, seccomp, no_new_privs, then the ids: root keeps the container's
    capability set, any other uid ends with none."""
    caps = prepared.caps
    caps.drop_bounding(prepared.keep_caps)
    if prepared.filter is not None:
        prepared.load_seccomp(prepared.filter)
    if prepared.no_new_privs:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    try:
        os.setgroups([])
    except PermissionError:
        pass  # setgroups denied in this user namespace: liblxc goes on too
    try:
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # for uid != 0 the kernel clears every capability set
    except OSError as exc:
        raise LxcsdError(f"cannot switch to uid {uid} gid {gid}: {exc.strerror}",
                         "an unprivileged container knows only the ids its lxc.idmap maps") \
            from None
    if uid == 0:
        caps.set_caps(prepared.keep_caps)
