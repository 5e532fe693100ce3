"""Scratch cgroups in the host's cgroup v1 hierarchies (this host is hybrid: memory, cpu,
pids, ... are v1 controllers), so that what tests start lives in cgroups of its own there
too, as a unit does on a hybrid systemd host, and never in the host's v1 root.

Standard library only (the sandbox launcher's host side and the helper tests use it). A
hierarchy the host does not mount is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

CPUSET_FILES = ("cpuset.cpus", "cpuset.mems")
_FLAGS = frozenset(("rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode",
                    "favordynmods", "nofavordynmods", "sane_behavior"))


def own_dirs(pid: int | str = "self") -> list[Path]:
    """The host directory of pid's cgroup in each mounted v1 hierarchy."""
    mounts = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            tail = right.split()
            if len(tail) >= 3 and tail[0] == "cgroup":
                options = {o for o in tail[2].split(",") if o not in _FLAGS}
                mounts.append((options, left.split()[3], left.split()[4]))
    found = []
    with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
        for line in f:
            number, controllers, path = line.rstrip("\n").split(":", 2)
            if number == "0" or not controllers:
                continue
            for options, root, mountpoint in mounts:
                if options == set(controllers.split(",")) and \
                        (root == "/" or path == root or path.startswith(root + "/")):
                    rel = path[len(root):] if root != "/" else path
                    found.append(Path(mountpoint) / rel.lstrip("/"))
                    break
    return found


def make(name: str) -> list[Path]:
    """name below our own cgroup in every mounted v1 hierarchy (cpuset: usable at once)."""
    made = []
    for parent in own_dirs():
        path = parent / name
        path.mkdir(exist_ok=True)
        if (path / "cpuset.cpus").exists():
            for file in CPUSET_FILES:
                (path / file).write_text((parent / file).read_text().strip() or "\n")
        made.append(path)
    return made


def existing(name: str) -> list[Path]:
    return [path for path in (parent / name for parent in own_dirs()) if path.is_dir()]


def enter(paths: list[Path], pid: int | str = 0) -> None:
    for path in paths:
        (path / "cgroup.procs").write_text(str(pid))


def children(paths: list[Path]) -> list[str]:
    """The cgroups below paths (what lxcsd made there and left)."""
    return sorted(str(Path(top) / d) for path in paths if path.is_dir()
                  for top, dirs, _ in os.walk(path) for d in dirs)


def remove(paths: list[Path]) -> list[str]:
    """rmdir each tree bottom-up; returns what could not be removed."""
    problems = []
    for path in paths:
        if not path.is_dir():
            continue
        for top, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
            try:
                os.rmdir(top)
            except OSError as exc:
                problems.append(f"{top}: {exc.strerror}")
    return problems
