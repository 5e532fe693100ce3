"""A busybox container built with the primitives, privileged and in a user namespace:
what init sees (hostname, mounts, /dev, capabilities) and what the host sees."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lxcsd.runtime import mounts
from tests.integration.primitives import harness as h

pytestmark = pytest.mark.root

SHOW = """
echo hostname=$(hostname)
echo pid=$$
echo ids=$(/bin/probe ids)
cat /proc/self/mountinfo | awk '{print "mnt", $5, $6}'
ls -ln /dev | awk '{print "dev", $1, $3, $4, $5, $6, $NF}'
ls -ldn /dev/pts /dev/lxc/tty1 | awk '{print "owner", $NF, $1, $3, $4}'
for l in /dev/tty1 /dev/fd /dev/stdin; do echo link $l $(readlink $l); done
echo x > /dev/null && echo devnull-ok
head -c 4 /dev/urandom | wc -c | sed 's/^/urandom /'
echo > /proc/sys/kernel/domainname 2>/dev/null || echo proc-sys-ro
echo 1 > /proc/sysrq-trigger 2>/dev/null || echo sysrq-ro
touch /sys/kernel/x 2>/dev/null || echo sys-ro
ls /sys/firmware | wc -l | sed 's/^/firmware-entries /'
test -e /sys/fs/cgroup/cgroup.procs && echo cgroup2-mounted
"""


def _run(root: Path, **spec_args: Any) -> h.Result:
    spec = h.Spec(rootfs=str(root), argv=["/bin/sh", "-c", SHOW],
                  build=lambda ctx: h.busybox_build(ctx, hostname="bb1"), **spec_args)
    return h.run(spec).check()


def _tagged(result: h.Result, tag: str) -> list[list[str]]:
    return [f for f in (line.split() for line in result.lines) if f and f[0] == tag]


def _mounts(result: h.Result) -> dict[str, str]:
    return {f[1]: f[2] for f in _tagged(result, "mnt")}


def _devs(result: h.Result) -> dict[str, list[str]]:
    return {f[-1]: f for f in _tagged(result, "dev")}


def test_privileged_busybox(bb_root: Path) -> None:
    result = _run(bb_root)
    out = result.lines
    assert "hostname=bb1" in out
    assert "pid=1" in out
    assert "ids=uid=0 gid=0 euid=0 egid=0" in out
    mnts = _mounts(result)
    # /proc entries depend on the kernel's configuration (this VM's has no sysrq, kcore)
    expected = {"/", "/proc", "/proc/sys", "/proc/sys/net", "/sys", "/sys/devices/virtual/net",
                "/sys/fs/cgroup", "/dev", "/dev/pts", "/dev/ptmx", "/dev/console",
                "/dev/lxc/tty1", "/dev/lxc/tty2", "/dev/shm", "/dev/mqueue"}
    expected |= {p for p in mounts.MASKED_FILES + mounts.MASKED_PROC_DIRS
                 + mounts.MASKED_SYS_DIRS + mounts.READONLY_PROC_DIRS
                 + ("/proc/sysrq-trigger",) if os.path.exists(p)}
    assert set(mnts) >= expected
    assert mnts["/proc/sys"].startswith("ro,") and mnts["/proc/sys/net"].startswith("rw,")
    assert mnts["/sys"].startswith("ro,") and mnts["/sys/devices/virtual/net"].startswith("rw")
    assert "/tmp" not in mnts  # nothing of the host's tree is left
    assert {"proc-sys-ro", "sys-ro", "devnull-ok", "urandom 4", "firmware-entries 0",
            "cgroup2-mounted"} <= set(out)
    if os.path.exists("/proc/sysrq-trigger"):
        assert "sysrq-ro" in out
    devs = _devs(result)
    for name, major_minor in (("null", "1,3"), ("zero", "1,5"), ("full", "1,7"),
                              ("random", "1,8"), ("urandom", "1,9"), ("tty", "5,0")):
        assert devs[name][1] == "crw-rw-rw-" and "".join(devs[name][4:6]) == major_minor, name
    assert {"link /dev/tty1 lxc/tty1", "link /dev/fd /proc/self/fd",
            "link /dev/stdin /proc/self/fd/0"} <= set(out)
    assert "owner /dev/lxc/tty1 crw--w---- 0 5" in out  # a pty of the container's devpts
    assert result.build_ms is not None


def test_unprivileged_busybox(mapped_root: Path, subids: list[str]) -> None:
    result = _run(mapped_root, userns=h.DEFAULT_MAP, host_check=h.host_ps_uid)
    out = result.lines
    assert result.extra == "100000"  # ps -o uid on the host: the mapped container root
    assert "ids=uid=0 gid=0 euid=0 egid=0" in out and "hostname=bb1" in out
    mnts = _mounts(result)
    assert mnts["/proc/sys"].startswith("ro,") and mnts["/sys"].startswith("ro,")
    devs = _devs(result)
    # mknod is refused in a user namespace: the host's nodes are bind-mounted
    assert devs["null"][1] == "crw-rw-rw-" and devs["null"][2:4] == ["65534", "65534"]
    assert "owner /dev/pts drwxr-xr-x 0 0" in out  # the container's root owns it
    assert "devnull-ok" in out and "urandom 4" in out
