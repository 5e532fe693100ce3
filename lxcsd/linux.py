"""The system calls lxcsd makes through libc: one short wrapper per call, nothing else.

The one module calling libc (ctypes; the other ctypes module, lxcsd.systemd.sdbus, calls
libsystemd). It runs on every container start, so it imports
only ctypes, os, errno and struct (docs/design.md, "Imports"; not even socket, which pulls
in enum and selectors: 5.7 ms against 2.5 ms for ctypes). Every wrapper raises
``OSError(errno, message, path)``; for the errors a user can act on (ENOSYS: kernel too old,
EPERM: missing privilege) the message carries a hint. Calls that ``os`` already offers
(pidfd_open, mknod, setgroups, closerange, ...) are not wrapped here: use ``os``.

The syscall numbers of the new mount API and openat2 (>= 424) are the same on every
architecture Linux unified them on; the few older ones without a glibc wrapper (keyctl) are
looked up per machine.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

# ------------------------------------------------------------------------------------------
# Constants (linux/sched.h, linux/mount.h, linux/openat2.h, linux/prctl.h, linux/reboot.h)

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC

MOVE_MOUNT_F_SYMLINKS = 0x01
MOVE_MOUNT_F_AUTOMOUNTS = 0x02
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_AUTOMOUNTS = 0x20
MOVE_MOUNT_T_EMPTY_PATH = 0x40

FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_SET_FD = 5
FSCONFIG_CMD_CREATE = 6

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

LINUX_REBOOT_CMD_RESTART = 0x01234567
LINUX_REBOOT_CMD_HALT = 0xCDEF0123
LINUX_REBOOT_CMD_POWER_OFF = 0x4321FEDC
LINUX_REBOOT_CMD_CAD_ON = 0x89ABCDEF
LINUX_REBOOT_CMD_CAD_OFF = 0

KEYCTL_JOIN_SESSION_KEYRING = 1

# asm-generic/ioctls.h (x86, arm64, riscv, s390 share these)
TIOCSCTTY = 0x540E
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_AF_INET = 2
_SOCK_DGRAM = 2

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# New system calls share one number on every architecture (asm-generic/unistd.h).
_NR_OPEN_TREE = 428
_NR_MOVE_MOUNT = 429
_NR_FSOPEN = 430
_NR_FSCONFIG = 431
_NR_FSMOUNT = 432
_NR_CLONE3 = 435
_NR_OPENAT2 = 437
_NR_MOUNT_SETATTR = 442
_NR_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "s390x": 280, "ppc64le": 271}

_MIN_KERNEL = {
    "open_tree": "5.2", "move_mount": "5.2", "fsopen": "5.2", "fsconfig": "5.2",
    "fsmount": "5.2", "clone3": "5.7", "openat2": "5.6", "mount_setattr": "5.12",
}


# ------------------------------------------------------------------------------------------
# Errors


def _hint(call: str, err: int) -> str:
    if err == errno.ENOSYS:
        kernel = _MIN_KERNEL.get(call)
        return f"the kernel lacks {call}" + (f" (needs Linux {kernel})" if kernel else "")
    if err == errno.EPERM and call in ("unshare", "setns", "mount", "pivot_root", "fsopen"):
        return "needs CAP_SYS_ADMIN in the owning user namespace"
    if err == errno.EPERM and call == "capset":
        return "a capability can only be kept if the process still has it"
    return ""


def _error(call: str, path: str | None = None) -> OSError:
    err = ctypes.get_errno()
    hint = _hint(call, err)
    message = f"{call}: {os.strerror(err)}" + (f" ({hint})" if hint else "")
    return OSError(err, message, path) if path is not None else OSError(err, message)


def _check(ret: int, call: str, path: str | None = None) -> int:
    if ret < 0:
        raise _error(call, path)
    return ret


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _sys(nr: int, *args: object) -> int:
    """syscall(2) with every integer passed as a C long (ctypes would truncate to int)."""
    conv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return int(_syscall(ctypes.c_long(nr), *conv))


# ------------------------------------------------------------------------------------------
# Kernel interface files


def write_file(path: str, text: str, *, nofollow: bool = False) -> None:
    """One write(2) of text to an existing file of /proc, /sys or securityfs (the kernel
    takes such a write whole; no O_CREAT, no buffering)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | (os.O_NOFOLLOW if nofollow else 0))
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------
# Namespaces


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace behind fd (an nsfs fd or a pidfd; nstype 0 accepts any kind)."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, ctypes.c_size_t(len(data))), "sethostname", name)


def setdomainname(name: str) -> None:
    data = name.encode()
    _check(_libc.setdomainname(data, ctypes.c_size_t(len(data))), "setdomainname", name)


# ------------------------------------------------------------------------------------------
# Mounts


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    ret = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    _check(ret, "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.pivot_root(_b(new_root), _b(put_old)), "pivot_root", new_root)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    return _check(_sys(_NR_OPEN_TREE, dirfd, _b(path), flags), "open_tree", path)


def move_mount(from_dirfd: int, from_path: str, to_dirfd: int, to_path: str,
               flags: int) -> None:
    ret = _sys(_NR_MOVE_MOUNT, from_dirfd, _b(from_path), to_dirfd, _b(to_path), flags)
    _check(ret, "move_mount", to_path or f"fd {to_dirfd}")


def mount_setattr(dirfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0, userns_fd: int = 0) -> None:
    attr = struct.pack("=QQQQ", attr_set, attr_clr, propagation, userns_fd)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = _sys(_NR_MOUNT_SETATTR, dirfd, _b(path), flags, buf, len(attr))
    _check(ret, "mount_setattr", path or f"fd {dirfd}")


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    return _check(_sys(_NR_FSOPEN, _b(fstype), flags), "fsopen", fstype)


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None,
             aux: int = 0) -> None:
    ret = _sys(_NR_FSCONFIG, fd, cmd, _b(key), _b(value), aux)
    if ret < 0:
        text = key if value is None else f"{key}={value}"
        raise _error("fsconfig", text or "create")


def fsmount(fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    return _check(_sys(_NR_FSMOUNT, fd, flags, attr_flags), "fsmount")


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    how = struct.pack("=QQQ", flags, mode, resolve)
    buf = ctypes.create_string_buffer(how, len(how))
    return _check(_sys(_NR_OPENAT2, dirfd, _b(path), buf, len(how)), "openat2", path)


# ------------------------------------------------------------------------------------------
# Process attributes and capabilities


PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def seccomp_filter(program: bytes) -> None:
    """Load a classic BPF seccomp program (struct sock_filter[], 8 bytes an instruction):
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &sock_fprog), as libseccomp's load without
    flags does. Without no_new_privs the kernel requires CAP_SYS_ADMIN."""
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    _check(_libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                       ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           "prctl(PR_SET_SECCOMP)")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    args = [ctypes.c_ulong(a) for a in (arg2, arg3, arg4, arg5)]
    return _check(_libc.prctl(ctypes.c_int(option), *args), "prctl")


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of pid (0: this thread), as 64-bit masks."""
    header = ctypes.create_string_buffer(struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, pid))
    data = ctypes.create_string_buffer(24)
    _check(_libc.capget(header, data), "capget")
    e0, p0, i0, e1, p1, i1 = struct.unpack("=6I", data.raw)
    return e0 | e1 << 32, p0 | p1 << 32, i0 | i1 << 32


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = ctypes.create_string_buffer(struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, 0))
    low, high = 0xFFFFFFFF, 32
    data = ctypes.create_string_buffer(struct.pack(
        "=6I", effective & low, permitted & low, inheritable & low,
        effective >> high, permitted >> high, inheritable >> high))
    _check(_libc.capset(header, data), "capset")


CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17  # the same number on every architecture lxcsd runs on


def fork_into_cgroup(cgroup_fd: int) -> int:
    """fork(2), the child born in the cgroup cgroup_fd refers to (clone3 CLONE_INTO_CGROUP):
    no migration afterwards, which costs ~10 ms (the kernel's cgroup_threadgroup_rwsem waits
    for an RCU grace period). Returns 0 in the child, its pid in the parent.

    Python's own fork bookkeeping runs around the call as os.fork() does it
    (PyOS_BeforeFork, PyOS_AfterFork_Child/_Parent), so the child is a normal Python
    process; only for single-threaded callers, like os.fork() in a process with threads."""
    args = struct.pack("=11Q", CLONE_INTO_CGROUP, 0, 0, 0, _SIGCHLD, 0, 0, 0, 0, 0, cgroup_fd)
    buf = ctypes.create_string_buffer(args, len(args))
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = _sys(_NR_CLONE3, buf, len(args))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        ctypes.set_errno(err)
        raise _error("clone3")
    return pid


def keyctl_join_session_keyring(name: str | None = None) -> int:
    """A new session keyring for this process (so the container does not share the host's)."""
    nr = _NR_KEYCTL.get(os.uname().machine)
    if nr is None:
        raise OSError(errno.ENOSYS, f"keyctl: unknown syscall number on {os.uname().machine}")
    return _check(_sys(nr, KEYCTL_JOIN_SESSION_KEYRING, _b(name)), "keyctl")


PER_LINUX = 0x0000
PER_LINUX32 = 0x0008


def personality(persona: int) -> int:
    """Set the execution domain (PER_LINUX32: uname -m reports the 32-bit machine, as
    linux32(1)); returns the previous one."""
    return _check(_libc.personality(ctypes.c_ulong(persona)), "personality")


def reboot(cmd: int) -> None:
    _check(_libc.reboot(ctypes.c_int(cmd)), "reboot")


# ------------------------------------------------------------------------------------------
# Files

AT_FDCWD = -100
RENAME_NOREPLACE = 1


def rename_noreplace(old: str, new: str) -> None:
    """renameat2(RENAME_NOREPLACE): EEXIST rather than replacing ``new`` (os.rename would
    replace an empty directory, and os.link does not do directories)."""
    ret = _libc.renameat2(ctypes.c_int(AT_FDCWD), _b(old), ctypes.c_int(AT_FDCWD), _b(new),
                          ctypes.c_uint(RENAME_NOREPLACE))
    _check(ret, "renameat2", new)


# ------------------------------------------------------------------------------------------
# ioctls


def ioctl_int(fd: int, request: int, value: int = 0) -> int:
    """An ioctl whose argument is a pointer to an int; returns the int after the call."""
    arg = ctypes.c_int(value)
    _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.byref(arg)), "ioctl")
    return arg.value


def ioctl_arg(fd: int, request: int, value: int = 0) -> int:
    """An ioctl whose argument is an integer value; returns ioctl's result (TIOCGPTPEER: fd)."""
    ret = _libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.c_ulong(value))
    return _check(ret, "ioctl")


# PIDFD_GET_INFO (linux/pidfd.h, Linux 6.15): _IOWR(0xFF, 11, struct pidfd_info), its
# first version of 64 bytes; exit_code (a wait status) at offset 60, valid with
# PIDFD_INFO_EXIT in the returned mask once the process has been reaped, by anyone.
_PIDFD_INFO_SIZE = 64
PIDFD_GET_INFO = (3 << 30) | (_PIDFD_INFO_SIZE << 16) | (0xFF << 8) | 11
PIDFD_INFO_EXIT = 1 << 3


def pidfd_exit_status(pidfd: int) -> int | None:
    """The wait status of the process a pidfd refers to, once it has exited and been
    reaped (by its parent, whoever that is); None while it runs or is a zombie, and on
    kernels before 6.15 (ENOTTY, EINVAL)."""
    buf = ctypes.create_string_buffer(struct.pack("Q", PIDFD_INFO_EXIT), _PIDFD_INFO_SIZE)
    if _libc.ioctl(ctypes.c_int(pidfd), ctypes.c_ulong(PIDFD_GET_INFO), buf) < 0:
        return None
    mask, = struct.unpack_from("Q", buf.raw, 0)
    return struct.unpack_from("i", buf.raw, 60)[0] if mask & PIDFD_INFO_EXIT else None


def interface_up(name: str = "lo") -> None:
    """Set IFF_UP on an interface of the current network namespace (SIOCSIFFLAGS): all an
    "empty" network needs, without netlink."""
    sock = _check(_libc.socket(_AF_INET, _SOCK_DGRAM | os.O_CLOEXEC, 0), "socket")
    try:
        ifreq = ctypes.create_string_buffer(struct.pack("16sh22x", name.encode(), 0), 40)
        _check(_libc.ioctl(sock, ctypes.c_ulong(SIOCGIFFLAGS), ifreq), "ioctl", name)
        flags = struct.unpack_from("h", ifreq.raw, 16)[0] | IFF_UP
        struct.pack_into("h", ifreq, 16, flags)
        _check(_libc.ioctl(sock, ctypes.c_ulong(SIOCSIFFLAGS), ifreq), "ioctl", name)
    finally:
        os.close(sock)
