"""``lxc.apparmor.profile`` and ``lxc.selinux.context``: init's security label, or a warning.

Applied as LXC applies them on exec: the label is written to the task's "exec" attribute
(/proc/self/attr/apparmor/exec, else /proc/self/attr/exec; SELinux: /proc/self/attr/exec),
which the kernel applies at the next execve, init's. The attribute file is opened before
pivot_root (the host's /proc is still there; the container may mount none) and written
right before exec. A host without the security module gets a warning naming the key, and
the container starts unconfined (issue 4: "applied when the host has them, otherwise a clear
warning"). ``unconfined`` and ``unchanged`` (AppArmor) ask for nothing. lxcsd never
generates profiles (LXC's ``generated``): that is an error naming the key.
"""

from __future__ import annotations

import os

from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.config.model import Container

APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
SELINUX_ENFORCE = "/sys/fs/selinux/enforce"
AA_ATTRS = ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec")
SELINUX_ATTR = "/proc/self/attr/exec"


def apparmor_enabled(path: str = APPARMOR_ENABLED) -> bool:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def wanted(container: Container) -> list[tuple[str, str, str]]:
    """(key, attribute text, security module) for each label the config asks for."""
    found = []
    profile = container.apparmor.profile
    if profile == "generated":
        raise LxcsdError("lxc.apparmor.profile = generated: lxcsd does not generate AppArmor "
                         "profiles", "name a loaded profile, or unconfined")
    if profile and profile not in ("unconfined", "unchanged"):
        found.append(("lxc.apparmor.profile", f"exec {profile}", "AppArmor"))
    if container.selinux.context:
        found.append(("lxc.selinux.context", container.selinux.context, "SELinux"))
    return found


def prepare(container: Container, warn: object = None) -> list[tuple[int, str, str]]:
    """Open the exec attribute for each label the host can apply: [(fd, text, key)].
    Labels whose module the host lacks are reported through warn(message)."""
    prepared = []
    for key, text, module in wanted(container):
        enabled = apparmor_enabled() if module == "AppArmor" else os.path.exists(SELINUX_ENFORCE)
        if not enabled:
            if callable(warn):
                warn(f"{key} ignored: {module} is not enabled on this host; the container "
                     "runs without it")
            continue
        paths = AA_ATTRS if module == "AppArmor" else (SELINUX_ATTR,)
        prepared.append((_open_first(paths, key), text, key))
    return prepared


def _open_first(paths: tuple[str, ...], key: str) -> int:
    for path in paths:
        try:
            return os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LxcsdError(f"{key}: cannot open {path}: {exc.strerror}") from None
    raise LxcsdError(f"{key}: none of {', '.join(paths)} exists")


def apply(prepared: list[tuple[int, str, str]]) -> None:
    """Write each label (the last step before exec); the fds are closed."""
    for fd, text, key in prepared:
        try:
            os.write(fd, text.encode())
        except OSError as exc:
            raise LxcsdError(f"{key}: the kernel refused {text!r}: {exc.strerror}") from None
        finally:
            os.close(fd)
