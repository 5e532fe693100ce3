"""Container state changes as they happen, from systemd's D-Bus signals (dbus-fast,
asyncio): the shared part of ``lxcsd wait`` and ``lxcsd monitor``.

systemd emits ``PropertiesChanged`` on a unit's object (``org.freedesktop.systemd1.Unit``:
ActiveState, SubState) to subscribed clients; :class:`Watcher` subscribes, adds a match for
every unit object, and turns the lxc@NAME.service ones into (name, STATE) events, STATE as
:func:`lxcsd.systemd.manager.container_state` maps it.
"""

from __future__ import annotations

import asyncio

from lxcsd.config.names import name_from_unit, unit_name
from lxcsd.errors import LxcsdError
from lxcsd.systemd.manager import container_state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEST = "org.freedesktop.systemd1"
ROOT = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
PROPERTIES = "org.freedesktop.DBus.Properties"
UNIT_PATH = "/org/freedesktop/systemd1/unit/"
MATCH = ("type='signal',sender='org.freedesktop.systemd1',"
         "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
         "path_namespace='/org/freedesktop/systemd1/unit'")
_HEX = "0123456789abcdef"


def unit_from_path(path: str) -> str | None:
    """The unit name of a systemd unit object path (sd-bus's label escaping: every byte
    other than [A-Za-z0-9] as _XX), None for other paths or bad escapes."""
    if not path.startswith(UNIT_PATH):
        return None
    label = path[len(UNIT_PATH):]
    out = bytearray()
    pos = 0
    while pos < len(label):
        char = label[pos]
        if char == "_":
            digits = label[pos + 1: pos + 3]
            if len(digits) != 2 or digits.strip(_HEX):
                return None
            out.append(int(digits, 16))
            pos += 3
        else:
            out.append(ord(char))
            pos += 1
    return out.decode("utf-8", "surrogateescape")


def container_of(unit: str) -> str | None:
    """The container name of an lxc@NAME.service unit, else None."""
    try:
        return name_from_unit(unit)
    except LxcsdError:
        return None


class Watcher:
    """A system bus connection delivering (container, STATE) events into a queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.bus: Any = None

    async def connect(self) -> Watcher:
        from dbus_fast import BusType
        from dbus_fast.aio import MessageBus

        try:
            self.bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except Exception as exc:  # dbus-fast raises several types for "no bus"
            raise LxcsdError(f"cannot connect to the system bus: {exc}",
                             "lxcsd wait/monitor need dbus (systemd's signals)") from None
        self.bus.add_message_handler(self._on_message)
        await self.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus", "AddMatch", "s", [MATCH])
        await self.call(DEST, ROOT, MANAGER, "Subscribe")
        return self

    async def call(self, dest: str, path: str, interface: str, member: str,
                   signature: str = "", body: list[Any] | None = None) -> Any:
        from dbus_fast import Message, MessageType

        reply = await self.bus.call(Message(destination=dest, path=path, interface=interface,
                                            member=member, signature=signature,
                                            body=body or []))
        if reply.message_type == MessageType.ERROR:
            raise LxcsdError(f"{member}: {reply.error_name}: {' '.join(map(str, reply.body))}")
        return reply.body

    async def state(self, name: str) -> str:
        """The container's current state (loads the unit if systemd has not)."""
        (path,) = await self.call(DEST, ROOT, MANAGER, "LoadUnit", "s", [unit_name(name)])
        active, sub = [(await self.call(DEST, path, PROPERTIES, "Get", "ss", [UNIT, prop]))[0]
                       .value for prop in ("ActiveState", "SubState")]
        return container_state(active, sub)

    async def loaded_states(self) -> dict[str, str]:
        """{container: STATE} of the lxc@ units systemd has loaded."""
        (rows,) = await self.call(DEST, ROOT, MANAGER, "ListUnitsByPatterns", "asas",
                                  [[], ["lxc@*.service"]])
        states = {}
        for row in rows:
            name = container_of(row[0])
            if name is not None:
                states[name] = container_state(row[3], row[4])
        return states

    def _on_message(self, msg: Any) -> None:
        from dbus_fast import MessageType

        if (msg.message_type != MessageType.SIGNAL or msg.member != "PropertiesChanged"
                or not msg.body or msg.body[0] != UNIT):
            return
        changed = msg.body[1]
        if "ActiveState" not in changed:
            return
        unit = unit_from_path(msg.path or "")
        name = container_of(unit) if unit else None
        if name is None:
            return
        sub = changed["SubState"].value if "SubState" in changed else ""
        self.queue.put_nowait((name, container_state(changed["ActiveState"].value, sub)))

    def close(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
            self.bus = None
