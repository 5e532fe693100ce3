"""lxcsd-console.service: the consoles of all running containers, in one process.

No lxcsd process stays per container (docs/design.md, "Process design"): the helper hands
the container's pty masters over here (handoff.py) and exits. This daemon

- keeps each master in systemd's file-descriptor store, so a restart or an upgrade of the
  daemon loses no console; on start it takes them back from LISTEN_FDS (store.py);
- keeps console output in a ring per container (ring.py, a memfd in the store too),
  writes lxc.console.logfile, and forwards the output to the journal line by line as
  entries of lxc@NAME.service (forward.py), losing none;
- serves `lxcsd console` on the same socket (protocol.py): attach to the console or a tty
  (output to every viewer, input from any), window size, log, list;
- answers liblxc's command socket of each container (lxccmd.py), so LXC's own tools see it
  running: lxc-info, lxc-attach, lxc-console, lxc-wait, lxc-stop, lxc-start refusing.

One poll() loop, no threads. Nothing blocks: masters, clients and the journal socket are
non-blocking. A console is read only while its ring has room for the journal's queue, so a
journal that cannot keep up holds the container's output back in the kernel rather than
losing it (the ring and the log file are written as output is read, never waiting on
journald). A viewer that falls behind holds its pty's output back too (the container
writes at the speed of its slowest viewer, as with lxc-console) for at most STALL_TIMEOUT
seconds, then is dropped. An exception while handling one descriptor is logged and ends
only what that descriptor belongs to.

A container ends when its init exits (its pidfd becomes readable): its console is read
until empty and its journal queue sent before its descriptors go. Until then the daemon
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
import time

from lxcsd.console import lxccmd, lxcwork, protocol, store
from lxcsd.console.forward import Feed, Forwarder
from lxcsd.console.logfile import ConsoleLog
from lxcsd.console.options import ConsoleOptions
from lxcsd.console.protocol import ProtocolError
from lxcsd.console.ring import Ring
from lxcsd.systemd import sdnotify
from lxcsd.systemd.journal import JOURNAL_SOCKET, Journal

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
# Seconds a console is still read after its init exited (see Daemon.init_exited).
END_GRACE = 0.1
# The journal's queue per container (ring.py): at least this much, whatever
# lxc.console.buffer.size shows of it. A console is read while READ_SIZE bytes fit.
QUEUE_MIN = 16 << 10
LOG_CHUNK = protocol.MAX_MESSAGE - 1
# Seconds a stopping daemon waits for journald to take the complete lines queued.
SHUTDOWN_FLUSH = 2.0
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

    def __init__(self, container: HeldContainer, index: int, master: int) -> None:
        self.container = container
        self.index = index
        self.master = master
        self.peer = -1
        self.viewers: list[Client] = []


class HeldContainer:
    __slots__ = ("cid", "name", "unit", "options", "fds", "ptys", "pidfd", "ring", "log",
                 "feed", "draining", "lxc", "cgroup_v1")

    def __init__(self, cid: int, name: str, unit: str, options: ConsoleOptions,
                 fds: dict[str, int], ring: Ring | None,
                 lxc: lxccmd.LxcSide | None = None) -> None:
        self.cid = cid
        self.name = name
        self.unit = unit
        self.options = options
        self.fds = fds  # by store kind: what is in systemd's store under this registration
        self.ptys = {int(k[3:]): Pty(self, int(k[3:]), fd) for k, fd in fds.items()
                     if k.startswith("tty")}
        self.pidfd = fds.get(store.PID, -1)
        self.ring = ring  # stored as kind RING, not in fds: the Ring owns its memfd
        self.log: ConsoleLog | None = None
        self.feed: Feed | None = None  # set by Daemon.start_feed: lines go to the journal
        self.draining = -1  # -1 while it runs; once ended, the bytes its console may still give
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
    def __init__(self, listener: _socket.socket, journal: Journal,
                 forwarder: Forwarder | None = None) -> None:
        self.listener = listener
        self.journal = journal  # the daemon's own notices about a container
        self.forwarder = forwarder or Forwarder(journal.socket_path)  # console lines
        self.poll = select.poll()
        self.handlers: dict[int, tuple[Handler, Callable[[], None]]] = {}
        self.containers: dict[str, HeldContainer] = {}
        self.clients: dict[int, Client] = {}
        self.stalled: dict[Client, float] = {}  # viewers behind, and when they are dropped
        self.ending: dict[HeldContainer, float] = {}  # init exited: ended at that time
        # Masters not read, and why: "viewer" (one catches up), "journal" (no room in the
        # ring for the journal's queue).
        self.paused: dict[int, set[str]] = {}
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
        self.paused.pop(fd, None)

    def pause(self, fd: int, why: str) -> None:
        if fd not in self.handlers:
            return
        if fd not in self.paused:
            self.poll.unregister(fd)
        self.paused.setdefault(fd, set()).add(why)

    def resume(self, fd: int, why: str) -> None:
        reasons = self.paused.get(fd)
        if reasons is None:
            return
        reasons.discard(why)
        if not reasons:
            del self.paused[fd]
            self.poll.register(fd, POLLIN)

    def run(self) -> None:
        while not self.stopping:
            self.watch_journal()
            for fd, events in self.poll.poll(self.timeout_ms()):
                self.dispatch(fd, events)
            now = time.monotonic()
            self.forwarder.due(now)
            self.drop_stalled(now)
            self.end_due(now)

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
        deadlines = list(self.stalled.values()) + list(self.ending.values())
        due = self.forwarder.deadline()
        if due is not None:
            deadlines.append(due)
        if not deadlines:
            return -1
        return max(0, int((min(deadlines) - time.monotonic()) * 1000) + 1)

    def watch_journal(self) -> None:
        """Wait for POLLOUT on the journal socket exactly while the forwarder is blocked."""
        fd = self.forwarder.fileno()
        if self.forwarder.wants_pollout() and fd not in self.handlers:
            self.watch(fd, POLLOUT, lambda ev: self.forwarder.writable(time.monotonic()),
                       lambda: None)
        elif not self.forwarder.wants_pollout() and fd in self.handlers:
            self.unwatch(fd)

    def drop_stalled(self, now: float) -> None:
        for client, deadline in list(self.stalled.items()):
            if deadline <= now:
                log(4, f"lxcsd-console: dropping a viewer that took no output for "
                       f"{STALL_TIMEOUT:g} s ({client.queued} bytes behind)")
                self.drop(client)

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
            self.resume(pty.master, "viewer")

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
        c = HeldContainer(self.next_id, name, unit, options, named, new_ring(name, options),
                      lxccmd.side(fields, named))
        c.cgroup_v1 = cgroup_v1_of(fields)
        self.next_id += 1
        for kind, fd in named.items():
            store.keep(c.cid, kind, fd)
        store_ring(c)
        self.add(c)
        return [protocol.ok()]

    def find(self, fields: dict[str, str]) -> HeldContainer:
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
    def no_tty(c: HeldContainer, index: int) -> str:
        ttys = ", ".join(str(i) for i in sorted(c.ptys) if i) or "none (lxc.tty.max = 0)"
        if index == 0:
            return f"container {c.name} has no console (lxc.console.path = none); ttys: {ttys}"
        return f"container {c.name} has no tty {index}; its ttys: {ttys}"

    def req_log(self, fields: dict[str, str]) -> list[bytes]:
        c = self.find(fields)
        if c.ring is None or not c.ring.visible:
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

    def add(self, c: HeldContainer) -> None:
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

    def start(self, c: HeldContainer) -> None:
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
        if c.options.journal and c.ring is not None:
            self.start_feed(c)

    def start_feed(self, c: HeldContainer) -> None:
        """Console lines to the journal as entries of init's unit (forward.py)."""
        assert c.ring is not None
        fields = {"SYSLOG_IDENTIFIER": f"{c.name}/console", "CONTAINER_NAME": c.name,
                  "LXCSD_CONSOLE": "1", "OBJECT_SYSTEMD_UNIT": c.unit}
        c.feed = Feed(c.ring, fields, init_pid(c.pidfd), on_room=lambda: self.room_again(c),
                      on_done=lambda: self.release(c))
        if c.ring.sent < c.ring.written:  # left by the previous run of the daemon
            self.forwarder.add(c.feed, time.monotonic())
        if c.ring.room() < READ_SIZE and 0 in c.ptys:
            self.pause(c.ptys[0].master, "journal")

    def reap(self, pid: int) -> None:
        """Wait for a detached worker without blocking the loop."""
        pidfd = os.pidfd_open(pid)

        def done(events: int) -> None:
            self.unwatch(pidfd)
            os.close(pidfd)
            os.waitpid(pid, 0)

        self.watch(pidfd, POLLIN, done, lambda: os.close(pidfd))

    def open_peer(self, c: HeldContainer, pty: Pty) -> int:
        try:
            return int(fcntl.ioctl(pty.master, TIOCGPTPEER, PEER_FLAGS))
        except OSError as e:
            # Then a moment without any slave open in the container ends its registration.
            self.warn(c, f"cannot hold tty {pty.index} of {c.name} open: {e.strerror}")
            return -1

    def open_log(self, c: HeldContainer) -> None:
        assert c.options.logfile
        try:
            c.log = ConsoleLog(c.options.logfile, c.options.log_size, c.options.log_rotate)
        except OSError as e:
            self.warn(c, f"cannot open console log file {c.options.logfile}: {e.strerror}")

    def init_exited(self, c: HeldContainer) -> None:
        """The container's init exited. Its last output may still be on its way through the
        tty layer (flushed to the master by a kernel work item, after the writer exited):
        the console is read on for END_GRACE seconds before the container ends."""
        self.unwatch(c.pidfd)
        self.ending.setdefault(c, time.monotonic() + END_GRACE)
        if c.cgroup_v1 is not None:
            # What outlives it without an ExecStopPost= process: its cgroup v1 leaves (a
            # hybrid host), removed by a worker, as liblxc's monitor removes its cgroups
            # once init has gone.
            rel, entries = c.cgroup_v1
            c.cgroup_v1 = None
            self.reap(lxcwork.spawn_detached(lxcwork.remove_cgroup_v1, c.name, rel, entries))

    def end_due(self, now: float) -> None:
        for c, deadline in list(self.ending.items()):
            if deadline <= now:
                del self.ending[c]
                self.end(c, f"container {c.name} stopped")

    def end(self, c: HeldContainer, reason: str) -> None:
        """The container is gone (or replaced): its last output, then let go of it."""
        if c.draining >= 0:
            return  # ended already
        self.ending.pop(c, None)
        if self.containers.get(c.name) is c:
            del self.containers[c.name]
        for pty in c.ptys.values():
            for client in list(pty.viewers):
                self.end_session(client, reason)
            if pty.index != 0:
                self.unwatch(pty.master)
        self.unwatch(c.pidfd)
        self.end_lxc(c)
        console = c.ptys.get(0)
        if console is not None and console.master in self.handlers:
            self.unwatch(console.master)  # read by drain() from here on
            c.draining = DRAIN_LIMIT
            self.drain(c)
        else:
            self.drained(c)
        status(self.containers)

    def end_lxc(self, c: HeldContainer) -> None:
        """LXC's tools see the container STOPPED, and its command socket goes now, not once
        the journal took the last lines: a new start binds it again (liblxc.owner.claim)."""
        self.guard(lambda: self.lxc.end(c))
        fd = c.fds.pop(store.CMD, -1)
        if fd >= 0:
            self.unwatch(fd)
            store.drop(c.cid, store.CMD)
            os.close(fd)

    def drain(self, c: HeldContainer) -> None:
        """Read an ended container's console until it is empty (or DRAIN_LIMIT), as far as
        the ring has room; room_again() calls again when it had none."""
        console = c.ptys[0]
        while c.draining > 0:
            if c.ring is not None and c.ring.room() < READ_SIZE and c.feed is not None:
                return  # the journal takes its queue first
            data = self.read_pty(console)
            if not data:
                break
            c.draining -= len(data)
            self.record(c, data)
        self.drained(c)

    def drained(self, c: HeldContainer) -> None:
        c.draining = 0
        if c.feed is not None:
            self.forwarder.retire(c.feed, time.monotonic())  # then release(c)
        else:
            self.release(c)

    def room_again(self, c: HeldContainer) -> None:
        """The journal took enough of c's queue: read its console again."""
        console = c.ptys.get(0)
        if console is None:
            return
        if c.draining > 0:
            self.drain(c)
        else:
            self.resume(console.master, "journal")

    def release(self, c: HeldContainer) -> None:
        for kind, fd in c.fds.items():
            self.unwatch(fd)
            store.drop(c.cid, kind)
            os.close(fd)
        for pty in c.ptys.values():
            close_all([pty.peer])
            pty.peer = -1
        c.fds = {}
        if c.feed is not None:
            self.forwarder.drop(c.feed)
        if c.ring is not None:
            store.drop(c.cid, store.RING)
            c.ring.close()
            c.ring = None
        if c.log is not None:
            c.log.close()

    def tty_hangup(self, pty: Pty) -> None:
        self.unwatch(pty.master)
        for client in list(pty.viewers):
            self.end_session(client, f"tty {pty.index} of {pty.container.name} hung up")

    # -- output and input -------------------------------------------------------------------

    def on_master(self, pty: Pty, events: int) -> None:
        data = self.read_pty(pty)
        if data is None:
            return
        if data:
            self.output(pty, data)
        elif pty.index == 0:
            self.end(pty.container, f"console of {pty.container.name} hung up")
        else:
            self.tty_hangup(pty)

    @staticmethod
    def read_pty(pty: Pty) -> bytes | None:
        """Output of a pty, b"" once no slave is open, None when there is none now. The
        console's goes straight into the ring (before anything else can happen to it)."""
        ring = pty.container.ring if pty.index == 0 else None
        try:
            if ring is None:
                return os.read(pty.master, READ_SIZE)
            if not ring.room():
                return None  # not read until the journal took some of the queue
            return ring.read_from(pty.master, READ_SIZE)
        except BlockingIOError:
            return None
        except OSError:  # EIO: no slave open any more
            return b""

    def output(self, pty: Pty, data: bytes) -> None:
        if pty.viewers:
            frame = b"d" + data
            for client in list(pty.viewers):
                self.send(client, frame)
                if client.queued > HIGH_WATER and client.fd in self.clients:
                    self.stalled.setdefault(client, time.monotonic() + STALL_TIMEOUT)
                    self.pause(pty.master, "viewer")
        if pty.index == 0:
            self.lxc.console_output(pty.container, data)
            self.record(pty.container, data)

    def record(self, c: HeldContainer, data: bytes) -> None:
        """Console output, already in the ring: the log file, then the journal's queue."""
        if c.log is not None:
            self.write_log(c, c.log, data)
        if c.ring is None:
            return
        if c.feed is None:
            c.ring.mark_sent(len(data))  # no journal: the ring is only the buffer
            return
        self.forwarder.add(c.feed, time.monotonic())
        if c.ring.room() < READ_SIZE and c.draining < 0:
            self.pause(c.ptys[0].master, "journal")

    def write_log(self, c: HeldContainer, console_log: ConsoleLog, data: bytes) -> None:
        try:
            console_log.write(data)
        except OSError as e:
            # Once, not per chunk: the file is given up until the container starts again.
            self.warn(c, f"console log file {console_log.path}: {e.strerror}; not written "
                         "any more")
            console_log.close()
            c.log = None

    def warn(self, c: HeldContainer, message: str) -> None:
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
            import termios  # here: only a resizing viewer needs it (44 kB PSS, measured)

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
                    store.drop(cid, kind)
                    os.close(fd)
                continue
            self.add(c)

    def shutdown(self) -> None:
        """Stopping or restarting: send the queued lines journald takes in time (the rest
        waits in the rings, in the store, for the next run), tell viewers."""
        self.forwarder.finish(SHUTDOWN_FLUSH)
        end = bytes([protocol.FRAME_END]) + b"the console service is stopping"
        for client in list(self.clients.values()):
            if client.pty is not None:
                send_quietly(client.sock, end)
            client.sock.close()
        self.clients.clear()


def revive(cid: int, named: dict[str, int]) -> HeldContainer:
    """A container from its stored descriptors; raises ValueError or OSError."""
    meta = named.get(store.META)
    if meta is None:
        raise ValueError("no meta descriptor")
    verb, fields = protocol.decode(os.pread(meta, protocol.MAX_MESSAGE, 0))
    if verb != "register":
        raise ValueError(f"meta descriptor holds {verb!r}")
    name = protocol.check_name(fields.get("name", ""))
    options = ConsoleOptions.from_fields(fields)
    ring_fd = named.pop(store.RING, -1)
    ring = None
    if ring_fd >= 0:
        ring = stored_ring(name, options, ring_fd)
    elif options.buffer_size or options.journal:  # registered by an older daemon
        ring = new_ring(name, options)
    c = HeldContainer(cid, name, fields.get("unit", ""), options, named, ring,
                  lxccmd.side(fields, named))
    c.cgroup_v1 = cgroup_v1_of(fields)
    if ring is not None and ring_fd != ring.fd:
        store_ring(c)
    return c


def new_ring(name: str, options: ConsoleOptions) -> Ring | None:
    """The ring of a new registration: the buffer lxc.console.buffer.size asks for, at
    least QUEUE_MIN when lines go to the journal."""
    if not options.journal:
        return Ring.create(f"lxcsd-console-ring:{name}", options.buffer_size,
                           options.buffer_size) if options.buffer_size else None
    return Ring.create(f"lxcsd-console-ring:{name}", max(options.buffer_size, QUEUE_MIN),
                       options.buffer_size)


def stored_ring(name: str, options: ConsoleOptions, fd: int) -> Ring | None:
    """The ring from the store; an older daemon's (a bare copy of the buffer, stored only
    across its restart) becomes the visible part of a new one."""
    try:
        return Ring(fd)
    except ValueError:
        pass
    ring = new_ring(name, options)
    if ring is not None:
        ring.write(os.pread(fd, ring.capacity, 0))
        ring.mark_sent(ring.written)
    os.close(fd)
    return ring


def store_ring(c: HeldContainer) -> None:
    if c.ring is not None:
        store.keep(c.cid, store.RING, c.ring.fd)


def init_pid(pidfd: int) -> int:
    """The pid of a pidfd's process, 0 once it exited (or without a pidfd)."""
    if pidfd < 0 or select.select([pidfd], [], [], 0)[0]:
        return 0
    try:
        with open(f"/proc/self/fdinfo/{pidfd}", "rb") as f:
            for line in f:
                if line.startswith(b"Pid:"):
                    return max(0, int(line.split()[1]))
    except OSError:
        pass
    return 0


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


def status(containers: dict[str, HeldContainer]) -> None:
    sdnotify.notify(f"STATUS=holding the consoles of {len(containers)} containers")


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
    groups, others = store.group(sdnotify.listen_fds())
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
    path = os.environ.get(JOURNAL_ENV) or JOURNAL_SOCKET
    journal = Journal(path)
    journal.sock.setblocking(False)  # the daemon's own notices: never worth waiting for
    forwarder = Forwarder(path)
    forwarder.connect()
    daemon = Daemon(listener, journal, forwarder)
    install_signals(daemon)
    daemon.restore(groups)
    sdnotify.notify(f"READY=1\nSTATUS=holding the consoles of {len(daemon.containers)} containers")
    daemon.run()
    daemon.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
