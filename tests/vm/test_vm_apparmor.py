"""``lxc.apparmor.profile = generated`` on a kernel with AppArmor: the nested VM (Debian's cloud
kernel enables AppArmor; its image has the apparmor package). This host has no AppArmor.

A privileged busybox container with ``proc:rw`` (so nothing but AppArmor stands between its
root and the host's kernel.core_pattern) runs probes as its init, before busybox init: write
core_pattern, mount a second proc, remount /proc read-only. Under the generated profile all
three are refused and the kernel logs the denials; the same config with ``unconfined`` does
all three. ``lxcsd attach`` runs its command under the same label as init. The profile is
loaded at start (with the container's own policy namespace: the cloud kernel stacks) and
unloaded at stop.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.e2e_util import SHIFT
from tests.infra.vm.vm import VM

LXCPATH = "/var/lib/lxc"
GUEST_SRC = "/usr/src/lxcsd"
SECURITYFS = "/sys/kernel/security/apparmor"
LXCSD = "/usr/local/bin/lxcsd"

PROBE_INIT = """#!/bin/sh
# Run by lxcsd as init (under the label the helper set for the exec), then busybox init.
{
cat /proc/self/attr/current
if cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern; then
    echo core_pattern=written; else echo core_pattern=refused; fi
mkdir -p /mnt/p
if mount -t proc proc /mnt/p; then echo proc_elsewhere=mounted; umount /mnt/p
    else echo proc_elsewhere=refused; fi
if mount -o remount,ro /proc; then echo proc_remount=done; mount -o remount,rw /proc
    else echo proc_remount=refused; fi
echo done
} > /probe.out 2>&1
exec /sbin/init
"""
# Writes core_pattern's own value back: a write that changes nothing on the VM.
ATTACH_PROBE = "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern && echo written"
CONFIG = """lxc.rootfs.path = dir:{root}
lxc.uts.name = {name}
lxc.net.0.type = empty
lxc.mount.auto = proc:rw sys:mixed cgroup:mixed
lxc.pty.max = 16
lxc.tty.max = 1
lxc.init.cmd = /sbin/probeinit
lxc.signal.halt = SIGUSR1
lxc.apparmor.profile = {profile}
"""


@pytest.fixture(scope="module")
def machine(lxcsd_vm: VM) -> Iterator[VM]:
    yield lxcsd_vm


def unit(name: str) -> str:
    return f"lxc@{name}.service"


def make(vm: VM, name: str, profile: str, extra: str = "") -> None:
    root = f"{LXCPATH}/{name}/rootfs"
    vm.run(["/usr/bin/python3", "-c",
            "import sys; sys.path.insert(0, sys.argv[1]);"
            "from tests.infra import rootfs; rootfs.busybox_rootfs(sys.argv[2], sys.argv[3])",
            GUEST_SRC, root, name])
    vm.write_file(f"{root}/sbin/probeinit", PROBE_INIT, 0o755)
    vm.write_file(f"{LXCPATH}/{name}/config",
                  CONFIG.format(root=root, name=name, profile=profile) + extra)
    vm.systemctl("daemon-reload")


def start(vm: VM, name: str) -> dict[str, str]:
    """Start it; the probes' results by name (and "label": init's AppArmor label)."""
    r = vm.systemctl("start", unit(name), check=False)
    assert r.returncode == 0, vm.journal(unit(name), 60)
    probe = f"{LXCPATH}/{name}/rootfs/probe.out"
    out = ""
    for _ in range(100):
        out = vm.run(["cat", probe], check=False).stdout
        if out.endswith("done\n"):
            break
        vm.run(["sleep", "0.2"])
    lines = out.splitlines()
    assert lines and lines[-1] == "done", out
    results = dict(line.split("=", 1) for line in lines if "=" in line)
    results["label"] = lines[0]
    return results


def loaded(vm: VM) -> str:
    return vm.read_file(f"{SECURITYFS}/profiles")


def test_generated_profile_refuses_what_unconfined_allows(machine: VM) -> None:
    vm = machine
    make(vm, "aa1", "generated")
    profile = "lxc-aa1_</var/lib/lxc>"
    namespace = "lxc-aa1_<-var-lib-lxc>"
    confined = start(vm, "aa1")
    # Seen from the host, init is confined by the profile stacked with its namespace;
    # inside, a task sees only its own namespace's part of the label: "unconfined".
    init = vm.systemctl("show", "-p", "MainPID", "--value", unit("aa1")).stdout.strip()
    host_view = vm.read_file(f"/proc/{init}/attr/current").strip()
    assert host_view.startswith(f"{profile}//&:{namespace}"), host_view
    assert confined["label"] == "unconfined", confined
    assert (confined["core_pattern"], confined["proc_elsewhere"], confined["proc_remount"]) \
        == ("refused", "refused", "refused"), confined
    denials = vm.run(["journalctl", "-k", "--no-pager", "-o", "cat",
                      "--grep", 'apparmor="DENIED"']).stdout
    assert f'profile="{profile}"' in denials and 'operation="mount"' in denials, denials
    assert f"{profile} (enforce)" in loaded(vm)
    assert vm.run(["test", "-d", f"{SECURITYFS}/policy/namespaces/{namespace}"],
                  check=False).returncode == 0
    # lxcsd attach: the command runs under init's label, with the same refusals.
    r = vm.run([LXCSD, "attach", "aa1", "--", "sh", "-c", ATTACH_PROBE], check=False)
    assert "written" not in r.stdout and "Permission denied" in r.stderr, r
    # Stop: the profile and the container's namespace are unloaded.
    vm.systemctl("stop", unit("aa1"))
    assert profile not in loaded(vm)
    assert vm.run(["test", "-e", f"{SECURITYFS}/policy/namespaces/{namespace}"],
                  check=False).returncode != 0
    # The same probes, unconfined: every one goes through.
    vm.run(["sed", "-i", "s/^lxc.apparmor.profile = .*/lxc.apparmor.profile = unconfined/",
            f"{LXCPATH}/aa1/config"])
    free = start(vm, "aa1")
    assert free["label"] == "unconfined", free
    assert (free["core_pattern"], free["proc_elsewhere"], free["proc_remount"]) == \
        ("written", "mounted", "done"), free
    r = vm.run([LXCSD, "attach", "aa1", "--", "sh", "-c", ATTACH_PROBE], check=False)
    assert "written" in r.stdout, r
    vm.systemctl("stop", unit("aa1"))


def test_nesting_keeps_core_pattern_denied_and_helpers_mounted(machine: VM) -> None:
    """Debian's default.conf: generated + allow_nesting. Nesting allows any mount (as LXC:
    a nested container's remounts cannot be told apart), but /proc/sys stays denied, and
    proc/sysfs for a nested container sit at /dev/.lxc/{proc,sys}, themselves denied."""
    vm = machine
    make(vm, "aa2", "generated", "lxc.apparmor.allow_nesting = 1\n")
    results = start(vm, "aa2")
    assert results["core_pattern"] == "refused" and results["proc_elsewhere"] == "mounted", \
        results
    r = vm.run([LXCSD, "attach", "aa2", "--", "sh", "-c",
                "grep -c ' /dev/.lxc/' /proc/self/mountinfo; cat /dev/.lxc/proc/uptime"],
               check=False)
    assert r.stdout.splitlines()[0] == "2" and "Permission denied" in r.stderr, r
    vm.systemctl("stop", unit("aa2"))
    assert "lxc-aa2_" not in loaded(vm)


def test_a_failed_load_fails_the_start_and_leaves_nothing(machine: VM) -> None:
    vm = machine
    make(vm, "aa3", "generated", "lxc.apparmor.raw = this is not a rule\n")
    r = vm.systemctl("start", unit("aa3"), check=False)
    assert r.returncode != 0
    journal = vm.journal(unit("aa3"), 40)
    assert "apparmor_parser could not load" in journal, journal
    assert "lxc-aa3_" not in loaded(vm)
    assert vm.run(["test", "-e", f"{SECURITYFS}/policy/namespaces/lxc-aa3_<-var-lib-lxc>"],
                  check=False).returncode != 0


def test_unprivileged_container_under_the_generated_profile(machine: VM) -> None:
    """An lxc.idmap container: the profile gets the unprivileged rules, init and attached
    commands (which join the user namespace first) run under it."""
    vm = machine
    make(vm, "aa4", "generated", "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n")
    vm.run(["python3", "-c", SHIFT, f"{LXCPATH}/aa4/rootfs", "100000"])
    vm.run(["chown", "100000:100000", f"{LXCPATH}/aa4"])
    results = start(vm, "aa4")
    assert results["core_pattern"] == "refused", results  # (not root outside: DAC too)
    init = vm.systemctl("show", "-p", "MainPID", "--value", unit("aa4")).stdout.strip()
    assert vm.read_file(f"/proc/{init}/attr/current").startswith("lxc-aa4_</var/lib/lxc>//&:")
    profile = vm.read_file("/var/lib/lxcsd/apparmor/lxc-aa4_<-var-lib-lxc>")
    assert "unprivileged container" in profile
    assert vm.run([LXCSD, "attach", "aa4", "--", "id", "-u"]).stdout.strip() == "0"
    # A command that stays: its label, read from the host (inside it reads "unconfined").
    vm.run(["systemd-run", "--unit=aa4-attach", LXCSD, "attach", "aa4", "--", "sleep", "120"])
    sleeper = ""
    for _ in range(100):
        sleeper = vm.run(["pgrep", "-n", "-x", "sleep"], check=False).stdout.strip()
        if sleeper:
            break
        vm.run(["sleep", "0.2"])
    assert vm.read_file(f"/proc/{sleeper}/attr/current").startswith("lxc-aa4_</var/lib/lxc>")
    vm.systemctl("stop", "aa4-attach.service", check=False)
    vm.systemctl("stop", unit("aa4"))
    assert "lxc-aa4_" not in loaded(vm)
