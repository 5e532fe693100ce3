"""How a command is found inside a container: PATH, as execvp(3) searches it.

Shared by the helper (init's program: lxcsd.runtime.child, checked beforehand by
lxcsd.runtime.plan) and by ``lxcsd attach`` (the attached command).
"""

from __future__ import annotations

import os

# liblxc's default PATH for init and attached commands (when the environment has none).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_command(name: str, search: str) -> str | None:
    """name as execvp finds it (``search``: the PATH of the command's environment): the
    first executable file, else the first file (whose exec then fails with EACCES, as
    execvp reports it: 126); a name with a '/' as it is; None when there is none (127)."""
    if "/" in name:
        return name
    found = None
    for directory in search.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            found = found or candidate
    return found
