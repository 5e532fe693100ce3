"""lxcsd-console.service: the consoles of all running containers, in one process.

No lxcsd process stays per container (docs/design.md, "Process design"): the helper hands
the container's pty masters over here (handoff.py) and exits. This daemon

- keeps each master in systemd's file-descriptor store, so a restart or an upgrade of the
  daemon loses no console; on start it takes them back from LISTEN_FDS (store.py);
- forwards console output to the journal line by line, as entries of lxc@NAME.service
  (OBJECT_SYSTEMD_UNIT=), keeps the ring buffer and writes lxc.console.logfile;
- serves `lxcsd console` on the same socket (protocol.py): attach to the console or a tty
  (output to every viewer, input from any), window size, log, list;
- answers liblxc's command socket of each container (lxccmd.py), so LXC's own tools see it
  running: lxc-info, lxc-attach, lxc-console, lxc-wait, lxc-stop, lxc-start refusing.

One poll() loop, no threads. Nothing blocks: masters, clients and the journal socket are
non-blocking; a viewer that falls behind holds its pty's output back (the container writes at
the speed of its slowest viewer, as with lxc-console) for at most STALL_TIMEOUT seconds, then
is dropped; an exception while handling one descriptor is logged and ends only what that
descriptor belongs to.

A container ends when its init exits (its pidfd becomes readable). Until then the daemon
holds a slave of each pty open itself, because processes in the container close and reopen
their terminals (systemd, getty) and a master without any open slave reports a hang-up.
Registered without a pidfd, the console's hang-up ends the container instead.

Import-light by design (docs/design.md, "Imports"): this process lives as long as the host,
and its memory is the whole per-container cost of lxcsd. Hence _socket and _signal, the C
modules under socket and signal: those two import enum, selectors, collections and array,
1 MB of the process's 4.7 MB (PSS, measured).
"""

from __future__ import annotations

import _socket
import fcntl
import os
import select
import stat
import struct
import sys
import termios
import time

from lxcsd import sd
from lxcsd.console import lxccmd, lxcwork, protocol, store
from lxcsd.console.lines import LineSplitter
from lxcsd.console.logfile import ConsoleLog
from lxcsd.console.options import ConsoleOptions
from lxcsd.console.protocol import ProtocolError
from lxcsd.console.ring import Ring

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # typeshed has no _signal; signal's functions are the same
    from collections.abc import Callable

    Handler = Callable[[int], None]
else:
    import _signal

READ_SIZE = 4096
# Flow control: when a viewer has this much output queued here (beyond what its socket
# buffers), the pty is not read until the viewer is down to LOW_WATER, so the container
# writes at the speed of its slowest viewer, as with lxc-console. A viewer that stays
# behind for STALL_TIMEOUT seconds is dropped, and the console moves on without it.
HIGH_WATER = 64 << 10
LOW_WATER = 16 << 10
STALL_TIMEOUT = 3.0
# Output read from a console after its container ended, before closing it.
DRAIN_LIMIT = 64 << 10
LOG_CHUNK = protocol.MAX_MESSAGE - 1
# ioctl(2_tty): open the slave of a master without a path (works across devpts instances).
TIOCGPTPEER = 0x5441
TIOCGPTN = 0x80045430  # the pty number of a master; fails on anything else
JOURNAL_ENV = "LXCSD_JOURNAL_SOCKET"  # tests: a journal stand-in
POLLIN, POLLOUT, POLLNVAL = select.POLLIN, select.POLLOUT, select.POLLNVAL
PEER_FLAGS = os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK


def log(level: int, message: str) -> None:
    """The daemon's own messages: stderr, which journald files under lxcsd-console.service
    with the <level> prefix as priority."""
    sys.stderr.write(f"<{level}>{message}\n")
    sys.stderr.flush()


class Pty:
    """A pty master of a container: index 0 is the console, N is tty N."""

    __slots__ = ("container", "index", "master", "peer", "viewers")

    def __init__(self, container: Container, index: int, master: int) -> None:
        self.container = container
        self.index = index
        self.master = master
        self.peer = -1
        self.viewers: list[Client] = []


class Container:
    __slots__ = ("cid", "name", "unit", "options", "fds", "ptys", "pidfd", "ring", "log",
                 "lines", "fields", "dropped", "lxc", "cgroup_v1")

    def __init__(self, cid: int, name: str, unit: str, options: ConsoleOptions,
                 fds: dict[str, int], lxc: lxccmd.LxcSide | None = None) -> None:
        self.cid = cid
        self.name = name
        self.unit = unit
        self.options = options
        self.fds = fds  # by store kind: what is in systemd's store under this registration
        self.ptys = {int(k[3:]): Pty(self, int(k[3:]), fd) for k, fd in fds.items()
                     if k.startswith("tty")}
        self.pidfd = fds.get(store.PID, -1)
        self.ring = Ring(options.buffer_size) if options.buffer_size > 0 else None
        self.log: ConsoleLog | None = None
        self.lines = LineSplitter()
        self.fields = {"OBJECT_SYSTEMD_UNIT": unit, "SYSLOG_IDENTIFIER": f"{name}/console",
                       "CONTAINER_NAME": name, "LXCSD_CONSOLE": "1"}
        self.dropped = 0  # console lines journald did not take
        self.lxc = lxc  # its liblxc command socket (lxccmd.py), when it came with one
        self.cgroup_v1: tuple[str, str] | None = None  # (leaf, entries): removed at its end

    def describe(self) -> str:
        ttys = ",".join(str(i) for i in sorted(self.ptys))
        viewers = sum(len(p.viewers) for p in self.ptys.values())
        return f"{self.name}\t{self.unit}\t{ttys}\t{viewers}"


class Client:
    """A connection on the socket: one request, then (for attach) a stream of frames."""

    __slots__ = ("sock", "fd", "queue", "queued", "pty", "closing")

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.queue: list[bytes] = []  # messages the socket did not take yet
        self.queued = 0
        self.pty: Pty | None = None  # set while attached
        self.closing = False  # answered: close once the queue is sent


def parse_register(fields: dict[str, str], fds: list[int]) -> dict[str, int]:
    """The received descriptors by store kind, as fds= names them; raises ProtocolError."""
    kinds = fields["fds"].split(",") if fields.get("fds") else []
    if len(kinds) != len(fds):
        raise ProtocolError(f"fds={fields.get('fds', '')} names {len(kinds)} descriptors, "
                            f"{len(fds)} came")
    named: dict[str, int] = {}
    for kind, fd in zip(kinds, fds, strict=True):
        key = kind if kind in (store.PID, store.CMD) else store.tty_kind(_tty_number(kind))
        if key in named:
            raise ProtocolError(f"fds= names {kind} twice")
        named[key] = fd
    return named


def _tty_number(text: str) -> int:
    if not text.isdigit():
        raise ProtocolError(f"fds=: {text!r} is neither pid nor a tty number")
    return int(text)


def check_fds(named: dict[str, int]) -> None:
    """Refuse descriptors that are not what their names say."""
    for kind, fd in named.items():
        if kind == store.CMD:
            continue  # lxccmd.check_listener, which needs the container's name
        if kind == store.PID:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith(("anon_inode:[pidfd]",
                                                                  "pidfd:")):
                raise ProtocolError("the descriptor named pid is not a pidfd")
            continue
        try:
            fcntl.ioctl(fd, TIOCGPTN, b"\0\0\0\0")
        except OSError:
            raise ProtocolError(f"the descriptor for {kind} is not a pty master") from None


def cgroup_v1_of(fields: dict[str, str]) -> tuple[str, str] | None:
    """The registration's cgroup v1 leaves (handoff.register), None without."""
    rel, entries = fields.get("cgroup_v1_leaf", ""), fields.get("cgroup_v1", "")
    return (rel, entries) if rel and entries else None


def memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    return fd


def close_all(fds: list[int] | tuple[int, ...]) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


class Daemon:
    def __init__(self, listener: _socket.socket, journal: sd.Journal) -> None:
        self.listener = listener
        self.journal = journal
        self.poll = select.poll()
        self.handlers: dict[int, tuple[Handler, Callable[[], None]]] = {}
        self.containers: dict[str, Container] = {}
        self.clients: dict[int, Client] = {}
        self.pending: set[Container] = set()  # with a partial journal line waiting
        self.stalled: dict[Client, float] = {}  # viewers behind, and when they are dropped
        self.paused: set[int] = set()  # masters not read while a viewer catches up
        self.next_id = 1
        self.stopping = False
        self.lxc = lxccmd.LxcServer(self)
        listener.setblocking(False)
        self.watch(listener.fileno(), POLLIN, self.on_listener, lambda: None)

    # -- the loop ---------------------------------------------------------------------------

    def watch(self, fd: int, events: int, handler: Handler, cleanup: Callable[[], None]) -> None:
        self.handlers[fd] = (handler, cleanup)
        self.poll.register(fd, events)

    def unwatch(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None and fd not in self.paused:
            self.poll.unregister(fd)
        self.paused.discard(fd)

    def pause(self, fd: int) -> None:
        if fd in self.handlers and fd not in self.paused:
            self.poll.unregister(fd)
            self.paused.add(fd)

    def resume(self, fd: int) -> None:
        if fd in self.paused:
            self.paused.discard(fd)
            self.poll.register(fd, POLLIN)

    def run(self) -> None:
        while not self.stopping:
            for fd, events in self.poll.poll(self.timeout_ms()):
                self.dispatch(fd, events)
            now = time.monotonic()
            self.flush_due(now)
            self.drop_stalled(now)

    def dispatch(self, fd: int, events: int) -> None:
        entry = self.handlers.get(fd)
        if entry is None:
            return
        handler, cleanup = entry
        try:
            if events & POLLNVAL:
                raise OSError(f"descriptor {fd} was closed under the loop")
            handler(events)
        except Exception as e:  # one misbehaving descriptor must not end the service
            log(3, f"lxcsd-console: error on descriptor {fd}: {e!r}")
            self.unwatch(fd)
            self.guard(cleanup)

    @staticmethod
    def guard(action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as e:
            log(3, f"lxcsd-console: error while cleaning up: {e!r}")

    def timeout_ms(self) -> int:
        deadlines = [d for c in self.pending if (d := c.lines.deadline()) is not None]
        deadlines += self.stalled.values()
        if not deadlines:
            return -1
        return max(0, int((min(deadlines) - time.monotonic()) * 1000) + 1)

    def flush_due(self, now: float) -> None:
        for c in list(self.pending):
            deadline = c.lines.deadline()
            if deadline is None or deadline <= now:
                self.flush_line(c)

    def drop_stalled(self, now: float) -> None:
        for client, deadline in list(self.stalled.items()):
            if deadline <= now:
                log(4, f"lxcsd-console: dropping a viewer that took no output for "
                       f"{STALL_TIMEOUT:g} s ({client.queued} bytes behind)")
                self.drop(client)

    def flush_line(self, c: Container) -> None:
        self.pending.discard(c)
        line = c.lines.flush()
        if line is not None:
            self.send_line(c, line)

    # -- clients ----------------------------------------------------------------------------

    def on_listener(self, events: int) -> None:
        try:
            fd, _ = self.listener._accept()  # type: ignore[attr-defined]  # socket.accept's
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as e:  # EMFILE and the like: the connection waits in the backlog
            log(3, f"lxcsd-console: cannot accept a connection: {e.strerror}")
            time.sleep(0.1)  # rather than spin on a listener that stays readable
            return
        sock = _socket.socket(fileno=fd)
        sock.setblocking(False)
        client = Client(sock)
        self.clients[client.fd] = client
        self.watch(client.fd, POLLIN, lambda ev: self.on_client(client, ev),
                   lambda: self.drop(client))

    def on_client(self, client: Client, events: int) -> None:
        if events & POLLOUT:
            self.flush(client)
        if client.fd not in self.clients:
            return
        if events & POLLIN:
            self.read_client(client)
        elif events & (select.POLLHUP | select.POLLERR):
            self.drop(client)

    def read_client(self, client: Client) -> None:
        if client.pty is not None or client.closing:
            data = client.sock.recv(protocol.MAX_MESSAGE)
            if data and client.pty is not None:
                self.on_frame(client.pty, data)
        else:
            data, fds, flags = recv_fds(client.sock)
            if data:
                self.on_request(client, data, fds, flags)
            close_all(fds if not data else [])
        if not data:
            self.drop(client)

    def on_request(self, client: Client, data: bytes, fds: list[int], flags: int) -> None:
        try:
            if flags & (_socket.MSG_TRUNC | _socket.MSG_CTRUNC):
                raise ProtocolError("request or its descriptors truncated")
            if peer_uid(client.sock) != 0:  # the socket is 0600; this holds if it is not
                raise ProtocolError("only root may use the console service", "denied")
            verb, fields = protocol.decode(data)
            replies = self.request(client, verb, fields, fds)
        except (ProtocolError, ValueError, OSError) as e:
            close_all(fds)
            code = e.code if isinstance(e, ProtocolError) else "invalid"
            replies = [protocol.error(str(e), code)]
        self.answer(client, replies)

    def request(self, client: Client, verb: str, fields: dict[str, str],
                fds: list[int]) -> list[bytes]:
        if verb == "register":
            return self.req_register(fields, fds)
        if fds:
            raise ProtocolError(f"{verb} takes no descriptors")
        if verb == "attach":
            return self.req_attach(client, fields)
        if verb == "log":
            return self.req_log(fields)
        if verb == "list":
            return self.req_list()
        if verb == "state":
            return self.req_state(fields)
        raise ProtocolError(f"unknown request {verb!r}")

    def answer(self, client: Client, messages: list[bytes]) -> None:
        for message in messages:
            self.send(client, message)
        if client.pty is None and client.fd in self.clients:
            client.closing = True
            if not client.queue:
                self.drop(client)

    def send(self, client: Client, message: bytes) -> None:
        if not client.queue:
            try:
                client.sock.send(message)
                return
            except BlockingIOError:
                self.poll.modify(client.fd, POLLIN | POLLOUT)
            except OSError:
                self.drop(client)
                return
        client.queue.append(message)
        client.queued += len(message)

    def flush(self, client: Client) -> None:
        while client.queue:
            try:
                client.sock.send(client.queue[0])
            except BlockingIOError:
                return
            except OSError:
                self.drop(client)
                return
            client.queued -= len(client.queue.pop(0))
            if client.queued <= LOW_WATER:
                self.caught_up(client)
        self.poll.modify(client.fd, POLLIN)
        if client.closing:
            self.drop(client)

    def caught_up(self, client: Client) -> None:
        if self.stalled.pop(client, None) is None or client.pty is None:
            return
        pty = client.pty
        if not any(viewer in self.stalled for viewer in pty.viewers):
            self.resume(pty.master)

    def drop(self, client: Client) -> None:
        if self.clients.pop(client.fd, None) is None:
            return
        self.unwatch(client.fd)
        if client.pty is not None:
            self.detach(client)
        client.sock.close()

    def detach(self, client: Client) -> None:
        self.caught_up(client)  # however far behind, it no longer holds the pty
        pty = client.pty
        assert pty is not None
        client.pty = None
        pty.viewers.remove(client)
        if not pty.viewers and pty.index != 0:
            # Unread tty output stays in the pty (a login prompt for the next viewer).
            self.unwatch(pty.master)

    def end_session(self, client: Client, reason: str) -> None:
        self.detach(client)
        self.send(client, bytes([protocol.FRAME_END]) + reason.encode())
        self.answer(client, [])

    # -- requests ---------------------------------------------------------------------------

    def req_register(self, fields: dict[str, str], fds: list[int]) -> list[bytes]:
        name = protocol.check_name(fields.get("name", ""))
        unit = fields.get("unit", "")
        if not unit or not unit.isprintable() or " " in unit:
            raise ProtocolError(f"invalid unit name {unit!r}")
        named = parse_register(fields, fds)
        check_fds(named)
        if store.CMD in named:
            lxccmd.check_listener(named[store.CMD], fields.get("lxcpath", ""), name)
        options = ConsoleOptions.from_fields(fields)
        # Validated: from here on the descriptors are ours and nothing refuses them.
        meta = memfd(f"lxcsd-console:{name}", protocol.encode("register", fields))
        named[store.META] = meta
        c = Container(self.next_id, name, unit, options, named, lxccmd.side(fields, named))
        c.cgroup_v1 = cgroup_v1_of(fields)
        self.next_id += 1
        for kind, fd in named.items():
            store_fd(store.fd_name(c.cid, kind), fd)
        self.add(c)
        return [protocol.ok()]

    def find(self, fields: dict[str, str]) -> Container:
        name = fields.get("name", "")
        c = self.containers.get(name)
        if c is None:
            raise ProtocolError(f"no console registered for container {name!r}", "unknown")
        return c

    def req_attach(self, client: Client, fields: dict[str, str]) -> list[bytes]:
        c = self.find(fields)
        index = _tty_number(fields.get("tty", "0"))
        pty = c.ptys.get(index)
        if pty is None:
            raise ProtocolError(self.no_tty(c, index), "notty")
        if self.lxc.tty_busy(c, index):
            raise ProtocolError(self.lxc.tty_busy(c, index), "busy")
        if not pty.viewers and index != 0:
            self.watch(pty.master, POLLIN, lambda ev: self.on_master(pty, ev),
                       lambda: self.tty_hangup(pty))
        pty.viewers.append(client)
        client.pty = pty
        return [protocol.ok()]

    @staticmethod
    def no_tty(c: Container, index: int) -> str:
        ttys = ", ".join(str(i) for i in sorted(c.ptys) if i) or "none (lxc.tty.max = 0)"
        if index == 0:
            return f"container {c.name} has no console (lxc.console.path = none); ttys: {ttys}"
        return f"container {c.name} has no tty {index}; its ttys: {ttys}"

    def req_log(self, fields: dict[str, str]) -> list[bytes]:
        c = self.find(fields)
        if c.ring is None:
            raise ProtocolError(f"container {c.name} keeps no console ring buffer "
                                "(lxc.console.buffer.size = 0)", "nobuffer")
        data = c.ring.read() if fields.get("read", "1") == "1" else b""
        if fields.get("clear") == "1":
            c.ring.clear()
        chunks = [b"d" + data[i:i + LOG_CHUNK] for i in range(0, len(data), LOG_CHUNK)]
        return [protocol.ok({"size": len(data)})] + chunks

    def req_list(self) -> list[bytes]:
        return [protocol.ok([("container", c.describe()) for c in self.containers.values()])]

    def req_state(self, fields: dict[str, str]) -> list[bytes]:
        """`lxcsd-helper stop` says the container is stopping: LXC's tools show STOPPING."""
        if fields.get("state") != "STOPPING":
            raise ProtocolError(f"state={fields.get('state', '')}: only STOPPING is told")
        self.lxc.stopping(self.find(fields))
        return [protocol.ok()]

    # -- containers -------------------------------------------------------------------------

    def add(self, c: Container) -> None:
        old = self.containers.get(c.name)
        if old is not None:
            self.end(old, f"container {c.name} started again")
        self.containers[c.name] = c
        try:
            self.start(c)
        except Exception as e:
            self.warn(c, f"cannot watch the console of {c.name}: {e!r}")
            self.end(c, f"console of {c.name} failed")
        status(self.containers)

    def start(self, c: Container) -> None:
        for pty in c.ptys.values():
            os.set_blocking(pty.master, False)
            if c.pidfd >= 0:
                pty.peer = self.open_peer(c, pty)
        console = c.ptys.get(0)
        if console is not None:
            self.watch(console.master, POLLIN, lambda ev: self.on_master(console, ev),
                       lambda: self.end(c, f"console of {c.name} failed"))
        if c.pidfd >= 0:
            self.watch(c.pidfd, POLLIN, lambda ev: self.init_exited(c),
                       lambda: self.end(c, f"container {c.name} stopped"))
        if c.options.logfile:
            self.open_log(c)
        self.lxc.start(c)

    def init_exited(self, c: Container) -> None:
        """Its init has exited: the container ends, and what outlives it without an
        ExecStopPost= process is removed by a worker: its cgroup v1 leaves (a hybrid host),
        as liblxc's monitor removes its cgroups when init has gone."""
        self.end(c, f"container {c.name} stopped")
        if c.cgroup_v1 is not None:
            rel, entries = c.cgroup_v1
            self.reap(lxcwork.spawn_detached(lxcwork.remove_cgroup_v1, c.name, rel, entries))

    def reap(self, pid: int) -> None:
        """Wait for a detached worker without blocking the loop."""
        pidfd = os.pidfd_open(pid)

        def done(events: int) -> None:
            self.unwatch(pidfd)
            os.close(pidfd)
            os.waitpid(pid, 0)

        self.watch(pidfd, POLLIN, done, lambda: os.close(pidfd))

    def open_peer(self, c: Container, pty: Pty) -> int:
        try:
            return int(fcntl.ioctl(pty.master, TIOCGPTPEER, PEER_FLAGS))
        except OSError as e:
            # Then a moment without any slave open in the container ends its registration.
            self.warn(c, f"cannot hold tty {pty.index} of {c.name} open: {e.strerror}")
            return -1

    def open_log(self, c: Container) -> None:
        assert c.options.logfile
        try:
            c.log = ConsoleLog(c.options.logfile, c.options.log_size, c.options.log_rotate)
        except OSError as e:
            self.warn(c, f"cannot open console log file {c.options.logfile}: {e.strerror}")

    def end(self, c: Container, reason: str) -> None:
        """The container is gone (or replaced): last output, then let go of everything."""
        if self.containers.get(c.name) is c:
            del self.containers[c.name]
        console = c.ptys.get(0)
        if console is not None and console.master in self.handlers:
            self.drain(console)
        self.flush_line(c)
        for pty in c.ptys.values():
            for client in list(pty.viewers):
                self.end_session(client, reason)
        self.guard(lambda: self.lxc.end(c))
        self.release(c)
        status(self.containers)

    def release(self, c: Container) -> None:
        for kind, fd in c.fds.items():
            self.unwatch(fd)
            unstore(store.fd_name(c.cid, kind))
            os.close(fd)
        for pty in c.ptys.values():
            close_all([pty.peer])
            pty.peer = -1
        c.fds = {}
        if c.log is not None:
            c.log.close()

    def drain(self, pty: Pty) -> None:
        for _ in range(DRAIN_LIMIT // READ_SIZE):
            try:
                data = os.read(pty.master, READ_SIZE)
            except OSError:
                return
            if not data:
                return
            self.output(pty, data)

    def tty_hangup(self, pty: Pty) -> None:
        self.unwatch(pty.master)
        for client in list(pty.viewers):
            self.end_session(client, f"tty {pty.index} of {pty.container.name} hung up")

    # -- output and input -------------------------------------------------------------------

    def on_master(self, pty: Pty, events: int) -> None:
        try:
            data = os.read(pty.master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: no slave open any more
            data = b""
        if data:
            self.output(pty, data)
        elif pty.index == 0:
            self.end(pty.container, f"console of {pty.container.name} hung up")
        else:
            self.tty_hangup(pty)

    def output(self, pty: Pty, data: bytes) -> None:
        if pty.viewers:
            frame = b"d" + data
            for client in list(pty.viewers):
                self.send(client, frame)
                if client.queued > HIGH_WATER and client.fd in self.clients:
                    self.stalled.setdefault(client, time.monotonic() + STALL_TIMEOUT)
                    self.pause(pty.master)
        if pty.index == 0:
            self.lxc.console_output(pty.container, data)
            self.record(pty.container, data)

    def record(self, c: Container, data: bytes) -> None:
        if c.ring is not None:
            c.ring.write(data)
        if c.log is not None:
            self.write_log(c, c.log, data)
        if c.options.journal:
            for line in c.lines.feed(data, time.monotonic()):
                self.send_line(c, line)
            if c.lines.pending:
                self.pending.add(c)

    def write_log(self, c: Container, console_log: ConsoleLog, data: bytes) -> None:
        try:
            console_log.write(data)
        except OSError as e:
            # Once, not per chunk: the file is given up until the container starts again.
            self.warn(c, f"console log file {console_log.path}: {e.strerror}; not written "
                         "any more")
            console_log.close()
            c.log = None

    def send_line(self, c: Container, line: bytes) -> None:
        if not self.journal.send(line.decode(errors="replace"), 6, **c.fields):
            c.dropped += 1
        elif c.dropped:
            self.warn(c, f"{c.dropped} console lines of {c.name} were lost (journald busy)")
            c.dropped = 0

    def warn(self, c: Container, message: str) -> None:
        """A problem with one container, shown by `journalctl -u lxc@NAME` too."""
        if not self.journal.send(message, 4, OBJECT_SYSTEMD_UNIT=c.unit,
                                 SYSLOG_IDENTIFIER="lxcsd-console", CONTAINER_NAME=c.name):
            log(4, f"lxcsd-console: {message}")

    def on_frame(self, pty: Pty, frame: bytes) -> None:
        kind, body = frame[0], frame[1:]
        if kind == protocol.FRAME_DATA:
            try:
                os.write(pty.master, body)
            except BlockingIOError:
                pass  # the container does not read its terminal: typing into it is lost
        elif kind == protocol.FRAME_WINSIZE:
            rows, cols = (int(n) for n in body.split())
            fcntl.ioctl(pty.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    # -- restart ----------------------------------------------------------------------------

    def restore(self, groups: dict[int, dict[str, int]]) -> None:
        """Take back what a previous run of the daemon left in the file-descriptor store."""
        for cid, named in sorted(groups.items()):
            self.next_id = max(self.next_id, cid + 1)
            try:
                c = revive(cid, named)
            except (OSError, ValueError) as e:
                log(4, f"lxcsd-console: dropping stored registration {cid}: {e}")
                for kind, fd in named.items():
                    unstore(store.fd_name(cid, kind))
                    os.close(fd)
                continue
            self.add(c)

    def shutdown(self) -> None:
        """Stopping or restarting: flush lines, keep ring buffers, tell viewers."""
        saved = 0
        for c in self.containers.values():
            self.flush_line(c)
            if c.ring is not None and len(c.ring):
                fd = memfd(f"lxcsd-console-ring:{c.name}", c.ring.read())
                saved += store_fd(store.fd_name(c.cid, store.RING), fd)
                os.close(fd)
        if saved:
            sd.notify_barrier()  # before exiting, or systemd may drop them with the process
        end = bytes([protocol.FRAME_END]) + b"the console service is stopping"
        for client in list(self.clients.values()):
            if client.pty is not None:
                send_quietly(client.sock, end)
            client.sock.close()
        self.clients.clear()


def revive(cid: int, named: dict[str, int]) -> Container:
    """A container from its stored descriptors; raises ValueError or OSError."""
    meta = named.get(store.META)
    if meta is None:
        raise ValueError("no meta descriptor")
    verb, fields = protocol.decode(os.pread(meta, protocol.MAX_MESSAGE, 0))
    if verb != "register":
        raise ValueError(f"meta descriptor holds {verb!r}")
    c = Container(cid, protocol.check_name(fields.get("name", "")), fields.get("unit", ""),
                  ConsoleOptions.from_fields(fields), named, lxccmd.side(fields, named))
    c.cgroup_v1 = cgroup_v1_of(fields)
    ring = named.pop(store.RING, -1)  # not part of the registration: only for this restart
    if ring >= 0:
        if c.ring is not None:
            c.ring.write(os.pread(ring, c.ring.size, 0))
        unstore(store.fd_name(cid, store.RING))
        os.close(ring)
    return c


def recv_fds(sock: _socket.socket) -> tuple[bytes, list[int], int]:
    """One message and the descriptors that came with it (close-on-exec)."""
    data, ancillary, flags, _ = sock.recvmsg(protocol.MAX_MESSAGE,
                                             _socket.CMSG_SPACE(protocol.MAX_FDS * 4),
                                             _socket.MSG_CMSG_CLOEXEC)
    fds = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True)
                    for i in range(0, len(payload) - 3, 4)]
    return data, fds, flags


def send_quietly(sock: _socket.socket, message: bytes) -> None:
    try:
        sock.send(message)
    except OSError:
        pass  # a viewer that cannot take one more message learns from EOF instead


def store_fd(name: str, fd: int) -> int:
    # FDPOLL=0: systemd must not drop a master when no slave is open (during our restart a
    # container may hold none), nor a pidfd when init exits: this daemon decides.
    return int(sd.notify(f"FDSTORE=1\nFDNAME={name}\nFDPOLL=0", [fd]))


def unstore(name: str) -> None:
    sd.notify(f"FDSTOREREMOVE=1\nFDNAME={name}")


def status(containers: dict[str, Container]) -> None:
    sd.notify(f"STATUS=holding the consoles of {len(containers)} containers")


def peer_uid(sock: _socket.socket) -> int:
    cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # pid, uid, gid
    return int.from_bytes(cred[4:8], sys.byteorder)


def own_socket(path: str) -> _socket.socket:
    """Run by hand, without socket activation: bind the socket ourselves (root only)."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(128)
    return sock


def split_listen_fds() -> tuple[_socket.socket | None, dict[int, dict[str, int]]]:
    groups, others = store.group(sd.listen_fds())
    listener = None
    for fd in others:
        if listener is None and stat.S_ISSOCK(os.fstat(fd).st_mode):
            sock = _socket.socket(fileno=fd)
            if sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ACCEPTCONN):
                listener = sock
                continue
            sock.detach()
        log(4, f"lxcsd-console: closing unexpected descriptor {fd}")
        os.close(fd)
    return listener, groups


def install_signals(daemon: Daemon) -> None:
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    _signal.set_wakeup_fd(write_end)

    def stop(signum: int, frame: object) -> None:
        daemon.stopping = True

    def drain(events: int) -> None:
        os.read(read_end, 64)  # the handler already ran; poll() only had to return

    _signal.signal(_signal.SIGTERM, stop)
    _signal.signal(_signal.SIGINT, stop)
    daemon.watch(read_end, POLLIN, drain, lambda: None)


def main(argv: list[str] | None = None) -> int:
    listener, groups = split_listen_fds()
    if listener is None:
        listener = own_socket(protocol.socket_path())
    journal = sd.Journal(os.environ.get(JOURNAL_ENV) or sd.JOURNAL_SOCKET)
    journal.sock.setblocking(False)  # a busy journald costs console lines, never the loop
    daemon = Daemon(listener, journal)
    install_signals(daemon)
    daemon.restore(groups)
    sd.notify(f"READY=1\nSTATUS=holding the consoles of {len(daemon.containers)} containers")
    daemon.run()
    daemon.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
