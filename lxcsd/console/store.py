"""Names of the console service's descriptors in systemd's file-descriptor store.

Each registration gets a number, unique within the service's life (restarts included: a
restarted daemon continues after the highest number it finds). Its descriptors are stored as

    lxcsd.ID.meta   a memfd holding the register message (name, unit, options)
    lxcsd.ID.pid    a pidfd of the container's init
    lxcsd.ID.ttyN   the pty master of tty N (tty0 is the console)
    lxcsd.ID.ring   a memfd: the ring buffer and the journal's queue, with their counters
                    (ring.py), stored from registration on: a SIGKILL loses no line
    lxcsd.ID.cmd    the listening socket of liblxc's command socket (lxccmd.py)
    lxcsd.ID.lxcwaitN-WHAT  a connection of an LXC tool waiting for a state (WHAT: the
                    bitmask of states) or for the stop to finish (WHAT: "stop"); N tells
                    two apart

Numbers rather than container names because FDNAME= allows neither ':' nor control
characters nor more than 255 bytes, and a container name may hold any of them.
"""

from __future__ import annotations

from lxcsd.systemd import sdnotify

PREFIX = "lxcsd."
META = "meta"
PID = "pid"
RING = "ring"
CMD = "cmd"
WAIT = "lxcwait"


def fd_name(cid: int, kind: str) -> str:
    return f"{PREFIX}{cid}.{kind}"


def tty_kind(index: int) -> str:
    return f"tty{index}"


def parse_fd_name(name: str) -> tuple[int, str] | None:
    """(ID, kind) of a name made by fd_name(), None for any other name."""
    if not name.startswith(PREFIX):
        return None
    number, _, kind = name[len(PREFIX):].partition(".")
    if not number.isdigit() or not _known_kind(kind):
        return None
    return int(number), kind


def _known_kind(kind: str) -> bool:
    if kind in (META, PID, RING, CMD):
        return True
    if kind.startswith(WAIT):
        serial, _, what = kind[len(WAIT):].partition("-")
        return serial.isdigit() and (what.isdigit() or what == "stop")
    return kind[:3] == "tty" and kind[3:].isdigit()


def keep(cid: int, kind: str, fd: int) -> bool:
    """Put a descriptor in systemd's store. FDPOLL=0: systemd must not drop a master when no
    slave is open (during a restart a container may hold none), nor a pidfd when init
    exits, nor a connection that hung up: the daemon decides."""
    return sdnotify.notify(f"FDSTORE=1\nFDNAME={fd_name(cid, kind)}\nFDPOLL=0", [fd])


def drop(cid: int, kind: str) -> None:
    sdnotify.notify(f"FDSTOREREMOVE=1\nFDNAME={fd_name(cid, kind)}")


def group(named_fds: list[tuple[int, str]]) -> tuple[dict[int, dict[str, int]], list[int]]:
    """Stored descriptors by registration ID and kind, and the descriptors that are not ours
    (or are duplicates)."""
    groups: dict[int, dict[str, int]] = {}
    others: list[int] = []
    for fd, name in named_fds:
        parsed = parse_fd_name(name)
        if parsed is None or parsed[1] in groups.get(parsed[0], {}):
            others.append(fd)
            continue
        groups.setdefault(parsed[0], {})[parsed[1]] = fd
    return groups, others
