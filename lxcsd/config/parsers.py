"""How each key's lines fold into a value: the parsers of the key table (:mod:`.keys`).

Parsers follow mkosi's convention: ``parser(value, old) -> new``. An empty value resets, and
what "reset" means (clear a list, back to the default, an error) is a property of the
parser, not a special case in the reader. The reader pre-parses each line once
(:meth:`Parser.item`: pure, so cached for included files and shared) and the builder folds
items in config order with :meth:`Parser.merge`; ``parser(value, old)`` is the two steps
together. A parser converts a value with a function of :mod:`.values`.
"""

from __future__ import annotations

from . import values as v
from .cgroups import CGROUP2_VALUES
from .model import CgroupSetting, Entry, MountAuto
from .record import replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Conv = Callable[[str], Any]


class _Reset:
    """The pre-parsed form of an empty value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RESET"


RESET: Any = _Reset()


# --- parsers ----------------------------------------------------------------------------------


class Parser:
    """A scalar: the last value wins; an empty value resets to ``empty`` (default None)."""

    __slots__ = ("conv", "empty", "type_doc")
    is_list = False

    def __init__(self, conv: Conv, type_doc: str, empty: Any = None) -> None:
        self.conv = conv
        self.empty = empty
        self.type_doc = type_doc

    def item(self, entry: Entry) -> Any:
        """Parse one line's value (pure: the result may be cached and shared)."""
        return RESET if entry.value == "" else self.conv(entry.value)

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        """Fold a pre-parsed line into the previous value; never mutates ``old``."""
        return self.empty if entry.item is RESET else entry.item

    def __call__(self, value: str, old: Any = None, sub: str = "") -> Any:
        entry = Entry(key="", value=value, path="", line=0, sub=sub)
        entry.item = self.item(entry)
        return self.merge(old, entry, {})


class Required(Parser):
    """A scalar that must have a value (liblxc fails on ``lxc.mount.fstab =``)."""

    __slots__ = ()

    def item(self, entry: Entry) -> Any:
        if entry.value == "":
            raise v.bad("this key needs a value", "remove the line instead of emptying it")
        return self.conv(entry.value)


class ListOf(Parser):
    """A list: each line appends one item; an empty value clears the list."""

    __slots__ = ()
    is_list = True

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        if entry.item is RESET:
            return ()
        return (old or ()) + (entry.item,)


class Extend(ListOf):
    """A list where one line may add several items (``lxc.group = a b``)."""

    __slots__ = ()

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        if entry.item is RESET:
            return ()
        return (old or ()) + entry.item


class Keyed(Parser):
    """``PREFIX.NAME = VALUE`` collected in a dict: a later NAME replaces the earlier value in
    place; ``PREFIX.NAME =`` removes NAME, ``PREFIX =`` removes all."""

    __slots__ = ("check_name",)
    is_list = True

    def __init__(self, conv: Conv, type_doc: str, check_name: Callable[[str], None]) -> None:
        super().__init__(conv, type_doc)
        self.check_name = check_name

    def item(self, entry: Entry) -> Any:
        if entry.sub:
            self.check_name(entry.sub)
        elif entry.value:
            raise v.bad("a value needs a name after the prefix",
                        f"write {entry.key}.NAME = VALUE, or an empty value to clear all")
        return super().item(entry)

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        if entry.item is not RESET:
            return {**(old or {}), entry.sub: entry.item}
        if not entry.sub:
            return {}
        return {name: value for name, value in (old or {}).items() if name != entry.sub}


class Multi(Keyed):
    """``PREFIX.NAME = VALUE`` kept as an ordered list, repeats included (cgroup files are
    written in order; devices.allow may appear many times). Resets as :class:`Keyed`."""

    __slots__ = ()

    def item(self, entry: Entry) -> Any:
        value = super().item(entry)
        if value is RESET:
            return RESET
        return CgroupSetting(key=entry.sub, value=value, path=entry.path, line=entry.line)

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        if entry.item is not RESET:
            return (old or ()) + (entry.item,)
        if not entry.sub:
            return ()
        return tuple(item for item in old or () if item.key != entry.sub)


class Caps(Parser):
    """``lxc.cap.drop``/``lxc.cap.keep`` share one list, as in liblxc: state is
    (keep?, names, cleared?). Mixing the two is an error unless the list was cleared in
    between. cleared: an empty value (or ``keep = none``) emptied the list, which in
    liblxc also forgets the drops of an included common.conf: for lxcsd, its default drop
    set (lxcsd.runtime.plan)."""

    __slots__ = ("keep",)
    is_list = True

    def __init__(self, keep: bool) -> None:
        super().__init__(self._names, "capability names")
        self.keep = keep

    def _names(self, value: str) -> tuple[str, ...]:
        names = tuple(value.split())
        for name in names:
            if name == "none" and not self.keep:
                raise v.bad("'none' is only valid for lxc.cap.keep",
                            "write lxc.cap.keep = none to drop every capability")
            if name != "none":
                v.check_capability(name)
        return names

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        if entry.item is RESET:
            return (False, (), True)
        keep, names, cleared = old or (False, (), False)
        if self.keep != keep and names:
            raise v.bad("lxc.cap.keep and lxc.cap.drop are mutually exclusive",
                        "clear the other list first with an empty value")
        for name in entry.item:
            if name == "none":
                names, cleared = (), True
            else:
                names += (name,)
        return (self.keep, names, cleared)


class NamespaceList(Parser):
    """``lxc.namespace.clone``/``keep``: names accumulate; the two exclude each other."""

    __slots__ = ("other",)
    is_list = True

    def __init__(self, other: str) -> None:
        super().__init__(v.parse_namespace_list, "namespace names")
        self.other = other

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        if entry.item is RESET:
            return None
        if section.get(self.other):
            raise v.bad("lxc.namespace.clone and lxc.namespace.keep exclude each other",
                        f"remove one, or clear lxc.namespace.{self.other} first")
        merged = old or ()
        return merged + tuple(name for name in entry.item if name not in merged)


class Hooks(Parser):
    """``lxc.hook.TYPE``: commands per hook type (a dict TYPE → tuple); ``lxc.hook =``
    clears every type, ``lxc.hook.TYPE =`` one."""

    __slots__ = ("hook",)
    is_list = True

    def __init__(self, hook: str) -> None:
        super().__init__(v.parse_string, "command")
        self.hook = hook

    def item(self, entry: Entry) -> Any:
        if not self.hook and entry.value:
            raise v.bad("lxc.hook takes no value", "write lxc.hook.TYPE = COMMAND")
        return super().item(entry)

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        hooks: dict[str, tuple[str, ...]] = dict(old or {})
        if entry.item is not RESET:
            hooks[self.hook] = hooks.get(self.hook, ()) + (entry.item,)
        elif self.hook:
            hooks.pop(self.hook, None)
        else:
            hooks.clear()
        return hooks


# liblxc's allowed_auto_mounts[]: token -> fields of MountAuto it sets.
_AUTO_MOUNTS: dict[str, dict[str, Any]] = {
    "proc": {"proc": "mixed"}, "proc:mixed": {"proc": "mixed"}, "proc:rw": {"proc": "rw"},
    "sys": {"sys": "mixed"}, "sys:ro": {"sys": "ro"}, "sys:mixed": {"sys": "mixed"},
    "sys:rw": {"sys": "rw"},
}
for _kind in ("cgroup", "cgroup-full"):
    for _mode in (None, "mixed", "ro", "rw"):
        for _force in (False, True):
            _token = _kind + (f":{_mode}" if _mode else "") + (":force" if _force else "")
            _AUTO_MOUNTS[_token] = {"cgroup": _kind, "cgroup_mode": _mode, "cgroup_force": _force}
for _token, _mode in (("cgroup2", "rw"), ("cgroup2:ro", "ro"), ("cgroup2:force", "rw"),
                      ("cgroup2:ro:force", "ro")):
    _AUTO_MOUNTS[_token] = {"cgroup": "cgroup2", "cgroup_mode": _mode, "cgroup_force": True}


def _auto_mount_token(token: str) -> dict[str, Any]:
    if token.startswith("shmounts:"):
        host, _, container = token[9:].partition(":")
        if not host:
            raise v.bad("shmounts: needs a host path", "write shmounts:HOST_PATH[:CONTAINER_PATH]")
        return {"shmounts": (host, container or "/dev/.lxc-mounts")}
    fields = _AUTO_MOUNTS.get(token)
    if fields is None:
        raise v.bad(f"invalid filesystem to automount {token!r}",
                    "use proc[:mixed|:rw], sys[:ro|:mixed|:rw], cgroup[:mixed|:ro|:rw][:force], "
                    "cgroup-full[...], cgroup2[:ro][:force], shmounts:HOST[:CONTAINER]")
    return fields


def _auto_mounts(value: str) -> tuple[dict[str, Any], ...]:
    return tuple(_auto_mount_token(token) for token in value.split())


class AutoMounts(Parser):
    """``lxc.mount.auto``: tokens accumulate, a token replaces an earlier one of its group
    (proc, sys, cgroup, shmounts); an empty value clears all."""

    __slots__ = ()
    is_list = True

    def __init__(self) -> None:
        super().__init__(_auto_mounts, "auto-mount tokens")

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        if entry.item is RESET:
            return MountAuto()
        fields: dict[str, Any] = {}
        for update in entry.item:
            fields.update(update)
        return replace(old, **fields) if old else MountAuto(**fields)


class Bare(Parser):
    """A key that only takes an empty value, to clear everything under it (``lxc.net =``)."""

    __slots__ = ()

    def item(self, entry: Entry) -> Any:
        if entry.value:
            raise v.bad(f"{entry.canonical} takes no value",
                        f"write {entry.canonical} = (empty) to clear, or a subkey")
        return RESET


def _verbatim(entry_value: str) -> str:
    return entry_value


class CgroupMulti(Multi):
    """cgroup settings: the name must be CONTROLLER.FILE; device rules are checked, and for
    cgroup2 the values of the common limits (CGROUP2_VALUES), so that check reports what
    the kernel would refuse at start."""

    __slots__ = ("v2",)

    def __init__(self, v2: bool = False) -> None:
        super().__init__(_verbatim, "controller file value", check_cgroup_file)
        self.v2 = v2

    def item(self, entry: Entry) -> Any:
        item = super().item(entry)
        if item is not RESET and entry.sub in ("devices.allow", "devices.deny"):
            v.parse_device_rule(item.value)
        elif item is not RESET and self.v2 and entry.sub in CGROUP2_VALUES:
            CGROUP2_VALUES[entry.sub](item.value.strip())
        return item


class Hwaddr(Parser):
    """lxc.net.N.hwaddr: liblxc converts the first six octets and ignores what follows
    (lxc_convert_mac), so "00:16:3e:aa:bb:cc # web" starts there; here with a warning."""

    __slots__ = ()

    def item(self, entry: Entry) -> Any:
        value = entry.value
        if len(value) > 17 and value[17] in " \t#":
            entry.note = (f"text after the address is ignored: {value[17:].strip()!r} (LXC "
                          "has no inline comments: a '#' is part of the value)")
            return self.conv(value[:17])
        return super().item(entry)


def check_cgroup_file(name: str) -> None:
    if "." not in name.strip(".") or "/" in name or name.startswith("dir."):
        raise v.bad(f"{name!r} is not a cgroup controller file",
                    "write CONTROLLER.FILE, e.g. memory.max or pids.max")


def check_sysctl(name: str) -> None:
    if "/" in name or name.startswith(".") or ".." in name:
        raise v.bad(f"invalid sysctl name {name!r}",
                    "write a dotted name, e.g. net.ipv4.ip_forward")


def check_proc(name: str) -> None:
    if "/" in name or name in (".", ".."):
        raise v.bad(f"invalid /proc/PID file name {name!r}", "e.g. oom_score_adj")


def check_namespace(name: str) -> None:
    if name not in v.NAMESPACES:
        raise v.bad(f"unknown namespace {name!r}", "use one of " + " ".join(v.NAMESPACES))


class ProcList(Multi):
    """``lxc.proc.FILE``: (file, value) pairs in order."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(v.parse_string, "value", check_proc)

    def item(self, entry: Entry) -> Any:
        item = super().item(entry)
        return item if item is RESET else (entry.sub, item.value)

    def merge(self, old: Any, entry: Entry, section: dict[str, Any]) -> Any:
        if entry.item is not RESET:
            return (old or ()) + (entry.item,)
        return tuple(pair for pair in old or () if entry.sub and pair[0] != entry.sub)


class Noted(Parser):
    """A scalar whose listed values take no effect in lxcsd: they read as usual and the line
    gets a warning (``lxcsd check``) saying why."""

    __slots__ = ("notes",)

    def __init__(self, conv: Conv, type_doc: str, notes: dict[Any, str]) -> None:
        super().__init__(conv, type_doc)
        self.notes = notes

    def item(self, entry: Entry) -> Any:
        item = super().item(entry)
        if item is not RESET and item in self.notes:
            entry.note = self.notes[item]
        return item
