"""The debian template: Debian (bookworm by default) with systemd as init, made by
debootstrap (minbase + systemd, systemd-sysv, dbus, iproute2, procps), prepared for a
container the way LXC's download images are: empty machine-id, no VT gettys, the console
getty kept, hostname from the config; with a DHCP interface (a veth without a static
address), systemd-networkd enabled with a .network file rendered from
templates/files/debian.

As LXC's debian template, the debootstrap result is cached (/var/cache/lxcsd/debian/
SUITE-ARCH/rootfs, with the package list it was made with) and copied for each container;
``--flush-cache`` makes it again. debootstrap's stages are shown as it runs, with the
elapsed time; an interrupt kills it (its own process group) and removes the partial cache.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, TextIO

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "iproute2", "procps")
MASK = ("getty@.service", "autovt@.service", "serial-getty@.service",
        "systemd-firstboot.service")
CACHE_DIR = "/var/cache/lxcsd/debian"
CACHE_ENV = "LXCSD_DEBIAN_CACHE"  # another cache directory (tests)
STAMP = "lxcsd-cache"
MODES: dict[str, int] = {}
# debootstrap's "I: <Stage> ..." lines, as the stages a user follows.
STAGES = {"Retrieving": "downloading packages", "Validating": "validating packages",
          "Extracting": "extracting packages", "Installing": "installing the core",
          "Unpacking": "unpacking packages", "Configuring": "configuring packages",
          "Base": "base system installed"}


def host_mirror() -> str:
    """The mirror the host's apt uses (where debootstrap will reach), else deb.debian.org."""
    try:
        with open("/etc/apt/sources.list.d/debian.sources", encoding="utf-8") as f:
            for line in f:
                if line.startswith("URIs:") and "security" not in line:
                    return line.split()[1]
    except OSError:
        pass
    return MIRROR


def architecture() -> str:
    try:
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine,
                                                          os.uname().machine)


def cache_tree(suite: str) -> str:
    base = os.environ.get(CACHE_ENV) or CACHE_DIR
    return os.path.join(base, f"{suite}-{architecture()}", "rootfs")


def _stamp(suite: str) -> str:
    return f"suite={suite}\npackages={','.join(PACKAGES)}\n"


def cached(suite: str) -> str | None:
    """The cached tree for suite, when one was made with today's package list."""
    tree = cache_tree(suite)
    try:
        with open(os.path.join(os.path.dirname(tree), STAMP), encoding="utf-8") as f:
            return tree if f.read() == _stamp(suite) and os.path.isdir(tree) else None
    except OSError:
        return None


def build(rootfs: str, name: str, suite: str = SUITE, mirror: str | None = None, *,
          flush_cache: bool = False, out: TextIO | None = None) -> None:
    """rootfs from the cache (made first by debootstrap when missing), then prepared."""
    out = out or sys.stderr
    tree = None if flush_cache else cached(suite)
    if tree is None:
        tree = make_cache(suite, mirror or host_mirror(), out)
    started = time.monotonic()
    _say(out, f"copying the cached {suite} tree from {tree}")
    result = subprocess.run(["cp", "-a", "--reflink=auto", f"{tree}/.", rootfs],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LxcsdError(f"cannot copy {tree}: {result.stderr.strip()}")
    _say(out, f"copied in {time.monotonic() - started:.0f} s")
    prepare(rootfs, name)


def make_cache(suite: str, mirror: str, out: TextIO) -> str:
    """debootstrap into a partial directory, renamed into the cache when complete."""
    tree = cache_tree(suite)
    base = os.path.dirname(tree)
    partial = os.path.join(os.path.dirname(base), f".partial-{os.path.basename(base)}")
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial, 0o755)
    try:
        debootstrap(os.path.join(partial, "rootfs"), suite, mirror, out)
        with open(os.path.join(partial, STAMP), "w", encoding="utf-8") as f:
            f.write(_stamp(suite))
        shutil.rmtree(base, ignore_errors=True)
        os.rename(partial, base)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return tree


def debootstrap(target: str, suite: str, mirror: str, out: TextIO) -> None:
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite,
           target, mirror]
    # A private mount namespace: what debootstrap mounts in the target goes away with it.
    # Its own session: an interrupt reaches lxcsd, which ends it and cleans up.
    cmd = ["unshare", "--mount", "--propagation", "private", "--", *cmd]
    _say(out, f"debootstrap {suite} from {mirror} (minutes; Ctrl-C stops and cleans up)")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace",
                                start_new_session=True)
    except FileNotFoundError:
        raise LxcsdError("debootstrap is not installed", "apt-get install debootstrap") \
            from None
    try:
        lines = follow(proc.stdout or (), out)
        status = proc.wait()
    except BaseException:
        stop_group(proc)
        raise
    if status != 0:
        tail = "\n".join(lines[-15:])
        raise LxcsdError(f"debootstrap failed (status {status}):\n{tail}")


def follow(lines: Iterable[str], out: TextIO) -> list[str]:
    """Show debootstrap's progress: one line per stage with the elapsed time and, on a
    terminal, a running count of its packages; returns its output."""
    progress = Progress(out)
    seen = []
    for line in lines:
        seen.append(line.rstrip("\n"))
        progress.line(seen[-1])
    progress.done()
    return seen


class Progress:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.start = time.monotonic()
        self.stage = ""
        self.count = 0

    def line(self, text: str) -> None:
        if not text.startswith("I: "):
            return
        word = text[3:].split(" ", 1)[0]
        stage = STAGES.get(word)
        if stage is None:
            return
        if stage != self.stage:
            if self.tty and self.stage:
                self.out.write("\n")
            self.stage, self.count = stage, 0
            if not self.tty:
                _say(self.out, f"[{self.elapsed()}] {stage}")
        self.count += 1
        if self.tty:
            self.out.write(f"\rlxcsd: [{self.elapsed()}] {stage} ({self.count})\x1b[K")
            self.out.flush()

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.start:4.0f} s"

    def done(self) -> None:
        if self.tty and self.stage:
            self.out.write("\n")
        _say(self.out, f"debootstrap done in {time.monotonic() - self.start:.0f} s")


def stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM debootstrap's process group, SIGKILL what is left after 10 s, reap it."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _say(out: TextIO, message: str) -> None:
    out.write(f"lxcsd: {message}\n")
    out.flush()


def prepare(rootfs: str, name: str) -> None:
    with open(os.path.join(rootfs, "etc/machine-id"), "w", encoding="ascii"):
        pass  # empty: systemd makes a fresh id at each boot
    units = os.path.join(rootfs, "etc/systemd/system")
    os.makedirs(units, exist_ok=True)
    for unit in MASK:
        link = os.path.join(units, unit)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink("/dev/null", link)


def finish(rootfs: str, context: Mapping[str, Any]) -> None:
    """After the files are rendered: systemd-networkd on when it has an interface to serve."""
    if context["dhcp_interfaces"]:
        enable(rootfs, "systemd-networkd.service")


def enable(rootfs: str, unit: str) -> None:
    """systemctl enable in the new root (its [Install] section decides the links)."""
    result = subprocess.run(["systemctl", f"--root={rootfs}", "enable", unit],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LxcsdError(f"cannot enable {unit} in {rootfs}: {result.stderr.strip()}")
