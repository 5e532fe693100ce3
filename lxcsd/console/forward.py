"""Console lines to the journal, as entries of the container's own unit, losing none.

Each line is one datagram on journald's native socket (systemd-journald.service(8)), sent
with SCM_CREDENTIALS naming the container's init. journald takes the sender's identity
from those credentials, so the entry gets ``_SYSTEMD_UNIT=lxc@NAME.service`` (init's
cgroup) and counts against that unit's rate limit (``LogRateLimitIntervalSec=`` /
``LogRateLimitBurst=``), not lxcsd-console's: one noisy container can get only its own
lines suppressed, and journald reports that as "Suppressed N messages from lxc@NAME.service"
(``N_DROPPED=``) in the container's journal. Naming another process in SCM_CREDENTIALS
needs CAP_SYS_ADMIN, which this root service has. ``OBJECT_SYSTEMD_UNIT=`` is added as
well, so the lines of a container whose init is already gone (the last output read after
it exited: sent as ourselves, ESRCH otherwise) still show in ``journalctl -u``.

Why not a journald stream per container, opened by the helper inside the unit's cgroup
(measured under systemd 252 in the sandbox): journald's stream transport also takes the
writer from each write's SCM_CREDENTIALS (journald-stream.c re-resolves the context when
the pid changes), so lines the console service writes are filed under
lxcsd-console.service whoever opened the stream; with explicit credentials both transports
are filed under the container's unit. Datagrams keep the entry's fields (CONTAINER_NAME=,
SYSLOG_IDENTIFIER=NAME/console, OBJECT_SYSTEMD_UNIT=), which a stream cannot carry, and
need no descriptor from the helper. Both survive ``systemctl restart systemd-journald``:
the datagram socket belongs to systemd-journald.socket, and queued datagrams wait in it
for the next journald (measured: 150 000 lines with a restart in between, none missing).

Backpressure instead of loss: the socket is connected and non-blocking. When journald's
receive queue is full (net.unix.max_dgram_qlen datagrams) a send fails with EAGAIN; the
forwarder then waits for POLLOUT, which the kernel reports on a connected datagram socket
once the peer's queue has room. Meanwhile lines wait in each container's ring (ring.py),
and the daemon stops reading a console whose ring has no room: the container's writers
block in the kernel, as on a serial console. When the socket is writable again the
containers take turns, BATCH lines each. When journald's socket refuses connections
(journald and its socket stopped) the forwarder tries again every RETRY seconds, holding
the lines meanwhile. When there is no socket at all (no journald on this system) there is
nothing to wait for: lines go to the rings and log files only, and the forwarder looks
for the socket again every RETRY seconds.

Hot path of a long-lived process: _socket, not socket (see daemon.py).
"""

from __future__ import annotations

import _socket
import errno
import os
import struct
import sys
import time

from lxcsd.console.lines import FLUSH_DELAY, has_line, take_lines
from lxcsd.systemd import journal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lxcsd.console.ring import Ring

BATCH = 64  # lines a container sends before the next one's turn
RETRY = 1.0  # seconds between attempts to reach a missing journal socket
# The daemon reads a console again once its ring has this much room.
RESUME_ROOM = 4096
_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_GONE = (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE)


def _ignore() -> None:
    pass


class Feed:
    """One container's console as the forwarder sees it: its ring, its entries' fixed
    fields, the credentials its lines are sent with."""

    __slots__ = ("ring", "tail", "creds", "since", "retired", "on_room", "on_done")

    def __init__(self, ring: Ring, fields: dict[str, str], pid: int = 0, *,
                 on_room: Callable[[], None] = _ignore,
                 on_done: Callable[[], None] = _ignore) -> None:
        self.ring = ring
        self.tail = b"\n" + journal.journal_fields(6, fields)
        self.creds = as_process(pid)
        # When the oldest byte of a partial line arrived (monotonic), None when all is sent.
        self.since: float | None = None
        self.retired = False  # the container ended: send everything, partial lines too
        self.on_room = on_room  # called when the ring has room again
        self.on_done = on_done  # called when a retired feed has sent everything

    def forget_pid(self) -> None:
        """Init exited: its pid may name another process soon; send as ourselves."""
        self.creds = []


def as_process(pid: int) -> list[tuple[int, int, bytes]]:
    """Ancillary data that makes journald file a datagram under process ``pid``."""
    if pid <= 0:
        return []
    return [(_socket.SOL_SOCKET, _socket.SCM_CREDENTIALS,
             _CREDS.pack(pid, os.getuid(), os.getgid()))]


class Forwarder:
    def __init__(self, path: str = journal.JOURNAL_SOCKET) -> None:
        self.path = path
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC
                                   | _socket.SOCK_NONBLOCK)
        self.turns: dict[Feed, None] = {}  # feeds with lines to send, in turn order
        self.partial: dict[Feed, None] = {}  # feeds holding only a partial line
        self.blocked = False  # journald's queue is full: wait for POLLOUT
        self.retry_at = 0.0  # the journal socket failed: try again then
        self.missing = False  # no journal socket: lines are not held for it
        self.failure = ""  # what was last said about a failing journal socket

    def fileno(self) -> int:
        return int(self.sock.fileno())

    # -- what the daemon calls ----------------------------------------------------------------

    def add(self, feed: Feed, now: float) -> None:
        """New output is in feed's ring."""
        if feed.since is None:
            feed.since = now
        self.partial.pop(feed, None)
        self.turns[feed] = None
        self.pump(now)

    def retire(self, feed: Feed, now: float) -> None:
        """The container ended: send what is left, partial line too, then feed.on_done()."""
        feed.retired = True
        self.partial.pop(feed, None)
        if feed.ring.sent == feed.ring.written:
            feed.on_done()
            return
        self.turns[feed] = None
        self.pump(now)

    def drop(self, feed: Feed) -> None:
        self.turns.pop(feed, None)
        self.partial.pop(feed, None)

    def writable(self, now: float) -> None:
        """POLLOUT on the socket: journald took some of its queue."""
        self.blocked = False
        self.pump(now)

    def wants_pollout(self) -> bool:
        return self.blocked

    def deadline(self) -> float | None:
        """When ``due`` must run next: a partial line's flush or a retry."""
        times = [f.since + FLUSH_DELAY for f in self.partial if f.since is not None]
        if self.turns and not self.blocked and self.retry_at:
            times.append(self.retry_at)
        return min(times) if times else None

    def due(self, now: float) -> None:
        for feed in [f for f in self.partial if f.since is not None
                     and f.since + FLUSH_DELAY <= now]:
            del self.partial[feed]
            self.turns[feed] = None
        self.pump(now)

    # -- sending ------------------------------------------------------------------------------

    def pump(self, now: float) -> None:
        """Send as much as journald takes, the feeds taking turns."""
        while self.turns and not self.blocked and (self.missing or now >= self.retry_at):
            feed = next(iter(self.turns))
            sent = feed.ring.sent
            state = self.send_batch(feed, now)
            if state == "blocked":
                if feed.ring.sent != sent:  # its turn, however short: to the back
                    del self.turns[feed]
                    self.turns[feed] = None
                return
            del self.turns[feed]
            if state == "more":
                self.turns[feed] = None  # to the back of the line
            elif state == "partial":
                self.partial[feed] = None
            elif feed.retired:
                feed.on_done()

    def send_batch(self, feed: Feed, now: float) -> str:
        """Up to BATCH lines of feed: "more" (lines left), "partial" (only a partial line
        left), "empty", or "blocked" (the journal takes no more now)."""
        ring = feed.ring
        data = ring.unsent()
        flush = feed.retired or (feed.since is not None and now >= feed.since + FLUSH_DELAY)
        done = 0
        for line, end in take_lines(data, flush, BATCH):
            if line and not self.send(feed, line):
                self.progress(feed, done, now)
                return "blocked"
            ring.mark_sent(end - done)
            done = end
        self.progress(feed, done, now)
        rest = data[done:]
        if not rest:
            return "empty"
        return "more" if has_line(rest) or feed.retired else "partial"

    def progress(self, feed: Feed, done: int, now: float) -> None:
        if not done:
            return
        feed.since = now if feed.ring.sent < feed.ring.written else None
        if feed.ring.room() >= RESUME_ROOM:
            feed.on_room()

    def send(self, feed: Feed, line: bytes) -> bool:
        """One line; False when it could not go now (blocked or failing: see retry_at)."""
        if self.missing and (time.monotonic() < self.retry_at or not self.connect()):
            return self.missing  # no journal to wait for (or one again: wait for it)
        if not line.isascii():
            line = line.decode(errors="replace").encode()
        payload = b"MESSAGE=" + line + feed.tail
        for _ in range(3):
            try:
                self.sock.sendmsg([payload], feed.creds)
                return True
            except BlockingIOError:
                self.blocked = True
                return False
            except OSError as e:
                if not self.recover(feed, e):
                    return self.missing
        return False

    def recover(self, feed: Feed, e: OSError) -> bool:
        """After a failed send: whether to try again at once."""
        if feed.creds and e.errno in (errno.ESRCH, errno.EPERM, errno.EINVAL):
            # ESRCH: init is gone. EPERM/EINVAL: we may not name it (no CAP_SYS_ADMIN?):
            # lines then go as ours, still under the unit through OBJECT_SYSTEMD_UNIT=.
            if e.errno != errno.ESRCH:
                self.say(f"cannot send console lines as the container's init: {e.strerror}")
            feed.forget_pid()
            return True
        if e.errno in _GONE and self.connect():
            return True
        if e.errno not in _GONE:
            self.say(f"cannot send to the journal ({self.path}): {e.strerror}")
        self.retry_at = time.monotonic() + RETRY
        return False

    def connect(self) -> bool:
        self.retry_at = time.monotonic() + RETRY
        try:
            self.sock.connect(self.path)
        except FileNotFoundError:
            self.missing = True
            self.say(f"no journal socket {self.path}: console lines go to the ring buffers "
                     "and log files only")
            return False
        except OSError as e:
            self.missing = False
            self.say(f"cannot reach the journal at {self.path}: {e.strerror}; console lines "
                     f"wait (retrying every {RETRY:g} s)")
            return False
        self.missing = False
        if self.failure:
            self.say("")
        self.retry_at = 0.0
        return True

    def say(self, failure: str) -> None:
        """The daemon's own log (stderr), once per failure rather than once per line."""
        if failure == self.failure:
            return
        self.failure = failure
        sys.stderr.write(f"<4>lxcsd-console: {failure}\n" if failure else
                         "<5>lxcsd-console: the journal takes console lines again\n")
        sys.stderr.flush()

    def finish(self, timeout: float) -> None:
        """Stopping: send the complete lines still queued, waiting up to ``timeout``
        seconds for journald. Partial lines stay in the rings, for the next daemon."""
        import select

        deadline = time.monotonic() + timeout
        for feed in self.partial:
            feed.since = None  # not due: kept for the next daemon
        self.partial.clear()
        while self.turns:
            now = time.monotonic()
            self.pump(now)
            if not self.turns or now >= deadline:
                return
            if self.blocked:
                poller = select.poll()
                poller.register(self.sock.fileno(), select.POLLOUT)
                if poller.poll(max(1, int((deadline - now) * 1000))):
                    self.blocked = False
            elif self.retry_at > now:
                time.sleep(min(self.retry_at, deadline) - now)
            else:
                return  # pump() stops only for the two reasons above
