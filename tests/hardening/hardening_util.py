"""Containers for the hardening tier and the hostile probe run inside them.

A ``Box`` is a busybox container started by ``lxcsd-helper start`` (helper_util), with the
static probe tests/probe/hostile.c at /bin/hostile; ``Box.probe`` runs it through
``lxcsd attach``, i.e. as the container's root with the container's capabilities and
seccomp policy, as a hostile root process inside would run. ``LxcBox`` is the same
container under LXC (lxc-start, lxc-attach), for compare_lxc.py. Each probe command ends
with a verdict line "CLASS open|closed" (see hostile.c).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.infra import helper_util as hu
from tests.infra import rootfs
from tests.probe.build import HOSTILE_SOURCE, build_attach_exec, build_probe

ID_BASE = 100000
IDMAP = f"lxc.idmap = u 0 {ID_BASE} 65536\nlxc.idmap = g 0 {ID_BASE} 65536\n"
SLEEP_INIT = "exec sleep 100000\n"
CLI = (f"import sys; sys.path[:0] = [{str(Path(__file__).resolve().parents[2])!r}]; "
       "sys.path.append('/usr/lib/python3/dist-packages'); "
       "from lxcsd.cli.main import main; sys.exit(main())")


def build_hostile(directory: Path) -> Path:
    build_attach_exec()
    return build_probe(directory / "hostile", HOSTILE_SOURCE)


class Result:
    def __init__(self, cls: str, completed: subprocess.CompletedProcess[str]) -> None:
        self.cls = cls
        self.returncode = completed.returncode
        self.stdout = completed.stdout or ""
        self.stderr = completed.stderr or ""
        self.lines = self.stdout.splitlines()

    @property
    def verdict(self) -> str:
        """The probe's last "CLASS open|closed" line ("missing" when it did not finish)."""
        for line in reversed(self.lines):
            words = line.split()
            if len(words) == 2 and words[0] == self.cls and words[1] in ("open", "closed"):
                return words[1]
        return "missing"

    def __repr__(self) -> str:
        return (f"Result({self.cls} {self.verdict}, status {self.returncode}:\n{self.stdout}"
                f"{self.stderr})")


class Box:
    """A container started by lxcsd-helper, with the hostile probe inside."""

    def __init__(self, lxcpath: hu.Lxcpath, name: str, privileged: bool,
                 unit_cgroup: str) -> None:
        self.lxcpath = lxcpath
        self.name = name
        self.privileged = privileged
        self.unit_cgroup = unit_cgroup
        self.root = lxcpath.base / name / "rootfs"
        self.config = lxcpath.base / name / "config"
        self.started: hu.Started | None = None

    @property
    def init_pid(self) -> int:
        assert self.started is not None
        return self.started.init_pid

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LXCSD_LXCPATH": str(self.lxcpath.base),
                "LXCSD_RUN_DIR": str(self.lxcpath.run_dir)}

    def attach_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-c", CLI, "attach", self.name, *args]

    def restart(self) -> None:
        if self.started is not None:
            self.started.stop()
        self.started = self.lxcpath.start(self.name, self.unit_cgroup)
        assert self.started.status == 0, self.started

    def stop(self) -> None:
        if self.started is not None:
            self.started.stop()

    def attach(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("capture_output", "stdout" not in kwargs)
        return subprocess.run(self.attach_argv(*args), env=self.env(), text=True, timeout=120,
                              check=False, **kwargs)

    def probe(self, cls: str, *args: str, attach_options: tuple[str, ...] = (),
              **kwargs: Any) -> Result:
        return Result(cls, self.attach(*attach_options, "--", "/bin/hostile", cls, *args,
                                       **kwargs))

    def config_append(self, text: str) -> None:
        with open(self.config, "a", encoding="utf-8") as f:
            f.write(text)


def make_box(lxcpath: hu.Lxcpath, unit_cgroup: str, name: str, hostile: Path, *,
             privileged: bool, extra: str = "", start: bool = True) -> Box:
    """A busybox container NAME (privileged, or mapped to ID_BASE) with /bin/hostile;
    extra: more config lines (a weakened container's)."""
    root = lxcpath.container(name, ("" if privileged else IDMAP) + extra,
                             init_script=SLEEP_INIT)
    _install_probe(root, hostile, privileged)
    if not privileged:
        os.chown(lxcpath.base / name, ID_BASE, ID_BASE)
    box = Box(lxcpath, name, privileged, unit_cgroup)
    if start:
        box.restart()
    return box


def _install_probe(root: Path, hostile: Path, privileged: bool) -> None:
    shutil.copy2(hostile, root / "bin/hostile")
    if not privileged:
        hu.chown_tree(root, ID_BASE, ID_BASE)


# ------------------------------------------------------------------------------------------
# The same container under LXC 5 (compare_lxc.py)

LXC_CONFIG = """lxc.rootfs.path = dir:{root}
lxc.uts.name = {name}
lxc.net.0.type = empty
lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed
lxc.pty.max = 8
lxc.tty.max = 1
lxc.init.cmd = /bin/sleep 100000
"""


class LxcBox(Box):
    """A container run by LXC's own tools: lxc-start -d, lxc-attach, lxc-stop -k."""

    def __init__(self, base: Path, name: str, privileged: bool) -> None:
        self.base = base
        self.name = name
        self.privileged = privileged
        self.root = base / name / "rootfs"
        self.config = base / name / "config"
        self.started = None

    @property
    def init_pid(self) -> int:
        out = subprocess.run(["lxc-info", "-n", self.name, "-P", str(self.base), "-p", "-H"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

    def attach_argv(self, *args: str) -> list[str]:
        return ["lxc-attach", "-n", self.name, "-P", str(self.base), *args]

    def restart(self) -> None:
        self.stop()
        log = self.base / f"{self.name}.log"
        subprocess.run(["lxc-start", "-n", self.name, "-P", str(self.base), "-d", "-o",
                        str(log)], check=True, timeout=60)
        subprocess.run(["lxc-wait", "-n", self.name, "-P", str(self.base), "-s", "RUNNING",
                        "-t", "30"], check=True, timeout=60)

    def stop(self) -> None:
        subprocess.run(["lxc-stop", "-n", self.name, "-P", str(self.base), "-k"],
                       capture_output=True, timeout=60, check=False)


def make_lxc_box(base: Path, name: str, hostile: Path, *, privileged: bool,
                 include_common: bool) -> LxcBox:
    """The busybox container of make_box under LXC; include_common: with LXC's own
    common.conf (and userns.conf), as lxc-create's templates write them."""
    root = rootfs.busybox_rootfs(base / name / "rootfs", hostname=name)
    _install_probe(root, hostile, privileged)
    includes = ""
    if include_common:
        includes = "lxc.include = /usr/share/lxc/config/common.conf\n" + \
            ("" if privileged else "lxc.include = /usr/share/lxc/config/userns.conf\n")
    text = includes + LXC_CONFIG.format(root=root, name=name) + ("" if privileged else IDMAP)
    (base / name / "config").write_text(text)
    if not privileged:
        os.chown(base / name, ID_BASE, ID_BASE)
    box = LxcBox(base, name, privileged)
    box.restart()
    return box


# ------------------------------------------------------------------------------------------
# Class runners shared by the tests and compare_lxc.py


def bind_source(box: Box, marker: Path) -> Result:
    """The container makes /link -> / in its root; the admin's next start binds
    ROOTFS/link onto /mnt/x; the probe looks for a host file through it."""
    made = box.attach("--", "ln", "-sfn", "/", "/link")
    assert made.returncode == 0, made
    box.config_append(f"lxc.mount.entry = {box.root}/link mnt/x none bind,create=dir 0 0\n")
    box.restart()
    return box.probe("hostfile", f"/mnt/x{marker}")


def watch(box: Box, during: Callable[[], object], seconds: int = 6) -> Result:
    """Run the probe's watcher inside (with its FIFO trap on /etc/passwd), call during()
    once it is ready, and return its report."""
    proc = subprocess.Popen(box.attach_argv("--", "/bin/hostile", "watch", str(seconds),
                                            "/etc/passwd"),
                            env=box.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first.strip() == "watch ready":
        during()
    out, err = proc.communicate(timeout=seconds + 60)
    return Result("watch", subprocess.CompletedProcess(proc.args, proc.returncode,
                                                       first + out, err))


def attach_hijack(box: Box, tries: int = 10) -> Result:
    """The attach tool of box's runtime, run tries times while the watcher looks: a window
    before the exec is a race the watcher wins often, not always, without its FIFO trap."""
    def attach() -> None:
        for _ in range(tries - 1):
            box.attach("--", "true")
        box.attach("--", "sh", "-c", "sleep 1")  # seen at least after its exec

    return watch(box, attach, seconds=4 + tries)


def _caller_terminal() -> tuple[int, int]:
    """A pty standing for the terminal lxcsd attach is typed in (raw, so typed bytes show
    at once)."""
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~(termios.ICANON | termios.ECHO)
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    return master, slave


def _typed_into(slave: int) -> bytes:
    """What arrived as input at the caller's terminal (TIOCSTI pushes there)."""
    fcntl.fcntl(slave, fcntl.F_SETFL, os.O_NONBLOCK)
    data = b""
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        if not select.select([slave], [], [], 0.1)[0]:
            continue
        try:
            data += os.read(slave, 4096)
        except BlockingIOError:
            break
    return data


def tiocsti(box: Box, *attach_options: str) -> tuple[Result, bytes]:
    """The probe's TIOCSTI, run as ``attach NAME -- cmd </dev/null`` typed at a terminal
    (the caller's stdout and controlling terminal; stdin not a terminal: the case that got
    no pty before); returns what got typed into that terminal."""
    master, slave = _caller_terminal()
    try:
        def session() -> None:  # the caller's shell: its own session, the pty as terminal
            os.setsid()
            fcntl.ioctl(1, termios.TIOCSCTTY, 0)

        result = box.probe("tiocsti", attach_options=attach_options,
                           stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                           preexec_fn=session, capture_output=False)
        return result, _typed_into(slave)
    finally:
        os.close(master)
        os.close(slave)
