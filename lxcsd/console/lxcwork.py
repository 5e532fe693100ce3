"""The slow answers of liblxc's command socket, in a short-lived child of lxcsd-console.

Two commands need more than the daemon should do in its one poll() loop (lxccmd.py):
GET_CONFIG_ITEM reads the container's config (lxcsd.config: ~0.9 MB and 3.5 ms to import,
and a config on a slow file system must not stall every console), STOP calls systemd over
D-Bus (libsystemd through ctypes: more memory again, and systemd may be busy). So the daemon
forks: the child keeps only the client's connection (and init's pidfd), answers on it and
exits; the daemon watches the child's pidfd and then closes the connection, or keeps it
when the exit status is KEEP (a stop: liblxc's client waits for the close that comes when
init has gone). fork() of the daemon costs well under a millisecond; the child's imports are
its own and leave with it. A child that hangs is ended by SIGALRM after TIMEOUT seconds.
"""

from __future__ import annotations

import _socket
import errno
import os
import select
import sys

from lxcsd.liblxc import wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # typeshed has no _signal
    from collections.abc import Callable

    Task = Callable[..., int]
else:
    import _signal

# Exit status: 0 answered; KEEP answered nothing yet, keep the connection (stop); anything
# else failed without answering (the daemon answers -EIO).
KEEP = 3
TIMEOUT = 30
SYSTEMD = ("org.freedesktop.systemd1", "/org/freedesktop/systemd1",
           "org.freedesktop.systemd1.Manager")
BUS_TIMEOUT_USEC = 20_000_000


def log(message: str) -> None:
    sys.stderr.write(f"<4>lxcsd-console: {message}\n")
    sys.stderr.flush()


def spawn(task: Task, conn_fd: int, pidfd: int, *args: str) -> int:
    """Fork a worker running ``task(connection, pidfd, *args)``; returns its pid."""
    return _fork([conn_fd, pidfd], lambda: task(_socket.socket(fileno=conn_fd), pidfd, *args),
                 args)


def spawn_detached(task: Callable[..., int], *args: str) -> int:
    """Fork a worker running ``task(*args)`` with no connection (the daemon only reaps
    it); returns its pid."""
    return _fork([], lambda: task(*args), args)


def _fork(keep: list[int], run: Callable[[], int], args: tuple[str, ...]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        _become_worker(keep)
        code = run()
    except BaseException as e:  # noqa: BLE001 - nothing may escape into the daemon's code
        try:
            log(f"worker for {args[:1]}: {e!r}")
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


def _become_worker(keep: list[int]) -> None:
    """No signal handler nor descriptor of the daemon: only the connection, init's pidfd
    and stdio stay (a listening socket kept here would outlive its container)."""
    _signal.set_wakeup_fd(-1)
    for signum in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGALRM):
        _signal.signal(signum, _signal.SIG_DFL)
    _signal.alarm(TIMEOUT)
    low = 3
    for fd in sorted(fd for fd in keep if fd >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def send(sock: _socket.socket, data: bytes) -> None:
    """All of data on the (non-blocking) connection, waiting as needed."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    while data:
        try:
            data = data[sock.send(data):]
        except BlockingIOError:
            poller.poll(TIMEOUT * 1000)


# -- the tasks --------------------------------------------------------------------------------


def config_item(sock: _socket.socket, pidfd: int, name: str, unit: str, key: str,
                lxcpath: str) -> int:
    from lxcsd.config.load import load_path
    from lxcsd.errors import ConfigError
    from lxcsd.liblxc.items import running_item
    from lxcsd.runtime.state import state_dir

    try:
        container = load_path(os.path.join(lxcpath, name, "config"), name)
    except ConfigError as e:
        log(f"{name}: {key} for an LXC tool: {e}")
        send(sock, wire.pack(-1))
        return 0
    text = running_item(container, key, state_dir(name))
    if text is None:
        send(sock, wire.pack(-1))  # liblxc's "no such value"
    else:
        data = os.fsencode(text) + b"\0"
        send(sock, wire.pack(0, len(data)) + data)
    return 0


def stop(sock: _socket.socket, pidfd: int, name: str, unit: str) -> int:
    """liblxc's STOP: ``systemctl stop UNIT`` (a stop job: the unit ends inactive and no
    Restart= policy brings it back), then init is ended at once, as liblxc's stop kills it:
    by the kernel's own "poweroff inside" (reboot(2) from its pid namespace), which kills
    init and reports it as halted (SIGINT: SuccessExitStatus=). A SIGKILL would leave the
    unit failed."""
    from lxcsd.systemd import sdbus

    try:
        sdbus.bus_call(*SYSTEMD, "StopUnit", [("s", unit), ("s", "replace")],
                      BUS_TIMEOUT_USEC)
    except (sdbus.BusError, OSError) as e:
        log(f"{name}: stop asked by an LXC tool failed: {e}")
        send(sock, wire.pack(-(e.errno or errno.EIO)))
        return 0
    force_poweroff(name, pidfd)
    return KEEP


def force_poweroff(name: str, pidfd: int) -> None:
    """reboot(POWER_OFF) from a child in init's pid namespace; only when init is PID 1 of a
    namespace of its own (a shared one would take others down too)."""
    from lxcsd import linux

    if pidfd < 0 or not _owns_pid_namespace(pidfd):
        log(f"{name}: init is not PID 1 of its own pid namespace: the stop job halts it")
        return
    linux.setns(pidfd, linux.CLONE_NEWPID)
    child = os.fork()
    if child == 0:
        try:
            linux.reboot(linux.LINUX_REBOOT_CMD_POWER_OFF)
        finally:
            os._exit(1)
    os.waitpid(child, 0)


def _owns_pid_namespace(pidfd: int) -> bool:
    with open(f"/proc/self/fdinfo/{pidfd}", "rb") as f:
        for line in f:
            if line.startswith(b"NSpid:"):
                return line.split()[-1] == b"1"
    return False


def remove_cgroup_v1(name: str, rel: str, entries: str) -> int:
    """A stopped container's leaves in the cgroup v1 hierarchies of a hybrid host (its
    init has exited, so has every process of its pid namespace): what ExecStopPost=
    lxcsd-helper cleanup did, without a process on `systemctl stop`'s path. ``entries``:
    the registration's cgroup_v1 field (lxcsd.runtime.cgroup_v1.Leaf.entry, space
    separated)."""
    from lxcsd.runtime import cgroup_v1

    for problem in cgroup_v1.remove_recorded(rel, entries.split()):
        log(f"{name}: cgroup v1 {problem} left behind")
    return 0

