"""lxcsd.rootfile: the one writer and reader of root's marshal files (compiled plans, the
generator's facts cache, the hooks a start records). A short write is never renamed into
place, a failure leaves no temporary file, and only root's own file in root's own directory
is read. Real files; the short write is a real one (RLIMIT_FSIZE in a child process)."""

from __future__ import annotations

import errno
import os
import resource
import signal
from pathlib import Path

import pytest

from lxcsd import rootfile
from lxcsd.runtime import state
from lxcsd.runtime.hooks import HookSet


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_short_write_is_never_renamed_into_place(tmp_path: Path) -> None:
    """With a file size limit the kernel writes part of the data and returns the short
    count (then EFBIG): the old file stays, whole, and no temporary file is left."""
    path = tmp_path / "f.plan"
    path.write_bytes(b"old")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        status = 1
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
            try:
                rootfile.write(str(path), b"x" * 65536)
            except OSError as exc:
                status = 0 if exc.errno == errno.EFBIG else 2
        finally:
            os._exit(status)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_everything_is_written(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    rootfile.write(str(tmp_path / "big"), data)
    assert (tmp_path / "big").read_bytes() == data
    assert (tmp_path / "big").stat().st_mode & 0o777 == 0o600


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir/x").write_text("")
    with pytest.raises(OSError):
        rootfile.dump(str(tmp_path / "dir"), {"a": 1})
    assert _leftovers(tmp_path) == []


def test_a_symlink_at_the_temporary_name_is_not_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("kept")
    (tmp_path / f"f.{os.getpid()}.tmp").symlink_to(target)
    with pytest.raises(OSError):
        rootfile.dump(str(tmp_path / "f"), {"a": 1})
    assert target.read_text() == "kept" and not (tmp_path / "f").exists()


def test_only_roots_own_file_in_roots_own_directory_is_read(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir(mode=0o700)
    path = directory / "f"
    rootfile.dump(str(path), {"a": 1})
    assert rootfile.load(str(path)) == {"a": 1}
    path.chmod(0o620)
    assert rootfile.load(str(path)) is None
    path.chmod(0o600)
    directory.chmod(0o777)
    assert rootfile.load(str(path)) is None
    directory.chmod(0o700)
    (directory / "link").symlink_to(path)
    assert rootfile.load(str(directory / "link")) is None
    path.write_bytes(b"\xffnot marshal")
    assert rootfile.load(str(path)) is None


def test_the_recorded_hooks_are_read_as_plans_are(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """state.read_hooks checks what planfile.load checks: a hooks file in a directory
    others may write (where it could have been swapped) is not run."""
    monkeypatch.setenv("LXCSD_RUN_DIR", str(tmp_path / "run"))
    hooks = HookSet(name="c1", config_path="/c", rootfs_spec=None, rootfs_mount="/r",
                    console_path=None, console_logfile=None, version=0, env_hooks=[],
                    env=[], commands={"stop": [("/bin/true", ("/bin/true",), "/c:1")]})
    state.write_hooks("c1", hooks)
    found = state.read_hooks("c1")
    assert found is not None and found.commands == hooks.commands
    os.chmod(state.state_dir("c1"), 0o777)
    assert state.read_hooks("c1") is None
    assert _leftovers(Path(state.state_dir("c1"))) == []
