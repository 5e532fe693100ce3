"""``lxcsd attach``: run a command inside a running container, as ``lxc-attach`` does.

Process structure (P = the lxcsd process, on the host):

    P ── fork ──▶ A: non-dumpable at once; moves itself into the payload cgroup's ``.lxc``
    │               leaf (and init's v1 cgroups on a hybrid host), joins every namespace of
    │               init that differs from its own (one setns on init's pidfd) but stays in
    │               the host's pid namespace, where the container cannot see it: [pty from
    │               the container's devpts, master sent to P], cwd, then the command's
    │               privileges (bounding set, seccomp, ids, capabilities), and execs the
    │               stub from a sealed memfd
    │             stub (libexec/lxcsd-attach-exec.c, static): forks B into the container's
    │               pid namespace, forwards signals, exits with B's status
    │             B: [new session, the pty as its terminal], exec of the command
    └─ relays the terminal (pty mode) and returns A's exit status = the command's.

Against a hostile container (CVE-2019-5736 class): everything privileged happens in A,
invisible to the container; the first process it can see (B) holds only the command's
privileges, maps no host file (its /proc/PID/exe is a sealed memfd, no interpreter, no
shared library a privileged container could open through /proc/PID/map_files), and is
non-dumpable until its exec. Cost, measured here (medians of 200 on this shared 2-core
host): the sealed memfd copy of the 690 KB stub 0.28 ms; a fork and exec of /bin/true
through the stub 3.0 ms, against 2.8 ms for forking and exec'ing it from Python.

Decisions, with what LXC does (src/lxc/attach.c, cgroups/cgfsng.c):

- init: /run/lxcsd/NAME/state (init_pid) when that process still lives in the payload
  cgroup it names; else the unit's MainPID over D-Bus.
- cgroup: as liblxc on cgroup2 (cgroup_attach_leaf): the payload cgroup's ``.lxc`` child,
  made when missing (handed to the container's root for unprivileged containers, as the
  payload is); if a process cannot go there, the payload itself. Not init's own cgroup: a
  systemd guest moves itself into init.scope, which an attached process must not join.
  An empty ``.lxc`` is removed after the command.
- capabilities: the bounding set shrinks to the container's (lxc.cap.drop/keep on top of
  lxcsd's default set; net_admin only when init has a network namespace of its own); root
  in the container keeps exactly that set, another uid has none (no ambient capabilities,
  unlike init). seccomp: the container's policy (lxc.seccomp.profile, else the shipped
  default), loaded before the uid switch; lxc.no_new_privs honoured.
- security labels: the AppArmor label (or SELinux context) init got, read from the state
  file, written to B's exec attribute through the host's /proc (opened by P: a /proc the
  container mounted cannot stand in), so the command runs confined as init does.
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
- terminal: when any of stdin, stdout, stderr is a terminal (as lxc-attach), a pty
  allocated from the container's own devpts (A opens /dev/ptmx inside, so the pty belongs
  to the container), relayed by P (raw mode when stdin is a terminal) with window-size
  changes; the command never holds the caller's terminal, so TIOCSTI cannot type into it
  (the default seccomp policy denies TIOCSTI and TIOCLINUX too). Otherwise (``-T``, or no
  terminal at all) stdin/stdout/stderr are passed as they are.
"""

from __future__ import annotations

import os
import signal
import socket
import stat

from lxcsd import paths
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
        self.labels: tuple[list[tuple[str, str, str]], int] | None = None
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
    prepared.labels = _labels_of(name)
    # A pty whenever the caller has a terminal on any of fds 0-2 (as lxc-attach): the
    # command never gets the caller's terminal, so TIOCSTI cannot type into it.
    use_pty = opts.pty if opts.pty is not None else any(os.isatty(fd) for fd in (0, 1, 2))
    stub = sealed_stub()
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
        _process_a(pid, pidfd, payload, prepared, opts, report, child_sock, host_pty[1], stub)
    child_sock.close()
    os.close(pidfd)
    os.close(stub)
    if use_pty:
        os.close(host_pty[1])
    report.parent_side()
    try:
        return _parent(child, report, parent_sock, host_pty[0], payload)
    finally:
        parent_sock.close()


def sealed_stub(path: str | None = None) -> int:
    """A memfd copy of the exec stub (lxcsd.paths.attach_exec), sealed against any change:
    what the container can reach through /proc/PID/exe of the command-to-be. Measured:
    ~0.3 ms for the 690 KB static binary."""
    import fcntl

    path = path or paths.attach_exec()
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LxcsdError(f"{path} is missing", "install lxcsd with packaging/install.sh, "
                         "which builds it (gcc)") from None
    try:
        fd = _memfd("lxcsd-attach-exec")
        size = os.fstat(src).st_size
        offset = 0
        while offset < size:
            sent = os.sendfile(fd, src, offset, size - offset)
            if sent == 0:
                raise LxcsdError(f"{path}: short read")
            offset += sent
    finally:
        os.close(src)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    return fd


MFD_EXEC = 0x10  # Linux 6.3: say that the memfd will be executed (else the kernel warns)


def _memfd(name: str) -> int:
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        return os.memfd_create(name, flags | MFD_EXEC)
    except OSError as exc:
        if exc.errno != 22:  # EINVAL: a kernel before 6.3
            raise
    return os.memfd_create(name, flags)


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
               report: exec_sync.Report, sock: socket.socket, host_slave: int,
               stub: int) -> None:
    # Namespaces: all the host's. Cgroup: the caller's, until enter_cgroup.
    def step() -> None:
        # Before anything of the container can reach us, and until our exec: no ptrace, no
        # /proc/PID/{exe,mem,map_files} for anyone without CAP_SYS_PTRACE over the host.
        _sys.prctl(_sys.PR_SET_DUMPABLE, 0)
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


def _enter(prepared: _Prepared, opts: Options, report: exec_sync.Report,
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
    path = _find_command(argv[0], prepared.env.get("PATH", DEFAULT_PATH))
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


def _find_command(name: str, search: str) -> str | None:
    """name as execvp finds it in the container (PATH of the command's environment): the
    first executable file, else the first file (the stub then reports EACCES, 126); a name
    with a '/' as it is; None when there is none (127)."""
    if "/" in name:
        return name
    found = None
    for directory in search.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            found = found or candidate
    return found


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


def _labels_of(name: str) -> tuple[list[tuple[str, str, str]], int] | None:
    """The labels init got (state file) and a host /proc fd to apply them through."""
    from lxcsd.runtime import lsm, state

    labels = lsm.recorded(state.read(name) or {})
    if not labels:
        return None
    return labels, os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _apply_labels(labels: tuple[list[tuple[str, str, str]], int] | None) -> None:
    """In B: the labels take effect at its exec (the kernel wants B itself to write)."""
    if labels is not None:
        from lxcsd.runtime import lsm

        lsm.apply(lsm.prepare(labels[0], proc=labels[1]))


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
