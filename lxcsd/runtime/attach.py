"""``lxcsd attach``: run a command inside a running container, as ``lxc-attach`` does.

Process structure (P = the lxcsd process, on the host):

    P ── fork ──▶ A: moves itself into the payload cgroup's ``.lxc`` leaf, joins every
    │               namespace of init that differs from its own (one setns on init's pidfd),
    │               forks B (the pid namespace applies to children only), waits for it and
    │               exits with its status
    │             B: pid N of the container's pid namespace: [pty from the container's
    │               devpts, master sent to P] environment, bounding set, seccomp, uid/gid,
    │               capabilities, cwd, exec
    └─ relays the terminal (pty mode) and returns A's exit status = the command's.

Decisions, with what LXC does (src/lxc/attach.c, cgroups/cgfsng.c):

- init: /run/lxcsd/NAME/state (init_pid) when that process still lives in the payload
  cgroup it names; else the unit's MainPID over D-Bus.
- cgroup: as liblxc on cgroup2 (cgroup_attach_leaf): the payload cgroup's ``.lxc`` child,
  made when missing (handed to the container's root for unprivileged containers, as the
  payload is); if a process cannot go there, the payload itself. Not init's own cgroup: a
  systemd guest moves itself into init.scope, which an attached process must not join.
  An empty ``.lxc`` is removed after the command.
- capabilities: the bounding set shrinks to the container's (lxc.cap.drop/keep, with
  common.conf's default drop); root in the container keeps exactly that set, another uid
  has none (no ambient capabilities, unlike init). seccomp: the container's policy
  (lxc.seccomp.profile, else the shipped default), loaded before the uid switch;
  lxc.no_new_privs honoured.
- environment, as lxc-attach(1): kept by default; ``--clear-env`` starts empty but for
  ``--keep-var`` names and PATH (a default PATH when not kept). Then ``container=lxc``,
  lxc.environment and lxc.environment.runtime (NAME alone: the caller's value), then
  ``-v VAR=VALUE``.
- user: uid 0 and gid 0 of the container unless ``-u``/``-g``; with ``-u`` alone, the gid
  of that uid's /etc/passwd entry in the container. Unprivileged containers: these are ids
  of the container's user namespace (joined first), so root is the mapped root.
- command: the argv given, else the user's shell from the container's /etc/passwd (read
  inside, after joining the mount namespace), else /bin/sh. Exit status: the command's;
  128+N when a signal N killed it; 126/127 when it cannot be executed / is not found.
- cwd: ``--cwd``; else the caller's cwd if it exists in the container, else ``/``
  (liblxc's default).
- terminal: when stdin is a terminal, a pty allocated from the container's own devpts
  (B opens /dev/ptmx inside, so the pty belongs to the container), relayed by P in raw
  mode with window-size changes; otherwise stdin/stdout/stderr are passed as they are.
"""

from __future__ import annotations

import os
import signal
import socket

from lxcsd import sys as _sys
from lxcsd.errors import LxcsdError
from lxcsd.runtime import dev, exec_sync

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from lxcsd.config.model import Container

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = "/bin/sh"
ATTACH_LEAF = ".lxc"
# /proc/PID/ns entries and their setns flags; "user" first matters only for the
# one-fd-per-namespace fallback (a pidfd setns orders them itself).
NAMESPACES = (
    ("user", _sys.CLONE_NEWUSER), ("mnt", _sys.CLONE_NEWNS), ("pid", _sys.CLONE_NEWPID),
    ("uts", _sys.CLONE_NEWUTS), ("ipc", _sys.CLONE_NEWIPC), ("net", _sys.CLONE_NEWNET),
    ("cgroup", _sys.CLONE_NEWCGROUP), ("time", _sys.CLONE_NEWTIME),
)
# Signals lxcsd passes on to the attached command (as lxc-attach's signal proxy does).
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
EXIT_SETUP = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127


class Options:
    """What ``lxcsd attach`` was asked to do (see the module docstring for defaults)."""

    __slots__ = ("argv", "clear_env", "keep_vars", "set_vars", "uid", "gid", "cwd", "pty")

    def __init__(self, *, argv: Sequence[str] = (), clear_env: bool = False,
                 keep_vars: Sequence[str] = (), set_vars: Sequence[str] = (),
                 uid: int | None = None, gid: int | None = None, cwd: str | None = None,
                 pty: bool | None = None) -> None:
        self.argv = list(argv)
        self.clear_env = clear_env
        self.keep_vars = list(keep_vars)
        self.set_vars = list(set_vars)
        self.uid = uid
        self.gid = gid
        self.cwd = cwd
        self.pty = pty


# ------------------------------------------------------------------------------------------
# Pure parts: environment, passwd, exit status


def build_env(caller: Mapping[str, str], container: Container, opts: Options) -> dict[str, str]:
    """The command's environment, by lxc-attach's rules (module docstring)."""
    if opts.clear_env:
        env = {name: caller[name] for name in opts.keep_vars if name in caller}
        env.setdefault("PATH", DEFAULT_PATH)
    else:
        env = dict(caller)
    env["container"] = "lxc"
    for name, value in tuple(container.environment) + tuple(container.environment_runtime):
        if value is not None:
            env[name] = value
        elif name in caller:
            env[name] = caller[name]
    for item in opts.set_vars:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise LxcsdError(f"-v {item!r}: expected VAR=VALUE")
        env[name] = value
    return env


def passwd_entry(text: str, uid: int) -> tuple[int, str, str] | None:
    """(gid, home, shell) of uid in /etc/passwd text, None when absent."""
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2].isdigit() and int(fields[2]) == uid:
            gid = int(fields[3]) if fields[3].isdigit() else 0
            return gid, fields[5], fields[6]
    return None


def exit_code(status: int) -> int:
    """A waitpid status as a shell reports it: the exit code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


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


# ------------------------------------------------------------------------------------------
# Finding the container


def find_init(name: str) -> tuple[int, str | None]:
    """(init's PID, payload cgroup dir or None) of the running container name.

    The helper's state file first, when its init still lives in the payload cgroup (a
    recycled PID does not): it needs no D-Bus round trip (pystemd alone costs ~50 ms).
    Else the unit's MainPID."""
    from lxcsd.runtime import state

    fields = state.read(name) or {}
    pid = int(fields.get("init_pid", "0") or 0)
    payload = fields.get("payload_cgroup", "")
    if pid and _in_cgroup(pid, payload):
        return pid, payload
    pid = _main_pid(name) or 0
    if not pid:
        raise LxcsdError(f"container {name!r} is not running",
                         f"start it first: lxcsd start {name}")
    return pid, _payload_of(pid, name)


def _in_cgroup(pid: int, payload: str) -> bool:
    """Whether pid lives in payload or below it (a recycled PID does not)."""
    from lxcsd.runtime import cgroup

    try:
        directory = cgroup.own_cgroup_dir(pid)
    except (OSError, LxcsdError):
        return False
    return bool(payload) and (directory + "/").startswith(payload.rstrip("/") + "/")


def _main_pid(name: str) -> int | None:
    """MainPID of lxc@NAME.service; 0 when not running; None when D-Bus is unreachable."""
    from lxcsd.config.names import unit_name

    try:
        from lxcsd.systemd import Systemd

        with Systemd() as systemd:
            props = systemd.unit_properties(unit_name(name))
    except LxcsdError:
        return None
    if props.get("ActiveState") not in ("active", "reloading", "deactivating"):
        return 0
    return int(props.get("MainPID") or 0)


def _payload_of(pid: int, name: str) -> str | None:
    """The payload cgroup from init's cgroup: the lxc.payload.NAME directory on its path,
    else init's own cgroup."""
    from lxcsd.runtime import cgroup

    try:
        directory = cgroup.own_cgroup_dir(pid)
    except (OSError, LxcsdError):
        return None
    leaf = cgroup.payload_name(name)
    probe = directory
    while probe not in ("/", "") and os.path.basename(probe) != leaf:
        probe = os.path.dirname(probe)
    return probe if os.path.basename(probe) == leaf else directory


def attach_cgroup(payload: str, owner: tuple[int, int] | None) -> str:
    """The cgroup an attached process goes to (module docstring); made if needed."""
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
    for directory in dict.fromkeys((target, payload)):
        try:
            with open(os.path.join(directory, "cgroup.procs"), "w", encoding="ascii") as f:
                f.write(str(os.getpid()))
            return directory
        except OSError:
            continue
    raise LxcsdError(f"cannot move the attached process into {payload}")


# ------------------------------------------------------------------------------------------
# P


class _Prepared:
    """What A and B need, computed on the host before any namespace changes (imports, the
    seccomp filter: after setns nothing may be loaded from the host's file system)."""

    def __init__(self, container: Container, opts: Options, init_pid: int) -> None:
        from lxcsd.runtime import caps, plan

        private_net = any(name == "net" for name, _ in differing_namespaces(init_pid))
        self.keep_caps = plan.keep_caps(container, private_net=private_net)
        self.filter: Any = None
        profile = plan.seccomp_profile(container, "")
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


def attach(name: str, container: Container, opts: Options) -> int:
    """Run opts.argv (or the shell) in the running container; returns its exit status."""
    pid, payload = find_init(name)
    prepared = _Prepared(container, opts, pid)
    use_pty = opts.pty if opts.pty is not None else os.isatty(0)
    pidfd = os.pidfd_open(pid)
    # A host pty in reserve, for a container without a devpts of its own (lxc.pty.max
    # unset: liblxc mounts none) or a full one, as liblxc falls back to the host's.
    host_pty = os.openpty() if use_pty else (-1, -1)
    report = exec_sync.Report()
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX,
                                                socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    child = os.fork()
    if child == 0:
        parent_sock.close()
        report.child_side()
        if use_pty:
            os.close(host_pty[0])
        _process_a(pid, pidfd, payload, prepared, opts, report, child_sock, host_pty[1])
    child_sock.close()
    os.close(pidfd)
    if use_pty:
        os.close(host_pty[1])
    report.parent_side()
    try:
        return _parent(child, report, parent_sock, host_pty[0], payload)
    finally:
        parent_sock.close()


def _parent(child: int, report: exec_sync.Report, sock: socket.socket, host_master: int,
            payload: str | None) -> int:
    # Ctrl-C and Ctrl-\ are the command's (it shares the terminal's process group);
    # SIGTERM, SIGHUP, SIGUSR1/2 sent to lxcsd are passed on (A gives them to the command).
    old = [(sig, signal.signal(sig, signal.SIG_IGN)) for sig in (signal.SIGINT, signal.SIGQUIT)]
    old += [(sig, signal.signal(sig, _forward_to(child))) for sig in FORWARDED]
    master = -1
    try:
        if host_master >= 0:
            master = _receive_master(sock, host_master)
        message = report.result()
        if message is None and master >= 0:
            from lxcsd.runtime.attach_pty import relay

            relay(master, child)
        _, status = os.waitpid(child, 0)
    finally:
        for sig, handler in old:
            signal.signal(sig, handler)
        if master >= 0:
            os.close(master)
    code = exit_code(status)
    if message is not None:
        import sys

        print(f"lxcsd: attach: {message}", file=sys.stderr)
        code = code or 1
    _remove_empty_leaf(payload)
    return code


def _forward_to(pid: int) -> Any:
    def forward(signum: int, frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    return forward


def _receive_master(sock: socket.socket, host_master: int) -> int:
    """The pty master B chose: the container's (sent), the host's ("h"), or -1 (B died)."""
    msg, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if fds:
        os.close(host_master)
        return fds[0]
    if msg == b"h":
        return host_master
    os.close(host_master)
    return -1


def _remove_empty_leaf(payload: str | None) -> None:
    if payload is None:
        return
    try:
        os.rmdir(os.path.join(payload, ATTACH_LEAF))
    except OSError:
        pass  # in use by another attach, or never made


# ------------------------------------------------------------------------------------------
# A and B


def _process_a(pid: int, pidfd: int, payload: str | None, prepared: _Prepared, opts: Options,
               report: exec_sync.Report, sock: socket.socket, host_slave: int) -> None:
    # Namespaces: all the host's. Cgroup: the caller's, until enter_cgroup.
    def step() -> None:
        enter_cgroup(payload, prepared.owner)
        _join(pid, pidfd)
        # Namespaces: init's (user, mount: root and cwd are the container's root, uts, ipc,
        # net, cgroup); pid and time apply to children: fork.
        child = os.fork()
        if child == 0:
            _process_b(prepared, opts, report, sock, host_slave)
        for sig in (signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)  # the terminal's signals are B's alone
        for sig in FORWARDED:
            signal.signal(sig, _forward_to(child))
        os.close(report.write_fd)  # EOF for P when B has exec'd
        sock.close()
        _, status = os.waitpid(child, 0)
        os._exit(exit_code(status))

    exec_sync.run_reporting(report, step)
    os._exit(EXIT_SETUP)


def _join(pid: int, pidfd: int) -> None:
    namespaces = differing_namespaces(pid)
    flags = 0
    for _, flag in namespaces:
        flags |= flag
    if not flags:
        return
    try:
        _sys.setns(pidfd, flags)
        return
    except OSError as exc:
        if exc.errno != 22:  # EINVAL: a kernel before 5.8 (no pidfd setns)
            raise
    fds = [(name, os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
           for name, _ in namespaces]
    for name, fd in fds:
        try:
            _sys.setns(fd, 0)
        except OSError as exc:
            raise OSError(exc.errno, f"join the {name} namespace: {exc.strerror}") from None
        finally:
            os.close(fd)


def _process_b(prepared: _Prepared, opts: Options, report: exec_sync.Report,
               sock: socket.socket, host_slave: int) -> None:
    # Namespaces: all init's; pid N of its pid namespace. Root: the container's.
    def step() -> None:
        in_userns = prepared.owner is not None
        if in_userns:
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
            exec_sync.set_stdio(slave, controlling=True)
            os.close(slave)
        _chdir(opts.cwd, prepared.host_cwd)
        argv = opts.argv or [_shell(entry)]
        _privileges(prepared, uid, gid)
        _exec(argv, prepared.env, report)

    exec_sync.run_reporting(report, step)
    os._exit(EXIT_SETUP)


def _read_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


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


def _privileges(prepared: _Prepared, uid: int, gid: int) -> None:
    """Bounding set, seccomp, no_new_privs, then the ids: root keeps the container's
    capability set, any other uid ends with none."""
    caps = prepared.caps
    caps.drop_bounding(prepared.keep_caps)
    if prepared.filter is not None:
        prepared.load_seccomp(prepared.filter)
    if prepared.no_new_privs:
        _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
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


def _exec(argv: list[str], env: dict[str, str], report: exec_sync.Report) -> None:
    exec_sync.close_fds_except([report.write_fd])
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        status = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_CANNOT_EXEC
        report.fail(f"{argv[0]}: {exc.strerror}", status)
