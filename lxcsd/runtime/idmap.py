"""User namespace id maps: validate, check against /etc/subuid and /etc/subgid, write.

A map is a sequence of ``(ns_id, host_id, count)`` ranges (lxc.idmap ``u|g NS HOST COUNT``).
Validation follows the kernel's rules for /proc/PID/uid_map (user_namespaces(7)): at most
340 lines, no range empty, none overlapping another on either side, ids below 2^32 - 1.

Delegation follows newuidmap(1)/newgidmap(1) (shadow's have_range): every host id of a
range must be in a range /etc/subuid (subgid) gives the invoking user, by name or by
uid; adjacent entries may together cover it. A one-id range of the caller's own id is
allowed only when ``allow_own_id`` (LXC's privileged case, e.g. ``u 0 0 1`` for root).
"""

from __future__ import annotations

import os

from lxcsd import linux
from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    IdRange = tuple[int, int, int]

MAX_LINES = 340
ID_LIMIT = 2**32 - 1  # (uid_t)-1 is "no id" and never mappable
SUBID_FILES = {"u": "/etc/subuid", "g": "/etc/subgid"}
_WORDS = {"u": "uids", "g": "gids"}
CAP_SETGID = 6


def split_maps(idmaps: Iterable[tuple[str, int, int, int]]
               ) -> tuple[list[IdRange], list[IdRange]]:
    """(uid ranges, gid ranges) from lxc.idmap tuples (kind, ns_id, host_id, count)."""
    uids: list[IdRange] = []
    gids: list[IdRange] = []
    for kind, ns_id, host_id, count in idmaps:
        (uids if kind == "u" else gids).append((ns_id, host_id, count))
    return uids, gids


def map_text(ranges: Sequence[IdRange]) -> str:
    """The content of uid_map/gid_map for ranges."""
    return "".join(f"{ns} {host} {count}\n" for ns, host, count in ranges)


def _describe(kind: str, rng: IdRange) -> str:
    return f"lxc.idmap = {kind} {rng[0]} {rng[1]} {rng[2]}"


def validate(ranges: Sequence[IdRange], kind: str) -> None:
    """Raise LxcsdError if the kernel would refuse the map."""
    if len(ranges) > MAX_LINES:
        raise LxcsdError(f"{len(ranges)} {_WORDS[kind]} ranges, the kernel takes at most "
                         f"{MAX_LINES}")
    for rng in ranges:
        ns, host, count = rng
        if count <= 0 or min(ns, host) < 0 or max(ns, host) + count > ID_LIMIT:
            raise LxcsdError(f"{_describe(kind, rng)}: ids must be 0..{ID_LIMIT - 1} and "
                             "the count at least 1")
    for side, name in ((0, "container"), (1, "host")):
        pair = _overlap(ranges, side)
        if pair:
            raise LxcsdError(f"{_describe(kind, pair[0])} and {_describe(kind, pair[1])} "
                             f"overlap on the {name} side")


def _overlap(ranges: Sequence[IdRange], side: int) -> tuple[IdRange, IdRange] | None:
    ordered = sorted(ranges, key=lambda rng: rng[side])
    for first, second in zip(ordered, ordered[1:], strict=False):
        if first[side] + first[2] > second[side]:
            return first, second
    return None


def parse_subids(text: str, user: str, uid: int) -> list[tuple[int, int]]:
    """(start, count) ranges an /etc/subuid-format text gives user (by name or uid)."""
    owners = (user, str(uid))
    found = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in owners:
            continue  # shadow skips malformed lines too
        if fields[1].isdigit() and fields[2].isdigit():
            found.append((int(fields[1]), int(fields[2])))
    return found


def read_subids(kind: str, user: str, uid: int, path: str | None = None
                ) -> list[tuple[int, int]]:
    path = path or SUBID_FILES[kind]
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_subids(f.read(), user, uid)
    except FileNotFoundError:
        return []


def covered(start: int, count: int, allowed: Sequence[tuple[int, int]]) -> bool:
    """Whether start..start+count-1 lies in the union of allowed (start, count) ranges."""
    end = start + count
    for lo, n in sorted(allowed):
        if lo <= start < lo + n:
            start = lo + n
            if start >= end:
                return True
    return False


def check_delegated(ranges: Sequence[IdRange], kind: str, *, user: str, uid: int,
                    own_id: int, path: str | None = None, allow_own_id: bool = False
                    ) -> None:
    """Raise LxcsdError naming the range and the file unless every host range is delegated
    to user; own_id is the caller's uid (or gid for kind "g")."""
    path = path or SUBID_FILES[kind]
    allowed = read_subids(kind, user, uid, path)
    for rng in ranges:
        _, host, count = rng
        if allow_own_id and count == 1 and host == own_id:
            continue
        if not covered(host, count, allowed):
            raise _not_delegated(kind, rng, user, path, allowed)


def _not_delegated(kind: str, rng: IdRange, user: str, path: str,
                   allowed: Sequence[tuple[int, int]]) -> LxcsdError:
    _, host, count = rng
    has = ", ".join(f"{lo}-{lo + n - 1}" for lo, n in allowed) or "nothing"
    return LxcsdError(
        f"{_describe(kind, rng)}: host {_WORDS[kind]} {host}-{host + count - 1} are not "
        f"delegated to {user} in {path} (it has {has})",
        f"add '{user}:{host}:{count}' to {path} or change lxc.idmap")


def user_name(uid: int) -> str:
    """The user name of uid from /etc/passwd (pwd would do the same, at an import)."""
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split(":")
                if len(fields) > 2 and fields[2] == str(uid):
                    return fields[0]
    except OSError:
        pass
    return str(uid)


def must_deny_setgroups() -> bool:
    """Whether gid_map can only be written after setgroups is denied: a writer without
    CAP_SETGID (user_namespaces(7))."""
    effective, _, _ = linux.capget()
    return not effective & (1 << CAP_SETGID)


def write_maps(pid: int, uids: Sequence[IdRange], gids: Sequence[IdRange], *,
               deny_setgroups: bool = False) -> None:
    """Write /proc/PID/{setgroups,uid_map,gid_map} (each in one write, as the kernel
    requires)."""
    base = f"/proc/{pid}"
    if deny_setgroups:
        _write(f"{base}/setgroups", "deny")
    if uids:
        _write(f"{base}/uid_map", map_text(uids))
    if gids:
        _write(f"{base}/gid_map", map_text(gids))


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {text.strip()!r}: {exc.strerror}",
                      path) from None
    finally:
        os.close(fd)


def host_id(ranges: Sequence[IdRange], ns_id: int) -> int | None:
    """The host id ns_id maps to (the container root's owner: host_id(uids, 0))."""
    for ns, host, count in ranges:
        if ns <= ns_id < ns + count:
            return host + ns_id - ns
    return None
