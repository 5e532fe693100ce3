"""The nested VM tier itself: it boots, runs commands, has cgroup2's memory/pids/cpu
controllers and enforces their limits, receives files, installs lxcsd, shuts down cleanly."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.infra.vm import vm as vm_module
from tests.infra.vm.vm import VM, VMCommandError

# Until tests/conftest.py lists the plugin (pytest ignores a second registration).
pytest_plugins = ["tests.infra.vm.fixtures"]


HOG = "b = []\nwhile True:\n    b.append(b'\\x01' * (1 << 20))\n"  # writes every page it gets


def unit_props(vm: VM, unit: str, *props: str) -> dict[str, str]:
    out = vm.systemctl("show", unit, "-p", ",".join(props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_boots_to_running(vm: VM) -> None:
    assert vm.running
    assert vm.system_state in ("running", "degraded")
    assert vm.run(["systemctl", "is-system-running"], check=False).stdout.strip() in (
        "running", "degraded")
    assert vm.image is not None
    assert vm.run(["uname", "-r"]).stdout.strip() == vm.image.kernel_version
    assert vm.run(["hostname"]).stdout.strip() == "lxcsd-vm"
    assert "lxcsd-vm login" in vm.console() or vm.console()  # the serial console is logged


def test_run_returns_status_and_output(vm: VM) -> None:
    rc, out, err = vm.run("echo out; echo err >&2; exit 3", check=False)
    assert (rc, out, err) == (3, "out\n", "err\n")
    assert vm.run(["cat"], input="über\n").stdout == "über\n"
    assert vm.run(["sh", "-c", 'echo "$X"'], env={"X": "y"}).stdout == "y\n"
    assert vm.run("kill -TERM $$", check=False).returncode == -15
    with pytest.raises(VMCommandError) as info:
        vm.run(["false"])
    assert info.value.returncode == 1


def test_run_timeout_kills_the_process_group(vm: VM) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        vm.run("sleep 301 & sleep 302; echo never", timeout=1.5)
    assert vm.run(["pgrep", "-f", "sleep 30[12]"], check=False).returncode == 1
    assert vm.run(["true"]).returncode == 0  # the agent is in step again


def test_cgroup2_has_memory_pids_cpu(vm: VM) -> None:
    assert vm.run(["stat", "-f", "-c", "%T", "/sys/fs/cgroup"]).stdout.strip() == "cgroup2fs"
    controllers = vm.read_file("/sys/fs/cgroup/cgroup.controllers").split()
    assert {"memory", "pids", "cpu"} <= set(controllers)


def test_memory_max_oom_kills_the_unit_not_the_vm(vm: VM) -> None:
    unit = "infra-memhog.service"
    r = vm.run(["systemd-run", "--wait", f"--unit={unit}", "-p", "MemoryMax=32M",
                "-p", "MemorySwapMax=0", "/usr/bin/python3", "-c", HOG],
               check=False, timeout=120)
    try:
        assert r.returncode != 0
        props = unit_props(vm, unit, "Result", "ExecMainStatus")
        assert props == {"Result": "oom-kill", "ExecMainStatus": "9"}, r.stderr
        kernel = vm.run(["dmesg"]).stdout
        assert f"oom_memcg=/system.slice/{unit}" in kernel
    finally:
        vm.run(["systemctl", "reset-failed", unit], check=False)
    assert vm.run(["true"]).returncode == 0
    assert vm.run(["systemctl", "is-system-running"], check=False).stdout.strip() in (
        "running", "degraded")


def test_pids_max_limits_forks(vm: VM) -> None:
    script = "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait"
    r = vm.run_in_unit(script, properties=["TasksMax=4"], check=False, timeout=60)
    assert "fork" in (r.stdout + r.stderr).lower(), r


def test_cpu_quota_throttles(vm: VM) -> None:
    # Burn CPU for 1.5 s under a 10 % quota, then read the unit's own cpu.stat.
    script = ('timeout 1.5 sh -c "while :; do :; done"; '
              'cat "/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/cpu.stat"')
    r = vm.run_in_unit(script, properties=["CPUQuota=10%"], timeout=60)
    stat = dict(line.split() for line in r.stdout.splitlines())
    assert int(stat["nr_throttled"]) > 0, r.stdout
    assert int(stat["usage_usec"]) < 1_000_000, r.stdout


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_put_tree_delivers_files(vm: VM, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub/deeper").mkdir(parents=True)
    (src / "a.txt").write_text("hello\n")
    (src / "sub/deeper/data.bin").write_bytes(os.urandom(300_000))
    tool = src / "sub/tool.sh"
    tool.write_text("#!/bin/sh\necho tool ran\n")
    tool.chmod(0o750)
    (src / "link").symlink_to("sub/tool.sh")
    (src / "ünïcode").write_text("ok\n")
    (src / "skip.pyc").write_text("ignored\n")

    vm.put_tree(src, "/srv/put-tree", ignore=("*.pyc",))
    assert vm.run(["/srv/put-tree/link"]).stdout == "tool ran\n"
    assert vm.run(["stat", "-c", "%a", "/srv/put-tree/sub/tool.sh"]).stdout.strip() == "750"
    listing = vm.run("cd /srv/put-tree && find . | sort").stdout.split()
    assert listing == sorted([".", "./a.txt", "./link", "./sub", "./sub/deeper",
                              "./sub/deeper/data.bin", "./sub/tool.sh", "./ünïcode"])
    guest_sum = vm.run(["sha256sum", "/srv/put-tree/sub/deeper/data.bin"]).stdout.split()[0]
    assert guest_sum == _digest(src / "sub/deeper/data.bin")
    # Unplugged again: only the root disk is left.
    assert vm.run("ls /sys/block | grep nvme").stdout.split() == ["nvme0n1"]


def test_put_tree_mounted_read_only(vm: VM, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x\n")
    vm.put_tree(tmp_path, "/mnt/ro-tree", copy=False)
    try:
        assert vm.read_file("/mnt/ro-tree/f") == "x\n"
        assert vm.run(["touch", "/mnt/ro-tree/new"], check=False).returncode != 0
    finally:
        vm.run(["umount", "/mnt/ro-tree"], check=False)


def test_install_lxcsd(lxcsd_vm: VM) -> None:
    venv = "/usr/local/lib/lxcsd/venv"
    for path in ("/usr/local/bin/lxcsd", "/usr/local/libexec/lxcsd/lxcsd-helper",
                 "/usr/local/lib/systemd/system-generators/lxcsd-generator"):
        assert lxcsd_vm.run(["test", "-x", path], check=False).returncode == 0, path
    out = lxcsd_vm.run([f"{venv}/bin/python", "-c",
                        "import lxcsd, pystemd, seccomp; print(lxcsd.__file__)"]).stdout
    assert out.startswith(f"{venv}/lib/")


def test_shutdown_stops_qemu_and_releases_the_lock(vm: VM) -> None:
    """Last: powers the session VM off (the fixture boots it again for later tests)."""
    pid = vm.pid
    assert pid is not None
    vm.shutdown()
    assert not vm.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with open(vm_module.LOCK_PATH) as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    assert vm.timings["shutdown"] < 60
    assert vm.ensure_running() is True
    assert vm.run(["true"]).returncode == 0
