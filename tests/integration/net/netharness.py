"""Network tests run in a network namespace the test creates, never the host's.

:func:`in_netns` runs a function in a forked child that unshared its network and mount
namespaces (mounts private, a fresh sysfs so /sys/class/net and /proc/sys/net show the new
namespace): that namespace is the test's "host". The pytest process never changes a
namespace. The function's return value (or its traceback) comes back through a pipe.

:class:`Box` is a "container" for the network code: busybox in new network and UTS
namespaces (a child of the test's namespace), driven with nsenter. Everything it starts asks
for SIGKILL when its parent dies, so a failing test leaves nothing behind; the test's
namespace, and every virtual device in it, goes away with the child.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxcsd import linux
from lxcsd.config.load import load_path
from lxcsd.config.model import Container

BUSYBOX = "/bin/busybox"


def _pdeath() -> None:
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)


def _enter_test_netns() -> None:
    linux.unshare(linux.CLONE_NEWNET | linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    # The cgroup2 mount lives under /sys: carry it over to the fresh sysfs (helper tests).
    cgroup_tree = linux.open_tree(-100, "/sys/fs/cgroup", linux.OPEN_TREE_CLONE
                                 | linux.OPEN_TREE_CLOEXEC | linux.AT_RECURSIVE)
    linux.mount("sysfs", "/sys", "sysfs", 0)
    linux.move_mount(cgroup_tree, "", -100, "/sys/fs/cgroup", linux.MOVE_MOUNT_F_EMPTY_PATH)
    os.close(cgroup_tree)
    linux.interface_up("lo")


def in_netns(fn: Callable[..., Any], *args: Any, timeout: float = 120.0) -> Any:
    """fn(*args) in a fresh network + mount namespace; its result, or AssertionError with
    the child's traceback."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read_fd)
        try:
            _pdeath()
            _enter_test_netns()
            payload = pickle.dumps(("ok", fn(*args)))
        except BaseException:
            payload = pickle.dumps(("error", traceback.format_exc()))
        with os.fdopen(write_fd, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    chunks = []
    with os.fdopen(read_fd, "rb") as stream:
        while True:
            data = stream.read(65536)
            if not data:
                break
            chunks.append(data)
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
    os.waitpid(pid, 0)
    if not chunks:
        raise AssertionError("the test's namespace child died without a result")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise AssertionError(f"in the test network namespace:\n{value}")
    return value


class Box:
    """busybox in its own network (+ UTS) namespace; ``pid`` is its init."""

    def __init__(self) -> None:
        own = os.readlink("/proc/self/ns/net")
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--uts", BUSYBOX, "sleep", "1000"], preexec_fn=_pdeath)
        self.pid = self.proc.pid
        for _ in range(500):
            if os.readlink(f"/proc/{self.pid}/ns/net") != own:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("box did not unshare its network namespace")

    def sh(self, script: str, check: bool = True, timeout: float = 30) -> str:
        result = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-n", "-u", "--", BUSYBOX, "sh", "-c", script],
            capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{script!r} in box: status {result.returncode}\n"
                                 f"{result.stdout}{result.stderr}")
        return result.stdout

    def links(self) -> list[str]:
        """Interface names inside, sorted (``ip link``: its sysfs view is the test's)."""
        names = []
        for line in self.sh("ip link").splitlines():
            if line[:1].isdigit():
                names.append(line.split(":")[1].strip().split("@")[0])
        return sorted(names)

    def mac(self, name: str) -> str:
        for line in self.sh(f"ip link show dev {name}").splitlines():
            if "link/ether" in line:
                return line.split()[1]
        raise AssertionError(f"no MAC on {name}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def host_sh(script: str) -> str:
    """A busybox shell command in the test's namespace (the "host")."""
    return subprocess.run([BUSYBOX, "sh", "-c", script], capture_output=True, text=True,
                          check=True, timeout=30).stdout


def container(tmp: Path, name: str, text: str) -> Container:
    """A Container from config text (written to TMP/NAME/config)."""
    directory = tmp / name
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config"
    config.write_text(f"lxc.uts.name = {name}\n{text}")
    return load_path(str(config), name)


def links() -> dict[str, int]:
    """{interface name: ifindex} of the current namespace, from sysfs."""
    found = {}
    for name in os.listdir("/sys/class/net"):
        with open(f"/sys/class/net/{name}/ifindex") as handle:
            found[name] = int(handle.read())
    return found


def make_bridge(name: str, address: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        index = ipr.link_lookup(ifname=name)[0]
        addr, prefix = address.split("/")
        ipr.addr("add", index=index, address=addr, prefixlen=int(prefix))
        ipr.link("set", index=index, state="up")


def make_veth(name: str, peer: str) -> int:
    """A veth pair in the test's namespace (this kernel has no dummy driver); both ends up.
    Returns the ifindex of ``name``."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="veth", peer=peer)
        for end in (name, peer):
            ipr.link("set", index=ipr.link_lookup(ifname=end)[0], state="up")
        return int(ipr.link_lookup(ifname=name)[0])


def kernel_has(kind: str) -> bool:
    """Whether this kernel can make a ``kind`` link (probed in a throw-away namespace)."""
    import subprocess

    script = {"vlan": "ip link add v0 type veth peer name v1 && "
                      "ip link add link v0 name t0 type vlan id 2",
              "ipvlan": "ip link add v0 type veth peer name v1 && "
                        "ip link add t0 link v0 type ipvlan mode l2",
              "vlan_filtering": "ip link add b0 type bridge vlan_filtering 1"}[kind]
    return subprocess.run(["unshare", "--net", "sh", "-c", script],
                          capture_output=True).returncode == 0
