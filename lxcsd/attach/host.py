"""P of ``lxcsd attach`` (lxcsd.attach's docstring): find the running container, prepare,
fork A, relay the terminal, and return the command's exit status."""

from __future__ import annotations

import os
import signal
import socket

from lxcsd import paths
from lxcsd.errors import LxcsdError
from lxcsd.runtime import exec_sync

from . import inside
from .options import Options, exit_code

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.config.model import Container

# Signals lxcsd passes on to the attached command (as lxc-attach's signal proxy does).
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


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
        from lxcsd.systemd.manager import Systemd

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


def attach(name: str, container: Container, opts: Options) -> int:
    """Run opts.argv (or the shell) in the running container; returns its exit status."""
    pid, payload = find_init(name)
    prepared = inside.Prepared(name, container, opts, pid)
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
        inside.run(pid, pidfd, payload, prepared, opts, report, child_sock, host_pty[1], stub)
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
            from lxcsd.attach.relay import relay

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
    inside.remove_attach_leaf(payload)
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
