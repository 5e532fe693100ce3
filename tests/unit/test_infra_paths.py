"""resolve_in_root: symlinks inside a sandbox resolve against its root, not the host's."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.infra.sandbox import resolve_in_root


def test_resolve_in_root(tmp_path: Path) -> None:
    root = str(tmp_path)
    (tmp_path / "etc/sub").mkdir(parents=True)
    (tmp_path / "etc/file").write_text("x")
    os.symlink("/etc/file", tmp_path / "etc/abs")       # absolute: from the sandbox's root
    os.symlink("sub/../file", tmp_path / "etc/rel")
    os.symlink("/etc", tmp_path / "etcdir")
    os.symlink("/nonexistent/x", tmp_path / "dangling")
    os.symlink("loop", tmp_path / "loop")
    assert resolve_in_root(root, "/etc/abs") == "/etc/file"
    assert resolve_in_root(root, "/etc/rel") == "/etc/file"
    assert resolve_in_root(root, "/etcdir/abs") == "/etc/file"
    assert resolve_in_root(root, "/etc/abs", follow_last=False) == "/etc/abs"
    assert resolve_in_root(root, "/../../etc/./file") == "/etc/file"
    assert resolve_in_root(root, "/dangling") == "/nonexistent/x"
    assert resolve_in_root(root, "/new/dir/file") == "/new/dir/file"
    with pytest.raises(OSError) as e:
        resolve_in_root(root, "/loop")
    assert e.value.errno == errno.ELOOP
