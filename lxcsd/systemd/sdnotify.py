"""sd_notify(3) (READY=1, MAINPID=, STATUS=, FDSTORE=, BARRIER=1) and sd_listen_fds(3).

Written by hand rather than through pystemd because (measured, docs/design.md):
- importing any pystemd module costs ~25 ms (its package __init__ imports all of it), which is
  more than the whole container start we aim for;
- pystemd.daemon.notify cannot pass file descriptors, and the console service must
  (FDSTORE=1), while the helper needs BARRIER=1, which also passes one.
A notification is a single datagram on a unix socket. The journal's native protocol, the
other datagram lxcsd sends by hand, is :mod:`.journal`.

On _socket, the C module under socket: socket.py also imports enum, selectors, collections
and array, about 1 MB of memory (measured) in lxcsd-console, the one lxcsd process that
lives as long as the host, while these datagrams need nothing of it.
"""

from __future__ import annotations

import _socket
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

def _socket_address(value: str) -> str:
    # '@' names an abstract socket; the kernel wants a leading NUL instead.
    return "\0" + value[1:] if value.startswith("@") else value


def notify(state: str, fds: Sequence[int] = (), *, socket_path: str | None = None) -> bool:
    """Send one sd_notify datagram; returns False when there is no NOTIFY_SOCKET."""
    path = socket_path or os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        if fds:
            # Not socket.send_fds(): Python 3.11's ignores its address argument (ENOTCONN).
            rights = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
            sock.sendmsg([state.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)],
                          0, _socket_address(path))
        else:
            sock.sendto(state.encode(), _socket_address(path))
    finally:
        sock.close()
    return True


def notify_barrier(*, socket_path: str | None = None, timeout: float = 5.0) -> bool:
    """Block until the service manager has processed every notification sent before.

    Needed before the helper exits after MAINPID=: otherwise systemd may see the helper's
    exit before the hand-over and count it as the main process dying (sd_notify_barrier(3)).
    """
    import select

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        sent = notify("BARRIER=1", [write_end], socket_path=socket_path)
        os.close(write_end)
        write_end = -1
        if sent:
            ready, _, _ = select.select([read_end], [], [], timeout)
            sent = bool(ready)
        return sent
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


SD_LISTEN_FDS_START = 3


def listen_fds(unset_environment: bool = True) -> list[tuple[int, str]]:
    """The descriptors systemd passed (sd_listen_fds_with_names(3)), as (fd, name) pairs.

    Empty unless LISTEN_PID names this process. Sockets of the socket unit come first,
    then the file-descriptor store; a descriptor without a name is "unknown". Each is made
    close-on-exec, and the variables are removed so that children do not see them.
    """
    env = os.environ
    try:
        if int(env.get("LISTEN_PID", "0")) != os.getpid():
            return []
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    names = env.get("LISTEN_FDNAMES", "").split(":") if env.get("LISTEN_FDNAMES") else []
    names = (names + ["unknown"] * count)[:count]
    if unset_environment:
        for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            env.pop(key, None)
    fds = range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)
    for fd in fds:
        os.set_inheritable(fd, False)
    return list(zip(fds, names, strict=True))
