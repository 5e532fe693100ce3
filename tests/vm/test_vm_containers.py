"""Containers under a full cgroup2 tree: the nested VM (tests/infra/vm), lxcsd installed by
packaging/install.sh, `systemctl start lxc@NAME` as a user does. One VM for the module.

- ``lxc.cgroup2.memory.max`` holds: an allocation past it inside the container is OOM-killed
  (the container's memory.events counts it), init and the unit survive.
- ``lxc.cgroup2.pids.max`` holds: a fork loop gets EAGAIN past the limit, the unit survives.
- a systemd inside (Debian) manages its own delegated subtree: its units' cgroups appear
  under the payload cgroup, with the limits it sets on them.

Commands run "in the container" join init's namespaces *and* its payload cgroup (what
lxc-attach does), otherwise the container's limits would not apply to them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.vm.vm import VM, Result

LXCPATH = "/var/lib/lxc"
GUEST_SRC = "/usr/src/lxcsd"  # where VM.install_lxcsd puts this tree
SLICE = "/sys/fs/cgroup/machine.slice"
MiB = 1 << 20

BASE = """lxc.rootfs.path = dir:{root}
lxc.uts.name = {name}
lxc.net.0.type = empty
lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed
lxc.pty.max = 16
lxc.tty.max = 1
"""


@pytest.fixture(scope="module")
def machine(lxcsd_vm: VM) -> Iterator[VM]:
    yield lxcsd_vm


def unit(name: str) -> str:
    return f"lxc@{name}.service"


def payload(name: str) -> str:
    return f"{SLICE}/{unit(name)}/lxc.payload.{name}"


def show(vm: VM, name: str, *props: str) -> dict[str, str]:
    out = vm.systemctl("show", unit(name), "-p", ",".join(props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def busybox(vm: VM, name: str, extra: str) -> None:
    root = f"{LXCPATH}/{name}/rootfs"
    vm.run(["/usr/bin/python3", "-c",
            "import sys; sys.path.insert(0, sys.argv[1]);"
            "from tests.infra import rootfs; rootfs.busybox_rootfs(sys.argv[2], sys.argv[3])",
            GUEST_SRC, root, name])
    vm.write_file(f"{LXCPATH}/{name}/config", BASE.format(root=root, name=name) + extra)


def start(vm: VM, name: str) -> int:
    vm.systemctl("daemon-reload")
    r = vm.systemctl("start", unit(name), check=False)
    assert r.returncode == 0, vm.journal(unit(name), 60)
    props = show(vm, name, "ActiveState", "MainPID")
    assert props["ActiveState"] == "active", vm.journal(unit(name), 60)
    return int(props["MainPID"])


def stop(vm: VM, name: str) -> None:
    vm.systemctl("stop", unit(name), check=False)
    gone = vm.run(["test", "-e", f"{SLICE}/{unit(name)}"], check=False).returncode != 0
    assert gone, f"{SLICE}/{unit(name)} left after stop"


def in_container(vm: VM, name: str, script: str, timeout: float = 120.0) -> Result:
    """script by the container's /bin/sh, in its namespaces and its payload cgroup (in a
    ``.lxc`` leaf, as lxc-attach, once a systemd inside has enabled controllers there)."""
    pid = show(vm, name, "MainPID")["MainPID"]
    outer = ('cg="$1"; if [ -n "$(cat "$cg/cgroup.subtree_control")" ]; then '
             'cg="$cg/.lxc"; mkdir -p "$cg"; fi; '
             'echo $$ > "$cg/cgroup.procs" && exec nsenter -t "$2" -a -- /bin/sh -c "$3"')
    return vm.run(["/bin/sh", "-c", outer, "sh", payload(name), pid, script], check=False,
                  timeout=timeout)


def cgroup_value(vm: VM, path: str) -> str:
    return vm.read_file(path).strip()


def events(vm: VM, path: str) -> dict[str, int]:
    pairs = (line.split() for line in vm.read_file(path).splitlines())
    return {key: int(value) for key, value in pairs}


# ------------------------------------------------------------------------------------------


def test_memory_max_is_enforced_inside(machine: VM) -> None:
    vm = machine
    busybox(vm, "mem1", "lxc.cgroup2.memory.max = 32M\nlxc.cgroup2.memory.swap.max = 0\n")
    init = start(vm, "mem1")
    assert cgroup_value(vm, f"{payload('mem1')}/memory.max") == str(32 * MiB)
    # lxcsd info shows usage with the limits (lxc-info shows none): the payload's here.
    info = vm.run(["lxcsd", "info", "mem1"]).stdout
    assert re.search(r"^Memory use:\s+[\d.]+\w+ \(limit 32\.00MiB\)$", info, re.M), info
    assert re.search(r"^Swap use:\s+\S+ \(limit 0B\)$", info, re.M), info
    # The container sees its own cgroup root with the limit (cgroup namespace).
    seen = in_container(vm, "mem1", "cat /sys/fs/cgroup/memory.max")
    assert seen.stdout.strip() == str(32 * MiB), seen
    # Within the limit: fine. Past it: the allocating process is OOM-killed (SIGKILL, 137).
    small = in_container(vm, "mem1", "dd if=/dev/zero of=/dev/null bs=8M count=1; echo rc=$?")
    assert "rc=0" in small.stdout, small
    big = in_container(vm, "mem1", "dd if=/dev/zero of=/dev/null bs=64M count=1; echo rc=$?")
    assert "rc=137" in big.stdout, big
    assert events(vm, f"{payload('mem1')}/memory.events")["oom_kill"] >= 1
    # The container's init and its unit survive the OOM kill.
    assert show(vm, "mem1", "ActiveState", "MainPID") == {"ActiveState": "active",
                                                          "MainPID": str(init)}
    # A reboot inside restarts the unit (the helper enabled the memory controller in the
    # unit's cgroup: the next start must still find its place) and the limit holds again.
    in_container(vm, "mem1", "/sbin/reboot")
    deadline = time.monotonic() + 60
    while show(vm, "mem1", "NRestarts")["NRestarts"] != "1" and time.monotonic() < deadline:
        time.sleep(0.5)
    while show(vm, "mem1", "ActiveState")["ActiveState"] != "active" \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    after = show(vm, "mem1", "ActiveState", "MainPID", "NRestarts")
    assert after["ActiveState"] == "active" and after["NRestarts"] == "1", \
        (after, vm.journal(unit("mem1"), 40))
    assert after["MainPID"] != str(init)
    assert cgroup_value(vm, f"{payload('mem1')}/memory.max") == str(32 * MiB)
    stop(vm, "mem1")
    assert show(vm, "mem1", "ActiveState", "Result") == {"ActiveState": "inactive",
                                                         "Result": "success"}


def test_pids_max_holds_a_fork_loop(machine: VM) -> None:
    vm = machine
    busybox(vm, "pid1", "lxc.cgroup2.pids.max = 20\n")
    init = start(vm, "pid1")
    assert cgroup_value(vm, f"{payload('pid1')}/pids.max") == "20"
    # 40 background sleepers: forks past the limit fail with EAGAIN in the shell.
    # 40 sleepers wanted; ash gives up at the first fork that fails. They outlive it.
    loop = "i=0; while [ $i -lt 40 ]; do i=$((i+1)); sleep 30 >/dev/null 2>&1 & done"
    r = in_container(vm, "pid1", loop)
    assert "can't fork" in r.stderr or "Resource temporarily unavailable" in r.stderr, r
    current = int(cgroup_value(vm, f"{payload('pid1')}/pids.current"))
    assert 15 <= current <= 20, (current, r)  # it got to the limit, never past it
    # The tightest of the unit's TasksMax= (16384) and the config's pids.max.
    info = vm.run(["lxcsd", "info", "pid1"]).stdout
    assert re.search(r"^Processes:\s+\d+ \(limit 20\)$", info, re.M), info
    assert events(vm, f"{payload('pid1')}/pids.events")["max"] >= 1
    assert show(vm, "pid1", "ActiveState", "MainPID") == {"ActiveState": "active",
                                                          "MainPID": str(init)}
    stop(vm, "pid1")


def test_systemd_inside_manages_its_delegated_subtree(machine: VM, debian_root: Path) -> None:
    vm = machine
    root = f"{LXCPATH}/deb1/rootfs"
    vm.put_tree(debian_root, root)
    # A memory setting makes the helper enable the memory controller down to the payload
    # (lxcsd enables what lxc.cgroup2.* needs; liblxc enables every controller).
    vm.write_file(f"{LXCPATH}/deb1/config", BASE.format(root=root, name="deb1")
                  + "lxc.cgroup2.memory.max = 1G\n")
    start(vm, "deb1")
    # Wait for the container's systemd to finish booting (its own view, via its bus).
    deadline = time.monotonic() + 240
    state = ""
    while time.monotonic() < deadline:
        state = in_container(vm, "deb1", "systemctl is-system-running 2>&1").stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(2)
    assert state in ("running", "degraded"), (state, vm.journal(unit("deb1"), 80))
    # Commands we run join a .lxc leaf beside the guest's own init.scope (as lxc-attach).
    # Its /sys/fs/cgroup is its own subtree, holding its own units.
    inside = in_container(vm, "deb1", "ls /sys/fs/cgroup").stdout.split()
    assert {"init.scope", "system.slice"} <= set(inside), inside
    # A unit it starts with a limit gets its own cgroup, seen from the host under the payload.
    run = in_container(vm, "deb1", "systemd-run --unit=limited -p MemoryMax=20M sleep 300")
    assert run.returncode == 0, run
    host_path = f"{payload('deb1')}/system.slice/limited.service"
    assert cgroup_value(vm, f"{host_path}/memory.max") == str(20 * MiB)
    assert vm.read_file(f"{host_path}/cgroup.procs").split(), "the sleep is not in it"
    # And the host's systemd still sees one unit, active, whose main process is that init.
    assert show(vm, "deb1", "ActiveState")["ActiveState"] == "active"
    stop(vm, "deb1")
    assert show(vm, "deb1", "ActiveState", "Result") == {"ActiveState": "inactive",
                                                         "Result": "success"}


def test_cgroup_v1_keys_are_translated_and_enforced(machine: VM) -> None:
    """A config written for cgroup v1 (common with LXC 3/4 era configs) runs with the
    cgroup2 equivalents, each announced in the unit's journal with the line to write."""
    vm = machine
    busybox(vm, "v1a", "lxc.cgroup.memory.limit_in_bytes = 32M\nlxc.cgroup.cpu.shares = 512\n"
            "lxc.cgroup.pids.max = 50\nlxc.cgroup.cpu.cfs_quota_us = 50000\n")
    start(vm, "v1a")
    assert cgroup_value(vm, f"{payload('v1a')}/memory.max") == str(32 * MiB)
    assert cgroup_value(vm, f"{payload('v1a')}/cpu.weight") == "20"  # 1 + 510*9999/262142
    assert cgroup_value(vm, f"{payload('v1a')}/pids.max") == "50"
    assert cgroup_value(vm, f"{payload('v1a')}/cpu.max") == "50000 100000"
    journal = vm.journal(unit("v1a"), 40)
    assert "lxc.cgroup.memory.limit_in_bytes: cgroup v1 key, applied as " \
        "lxc.cgroup2.memory.max = 32M" in journal, journal
    big = in_container(vm, "v1a", "dd if=/dev/zero of=/dev/null bs=64M count=1; echo rc=$?")
    assert "rc=137" in big.stdout, big  # the translated limit holds
    stop(vm, "v1a")


def test_a_limit_the_kernel_refuses_fails_the_start(machine: VM) -> None:
    """A value lxcsd cannot check (io.max for a device that does not exist) is written at
    start: the kernel's refusal fails the start naming the key, and nothing is left."""
    vm = machine
    busybox(vm, "v1b", "lxc.cgroup2.io.max = 259:99 rbps=1000\n")
    vm.systemctl("daemon-reload")
    assert vm.systemctl("start", unit("v1b"), check=False).returncode != 0
    journal = vm.journal(unit("v1b"), 40)
    assert "lxc.cgroup2.io.max: cannot write '259:99 rbps=1000'" in journal, journal
    assert show(vm, "v1b", "ActiveState")["ActiveState"] == "failed"
    assert vm.run(["test", "-e", f"{SLICE}/{unit('v1b')}"], check=False).returncode != 0
