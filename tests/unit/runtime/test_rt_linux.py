"""lxcsd.linux: errors name the call, the path and a hint; small calls behave as documented.
(Namespaces and mounts are exercised by the integration tests.)"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lxcsd import linux


def test_openat2_error_names_path(tmp_path: Path) -> None:
    root = os.open(tmp_path, os.O_PATH)
    try:
        with pytest.raises(FileNotFoundError) as err:
            linux.openat2(root, "missing/file", os.O_PATH)
    finally:
        os.close(root)
    assert err.value.filename == "missing/file"
    assert str(err.value) == "[Errno 2] openat2: No such file or directory: 'missing/file'"


def test_hints() -> None:
    assert linux._hint("open_tree", errno.ENOSYS) == \
        "the kernel lacks open_tree (needs Linux 5.2)"
    assert linux._hint("mount", errno.EPERM) == \
        "needs CAP_SYS_ADMIN in the owning user namespace"
    assert linux._hint("mount", errno.ENOENT) == ""


def test_capget_of_self() -> None:
    effective, permitted, inheritable = linux.capget()
    status = {line.split(":")[0]: int(line.split()[1], 16)
              for line in Path("/proc/self/status").read_text().splitlines()
              if line.startswith("Cap")}
    assert (effective, permitted, inheritable) == \
        (status["CapEff"], status["CapPrm"], status["CapInh"])


def test_prctl_reads() -> None:
    assert linux.prctl(linux.PR_GET_NO_NEW_PRIVS) in (0, 1)
    assert linux.prctl(linux.PR_CAPBSET_READ, 0) in (0, 1)
    with pytest.raises(OSError) as err:
        linux.prctl(linux.PR_CAPBSET_READ, 200)
    assert err.value.errno == errno.EINVAL and "prctl" in str(err.value)


FORBIDDEN = {"dataclasses", "typing", "enum", "re", "pathlib", "subprocess", "json",
             "argparse", "asyncio", "logging", "shlex", "inspect", "seccomp"}


def _imports(*modules: str) -> set[str]:
    """Modules imported by importing modules, run as the launcher runs: python3 -I -S."""
    repo = str(Path(__file__).resolve().parents[3])
    code = f"import sys; sys.path.insert(0, {repo!r}); import {', '.join(modules)}"
    out = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c", code],
                         capture_output=True, text=True, check=True)
    return {line.split("|")[-1].strip() for line in out.stderr.splitlines()[1:]}


def test_linux_import_is_light() -> None:
    imported = _imports("lxcsd.linux")
    assert "ctypes" in imported
    assert not imported & (FORBIDDEN | {"socket"})


def test_runtime_imports_are_light() -> None:
    """The helper's hot path. exec_sync needs socket (fd passing), and socket itself
    imports enum: the one forbidden module allowed, and only through socket."""
    imported = _imports(*(f"lxcsd.runtime.{m}" for m in (
        "safepath", "mounts", "dev", "idmap", "caps", "cgroup", "exec_sync",
        "seccomp_policy")))
    assert "lxcsd.runtime.mounts" in imported
    assert imported & FORBIDDEN <= {"enum"}
    assert "socket" in imported or "enum" not in imported
    assert "socket" not in _imports("lxcsd.runtime.mounts", "lxcsd.runtime.dev")
