"""lxc.prlimit / lxc.sysctl / lxc.proc / lxc.keyring.session: liblxc's path mappings, and the
writes on a real process and on stand-in /proc trees."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.config.load import load_path
from lxcsd.config.model import Container
from lxcsd.errors import LxcsdError
from lxcsd.runtime import limits


def container(tmp_path: Path, body: str) -> Container:
    config = tmp_path / "config"
    config.write_text("lxc.rootfs.path = /srv/c1/rootfs\n" + body)
    return load_path(str(config), name="c1")


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def limit_line(pid: int, title: str) -> list[str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(title):
            return line[len(title):].split()[:2]
    raise AssertionError(title)


@pytest.mark.parametrize(("name", "path"), [
    ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"),
    ("kernel.shmmax", "/proc/sys/kernel/shmmax"),
    ("fs.mqueue.msg_max", "/proc/sys/fs/mqueue/msg_max"),
])
def test_sysctl_path(name: str, path: str) -> None:
    assert limits.sysctl_path(name) == path


@pytest.mark.parametrize("name", ["", "../x", "net/ipv4", ".hidden"])
def test_sysctl_path_refuses(name: str) -> None:
    with pytest.raises(LxcsdError):
        limits.sysctl_path(name)


def test_proc_path_maps_dots_like_liblxc() -> None:
    assert limits.proc_path(7, "oom_score_adj") == "/proc/7/oom_score_adj"
    assert limits.proc_path(7, "attr.current") == "/proc/7/attr/current"


def test_prlimit_plan(tmp_path: Path) -> None:
    c = container(tmp_path, "lxc.prlimit.nofile = 1024:2048\nlxc.prlimit.core = unlimited\n"
                            "lxc.limit.nproc = 100\nlxc.prlimit.7 = 50:60\n")
    config = tmp_path / "config"
    assert limits.prlimit_plan(c) == [("nofile", 7, 1024, 2048, f"{config}:2"),
                                      ("core", 4, -1, -1, f"{config}:3"),
                                      ("nproc", 6, 100, 100, f"{config}:4"),
                                      ("7", 7, 50, 60, f"{config}:5")]


def test_prlimits_on_a_real_process(tmp_path: Path, sleeper: int) -> None:
    c = container(tmp_path, "lxc.prlimit.nofile = 256:512\nlxc.prlimit.core = 0\n")
    limits.apply_prlimits(limits.prlimit_plan(c), sleeper)
    assert limit_line(sleeper, "Max open files") == ["256", "512"]
    assert limit_line(sleeper, "Max core file size") == ["0", "0"]


def test_prlimit_error_names_key_and_line(tmp_path: Path, sleeper: int) -> None:
    c = container(tmp_path, "lxc.prlimit.nofile = 4096:1024\n")
    with pytest.raises(LxcsdError) as err:
        limits.apply_prlimits(limits.prlimit_plan(c), sleeper)
    assert str(err.value).startswith(f"{tmp_path / 'config'}:2: lxc.prlimit.nofile: "
                                     "cannot set 4096:1024")
    assert "soft limit must not exceed the hard one" in str(err.value)


def test_sysctls_written_in_order(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "sys/net/ipv4").mkdir(parents=True)
    (proc / "sys/net/ipv4/ip_forward").write_text("0\n")
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/kernel/msgmax").write_text("8192\n")
    c = container(tmp_path, "lxc.sysctl.net.ipv4.ip_forward = 1\n"
                            "lxc.sysctl.kernel.msgmax = 16384\n")
    limits.apply_sysctls(limits.sysctl_plan(c), proc=str(proc))
    assert (proc / "sys/net/ipv4/ip_forward").read_text().startswith("1")
    assert (proc / "sys/kernel/msgmax").read_text().startswith("16384")


def test_unknown_sysctl_names_key_and_line(tmp_path: Path) -> None:
    (tmp_path / "proc/sys").mkdir(parents=True)
    c = container(tmp_path, "\nlxc.sysctl.net.nope = 1\n")
    with pytest.raises(LxcsdError) as err:
        limits.apply_sysctls(limits.sysctl_plan(c), proc=str(tmp_path / "proc"))
    assert str(err.value) == (f"{tmp_path / 'config'}:3: lxc.sysctl.net.nope: cannot set "
                              "'1': No such file or directory (no such kernel parameter in "
                              "the container's namespaces)")


def test_proc_written_on_a_real_process(tmp_path: Path, sleeper: int) -> None:
    c = container(tmp_path, "lxc.proc.oom_score_adj = 500\n")
    limits.apply_proc(limits.proc_plan(c), sleeper)
    assert Path(f"/proc/{sleeper}/oom_score_adj").read_text().strip() == "500"


def test_proc_error_names_key(tmp_path: Path, sleeper: int) -> None:
    c = container(tmp_path, "lxc.proc.no_such_file = 1\n")
    with pytest.raises(LxcsdError, match=r"config:2: lxc.proc.no_such_file: cannot write"):
        limits.apply_proc(limits.proc_plan(c), sleeper)


def test_keyring_disabled(tmp_path: Path) -> None:
    """lxc.keyring.session = 0: the plan says so, and C2 then never asks for a keyring."""
    from lxcsd.runtime.compiler import Host, make_plan

    (tmp_path / "root/bin").mkdir(parents=True)
    (tmp_path / "root/bin/x").write_text("#!/bin/sh\n")
    (tmp_path / "root/bin/x").chmod(0o755)
    for body, wanted in (("lxc.keyring.session = 0\n", False), ("", True)):
        config = tmp_path / "config"
        config.write_text(f"lxc.rootfs.path = {tmp_path}/root\nlxc.init.cmd = /bin/x\n" + body)
        plan = make_plan("c1", load_path(str(config), name="c1"), {}, host=Host(controllers=set()))
        assert plan.keyring_session is wanted
