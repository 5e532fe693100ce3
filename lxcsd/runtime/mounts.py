"""LXC's mount semantics as functions: rootfs, pivot_root, lxc.mount.auto, mount entries,
masked and read-only paths.

Every mount is made with the new mount API: a detached mount (``fsmount`` for a new file
system, ``open_tree(OPEN_TREE_CLONE)`` for a bind), its attributes set with
``mount_setattr`` while detached, then attached with ``move_mount`` onto an fd that
``safepath`` resolved inside the root. Nothing is mounted onto a path string that the kernel
would resolve again, and read-only binds need no remount (which in a user namespace fails
when it would clear a locked flag such as nosuid: mount_setattr changes only what it is told).

These functions run in C2 before pivot_root (mount, pid, user namespaces already entered);
each takes the rootfs as an fd (``root_fd``), never as a path.

Masked and read-only paths (``protected_paths``), decided from LXC, systemd-nspawn and the
OCI runtime-spec defaults (runc/containerd), applied for ``proc:mixed`` and ``sys:mixed``
only (``:rw``/``:ro`` keep LXC's meaning: no extra mounts):

- LXC ``proc:mixed``: /proc/sys read-only except /proc/sys/net (when the container keeps
  CAP_NET_ADMIN), /proc/sysrq-trigger read-only. ``sys:mixed``: /sys read-only except
  /sys/devices/virtual/net.
- Files hidden behind /dev/null (read-only): /proc/kcore, /proc/keys, /proc/timer_list
  (nspawn and OCI), /proc/kallsyms (nspawn), /proc/latency_stats, /proc/timer_stats,
  /proc/sched_debug (OCI; the last two only exist on older kernels).
- Directories hidden behind an empty read-only tmpfs: /proc/acpi, /proc/scsi, /sys/firmware,
  /sys/devices/virtual/powercap (OCI; powercap's energy counters are a side channel,
  CVE-2020-8694).
- Directories made read-only: /proc/asound, /proc/bus, /proc/fs, /proc/irq (nspawn; OCI has
  bus, fs, irq), /proc/apm (nspawn).
- The mount points of the host kernel's global file systems, for every sys mode: debugfs,
  tracefs, configfs and securityfs have one instance per kernel, so a guest that mounts them
  (systemd's sys-kernel-debug.mount and sys-kernel-config.mount do, given CAP_SYS_RAWIO)
  reaches the host's. LXC's AppArmor profile and nspawn's capability set keep them out;
  here an empty read-only tmpfs on /sys/kernel/{debug,tracing,config,security} does it for
  privileged and unprivileged containers alike (systemd then sees the mount points taken
  and leaves them, with no failed unit). A directory that the config itself mounted over
  (an lxc.mount.entry for debugfs, say) is left as the config made it.
Paths that do not exist on the running kernel are skipped.

A caveat shared with LXC and nspawn: mounts made inside the container's user namespace are
not locked, so a container root that keeps CAP_SYS_ADMIN can unmount masks. They protect
against everything without CAP_SYS_ADMIN, and against accidents.
"""

from __future__ import annotations

import os

from lxcsd import linux
from lxcsd.errors import LxcsdError
from lxcsd.runtime import safepath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

AT_FDCWD = -100
_CLONE = linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC
_ATTACH = linux.MOVE_MOUNT_F_EMPTY_PATH | linux.MOVE_MOUNT_T_EMPTY_PATH
SAFE_ATTRS = linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV | linux.MOUNT_ATTR_NOEXEC
RO_SAFE_ATTRS = linux.MOUNT_ATTR_RDONLY | SAFE_ATTRS

MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/kallsyms",
                "/proc/latency_stats", "/proc/timer_stats", "/proc/sched_debug")
MASKED_PROC_DIRS = ("/proc/acpi", "/proc/scsi")
MASKED_SYS_DIRS = ("/sys/firmware", "/sys/devices/virtual/powercap")
KERNEL_FS_DIRS = ("/sys/kernel/debug", "/sys/kernel/tracing", "/sys/kernel/config",
                  "/sys/kernel/security")
READONLY_PROC_DIRS = ("/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/apm")

# MS_* flag -> MOUNT_ATTR_* flag (mount_setattr(2)); atime modes are handled apart.
_ATTR_OF_FLAG = (
    (linux.MS_RDONLY, linux.MOUNT_ATTR_RDONLY), (linux.MS_NOSUID, linux.MOUNT_ATTR_NOSUID),
    (linux.MS_NODEV, linux.MOUNT_ATTR_NODEV), (linux.MS_NOEXEC, linux.MOUNT_ATTR_NOEXEC),
    (linux.MS_NODIRATIME, linux.MOUNT_ATTR_NODIRATIME),
    (linux.MS_NOSYMFOLLOW, linux.MOUNT_ATTR_NOSYMFOLLOW),
)
_ATIME_OF_FLAG = ((linux.MS_NOATIME, linux.MOUNT_ATTR_NOATIME),
                  (linux.MS_STRICTATIME, linux.MOUNT_ATTR_STRICTATIME),
                  (linux.MS_RELATIME, linux.MOUNT_ATTR_RELATIME))
_PROPAGATION = linux.MS_SHARED | linux.MS_SLAVE | linux.MS_PRIVATE | linux.MS_UNBINDABLE


# ------------------------------------------------------------------------------------------
# Pure helpers


def mount_attrs(flags: int, clear_flags: int = 0) -> tuple[int, int]:
    """(attr_set, attr_clr) for mount_setattr from MS_* flags set and cleared by options."""
    attr_set = attr_clr = 0
    for ms, attr in _ATTR_OF_FLAG:
        if flags & ms:
            attr_set |= attr
        elif clear_flags & ms:
            attr_clr |= attr
    for ms, attr in _ATIME_OF_FLAG:
        if flags & ms:  # changing the atime mode means clearing the whole field first
            attr_set, attr_clr = attr_set | attr, attr_clr | linux.MOUNT_ATTR__ATIME
            break
    return attr_set, attr_clr


def fs_options(data: str) -> list[tuple[str, str | None]]:
    """Split a mount data string into fsconfig (key, value) pairs; a bare word is a flag."""
    pairs: list[tuple[str, str | None]] = []
    for word in data.split(","):
        if word:
            key, sep, value = word.partition("=")
            pairs.append((key, value if sep else None))
    return pairs


def overlay_workdir(upper: str) -> str:
    """LXC's overlay workdir: "work" next to the upper directory (storage/overlay.c)."""
    return os.path.join(os.path.dirname(upper.rstrip("/")) or "/", "work")


def overlay_data(lower: Sequence[str], upper: str, workdir: str, data: str = "") -> str:
    text = f"upperdir={upper},lowerdir={':'.join(lower)},workdir={workdir}"
    return f"{text},{data}" if data else text


def container_target(target: str, rootfs_prefixes: Sequence[str]) -> str | None:
    """The container path of an lxc.mount.entry target. Relative targets are relative to the
    root. An absolute one must start with the rootfs's host path (lxc.rootfs.path, or
    LXCPATH/NAME/rootfs) as in liblxc's mount_entry_on_absolute_rootfs; None (liblxc warns
    "Ignoring mount point") when it starts with none of them."""
    if not target.startswith("/"):
        return target
    for prefix in rootfs_prefixes:
        prefix = prefix.rstrip("/")
        if prefix and (target == prefix or target.startswith(prefix + "/")):
            return target[len(prefix):].lstrip("/")
    return None


def source_in_root(source: str, rootfs_prefixes: Sequence[str]) -> str | None:
    """The container path of a bind source written as a host path inside the rootfs
    (lxc.rootfs.path/..., LXCPATH/NAME/rootfs/...), None for any other source. Such a
    source is the container's to shape (``link -> /``), so it is resolved inside the root
    like a target; a source outside the rootfs is the admin's and is used as written."""
    if not source.startswith("/"):
        return None
    return container_target(source, rootfs_prefixes)


def protected_paths(proc: str | None, sys: str | None
                    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(files to mask, directories to mask, directories to make read-only) for the
    lxc.mount.auto proc and sys modes ("mixed", "rw", "ro" or None)."""
    files: tuple[str, ...] = MASKED_FILES if proc == "mixed" else ()
    dirs = (MASKED_PROC_DIRS if proc == "mixed" else ()) + \
        (MASKED_SYS_DIRS if sys == "mixed" else ()) + (KERNEL_FS_DIRS if sys else ())
    readonly = READONLY_PROC_DIRS if proc == "mixed" else ()
    return files, dirs, readonly


# ------------------------------------------------------------------------------------------
# Mount primitives on fds


def new_fs(fstype: str, source: str | None = None, data: str = "", attrs: int = 0) -> int:
    """A detached mount of a new file system instance (fsopen/fsconfig/fsmount)."""
    fs_fd = linux.fsopen(fstype)
    try:
        if source is not None:
            linux.fsconfig(fs_fd, linux.FSCONFIG_SET_STRING, "source", source)
        for key, value in fs_options(data):
            if value is None:
                linux.fsconfig(fs_fd, linux.FSCONFIG_SET_FLAG, key)
            else:
                linux.fsconfig(fs_fd, linux.FSCONFIG_SET_STRING, key, value)
        linux.fsconfig(fs_fd, linux.FSCONFIG_CMD_CREATE)
        return linux.fsmount(fs_fd, linux.FSMOUNT_CLOEXEC, attrs)
    finally:
        os.close(fs_fd)


def clone_tree(dirfd: int, path: str = "", recursive: bool = False) -> int:
    """A detached bind of path (relative to dirfd; "" means dirfd itself)."""
    flags = _CLONE | (linux.AT_RECURSIVE if recursive else 0)
    return linux.open_tree(dirfd, path, flags | (linux.AT_EMPTY_PATH if not path else 0))


def set_attrs(mount_fd: int, attr_set: int = 0, attr_clr: int = 0, propagation: int = 0,
              recursive: bool = False) -> None:
    if attr_set or attr_clr or propagation:
        flags = linux.AT_EMPTY_PATH | (linux.AT_RECURSIVE if recursive else 0)
        linux.mount_setattr(mount_fd, "", flags, attr_set, attr_clr, propagation)


def attach(mount_fd: int, target_fd: int) -> None:
    """Attach a detached mount onto the object target_fd refers to."""
    linux.move_mount(mount_fd, "", target_fd, "", _ATTACH)


def attach_at(root_fd: int, mount_fd: int, target: str, create: str | None = None) -> None:
    """Attach mount_fd onto target resolved inside the root, then close mount_fd."""
    try:
        target_fd = safepath.open_in_root(root_fd, target, create=create)
        try:
            attach(mount_fd, target_fd)
        finally:
            os.close(target_fd)
    finally:
        os.close(mount_fd)


def bind_in_root(root_fd: int, path: str, attr_set: int, recursive: bool = True) -> None:
    """Bind path (inside the root) onto itself with attr_set (read-only remount by bind)."""
    src = safepath.resolve(root_fd, path)
    try:
        tree = clone_tree(src, "", recursive)
    finally:
        os.close(src)
    try:
        set_attrs(tree, attr_set, recursive=recursive)
    except OSError:
        os.close(tree)
        raise
    attach_at(root_fd, tree, path)


# ------------------------------------------------------------------------------------------
# Root file system


def make_rslave() -> None:
    """First step in a new mount namespace: nothing propagates back to the host, and
    pivot_root accepts the tree (it refuses shared parents)."""
    linux.mount(None, "/", None, linux.MS_SLAVE | linux.MS_REC)


def mount_rootfs(kind: str, path: str, mountpoint: str | None = None, *,
                 lower: Sequence[str] = (), upper: str | None = None, flags: int = 0,
                 clear_flags: int = 0, propagation: int = 0, data: str = "",
                 idmapped_fd: int = -1) -> int:
    """Mount lxc.rootfs.path at lxc.rootfs.mount and return an fd of the mounted root.

    kind "dir": a recursive bind of path (LXC's dir_mount), or of idmapped_fd (a detached
    idmapped tree the host made, ``idmapped_tree``). kind "overlay": overlayfs of lower and
    upper with LXC's workdir next to upper. flags/clear_flags/propagation/data come from
    lxc.rootfs.options. mountpoint None mounts path onto itself (a private mount namespace
    makes that invisible to the host)."""
    target = mountpoint or path
    if kind == "dir":
        tree = idmapped_fd if idmapped_fd >= 0 else clone_tree(AT_FDCWD, path, recursive=True)
    elif kind == "overlay":
        tree = _overlay_tree(lower, upper, data)
    else:
        raise LxcsdError(f"rootfs {path}: storage type {kind!r} is not supported",
                         "use a directory or overlay:LOWER:UPPER")
    return _attach_root(tree, target, flags, clear_flags, propagation)


def _overlay_tree(lower: Sequence[str], upper: str | None, data: str) -> int:
    if not lower or not upper:
        raise LxcsdError("overlay rootfs needs lower and upper directories")
    workdir = overlay_workdir(upper)
    os.makedirs(upper, 0o755, exist_ok=True)
    os.makedirs(workdir, 0o755, exist_ok=True)
    return new_fs("overlay", "overlay", overlay_data(lower, upper, workdir, data))


def _attach_root(tree: int, target: str, flags: int, clear_flags: int,
                 propagation: int) -> int:
    try:
        attr_set, attr_clr = mount_attrs(flags, clear_flags)
        set_attrs(tree, attr_set, attr_clr, propagation & _PROPAGATION, recursive=True)
        target_fd = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attach(tree, target_fd)
        finally:
            os.close(target_fd)
    except OSError:
        os.close(tree)
        raise
    return tree  # the fd of an attached mount is its root directory


def idmapped_tree(path: str, userns_fd: int, *, flags: int = 0, clear_flags: int = 0,
                  recursive: bool = True) -> int:
    """A detached idmapped bind of path for the user namespace userns_fd. Runs in the host
    (only the owner of the file system's user namespace may idmap it); the fd is then sent
    to the container (lxc.rootfs.options idmap=container, mount entries idmap=...)."""
    tree = clone_tree(AT_FDCWD, path, recursive)
    try:
        attr_set, attr_clr = mount_attrs(flags, clear_flags)
        flags_ = linux.AT_EMPTY_PATH | (linux.AT_RECURSIVE if recursive else 0)
        linux.mount_setattr(tree, "", flags_, attr_set | linux.MOUNT_ATTR_IDMAP, attr_clr, 0,
                           userns_fd)
    except OSError:
        os.close(tree)
        raise
    return tree


def pivot_root(root_fd: int, *, shared: bool = True) -> None:
    """Make root_fd the root and detach the old one (pivot_root(".", ".") as runc and LXC).

    Afterwards the old root is stacked on the new one; a recursive slave then MNT_DETACH
    unmounts it without propagating the unmounts to the host. LXC then makes the new root a
    shared peer group of its own, which systemd's services inside rely on."""
    os.fchdir(root_fd)
    linux.pivot_root(".", ".")
    linux.mount(None, ".", None, linux.MS_SLAVE | linux.MS_REC)
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")
    if shared:
        linux.mount(None, "/", None, linux.MS_SHARED | linux.MS_REC)


# ------------------------------------------------------------------------------------------
# lxc.mount.auto


def mount_proc(root_fd: int, mode: str = "mixed", *, net_rw: bool = True) -> None:
    """proc:rw or proc:mixed (conf.c default_mounts): procfs nosuid,nodev,noexec; with mixed
    /proc/sys read-only except /proc/sys/net (net_rw: the container keeps CAP_NET_ADMIN)
    and /proc/sysrq-trigger read-only."""
    _check_mode("proc", mode, ("rw", "mixed"))
    attach_at(root_fd, new_fs("proc", "proc", attrs=SAFE_ATTRS), "proc", create="dir")
    if mode == "mixed":
        _proc_sys_readonly(root_fd, net_rw)
        _if_exists(bind_in_root, root_fd, "proc/sysrq-trigger", RO_SAFE_ATTRS, False)


def _proc_sys_readonly(root_fd: int, net_rw: bool) -> None:
    net = _clone_in_root(root_fd, "proc/sys/net") if net_rw and \
        _exists(root_fd, "proc/sys/net") else None
    try:
        bind_in_root(root_fd, "proc/sys", RO_SAFE_ATTRS, recursive=False)
    except OSError:
        if net is not None:
            os.close(net)
        raise
    if net is not None:
        attach_at(root_fd, net, "proc/sys/net")


def _clone_in_root(root_fd: int, path: str, recursive: bool = False) -> int:
    src = safepath.resolve(root_fd, path)
    try:
        return clone_tree(src, "", recursive)
    finally:
        os.close(src)


def mount_sys(root_fd: int, mode: str = "mixed") -> None:
    """sys:rw (sysfs), sys:ro (sysfs read-only) or sys:mixed (read-only, nosuid, nodev,
    noexec, with /sys/devices/virtual/net writable from a second sysfs instance)."""
    _check_mode("sys", mode, ("rw", "ro", "mixed"))
    if mode != "mixed":
        attrs = linux.MOUNT_ATTR_RDONLY if mode == "ro" else 0
        attach_at(root_fd, new_fs("sysfs", "sysfs", attrs=attrs), "sys", create="dir")
        return
    # As liblxc: a writable sysfs attached on sys/devices/virtual/net, then its own
    # devices/virtual/net bound over it. (Cloning the subdirectory straight from the
    # detached sysfs is refused with EINVAL before Linux 6.x: Debian 12's 6.1 does.)
    attach_at(root_fd, new_fs("sysfs", "sysfs", attrs=RO_SAFE_ATTRS), "sys", create="dir")
    attach_at(root_fd, new_fs("sysfs", "sysfs", attrs=SAFE_ATTRS), "sys/devices/virtual/net")
    inner = safepath.resolve(root_fd, "sys/devices/virtual/net/devices/virtual/net")
    try:
        net = clone_tree(inner)
    finally:
        os.close(inner)
    attach_at(root_fd, net, "sys/devices/virtual/net")


def mount_cgroup(root_fd: int, mode: str = "mixed") -> None:
    """cgroup[2]:ro|rw|mixed on a cgroup2 host: the cgroup2 file system on /sys/fs/cgroup.

    In a cgroup namespace it shows the namespace's root (the payload cgroup), so "mixed"
    equals "rw" (LXC cgfsng_mount's comment); "ro" mounts it read-only. LXC always mounts it
    on a pure cgroup2 layout, which is the only one lxcsd supports, so ":force" changes
    nothing. Call after /sys is mounted, and only in the container's own cgroup namespace
    (without one liblxc refuses: the mount would show the host's whole tree)."""
    _check_mode("cgroup", mode, ("rw", "ro", "mixed"))
    attrs = SAFE_ATTRS | (linux.MOUNT_ATTR_RDONLY if mode == "ro" else 0)
    attach_at(root_fd, new_fs("cgroup2", "cgroup2", attrs=attrs), "sys/fs/cgroup")


def _check_mode(what: str, mode: str, allowed: tuple[str, ...]) -> None:
    if mode not in allowed:
        raise LxcsdError(f"lxc.mount.auto: {what}:{mode} is not supported",
                         "use " + " or ".join(f"{what}:{m}" for m in allowed))


def _if_exists(func: Callable[..., None], *args: object) -> bool:
    """Call func(*args); False when the path it works on does not exist (kernel-dependent
    /proc entries)."""
    try:
        func(*args)
    except FileNotFoundError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# Masks


def mask_paths(root_fd: int, files: Iterable[str], dirs: Iterable[str], null_fd: int
               ) -> list[str]:
    """Hide files behind a read-only bind of /dev/null (null_fd, opened O_PATH from the host
    before pivot_root) and directories behind an empty read-only tmpfs. Returns the paths
    masked; missing ones are skipped."""
    done = [path for path in files if _if_exists(_mask_file, root_fd, path, null_fd)]
    return done + [path for path in dirs if _if_exists(_mask_dir, root_fd, path)]


def _mask_file(root_fd: int, path: str, null_fd: int) -> None:
    os.close(safepath.resolve(root_fd, path))  # first, so a missing path costs no clone
    tree = clone_tree(null_fd)
    try:
        set_attrs(tree, RO_SAFE_ATTRS)
    except OSError:
        os.close(tree)
        raise
    attach_at(root_fd, tree, path)


def _mask_dir(root_fd: int, path: str) -> None:
    if is_mount_root(root_fd, path):
        return  # the config mounted something here on purpose (lxc.mount.entry)
    attach_at(root_fd, new_fs("tmpfs", "tmpfs", "mode=0555", RO_SAFE_ATTRS), path)


def is_mount_root(root_fd: int, path: str) -> bool:
    """Whether path (inside the root) is where another file system is mounted: its device
    differs from its parent's. Raises FileNotFoundError when path is missing."""
    fd = safepath.resolve(root_fd, path)
    try:
        parent = safepath.resolve(root_fd, os.path.dirname(path.rstrip("/")) or "/")
        try:
            return os.fstat(fd).st_dev != os.fstat(parent).st_dev
        finally:
            os.close(parent)
    finally:
        os.close(fd)


def make_readonly(root_fd: int, paths: Iterable[str]) -> list[str]:
    """Bind each existing path onto itself read-only (recursively); returns those done."""
    return [path for path in paths if _if_exists(bind_in_root, root_fd, path, RO_SAFE_ATTRS, True)]


def _exists(root_fd: int, path: str) -> bool:
    try:
        os.close(safepath.resolve(root_fd, path))
    except FileNotFoundError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# lxc.mount.entry


def mount_entry(root_fd: int, source: str, target: str, fstype: str, *, flags: int = 0,
                clear_flags: int = 0, propagation: int = 0, data: str = "",
                bind: bool = False, recursive: bool = False, create: str | None = None,
                optional: bool = False, relative: bool = False, source_fd: int = -1
                ) -> bool:
    """One lxc.mount.entry, its options as lxcsd.config's MountOptions fields. target is
    inside the root; source is a host path (inside the root with relative). A bind is
    read-only etc. through mount_setattr, so "ro" needs no remount. source_fd: a detached
    tree made by the host (idmap=), consumed. Returns False when an optional entry
    failed."""
    try:
        tree = source_fd if source_fd >= 0 else \
            _entry_tree(root_fd, source, fstype, flags, data, bind, recursive, relative)
        try:
            attr_set, attr_clr = mount_attrs(flags, clear_flags)
            if bind or source_fd >= 0:
                set_attrs(tree, attr_set, attr_clr, recursive=recursive)
            target_fd = safepath.open_in_root(root_fd, target, create=create)
            try:
                attach(tree, target_fd)
            finally:
                os.close(target_fd)
            set_attrs(tree, propagation=propagation & _PROPAGATION,
                      recursive=bool(propagation & linux.MS_REC))
        finally:
            os.close(tree)
    except OSError as exc:
        if optional:
            return False
        raise OSError(exc.errno, f"mount {source} on {target}: {exc.strerror}",
                      exc.filename) from None
    return True


def _entry_tree(root_fd: int, source: str, fstype: str, flags: int, data: str, bind: bool,
                recursive: bool, relative: bool) -> int:
    dirfd = AT_FDCWD
    if relative:
        dirfd = safepath.resolve(root_fd, source)
    try:
        if flags & linux.MS_MOVE:  # "move": the existing mount itself, not a copy
            return linux.open_tree(dirfd, "" if relative else source,
                                  linux.OPEN_TREE_CLOEXEC | (linux.AT_EMPTY_PATH if relative
                                                           else 0))
        if bind:
            return clone_tree(dirfd, "" if relative else source, recursive)
        attrs, _ = mount_attrs(flags)  # fsmount takes the atime mode as a value, too
        return new_fs(fstype, source, data, attrs)
    finally:
        if relative:
            os.close(dirfd)
