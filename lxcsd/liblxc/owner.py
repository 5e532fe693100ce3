"""Who runs a container, by its liblxc command socket: lxcsd, LXC's lxc-start, or nobody.

- :func:`claim` (``lxcsd-helper start``, before it touches anything): bind the container's
  command socket. The bind is liblxc's own exclusion (lxc_server_init: EADDRINUSE is
  "appears to be already running"), so from here on lxc-start refuses the container, and a
  container lxc-start already runs makes this start refuse with one line naming its PID.
  The bound socket goes to lxcsd-console with the console (handoff.py), which answers it.
- :func:`probe` (the helper's cleanup, ``lxcsd ls|info|start``, the generator): ask the
  socket. lxcsd-console answers lxcsd's private LXCSD_WHO question; LXC's monitor answers
  it -ENOSYS, as any command it does not know.

Standard library only (_socket, struct): on the helper's and the generator's hot paths. A
probe of a container nobody runs is one refused connect() (~20 µs); every wait is bounded.
"""

from __future__ import annotations

import _socket
import errno
import os
import struct
import time

from lxcsd.errors import LxcsdError
from lxcsd.liblxc import wire

STALE_WAIT = 3.0  # seconds a previous life of the same container may take to let go
PROBE_TIMEOUT = 1.0


class Holder:
    """A running container's command socket and who answers it."""

    __slots__ = ("owner", "unit", "init_pid", "monitor_pid", "state")

    def __init__(self, owner: str, unit: str = "", init_pid: int = 0, monitor_pid: int = 0,
                 state: int = -1) -> None:
        self.owner = owner  # "lxcsd", "lxc", or "unknown" (held, not answering)
        self.unit = unit
        self.init_pid = init_pid
        self.monitor_pid = monitor_pid  # the process that listens (lxc-start's monitor)
        self.state = state

    @property
    def is_lxc(self) -> bool:
        return self.owner == "lxc"

    def describe(self) -> str:
        """"lxc-start (PID 1234)" and the like, for messages."""
        if self.owner == "lxcsd":
            return f"lxcsd ({self.unit}, init PID {self.init_pid})"
        if self.owner == "unknown":
            return "a process that does not answer"
        pid = self.monitor_pid or self.init_pid
        return f"{_comm(pid) or 'an LXC monitor'} (PID {pid})" if pid else "an LXC monitor"


class AlreadyRunning(LxcsdError):
    """The container runs under something else: the start must not touch it."""


def _monitor_of(init_pid: int, listener: int) -> int:
    """LXC's monitor: init's parent (lxc-start clones init); else the process that made the
    socket listen, if it lives (lxc-start -d makes it before it daemonizes)."""
    try:
        with open(f"/proc/{init_pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"PPid:"):
                    parent = int(line.split()[1])
                    if _comm(parent) == "lxc-start":
                        return parent
    except (OSError, ValueError):
        pass
    return listener if listener and _comm(listener) else 0


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _connect(address: bytes, timeout: float) -> _socket.socket | None:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    return sock


def ask(address: bytes, cmd: int, timeout: float = PROBE_TIMEOUT) -> tuple[int, int, bytes,
                                                                          int] | None:
    """One request without data: (ret, pointer value, data, listener's pid), or None when
    nothing listens. Raises TimeoutError when the listener does not answer in time."""
    sock = _connect(address, timeout)
    if sock is None:
        return None
    try:
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        sock.sendall(wire.pack(cmd))
        header = _recv_exactly(sock, wire.RSP.size)
        ret, datalen, value = wire.unpack(header)
        data = _recv_exactly(sock, datalen) if 0 < datalen <= wire.DATA_MAX else b""
    finally:
        sock.close()
    return ret, value, data, struct.unpack("3i", cred)[0]


def _recv_exactly(sock: _socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "the command socket closed early")
        data += chunk
    return data


def probe(lxcpath: str, name: str, timeout: float = PROBE_TIMEOUT) -> Holder | None:
    """Who answers container ``name``'s command socket; None when nobody listens."""
    address = wire.socket_name(lxcpath, name)
    try:
        who = ask(address, wire.LXCSD_WHO, timeout)
        if who is None:
            return None
        ret, _, data, listener = who
        owner = "lxcsd" if ret == 0 and data.startswith(b"lxcsd") else "lxc"
        unit = data.rstrip(b"\0").decode(errors="replace").partition(" ")[2]
        pid = ask(address, wire.GET_INIT_PID, timeout)
        state = ask(address, wire.GET_STATE, timeout)
    except (TimeoutError, ConnectionError):
        return Holder("unknown")
    init = pid[1] if pid else 0
    monitor = _monitor_of(init, listener) if owner == "lxc" else 0
    return Holder(owner, unit, init, monitor, state[1] if state else -1)


def claim(lxcpath: str, name: str, wait: float = STALE_WAIT) -> int:
    """Bind and listen on container ``name``'s command socket; returns the descriptor
    (close-on-exec). Raises AlreadyRunning when lxc-start (or anything else) holds it.

    lxcsd itself may hold it for a moment: a container that rebooted is started again while
    lxcsd-console still lets go of its previous life; that is waited for (``wait``)."""
    address = wire.socket_name(lxcpath, name)
    deadline = time.monotonic() + wait
    while True:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            sock.bind(address)
            sock.listen(100)  # liblxc's backlog
            return sock.detach()
        except OSError as e:
            sock.close()
            if e.errno != errno.EADDRINUSE:
                raise LxcsdError(f"cannot bind {name}'s LXC command socket: "
                                 f"{e.strerror}") from None
        holder = probe(lxcpath, name)
        if holder is not None and holder.owner != "lxcsd" and holder.owner != "unknown":
            raise AlreadyRunning(f"{name} is running under {holder.describe()}; stop it with "
                                 "lxc-stop first")
        if time.monotonic() >= deadline:
            who = holder.describe() if holder is not None else "something"
            raise AlreadyRunning(f"{name} is already running: its LXC command socket is held "
                                 f"by {who}")
        time.sleep(0.02)


def running_under_lxc(lxcpath: str, name: str, timeout: float = PROBE_TIMEOUT) -> Holder | None:
    """The holder when LXC's own tools (not lxcsd) run the container, else None."""
    try:
        holder = probe(lxcpath, name, timeout)
    except OSError:
        return None
    return holder if holder is not None and holder.is_lxc else None


def lxcpath_of(config_path: str) -> str:
    """A container's lxcpath from its config path (LXCPATH/NAME/config)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(config_path)))
