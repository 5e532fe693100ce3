"""The Container Interface's facts (lxcsd.runtime.guest), the guest's notifications
(lxcsd.runtime.ready: real datagram sockets and processes, no root) and the device policy
that decides /dev/net/tun and /dev/fuse."""

from __future__ import annotations

import array
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcsd.config.build import warnings as config_warnings
from lxcsd.config.model import CgroupSetting
from lxcsd.generator import devices
from lxcsd.runtime import guest, ready

# -- UUIDs and os-release ----------------------------------------------------------------


def test_machine_id_parsing() -> None:
    assert guest.parse_machine_id("0123456789abcdef0123456789ABCDEF\n") == \
        bytes.fromhex("0123456789abcdef0123456789abcdef")
    for text in ("", "uninitialized\n", "0" * 32, "xyz" * 11 + "z", "0123"):
        assert guest.parse_machine_id(text) is None, text


def test_derived_uuid_is_stable_and_per_container() -> None:
    a = guest.derived_uuid("/var/lib/lxc/a/config", "host1")
    assert a == guest.derived_uuid("/var/lib/lxc/a/config", "host1\n")
    assert a != guest.derived_uuid("/var/lib/lxc/b/config", "host1")  # a copy differs
    assert a != guest.derived_uuid("/var/lib/lxc/a/config", "host2")  # another host
    text = guest.format_uuid(a)
    assert len(text) == 36 and text[14] == "4" and text[19] in "89ab"


def test_os_release_and_host_variables() -> None:
    text = ('# comment\nNAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n'
            "PRETTY_NAME='a \\\"quoted\\\" one'\nBROKEN LINE\nVARIANT_ID=\n")
    fields = guest.parse_os_release(text)
    assert fields["NAME"] == "Debian GNU/Linux" and fields["VERSION_ID"] == "12"
    assert fields["PRETTY_NAME"] == 'a "quoted" one'
    assert guest.host_env(fields) == {"container_host_id": "debian",
                                      "container_host_version_id": "12"}


# -- the guest's datagrams --------------------------------------------------------------


def test_parse_reads_ready_and_status_only() -> None:
    assert ready.parse(b"READY=1\nSTATUS=up") == (True, "up")
    assert ready.parse(b"MAINPID=1\nFDSTORE=1\nBARRIER=1") == (False, None)
    assert ready.parse(b"READY=10\nSTATUS=\x1b[31mred\x07") == (False, "[31mred")
    assert ready.parse(b"READY=1\0STATUS=x") == (False, None)  # NUL inside: ignored
    assert ready.parse(b"READY=1\0") == (True, None)  # a trailing NUL is fine
    assert ready.parse(b"READY=1\n" + b"x" * ready.MAX_DATAGRAM) == (False, None)
    assert len(ready.clean_status("y" * 1000)) == ready.STATUS_MAX


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[int, str]]:
    fd = ready.open_socket()
    sock = socket.socket(fileno=os.dup(fd))
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.close()
    yield fd, path
    os.close(fd)


@pytest.fixture
def sleeper() -> Iterator[tuple[int, int]]:
    """(pid, pidfd) of a child standing for init."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        # init's dispositions, not the test run's: under nohup (or a test that left a handler)
        # SIGHUP would be ignored or caught, and the "reboot" below never end the child
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.write(ready_w, b"x")
        time.sleep(60)
        os._exit(0)
    os.close(ready_w)
    os.read(ready_r, 1)  # a signal sent before the child set its dispositions would be lost
    os.close(ready_r)
    pidfd = os.pidfd_open(pid)
    yield pid, pidfd
    os.close(pidfd)
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _send(path: str, text: bytes, fds: list[int] | None = None) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] \
            if fds else []
        s.sendmsg([text], anc, 0, path)


def _send_from_child(path: str, text: bytes) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            _send(path, text)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def test_only_init_is_heard_and_fds_never_arrive(notify_socket: tuple[int, str]) -> None:
    """Here the test process plays init: a child's READY=1 is ignored, descriptors sent
    along are not installed in the receiver, STATUS= is forwarded once, then READY=1."""
    fd, path = notify_socket
    sent: list[str] = []
    _send_from_child(path, b"READY=1\nSTATUS=from a child")
    r, w = os.pipe()
    _send(path, b"STATUS=booting\nMAINPID=1", [r, w])
    _send(path, b"READY=1")
    pidfd = os.pidfd_open(os.getpid())
    before = set(os.listdir("/proc/self/fd"))
    waiter = ready.Waiter(fd, pidfd, os.getpid(), "Booting", send=sent.append)
    assert waiter.wait() == ("ready", 0)
    # none installed (descriptors an earlier test left to the garbage collector may close)
    assert set(os.listdir("/proc/self/fd")) - before == set()
    assert waiter.ignored == 1 and waiter.status == "booting"
    assert sent == []  # ready came in the same wake-up: the status goes with the hand-over
    for x in (r, w, pidfd):
        os.close(x)


def test_status_flood_is_rate_limited(notify_socket: tuple[int, str]) -> None:
    fd, path = notify_socket
    sent: list[str] = []
    now = [100.0]
    waiter = ready.Waiter(fd, -1, os.getpid(), "Booting", send=sent.append,
                          clock=lambda: now[0])
    for i in range(20):
        _send(path, f"STATUS=step {i}".encode())
        assert waiter.drain() is False
        waiter.forward()
        now[0] += 0.0625
    waiter.sock.detach()
    # 20 messages over 1.25 s of (fake) time: one line per STATUS_INTERVAL, the latest
    assert sent == ["STATUS=Booting: step 0", "STATUS=Booting: step 8",
                    "STATUS=Booting: step 16"]
    assert waiter.pending == "step 19" and 0 < waiter.timeout_ms() <= 500


def test_init_exit_ends_the_wait(notify_socket: tuple[int, str],
                                 sleeper: tuple[int, int]) -> None:
    fd, _ = notify_socket
    pid, pidfd = sleeper
    os.kill(pid, 1)  # SIGHUP: a reboot inside
    outcome, status = ready.Waiter(fd, pidfd, pid, "Booting", send=print).wait()
    assert outcome == "exited" and os.WIFSIGNALED(status) and os.WTERMSIG(status) == 1
    assert ready.clean_end(status) and ready.describe(status) == "killed by signal 1"
    assert ready.clean_end(2) and not ready.clean_end(9)  # raw statuses: SIGINT, SIGKILL
    assert not ready.clean_end(3 << 8) and ready.describe(3 << 8) == "exited with status 3"
    assert ready.clean_end(0)


def test_exit_as_mirrors_a_signal() -> None:
    pid = os.fork()
    if pid == 0:
        ready.exit_as(1)  # a raw wait status: killed by SIGHUP
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 1
    assert not os.WCOREDUMP(status)
    pid = os.fork()
    if pid == 0:
        ready.exit_as(7 << 8)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7


# -- the device policy for the optional nodes ---------------------------------------------


def _rules(*lines: str) -> tuple[CgroupSetting, ...]:
    out = []
    for n, line in enumerate(lines, 1):
        key, value = line.split(" = ")
        out.append(CgroupSetting(key=key, value=value, path="c", line=n))
    return tuple(out)


def test_device_policy_of_optional_nodes() -> None:
    common = _rules("devices.deny = a", "devices.allow = c *:* m",
                    "devices.allow = c 10:229 rwm")  # Debian's common.conf: fuse, no tun
    assert devices.allows(common, "c", 10, 229, "/dev/fuse")
    assert not devices.allows(common, "c", 10, 200, "/dev/net/tun")
    split = _rules("devices.deny = a", "devices.allow = c 10:200 r",
                   "devices.allow = c 10:* w")
    assert devices.allows(split, "c", 10, 200, "/dev/net/tun")
    everything = _rules("devices.allow = a", "devices.deny = c 10:200 w")
    assert not devices.allows(everything, "c", 10, 200, "/dev/net/tun")
    assert devices.allows(everything, "c", 10, 229, "/dev/fuse")
    by_path = _rules("devices.deny = a", "devices.allow = /dev/net/tun rw")
    assert devices.allows(by_path, "c", 10, 200, "/dev/net/tun")


def test_optional_devices_from_the_config(tmp_path: Path) -> None:
    from lxcsd.config.load import load_path
    from lxcsd.runtime.compiler import optional_devices

    plain = tmp_path / "plain.conf"
    plain.write_text("lxc.rootfs.path = dir:/\n")
    assert optional_devices(load_path(str(plain))) == ("net/tun", "fuse")
    v1 = tmp_path / "v1.conf"  # a config written for a v1 host: its rules still count
    v1.write_text("lxc.rootfs.path = dir:/\nlxc.cgroup.devices.deny = a\n"
                  "lxc.cgroup.devices.allow = c 10:200 rwm\n")
    assert optional_devices(load_path(str(v1))) == ("net/tun",)


# -- lxcsd.init.notify ----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("auto", None), ("1", True), ("0", False)])
def test_notify_key(tmp_path: Path, value: str, expected: bool | None) -> None:
    from lxcsd.config.load import load_path

    config = tmp_path / "config"
    config.write_text(f"lxc.rootfs.path = dir:/\nlxcsd.init.notify = {value}\n")
    container = load_path(str(config))
    assert container.init.notify is expected
    assert not config_warnings(container)  # an lxcsd key, not an ignored line


def test_notify_key_errors_name_the_line(tmp_path: Path) -> None:
    from lxcsd.config.load import load_path
    from lxcsd.errors import ConfigError

    config = tmp_path / "config"
    config.write_text("lxc.rootfs.path = dir:/\nlxcsd.init.notify = yes\n")
    with pytest.raises(ConfigError, match=r"config:2: lxcsd.init.notify: 'yes' is not auto"):
        load_path(str(config))
    config.write_text("lxcsd.init.notfy = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'lxcsd.init.notfy'"):
        load_path(str(config))
