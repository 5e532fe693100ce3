"""The state file of a running container: /run/lxcsd/NAME/state.

Written by ``lxcsd-helper start`` once init runs (atomically: a temporary file renamed into
place), read by ``cleanup``, ``attach`` and ``lxc.namespace.share.*`` of other containers.
Removed by ``cleanup``. ``LXCSD_RUN_DIR`` replaces /run/lxcsd (tests).

Format: UTF-8 text, one ``key=value`` per line, keys in any order, unknown keys ignored;
a list is comma-separated (empty when none):

    name=c1                          container name
    init_pid=12345                   init's PID as the host sees it
    rootfs_mount=/var/lib/lxc/c1/rootfs   where the rootfs was mounted (inside the
                                     container's mount namespace only)
    config=/var/lib/lxc/c1/config    config file the container started from
    payload_cgroup=/sys/fs/cgroup/.../lxc.payload.c1   host directory of the payload cgroup
    init_cgroup=/sys/fs/cgroup/.../lxc.payload.c1      init's cgroup, the root of its cgroup
                                     namespace: the payload, or lxc.cgroup.dir.container.inner
                                     below it
    monitor_cgroup=/sys/fs/cgroup/.../lxc.monitor.c1   host directory the helper used
    ifaces=eth0,eth1                 container-side interfaces lxcsd.net set up
    cgroup_v1_leaf=lxc.payload.c1    the container's leaf below the unit's cgroup in every
                                     cgroup v1 hierarchy (lxcsd.runtime.cgroup_v1); empty
                                     on a cgroup2-only host
    userns=1                         1 when the container has its own user namespace
    halt_signal=10                   lxc.signal.halt as a number, empty when unset (stop then
                                     applies liblxc's SigBlk rule)
    stop_signal=9                    lxc.signal.stop as a number, empty when unset (SIGKILL)
    stop_hooks=0                     1 when the config had lxc.hook.stop hooks
    post_stop_hooks=0                1 when the config had lxc.hook.post-stop hooks
    stop=halt:10,stop:0,exec_stop:0,cleanup:0   how systemd stops it, as the start's plan
                                     has it (lxcsd.runtime.compiler._stop): the generator
                                     keeps this in the drop-in while the container runs
    apparmor_label=lxc-c1_<...>//&:lxc-c1_<-var-lib-lxc>:   AppArmor label init got (absent:
                                     none); attach gives its commands the same
    selinux_context=system_u:system_r:lxc_t:s0   the same for SELinux

halt_signal, stop_signal, stop_hooks and post_stop_hooks are what ``stop`` and ``cleanup``
need from the config, recorded so that they act on the config the container started with (as
liblxc does: its monitor holds that config). A state file without them (written by an older
lxcsd) makes them load the config as before: see :func:`recorded_signal`,
:func:`recorded_flag`. When the container has stop or post-stop hooks, the start also
writes them, as its plan has them, to ``/run/lxcsd/NAME/hooks`` (``marshal`` of
``lxcsd.runtime.hooks.HookSet``, mode 0600): :func:`read_hooks`.
"""

from __future__ import annotations

import os

from lxcsd import paths, rootfile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from lxcsd.config.model import Container
    from lxcsd.runtime.hooks import HookSet

RUN_DIR_ENV = "LXCSD_RUN_DIR"
HOOKS_FILE = "hooks"


def run_dir() -> str:
    return os.environ.get(RUN_DIR_ENV) or paths.RUN_DIR


def state_dir(name: str) -> str:
    return os.path.join(run_dir(), name)


def state_path(name: str) -> str:
    return os.path.join(state_dir(name), "state")


def config_fields(container: Container) -> dict[str, str | int]:
    """The fields stop and cleanup read instead of the config (see the module docstring)."""
    return {"halt_signal": container.signals.halt or "",
            "stop_signal": container.signals.stop or "",
            "stop_hooks": int(bool(container.hooks.get("stop"))),
            "post_stop_hooks": int(bool(container.hooks.get("post-stop")))}


STOP_KEYS = ("halt", "stop", "exec_stop", "cleanup")
# How lxc@.service stops without a drop-in (and what a drop-in says when a container's plan
# could not be made): ExecStop= sends the halt signal, and lxc.signal.stop once
# KillSignal=SIGTERM says the halt timed out; ExecStopPost= cleans up.
TEMPLATE_STOP = {"halt": 0, "stop": 0, "exec_stop": 1, "cleanup": 1}


def format_stop(stop: Mapping[str, int]) -> str:
    return ",".join(f"{key}:{int(stop.get(key, 0))}" for key in STOP_KEYS)


def parse_stop(text: str) -> dict[str, int] | None:
    """format_stop's inverse; None for anything else."""
    found = {}
    for part in text.split(","):
        key, sep, value = part.partition(":")
        if not sep or key not in STOP_KEYS or not (value.isascii() and value.isdigit()):
            return None
        found[key] = int(value)
    return found if len(found) == len(STOP_KEYS) else None


def recorded_flag(fields: Mapping[str, str], key: str) -> bool | None:
    """A 0/1 field; None when it is missing or not 0/1 (an older state file: ask the config)."""
    value = fields.get(key)
    return value == "1" if value in ("0", "1") else None


def recorded_signal(fields: Mapping[str, str], key: str) -> tuple[bool, int | None]:
    """(known, number) of a signal field: (True, None) when recorded as unset, (False, None)
    when missing or not a positive number (an older or damaged state file)."""
    value = fields.get(key)
    if value is None:
        return False, None
    if value == "":
        return True, None
    if value.isascii() and value.isdigit() and int(value) > 0:
        return True, int(value)
    return False, None


def format_state(fields: Mapping[str, str | int | list[str]]) -> str:
    lines = []
    for key, value in fields.items():
        text = ",".join(value) if isinstance(value, list) else str(value)
        if "\n" in text or "=" in key:
            raise ValueError(f"state field {key!r} cannot hold {text!r}")
        lines.append(f"{key}={text}\n")
    return "".join(lines)


def parse_state(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value
    return fields


def write(name: str, fields: Mapping[str, str | int | list[str]]) -> str:
    directory = state_dir(name)
    os.makedirs(directory, 0o755, exist_ok=True)
    path = os.path.join(directory, "state")
    rootfile.write(path, format_state(fields).encode(), 0o644)
    return path


def read(name: str) -> dict[str, str] | None:
    """The state fields of container name, None when it has no state file (or an unreadable
    one: cleanup must go on without it)."""
    try:
        with open(state_path(name), encoding="utf-8", errors="surrogateescape") as f:
            return parse_state(f.read())
    except OSError:
        return None


def write_hooks(name: str, hooks: HookSet) -> None:
    """The hooks stop and cleanup will run (the start's, not the config's as it is then)."""
    directory = state_dir(name)
    os.makedirs(directory, 0o755, exist_ok=True)
    rootfile.dump(os.path.join(directory, HOOKS_FILE), hooks.dump())


def read_hooks(name: str) -> HookSet | None:
    """The hooks the start wrote; None when there are none (or they cannot be read): only
    root's own file in root's own directory is read (lxcsd.rootfile.load), marshal is not
    made for untrusted input."""
    data = rootfile.load(os.path.join(state_dir(name), HOOKS_FILE))
    if data is None:
        return None
    from lxcsd.runtime.hooks import HookSet

    try:
        hooks: HookSet = HookSet.load(data)
    except (ValueError, TypeError):
        return None
    return hooks


def container_name(instance: str) -> str:
    """The container name of a unit instance string (%i, systemd-escaped), for stop and
    cleanup, which must work whatever the name: an instance unescape refuses is used as
    given. Names without a backslash need no unescaping (and no lxcsd.config import)."""
    if "\\" not in instance:
        return instance
    from lxcsd.config.names import unescape
    from lxcsd.errors import LxcsdError

    try:
        return unescape(instance)
    except LxcsdError:
        return instance
