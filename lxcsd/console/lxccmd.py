"""liblxc's command socket of every running container, answered by lxcsd-console.

LXC's tools find a running container by connecting to ``@LXCPATH/NAME/command``; with no
listener they conclude STOPPED, and lxc-start boots a second init, lxc-destroy deletes the
root of a running container. lxcsd-helper start binds that socket first (an EADDRINUSE
there is liblxc's own "already running" test, both ways) and hands the listening socket to
this service with the console (handoff.py, kind ``cmd``). It waits in systemd's
file-descriptor store with the ptys, so a restart of this service keeps it bound, and it is
closed when init exits, as LXC's monitor closes it.

The answers, command by command (wire format: lxcsd.liblxc.wire):

- state (RUNNING; STOPPING once ``lxcsd-helper stop`` says so; FREEZING/FROZEN/THAWED as
  lxc-freeze reports them), init PID and pidfd, name, lxcpath, the namespaces init does not
  share with the host (clone flags);
- cgroups: paths relative to the cgroup2 root and O_PATH descriptors of init's cgroup (the
  "container" cgroup) and of the payload (the "limit" cgroup), what lxc-attach, lxc-cgroup
  and lxc-freeze ask for;
- state clients: lxc-wait and lxc-stop's wait get a ``struct lxc_msg`` when the state they
  wait for comes; STOPPED is sent as the container ends;
- ttys: lxc-console gets the master of a free tty (held for it until it disconnects; an
  ``lxcsd console`` viewer and it exclude each other, as two lxc-console do), and for the
  console a proxy pty as liblxc's monitor gives out: the console itself stays read here, for
  the journal and the ring buffer;
- the console ring buffer (CONSOLE_LOG), FREEZE/UNFREEZE (cgroup.freeze of the payload);
- GET_CONFIG_ITEM: the keys LXC's tools ask for were recorded by the start with the
  registration (lxcsd.liblxc.items.preset, read back from its memfd); any other key, and
  STOP, in a short-lived forked worker (lxcwork.py): reading a config can block on a slow
  file system and needs lxcsd.config (~0.9 MB, ~10 ms to import), and a D-Bus call can wait
  on a busy systemd; neither may hold up every console, nor stay in this process's memory.
  STOP becomes ``systemctl stop lxc@NAME`` (the unit ends inactive);
- anything else gets the reply liblxc gives when it cannot (-ENOSYS, -EBADF, -EINVAL), never
  silence: no devpts descriptor (lxc-attach then allocates its pty on the host, as with
  LXC 4.0), no seccomp notifier, no bpf device rules (systemd owns the device policy).

Who may ask: liblxc's monitor accepts root and its own uid. Abstract sockets ignore mount
namespaces, so a container sharing the host's network namespace could reach them: only
root processes of this service's own pid and user namespaces are answered (-EPERM else).

Memory: per container one listening socket and one small object; connections and workers
exist only while a tool talks. Import-light, as the rest of the daemon (_socket, struct).
"""

from __future__ import annotations

import _socket
import errno
import fcntl
import os
import struct
import sys
import time

from lxcsd.console import lxcwork, protocol, store
from lxcsd.console.protocol import ProtocolError
from lxcsd.liblxc import wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.console.daemon import Daemon, HeldContainer

POLLIN, POLLOUT = 0x001, 0x004
MAX_CONNECTIONS = 512  # at once, all containers: beyond, a connection is closed unanswered
MAX_DENIED = 32  # connections of peers that get only -EPERM, at once: beyond, closed at once
MAX_WORKERS = 16
O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NAMESPACES = (("mnt", 0x00020000), ("uts", 0x04000000), ("ipc", 0x08000000),
              ("user", 0x10000000), ("pid", 0x20000000), ("net", 0x40000000),
              ("cgroup", 0x02000000), ("time", 0x00000080))
FIFO = "/run/lxc/{lxcpath}/monitor-fifo"  # lxc-monitord's (monitor.c, rundir of root)


def log(level: int, message: str) -> None:
    """As the daemon's own messages: stderr, with the <level> prefix journald reads."""
    sys.stderr.write(f"<{level}>{message}\n")
    sys.stderr.flush()


class LxcSide:
    """What one container needs for its command socket."""

    __slots__ = ("fd", "listener", "lxcpath", "cgroup", "limit", "pid", "state", "conns",
                 "held", "proxy")

    def __init__(self, fd: int, lxcpath: str, cgroup: str, limit: str) -> None:
        self.fd = fd  # the daemon owns it: one of the container's stored descriptors
        self.listener: _socket.socket | None = None  # while served; detached, never closed
        self.lxcpath = lxcpath
        self.cgroup = cgroup  # init's cgroup (liblxc's "container" cgroup), a host path
        self.limit = limit or cgroup  # the payload (liblxc's "limit" cgroup)
        self.pid = 0
        self.state = wire.RUNNING
        self.conns: list[Conn] = []  # a list: 56 bytes empty, a set 216 (most stay empty)
        self.held: dict[int, Conn] = {}  # tty number -> the lxc-console holding it
        self.proxy: Proxy | None = None


def side(fields: dict[str, str], fds: dict[str, int]) -> LxcSide | None:
    """The registration's command socket, if it came with one."""
    listener = fds.get(store.CMD, -1)
    if listener < 0:
        return None
    return LxcSide(listener, fields.get("lxcpath", ""), fields.get("cgroup", ""),
                   fields.get("limit_cgroup", ""))


def check_listener(fd: int, lxcpath: str, name: str) -> None:
    """Refuse a descriptor that is not a listening socket bound to liblxc's name for
    (lxcpath, name): a registration may only publish the container it is about."""
    sock = _socket.socket(fileno=fd)
    try:
        ok = (sock.family == _socket.AF_UNIX and sock.type == _socket.SOCK_STREAM
              and sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ACCEPTCONN) == 1)
        bound = sock.getsockname() if ok else b""
    finally:
        sock.detach()
    if not lxcpath.startswith("/"):
        raise ProtocolError(f"lxcpath={lxcpath!r} is not an absolute path")
    if not ok or os.fsencode(bound) != wire.socket_name(lxcpath, name):
        raise ProtocolError(f"the descriptor named cmd is not {name}'s listening command "
                            "socket")


class Conn:
    """A connection on a container's command socket."""

    __slots__ = ("sock", "fd", "c", "buf", "out", "closing", "states", "kind", "denied")

    def __init__(self, sock: _socket.socket, c: HeldContainer) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.c = c
        self.buf = b""
        self.out = b""  # answer bytes the socket did not take yet
        self.closing = False  # close once `out` is sent
        self.states = 0  # a state client: bit n set = waits for state n
        self.kind = ""  # kept for: "wait", "tty", "stop", "worker"
        self.denied = False  # a peer that is not the host's root: -EPERM to any request


class Proxy:
    """The console as lxc-console gets it: a pty of our own whose master the client holds;
    console output is copied to its other end and what the client types goes to the
    console (liblxc's terminal proxy, terminal.c)."""

    __slots__ = ("conn", "pts", "size")

    def __init__(self, conn: Conn, pts: int) -> None:
        self.conn = conn
        self.pts = pts
        self.size = b""


class LxcServer:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.conns: dict[int, Conn] = {}
        self.workers: dict[int, tuple[int, Conn]] = {}  # pidfd -> (pid, connection)
        self.own_ns = _ns_ids("self")
        self.serial = 0  # names kept state clients in the fd store
        self.cgroup_mount: tuple[str, int] | None = None

    # -- containers -------------------------------------------------------------------------

    def start(self, c: HeldContainer) -> None:
        x = c.lxc
        if x is None:
            return
        x.pid = _pid_of(c.pidfd) if c.pidfd >= 0 else 0
        x.listener = _socket.socket(fileno=x.fd)
        x.listener.setblocking(False)
        self.d.watch(x.fd, POLLIN, lambda ev: self.accept(c),
                     lambda: log(3, f"lxcsd-console: {c.name}: command socket given up"))
        self.adopt_waiters(c)
        self.announce(c, wire.RUNNING)

    def end(self, c: HeldContainer) -> None:
        """The container is gone: STOPPED to whoever waits for it, every connection closed.
        The listener itself is one of c.fds: the daemon closes it with the rest."""
        x = c.lxc
        if x is None:
            return
        if x.listener is not None:
            x.listener.detach()  # closed with the container's other descriptors
            x.listener = None
        if x.state != wire.STOPPING:  # as liblxc's monitor: STOPPING, then STOPPED
            self.set_state(c, wire.STOPPING)
        x.state = wire.STOPPED
        self.announce(c, wire.STOPPED)
        for conn in list(x.conns):
            if conn.kind == "wait" and conn.states & (1 << wire.STOPPED):
                _send_quietly(conn.sock, wire.state_message(c.name, wire.STOPPED))
            if conn.kind != "worker":  # a worker's connection closes when it exits
                self.close(conn)
        self.unhold_console(x)

    def stopping(self, c: HeldContainer) -> None:
        self.set_state(c, wire.STOPPING)

    def set_state(self, c: HeldContainer, state: int) -> None:
        """A new state: recorded, sent to the state clients waiting for it, announced."""
        x = c.lxc
        if x is None:
            return
        x.state = wire.RUNNING if state == wire.THAWED else state
        for conn in list(x.conns):
            if conn.kind == "wait" and conn.states & (1 << state):
                _send_quietly(conn.sock, wire.state_message(c.name, state))
                self.close(conn)
        self.announce(c, state)

    def announce(self, c: HeldContainer, state: int) -> None:
        """The state to lxc-monitord's FIFO, when it runs (lxc-monitor reads it)."""
        x = c.lxc
        assert x is not None
        try:
            fd = os.open(FIFO.format(lxcpath=x.lxcpath), os.O_WRONLY | os.O_NONBLOCK
                         | os.O_CLOEXEC)
        except OSError:
            return  # ENXIO/ENOENT: no lxc-monitord, as usual
        try:
            os.write(fd, wire.state_message(c.name, state))
        except OSError:
            pass  # a full FIFO: liblxc would block here; a monitor message is not worth it
        finally:
            os.close(fd)

    # -- connections ------------------------------------------------------------------------

    def accept(self, c: HeldContainer) -> None:
        x = c.lxc
        assert x is not None and x.listener is not None
        try:
            conn_fd, _ = x.listener._accept()  # type: ignore[attr-defined]  # accept()'s
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as e:  # EMFILE and the like: the connection waits in the backlog
            log(3, f"lxcsd-console: {c.name}: cannot accept on the command socket: "
                   f"{e.strerror}")
            time.sleep(0.1)  # rather than spin on a listener that stays readable
            return
        sock = _socket.socket(fileno=conn_fd)
        if len(self.conns) >= MAX_CONNECTIONS:
            sock.close()
            return
        sock.setblocking(False)
        conn = Conn(sock, c)
        self.conns[conn.fd] = conn
        x.conns.append(conn)
        conn.denied = not self.peer_allowed(sock)
        if conn.denied and sum(other.denied for other in self.conns.values()) > MAX_DENIED:
            self.close(conn)  # a foreign peer holding connections open: no more for it
            return
        self.watch(conn)

    def watch(self, conn: Conn) -> None:
        self.d.watch(conn.fd, POLLIN, lambda ev: self.on_conn(conn, ev),
                     lambda: self.close(conn))

    def peer_allowed(self, sock: _socket.socket) -> bool:
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        pid, uid, _ = struct.unpack("3i", cred)
        return uid == 0 and pid > 0 and _ns_ids(str(pid)) == self.own_ns

    def on_conn(self, conn: Conn, events: int) -> None:
        if events & POLLOUT:
            self.flush(conn)
        if conn.fd not in self.conns or not events & (POLLIN | 0x018):  # 0x018: HUP, ERR
            return
        try:
            data = conn.sock.recv(wire.DATA_MAX + wire.REQ.size)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close(conn)
        elif conn.kind:
            return  # a kept connection says nothing more; liblxc's clients never do
        else:
            conn.buf += data
            self.parse(conn)

    def parse(self, conn: Conn) -> None:
        if len(conn.buf) < wire.REQ.size:
            return
        cmd, datalen, value = wire.unpack(conn.buf[:wire.REQ.size])
        if datalen < 0 or (datalen > wire.DATA_MAX and cmd != wire.CONSOLE_LOG):
            self.close(conn)  # liblxc drops such requests unanswered
            return
        if len(conn.buf) < wire.REQ.size + datalen:
            if len(conn.buf) > wire.REQ.size + wire.DATA_MAX:
                self.close(conn)
            return
        data = conn.buf[wire.REQ.size:wire.REQ.size + datalen]
        conn.buf = b""
        conn.kind = "answered"  # one request per connection
        self.command(conn, cmd, value, data)

    def close(self, conn: Conn) -> None:
        if self.conns.pop(conn.fd, None) is None:
            return
        self.d.unwatch(conn.fd)
        x = conn.c.lxc
        if x is not None:
            if conn in x.conns:
                x.conns.remove(conn)
            for number, holder in list(x.held.items()):
                if holder is conn:
                    del x.held[number]
            if x.proxy is not None and x.proxy.conn is conn:
                self.unhold_console(x)
        if conn.kind in ("wait", "stop"):
            self.unstore_waiter(conn)
        conn.sock.close()

    # -- answering --------------------------------------------------------------------------

    def reply(self, conn: Conn, ret: int, value: int = 0, data: bytes = b"",
              fds: list[int] | None = None, keep: str = "") -> None:
        """Send a response; close the connection after it unless ``keep`` says why not."""
        message = wire.pack(ret, len(data), value)
        try:
            if fds:
                rights = struct.pack(f"{len(fds)}i", *fds)
                sent = conn.sock.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                                      rights)])
            else:
                sent = conn.sock.send(message)
        except BlockingIOError:
            sent = 0  # an empty socket buffer takes 16 bytes: only after a hostile flood
        except OSError:
            self.close(conn)
            return
        conn.kind = keep
        conn.out = message[sent:] + data
        conn.closing = not keep
        self.flush(conn)

    def flush(self, conn: Conn) -> None:
        while conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except BlockingIOError:
                self.d.poll.modify(conn.fd, POLLIN | POLLOUT)
                return
            except OSError:
                self.close(conn)
                return
            conn.out = conn.out[sent:]
        if conn.fd in self.conns:
            self.d.poll.modify(conn.fd, POLLIN)
        if conn.closing:
            self.close(conn)

    def command(self, conn: Conn, cmd: int, value: int, data: bytes) -> None:
        if conn.denied:
            self.reply(conn, -errno.EPERM)  # liblxc's answer to a uid it does not serve
            return
        handler = COMMANDS.get(cmd)
        if handler is None:
            self.reply(conn, -errno.ENOSYS)  # as lxc_cmd_rsp_send_enosys
            return
        try:
            handler(self, conn, value, data)
        except OSError as e:
            self.reply(conn, -(e.errno or errno.EIO))

    # -- the commands -----------------------------------------------------------------------

    def cmd_init_pid(self, conn: Conn, value: int, data: bytes) -> None:
        self.reply(conn, 0, self.lxc(conn).pid)

    def cmd_init_pidfd(self, conn: Conn, value: int, data: bytes) -> None:
        if conn.c.pidfd < 0:
            self.reply(conn, -errno.EBADF)
        else:
            self.reply(conn, 0, fds=[conn.c.pidfd])

    def cmd_state(self, conn: Conn, value: int, data: bytes) -> None:
        self.reply(conn, 0, self.lxc(conn).state)

    def cmd_clone_flags(self, conn: Conn, value: int, data: bytes) -> None:
        """The namespaces init does not share with the host's init (PID 1)."""
        pairs = zip(NAMESPACES, _ns_inodes("1"), _ns_inodes(str(self.lxc(conn).pid)),
                    strict=True)
        self.reply(conn, 0, sum(flag for (_, flag), host, its in pairs
                                if its is not None and its != host))

    def cmd_name(self, conn: Conn, value: int, data: bytes) -> None:
        self.reply(conn, 0, data=os.fsencode(conn.c.name) + b"\0")

    def cmd_lxcpath(self, conn: Conn, value: int, data: bytes) -> None:
        self.reply(conn, 0, data=os.fsencode(self.lxc(conn).lxcpath) + b"\0")

    def cmd_who(self, conn: Conn, value: int, data: bytes) -> None:
        self.reply(conn, 0, data=f"lxcsd {conn.c.unit}".encode() + b"\0")

    def cmd_cgroup(self, conn: Conn, value: int, data: bytes, limit: bool = False) -> None:
        controller = wire.c_string(data) if data else None
        if data and controller is None:
            self.reply(conn, -errno.EINVAL)
            return
        x = self.lxc(conn)
        path = x.limit if limit else x.cgroup
        if controller is not None and not self.has_controller(x, controller):
            self.reply(conn, -errno.ENOENT)
            return
        root, _ = self.mount()
        relative = path[len(root):] if path.startswith(root + "/") else "/"
        self.reply(conn, 0, data=os.fsencode(relative) + b"\0")

    def cmd_limit_cgroup(self, conn: Conn, value: int, data: bytes) -> None:
        self.cmd_cgroup(conn, value, data, limit=True)

    def cmd_cgroup2_fd(self, conn: Conn, value: int, data: bytes, limit: bool = False) -> None:
        if self.mount()[1] != wire.LAYOUT_UNIFIED:
            self.reply(conn, -errno.EINVAL)  # liblxc: only on a pure cgroup2 host
            return
        x = self.lxc(conn)
        self.reply_dirfd(conn, x.limit if limit else x.cgroup)

    def cmd_limit_cgroup2_fd(self, conn: Conn, value: int, data: bytes) -> None:
        self.cmd_cgroup2_fd(conn, value, data, limit=True)

    def cmd_cgroup_ctx(self, conn: Conn, value: int, data: bytes) -> None:
        x = self.lxc(conn)
        fd = os.open(x.cgroup, O_PATH_DIR)
        try:
            ctx = wire.CGROUP_CTX.pack(self.mount()[1], self.utilities(x), 1, fd,
                                       *([-1] * (wire.CGROUP_CTX_MAX_FD - 1)))
            self.reply(conn, 0, data=ctx[:min(len(ctx), len(data))], fds=[fd])
        finally:
            os.close(fd)

    def cmd_cgroup_fd(self, conn: Conn, value: int, data: bytes, limit: bool = False) -> None:
        raw = data[:wire.CGROUP_FD.size].ljust(wire.CGROUP_FD.size, b"\0")
        _, _, kind, _, name = wire.CGROUP_FD.unpack(raw)
        controller = name.split(b"\0", 1)[0].decode(errors="replace")
        x = self.lxc(conn)
        if not controller or kind not in (0, wire.UNIFIED_HIERARCHY):
            self.reply(conn, -errno.EINVAL)
            return
        if not self.has_controller(x, controller):
            self.reply(conn, -errno.ENOENT)
            return
        fd = os.open(x.limit if limit else x.cgroup, O_PATH_DIR)
        try:
            answer = wire.CGROUP_FD.pack(self.mount()[1], self.utilities(x),
                                         wire.UNIFIED_HIERARCHY, fd, name)
            self.reply(conn, 0, data=answer[:min(len(answer), len(data))], fds=[fd])
        finally:
            os.close(fd)

    def cmd_limit_cgroup_fd(self, conn: Conn, value: int, data: bytes) -> None:
        self.cmd_cgroup_fd(conn, value, data, limit=True)

    def cmd_add_state_client(self, conn: Conn, value: int, data: bytes) -> None:
        if len(data) != wire.STATES.size:
            self.reply(conn, -errno.EINVAL)
            return
        wanted = wire.STATES.unpack(data)
        x = self.lxc(conn)
        if wanted[x.state]:
            self.reply(conn, x.state, x.state)  # already there: the client stops here
            return
        conn.states = sum(1 << n for n, flag in enumerate(wanted) if flag)
        self.reply(conn, wire.MAX_STATE, wire.MAX_STATE, keep="wait")
        self.store_waiter(conn)

    def cmd_serve_state_clients(self, conn: Conn, value: int, data: bytes) -> None:
        if not 0 <= value < wire.MAX_STATE:
            self.reply(conn, -errno.EINVAL)
            return
        self.set_state(conn.c, value)
        self.reply(conn, 0)

    def cmd_freeze(self, conn: Conn, value: int, data: bytes, frozen: bool = True) -> None:
        """cgroup.freeze of the payload; the answer does not wait for the kernel to finish
        (liblxc waits up to the timeout given): lxc-freeze itself does not use this."""
        x = self.lxc(conn)
        _write_at(x.limit, "cgroup.freeze", b"1" if frozen else b"0")
        self.set_state(conn.c, wire.FROZEN if frozen else wire.THAWED)
        self.reply(conn, 0)

    def cmd_unfreeze(self, conn: Conn, value: int, data: bytes) -> None:
        self.cmd_freeze(conn, value, data, frozen=False)

    def cmd_console_log(self, conn: Conn, value: int, data: bytes) -> None:
        clear, read, read_max, _ = wire.CONSOLE_LOG_REQ.unpack(
            data[:wire.CONSOLE_LOG_REQ.size].ljust(wire.CONSOLE_LOG_REQ.size, b"\0"))
        ring = conn.c.ring
        if ring is None or not ring.visible:  # a ring only as the journal's queue: none
            self.reply(conn, -errno.EFAULT)  # liblxc: no ring buffer
            return
        content = ring.read() if read else b""
        if read and not content:
            self.reply(conn, -errno.ENODATA)
            return
        if 0 < read_max <= len(content):
            content = content[:read_max]
        if clear:
            ring.clear()
        elif content:  # what was read is consumed, as lxc_ringbuf_move_read_addr
            ring.consume(len(content))
        self.reply(conn, 0, data=content)

    def cmd_tty_fd(self, conn: Conn, value: int, data: bytes) -> None:
        c, x = conn.c, self.lxc(conn)
        if value == 0:
            self.give_console(conn)
            return
        numbers = [value] if value > 0 else sorted(n for n in c.ptys if n > 0)
        for number in numbers:
            pty = c.ptys.get(number)
            if number > 0 and pty is not None and number not in x.held and not pty.viewers:
                x.held[number] = conn
                self.reply(conn, 0, number, fds=[pty.master], keep="tty")
                return
        self.reply(conn, -errno.EBADF)  # liblxc: "Denied access to tty"

    def cmd_not_served(self, conn: Conn, value: int, data: bytes) -> None:
        self.reply(conn, -errno.ENOSYS)

    def cmd_no_fd(self, conn: Conn, value: int, data: bytes) -> None:
        self.reply(conn, -errno.EBADF)  # devpts, seccomp notifier: liblxc's "none" answer

    def cmd_invalid(self, conn: Conn, value: int, data: bytes) -> None:
        self.reply(conn, -errno.EINVAL)  # systemd scope, seccomp listener: none here

    def cmd_bpf_device(self, conn: Conn, value: int, data: bytes) -> None:
        self.reply(conn, -errno.EOPNOTSUPP)  # lxc.cgroup2.devices / DeviceAllow= rule here

    def cmd_config_item(self, conn: Conn, value: int, data: bytes) -> None:
        key = wire.c_string(data)
        if not key:
            self.reply(conn, -errno.EINVAL)
            return
        recorded = self.recorded_item(conn.c, key)
        if recorded is None:  # not one the start recorded: read the config in a worker
            self.work(conn, lxcwork.config_item, key, self.lxc(conn).lxcpath)
        elif recorded[0] is None:
            self.reply(conn, -1)  # liblxc's "no value"
        else:
            self.reply(conn, 0, data=os.fsencode(recorded[0]) + b"\0")

    def cmd_stop(self, conn: Conn, value: int, data: bytes) -> None:
        x = self.lxc(conn)
        try:
            _write_at(x.limit, "cgroup.freeze", b"0")  # a frozen init cannot halt (liblxc)
        except OSError:
            pass
        self.note(conn.c, f"stop asked by {peer_text(conn.sock)} on the LXC command socket: "
                          "systemctl stop, then init powered off (liblxc's stop kills)")
        self.work(conn, lxcwork.stop)

    # -- helpers ----------------------------------------------------------------------------

    def note(self, c: HeldContainer, message: str) -> None:
        """A line in the container's own journal (`journalctl -u lxc@NAME`)."""
        self.d.journal.send(message, 5, OBJECT_SYSTEMD_UNIT=c.unit,
                            SYSLOG_IDENTIFIER="lxcsd-console", CONTAINER_NAME=c.name)

    @staticmethod
    def recorded_item(c: HeldContainer, key: str) -> tuple[str | None] | None:
        """(text,) of an item the start recorded with the registration (its meta memfd:
        nothing of it stays in this process's memory), None when it recorded none."""
        meta = c.fds.get(store.META, -1)
        if meta < 0:
            return None
        _, fields = protocol.decode(os.pread(meta, protocol.MAX_MESSAGE, 0))
        value = fields.get(f"item.{key}")
        return None if value is None else (wire.decode_item(value),)

    @staticmethod
    def lxc(conn: Conn) -> LxcSide:
        x = conn.c.lxc
        assert x is not None
        return x

    def mount(self) -> tuple[str, int]:
        """(cgroup2 mount point, liblxc's layout of the host), read once."""
        if self.cgroup_mount is None:
            self.cgroup_mount = cgroup2_mount()
        return self.cgroup_mount

    @staticmethod
    def has_controller(x: LxcSide, controller: str) -> bool:
        if controller == "freezer":  # cgroup2's freezer is cgroup.freeze (liblxc too)
            return os.path.exists(os.path.join(x.limit, "cgroup.freeze"))
        try:
            with open(os.path.join(x.limit, "cgroup.controllers"), "rb") as f:
                return controller in f.read().decode().split()
        except OSError:
            return False

    @staticmethod
    def utilities(x: LxcSide) -> int:
        freezer = os.path.exists(os.path.join(x.limit, "cgroup.freeze"))
        return wire.FREEZER_CONTROLLER if freezer else 0

    def reply_dirfd(self, conn: Conn, path: str) -> None:
        fd = os.open(path, O_PATH_DIR)
        try:
            self.reply(conn, 0, fds=[fd])
        finally:
            os.close(fd)

    # -- the console for lxc-console --------------------------------------------------------

    def give_console(self, conn: Conn) -> None:
        c, x = conn.c, self.lxc(conn)
        if 0 not in c.ptys or x.proxy is not None:
            self.reply(conn, -errno.EBADF)  # no console, or one lxc-console has it already
            return
        import termios  # here, as in copy_winsize: only lxc-console needs it (44 kB PSS)

        master, pts = os.openpty()
        try:
            attrs = termios.tcgetattr(pts)
            attrs[0] = attrs[1] = attrs[3] = 0  # raw: bytes pass untouched, as cfmakeraw
            attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
            termios.tcsetattr(pts, termios.TCSANOW, attrs)
            os.set_blocking(pts, False)
            fcntl.fcntl(master, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
            fcntl.fcntl(pts, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
            self.reply(conn, 0, 0, fds=[master], keep="tty")
        finally:
            os.close(master)
        if conn.fd not in self.conns:
            os.close(pts)
            return
        x.proxy = Proxy(conn, pts)
        self.d.watch(pts, POLLIN, lambda ev: self.proxy_input(c), lambda: self.close(conn))

    def console_output(self, c: HeldContainer, data: bytes) -> None:
        """Console output, copied to lxc-console's proxy; dropped when it does not read
        (a second viewer never slows the console down)."""
        x = c.lxc
        if x is None or x.proxy is None:
            return
        try:
            os.write(x.proxy.pts, data)
        except BlockingIOError:
            pass
        except OSError:
            self.close(x.proxy.conn)

    def proxy_input(self, c: HeldContainer) -> None:
        x = c.lxc
        assert x is not None and x.proxy is not None
        proxy = x.proxy
        try:
            data = os.read(proxy.pts, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close(proxy.conn)
            return
        console = c.ptys.get(0)
        if console is None:
            return
        self.copy_winsize(proxy, console.master)
        try:
            os.write(console.master, data)
        except BlockingIOError:
            pass  # the container does not read its console: typing is lost, as with ours

    @staticmethod
    def copy_winsize(proxy: Proxy, master: int) -> None:
        import termios

        size = fcntl.ioctl(proxy.pts, termios.TIOCGWINSZ, b"\0" * 8)
        if size != proxy.size:
            proxy.size = size
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)

    def unhold_console(self, x: LxcSide) -> None:
        proxy, x.proxy = x.proxy, None
        if proxy is not None:
            self.d.unwatch(proxy.pts)
            os.close(proxy.pts)
            self.close(proxy.conn)

    def tty_busy(self, c: HeldContainer, index: int) -> str:
        """Why an `lxcsd console` viewer cannot have tty ``index`` ("" when it can)."""
        x = c.lxc
        if x is not None and index in x.held:
            return f"tty {index} of {c.name} is in use by lxc-console"
        return ""

    # -- workers ----------------------------------------------------------------------------

    def work(self, conn: Conn, task: lxcwork.Task, *args: str) -> None:
        if len(self.workers) >= MAX_WORKERS:
            self.reply(conn, -errno.EAGAIN)
            return
        conn.kind = "worker"
        self.d.unwatch(conn.fd)  # the worker answers on it; we only close it afterwards
        pid = lxcwork.spawn(task, conn.fd, conn.c.pidfd, conn.c.name, conn.c.unit, *args)
        pidfd = os.pidfd_open(pid)
        self.workers[pidfd] = (pid, conn)
        self.d.watch(pidfd, POLLIN, lambda ev: self.worker_done(pidfd), lambda: None)

    def worker_done(self, pidfd: int) -> None:
        pid, conn = self.workers.pop(pidfd)
        self.d.unwatch(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        x = conn.c.lxc
        if conn.fd not in self.conns:
            return
        self.watch(conn)  # the daemon's again (the worker had it)
        if code not in (0, lxcwork.KEEP):
            self.reply(conn, -errno.EIO)  # it failed before answering: say so, not silence
        elif code == lxcwork.KEEP and x is not None and x.state != wire.STOPPED:
            conn.kind = "stop"  # liblxc's stop client waits for the connection to close
            self.store_waiter(conn)
        else:
            self.close(conn)

    # -- across a restart of the service ----------------------------------------------------

    def store_waiter(self, conn: Conn) -> None:
        """A state or stop client survives a restart of this service in its file-descriptor
        store: its connection closing would read as STOPPED (liblxc's recv() gets 0 bytes,
        its struct lxc_msg stays zero) or as "has stopped"."""
        self.serial += 1
        what = "stop" if conn.kind == "stop" else str(conn.states)
        kind = f"{store.WAIT}{self.serial}-{what}"
        conn.c.fds[kind] = conn.fd
        store.keep(conn.c.cid, kind, conn.fd)

    def unstore_waiter(self, conn: Conn) -> None:
        for kind, fd in list(conn.c.fds.items()):
            if fd == conn.fd and kind.startswith(store.WAIT):
                del conn.c.fds[kind]
                store.drop(conn.c.cid, kind)

    def adopt_waiters(self, c: HeldContainer) -> None:
        """State and stop clients stored by a previous run of this service."""
        x = c.lxc
        assert x is not None
        for kind, fd in list(c.fds.items()):
            if not kind.startswith(store.WAIT):
                continue
            serial, _, what = kind[len(store.WAIT):].partition("-")
            self.serial = max(self.serial, int(serial))
            sock = _socket.socket(fileno=fd)
            sock.setblocking(False)
            conn = Conn(sock, c)
            conn.kind = "stop" if what == "stop" else "wait"
            conn.states = 0 if what == "stop" else int(what)
            self.conns[conn.fd] = conn
            x.conns.append(conn)
            self.watch(conn)


COMMANDS = {
    wire.GET_INIT_PID: LxcServer.cmd_init_pid,
    wire.GET_INIT_PIDFD: LxcServer.cmd_init_pidfd,
    wire.GET_STATE: LxcServer.cmd_state,
    wire.GET_CLONE_FLAGS: LxcServer.cmd_clone_flags,
    wire.GET_NAME: LxcServer.cmd_name,
    wire.GET_LXCPATH: LxcServer.cmd_lxcpath,
    wire.GET_CGROUP: LxcServer.cmd_cgroup,
    wire.GET_LIMIT_CGROUP: LxcServer.cmd_limit_cgroup,
    wire.GET_CGROUP2_FD: LxcServer.cmd_cgroup2_fd,
    wire.GET_LIMIT_CGROUP2_FD: LxcServer.cmd_limit_cgroup2_fd,
    wire.GET_CGROUP_CTX: LxcServer.cmd_cgroup_ctx,
    wire.GET_CGROUP_FD: LxcServer.cmd_cgroup_fd,
    wire.GET_LIMIT_CGROUP_FD: LxcServer.cmd_limit_cgroup_fd,
    wire.ADD_STATE_CLIENT: LxcServer.cmd_add_state_client,
    wire.SERVE_STATE_CLIENTS: LxcServer.cmd_serve_state_clients,
    wire.FREEZE: LxcServer.cmd_freeze,
    wire.UNFREEZE: LxcServer.cmd_unfreeze,
    wire.CONSOLE_LOG: LxcServer.cmd_console_log,
    wire.GET_TTY_FD: LxcServer.cmd_tty_fd,
    wire.GET_CONFIG_ITEM: LxcServer.cmd_config_item,
    wire.STOP: LxcServer.cmd_stop,
    wire.TERMINAL_WINCH: LxcServer.cmd_not_served,
    wire.GET_DEVPTS_FD: LxcServer.cmd_no_fd,
    wire.GET_SECCOMP_NOTIFY_FD: LxcServer.cmd_no_fd,
    wire.GET_SYSTEMD_SCOPE: LxcServer.cmd_invalid,
    wire.SECCOMP_NOTIFY_ADD_LISTENER: LxcServer.cmd_invalid,
    wire.ADD_BPF_DEVICE_CGROUP: LxcServer.cmd_bpf_device,
    wire.LXCSD_WHO: LxcServer.cmd_who,
}


def _ns_ids(pid: str) -> tuple[int, int] | None:
    """(pid namespace, user namespace) inodes of a process; None when it is gone."""
    try:
        return (os.stat(f"/proc/{pid}/ns/pid").st_ino, os.stat(f"/proc/{pid}/ns/user").st_ino)
    except OSError:
        return None


def _ns_inodes(pid: str) -> list[int | None]:
    found: list[int | None] = []
    for ns, _ in NAMESPACES:
        try:
            found.append(os.stat(f"/proc/{pid}/ns/{ns}").st_ino)
        except OSError:
            found.append(None)  # a namespace type this kernel does not have
    return found


def peer_text(sock: _socket.socket) -> str:
    """"lxc-stop (PID 123)": who is on the other end of a connection."""
    pid = struct.unpack("3i", sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12))[0]
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            comm = f.read().decode(errors="replace").strip()
    except OSError:
        comm = "a process"
    return f"{comm} (PID {pid})"


def _pid_of(pidfd: int) -> int:
    with open(f"/proc/self/fdinfo/{pidfd}", "rb") as f:
        for line in f:
            if line.startswith(b"Pid:"):
                return int(line.split()[1])
    return 0


def _write_at(directory: str, name: str, value: bytes) -> None:
    fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)


def _send_quietly(sock: _socket.socket, message: bytes) -> None:
    try:
        sock.send(message)
    except OSError:
        pass  # a state client that went away learns nothing more


def cgroup2_mount() -> tuple[str, int]:
    """Where cgroup2 is mounted, and liblxc's name for the layout: "unified" when it is at
    /sys/fs/cgroup, "hybrid" when it sits beside v1 hierarchies."""
    found = ""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                fields = line.split()
                dash = fields.index(b"-")
                if fields[dash + 1] == b"cgroup2" and not found:
                    found = os.fsdecode(fields[4])
    except (OSError, ValueError):
        pass
    if found == "/sys/fs/cgroup":
        return found, wire.LAYOUT_UNIFIED
    return found or "/sys/fs/cgroup", wire.LAYOUT_HYBRID
