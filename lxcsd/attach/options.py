"""What ``lxcsd attach`` was asked to do, and the pure rules it follows: the command's
environment (lxc-attach(1)), the user's passwd entry, exit statuses."""

from __future__ import annotations

import os

from lxcsd.errors import LxcsdError
from lxcsd.runtime.execpath import DEFAULT_PATH

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from lxcsd.config.model import Container

DEFAULT_SHELL = "/bin/sh"
# Exit statuses of lxcsd attach besides the command's own, as a shell and lxc-attach use them.
EXIT_SETUP = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127


class Options:
    """What ``lxcsd attach`` was asked to do (defaults: lxcsd.attach's docstring)."""

    __slots__ = ("argv", "clear_env", "keep_vars", "set_vars", "uid", "gid", "cwd", "pty")

    def __init__(self, *, argv: Sequence[str] = (), clear_env: bool = False,
                 keep_vars: Sequence[str] = (), set_vars: Sequence[str] = (),
                 uid: int | None = None, gid: int | None = None, cwd: str | None = None,
                 pty: bool | None = None) -> None:
        self.argv = list(argv)
        self.clear_env = clear_env
        self.keep_vars = list(keep_vars)
        self.set_vars = list(set_vars)
        self.uid = uid
        self.gid = gid
        self.cwd = cwd
        self.pty = pty


def build_env(caller: Mapping[str, str], container: Container, opts: Options) -> dict[str, str]:
    """The command's environment, by lxc-attach's rules (lxcsd.attach's docstring)."""
    if opts.clear_env:
        env = {name: caller[name] for name in opts.keep_vars if name in caller}
        env.setdefault("PATH", DEFAULT_PATH)
    else:
        env = dict(caller)
    env["container"] = "lxc"
    for name, value in tuple(container.environment) + tuple(container.environment_runtime):
        if value is not None:
            env[name] = value
        elif name in caller:
            env[name] = caller[name]
    for item in opts.set_vars:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise LxcsdError(f"-v {item!r}: expected VAR=VALUE")
        env[name] = value
    return env


def passwd_entry(text: str, uid: int) -> tuple[int, str, str] | None:
    """(gid, home, shell) of uid in /etc/passwd text, None when absent."""
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2].isdigit() and int(fields[2]) == uid:
            gid = int(fields[3]) if fields[3].isdigit() else 0
            return gid, fields[5], fields[6]
    return None


def exit_code(status: int) -> int:
    """A waitpid status as a shell reports it: the exit code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
