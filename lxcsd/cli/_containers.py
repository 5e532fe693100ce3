"""Shared steps of ``lxcsd create``, ``copy`` and ``destroy``: where a new container goes,
whether one runs, id shifting for unprivileged roots, fresh MAC addresses, safe removal,
and building a container under a hidden temporary name that is renamed into place only
when complete (``temporary_path``, ``publish``), so that nothing ever sees half of one.

Temporary names start with "." (``.lxcsd-create-...``, ``.lxcsd-copy-...``,
``.lxcsd-destroy-...``): LXC (list_defined_containers) and lxcsd (discover) skip hidden
directories, so a build or a removal in progress is never listed as a container.
"""

from __future__ import annotations

import os

from lxcsd.config.load import lxcpaths
from lxcsd.config.names import validate_name
from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import random
    from collections.abc import Iterator

    from lxcsd.liblxc.owner import Holder
    from lxcsd.systemd.manager import Systemd

ID_RANGE = 65536
# LXC's lxc.net.N.hwaddr default template (Xen's OUI, as lxc-create writes it).
MAC_PREFIX = (0x00, 0x16, 0x3E)


def container_dir(name: str, lxcpath: str | None) -> str:
    """LXCPATH/NAME for a new or existing container (the first lxcpath by default)."""
    validate_name(name)
    if lxcpath is None:
        paths = lxcpaths()
        if not paths:
            raise LxcsdError("no lxcpath", "pass -P DIR")
        lxcpath = paths[0]
    return os.path.join(os.path.abspath(lxcpath), name)


def refuse_existing(directory: str) -> None:
    if os.path.lexists(directory):
        raise LxcsdError(f"{directory} already exists",
                         "pick another name, or lxcsd destroy the old container first")


def require_root(command: str) -> None:
    if os.geteuid() != 0:
        raise LxcsdError(f"{command}: must be run as root",
                         "containers and their root file systems belong to root")


def temporary_path(lxcpath: str, what: str) -> str:
    """A hidden, unused path in lxcpath (same file system as the container: a rename
    publishes it), not created."""
    import secrets

    return os.path.join(lxcpath, f".lxcsd-{what}-{os.getpid()}-{secrets.token_hex(4)}")


def publish(built: str, directory: str) -> None:
    """Rename a complete container into place; one that appeared meanwhile (an lxc-create
    of the same name) is never replaced."""
    from lxcsd import linux

    try:
        linux.rename_noreplace(built, directory)
    except FileExistsError:
        raise LxcsdError(f"{directory} already exists (made while this command ran)",
                         "pick another name") from None


def discard(built: str) -> bool:
    """Remove what a failed or interrupted command built; never raises (the original
    error is what the user needs), says what is left instead. Whether it is gone."""
    import sys

    try:
        if os.path.lexists(built):
            remove_tree(built)
        return True
    except (OSError, LxcsdError) as exc:
        print(f"lxcsd: could not remove {built}: {exc}", file=sys.stderr)
        return False


def remove_container_dir(directory: str) -> None:
    """remove_tree, but first renamed out of sight (a hidden name): other commands see the
    container or nothing, never half of it; a failure names what is left."""
    if os.path.islink(directory):
        os.unlink(directory)
        return
    refuse_mounts(directory)
    doomed = temporary_path(os.path.dirname(directory), "destroy")
    os.rename(directory, doomed)
    try:
        remove_tree(doomed)
    except OSError as exc:
        raise LxcsdError(f"removing {directory} (renamed to {doomed}) failed: "
                         f"{exc.strerror}: {exc.filename}", f"remove {doomed} by hand") from None


IN_USE = ("active", "activating", "deactivating", "reloading")


def known(name: str, lxcpath: str | None = None, systemd: Systemd | None = None) -> str | None:
    """The config path of container ``name``; None when it has no config any more but its
    unit still runs or is enabled (removed by hand while it ran). A ConfigError ("no
    container NAME in LXCPATH") when it is neither: every command says so at once."""
    from lxcsd.config.load import find_container
    from lxcsd.errors import ConfigError

    try:
        return find_container(name, lxcpath)
    except ConfigError:
        if systemd is None or not unit_in_use(systemd, name):
            raise
        return None


def unit_in_use(systemd: Systemd, name: str) -> bool:
    from lxcsd.config.names import unit_name

    unit = unit_name(name)
    try:
        state = systemd.unit_properties(unit, service=False).get("ActiveState")
    except LxcsdError:
        return False
    return state in IN_USE or systemd.unit_file_state(unit) == "enabled"


def is_running(name: str) -> bool:
    """Whether the container's unit is active (D-Bus), else whether it has a state file."""
    try:
        from lxcsd.config.names import unit_name
        from lxcsd.systemd.manager import Systemd

        with Systemd() as systemd:
            active = systemd.unit_properties(unit_name(name)).get("ActiveState")
        return active in IN_USE
    except LxcsdError:
        from lxcsd.runtime import state

        return state.read(name) is not None


def lxc_holder(name: str, config: str) -> Holder | None:
    """Who runs the container when LXC's own lxc-start does (not lxcsd), else None: asked
    on its liblxc command socket (lxcsd.liblxc.owner)."""
    from lxcsd.liblxc import owner

    return owner.running_under_lxc(owner.lxcpath_of(config), name)


def refuse_if_lxc_runs(name: str, config: str) -> None:
    """lxcsd neither starts, copies nor destroys a container lxc-start runs."""
    holder = lxc_holder(name, config)
    if holder is not None:
        raise LxcsdError(f"{name} is running under {holder.describe()}; stop it with "
                         "lxc-stop first")


def subid_base(kind: str) -> int:
    """The first host id of root's /etc/subuid (kind "u") or /etc/subgid ("g") range of at
    least 65536 ids, as lxc-create -t ... --unprivileged needs."""
    from lxcsd.runtime import idmap

    for start, count in idmap.read_subids(kind, "root", 0):
        if count >= ID_RANGE:
            return start
    name = "/etc/subuid" if kind == "u" else "/etc/subgid"
    raise LxcsdError(f"root has no range of {ID_RANGE} ids in {name}",
                     f"add a line such as root:100000:65536 to {name}")


def walk_nofollow(top: str) -> Iterator[str]:
    """top and every path below it, never following symlinks or crossing mounts."""
    yield top
    device = os.lstat(top).st_dev
    for directory, dirs, files in os.walk(top):
        for name in files + dirs:
            path = os.path.join(directory, name)
            yield path
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(directory, d)).st_dev == device
                   and not os.path.islink(os.path.join(directory, d))]


def shift_ids(top: str, uid_base: int, gid_base: int) -> None:
    """Add the bases to every file owner under top (ids beyond the range stay as they
    are: they would not be mapped anyway)."""
    for path in walk_nofollow(top):
        st = os.lstat(path)
        uid = st.st_uid + uid_base if st.st_uid < ID_RANGE else st.st_uid
        gid = st.st_gid + gid_base if st.st_gid < ID_RANGE else st.st_gid
        os.lchown(path, uid, gid)
        if not os.path.islink(path) and st.st_mode & 0o6000:
            os.chmod(path, st.st_mode & 0o7777)  # chown cleared setuid/setgid bits


def random_hwaddr(rng: random.Random | None = None) -> str:
    if rng is None:
        import random

        rng = random.SystemRandom()
    tail = [rng.randrange(256) for _ in range(3)]
    return ":".join(f"{byte:02x}" for byte in (*MAC_PREFIX, *tail))


def mounts_under(directory: str, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points at or below directory (removing it would delete their contents)."""
    prefix = os.path.realpath(directory).rstrip("/") + "/"
    found = []
    with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point + "/" == prefix or point.startswith(prefix):
                found.append(point)
    return found


def remove_tree(directory: str) -> None:
    """Remove a container directory: a symlink is unlinked (its target is not ours), a
    directory is removed without following symlinks (shutil.rmtree works on fds and never
    descends into a link), refused while something is mounted below it."""
    if os.path.islink(directory):
        os.unlink(directory)
        return
    refuse_mounts(directory)
    import shutil  # here: every lxcsd command imports this module

    shutil.rmtree(directory)


def refuse_mounts(directory: str) -> None:
    busy = mounts_under(directory)
    if busy:
        raise LxcsdError(f"refusing to remove {directory}: mounted below it: "
                         f"{', '.join(busy)}", "unmount them first")
