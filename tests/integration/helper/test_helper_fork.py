"""lxcsd.linux.fork_into_cgroup (clone3 CLONE_INTO_CGROUP): the child is born in the cgroup
and is a working Python process; errors are OSErrors naming clone3."""

from __future__ import annotations

import errno
import os

import pytest

from lxcsd import linux
from lxcsd.runtime import cgroup


def test_child_born_in_the_cgroup(unit_cgroup: str) -> None:
    fd = os.open(unit_cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    read_end, write_end = os.pipe()
    pid = linux.fork_into_cgroup(fd)
    if pid == 0:
        import threading  # Python's fork bookkeeping ran: threads and imports work

        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join()
        os.write(write_end, cgroup.own_cgroup().encode())
        os._exit(7)
    os.close(fd)
    os.close(write_end)
    seen = os.read(read_end, 4096).decode()
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7
    assert seen.endswith("/" + os.path.basename(unit_cgroup))
    assert cgroup.own_cgroup() != seen  # the parent stayed where it was


def test_bad_cgroup_fd_is_an_oserror() -> None:
    with pytest.raises(OSError) as err:
        linux.fork_into_cgroup(987654)
    assert err.value.errno == errno.EBADF and "clone3" in str(err.value)
