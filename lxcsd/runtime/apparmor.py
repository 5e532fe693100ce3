"""Generated AppArmor profiles on the host: features, load, unload (as liblxc's lsm/apparmor.c).

    load    H, before C1 is forked: the profile file is (re)written only when its text
            changed (so apparmor_parser's binary cache stays valid), what cleanup will need
            is recorded in STATE_DIR/apparmor, the container's policy namespace is made
            (stacking hosts), and ``apparmor_parser -r`` is started; H waits for it at sync
            point 5, so the parse overlaps the build of the root.
    unload  ``cleanup`` (and a failed start): the namespace is removed, the profile unloaded
            through /sys/kernel/security/apparmor/.remove (no parser run needed).

Files: the profile at /var/lib/lxcsd/apparmor/NAMESPACE (root's, not LXCPATH/NAME/apparmor
as liblxc: an unprivileged container's mapped root owns LXCPATH/NAME), the parser's cache in
/var/cache/lxcsd/apparmor. The profile stays between starts (cache hits); ``lxcsd destroy``
removes it.

Hot path: no subprocess (os.posix_spawnp with a pipe for the parser's output).
"""

from __future__ import annotations

import errno
import os

from lxcsd import linux
from lxcsd.errors import LxcsdError
from lxcsd.runtime import apparmor_profile as text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.config.model import Container

SECURITYFS = "/sys/kernel/security/apparmor"
ENABLED = "/sys/module/apparmor/parameters/enabled"
PROFILE_DIR = "/var/lib/lxcsd/apparmor"
CACHE_DIR = "/var/cache/lxcsd/apparmor"
RECORD = "apparmor"
PARSER = "apparmor_parser"
PARSER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def enabled(root: str = "") -> bool:
    return (_read(root + ENABLED) or "").strip() == "Y"


def features(root: str = "") -> text.Features:
    """The host's AppArmor, read where liblxc reads it (root: a test tree)."""
    fs = root + SECURITYFS
    version = (_read(f"{fs}/features/domain/version") or "0.0").strip().split(".")
    try:
        major, minor = int(version[0]), int(version[1]) if len(version) > 1 else 0
    except ValueError:
        major = minor = 0
    return text.Features(
        enabled=enabled(root),
        mount=os.path.exists(f"{fs}/features/mount/mask"),
        stacking=(_read(f"{fs}/features/domain/stack") or "").startswith("yes")
        and (major, minor) >= (1, 2),
        stacked=(_read(f"{fs}/.ns_stacked") or "").startswith("yes"),
        unix=True,  # apparmor_parser >= 2.10.95: every Debian since 9
        cgroup_ns=os.path.exists(root + "/proc/self/ns/cgroup"))


def parser() -> str | None:
    """apparmor_parser's path (Debian: /sbin, in package apparmor), None when missing."""
    for directory in PARSER_PATH.split(":"):
        path = os.path.join(directory, PARSER)
        if os.access(path, os.X_OK):
            return path
    return None


def loaded(root: str = "") -> set[str] | None:
    """Names of the loaded profiles (securityfs's list, "NAME (mode)"), None when unreadable."""
    listing = _read(root + SECURITYFS + "/profiles")
    if listing is None:
        return None
    return {line.rpartition(" (")[0] for line in listing.splitlines() if " (" in line}


def lxcpath_of(container: Container) -> str:
    """LXCPATH of LXCPATH/NAME/config (liblxc names profiles after it)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(container.config_path)))


def profile_file(name: str, lxcpath: str) -> str:
    return os.path.join(PROFILE_DIR, text.namespace_name(name, lxcpath))


# ------------------------------------------------------------------------------------------
# Load


class Load:
    """A running ``apparmor_parser -r``: ``wait()`` raises LxcsdError with its output."""

    def __init__(self, pid: int, out_fd: int, path: str) -> None:
        self.pid = pid
        self.out_fd = out_fd
        self.path = path

    def wait(self) -> None:
        chunks = []
        while True:
            chunk = os.read(self.out_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self.out_fd)
        _, status = os.waitpid(self.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            output = b"".join(chunks).decode(errors="replace").strip()
            tail = "; ".join(output.splitlines()[-5:]) or f"status {status}"
            raise LxcsdError(f"apparmor_parser could not load {self.path}: {tail}",
                             "lxc.apparmor.raw lines are copied into the profile verbatim")

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.out_fd)


def start_load(state_dir: str, generated: tuple[str, str, str]) -> Load:
    """Write the profile (when changed), record it for cleanup, make the container's policy
    namespace, start apparmor_parser. ``generated``: the plan's (profile name, policy
    namespace or "", profile text) (lxcsd.runtime.compiler). Loading needs CAP_MAC_ADMIN
    (the helper has it)."""
    profile, namespace, body = generated
    path = os.path.join(PROFILE_DIR, profile.replace("/", "-"))  # text.namespace_name
    _write_if_changed(path, body)
    os.makedirs(state_dir, 0o755, exist_ok=True)
    _write(os.path.join(state_dir, RECORD), f"profile={profile}\nnamespace={namespace}\n")
    if namespace:
        try:
            os.mkdir(f"{SECURITYFS}/policy/namespaces/{namespace}", 0o755)
        except FileExistsError:
            pass
    program = parser()
    if program is None:
        raise LxcsdError("apparmor_parser is not installed", "apt-get install apparmor")
    os.makedirs(CACHE_DIR, 0o755, exist_ok=True)
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(program, [PARSER, "-r", "-W", "-L", CACHE_DIR, path],
                             {"PATH": PARSER_PATH, "LANG": "C.UTF-8"},
                             file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                                           (os.POSIX_SPAWN_DUP2, write_fd, 1),
                                           (os.POSIX_SPAWN_DUP2, write_fd, 2)])
    finally:
        os.close(write_fd)
    return Load(pid, read_fd, path)


def _write_if_changed(path: str, body: str) -> None:
    data = body.encode()
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return  # same text, same mtime: apparmor_parser's cache stays valid
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    _write(path, body, 0o600)


def _write(path: str, body: str, mode: int = 0o644) -> None:
    tmp = f"{path}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, body.encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


# ------------------------------------------------------------------------------------------
# Unload


def unload(state_dir: str) -> list[str]:
    """Undo a load recorded in state_dir: remove the container's policy namespace (with
    whatever the guest loaded into it) and the profile. Idempotent; problems are returned,
    not raised (cleanup goes on)."""
    record = _read(os.path.join(state_dir, RECORD))
    if record is None:
        return []
    fields = dict(line.partition("=")[::2] for line in record.splitlines() if "=" in line)
    problems = []
    namespace = fields.get("namespace", "")
    if namespace and "/" not in namespace:
        try:
            os.rmdir(f"{SECURITYFS}/policy/namespaces/{namespace}")
        except FileNotFoundError:
            pass
        except OSError as exc:
            problems.append(f"AppArmor namespace {namespace}: {exc.strerror}")
    profile = fields.get("profile", "")
    if profile:
        try:
            linux.write_file(f"{SECURITYFS}/.remove", profile)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # not loaded (a start that failed before)
                problems.append(f"AppArmor profile {profile}: {exc.strerror}")
    if not problems:
        os.unlink(os.path.join(state_dir, RECORD))
    return problems
