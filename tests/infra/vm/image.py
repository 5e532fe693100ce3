"""The nested VM's disk image and kernel, built once and cached.

    python -m tests.infra.vm.image build [--rebuild]   # prebuild (CI), prints timings
    python -m tests.infra.vm.image path                # the cached image's directory, or exit 1
    python -m tests.infra.vm.image prune               # remove images of other inputs

Layout: /var/cache/lxcsd-test/vm/<key>/ holds
    rootfs.img   ext4 file system (sparse), the guest's root on an emulated NVMe disk
    vmlinuz      Debian's cloud kernel, booted directly by QEMU (-kernel, no initramfs: NVMe
                 and ext4 are built in, the virtio drivers are modules loaded from the image)
    config       that kernel's build configuration, for reference
    build.json   what the image was built from, its kernel version, timings

The key hashes everything the image is built from: the suite, the package lists, the cloud
kernel package's version (as the host's apt sees it), this file's source, and the lxcsd
dependency list in pyproject.toml. A build happens in .tmp-<key>-<pid> and is renamed into
place only when complete, so a killed build never leaves a half cache (the next build of the
key sweeps its leftovers).

What the guest contains (see configure_tree()):
* Debian bookworm minbase + systemd as init, dbus, udev, qemu-guest-agent (the only channel
  the tests use: no network in the VM, files come on disks), python3 with python3-seccomp,
  busybox-static, iproute2, procps, kmod, apparmor (apparmor_parser; the kernel enables
  AppArmor by default).
* The cloud kernel's modules in /usr/lib/modules/<version>; virtio_pci and virtio_console are
  modules in that kernel, so modules-load.d loads them at boot (the agent's port needs them).
* /usr/local/lib/lxcsd/venv: a venv of /usr/bin/python3 with --system-site-packages, holding
  lxcsd's dependencies and pytest, so `packaging/install.sh --offline` works in the guest.
  pystemd builds from source: gcc and friends are installed for the build and purged after.
* root has no password (serial console login works), /etc/subuid and /etc/subgid map root to
  100000:65536, a fixed hostname, a fixed machine-id (not "first boot"), a volatile journal,
  no timers, default target multi-user.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE_DIR = Path("/var/cache/lxcsd-test/vm")
DEB_CACHE = CACHE_DIR / "debs"
SUITE = "bookworm"
VARIANT = "minbase"
# apparmor: apparmor_parser and its tunables, for lxc.apparmor.profile = generated (the cloud
# kernel has AppArmor enabled; the host running the tests has none).
PACKAGES = ("systemd", "systemd-sysv", "dbus", "udev", "kmod", "qemu-guest-agent", "python3",
            "python3-venv", "python3-seccomp", "busybox-static", "iproute2", "procps",
            "apparmor")
# Only for building pystemd from source; purged before the image is made.
BUILD_PACKAGES = ("gcc", "pkg-config", "libsystemd-dev", "python3-dev")
KERNEL_META = "linux-image-cloud-amd64"
# Besides lxcsd's own dependencies (read from pyproject.toml): pytest for tests run in the
# guest; wheel because `install.sh --offline` builds lxcsd without build isolation, and the
# venv's setuptools (66, from ensurepip) needs it for bdist_wheel.
EXTRA_PIP = ("pytest", "wheel")
# Every pip install at the versions the host's venv has (packaging/setup.sh uses it too).
CONSTRAINTS = REPO_ROOT / "packaging/constraints.txt"
VENV = "/usr/local/lib/lxcsd/venv"
HOSTNAME = "lxcsd-vm"
ROOT_DEVICE = "/dev/nvme0n1"   # the first (and at boot only) NVMe disk: see vm.py
ROOT_LABEL = "lxcsd-root"
# Free space in the guest's root beyond its contents: room for lxcsd, container root file
# systems and test data. The file is sparse, and the VM writes to a snapshot anyway.
HEADROOM = 1024 << 20
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Modules the guest needs before anything asks for them (udev would load them too, later).
BOOT_MODULES = ("virtio_pci", "virtio_console", "virtio_rng")

Log = Callable[[str], None]


class ImageError(RuntimeError):
    """The image could not be built."""


class Image:
    """A built image directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.rootfs = directory / "rootfs.img"
        self.kernel = directory / "vmlinuz"
        self.meta: dict[str, object] = json.loads((directory / "build.json").read_text())

    @property
    def kernel_version(self) -> str:
        return str(self.meta["kernel_version"])

    def __repr__(self) -> str:
        return f"Image({str(self.dir)!r})"


def _log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------
# what the image is built from

def lxcsd_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    with open(pyproject, "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def _apt_show(package: str) -> dict[str, str]:
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", package],
                       capture_output=True, text=True)
    fields: dict[str, str] = {}
    for line in r.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep and not line.startswith(" "):
            fields.setdefault(key, value)
    return fields


def _apt_update(log: Log) -> None:
    log("apt-get update (the host's package lists do not know the kernel package)")
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)


def kernel_package(log: Log = _log_stderr) -> tuple[str, str]:
    """(package, version) of the versioned image the cloud kernel meta package points to,
    e.g. ("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2")."""
    meta = _apt_show(KERNEL_META)
    if "Depends" not in meta:
        _apt_update(log)
        meta = _apt_show(KERNEL_META)
    if "Depends" not in meta:
        raise ImageError(f"apt does not know {KERNEL_META}: is a bookworm source configured?")
    name = meta["Depends"].split(",")[0].split()[0]
    return name, meta["Version"]


def image_key(kernel: tuple[str, str], deps: Sequence[str]) -> str:
    spec = {"suite": SUITE, "variant": VARIANT, "packages": sorted(PACKAGES),
            "build_packages": sorted(BUILD_PACKAGES), "kernel": list(kernel),
            "deps": list(deps), "extra_pip": list(EXTRA_PIP), "arch": os.uname().machine,
            "constraints": CONSTRAINTS.read_text(),
            "script": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def host_mirror() -> str:
    """The Debian mirror the host's apt uses (so the build fetches where apt works)."""
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


# ----------------------------------------------------------------------------------------
# cache

def cached_image(log: Log = _log_stderr) -> Image | None:
    """The image for the current inputs if it is built, else None."""
    final = CACHE_DIR / image_key(kernel_package(log), lxcsd_dependencies())
    return Image(final) if (final / "build.json").is_file() else None


def image(rebuild: bool = False, log: Log = _log_stderr) -> Image:
    """The cached image, built first if missing (minutes; needs root and the network)."""
    kernel = kernel_package(log)
    deps = lxcsd_dependencies()
    key = image_key(kernel, deps)
    final = CACHE_DIR / key
    if (final / "build.json").is_file() and not rebuild:
        return Image(final)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build of the same key finishes first
        if (final / "build.json").is_file() and not rebuild:
            return Image(final)
        for stale in CACHE_DIR.glob(f".tmp-{key}-*"):  # killed builds (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = CACHE_DIR / f".tmp-{key}-{os.getpid()}"
        try:
            _build(tmp, key, kernel, deps, log)
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Image(final)


# ----------------------------------------------------------------------------------------
# build

class _Timer:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.phases: dict[str, float] = {}
        self.t0 = time.monotonic()

    def run(self, name: str, fn: Callable[[], object]) -> None:
        t = time.monotonic()
        self.log(f"image: {name} ...")
        fn()
        self.phases[name] = round(time.monotonic() - t, 1)
        self.log(f"image: {name}: {self.phases[name]:.1f} s")

    @property
    def total(self) -> float:
        return round(time.monotonic() - self.t0, 1)


def _build(tmp: Path, key: str, kernel: tuple[str, str], deps: Sequence[str],
           log: Log) -> None:
    tmp.mkdir(parents=True)
    tree = tmp / "tree"
    timer = _Timer(log)
    kver: list[str] = []
    timer.run("debootstrap", lambda: _debootstrap(tmp, tree, log))
    timer.run("kernel", lambda: kver.append(_install_kernel(tmp, tree, kernel, log)))
    timer.run("python venv (chroot: build deps, pip, purge)",
              lambda: _chroot_stage(tmp, tree, deps, kver[0]))
    timer.run("configure", lambda: configure_tree(tree))
    timer.run("mkfs.ext4", lambda: _make_ext4(tree, tmp / "rootfs.img"))
    shutil.rmtree(tree)
    img = tmp / "rootfs.img"
    size, allocated = img.stat().st_size, img.stat().st_blocks * 512
    meta = {"key": key, "suite": SUITE, "variant": VARIANT, "packages": list(PACKAGES),
            "kernel_package": kernel[0], "kernel_package_version": kernel[1],
            "kernel_version": kver[0], "lxcsd_deps": list(deps), "extra_pip": list(EXTRA_PIP),
            "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "phases": timer.phases,
            "seconds": timer.total, "image_bytes": size, "image_allocated_bytes": allocated}
    (tmp / "build.json").write_text(json.dumps(meta, indent=1) + "\n")
    log(f"image: built {key} in {timer.total:.1f} s: {size >> 20} MiB, "
        f"{allocated >> 20} MiB allocated")


def _run_logged(cmd: Sequence[str], logfile: Path, what: str, **kw: object) -> None:
    with open(logfile, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                           **kw)  # type: ignore[call-overload]
    if r.returncode != 0:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-40:])
        raise ImageError(f"{what} failed ({r.returncode}), log {logfile}:\n{tail}")


def _debootstrap(tmp: Path, tree: Path, log: Log) -> None:
    tree.mkdir()
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    # A private mount namespace: what debootstrap mounts in the target (proc, sys) goes away
    # with it, also when the build is killed.
    cmd = ["unshare", "--mount", "--propagation", "private", "--",
           "debootstrap", f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}",
           f"--cache-dir={DEB_CACHE}", SUITE, str(tree), host_mirror()]
    log(" ".join(cmd))
    _run_logged(cmd, tmp / "debootstrap.log", "debootstrap",
                env={**os.environ, "LC_ALL": "C.UTF-8"})


def _download_kernel(kernel: tuple[str, str], log: Log) -> Path:
    name, version = kernel
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(DEB_CACHE.glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))
    if found:
        return found[0]
    cmd = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", f"{name}={version}"]
    r = subprocess.run(cmd, cwd=DEB_CACHE, capture_output=True, text=True)
    if r.returncode != 0:
        _apt_update(log)  # stale lists point at files the mirror no longer has
        subprocess.run(cmd, cwd=DEB_CACHE, check=True, capture_output=True, text=True)
    found = sorted(DEB_CACHE.glob(f"{name}_*.deb"))
    if not found:
        raise ImageError(f"apt-get download {name}={version} left no .deb in {DEB_CACHE}")
    return found[-1]


def _install_kernel(tmp: Path, tree: Path, kernel: tuple[str, str], log: Log) -> str:
    """Extract the kernel package: vmlinuz and config next to the image, the modules into
    the tree. Returns the kernel version (uname -r)."""
    deb = _download_kernel(kernel, log)
    extracted = tmp / "kernel"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(extracted)], check=True)
    modules = extracted / "lib/modules"
    versions = sorted(p.name for p in modules.iterdir())
    if len(versions) != 1:
        raise ImageError(f"{deb} holds modules for {versions}, expected one version")
    kver = versions[0]
    shutil.copy2(extracted / f"boot/vmlinuz-{kver}", tmp / "vmlinuz")
    shutil.copy2(extracted / f"boot/config-{kver}", tmp / "config")
    dest = tree / "usr/lib/modules"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.move(modules / kver, dest / kver)  # depmod runs in the chroot (the tree's kmod)
    shutil.rmtree(extracted)
    return kver


# Runs inside the chroot, with the host's network; depmod too (the host may lack kmod).
# Build dependencies come from apt, so they are marked automatic and --autoremove takes
# their own dependencies away again.
CHROOT_SCRIPT = """\
set -eu
export DEBIAN_FRONTEND=noninteractive
depmod -a {kver}
apt-get update -q
apt-get install -y -q --no-install-recommends {build_packages}
/usr/bin/python3 -m venv --system-site-packages {venv}
{venv}/bin/pip install -q --no-cache-dir -c /tmp/lxcsd-constraints.txt \
    -r /tmp/lxcsd-requirements.txt
{venv}/bin/python -c 'import pystemd, dbus_fast, pyroute2, jinja2, pytest, seccomp'
apt-get purge -y -q --autoremove {build_packages}
apt-get clean
rm -rf /var/lib/apt/lists/* /root/.cache
"""

CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "HOME": "/root", "LANG": "C.UTF-8", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
              "PIP_DEFAULT_TIMEOUT": "120"}


def _pip_passthrough(tree: Path) -> dict[str, str]:
    """pip in the chroot trusts what the host trusts: the host's CA bundle (which may hold a
    proxy's CA that pip's own certifi bundle lacks) and the host's index, if it is remote."""
    env: dict[str, str] = {}
    bundle = os.environ.get("PIP_CERT") or HOST_CA_BUNDLE
    if os.path.isfile(bundle):
        shutil.copyfile(bundle, tree / "tmp/lxcsd-host-ca.crt")
        env["PIP_CERT"] = env["SSL_CERT_FILE"] = "/tmp/lxcsd-host-ca.crt"
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "HTTP_PROXY", "HTTPS_PROXY",
                "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        value = os.environ.get(var, "")
        if value and "file:" not in value:  # local paths of the host mean nothing there
            env[var] = value
    return env


def _chroot_stage(tmp: Path, tree: Path, deps: Sequence[str], kver: str) -> None:
    # Package scripts must not start services in the build's chroot.
    policy = tree / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    resolv = tree / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)
    (tree / "tmp/lxcsd-requirements.txt").write_text("\n".join([*deps, *EXTRA_PIP]) + "\n")
    shutil.copyfile(CONSTRAINTS, tree / "tmp/lxcsd-constraints.txt")
    script = CHROOT_SCRIPT.format(build_packages=" ".join(BUILD_PACKAGES), venv=VENV,
                                  kver=kver)
    (tree / "tmp/lxcsd-build.sh").write_text(script)
    env_args = [f"{k}={v}" for k, v in {**CHROOT_ENV, **_pip_passthrough(tree)}.items()]
    # proc, sys and dev for apt, gcc and pip; in a private mount namespace, so they vanish
    # with it whatever happens.
    outer = ('set -e; t="$1"; shift; mount -t proc proc "$t/proc"; '
             'mount -t sysfs sysfs "$t/sys"; mount --rbind /dev "$t/dev"; '
             'exec chroot "$t" "$@"')
    cmd = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", outer,
           "sh", str(tree), "/usr/bin/env", "-i", *env_args, "/bin/sh", "/tmp/lxcsd-build.sh"]
    try:
        _run_logged(cmd, tmp / "chroot.log", "the chroot stage (apt, pip)")
    finally:
        policy.unlink(missing_ok=True)
        for f in ("lxcsd-requirements.txt", "lxcsd-constraints.txt", "lxcsd-build.sh",
                  "lxcsd-host-ca.crt"):
            (tree / "tmp" / f).unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------
# configuration of the tree

def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    path.chmod(mode)


def _mask(root: Path, unit: str) -> None:
    link = root / "etc/systemd/system" / unit
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("/dev/null")


def _unset_root_password(root: Path) -> None:
    shadow = root / "etc/shadow"
    lines = shadow.read_text().splitlines()
    lines = [("root::" + ln.split(":", 2)[2]) if ln.startswith("root:") else ln for ln in lines]
    shadow.write_text("\n".join(lines) + "\n")


def configure_tree(root: Path) -> None:
    """Make the debootstrapped tree a quick, deterministic VM guest (module docstring)."""
    _write(root, "etc/hostname", HOSTNAME + "\n")
    _write(root, "etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {HOSTNAME}\n"
                              "::1 localhost ip6-localhost ip6-loopback\n")
    # Passno 0: the root is mounted rw by the kernel, and the disk is a throw-away snapshot.
    _write(root, "etc/fstab", f"{ROOT_DEVICE} / ext4 rw,errors=remount-ro 0 0\n")
    # A fixed id: an empty one means "first boot" (systemd-firstboot would prompt).
    _write(root, "etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    _write(root, "etc/resolv.conf", "# no network in the lxcsd test VM\n")
    _unset_root_password(root)
    for f in ("etc/subuid", "etc/subgid"):
        _write(root, f, "root:100000:65536\n")
    _write(root, "etc/modules-load.d/lxcsd-vm.conf", "\n".join(BOOT_MODULES) + "\n")
    # The journal in memory: less disk I/O in an emulated guest whose disk is thrown away.
    _write(root, "etc/systemd/journald.conf.d/lxcsd-vm.conf", "[Journal]\nStorage=volatile\n")
    # The agent logs every request at "info" through syslog: thousands of lines a session
    # that would bury everything else in the journal.
    _write(root, "etc/systemd/system/qemu-guest-agent.service.d/lxcsd-vm.conf",
           "[Service]\nLogLevelMax=notice\n")
    _write(root, "etc/lxcsd-test-vm", "lxcsd nested test VM\n")
    _configure_units(root)


def _configure_units(root: Path) -> None:
    units = root / "etc/systemd/system"
    # Timers (apt-daily, dpkg-db-backup, e2scrub_all, fstrim) would run at random moments.
    shutil.rmtree(units / "timers.target.wants", ignore_errors=True)
    # No VTs are used (no display); the serial console keeps its getty (console=ttyS0).
    shutil.rmtree(units / "getty.target.wants", ignore_errors=True)
    for unit in ("getty@.service", "autovt@.service", "systemd-firstboot.service"):
        _mask(root, unit)
    for wanted in ("sysinit.target.wants/systemd-pstore.service",
                   "multi-user.target.wants/e2scrub_reap.service"):
        (units / wanted).unlink(missing_ok=True)
    default = units / "default.target"
    default.unlink(missing_ok=True)
    default.symlink_to("/lib/systemd/system/multi-user.target")
    _enable_guest_agent(root)


def _enable_guest_agent(root: Path) -> None:
    """Debian's qemu-guest-agent.service has no [Install]: udev starts it when the port
    appears (SYSTEMD_WANTS in its rules file). Check that the rule is there, so a packaging
    change shows up here rather than as a VM that never answers."""
    unit = root / "lib/systemd/system/qemu-guest-agent.service"
    if not unit.is_file():
        raise ImageError("qemu-guest-agent.service missing from the tree")
    rules = list((root / "lib/udev/rules.d").glob("*qemu-guest-agent*"))
    text = unit.read_text()
    if not rules and "[Install]" not in text:
        raise ImageError("nothing starts qemu-guest-agent: no udev rule, no [Install]")
    if "[Install]" in text and not rules:
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / "qemu-guest-agent.service"
        if not link.is_symlink():
            link.symlink_to("/lib/systemd/system/qemu-guest-agent.service")


# ----------------------------------------------------------------------------------------
# ext4

def _disk_usage(path: Path) -> int:
    out = subprocess.run(["du", "-s", "-x", "-B1", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return int(out.split()[0])


def _make_ext4(tree: Path, img: Path) -> None:
    used = _disk_usage(tree)
    size = used * 11 // 10 + HEADROOM
    size = (size + (64 << 20) - 1) // (64 << 20) * (64 << 20)
    # -i 8192: twice the default inode count, for container root file systems in the guest.
    # lazy_itable_init=0: initialise the inode tables here, not in the emulated guest.
    make_ext4(tree, img, size, label=ROOT_LABEL, extra=("-i", "8192"))


def make_ext4(tree: Path, img: Path, size: int, *, label: str,
              journal: bool = True, extra: Sequence[str] = ()) -> None:
    """A sparse ext4 image of `size` bytes holding a copy of `tree` (mkfs.ext4 -d)."""
    img.unlink(missing_ok=True)
    with open(img, "wb") as f:
        f.truncate(size)
    features = [] if journal else ["-O", "^has_journal"]
    cmd = ["mkfs.ext4", "-q", "-F", "-b", "4096", "-L", label, *features, *extra,
           "-E", "lazy_itable_init=0,lazy_journal_init=0", "-d", str(tree), str(img)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ImageError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")


def prune(log: Log = _log_stderr) -> list[Path]:
    """Remove cached images other than the current inputs' (another checkout with other
    inputs rebuilds its own). A VM booted from a removed image keeps running: QEMU holds
    the file open."""
    current = CACHE_DIR / image_key(kernel_package(log), lxcsd_dependencies())
    removed = []
    for d in sorted(CACHE_DIR.iterdir()) if CACHE_DIR.is_dir() else []:
        if d.is_dir() and d != current and d != DEB_CACHE and not d.name.startswith("."):
            shutil.rmtree(d)
            removed.append(d)
    return removed


# ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.infra.vm.image",
                                 description="Build the nested test VM's cached image.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the image (or find it cached); prints timings")
    b.add_argument("--rebuild", action="store_true", help="build even if cached")
    sub.add_parser("path", help="print the cached image's directory (exit 1 if not built)")
    sub.add_parser("prune", help="remove cached images other than the current one")
    args = ap.parse_args(argv)
    if args.cmd == "prune":
        for d in prune():
            print(f"removed {d}")
        return 0
    if args.cmd == "path":
        found = cached_image()
        if found is None:
            print("not built: python -m tests.infra.vm.image build", file=sys.stderr)
            return 1
        print(found.dir)
        return 0
    if os.geteuid() != 0:
        print("build needs root (debootstrap, chroot)", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    built = image(rebuild=args.rebuild)
    print(f"{built.dir} (kernel {built.kernel_version}, {time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
