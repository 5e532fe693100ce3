"""Compiled start plans on disk: ``/run/lxcsd-plans/INSTANCE.plan``, one per container.

The generator compiles every container's plan at boot and at each ``systemctl
daemon-reload`` (it parses every config then anyway) and writes it here; the helper's
start reads it with :func:`read` instead of importing and running the config reader. A
plan counts only while it is *fresh*: every file it was compiled from (the config, each
include and include directory, the seccomp policy, lxc.mount.fstab, /etc/subuid and
/etc/subgid for an unprivileged container, init's program in the root, /etc/lxc/lxc.conf)
still has the stat stamp it had (device, inode, size, mtime and ctime in ns), the host
facts it used still hold (kernel release, AppArmor and SELinux for a container with a
label), and lxcsd itself is the same. Otherwise the helper compiles the plan again from the
config as it is now and writes it back (``lxcsd.runtime.start.load_plan``): a config or
include edited after daemon-reload is honoured by the very next start, as under LXC.

Format: ``marshal`` of a dict (``compiled``): the stdlib's own serializer, already loaded
in every interpreter (pickle would cost ~14 ms to import, json ~3 ms, and a plan is only
read by the Python that wrote it, which the ``python`` field checks). ``marshal`` is not
made for untrusted input, so a plan is read only from a directory and a file that only
root can write (lxcsd.rootfile, checked on every read). Mode 0600: plans hold hook commands
and paths.

Cost, measured on this machine: reading and checking a busybox container's plan ~0.1 ms;
compiling it instead costs the config reader's import (~9 ms) and the parse (~1-4 ms).
"""

from __future__ import annotations

import marshal
import os
import sys

from lxcsd import rootfile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from lxcsd.runtime.plan import StartPlan

# Bumped whenever a field of lxcsd.runtime.plan's records changes meaning: a plan file of
# another format is ignored (and compiled again) rather than misread. Here, not in plan.py:
# the generator's facts cache checks it without importing the plan's records.
FORMAT = 1

PLAN_DIR_ENV = "LXCSD_PLAN_DIR"
SUFFIX = ".plan"


def plan_dir() -> str:
    """/run/lxcsd-plans; beside LXCSD_RUN_DIR when tests move the run directory."""
    explicit = os.environ.get(PLAN_DIR_ENV)
    if explicit:
        return explicit
    from lxcsd.runtime.state import run_dir

    return run_dir().rstrip("/") + "-plans"


def plan_path(instance: str) -> str:
    """The plan of unit instance ``instance`` (escaped: one safe path component; the
    suffix keeps plans apart from the directory's other files)."""
    return os.path.join(plan_dir(), instance + SUFFIX)


def stamp(path: str) -> tuple[int, ...]:
    """(dev, ino, size, mtime_ns, ctime_ns), () when the path does not exist."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return ()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def code_stamp() -> tuple[int, ...]:
    """Which lxcsd compiled a plan: the stamp of the compiler's source (any install or
    upgrade rewrites it)."""
    return stamp(os.path.join(os.path.dirname(os.path.abspath(__file__)), "compiler.py"))


def environment() -> dict[str, Any]:
    """What a plan's validity depends on besides its files."""
    return {"format": FORMAT, "python": (sys.version_info[:2], marshal.version),
            "code": code_stamp(), "kernel": os.uname().release,
            "lxcpath": os.environ.get("LXCSD_LXCPATH")}


# ------------------------------------------------------------------------------------------
# Writing


def compiled(plan: Mapping[str, Any], deps: list[tuple[str, tuple[int, ...]]],
             host: Any = None, unit: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The file's content: the environment, the dependencies, the host facts
    (:func:`host_facts`), the plan (``StartPlan.dump()``), and what the generator needs to
    write the unit's drop-in without reading the config again."""
    return {**environment(), "deps": deps, "host": host, "plan": plan,
            "unit": dict(unit or {})}


def write(instance: str, data: Mapping[str, Any], directory: str | None = None) -> str:
    """Write a plan atomically (lxcsd.rootfile)."""
    directory = directory or plan_dir()
    os.makedirs(directory, 0o700, exist_ok=True)
    path = os.path.join(directory, instance + SUFFIX)
    rootfile.dump(path, dict(data))
    return path


def remove(instance: str) -> None:
    try:
        os.unlink(plan_path(instance))
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------------------------------
# Reading


def load(path: str) -> dict[str, Any] | None:
    """The raw content of a plan file, None when it is missing, not root's alone
    (lxcsd.rootfile.load), or not a plan of this lxcsd, Python and kernel."""
    found = rootfile.load(path)
    if not isinstance(found, dict):
        return None
    for key, value in environment().items():
        if found.get(key) != value:
            return None
    return found


def fresh(data: Mapping[str, Any]) -> bool:
    """Every dependency unchanged, and the host facts the plan used still true."""
    for path, expected in data.get("deps", ()):
        if stamp(path) != tuple(expected):
            return False
    host = data.get("host")
    return host is None or host == host_facts(data["plan"])


def read(instance: str, environ: Mapping[str, str] | None = None) -> StartPlan | None:
    """The fresh compiled plan of ``instance``, or None (missing, stale, damaged)."""
    data = load(plan_path(instance))
    if data is None or not fresh(data):
        return None
    from lxcsd.runtime.plan import StartPlan

    try:
        return StartPlan.load(data["plan"], environ)
    except (KeyError, TypeError, ValueError):
        return None


def host_facts(plan: Mapping[str, Any]) -> Any:
    """The host facts a plan (``StartPlan.dump()``) with security labels depends on, None
    for a plan without: AppArmor's features and parser, SELinux, and whether a named
    AppArmor profile is loaded. They change without any file the plan lists changing
    (apparmor.service loads profiles after the generator ran at boot). ~0.1 ms of sysfs
    reads; a named profile adds the kernel's list of loaded profiles."""
    labels = plan.get("labels") or []
    if not labels:
        return None
    from lxcsd.runtime import apparmor, lsm

    feats = apparmor.features()
    named = [label for _, label, module in labels if module == lsm.APPARMOR
             and plan.get("apparmor") is None and "//" not in label and label[:1] != ":"]
    loaded = apparmor.loaded() if named else None
    return (tuple(getattr(feats, name) for name in feats.__slots__), apparmor.parser(),
            os.path.exists(lsm.SELINUX_ENFORCE),
            tuple((label, loaded is not None and label in loaded) for label in named))
