#!/usr/bin/python3 -I -S
"""Sandbox launcher: boots a real systemd as PID 1 of fresh namespaces, again and again.

Run by tests/infra/sandbox.py as ``/usr/bin/python3 -I -S _launcher.py CONFIG.json`` (standard
library only, so it does not depend on the venv under test). Process tree:

    pytest ─ launcher L ─ boot B ─ init I (systemd, PID 1 of a new pid namespace)

* L unshares a mount namespace of its own and mounts a tmpfs holding the overlay's upper and
  work directories. That namespace lives as long as L does, so the upper layer outlives each
  boot: files written and units enabled before a reboot are there after it.
* For each boot L forks B, which unshares a pid namespace and forks I. I joins the sandbox's
  cgroups (cgroup2 and v1: so the cgroup namespace is rooted there, not at the host's
  roots), unshares mount, cgroup, net, uts and ipc namespaces, builds the root (overlay of
  the host's ``/``, proc, sysfs, cgroup2, /dev, uncovered proc and sysfs in /dev/.lxc,
  /run, /tmp), pivots into it and execs systemd.
* When I dies by SIGHUP (reboot(2) in a pid namespace), L boots again on the same upper
  layer; SIGINT (poweroff/halt) ends L with status 0; anything else ends L with 128+signal or
  the exit status.
* Every process asks for SIGKILL when its parent dies (PR_SET_PDEATHSIG), so killing pytest
  or L takes the whole sandbox down: killing a pid namespace's init kills the namespace.

L copies the console (a pty whose slave is the sandbox's /dev/console) into console.log and
writes ``boot.json`` ({"boot": n, "pid": host pid of I}) each boot.
"""

import ctypes
import errno
import json
import os
import select
import signal
import sys
import time
import traceback
from typing import Any, BinaryIO

Config = dict[str, Any]  # config.json written by sandbox.py

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Device nodes bind-mounted from the host into the sandbox's /dev (when the host has them).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty", "net/tun", "fuse")
# Units masked although the host did not enable them: gettys fail or clutter the console;
# the others would act on the host's kernel (module loading, debugfs/tracefs, audit stream).
EXTRA_MASKS = (
    "console-getty.service", "serial-getty@.service", "container-getty@.service",
    "getty@.service", "autovt@.service", "systemd-pstore.service", "systemd-timesyncd.service",
    "podman.service", "podman.socket", "podman-restart.service", "podman-auto-update.service",
    "podman-auto-update.timer", "systemd-modules-load.service", "modprobe@.service",
    "kmod-static-nodes.service", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "sys-kernel-config.mount", "sys-fs-fuse-connections.mount", "systemd-journald-audit.socket",
)
# Host-enabled units that stay enabled (lxcsd's own), and ones only disabled, not masked
# (container instances of the host must not start, but tests may use the same names).
KEEP_ENABLED = ("lxc-containers.target", "machines.target")
KEEP_PREFIXES = ("lxcsd",)
DISABLE_PREFIXES = ("lxc@", "lxc-group@")


def log(msg: str) -> None:
    sys.stderr.write(f"launcher[{os.getpid()}] {time.strftime('%H:%M:%S')}: {msg}\n")
    sys.stderr.flush()


def check(ret: int, what: str) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else s.encode()
    check(libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)),
          f"mount {src} on {target} ({fstype}, {data})")


def bind(src: str, target: str, readonly: bool = False, rec: bool = True) -> None:
    mount(src, target, None, MS_BIND | (MS_REC if rec else 0))
    if readonly:
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def unshare(flags: int) -> None:
    check(libc.unshare(flags), f"unshare({flags:#x})")


def die_with_parent(expected_ppid: int) -> None:
    """SIGKILL us when our parent dies; if it already has, go now (the race prctl leaves)."""
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if os.getppid() != expected_ppid:
        os._exit(1)


def pivot_root(new_root: str) -> None:
    """pivot_root(".", ".") then detach the old root: no put_old directory is needed."""
    nr = SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(errno.ENOSYS, f"pivot_root: unknown syscall number on {os.uname().machine}")
    os.chdir(new_root)
    check(libc.syscall(nr, b".", b"."), "pivot_root")
    check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")


def write(path: str, text: str, mode: int = 0o644) -> None:
    tmp = f"{path}.lxcsd-tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a"):
        pass


def symlink(target: str, path: str) -> None:
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            return
        os.unlink(path)
    os.symlink(target, path)


# ----------------------------------------------------------------------------------------
# Upper layer, prepared once per sandbox

def ensure_upper_dir(upper: str, rel: str) -> str:
    """Create upper/rel, each component with the owner and mode of the host's (lower) one."""
    cur_upper, cur_lower = upper, "/"
    for part in rel.strip("/").split("/"):
        cur_upper = os.path.join(cur_upper, part)
        cur_lower = os.path.join(cur_lower, part)
        if not os.path.isdir(cur_upper):
            st = os.stat(cur_lower) if os.path.isdir(cur_lower) else None
            os.mkdir(cur_upper, 0o755)
            if st is not None:
                os.chown(cur_upper, st.st_uid, st.st_gid)
                os.chmod(cur_upper, st.st_mode & 0o7777)
    return cur_upper


def hide_lower(upper: str, paths: list[str]) -> None:
    """An opaque upper directory hides the host's contents (e.g. its /var/lib/lxc)."""
    for p in paths:
        d = ensure_upper_dir(upper, p)
        os.setxattr(d, "trusted.overlay.opaque", b"y")


def host_enabled_units(root: str) -> list[tuple[str, str]]:
    """(wants-dir, unit) for every unit the host enabled in /etc/systemd/system."""
    base = os.path.join(root, "etc/systemd/system")
    found = []
    for d in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if d.endswith((".wants", ".requires", ".upholds")) and os.path.isdir(f"{base}/{d}"):
            found += [(d, u) for u in sorted(os.listdir(f"{base}/{d}"))]
    return found


def prepare_root(root: str, cfg: Config) -> None:
    """First boot only, through the merged overlay: identity, no host mounts, masks."""
    etc = os.path.join(root, "etc")
    write(f"{etc}/hostname", cfg["hostname"] + "\n")
    # A machine id of its own: the journal directory and D-Bus must not look like the host's.
    write(f"{etc}/machine-id", os.urandom(16).hex() + "\n", 0o444)
    write(f"{etc}/fstab", "# lxcsd test sandbox: nothing from the host's fstab (swap!)\n")
    units = f"{etc}/systemd/system"
    symlink("/lib/systemd/system/multi-user.target", f"{units}/default.target")
    masked, disabled = [], []
    for wants, unit in host_enabled_units(root):
        if unit in KEEP_ENABLED or unit.startswith(KEEP_PREFIXES):
            continue
        if unit.startswith(DISABLE_PREFIXES):
            os.unlink(f"{units}/{wants}/{unit}")
            disabled.append(unit)
        else:
            masked.append(unit)
    for unit in sorted(set(masked) | set(EXTRA_MASKS) | set(cfg.get("mask", []))):
        symlink("/dev/null", f"{units}/{unit}")
    write(f"{etc}/lxcsd-sandbox", json.dumps({"masked": sorted(set(masked)),
                                                "disabled": disabled}) + "\n")
    log(f"prepared root: masked {len(set(masked))} host-enabled units, disabled {disabled}")


# ----------------------------------------------------------------------------------------
# The root file system of one boot (runs in I, PID 1 of the new pid namespace)

def mount_proc(root: str) -> None:
    # /proc/sys read-only as systemd-nspawn does: sysctl, binfmt_misc and friends would
    # otherwise change the host. /proc/sys/net belongs to the sandbox's own netns: writable.
    proc = f"{root}/proc"
    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    bind(f"{proc}/sys", f"{proc}/sys", readonly=True)
    bind(f"{proc}/sys/net", f"{proc}/sys/net")
    mount(None, f"{proc}/sys/net", None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if os.path.exists(f"{proc}/sysrq-trigger"):
        bind(f"{proc}/sysrq-trigger", f"{proc}/sysrq-trigger", readonly=True, rec=False)


def mount_sys(root: str) -> None:
    # Read-only sysfs (udev stays off: ConditionPathIsReadWrite=/sys), writable cgroup2,
    # mounted after unsharing the cgroup namespace so it is rooted at the sandbox's cgroup.
    # Read-only as a mount, not as a file system: sysfs has one superblock per network
    # namespace, and a read-only superblock would make the uncovered instance in /dev/.lxc
    # read-only too (mount_visible_proc_sys).
    mount("sysfs", f"{root}/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount(None, f"{root}/sys", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
          | MS_NOEXEC)
    mount("cgroup2", f"{root}/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def mount_dev(root: str, console: str) -> None:
    dev = f"{root}/dev"
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=4m")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            touch(f"{dev}/{name}")
            bind(f"/dev/{name}", f"{dev}/{name}", rec=False)
    os.mkdir(f"{dev}/pts")
    mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=620,gid=5")
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    os.mkdir(f"{dev}/shm")
    mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    touch(f"{dev}/console")
    bind(console, f"{dev}/console", rec=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")


def mount_visible_proc_sys(root: str) -> None:
    # A real host's proc and sysfs are fully visible: nothing is mounted over them, which
    # the kernel requires before a user namespace may mount a fresh instance
    # (mount_too_revealing). Ours are not (read-only /proc/sys, masks), to keep sysctl
    # writes away from the host's kernel, so, as LXC's nesting.conf does, an uncovered
    # instance of each sits at /dev/.lxc/{proc,sys}, out of the way (mode 0700): nothing in
    # the sandbox writes there, and unprivileged containers can mount proc and sys.
    base = f"{root}/dev/.lxc"
    os.mkdir(base, 0o700)
    for name, fstype in (("proc", "proc"), ("sys", "sysfs")):
        os.mkdir(f"{base}/{name}", 0o555)
        mount(fstype, f"{base}/{name}", fstype, MS_NOSUID | MS_NODEV | MS_NOEXEC)


def build_root(cfg: Config, console: str) -> str:
    layer = cfg["layer"]
    root = f"{layer}/root"
    mount("overlay", root, "overlay", 0,
          f"lowerdir=/,upperdir={layer}/upper,workdir={layer}/work")
    if not os.path.exists(f"{layer}/prepared"):
        prepare_root(root, cfg)
        touch(f"{layer}/prepared")
    mount_proc(root)
    mount_sys(root)
    mount_dev(root, console)
    mount_visible_proc_sys(root)
    mount("tmpfs", f"{root}/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    mount("tmpfs", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for b in cfg["binds"]:
        # The source tree and the rootfs cache: binds, since lower-layer files the overlay
        # has looked up (even as absent) may be cached, and /tmp is a tmpfs in here.
        if os.path.isdir(b["src"]):
            os.makedirs(root + b["dst"], exist_ok=True)
            bind(b["src"], root + b["dst"], readonly=b["ro"])
    return root


def init_main(cfg: Config, slave: int, errpipe: int) -> None:
    """I: becomes PID 1 of the sandbox. Namespaces on entry: new pid ns (we are its PID 1);
    mount, cgroup, net, uts, ipc still the launcher's."""
    # B is outside our pid namespace, so getppid() says 0 here and cannot tell whether B
    # already died; B waits for us, so it only dies if killed, and then L goes too.
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    # The cgroup namespace created next is rooted at the sandbox's cgroups: its cgroup2
    # one, and its own in each of the host's cgroup v1 hierarchies (as a unit's on a
    # hybrid systemd host: what lxcsd makes there stays below them, never in the host's
    # v1 root, and goes with the sandbox).
    for path in [cfg["cgroup"], *cfg.get("cgroup_v1", [])]:
        with open(f"{path}/cgroup.procs", "w") as f:
            f.write("0")
    unshare(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    name = cfg["hostname"].encode()
    check(libc.sethostname(name, len(name)), "sethostname")
    root = build_root(cfg, os.ttyname(slave))
    pivot_root(root)
    os.setsid()
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.closerange(3, errpipe)
    os.closerange(errpipe + 1, 4096)
    env = {"container": cfg["container"], "PATH": PATH, "TERM": "dumb", "SYSTEMD_COLORS": "0",
           "LANG": "C.UTF-8"}
    argv = [cfg["systemd"], "--system", "--show-status=yes", "--log-color=no"]
    os.execve(argv[0], argv, env)  # errpipe is O_CLOEXEC: EOF tells B that exec worked


# ----------------------------------------------------------------------------------------
# One boot (B) and the boot loop (L)

def boot_main(cfg: Config, boot: int, slave: int, l_pid: int) -> int:
    """B: forks I into a new pid namespace, records its pid, waits, returns its status."""
    die_with_parent(l_pid)
    unshare(CLONE_NEWPID)
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            init_main(cfg, slave, w)
        except BaseException:
            msg = traceback.format_exc()
            os.write(w, msg.encode())  # B logs it
        os._exit(111)
    os.close(w)
    write(f"{cfg['state']}/boot.json", json.dumps({"boot": boot, "pid": pid}) + "\n")
    err = b""
    while chunk := os.read(r, 65536):
        err += chunk
    os.close(r)
    if err:
        log(f"boot {boot}: setting up the root failed:\n{err.decode(errors='replace')}")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def pump(master: int, out: BinaryIO, until_fd: int) -> None:
    """Copy console output to the log until until_fd (a pidfd of B) becomes readable."""
    while True:
        ready, _, _ = select.select([master, until_fd], [], [])
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            out.write(data.replace(b"\r\n", b"\n"))
            out.flush()
        if until_fd in ready:
            drain(master, out)
            return


def drain(master: int, out: BinaryIO) -> None:
    while select.select([master], [], [], 0.05)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        out.write(data.replace(b"\r\n", b"\n"))
    out.flush()


def setup_launcher(cfg: Config) -> None:
    """L's own mount namespace with the tmpfs that carries the upper layer across boots."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    layer = cfg["layer"]
    mount("tmpfs", layer, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=755,size={cfg['tmpfs_size']}")
    for d in ("upper", "work", "root"):
        os.mkdir(f"{layer}/{d}", 0o755)
    hide_lower(f"{layer}/upper", cfg["hide"])


def main() -> int:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    die_with_parent(cfg["parent"])
    setup_launcher(cfg)
    master, slave = os.openpty()
    os.set_blocking(master, False)
    console = open(f"{cfg['state']}/console.log", "ab", buffering=0)
    boot = 0
    while True:
        boot += 1
        console.write(f"\n--- lxcsd sandbox: boot {boot} ---\n".encode())
        l_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = boot_main(cfg, boot, slave, l_pid)
            except BaseException:
                traceback.print_exc()
            os._exit(code)
        pidfd = os.pidfd_open(pid)
        pump(master, console, pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code
        if code == 128 + signal.SIGHUP:
            log(f"boot {boot}: init rebooted")
            continue
        if code == 128 + signal.SIGINT:
            log(f"boot {boot}: init powered off")
            return 0
        log(f"boot {boot}: init ended with status {code}")
        return code


if __name__ == "__main__":
    sys.exit(main())
