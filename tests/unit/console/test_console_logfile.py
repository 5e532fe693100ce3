"""lxc.console.logfile with lxc.console.size and lxc.console.rotate (lxcsd.console.logfile),
against LXC's terminal.c behaviour."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from lxcsd.console.logfile import ConsoleLog


def test_no_limit_appends_and_never_truncates(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"earlier boot\n")
    log = ConsoleLog(str(path))
    log.write(b"x" * 10000)
    log.close()
    assert path.read_bytes() == b"earlier boot\n" + b"x" * 10000
    assert path.stat().st_mode & 0o777 == 0o644  # an existing file keeps its mode


def test_a_new_file_is_private(tmp_path: Path) -> None:
    ConsoleLog(str(tmp_path / "c.log")).close()
    assert (tmp_path / "c.log").stat().st_mode & 0o777 == 0o600


def test_size_without_rotate_starts_the_file_over(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    log = ConsoleLog(str(path), size=10)
    log.write(b"0123456")
    log.write(b"789abc")  # 3 fit, the file is truncated, the rest starts it again
    log.close()
    assert path.read_bytes() == b"abc"
    assert not (tmp_path / "c.log.1").exists()


def test_size_with_rotate_keeps_one_old_file(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    log = ConsoleLog(str(path), size=10, rotate=True)
    log.write(b"0123456789")
    log.write(b"abc")
    log.write(b"d" * 10)
    log.close()
    assert (tmp_path / "c.log.1").read_bytes() == b"abcddddddd"
    assert path.read_bytes() == b"ddd"


def test_a_chunk_larger_than_the_size_keeps_its_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    log = ConsoleLog(str(path), size=4, rotate=True)
    log.write(b"0123456789")
    log.close()
    assert (tmp_path / "c.log.1").read_bytes() == b"0123"
    assert path.read_bytes() == b"4567"


def test_a_fifo_nobody_reads_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opening for writing needs a reader
    try:
        log = ConsoleLog(str(fifo), size=4096, rotate=True)  # limits ignored: not a file
        done = threading.Event()

        def write() -> None:
            log.write(b"x" * (1 << 20))
            done.set()

        threading.Thread(target=write, daemon=True).start()
        assert done.wait(5)
        log.close()
    finally:
        os.close(reader)
