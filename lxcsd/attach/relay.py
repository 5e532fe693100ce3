"""The terminal side of ``lxcsd attach`` in pty mode: relay between the caller's terminal
and the pty master of the attached command until the attach process exits.

The caller's terminal is put in raw mode (the pty inside does the line editing and
signals: Ctrl-C reaches the command as on a local terminal) and restored on every exit
path; its window size is copied to the pty at start and on SIGWINCH.
"""

from __future__ import annotations

import errno
import os
import select
import signal


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def copy_winsize(source: int, target: int) -> None:
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(source, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(target, termios.TIOCSWINSZ, size)
    except OSError:
        pass  # not a terminal: the pty keeps its default size


def _read(fd: int) -> bytes:
    """Read what is there; b"" at EOF, or EIO (a pty master whose slaves are all closed)."""
    try:
        return os.read(fd, 65536)
    except OSError as exc:
        if exc.errno in (errno.EIO, errno.EBADF):
            return b""
        raise


def _drain(master: int, out: int) -> None:
    os.set_blocking(master, False)
    while True:
        try:
            data = _read(master)
        except BlockingIOError:
            return
        if not data:
            return
        _write_all(out, data)


def relay(master: int, child: int, stdin: int = 0, stdout: int = 1) -> None:
    """Copy stdin → master and master → stdout until child (the attach process) exits."""
    import termios
    import tty

    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    pidfd = os.pidfd_open(child)
    copy_winsize(stdin, master)
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: copy_winsize(stdin, master))
    try:
        if saved is not None:
            tty.setraw(stdin)
        _loop(master, pidfd, stdin, stdout)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_winch)
        os.close(pidfd)


def _loop(master: int, pidfd: int, stdin: int, stdout: int) -> None:
    watched = [master, stdin, pidfd]
    while True:
        ready = select.select(watched, [], [])[0]
        if master in ready:
            data = _read(master)
            if not data:
                return  # every slave closed: the command and its children are gone
            _write_all(stdout, data)
        if stdin in ready:
            data = os.read(stdin, 65536)
            if data:
                _write_all(master, data)
            else:
                watched.remove(stdin)
                _write_all(master, b"\x04")  # EOF for a command reading the terminal
        if pidfd in ready:
            _drain(master, stdout)  # the command exited; children may hold the pty
            return
