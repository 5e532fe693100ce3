"""Registration of running containers with systemd-machined, as systemd-nspawn does.

`machinectl list|status|poweroff|terminate NAME` and `journalctl -M NAME` then work for
lxcsd containers. The helper calls register() once init's exec is confirmed (before
READY=1) and unregister() from `lxcsd-helper cleanup` (ExecStopPost=), which also runs
between the two lives of a container rebooted inside (SIGHUP restarts the unit, and
machined would otherwise keep the old registration: the unit never became inactive).

Hot path: one D-Bus call through libsystemd's sd-bus (lxcsd.systemd.sdbus: ctypes, ~4 ms to
load), not dbus-fast or pystemd (45 / 25 ms to import). Neither function ever raises: a container
runs fine without machined, so a missing or failing machined costs one line on stderr
(the unit's journal) and nothing else.

machined ties the machine to the unit of its leader (lxc@NAME.service, found from init's
cgroup), so it also drops the machine by itself when the unit stops, and
`machinectl terminate` stops the unit.
"""

from __future__ import annotations

import errno
import os
import sys

from lxcsd.systemd import sdbus

DEST = "org.freedesktop.machine1"
PATH = "/org/freedesktop/machine1"
IFACE = "org.freedesktop.machine1.Manager"
MACHINED = ("/usr/lib/systemd/systemd-machined", "/lib/systemd/systemd-machined")
STATE_DIR = "/run/systemd/machines"
# The first call may activate machined over the bus; never hold a start for long.
TIMEOUT_USEC = 10_000_000
_ABSENT = ("org.freedesktop.DBus.Error.ServiceUnknown",
           "org.freedesktop.DBus.Error.NameHasNoOwner")


def _say(message: str) -> None:
    try:
        print(f"lxcsd-helper: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # stderr closed: the message is informational only


def _installed() -> bool:
    return any(os.path.exists(p) for p in MACHINED)


def unit_of_cgroup(text: str) -> str:
    """The unit in /proc/PID/cgroup's text ("" when none): the unified hierarchy's line
    ("0::/...") or, on a legacy host, the name=systemd one; the innermost .service."""
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3 or fields[1] not in ("", "name=systemd"):
            continue
        for part in reversed(fields[2].split("/")):
            if part.endswith(".service"):
                return part
    return ""


def _own_unit() -> str:
    try:
        with open("/proc/self/cgroup", "rb") as f:
            return unit_of_cgroup(f.read().decode(errors="replace"))
    except OSError:
        return ""


def _stale_own_machine(name: str) -> bool:
    """True when machined still lists NAME for this very unit (an earlier life of it)."""
    try:
        with open(f"{STATE_DIR}/{name}", "rb") as f:
            fields = dict(line.partition("=")[::2] for line in f.read().decode().splitlines())
    except (OSError, UnicodeDecodeError):
        return False
    unit = _own_unit()
    # machined 252 writes the unit as SCOPE= (its name from before units of any type).
    return bool(unit) and unit in (fields.get("UNIT"), fields.get("SCOPE"))


def _call(member: str, args: list[tuple[str, object]]) -> None:
    sdbus.bus_call(DEST, PATH, IFACE, member, args, TIMEOUT_USEC)


def _register(name: str, leader: int, root_directory: str, ifindices: list[int],
              uuid: bytes) -> None:
    root = root_directory if root_directory.startswith("/") else ""
    _call("RegisterMachineWithNetwork", [
        ("s", name), ("ay", uuid if len(uuid) == 16 else bytes(16)), ("s", "lxcsd"),
        ("s", "container"), ("u", leader), ("s", root), ("ai", list(ifindices))])


def register(name: str, leader: int, root_directory: str, ifindices: list[int],
             uuid: bytes = b"") -> None:
    """Register container NAME (init's host pid LEADER) with machined; never raises.
    uuid: the container's (lxcsd.runtime.guest), machined's Id, as nspawn passes it."""
    if not _installed():
        _say(f"systemd-machined is not installed; {name} is not registered as a machine")
        return
    try:
        try:
            _register(name, leader, root_directory, ifindices, uuid)
        except sdbus.BusError as e:
            if e.name.endswith("MachineExists") or "already exists" in str(e):
                if not _stale_own_machine(name):
                    raise
                _call("UnregisterMachine", [("s", name)])
                _register(name, leader, root_directory, ifindices, uuid)
            else:
                raise
    except sdbus.BusError as e:
        if e.name in _ABSENT or (not e.name and e.errno in (errno.ENOENT, errno.ECONNREFUSED)):
            _say(f"systemd-machined is not running; {name} is not registered as a machine")
        else:
            _say(f"{name} not registered with systemd-machined: {e.strerror}")
    except Exception as e:  # noqa: BLE001 - registration is optional, the start must go on
        _say(f"{name} not registered with systemd-machined: {e}")


def unregister(name: str) -> None:
    """Drop container NAME from machined when this unit registered it; never raises, never
    prints when there was nothing to drop. A machine of the same name that belongs to
    another unit (an nspawn container, say) is left alone."""
    if not _installed() or not _stale_own_machine(name):
        return
    try:
        _call("UnregisterMachine", [("s", name)])
    except sdbus.BusError as e:
        if e.name in _ABSENT or e.name.endswith("NoSuchMachine"):
            return
        _say(f"{name} not unregistered from systemd-machined: {e.strerror}")
    except Exception as e:  # noqa: BLE001
        _say(f"{name} not unregistered from systemd-machined: {e}")
