"""Root file systems for test containers.

* busybox_rootfs(dest): a minimal tree around Debian's static busybox; milliseconds, not cached.
* debian_rootfs(): Debian bookworm with systemd as init, built once by debootstrap and cached
  under /var/cache/lxcsd-test/rootfs/<key>/rootfs, the key hashing what it is built from.
* debian_service_rootfs(): the same plus a real network service from the Debian archive
  (SERVICE_PACKAGES: nginx-light, enabled by its package as on any Debian host); another
  key of the same cache.
  A booting container writes to its root: give it a copy (debian_rootfs_copy).

    python -m tests.infra.rootfs build-debian     # prebuild the cache (CI)
    python -m tests.infra.rootfs busybox DEST

How the Debian tree is prepared for container use (prepare_debian):
* /etc/machine-id empty: systemd makes a fresh id at each boot, never two containers alike.
* root has an empty password (passwordless console login for tests); this is a test image.
* No /etc/hostname: the container's lxc.uts.name stays its host name.
* Gettys: getty@/autovt@ (tty1..6) and serial-getty@ masked: a container has no VTs or
  serial lines. The console getty is kept: systemd's getty generator starts console-getty on
  /dev/console in a container, which works on the pty lxcsd (like LXC) gives it, so a console
  login prompt appears in the container's console log. A container without /dev/console
  skips it (ConditionPathExists=/dev/console).
* systemd-firstboot masked (an empty machine-id means "first boot", and it would prompt on
  the console); timers (apt-daily, dpkg-db-backup, ...), systemd-pstore and e2scrub_reap
  disabled; default target multi-user: a quick, deterministic boot.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

CACHE_DIR = Path("/var/cache/lxcsd-test")
ROOTFS_CACHE = CACHE_DIR / "rootfs"
DEB_CACHE = CACHE_DIR / "debs"
BUSYBOX = "/bin/busybox"
SUITE = "bookworm"
VARIANT = "minbase"
INCLUDE = ("systemd", "systemd-sysv", "dbus", "iproute2", "procps")
# A guest that runs a service users would check after `systemctl start lxc@NAME`.
SERVICE_PACKAGES = ("nginx-light",)
# Bump when prepare_debian() changes: it is part of the cache key.
PREPARE_VERSION = 1
DEFAULT_MIRROR = "http://deb.debian.org/debian"

SYSINIT_LINE = "lxcsd-test: busybox sysinit"
HALT_LINE = "busybox: halting"

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


# ----------------------------------------------------------------------------------------
# busybox

@functools.lru_cache(maxsize=1)
def busybox_applets() -> tuple[str, ...]:
    """Install paths of busybox's applets, e.g. "sbin/init", "usr/bin/awk"."""
    out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True)
    return tuple(line.strip() for line in out.stdout.splitlines() if line.strip())


INITTAB = f"""\
# lxcsd test rootfs: busybox init
::sysinit:/etc/init.d/rcS
# A shell on the console only when the console is a terminal (see /etc/init.d/console).
::respawn:/etc/init.d/console
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/echo "{HALT_LINE}"
"""

RCS = f"""\
#!/bin/sh
echo "{SYSINIT_LINE} on $(hostname)"
"""

CONSOLE = """\
#!/bin/sh
# Respawned by init: an interactive shell if the console is a terminal, else nothing to do.
if [ -t 0 ]; then
    exec /bin/sh -l
fi
exec /bin/sleep infinity
"""


def busybox_rootfs(dest: str | Path, hostname: str = "busybox") -> Path:
    """A minimal root file system at dest (created; must not exist or be empty): busybox and
    its applet links, /sbin/init = busybox init whose sysinit prints SYSINIT_LINE and whose
    shutdown prints HALT_LINE on the console, passwd/group/hostname, empty mount points."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "dev", "proc", "sys", "run",
              "root", "var/log", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in busybox_applets():
        link = root / applet
        if applet != "bin/busybox" and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    files = {
        "etc/inittab": (INITTAB, 0o644),
        "etc/init.d/rcS": (RCS, 0o755),
        "etc/init.d/console": (CONSOLE, 0o755),
        "etc/passwd": ("root:x:0:0:root:/root:/bin/sh\n"
                       "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644),
        "etc/group": ("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n", 0o644),
        "etc/hostname": (hostname + "\n", 0o644),
        "etc/hosts": (f"127.0.0.1 localhost\n127.0.1.1 {hostname}\n", 0o644),
    }
    for rel, (text, mode) in files.items():
        (root / rel).write_text(text)
        (root / rel).chmod(mode)
    return root


# ----------------------------------------------------------------------------------------
# Debian

def host_mirror() -> str:
    """The Debian mirror the host's apt uses (so the cache builds where apt works)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "deb" and fields[2] == SUITE:
                return fields[1]
    return DEFAULT_MIRROR


def debian_key(suite: str, variant: str, include: Sequence[str], mirror: str) -> str:
    spec = {"suite": suite, "variant": variant, "include": sorted(include), "mirror": mirror,
            "arch": os.uname().machine, "prepare": PREPARE_VERSION}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def debian_rootfs(suite: str = SUITE, include: Sequence[str] = INCLUDE,
                  variant: str = VARIANT, mirror: str | None = None,
                  rebuild: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Path of the cached Debian root (built first if missing). Do not boot it in place."""
    mirror = mirror or host_mirror()
    key = debian_key(suite, variant, include, mirror)
    final = ROOTFS_CACHE / key
    if final.is_dir() and not rebuild:
        return final / "rootfs"
    ROOTFS_CACHE.mkdir(parents=True, exist_ok=True)
    with open(ROOTFS_CACHE / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent builder of the same key finishes first
        if final.is_dir() and not rebuild:
            return final / "rootfs"
        _remove_partial(key)
        tmp = ROOTFS_CACHE / f".tmp-{key}-{os.getpid()}"
        t0 = time.monotonic()
        _debootstrap(tmp, suite, variant, include, mirror, log)
        prepare_debian(tmp / "rootfs")
        meta = {"suite": suite, "variant": variant, "include": list(include), "mirror": mirror,
                "key": key, "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.monotonic() - t0, 1)}
        (tmp / "build.json").write_text(json.dumps(meta, indent=1) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)  # complete or absent: a killed build leaves only .tmp-*
    return final / "rootfs"


def debian_service_rootfs(rebuild: bool = False,
                          log: Callable[[str], None] | None = None) -> Path:
    """Path of the cached Debian root with SERVICE_PACKAGES (built first if missing)."""
    return debian_rootfs(include=INCLUDE + SERVICE_PACKAGES, rebuild=rebuild, log=log)


def _remove_partial(key: str) -> None:
    """Builds of this key that were killed (we hold the key's lock, so none is running)."""
    for stale in ROOTFS_CACHE.glob(f".tmp-{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _debootstrap(tmp: Path, suite: str, variant: str, include: Sequence[str], mirror: str,
                 log: Callable[[str], None] | None) -> None:
    (tmp / "rootfs").mkdir(parents=True)
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    # A private mount namespace: whatever debootstrap mounts in the target (proc, sys) goes
    # away with it, also when the build is killed.
    cmd = ["unshare", "--mount", "--propagation", "private", "--",
           "debootstrap", f"--variant={variant}", f"--include={','.join(include)}",
           f"--cache-dir={DEB_CACHE}", suite, str(tmp / "rootfs"), mirror]
    if log:
        log(" ".join(cmd))
    logfile = tmp / "debootstrap.log"
    with open(logfile, "w") as out:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                           env={**os.environ, "LC_ALL": "C.UTF-8"})
    if r.returncode != 0:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"debootstrap failed ({r.returncode}), log {logfile}:\n{tail}")


def _mask(root: Path, unit: str) -> None:
    link = root / "etc/systemd/system" / unit
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("/dev/null")


def prepare_debian(root: Path) -> None:
    """Make a debootstrapped tree fit to boot as a container (see the module docstring)."""
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() and not dbus_id.is_symlink():
        dbus_id.unlink()
        dbus_id.symlink_to("/etc/machine-id")
    shadow = root / "etc/shadow"
    lines = shadow.read_text().splitlines()
    lines = [("root::" + ln.split(":", 2)[2]) if ln.startswith("root:") else ln for ln in lines]
    shadow.write_text("\n".join(lines) + "\n")
    (root / "etc/hostname").unlink(missing_ok=True)
    units = root / "etc/systemd/system"
    for wants in ("getty.target.wants", "timers.target.wants"):
        shutil.rmtree(units / wants, ignore_errors=True)
    for unit in ("getty@.service", "autovt@.service", "serial-getty@.service",
                 # An empty machine-id means "first boot": firstboot would prompt on the console.
                 "systemd-firstboot.service"):
        _mask(root, unit)
    for wanted in ("sysinit.target.wants/systemd-pstore.service",
                   "multi-user.target.wants/e2scrub_reap.service"):
        (units / wanted).unlink(missing_ok=True)
    default = units / "default.target"
    default.unlink(missing_ok=True)
    default.symlink_to("/lib/systemd/system/multi-user.target")
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    (root / "etc/lxcsd-test-rootfs").write_text("debian, prepared for lxcsd tests\n")


def debian_rootfs_copy(dest: str | Path, src: str | Path | None = None,
                       run: Runner | None = None) -> Path:
    """Copy the cached Debian root to dest (cp -a --reflink=auto). With run=sandbox.run the
    copy is made inside a sandbox (which sees the cache at the same path). Overlay-mounting
    the cache instead does not work there: the sandbox's root is itself an overlay, which
    cannot be an upper layer."""
    src = Path(src) if src else debian_rootfs()
    cmds = [["mkdir", "-p", str(dest)], ["cp", "-a", "--reflink=auto", f"{src}/.", str(dest)]]
    for cmd in cmds:
        if run is None:
            subprocess.run(cmd, check=True)
        else:
            run(cmd, timeout=600)
    return Path(dest)


# ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.infra.rootfs",
                                 description="Build test root file systems.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-debian", help="build (or find) the cached Debian rootfs")
    b.add_argument("--rebuild", action="store_true", help="build even if cached")
    b.add_argument("--mirror", help=f"Debian mirror (default: the host's, else {DEFAULT_MIRROR})")
    b.add_argument("--service", action="store_true",
                   help=f"the root with {', '.join(SERVICE_PACKAGES)} too")
    bb = sub.add_parser("busybox", help="write a busybox rootfs to DEST")
    bb.add_argument("dest")
    args = ap.parse_args(argv)
    if args.cmd == "busybox":
        print(busybox_rootfs(args.dest))
        return 0
    if os.geteuid() != 0:
        print("build-debian needs root (debootstrap)", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    include = INCLUDE + (SERVICE_PACKAGES if args.service else ())
    path = debian_rootfs(include=include, mirror=args.mirror, rebuild=args.rebuild,
                         log=lambda m: print(m, file=sys.stderr))
    print(f"{path} ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
