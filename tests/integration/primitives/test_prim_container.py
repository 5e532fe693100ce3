"""A busybox container built with the primitives, privileged and in a user namespace:
what init sees (hostname, mounts, /dev, capabilities) and what the host sees."""

from __future__ import annotations

import os
import select
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from lxcsd import linux
from lxcsd.errors import LxcsdError
from lxcsd.runtime import dev, idmap, mounts
from tests.integration.primitives import harness as h

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


def test_files_made_inside_belong_to_the_mapped_root(mapped_root: Path,
                                                     subids: list[str]) -> None:
    script = "touch /root/made && mkdir /tmp/dir && ls -ln /root/made | awk '{print $3}'"
    result = h.run(h.Spec(rootfs=str(mapped_root), argv=["/bin/sh", "-c", script],
                          build=h.busybox_build, userns=h.DEFAULT_MAP)).check()
    assert result.lines == ["0"]  # root inside ...
    assert (mapped_root / "root/made").stat().st_uid == 100000  # ... 100000 on the host
    assert (mapped_root / "tmp/dir").stat().st_gid == 100000


def test_idmapped_rootfs(bb_root: Path, subids: list[str]) -> None:
    """lxc.rootfs.options = idmap=container: a root-owned tree, shifted by the mount."""
    script = "ls -ln /bin/busybox | awk '{print $3}'; touch /root/idmapped && echo ok"
    result = h.run(h.Spec(rootfs=str(bb_root), argv=["/bin/sh", "-c", script],
                          build=h.busybox_build, userns=h.DEFAULT_MAP,
                          idmapped_rootfs=True, host_check=h.host_ps_uid)).check()
    assert result.lines == ["0", "ok"]
    assert result.extra == "100000"
    assert (bb_root / "root/idmapped").stat().st_uid == 0  # written through the idmap


def test_console_bound_from_a_host_pty_path(bb_root: Path) -> None:
    master, slave = os.openpty()
    slave_path = os.ttyname(slave)
    rdev = os.fstat(slave).st_rdev

    def build(ctx: h.Ctx) -> None:
        # over the console from the container's devpts, a host pty by path (before
        # pivot_root, while the host's /dev/pts is reachable)
        h.busybox_build(ctx, before_pivot=lambda c: dev.bind_console(c.dev_fd, slave_path))

    script = "echo via-console > /dev/console; stat -c %t:%T /dev/console"
    result = h.run(h.Spec(rootfs=str(bb_root), argv=["/bin/sh", "-c", script],
                          build=build)).check()
    assert select.select([master], [], [], 5)[0], "nothing arrived on the host pty"
    assert os.read(master, 100).startswith(b"via-console")
    os.close(slave)
    os.close(master)
    assert result.lines == [f"{os.major(rdev):x}:{os.minor(rdev):x}"]


def test_setup_failure_is_reported_before_exec(bb_root: Path) -> None:
    def build(ctx: h.Ctx) -> None:
        root = mounts.mount_rootfs("dir", ctx.spec.rootfs)
        mounts.mount_entry(root, "/nonexistent/source", "mnt", "none", bind=True)

    result = h.run(h.Spec(rootfs=str(bb_root), argv=["/bin/true"], build=build))
    assert result.status == 1 and result.output == ""
    assert result.report == ("[Errno 2] mount /nonexistent/source on mnt: open_tree: "
                             "No such file or directory: '/nonexistent/source'")


def test_exec_failure_is_reported(bb_root: Path) -> None:
    result = h.run(h.Spec(rootfs=str(bb_root), argv=["/sbin/no-init"],
                          build=h.busybox_build))
    assert result.status == 1
    assert result.report == "[Errno 2] exec /sbin/no-init: No such file or directory"


def test_maps_refused_by_the_kernel_are_named() -> None:
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    try:
        with pytest.raises(OSError) as err:
            idmap.write_maps(pid, [(0, 100000, 10)], [])  # not in a new user namespace
        assert err.value.filename == f"/proc/{pid}/uid_map"
        assert "cannot write '0 100000 10'" in str(err.value)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_delegation_checked_against_etc_subuid(subids: list[str]) -> None:
    idmap.check_delegated([(0, 100000, 65536)], "u", user="root", uid=0, own_id=0)
    idmap.check_delegated([(0, 100000, 65536)], "g", user="root", uid=0, own_id=0)
    with pytest.raises(LxcsdError) as err:
        idmap.check_delegated([(0, 100000, 65537)], "u", user="root", uid=0, own_id=0)
    assert "host uids 100000-165536 are not delegated to root in /etc/subuid" in \
        str(err.value)


def test_setns_through_a_pidfd(bb_root: Path) -> None:
    """Joining a running container's namespaces with setns(pidfd, flags), as attach will."""

    def enter(pid: int) -> str:
        pidfd = os.pidfd_open(pid)
        read_fd, write_fd = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                linux.setns(pidfd, linux.CLONE_NEWUTS | linux.CLONE_NEWNET)
                os.write(write_fd, os.uname().nodename.encode() + b" " +
                         " ".join(sorted(n for _, n in socket.if_nameindex())).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        os.waitpid(child, 0)
        answer = os.read(read_fd, 200).decode()
        os.close(read_fd)
        os.close(pidfd)
        return answer

    result = h.run(h.Spec(rootfs=str(bb_root), argv=["/bin/sh", "-c", "read x; echo $x"],
                          build=lambda ctx: h.busybox_build(ctx, hostname="joined"),
                          host_check=enter, stdin=b"done\n")).check()
    assert result.extra == "joined lo"
    assert result.lines == ["done"]
