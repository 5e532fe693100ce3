"""Pure parts of lxcsd's container commands: state mapping, /proc/net parsers, cgroup
file parsers, tables, unit object paths, wait's states, attach's environment/passwd/exit
status rules and argument splitting, create/copy helpers."""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess

import pytest

from lxcsd.attach import inside
from lxcsd.attach import options as attach
from lxcsd.cli import _containers, _status, _watch, ls, monitor, wait
from lxcsd.cli import attach as attach_cli
from lxcsd.cli import main as cli
from lxcsd.config.model import Container
from lxcsd.errors import LxcsdError
from lxcsd.systemd.manager import STATES, container_state, counter

FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.0.3.0/24 2 0 2
        +-- 10.0.3.0/30 2 0 2
           |-- 10.0.3.0
              /24 link UNICAST
           |-- 10.0.3.5
              /32 host LOCAL
        |-- 10.0.3.255
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 10.0.3.5
        /32 host LOCAL
     |-- 192.168.7.2
        /32 host LOCAL
"""
IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
fd000000000000000000000000000005 02 40 00 80     eth0
fe800000000000000216 3efffe000001 02 40 20 80     eth0
fe80000000000000021 63efffe000001 02 40 20 80     eth0
"""


def test_states_map_from_active_and_sub_state() -> None:
    assert container_state("active", "running") == "RUNNING"
    assert container_state("reloading") == "RUNNING"
    assert container_state("activating", "auto-restart") == "STARTING"
    assert container_state("deactivating", "stop-sigterm") == "STOPPING"
    assert container_state("failed", "failed") == "FAILED"
    assert container_state("inactive", "dead") == "STOPPED"
    assert set(STATES) == {"RUNNING", "STOPPED", "STARTING", "STOPPING", "FAILED"}
    assert counter(2**64 - 1) is None and counter(5) == 5 and counter(None) is None


def test_fib_trie_gives_local_addresses_without_loopback() -> None:
    assert _status.parse_fib_trie(FIB_TRIE) == ["10.0.3.5", "192.168.7.2"]
    assert _status.parse_fib_trie("") == []


def test_fib_trie_of_this_host_parses() -> None:
    with open("/proc/net/fib_trie", encoding="ascii") as f:
        found = _status.parse_fib_trie(f.read())
    assert all(not addr.startswith("127.") and addr.count(".") == 3 for addr in found)


def test_if_inet6_gives_global_addresses_only() -> None:
    # The two last lines: link-local, and a malformed address field.
    assert _status.parse_if_inet6(IF_INET6) == ["fd00::5"]


def test_cgroup_file_parsers() -> None:
    assert _status.parse_keyed("usage_usec 1500\nuser_usec 1000\nbad\n") == {
        "usage_usec": 1500, "user_usec": 1000}
    stat = "8:0 rbytes=4096 wbytes=512 rios=1 wios=1\n8:16 rbytes=4 wbytes=0 dbytes=9\n"
    assert _status.parse_io_stat(stat) == (4100, 512)


def test_usage_falls_back_to_cgroup_files(tmp_path: os.PathLike[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cg = os.fspath(tmp_path)
    os.makedirs(os.path.join(cg, "lxc.payload.c1"))
    files = {"memory.current": "1048576\n", "cpu.stat": "usage_usec 2500\n",
             "cgroup.procs": "7\n", "lxc.payload.c1/cgroup.procs": "8\n9\n",
             "io.stat": "8:0 rbytes=10 wbytes=20\n", "memory.swap.current": "4096\n"}
    for name, text in files.items():
        with open(os.path.join(cg, name), "w") as f:
            f.write(text)
    monkeypatch.setattr(_status, "cgroup_dir", lambda group: cg if group else None)
    unset = 2**64 - 1
    props = {"ControlGroup": "/machine.slice/lxc@c1.service", "MemoryCurrent": unset,
             "CPUUsageNSec": unset, "TasksCurrent": unset, "IOReadBytes": unset,
             "IOWriteBytes": unset}
    assert _status.usage(props) == {"memory": 1048576, "cpu_ns": 2_500_000, "pids": 3,
                                    "io_read": 10, "io_write": 20, "swap": 4096}
    props["MemoryCurrent"] = 5
    assert _status.usage(props)["memory"] == 5


def test_human_units() -> None:
    assert _status.human_bytes(None) == "-"
    assert _status.human_bytes(512) == "512B"
    assert _status.human_bytes(3 * 1024 * 1024 // 2) == "1.50MiB"
    assert _status.human_seconds(1_500_000_000) == "1.500s"


def _info(**kw: object) -> dict[str, object]:
    info: dict[str, object] = {
        "name": "c1", "state": "RUNNING", "autostart": True, "groups": ["web", "db"],
        "ipv4": ["10.0.3.5"], "ipv6": [], "unprivileged": False, "pid": 42,
        "memory": 2048}
    info.update(kw)
    return info


def test_ls_rows_filters_and_table() -> None:
    assert ls.row(_info()) == ["c1", "RUNNING", "1", "web,db", "10.0.3.5", "-", "false",
                               "42", "2.00KiB"]
    args = argparse.Namespace(names=[], running=False, stopped=True, active=False,
                              group=None)
    assert not ls.selected(_info(), args)
    assert ls.selected(_info(state="FAILED"), args)
    args = argparse.Namespace(names=[], running=True, stopped=False, active=False,
                              group=["db"])
    assert ls.selected(_info(), args) and not ls.selected(_info(groups=["x"]), args)
    text = ls.table([ls.row(_info()), ls.row(_info(name="longer-name", pid=None))])
    lines = text.splitlines()
    assert lines[0].split() == list(ls.COLUMNS)
    assert lines[1].index("RUNNING") == lines[0].index("STATE") == lines[2].index("RUNNING")


def test_a_container_lxc_start_runs_shows_as_such() -> None:
    from lxcsd.cli import info

    lxc_run = _info(runs_under="lxc", lxc_monitor="lxc-start (PID 7)", memory=None)
    assert ls.row(lxc_run)[:2] == ["c1", "RUNNING (LXC)"]
    args = argparse.Namespace(names=[], running=True, stopped=False, active=False,
                              group=None)
    assert ls.selected(lxc_run, args)  # it runs, whoever runs it
    detail = {**lxc_run, "cpu_ns": None, "pids": None, "io_read": None, "io_write": None,
              "unit": "lxc@c1.service", "active_state": "inactive", "sub_state": "dead",
              "control_group": None, "status_text": None, "config": "/c", "enabled": False,
              "start_auto": False, "start_order": 0, "start_delay": 0, "config_error": None,
              "swap": None, "links": [], "limits": _status.limits([])}
    assert ("Run by", "LXC, lxc-start (PID 7): not lxc@c1.service (lxcsd will not start "
            "it; lxc-stop stops it)") in info.lines(detail)


def test_unit_object_paths_decode_to_containers() -> None:
    # sd-bus label escaping, as systemd names lxc@web-1.service's object.
    path = "/org/freedesktop/systemd1/unit/lxc_40web_2d1_2eservice"
    assert _watch.unit_from_path(path) == "lxc@web-1.service"
    assert _watch.container_of("lxc@web-1.service") == "web-1"
    assert _watch.container_of("sshd.service") is None
    assert _watch.unit_from_path("/org/freedesktop/systemd1/unit/bad_zz") is None
    assert _watch.unit_from_path("/org/freedesktop/systemd1") is None


def test_wait_states_and_monitor_lines() -> None:
    assert wait.parse_states("running|Stopped") == {"RUNNING", "STOPPED"}
    with pytest.raises(LxcsdError, match="unknown state FROZEN"):
        wait.parse_states("FROZEN")
    assert monitor.line("c1", "RUNNING", "text") == "'c1' changed state to [RUNNING]"
    assert monitor.line("c1", "STOPPED", "json") == '{"name": "c1", "state": "STOPPED"}'


# ------------------------------------------------------------------------------------------
# attach


def _container(**kw: object) -> Container:
    return Container(name="c1", config_path="/x/config", **kw)  # type: ignore[arg-type]


def test_attach_env_keeps_by_default_and_adds_config_and_set_vars() -> None:
    caller = {"PATH": "/host/bin", "HOME": "/root", "SECRET": "s", "FROM_HOST": "h"}
    c = _container(environment=(("A", "1"), ("FROM_HOST", None), ("MISSING", None)),
                   environment_runtime=(("B", "2"),))
    env = attach.build_env(caller, c, attach.Options(set_vars=["A=override", "C="]))
    assert env == {"PATH": "/host/bin", "HOME": "/root", "SECRET": "s", "FROM_HOST": "h",
                   "container": "lxc", "A": "override", "B": "2", "C": ""}


def test_attach_clear_env_keeps_only_named_vars_and_a_path() -> None:
    caller = {"PATH": "/host/bin", "TERM": "xterm", "SECRET": "s"}
    env = attach.build_env(caller, _container(), attach.Options(clear_env=True))
    assert env == {"PATH": attach.DEFAULT_PATH, "container": "lxc"}
    env = attach.build_env(caller, _container(),
                           attach.Options(clear_env=True, keep_vars=["TERM", "PATH"]))
    assert env == {"PATH": "/host/bin", "TERM": "xterm", "container": "lxc"}
    with pytest.raises(LxcsdError, match="VAR=VALUE"):
        attach.build_env(caller, _container(), attach.Options(set_vars=["NOEQUALS"]))


def test_passwd_entries() -> None:
    text = "root:x:0:0:root:/root:/bin/ash\nbad line\nu:x:1000:100::/home/u:/bin/zsh\n"
    assert attach.passwd_entry(text, 0) == (0, "/root", "/bin/ash")
    assert attach.passwd_entry(text, 1000) == (100, "/home/u", "/bin/zsh")
    assert attach.passwd_entry(text, 5) is None


def test_exit_codes_as_a_shell_reports_them() -> None:
    for script, expected in (("exit 3", 3), ("exit 0", 0), ("kill -9 $$", 128 + 9)):
        proc = subprocess.Popen(["/bin/sh", "-c", script])
        _, status = os.waitpid(proc.pid, 0)
        assert attach.exit_code(status) == expected
    assert 128 + signal.SIGKILL == 137


def test_no_namespace_differs_from_our_own() -> None:
    assert inside.differing_namespaces(os.getpid()) == []


def test_attach_arguments_after_the_name() -> None:
    split = attach_cli.split_rest
    assert split(["-u", "5", "--", "sh", "-c", "x"]) == (["-u", "5"], ["sh", "-c", "x"])
    assert split(["--clear-env", "id", "-u"]) == (["--clear-env"], ["id", "-u"])
    assert split(["--", "--weird"]) == ([], ["--weird"])
    assert split([]) == ([], [])
    parser = cli.build_parser()
    args = parser.parse_args(["attach", "-g", "7", "c1", "-u", "5", "--cwd", "/t", "--",
                              "id", "-u"])
    options, command = split(args.rest)
    assert (args.name, args.gid, options, command) == ("c1", 7, ["-u", "5", "--cwd", "/t"],
                                                       ["id", "-u"])


# ------------------------------------------------------------------------------------------
# create/copy helpers


def test_random_hwaddr_is_a_local_lxc_address() -> None:
    mac = _containers.random_hwaddr(random.Random(1))
    assert mac.startswith("00:16:3e:") and len(mac.split(":")) == 6
    assert mac == _containers.random_hwaddr(random.Random(1))


def test_mounts_under(tmp_path: os.PathLike[str]) -> None:
    info = tmp_path / "mountinfo"  # type: ignore[operator]
    info.write_text("22 1 0:21 / /proc rw - proc proc rw\n"
                    "30 1 0:30 / /var/lib/lxc/c1/rootfs/mnt\\040x rw - tmpfs t rw\n"
                    "31 1 0:31 / /var/lib/lxc/c10 rw - tmpfs t rw\n")
    assert _containers.mounts_under("/var/lib/lxc/c1", str(info)) == [
        "/var/lib/lxc/c1/rootfs/mnt x"]


@pytest.mark.parametrize("command", ["start", "stop", "restart", "enable", "disable", "ls",
                                     "info", "wait", "monitor", "attach", "create", "copy",
                                     "destroy"])
def test_every_command_has_help_with_examples(command: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out
