"""Compiled start plans on disk: ``/run/lxcsd-plans/INSTANCE.plan``, one per container.

The generator compiles every container's plan at boot and at each ``systemctl
daemon-reload`` (it parses every config then anyway) and writes it here; the helper's
start reads it with :func:`read` instead of importing and running the config reader. A
plan counts only while it is *fresh* (:func:`unchanged`): every file it was compiled from
(the config, each include and include directory, the seccomp policy, lxc.mount.fstab,
/etc/subuid and /etc/subgid for an unprivileged container, /etc/lxc/lxc.conf, the source
of every lxcsd module loaded and the libseccomp that compiled its BPF) still has the stat
stamp it had (device, inode, size, mtime and ctime in ns), init's program resolves inside
the root as it did (:func:`program_unchanged`: never a host stat through the container's
symlinks), and the host facts it used still hold (kernel release, AppArmor and SELinux for
a container with a label). Any error while checking means stale. Otherwise the helper
compiles the plan again from the config as it is now and writes it back
(``lxcsd.runtime.start.load_plan``): a config or include edited after daemon-reload is
honoured by the very next start, as under LXC.

Format: ``marshal`` of a dict (``compiled``): the stdlib's own serializer, already loaded
in every interpreter (pickle would cost ~14 ms to import, json ~3 ms, and a plan is only
read by the Python that wrote it, which the ``python`` field checks). ``marshal`` is not
made for untrusted input, so a plan is read only from a directory and a file that only
root can write (lxcsd.rootfile, checked on every read). Mode 0600: plans hold hook commands
and paths.

Cost, measured on this machine (loaded): reading and checking a busybox container's plan
~0.16 ms (the ~42 lxcsd sources' stats ~85-110 µs of it, init's lookup ~13-18 µs); compiling
it instead costs the config reader's import (~9 ms) and the parse (~1-4 ms).
"""

from __future__ import annotations

import marshal
import os
import sys

from lxcsd import rootfile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    from lxcsd.runtime.plan import StartPlan

# Bumped whenever a field of lxcsd.runtime.plan's records or the dependencies' form changes
# meaning (2: init's lookups in the root, lxcsd's sources as files): a plan file of
# another format is ignored (and compiled again) rather than misread. Here, not in plan.py:
# the generator's facts cache checks it without importing the plan's records.
FORMAT = 3

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


# The stamp of a path that exists but cannot be stat'd (a symlink loop, EACCES): never
# equal to itself in :func:`unchanged`, so a plan depending on it is always compiled again
# (and the compile reports what is wrong).
UNREADABLE = (-1,)


def stamp(path: str) -> tuple[int, ...]:
    """(dev, ino, size, mtime_ns, ctime_ns), () when the path does not exist,
    :data:`UNREADABLE` for any other error."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return ()
    except (OSError, ValueError):
        return UNREADABLE
    return stamp_of(st)


def stamp_of(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def code_dependencies(seccomp: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """Which code compiled a plan: (path, stamp) of the source of every lxcsd module loaded
    (the compiler's steps import what shapes the plan: plan, record, hooks, net.spec, mounts,
    caps, lsm, apparmor_profile, seccomp_policy...; a module loaded for anything else only
    costs a stat), and with a seccomp program the seccomp objects mapped in this process
    (libseccomp: its system call tables; Debian's python3-seccomp has it linked in, so its
    binding is the file). An upgrade or edit of any of them compiles the plan again.
    Checking them costs one stat each: ~42 files, ~85-110 µs here (docs/design.md)."""
    files = sorted({path for name, module in list(sys.modules.items())
                    if name.partition(".")[0] == "lxcsd"
                    and (path := getattr(module, "__file__", None))})
    if seccomp:
        files += _seccomp_objects()
    return [(path, _code_stamp(path)) for path in files]


_CODE_STAMPS: dict[str, tuple[int, ...]] = {}


def _code_stamp(path: str) -> tuple[int, ...]:
    """stamp(path), once a process: the generator writes a plan per container, all compiled
    by the same code (a file upgraded during the run keeps its first stamp here, so the
    plan is stale at its next check and compiled again: never the other way round)."""
    found = _CODE_STAMPS.get(path)
    if found is None:
        found = _CODE_STAMPS[path] = stamp(path)
    return found


_SECCOMP_OBJECTS: list[str] = []


def _seccomp_objects() -> list[str]:
    """The files mapped in this process whose name says seccomp (read once a process:
    ~0.3 ms for /proc/self/maps)."""
    if not _SECCOMP_OBJECTS:
        with open("/proc/self/maps", encoding="utf-8", errors="surrogateescape") as f:
            found = {line.split(None, 5)[5].rstrip("\n") for line in f
                     if line.count(" ") >= 5 and "seccomp" in line.rpartition("/")[2]}
        _SECCOMP_OBJECTS.extend(sorted(p for p in found if p.startswith("/")))
    return list(_SECCOMP_OBJECTS)


def environment() -> dict[str, Any]:
    """What a plan's validity depends on besides its files."""
    return {"format": FORMAT, "python": (sys.version_info[:2], marshal.version),
            "kernel": os.uname().release, "lxcpath": os.environ.get("LXCSD_LXCPATH")}


# ------------------------------------------------------------------------------------------
# Writing


def compiled(plan: Mapping[str, Any], deps: list[tuple[Any, ...]], host: Any = None
             ) -> dict[str, Any]:
    """The file's content: the environment, the dependencies, the code that compiled it
    (:func:`code_dependencies`), the host facts (:func:`host_facts`) and the plan
    (``StartPlan.dump()``)."""
    return {**environment(), "deps": deps,
            "code": code_dependencies(bool(plan.get("seccomp_bpf"))), "host": host,
            "plan": plan}


def write(instance: str, data: Mapping[str, Any], directory: str | None = None) -> str:
    """Write a plan atomically (lxcsd.rootfile)."""
    directory = directory or plan_dir()
    os.makedirs(directory, 0o700, exist_ok=True)
    path = os.path.join(directory, instance + SUFFIX)
    rootfile.dump(path, dict(data))
    return path


# ------------------------------------------------------------------------------------------
# Reading


def load(path: str) -> dict[str, Any] | None:
    """The raw content of a plan file, None when it is missing, not root's alone
    (lxcsd.rootfile.load), or not a plan of this format, Python and kernel."""
    found = rootfile.load(path)
    if not isinstance(found, dict):
        return None
    for key, value in environment().items():
        if found.get(key) != value:
            return None
    return found


def fresh(data: Mapping[str, Any]) -> bool:
    """Every dependency unchanged, lxcsd's code that compiled it too, and the host facts
    the plan used still true."""
    code = data.get("code")
    if not code or not unchanged(code) or not unchanged(data.get("deps", ())):
        return False
    host = data.get("host")
    return host is None or host == host_facts(data["plan"])


def unchanged(deps: Iterable[Sequence[Any]],
              stamp_path: Callable[[str], tuple[int, ...]] = stamp) -> bool:
    """Whether every dependency (lxcsd.runtime.compiler.dependencies) is as it was: a
    (path, stamp) has that stamp still (``stamp_path``: the generator's cache stats a
    shared file once a run), a (root, program, lookups) resolves in the root as it did
    (:func:`program_unchanged`). Any error means changed."""
    try:
        for dep in deps:
            if len(dep) == 3:
                if not program_unchanged(dep[0], dep[2]):
                    return False
                continue
            path, expected = dep
            now = stamp_path(path)
            if now == UNREADABLE or now != tuple(expected):
                return False
    except (TypeError, ValueError):
        return False
    return True


def program_unchanged(root: str, lookups: Sequence[Sequence[Any]]) -> bool:
    """Whether init's search in the root (lxcsd.runtime.compiler.init_lookups) finds what
    it found: each path tried resolves, inside the root (safepath: RESOLVE_IN_ROOT, never
    the host's stat through the container's symlinks), to the same host path, only the last
    is a program, and it has the same stamp. A symlink retargeted (/sbin/init from systemd
    to busybox), an earlier PATH directory gaining the name, a loop: changed. ~5 µs a path."""
    from lxcsd.runtime import safepath

    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        for path, real, expected in lookups:
            found = safepath.lookup(root_fd, path)
            program = found is not None and safepath.is_program(found[1])
            if (found[0] if found else "") != real or program != bool(expected):
                return False
            if found is not None and program and stamp_of(found[1]) != tuple(expected):
                return False
    finally:
        os.close(root_fd)
    return bool(lookups) and bool(lookups[-1][2])


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
