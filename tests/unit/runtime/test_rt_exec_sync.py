"""Sync points, the exec report pipe and fd hygiene, across real forks."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from lxcsd.errors import LxcsdError
from lxcsd.runtime import exec_sync


def _fork(child: Callable[[], object]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(0)
    return pid


def _wait(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_points_in_order_with_fds() -> None:
    sync = exec_sync.Sync()
    read_fd, write_fd = os.pipe()

    def child() -> None:
        sync.child_side()
        sync.wait(1)
        sync.wake(2, [write_fd])

    pid = _fork(child)
    sync.parent_side()
    os.close(write_fd)
    sync.wake(1)
    (fd,) = sync.wait(2, nfds=1)
    os.write(fd, b"through the passed fd")
    os.close(fd)
    assert os.read(read_fd, 100) == b"through the passed fd"
    assert _wait(pid) == 0
    sync.close()


def test_wrong_point_is_an_error() -> None:
    sync = exec_sync.Sync()
    pid = _fork(lambda: sync.child_side().wake(5))
    sync.parent_side()
    with pytest.raises(LxcsdError) as err:
        sync.wait(4)
    assert "sync point 4: the peer sent point 5 with 0 fds (expected 0)" in str(err.value)
    _wait(pid)


def test_peer_exit_is_an_error() -> None:
    sync = exec_sync.Sync()
    pid = _fork(sync.child_side)
    sync.parent_side()
    with pytest.raises(LxcsdError) as err:
        sync.wait(1)
    assert "sync point 1: the peer exited before reaching it" in str(err.value)
    _wait(pid)


def test_report_eof_means_exec() -> None:
    report = exec_sync.Report()
    pid = os.fork()
    if pid == 0:
        report.child_side()
        os.execv("/bin/true", ["true"])
    report.parent_side()
    assert report.result() is None
    assert _wait(pid) == 0


def test_report_carries_the_failure() -> None:
    report = exec_sync.Report()

    def failing() -> None:
        raise FileNotFoundError(2, "openat2: No such file or directory", "/sbin/init")

    pid = os.fork()
    if pid == 0:
        exec_sync.run_reporting(report.child_side(), failing)
        os._exit(0)
    report.parent_side()
    assert report.result() == "[Errno 2] openat2: No such file or directory: '/sbin/init'"
    assert _wait(pid) == 1


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_close_fds_except() -> None:
    keep_r, keep_w = os.pipe()
    extra = [os.open("/dev/null", os.O_RDONLY) for _ in range(5)]
    report = exec_sync.Report()
    watched = [0, 1, 2, keep_w, report.write_fd, *extra, max(extra) + 50]
    os.dup2(extra[0], watched[-1])

    def child() -> None:
        exec_sync.close_fds_except([report.write_fd, keep_w])
        os.write(keep_w, bytes(_is_open(fd) for fd in watched))

    pid = _fork(child)
    os.close(keep_w)
    state = list(os.read(keep_r, 100))
    _wait(pid)
    assert state == [1, 1, 1, 1, 1] + [0] * 6
    for fd in extra + [watched[-1], keep_r]:
        os.close(fd)
