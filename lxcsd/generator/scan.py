"""Find the containers the generator makes units for, and the lxcpaths not mounted yet.

Containers are found as :func:`lxcsd.config.load.discover` finds them (``LXCPATH/NAME/config``,
first lxcpath wins for a name, hidden names skipped), but here every refusal is reported:
a name that cannot be a unit instance, a name shadowed by an earlier lxcpath.

Generators run before local file systems are mounted (systemd.generator(7)), so at boot
an lxcpath on a separate /var (or its own mount) is not there yet. An lxcpath is *late* when
it does not exist, or when it or one of its parents is a mount point configured in
/etc/fstab or by a ``.mount`` unit and not mounted now. A late lxcpath is not scanned (its
directory is only the empty mount point, or stale files under it); nor is an empty
lxcpath, which may be a mount point nothing describes (a ZFS dataset, say). The planner
wires ``lxcsd-autostart.service`` for them instead, with ``ConditionDirectoryNotEmpty=``
so that nothing runs at boot when the lxcpath is still empty then.
"""

from __future__ import annotations

import os
from stat import S_ISREG

from lxcsd.config.names import escape, validate_name
from lxcsd.errors import ConfigError
from lxcsd.runtime.planfile import stamp_of

# Characters escape() keeps: a name made of them (and not starting with ".") is its own
# unit instance. Checked here with a set, much cheaper than validate_name() per name.
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")
_PLAIN_MAX = 200  # lxc@ + 200 + .service is far below systemd's 255
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/usr/lib/systemd/system", "/lib/systemd/system")


class Found:
    """One container: ``name``, unit ``instance``, ``config`` path, ``lxcpath``, and the
    config's stat stamp when it was found (lxcsd.runtime.planfile.stamp; () unknown)."""

    __slots__ = ("name", "instance", "config", "lxcpath", "stamp")

    def __init__(self, name: str, instance: str, config: str, lxcpath: str,
                 stamp: tuple[int, ...] = ()) -> None:
        self.name = name
        self.instance = instance
        self.config = config
        self.lxcpath = lxcpath
        self.stamp = stamp

    def __repr__(self) -> str:
        return f"Found({self.name!r}, {self.config!r})"


def instance_of(name: str) -> str:
    """The unit instance of a container name; ConfigError for names that cannot be one."""
    if len(name) <= _PLAIN_MAX and name[:1] != "." and _PLAIN.issuperset(name):
        return name
    return escape(validate_name(name))


def _config_stamp(path: str) -> tuple[int, ...] | None:
    """The stamp of a regular file (lxcsd.runtime.planfile.stamp: the facts cache checks
    the config by it), None when there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not S_ISREG(st.st_mode):
        return None
    return stamp_of(st)


def list_lxcpath(lxcpath: str, problems: list[str]) -> list[str] | None:
    """The entries of an lxcpath, sorted; None (and a problem) when it cannot be listed."""
    try:
        return sorted(os.listdir(lxcpath))
    except OSError as exc:
        problems.append(f"{lxcpath}: cannot list containers: {exc.strerror}")
        return None


def scan_lxcpath(lxcpath: str, names: list[str], seen: dict[str, str],
                 problems: list[str]) -> list[Found]:
    """Containers among the entries ``names`` of ``lxcpath`` not already in ``seen``
    (name → config path; updated)."""
    found = []
    for name in names:
        if name[0] == ".":
            continue
        config = f"{lxcpath}/{name}/config" if lxcpath != "/" else f"/{name}/config"
        stamp = _config_stamp(config)
        if stamp is None:
            continue
        if name in seen:
            problems.append(f"{config}: ignored: container {name!r} is already defined by "
                            f"{seen[name]} (the first lxcpath wins)")
            continue
        try:
            instance = instance_of(name)
        except ConfigError as exc:
            problems.append(f"{config}: refused: {exc}")
            continue
        seen[name] = config
        found.append(Found(name, instance, config, lxcpath, stamp))
    return found


# --- lxcpaths mounted late ------------------------------------------------------------------


def _unoctal(field: str) -> str:
    """Undo the \\040-style escapes of /proc/self/mountinfo and fstab(5)."""
    if "\\" not in field:
        return field
    out, pos = [], 0
    while pos < len(field):
        chunk = field[pos + 1: pos + 4]
        if field[pos] == "\\" and len(chunk) == 3 and chunk.isdigit():
            out.append(chr(int(chunk, 8)))
            pos += 4
        else:
            out.append(field[pos])
            pos += 1
    return "".join(out)


def mounted_points(mountinfo: str = "/proc/self/mountinfo") -> set[str]:
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as handle:
            return {_unoctal(line.split(" ", 5)[4]) for line in handle if line.count(" ") > 4}
    except OSError:
        return set()


def fstab_points(fstab: str = "/etc/fstab") -> set[str]:
    points = set()
    try:
        with open(fstab, encoding="utf-8", errors="surrogateescape") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 2 and fields[0][0] != "#" and fields[1].startswith("/"):
                    points.add(os.path.normpath(_unoctal(fields[1])))
    except OSError:
        pass
    return points


def path_unit_name(path: str) -> str:
    """systemd-escape --path: /var/lib/lxc → var-lib-lxc (the name of its .mount unit)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "-"
    out = []
    for pos, char in enumerate("/".join(parts)):
        if char == "/":
            out.append("-")
        elif (char.isascii() and (char.isalnum() or char in ":_.")) and not (pos == 0 and
                                                                             char == "."):
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogateescape"))
    return "".join(out)


def _has_mount_unit(path: str, unit_dirs: tuple[str, ...]) -> bool:
    base = path_unit_name(path)
    return any(os.path.exists(f"{d}/{base}.{kind}") for d in unit_dirs
               for kind in ("mount", "automount"))


class MountState:
    """What is mounted now and what is configured to be (read once per run)."""

    def __init__(self, *, mounted: set[str] | None = None, fstab: set[str] | None = None,
                 unit_dirs: tuple[str, ...] = UNIT_DIRS) -> None:
        self.mounted = mounted_points() if mounted is None else mounted
        self.fstab = fstab_points() if fstab is None else fstab
        self.unit_dirs = unit_dirs

    def pending_mount(self, path: str) -> str | None:
        """The configured, unmounted mount point holding ``path`` (itself or a parent)."""
        candidate = os.path.normpath(path)
        while candidate != "/":
            configured = candidate in self.fstab or _has_mount_unit(candidate, self.unit_dirs)
            if configured and candidate not in self.mounted:
                return candidate
            candidate = os.path.dirname(candidate)
        return None


def late_reason(lxcpath: str, mounts: MountState) -> str | None:
    """Why ``lxcpath`` cannot be scanned now, or None when it can."""
    if not os.path.isdir(lxcpath):
        return "does not exist (yet)"
    point = mounts.pending_mount(lxcpath)
    if point is not None:
        return f"is on {point}, which is not mounted yet"
    return None
