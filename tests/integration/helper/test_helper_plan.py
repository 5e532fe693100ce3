"""The start plan as the hand-off between the generator and the helper
(lxcsd.runtime.planfile): a fresh compiled plan is started without the config reader, and
a config or include edited since it was compiled is what the next start uses.

Real starts through ``lxcsd-helper start`` (helper_util), the plan compiled as the
generator compiles it (lxcsd.runtime.compiler.compile_file into the plan directory).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.runtime import compiler, planfile
from tests.infra import helper_util as hu

pytestmark = pytest.mark.root

# A Debian-like layout: the config includes a shared file, which includes a directory.
INCLUDE = "lxc.environment = MARK=one\n"


@contextlib.contextmanager
def _helper_env(lxcpath: hu.Lxcpath) -> Iterator[None]:
    """This process's environment as the helper's (the plan's validity depends on it)."""
    env = {"LXCSD_LXCPATH": str(lxcpath.base), "LXCSD_RUN_DIR": str(lxcpath.run_dir)}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _compile(lxcpath: hu.Lxcpath, name: str) -> Path:
    """The plan as the generator writes it at daemon-reload."""
    with _helper_env(lxcpath):
        _, data = compiler.compile_file(name, str(lxcpath.base / name / "config"))
        return Path(planfile.write(name, data))


def _imports(started: hu.Started) -> list[str]:
    return [line.rsplit("|", 1)[-1].strip() for line in started.stderr.splitlines()
            if "import time:" in line]


def _mark(pid: int) -> str:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(v.decode()[5:] for v in environ if v.startswith(b"MARK="))


IMPORTTIME = [sys.executable, "-X", "importtime"]


def test_a_fresh_plan_starts_without_the_config_reader(lxcpath: hu.Lxcpath,
                                                       unit_cgroup: str) -> None:
    include = lxcpath.base / "common.conf"
    include.write_text(INCLUDE)
    lxcpath.container("p1", f"lxc.include = {include}\n")
    plan = _compile(lxcpath, "p1")
    assert stat.S_IMODE(plan.stat().st_mode) == 0o600
    assert stat.S_IMODE(plan.parent.stat().st_mode) == 0o700
    started = lxcpath.start("p1", unit_cgroup, python=IMPORTTIME)
    assert started.status == 0, started
    modules = _imports(started)
    assert "lxcsd.runtime.start" in modules and "lxcsd.runtime.planfile" in modules
    assert [m for m in modules if m.startswith("lxcsd.config")] == [], modules
    assert "lxcsd.runtime.compiler" not in modules
    assert _mark(started.init_pid) == "one"


def test_an_include_edited_after_the_plan_is_what_the_next_start_uses(
        lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    include = lxcpath.base / "common.conf"
    include.write_text(INCLUDE)
    lxcpath.container("p2", f"lxc.include = {include}\n")
    plan = _compile(lxcpath, "p2")
    first = lxcpath.start("p2", unit_cgroup)
    assert first.status == 0 and _mark(first.init_pid) == "one", first
    first.stop()
    include.write_text(INCLUDE.replace("one", "two"))  # the same size: stamps, not sizes
    second = lxcpath.start("p2", unit_cgroup, python=IMPORTTIME)
    assert second.status == 0, second
    assert _mark(second.init_pid) == "two"
    assert "lxcsd.config.reader" in _imports(second)  # read again, not the stale plan
    second.stop()
    with _helper_env(lxcpath):  # written back, fresh for the next start
        data = planfile.load(str(plan))
        assert data is not None and planfile.fresh(data)
    third = lxcpath.start("p2", unit_cgroup, python=IMPORTTIME)
    assert third.status == 0 and _mark(third.init_pid) == "two", third
    assert [m for m in _imports(third) if m.startswith("lxcsd.config")] == []


def test_a_config_edited_after_the_plan_is_what_the_next_start_uses(
        lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    lxcpath.container("p3", INCLUDE)
    _compile(lxcpath, "p3")
    config = lxcpath.base / "p3" / "config"
    config.write_text(config.read_text().replace("MARK=one", "MARK=new"))
    started = lxcpath.start("p3", unit_cgroup)
    assert started.status == 0 and _mark(started.init_pid) == "new", started


def test_a_plan_others_could_write_is_not_read(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    """marshal is not made for untrusted input: a plan file (or directory) writable by
    anyone but root is compiled again, never loaded."""
    lxcpath.container("p4", INCLUDE)
    plan = _compile(lxcpath, "p4")
    plan.chmod(0o666)
    started = lxcpath.start("p4", unit_cgroup, python=IMPORTTIME)
    assert started.status == 0, started
    assert "lxcsd.config.reader" in _imports(started)
    assert stat.S_IMODE(plan.stat().st_mode) == 0o600  # written back, root's alone


def test_a_plan_with_a_bad_config_still_fails_with_file_and_line(
        lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    """A config broken after the plan was compiled: the start reads it and refuses it."""
    lxcpath.container("p5", INCLUDE)
    _compile(lxcpath, "p5")
    config = lxcpath.base / "p5" / "config"
    config.write_text(config.read_text() + "lxc.cap.drop = no_such_cap\n")
    started = lxcpath.start("p5", unit_cgroup)
    assert started.status == 1, started
    lines = config.read_text().count("\n")
    assert f"{config}:{lines}: lxc.cap.drop" in started.stderr, started.stderr


def test_a_loop_the_root_made_after_the_plan_fails_with_the_configs_error(
        lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    """The container's root turns /bin (on the way to init: /sbin/init -> /bin/busybox)
    into a symlink loop after the plan was compiled: the start sees the plan stale (init is
    looked up inside the root, never stat'd from the host) and refuses the config, naming
    it, instead of ending in an ELOOP traceback."""
    root = lxcpath.container("p6", INCLUDE)
    _compile(lxcpath, "p6")
    (root / "bin").rename(root / "bin.real")
    (root / "bin").symlink_to("bin")
    started = lxcpath.start("p6", unit_cgroup)
    assert started.status == 1, started
    assert "has no executable /sbin/init" in started.stderr, started.stderr
    assert "Traceback" not in started.stderr, started.stderr
