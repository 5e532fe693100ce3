"""The hand-over of a container's pty masters to lxcsd-console.service.

``lxcsd-helper start`` calls :func:`register` right after the container's init exec'd and
before it sends MAINPID= and exits (docs/design.md, "Process design", step 4). One message
with the descriptors (SCM_RIGHTS) on the service's socket, one acknowledgement back.

A console is not worth a container: when the service cannot be reached, register() says why
through ``warn`` and returns False, and the helper starts the container anyway.

Hot path: standard library only (os, _socket, struct), no json; not the socket module, which
imports enum (~9 ms of the helper's start together, measured with -X importtime), nor array
(it imports collections.abc, ~4 ms).
"""

from __future__ import annotations

import _socket
import os
import struct
import sys

from lxcsd.console import protocol
from lxcsd.console.options import ConsoleOptions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ACK_TIMEOUT = 5.0


def _stderr_warning(message: str) -> None:
    sys.stderr.write(f"lxcsd: warning: {message}\n")


def register(
    name: str,
    unit: str,
    console_master: int | None,
    tty_masters: Sequence[int],
    options: ConsoleOptions | None = None,
    *,
    pid: int | None = None,
    lxc: LxcPublish | None = None,
    cgroup_v1: tuple[str, list[str]] | None = None,
    socket_path: str | None = None,
    timeout: float = ACK_TIMEOUT,
    warn: Callable[[str], None] = _stderr_warning,
) -> bool:
    """Hand the console (tty 0) and ttys 1..N of container `name` (unit `unit`, e.g.
    "lxc@web.service") to the console service; True once the service acknowledged.

    `pid` is the container's init as this process sees it: the service then holds the
    console until init exits (through a pidfd) rather than until its pty hangs up, which a
    container's own processes can cause by closing all their terminals. `lxc` hands over the
    container's liblxc command socket, for the service to answer LXC's tools (lxccmd.py).
    ``cgroup_v1`` (the leaf's relative path, the ``CONTROLLERS:OWN`` entries of
    lxcsd.runtime.cgroup_v1.Leaf.entry, without white space): the service removes the
    container's cgroup v1 leaves once init has exited (no ExecStopPost= process for them).
    The caller keeps its copies of the descriptors and closes them afterwards. False (after
    calling `warn` with the reason) when the service is unreachable, does not answer within
    `timeout` seconds, or refuses the registration.
    """
    ptys = console_master is not None or bool(tty_masters)
    what = "console" if ptys else "command socket"
    try:
        fields, fds, pidfd = _message(name, unit, console_master, tty_masters, options, pid,
                                      lxc, cgroup_v1)
    except (OSError, ValueError) as e:
        text = f"init (pid {pid}): {e.strerror}" if isinstance(e, OSError) else str(e)
        warn(f"{what} of {name} not handed to lxcsd-console: {text}")
        return False
    path = socket_path or protocol.socket_path()
    try:
        _send(path, protocol.encode("register", fields), fds, timeout)
    except (OSError, ValueError) as e:
        lost = ["console logging or `lxcsd console`"] if ptys else []
        if lxc is not None:
            lost.append("LXC's tools (lxc-ls, lxc-start...) seeing it running")
        if cgroup_v1 is not None:
            lost.append("its cgroup v1 leaves removed when it stops (its next start "
                        "uses them again)")
        warn(f"{what} of {name} not handed to lxcsd-console: {_reason(e, path)}; the "
             f"container runs without {' and '.join(lost)}")
        return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    return True


class LxcPublish:
    """A container's liblxc command socket (bound by lxcsd.liblxc.owner.claim) and what the
    service answers about it: its lxcpath, init's cgroup and the payload cgroup (host
    paths, liblxc's "container" and "limit" cgroups)."""

    __slots__ = ("fd", "lxcpath", "cgroup", "limit_cgroup", "items")

    def __init__(self, fd: int, lxcpath: str, cgroup: str, limit_cgroup: str,
                 items: dict[str, str] | None = None) -> None:
        self.fd = fd
        self.lxcpath = lxcpath
        self.cgroup = cgroup
        self.limit_cgroup = limit_cgroup
        self.items = items or {}  # "item.KEY" fields: lxcsd.liblxc.items.preset


def _message(name: str, unit: str, console_master: int | None, tty_masters: Sequence[int],
             options: ConsoleOptions | None, pid: int | None,
             lxc: LxcPublish | None, cgroup_v1: tuple[str, list[str]] | None = None
             ) -> tuple[dict[str, str], list[int], int]:
    protocol.check_name(name)
    extra = 2 if lxc is None else 3  # pidfd, console, the command socket
    if len(tty_masters) + extra > protocol.MAX_FDS:
        raise ValueError(f"{len(tty_masters)} ttys: at most {protocol.MAX_FDS - extra} can be "
                         "handed over")
    pidfd = os.pidfd_open(pid) if pid else -1
    kinds = ["pid"] if pidfd >= 0 else []
    fds = [pidfd] if pidfd >= 0 else []
    if console_master is not None:
        kinds.append("0")
        fds.append(console_master)
    kinds += [str(i) for i in range(1, len(tty_masters) + 1)]
    fds += list(tty_masters)
    fields = {"name": name, "unit": unit}
    if lxc is not None:
        kinds.append("cmd")
        fds.append(lxc.fd)
        fields.update(lxcpath=lxc.lxcpath, cgroup=lxc.cgroup, limit_cgroup=lxc.limit_cgroup)
        fields.update(lxc.items)
    if cgroup_v1 is not None and pidfd >= 0:  # removed when init exits: needs its pidfd
        rel, entries = cgroup_v1
        if any(char.isspace() for text in [rel, *entries] for char in text):
            raise ValueError(f"cgroup v1 paths with white space: {rel!r} {entries!r}")
        fields.update(cgroup_v1_leaf=rel, cgroup_v1=" ".join(entries))
    fields["fds"] = ",".join(kinds)
    fields.update((options or ConsoleOptions()).fields())
    return fields, fds, pidfd


def tell_stopping(name: str, *, socket_path: str | None = None, timeout: float = 1.0) -> bool:
    """Tell the service that container ``name`` is being stopped, so that LXC's tools see
    STOPPING (lxccmd.py); True once acknowledged. Never raises: it only informs."""
    try:
        _send(socket_path or protocol.socket_path(),
              protocol.encode("state", {"name": name, "state": "STOPPING"}), [], timeout)
    except (OSError, ValueError):
        return False
    return True


def _send(path: str, message: bytes, fds: list[int], timeout: float) -> None:
    # protocol.connect's, on _socket (see the module docstring)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        rights = struct.pack(f"{len(fds)}i", *fds)
        sock.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)] if fds
                     else [])
        protocol.check_reply(sock.recv(protocol.MAX_MESSAGE))
    finally:
        sock.close()


def _reason(e: BaseException, path: str) -> str:
    if isinstance(e, (FileNotFoundError, ConnectionRefusedError)):
        return f"nothing listens on {path} (is lxcsd-console.socket active?)"
    if isinstance(e, TimeoutError):
        return f"no answer on {path} in time (lxcsd-console.service did not start?)"
    if isinstance(e, protocol.ProtocolError):
        return f"refused: {e}"
    if isinstance(e, OSError):
        return f"{path}: {e.strerror or e}"
    return str(e)
