"""Files root writes for root: written atomically, read back only while root's alone.

The compiled start plans (lxcsd.runtime.planfile), the generator's facts cache
(lxcsd.generator.facts) and the hooks a start records for its stop (lxcsd.runtime.state)
are ``marshal`` data: the stdlib's serializer, already loaded in every interpreter, but not
made for untrusted input. So they are written here (a temporary file in the same directory,
renamed over the old one: a reader sees the old file or the new one, never half of one)
and read here only from a file and a directory that only root can write.

Nothing is fsync'd: these files live in /run (tmpfs) and are recomputed when missing.
Below lxcsd.runtime and lxcsd.generator (docs/design.md, "Layout"): both import it.
"""

from __future__ import annotations

import errno
import marshal
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PRIVATE = 0o600


def write(path: str, data: bytes, mode: int = PRIVATE) -> None:
    """``data`` into ``path`` atomically; the temporary file never outlives a failure.
    O_NOFOLLOW: a symlink planted at the temporary name is not written through."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                 mode)
    try:
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_all(fd: int, data: bytes) -> None:
    """os.write until all of data is written: a write may write less than asked (a file
    size limit, a signal, a full file system), and the rest is then written again or the
    error of the next write raised."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # no progress and no error: not for a regular file, but never loop
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def dump(path: str, value: Any, mode: int = PRIVATE) -> None:
    """``marshal`` of value, written as :func:`write`."""
    write(path, marshal.dumps(value), mode)


def read(path: str) -> bytes | None:
    """The content of ``path`` when it is root's alone (the file and its directory owned by
    this user and writable by nobody else, the file no symlink); else None, as for a missing
    or unreadable file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not _private(os.fstat(fd)) or not _private(os.stat(os.path.dirname(path) or ".")):
            return None
        return _read_all(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def load(path: str) -> Any:
    """:func:`read`'s content, unmarshalled; None when unreadable, not root's alone, or not
    marshal data."""
    data = read(path)
    if data is None:
        return None
    try:
        return marshal.loads(data)
    except (ValueError, EOFError, TypeError):
        return None


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
