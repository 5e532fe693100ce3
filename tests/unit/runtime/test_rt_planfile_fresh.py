"""When a compiled plan is fresh (lxcsd.runtime.planfile.unchanged), for the helper's start
and the generator's facts cache alike: init is looked up again inside the root (a retargeted
symlink, an earlier PATH directory gaining the name, a loop the container made), and every
piece of lxcsd (and libseccomp) that shaped the plan is a dependency. Real files, symlinks
and a real second Python process in tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from lxcsd.errors import ConfigError
from lxcsd.generator import facts
from lxcsd.runtime import apparmor_profile, compiler, lsm, planfile, start
from lxcsd.runtime.plan import StartPlan

HOST = compiler.Host(controllers=set(), lsm=lsm.Host())
SYSTEMD_STOP = {"halt": compiler.SIGRTMIN_3, "exec_stop": 1}  # liblxc: systemd blocks SIGPWR
BUSYBOX_STOP = {"halt": compiler.SIGPWR, "exec_stop": 0}
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A root with both inits, /sbin/init -> /lib/systemd/systemd, and its config c1."""
    monkeypatch.setenv("LXCSD_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path / "lxc"))
    rootfs = tmp_path / "lxc/c1/rootfs"
    for program in ("lib/systemd/systemd", "bin/busybox"):
        (rootfs / program).parent.mkdir(parents=True)
        (rootfs / program).write_text("#!/bin/sh\n")
        (rootfs / program).chmod(0o755)
    (rootfs / "sbin").mkdir()
    (rootfs / "sbin/init").symlink_to("/lib/systemd/systemd")
    (tmp_path / "lxc/c1/config").write_text(f"lxc.rootfs.path = dir:{rootfs}\n")
    return rootfs


def _compile(root: Path) -> tuple[StartPlan, dict[str, object]]:
    return compiler.compile_file("c1", str(root.parent / "config"), host=HOST)


def _stop(plan: StartPlan) -> dict[str, object]:
    return {"halt": plan.stop["halt"], "exec_stop": plan.stop["exec_stop"]}


def _retarget(link: Path, target: str) -> None:
    link.unlink()
    link.symlink_to(target)


@pytest.mark.parametrize(("before", "after", "stop_before", "stop_after"), [
    ("/lib/systemd/systemd", "/bin/busybox", SYSTEMD_STOP, BUSYBOX_STOP),
    # The harmful way: a plan that sends systemd SIGPWR (which it ignores) and drops its
    # readiness would be started.
    ("/bin/busybox", "/lib/systemd/systemd", BUSYBOX_STOP, SYSTEMD_STOP),
])
def test_a_retargeted_init_symlink_compiles_the_plan_again(
        root: Path, before: str, after: str, stop_before: dict[str, object],
        stop_after: dict[str, object]) -> None:
    _retarget(root / "sbin/init", before)
    compiled, data = _compile(root)
    planfile.write("c1", data)
    found = planfile.read("c1")
    assert found is not None and _stop(found) == stop_before
    assert found.subreaper is (before.endswith("systemd"))
    _retarget(root / "sbin/init", after)  # neither program file changed
    assert planfile.read("c1") is None
    again, _ = _compile(root)
    assert _stop(again) == stop_after and again.subreaper is after.endswith("systemd")


def test_the_generators_cache_sees_a_retargeted_init(root: Path, tmp_path: Path) -> None:
    """Cache.get (a daemon-reload with unchanged configs) checks the same dependencies:
    its drop-in's KillSignal= must not stay systemd's."""
    plan, data = _compile(root)
    cache = facts.Cache(str(tmp_path / "plans"))
    config = str(root.parent / "config")
    cache.put(config, data["deps"], facts.UnitFacts(  # type: ignore[arg-type]
        errors=[], auto=False, order=0, delay=0, groups=(), mount_paths=[], links=[],
        devices2=(), devices1=(), stop=plan.stop, signal_names={}))
    cache.save()
    assert facts.Cache(str(tmp_path / "plans")).get(config) is not None
    _retarget(root / "sbin/init", "/bin/busybox")
    assert facts.Cache(str(tmp_path / "plans")).get(config) is None


def test_an_earlier_path_directory_gaining_init_compiles_again(root: Path) -> None:
    """lxc.init.cmd without a '/' is searched on PATH at the start (exec_init): a new
    /usr/sbin/init comes before /sbin/init."""
    (root.parent / "config").write_text(f"lxc.rootfs.path = dir:{root}\n"
                                        "lxc.init.cmd = init\n")
    _, data = _compile(root)
    assert planfile.fresh(data)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/init").symlink_to("/bin/busybox")
    assert not planfile.fresh(data)
    again, _ = _compile(root)
    assert _stop(again) == BUSYBOX_STOP


def test_a_path_entry_becoming_a_program_compiles_again(root: Path) -> None:
    """A non-executable file earlier on PATH is skipped by execvp; made executable, it is
    init."""
    (root.parent / "config").write_text(f"lxc.rootfs.path = dir:{root}\n"
                                        "lxc.init.cmd = init\n")
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/init").write_text("not yet\n")
    _, data = _compile(root)
    assert planfile.fresh(data)
    (root / "usr/sbin/init").chmod(0o755)
    assert not planfile.fresh(data)


@pytest.mark.parametrize("loop", ["sbin/init", "lib/systemd"])
def test_a_symlink_loop_in_the_root_is_stale_not_a_traceback(root: Path, tmp_path: Path,
                                                             loop: str) -> None:
    """The container's root makes its init (or a directory on the way to it) a loop: the
    start compiles again and reports the config's error (ConfigError: file and key), the
    generator's cache misses; no OSError (ELOOP) escapes either."""
    _, data = _compile(root)
    planfile.write("c1", data)
    cache = facts.Cache(str(tmp_path / "plans"))
    config = str(root.parent / "config")
    cache.entries[config] = (data["deps"], ())  # type: ignore[assignment]
    if loop == "lib/systemd":
        shutil.rmtree(root / loop)
    else:
        (root / loop).unlink()
    (root / loop).symlink_to(os.path.basename(loop))  # itself: ELOOP in the root and on the host
    assert planfile.read("c1") is None and cache.get(config) is None
    with pytest.raises(ConfigError, match="has no executable /sbin/init") as error:
        start.load_plan("c1")
    assert error.value.path == config


def test_a_host_path_that_cannot_be_stat_is_stale(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert planfile.stamp(str(loop)) == planfile.UNREADABLE
    assert not planfile.unchanged([(str(loop), planfile.stamp(str(loop)))])
    assert planfile.unchanged([(str(tmp_path / "missing"), ())])


def probe_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module of lxcsd, loaded (in sys.modules), whose source the test can upgrade."""
    probe = tmp_path / "probe.py"
    probe.write_text("# a module of lxcsd\n")
    module = types.ModuleType("lxcsd.probe_module")
    module.__file__ = str(probe)
    monkeypatch.setitem(sys.modules, "lxcsd.probe_module", module)
    return probe


def test_every_lxcsd_module_loaded_is_a_dependency(root: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's content comes from more of lxcsd than the compiler (its records, hooks,
    net.spec, mounts, caps, lsm, the AppArmor profile text, the seccomp policy): an
    upgrade or edit of any module loaded when it was compiled compiles it again."""
    (root.parent / "config").write_text(
        f"lxc.rootfs.path = dir:{root}\nlxc.net.0.type = veth\nlxc.net.0.link = br0\n"
        "lxc.hook.pre-start = /bin/true\nlxc.mount.entry = /srv srv none bind 0 0\n")
    probe = probe_module(tmp_path, monkeypatch)
    _, data = _compile(root)
    deps = [dep[0] for dep in data["code"]]  # type: ignore[attr-defined]
    for shaping in ("runtime/plan.py", "runtime/record.py", "runtime/hooks.py",
                    "net/spec.py", "runtime/mounts.py", "runtime/caps.py", "runtime/lsm.py",
                    "runtime/seccomp_policy.py", "runtime/compiler.py"):
        assert str(REPO / "lxcsd" / shaping) in deps, shaping
    assert apparmor_profile.__file__ in deps and str(probe) in deps
    assert planfile.fresh(data)  # type: ignore[arg-type]
    probe.write_text("# a module of lxcsd, upgraded\n")
    assert not planfile.fresh(data)  # type: ignore[arg-type]


def test_the_generators_cache_keeps_lxcsds_code_once_and_drops_all_when_it_changes(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The facts cache of many containers holds lxcsd's code stamps once, not in every
    entry; an upgrade of any module the generator had loaded drops every entry."""
    probe = probe_module(tmp_path, monkeypatch)
    plan, data = _compile(root)
    plans = str(tmp_path / "plans")
    cache = facts.Cache(plans)
    config = str(root.parent / "config")
    for n in range(3):
        cache.put(f"{config}{n}", data["deps"], facts.UnitFacts(  # type: ignore[arg-type]
            errors=[], auto=False, order=0, delay=0, groups=(), mount_paths=[], links=[],
            devices2=(), devices1=(), stop=plan.stop, signal_names={}))
    cache.save()
    saved = planfile.load(os.path.join(plans, facts.CACHE_FILE))
    assert saved is not None and str(probe) in [path for path, _ in saved["code"]]
    for deps, _facts in saved["entries"].values():
        assert not [d for d in deps if str(d[0]).endswith(".py")], deps
    again = facts.Cache(plans)
    assert again.get(f"{config}1") is not None and not again.dirty
    probe.write_text("# a module of lxcsd, upgraded\n")
    dropped = facts.Cache(plans)
    assert dropped.entries == {} and dropped.get(f"{config}1") is None and dropped.dirty


def test_the_seccomp_library_compiled_against_is_a_dependency(root: Path, tmp_path: Path
                                                              ) -> None:
    """The BPF program comes from libseccomp's tables: the plan is compiled in a second
    Python process that loads its own copy of the seccomp binding (Debian's has libseccomp
    linked in; /proc/self/maps names what is loaded); replacing that file (an upgrade)
    makes the plan stale."""
    import seccomp

    copy = tmp_path / "lib" / os.path.basename(seccomp.__file__)
    copy.parent.mkdir()
    shutil.copy2(seccomp.__file__, copy)
    plans = tmp_path / "plans"
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
            "from lxcsd.runtime import compiler, planfile\n"
            "_, data = compiler.compile_file('c1', sys.argv[3], host=compiler.Host("
            "controllers=set()))\nplanfile.write('c1', data)\n")
    subprocess.run([sys.executable, "-c", code, str(copy.parent), str(REPO),
                    str(root.parent / "config")], check=True, timeout=60,
                   env={**os.environ, "LXCSD_PLAN_DIR": str(plans)})
    data = planfile.load(str(plans / "c1.plan"))
    assert data is not None and data["plan"]["seccomp_bpf"]
    assert str(copy) in [dep[0] for dep in data["code"]]
    assert planfile.fresh(data)
    copy.unlink()
    shutil.copy2(seccomp.__file__, copy)  # the same bytes, a new file: as dpkg installs
    assert not planfile.fresh(data)
