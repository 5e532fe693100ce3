"""What a guest learns about its container manager (systemd's Container Interface,
docs/CONTAINER_INTERFACE.md in systemd's source), gathered by the helper (H) before it forks.

- ``$container_uuid`` and ``/run/host/container-uuid``: the container's UUID, also given to
  machined (``machinectl show NAME -p Id``). As systemd-nspawn: the guest's own
  ``/etc/machine-id`` when it has one; otherwise a UUID derived from the host's machine id
  and the config's path, so it is stable across starts (a guest's systemd stores it as its
  machine id on first boot) and differs for a copy of the container (another path) or the
  same name on another host. Derived, not stored: nothing is written beside the config, and
  a copy made by ``lxc-copy`` cannot inherit it.
- ``$container_host_id``, ``_version_id``, ``_build_id``, ``_variant_id``, ``_image_id``,
  ``_image_version`` from the host's os-release (the interface's "ID fields"), and that
  file's text for ``/run/host/os-release``.
- ``lxcsd.init.notify``: whether init gets a notify socket (``lxcsd.runtime.ready``) and the
  ``/run`` tmpfs with ``/run/host`` that carries it (``lxcsd.runtime.guestfs``). ``auto``
  is decided in C2, which sees the root file system (init resolves to ``systemd``).

Reads only, best effort: a missing or odd file never fails a start. Hot path: no hashlib
(its import loads OpenSSL, ~4 ms measured); blake2b comes from ``_blake2``, the C module
behind ``hashlib.blake2b`` (0.05 ms).
"""

from __future__ import annotations

import os
import stat

from lxcsd.runtime import safepath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.runtime.plan import StartPlan

HOST_OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
HOST_MACHINE_ID = "/etc/machine-id"
# os-release(5) fields the Container Interface passes as $container_host_<field>.
HOST_ID_FIELDS = ("ID", "VERSION_ID", "BUILD_ID", "VARIANT_ID", "IMAGE_ID", "IMAGE_VERSION")
NOTIFY_SOCKET = "/run/host/notify"
_UUID_SALT = b"lxcsd container uuid\0"


class Guest:
    """H's findings for one start; C1 and C2 inherit them (``plan.guest``)."""

    __slots__ = ("uuid", "os_release", "env", "notify", "notify_fd")

    def __init__(self, uuid: bytes, os_release: str, env: dict[str, str],
                 notify: bool | None, notify_fd: int = -1) -> None:
        self.uuid = uuid  # 16 bytes
        self.os_release = os_release
        self.env = env
        self.notify = notify  # lxcsd.init.notify: None is auto
        self.notify_fd = notify_fd  # the socket C2 binds at NOTIFY_SOCKET, -1 without

    @property
    def uuid_text(self) -> str:
        return format_uuid(self.uuid)


def prepare(plan: StartPlan) -> Guest:
    """The Guest of plan's container (no socket yet: ``lxcsd.runtime.ready`` opens it)."""
    text = read_host_os_release()
    uuid = rootfs_machine_id(plan) or derived_uuid(plan.config_path,
                                                   read_small(HOST_MACHINE_ID))
    env = {"container_uuid": format_uuid(uuid)}
    env.update(host_env(parse_os_release(text)))
    return Guest(uuid, text, env, plan.notify)


def init_env(plan: StartPlan, notify_bound: bool) -> dict[str, str]:
    """Init's environment: the Container Interface's variables, then what the config says
    (lxc.environment wins), then $NOTIFY_SOCKET when C2 bound the socket."""
    guest = plan.guest
    if guest is None:
        return plan.env
    env = {**guest.env, **plan.env}
    if notify_bound:
        env["NOTIFY_SOCKET"] = NOTIFY_SOCKET
    return env


# -- the UUID ----------------------------------------------------------------------------


def format_uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_machine_id(text: str) -> bytes | None:
    """/etc/machine-id's 32 hex digits (machine-id(5)); None for empty, "uninitialized",
    all zeros or anything else."""
    text = text.strip()
    if len(text) != 32:
        return None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    return raw if any(raw) else None


def derived_uuid(config_path: str, host_machine_id: str) -> bytes:
    """A UUID (version 4 layout, as systemd's app-specific ids) from the host's machine id
    and the container's config path."""
    from _blake2 import blake2b  # hashlib.blake2b without hashlib's OpenSSL import

    data = _UUID_SALT + host_machine_id.strip().encode() + b"\0" + \
        os.path.realpath(config_path).encode()
    raw = bytearray(blake2b(data, digest_size=16).digest())
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return bytes(raw)


def rootfs_machine_id(plan: StartPlan) -> bytes | None:
    """The guest's /etc/machine-id, resolved inside the root (a symlink in the guest cannot
    make us read a host file); for an overlay rootfs the upper layer first, then the lower
    ones, as the mounted overlay shows it. Only a regular file is read."""
    r = plan.rootfs
    layers = [r.path] if r.kind == "dir" else [r.upper, *r.lower]
    for layer in layers:
        if layer:
            text = _read_in_root(layer, "etc/machine-id")
            if text is not None:
                return parse_machine_id(text)
    return None


def _read_in_root(root: str, path: str) -> str | None:
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = safepath.resolve(root_fd, path)
    except OSError:
        return None
    finally:
        os.close(root_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return read_small(safepath.proc_fd_path(fd))
    finally:
        os.close(fd)


def read_small(path: str, limit: int = 4096) -> str:
    """The first ``limit`` bytes of a file as text; "" when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        return os.read(fd, limit).decode(errors="replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


# -- the host's os-release ------------------------------------------------------------------


def read_host_os_release() -> str:
    for path in HOST_OS_RELEASE:
        text = read_small(path, 65536)
        if text:
            return text
    return ""


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): KEY=VALUE lines, values optionally in single or double quotes with
    backslash escapes; comments and malformed lines skipped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not key or key.startswith("#") or not key.replace("_", "").isalnum():
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key] = _unescape(value)
    return fields


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out, chars = [], iter(value)
    for ch in chars:
        out.append(next(chars, "") if ch == "\\" else ch)
    return "".join(out)


def host_env(fields: dict[str, str]) -> dict[str, str]:
    """$container_host_<field> for the os-release ID fields the host has."""
    return {f"container_host_{key.lower()}": fields[key] for key in HOST_ID_FIELDS
            if fields.get(key)}
