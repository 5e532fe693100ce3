"""lxcsd.runtime.planfile: a compiled start plan survives its file (every field), counts only
while fresh (each file it came from unchanged), and is read only from root's own files."""

from __future__ import annotations

import marshal
import os
import time
from pathlib import Path

import pytest

from lxcsd.config import model
from lxcsd.net.spec import NetSpec
from lxcsd.runtime import compiler, lsm, planfile
from lxcsd.runtime.plan import StartPlan

HOST = compiler.Host(controllers={"memory", "pids"}, lsm=lsm.Host())

RICH = """lxc.include = {base}/common.conf
lxc.rootfs.path = dir:{root}
lxc.uts.name = c1
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
lxc.mount.auto = proc:mixed sys:ro cgroup:mixed
lxc.mount.entry = /srv srv none bind,create=dir,optional 0 0
lxc.mount.fstab = {base}/fstab
lxc.net.0.type = veth
lxc.net.0.link = lxcbr0
lxc.net.0.ipv4.address = 10.0.3.5/24
lxc.net.0.ipv4.gateway = 10.0.3.1
lxc.net.0.ipv6.address = fd00::5/64
lxc.prlimit.nofile = 1024:2048
lxc.sysctl.net.ipv4.ip_forward = 1
lxc.proc.oom_score_adj = 10
lxc.hook.pre-start = /bin/true "two words"
lxc.hook.stop = /bin/true
lxc.cgroup2.memory.max = 1G
lxc.environment = A=1
lxc.environment.runtime = HOME
lxc.signal.halt = SIGUSR1
lxc.tty.max = 2
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LXCSD_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path / "lxc"))
    root = tmp_path / "lxc/c1/rootfs"
    (root / "sbin").mkdir(parents=True)
    (root / "sbin/init").write_text("#!/bin/sh\n")
    (root / "sbin/init").chmod(0o755)
    (tmp_path / "common.conf").write_text("lxc.start.auto = 1\nlxc.include = "
                                          f"{tmp_path}/conf.d/\n")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d/10-a.conf").write_text("lxc.group = web\n")
    (tmp_path / "fstab").write_text("tmpfs tmp tmpfs defaults 0 0\n")
    path = tmp_path / "lxc/c1/config"
    path.write_text(RICH.format(base=tmp_path, root=root))
    monkeypatch.setattr(compiler, "_delegated", lambda plan, c: None)  # no /etc/subuid here
    return path


def _compile(config: Path) -> tuple[StartPlan, dict[str, object]]:
    return compiler.compile_file("c1", str(config), host=HOST)


def test_every_field_survives_the_file(config: Path) -> None:
    plan, data = _compile(config)
    written = planfile.write("c1", data)
    found = planfile.load(written)
    assert found is not None and planfile.fresh(found)
    loaded = StartPlan.load(found["plan"], {"HOME": "/root"})  # type: ignore[arg-type]
    assert loaded.dump() == plan.dump()
    assert loaded.env["HOME"] == "/root" and loaded.env["A"] == "1"
    assert [op.target for op in loaded.mounts] == ["tmp", "srv"]  # fstab first, as LXC
    assert loaded.hooks is not None and loaded.hooks.commands["pre-start"][0][1] == (
        "/bin/true", "two words")
    assert loaded.hooks.commands["pre-start"][0][2] == f"{config}:17"
    assert loaded.networks is not None
    net = loaded.networks.networks[0]
    assert (net.type, net.link, net.ipv4_addresses[0].address,
            net.ipv4_addresses[0].prefix) == ("veth", "lxcbr0", "10.0.3.5", 24)
    assert loaded.networks.where["lxc.net.0.link"] == (str(config), 10)
    assert loaded.prlimits == [("nofile", 7, 1024, 2048, f"{config}:14")]
    assert loaded.seccomp_bpf and len(loaded.seccomp_bpf) % 8 == 0
    assert loaded.stop == {"halt": 10, "stop": 0, "exec_stop": 1, "cleanup": 1}
    assert "lxc.cgroup2.memory.max" in loaded.cgroup_settings[0].where()


def test_a_plan_is_stale_when_a_file_it_came_from_changes(config: Path, tmp_path: Path) -> None:
    _, data = _compile(config)
    assert planfile.fresh(data)
    deps = [dep[0] for dep in data["deps"]]  # type: ignore[attr-defined]
    for wanted in (str(config), f"{tmp_path}/common.conf", f"{tmp_path}/conf.d/",
                   f"{tmp_path}/conf.d/10-a.conf", f"{tmp_path}/fstab", "/etc/subuid"):
        assert wanted in deps, (wanted, deps)
    time.sleep(0.01)
    include = tmp_path / "conf.d/10-a.conf"
    include.write_text(include.read_text().replace("web", "api"))  # same size
    assert not planfile.fresh(data)


def test_init_in_the_root_is_a_dependency(config: Path, tmp_path: Path) -> None:
    """Which signal halts init, and whether it exists, come from the root: a new init
    (an upgrade of the guest's systemd, a replaced root) compiles the plan again. (RICH's
    fstab and pre-start hook may bring init in: not looked at there.)"""
    config.write_text(f"lxc.rootfs.path = dir:{tmp_path}/lxc/c1/rootfs\n")
    _, data = _compile(config)
    root = f"{tmp_path}/lxc/c1/rootfs"
    assert (root, "/sbin/init", (("/sbin/init", f"{root}/sbin/init", planfile.stamp(
        f"{root}/sbin/init")),)) in data["deps"]  # type: ignore[operator]
    init = f"{root}/sbin/init"
    time.sleep(0.01)
    Path(init).write_text("#!/bin/sh\n")
    assert not planfile.fresh(data)


def test_a_new_file_in_an_include_directory_makes_it_stale(config: Path,
                                                           tmp_path: Path) -> None:
    _, data = _compile(config)
    (tmp_path / "conf.d/20-b.conf").write_text("lxc.group = db\n")
    assert not planfile.fresh(data)


def test_an_earlier_lxcpath_gaining_the_name_makes_it_stale(config: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("LXCSD_LXCPATH", f"{tmp_path}/first:{tmp_path}/lxc")
    _, data = _compile(config)
    assert planfile.fresh(data)
    (tmp_path / "first/c1").mkdir(parents=True)
    (tmp_path / "first/c1/config").write_text("lxc.rootfs.path = dir:/srv\n")
    assert not planfile.fresh(data)


def test_only_a_plan_of_this_lxcsd_and_root_alone_is_read(config: Path) -> None:
    _, data = _compile(config)
    path = Path(planfile.write("c1", data))
    assert planfile.read("c1") is not None
    path.write_bytes(marshal.dumps({**data, "format": -1}))
    assert planfile.load(str(path)) is None
    path.write_bytes(marshal.dumps(data))
    os.chmod(path, 0o620)
    assert planfile.load(str(path)) is None
    os.chmod(path, 0o600)
    os.chmod(path.parent, 0o777)
    assert planfile.load(str(path)) is None
    os.chmod(path.parent, 0o700)
    path.write_bytes(b"not marshal")
    assert planfile.load(str(path)) is None


def test_the_network_record_has_the_models_fields() -> None:
    """lxcsd.net.spec.NetSpec repeats config.model.Network's fields: they must not drift."""
    assert NetSpec.__slots__ == model.Network.__slots__


def test_the_seccomp_program_is_compiled_once_per_policy(config: Path) -> None:
    first, _ = _compile(config)
    second, _ = _compile(config)
    assert first.seccomp_bpf is second.seccomp_bpf


def test_the_compiled_program_is_what_the_policy_says(tmp_path: Path) -> None:
    """Loaded into a child with one prctl: the policy's errno for bpf(2), nothing else."""
    from lxcsd.runtime import seccomp_policy

    text = "2\ndenylist\nbpf errno 38\n"
    policy = seccomp_policy.parse(text, "p")
    program = seccomp_policy.compiled(policy)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        import ctypes

        seccomp_policy.load_program(program)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall(321, 0, 0, 0)  # bpf
        denied = ctypes.get_errno() == 38
        os._exit(0 if denied and os.getpid() > 0 else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
