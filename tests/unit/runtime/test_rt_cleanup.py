"""lxcsd-helper cleanup: the stopped line from systemd's variables, LXC_TARGET, post-stop
hooks, the leaf list and the state directory removal (the real cgroup tree and systemd are
exercised in tests/sandbox/test_supervision.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcsd.config.load import load_path
from lxcsd.runtime import cleanup, state
from lxcsd.runtime.compiler import hook_set


@pytest.mark.parametrize(("env", "text"), [
    ({"SERVICE_RESULT": "success", "EXIT_CODE": "killed", "EXIT_STATUS": "INT"},
     "status success, init killed by SIGINT: halt/poweroff"),
    ({"SERVICE_RESULT": "success", "EXIT_CODE": "killed", "EXIT_STATUS": "HUP"},
     "status success, init killed by SIGHUP: reboot"),
    ({"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "3"},
     "status exit-code, init exited with status 3"),
    ({"SERVICE_RESULT": "core-dump", "EXIT_CODE": "dumped", "EXIT_STATUS": "SEGV"},
     "status core-dump, init dumped core on SIGSEGV"),
    ({"SERVICE_RESULT": "signal", "EXIT_CODE": "killed", "EXIT_STATUS": "KILL"},
     "status signal, init killed by SIGKILL"),
    ({}, "status unknown"),
])
def test_describe_exit(env: dict[str, str], text: str) -> None:
    assert cleanup.describe_exit(env) == text


def test_describe_a_start_that_failed() -> None:
    env = {"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "1"}
    assert cleanup.describe_exit(env, started=False) == \
        "status exit-code, the helper exited with status 1, before init ran"
    env = {"SERVICE_RESULT": "signal", "EXIT_CODE": "killed", "EXIT_STATUS": "KILL"}
    assert cleanup.describe_exit(env, started=False) == \
        "status signal, the helper killed by SIGKILL, before init ran"


def test_target() -> None:
    assert cleanup.target({"EXIT_CODE": "killed", "EXIT_STATUS": "HUP"}) == "reboot"
    assert cleanup.target({"EXIT_CODE": "killed", "EXIT_STATUS": "INT"}) == "stop"
    assert cleanup.target({}) == "stop"


def test_leaves_leave_systemds_control_group(tmp_path: Path) -> None:
    for name in (".control", "lxc.monitor.c1", "lxc.payload.c1"):
        (tmp_path / name).mkdir()
    (tmp_path / "cgroup.procs").write_text("")
    assert cleanup.leaves(str(tmp_path)) == [str(tmp_path / "lxc.monitor.c1"),
                                             str(tmp_path / "lxc.payload.c1")]
    assert cleanup.leaves(str(tmp_path / "gone")) == []


def test_remove_tree_is_idempotent(tmp_path: Path) -> None:
    state = tmp_path / "c1"
    (state / "sub").mkdir(parents=True)
    (state / "sub/file").write_text("x")
    (state / "link").symlink_to("/etc")
    cleanup.remove_tree(str(state))
    assert not state.exists()
    assert Path("/etc").is_dir()
    cleanup.remove_tree(str(state))


def test_post_stop_hook_gets_target(tmp_path: Path) -> None:
    record = tmp_path / "out"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$LXC_HOOK_TYPE $LXC_TARGET $LXC_NAME\" > {record}\n")
    hook.chmod(0o755)
    config = tmp_path / "config"
    config.write_text(f"lxc.rootfs.path = /srv\nlxc.hook.version = 1\n"
                      f"lxc.hook.post-stop = {hook}\n")
    c = load_path(str(config), name="c1")
    assert cleanup.post_stop_hooks(hook_set(c), {"EXIT_CODE": "killed", "EXIT_STATUS": "HUP"})
    assert record.read_text() == "post-stop reboot c1\n"


def test_failing_post_stop_hook_is_reported(tmp_path: Path,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    config.write_text("lxc.rootfs.path = /srv\nlxc.hook.post-stop = /bin/false\n")
    c = load_path(str(config), name="c1")
    assert not cleanup.post_stop_hooks(hook_set(c), {})
    assert (f"lxcsd: c1 post-stop hook failed: {config}:2: lxc.hook.post-stop: '/bin/false' "
            "exited with status 1") in capfd.readouterr().err


def test_read_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXCSD_RUN_DIR", str(tmp_path))
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1/state").write_text("name=c1\npayload_cgroup=/sys/fs/cgroup/x/lxc.payload.c1\n"
                                       "ifaces=\nnonsense\n")
    assert state.read("c1") == {
        "name": "c1", "payload_cgroup": "/sys/fs/cgroup/x/lxc.payload.c1", "ifaces": ""}
    assert state.read("gone") is None


def test_never_the_callers_cgroup_tree_outside_the_unit() -> None:
    # pytest does not run in lxc@c1.service: its cgroup's children are not ours to remove
    assert cleanup.unit_cgroup_dir("c1") is None


def test_state_dir_follows_lxcsd_run_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXCSD_RUN_DIR", "/tmp/x")
    assert state.state_dir("c1") == "/tmp/x/c1"
    monkeypatch.delenv("LXCSD_RUN_DIR")
    assert state.state_dir("c1") == "/run/lxcsd/c1"


@pytest.mark.parametrize(("fields", "wanted"), [
    ({"post_stop_hooks": "0"}, False),
    ({"post_stop_hooks": "1"}, True),
    ({"name": "c1"}, True),  # an older state format: only the config can tell
    ({}, True),              # no state file: a start that failed before init ran
])
def test_wants_hooks(fields: dict[str, str], wanted: bool) -> None:
    assert cleanup.wants_hooks(fields) is wanted


@pytest.mark.parametrize(("recorded", "runs"), [("0", False), ("1", True), (None, True)])
def test_post_stop_hooks_as_the_state_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              recorded: str | None, runs: bool) -> None:
    # The config has a post-stop hook now; whether it runs follows what the start recorded
    # (None: no state file, the config decides).
    monkeypatch.setenv("LXCSD_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path / "lxc"))
    record = tmp_path / "out"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$LXC_HOOK_TYPE\" > {record}\n")
    hook.chmod(0o755)
    (tmp_path / "lxc/c1").mkdir(parents=True)
    (tmp_path / "lxc/c1/config").write_text(f"lxc.rootfs.path = /srv\nlxc.hook.version = 1\n"
                                            f"lxc.hook.post-stop = {hook}\n")
    if recorded is not None:
        state.write("c1", {"name": "c1", "init_pid": 4242, "halt_signal": "",
                           "stop_hooks": "0", "post_stop_hooks": recorded})
    assert cleanup.main("c1") == 0
    if runs:
        assert record.read_text() == "post-stop\n"
    else:
        assert not record.exists()
    assert not (tmp_path / "run/c1").exists()


def test_config_fields_the_start_records(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("lxc.rootfs.path = /srv\nlxc.signal.halt = SIGUSR1\n"
                      "lxc.signal.stop = SIGINT\nlxc.hook.post-stop = /bin/true\n")
    fields = state.config_fields(load_path(str(config), name="c1"))
    assert fields == {"halt_signal": 10, "stop_signal": 2, "stop_hooks": 0,
                      "post_stop_hooks": 1}
    config.write_text("lxc.rootfs.path = /srv\nlxc.hook.stop = /bin/true\n")
    text = state.format_state(state.config_fields(load_path(str(config), name="c1")))
    assert text == "halt_signal=\nstop_signal=\nstop_hooks=1\npost_stop_hooks=0\n"
    assert state.recorded_signal(state.parse_state(text), "halt_signal") == (True, None)


def test_container_name_of_an_instance_string() -> None:
    # stop and cleanup must run for any instance systemd gives them
    assert state.container_name("c1") == "c1"
    assert state.container_name(r"web\x20old") == "web old"
    assert state.container_name("a\\") == "a\\"  # unescape refuses it: used as given
