"""lxc.hook.*: argv and environment as liblxc builds them, and real hook programs run
through lxcsd.runtime.hooks (fork + exec, no shell)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxcsd.config.load import load_path
from lxcsd.errors import LxcsdError
from lxcsd.runtime import hooks
from lxcsd.runtime.compiler import hook_set

RECORDER = """#!/bin/sh
out="$(dirname "$0")/record.$LXC_NAME"
{
  echo "argv: $*"
  env | grep -E '^(LXC_|FOO=|BAR=|container=)' | sort
  echo "--"
} >> "$out"
exit ${HOOK_EXIT:-0}
"""


def container(tmp_path: Path, body: str, name: str = "c1") -> hooks.HookSet:
    """The hooks of a config, as the start plan carries them (and back from its file)."""
    config = tmp_path / "config"
    config.write_text("lxc.rootfs.path = dir:/srv/c1/rootfs\n" + body)
    found: hooks.HookSet = hooks.HookSet.load(hook_set(load_path(str(config), name=name)).dump())
    return found


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    script = tmp_path / "hook.sh"
    script.write_text(RECORDER)
    script.chmod(0o755)
    return script


def records(tmp_path: Path, name: str = "c1") -> list[str]:
    text = (tmp_path / f"record.{name}").read_text()
    return [block.strip() for block in text.split("--") if block.strip()]


def test_version0_passes_name_section_type_as_arguments(tmp_path: Path, recorder: Path) -> None:
    c = container(tmp_path, f"lxc.hook.pre-start = {recorder} first 'two words'\n")
    hooks.run(c, "pre-start", rootfs_mount="/mnt/root")
    (block,) = records(tmp_path)
    lines = block.splitlines()
    assert lines[0] == "argv: first two words c1 lxc pre-start"
    assert "LXC_HOOK_VERSION=0" in lines
    assert "LXC_NAME=c1" in lines
    assert f"LXC_CONFIG_FILE={tmp_path / 'config'}" in lines
    assert "LXC_ROOTFS_MOUNT=/mnt/root" in lines
    assert "LXC_ROOTFS_PATH=dir:/srv/c1/rootfs" in lines
    assert not any(line.startswith("LXC_HOOK_TYPE=") for line in lines)


def test_version1_passes_everything_in_the_environment(tmp_path: Path, recorder: Path) -> None:
    c = container(tmp_path, f"lxc.hook.version = 1\nlxc.hook.start-host = {recorder}\n")
    hooks.run(c, "start-host", rootfs_mount="/r", extra_env={"LXC_PID": "4242"})
    lines = records(tmp_path)[0].splitlines()
    assert lines[0] == "argv: "
    for expected in ("LXC_HOOK_VERSION=1", "LXC_HOOK_TYPE=start-host", "LXC_HOOK_SECTION=lxc",
                     "LXC_PID=4242"):
        assert expected in lines


def test_hooks_run_in_order_and_the_first_failure_stops(tmp_path: Path,
                                                        recorder: Path) -> None:
    c = container(tmp_path, f"lxc.hook.post-stop = {recorder} one\n"
                            f"lxc.hook.post-stop = /bin/false\n"
                            f"lxc.hook.post-stop = {recorder} three\n")
    with pytest.raises(LxcsdError) as err:
        hooks.run(c, "post-stop", rootfs_mount="/r")
    assert str(err.value) == (f"{tmp_path / 'config'}:3: lxc.hook.post-stop: '/bin/false' "
                              "exited with status 1")
    assert [b.splitlines()[0] for b in records(tmp_path)] == ["argv: one c1 lxc post-stop"]


def test_a_missing_program_names_the_hook_line(tmp_path: Path) -> None:
    c = container(tmp_path, "lxc.hook.pre-start = /nonexistent/hook arg\n")
    with pytest.raises(LxcsdError) as err:
        hooks.run(c, "pre-start", rootfs_mount="/r")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'config'}:2: lxc.hook.pre-start: ")
    assert "could not be executed: /nonexistent/hook: No such file or directory" in message


def test_a_killed_hook_fails(tmp_path: Path) -> None:
    script = tmp_path / "die.sh"
    script.write_text("#!/bin/sh\nkill -9 $$\n")
    script.chmod(0o755)
    c = container(tmp_path, f"lxc.hook.mount = {script}\n")
    with pytest.raises(LxcsdError, match="was killed by signal 9"):
        hooks.run(c, "mount", rootfs_mount="/r")


def test_program_found_in_path_without_a_shell(tmp_path: Path, recorder: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    # $HOME is not expanded: no shell runs the command line.
    c = container(tmp_path, "lxc.hook.pre-start = hook.sh $HOME\n")
    hooks.run(c, "pre-start", rootfs_mount="/r")
    assert records(tmp_path)[0].splitlines()[0] == "argv: $HOME c1 lxc pre-start"


def test_environment_hooks_for_every_hook_environment_only_for_start(tmp_path: Path) -> None:
    c = container(tmp_path, "lxc.environment = FOO=init\nlxc.environment.hooks = BAR=hook\n")
    host = hooks.hook_env(c, "pre-start", rootfs_mount="/r", base={"PATH": "/bin"})
    assert host["BAR"] == "hook" and "FOO" not in host and host["PATH"] == "/bin"
    start = hooks.hook_env(c, "start", rootfs_mount="/r")
    assert start["FOO"] == "init" and start["BAR"] == "hook"
    assert start["container"] == "lxc"
    # the start hook runs inside the container: none of the host's variables
    assert "HOME" not in start and start["PATH"] == hooks.CONTAINER_PATH


def test_environment_name_alone_takes_the_helpers_value(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSED", "from-host")
    c = container(tmp_path, "lxc.environment.hooks = PASSED\nlxc.environment.hooks = UNSET_X\n")
    env = hooks.hook_env(c, "stop", rootfs_mount="/r", base={})
    assert env["PASSED"] == "from-host" and "UNSET_X" not in env


def test_extra_arguments_follow_the_version0_arguments(tmp_path: Path) -> None:
    c = container(tmp_path, "lxc.hook.stop = /bin/true\n")
    argv = hooks.hook_argv(c, "stop", ("/bin/hook", "x"), ["net:/proc/9/fd/4"])
    assert argv == ["/bin/hook", "x", "c1", "lxc", "stop", "net:/proc/9/fd/4"]


def test_no_hooks_no_process(tmp_path: Path) -> None:
    c = container(tmp_path, "")
    hooks.run(c, "pre-start", rootfs_mount="/r")  # nothing configured: nothing to run
    with pytest.raises(LxcsdError, match="unknown hook type"):
        hooks.run(c, "pre-stop", rootfs_mount="/r")


def test_console_variables(tmp_path: Path) -> None:
    c = container(tmp_path, "lxc.console.path = none\nlxc.console.logfile = /var/log/c1\n")
    env = hooks.hook_env(c, "pre-start", rootfs_mount="/r", base={})
    assert env["LXC_CONSOLE"] == "none"
    assert env["LXC_CONSOLE_LOGPATH"] == "/var/log/c1"
    assert env.get("LXC_CGNS_AWARE") == ("1" if os.path.exists("/proc/self/ns/cgroup") else None)
