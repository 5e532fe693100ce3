"""Edit a container's own config file line by line (``lxcsd config set/unset``, create, copy).

A :class:`ConfigDocument` keeps the file's lines as they are; :meth:`~ConfigDocument.set` and
:meth:`~ConfigDocument.unset` touch only the lines of the key they change, so comments, blank
lines, the order of other keys and included files stay as they were. Included files are
never edited: a value that comes from an include is overridden by writing the key into the
container's own file.

Rules, close to liblxc's set_config_item/clear_config_item:

- a single-valued key (``lxc.uts.name``, ``lxc.net.0.link``, ``lxc.cgroup2.memory.max``)
  is replaced in place on its last line in the file, keeping how the key was written; when
  the file does not set it, a ``KEY = VALUE`` line is appended (for a network key, after
  that network's last line);
- a list key (``lxc.mount.entry``, ``lxc.cap.drop``, ``lxc.cgroup2.devices.allow``...)
  gets a new line at the end of the file, where no include can reset it afterwards;
- an empty value removes the key's lines and writes ``KEY =``, which also clears what
  includes set;
- :meth:`~ConfigDocument.unset` removes the key's lines (for ``lxc.net.N``, ``lxc.hook`` or
  a prefix such as ``lxc.cgroup2``, every line under it). A key the table does not know (a
  typo, a key LXC removed, a line without '='), ``lxc.include`` and legacy unindexed
  network keys are removed where a line is written with exactly that key: every line
  ``lxcsd check`` reports can be removed.

Values are checked with the key table before anything changes (ConfigError otherwise);
:meth:`~ConfigDocument.save` replaces the file atomically, keeping its mode and owner.
"""

from __future__ import annotations

import os

from lxcsd.errors import ConfigError

from . import keys
from .model import Entry
from .parsers import Keyed, Multi
from .reader import parse_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_LISTS_BY_NAME = ("devices.allow", "devices.deny")


def _is_list(spec: keys.Key, sub: str) -> bool:
    """Whether ``set`` appends (lists) or replaces (single values)."""
    if isinstance(spec.parser, Keyed):
        return isinstance(spec.parser, Multi) and sub in _LISTS_BY_NAME
    return spec.is_list


def _quote(value: str) -> str:
    """Write a value so that the reader gets it back unchanged."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise ConfigError("a value cannot contain a line break or a NUL byte")
    stripped = value.strip(" \t")
    quoted = len(value) > 1 and value[0] in "\"'" and value[-1] == value[0]
    if stripped == value and not quoted:
        return value
    quote = "'" if '"' in value[:1] + value[-1:] else '"'
    return quote + value + quote


class _Line:
    __slots__ = ("index", "key", "canonical", "value")

    def __init__(self, index: int, key: str, canonical: str, value: str) -> None:
        self.index = index
        self.key = key
        self.canonical = canonical
        self.value = value


class ConfigDocument:
    """The lines of one config file, editable without disturbing the others."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.split("\n")

    @classmethod
    def load(cls, path: str) -> ConfigDocument:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise ConfigError(f"cannot read config: {exc.strerror}", path=path) from None
        return cls(path, data.decode("utf-8", "surrogateescape"))

    def text(self) -> str:
        return "\n".join(self.lines)

    # --- reading --------------------------------------------------------------------------

    def _keyed_lines(self) -> list[_Line]:
        """Every key line with its canonical key (legacy networks numbered as the builder
        does, counting this file only)."""
        found, legacy = [], -1
        for index, line in enumerate(self.lines):
            entry = parse_line(line.replace("\r", ""), self.path, index + 1)
            if entry is None or entry.spec is None:
                continue
            canonical = entry.canonical
            if entry.index == keys.LEGACY_NET_NEW:
                legacy += 1
            if entry.index < -1:
                canonical = f"lxc.net.{max(legacy, 0)}.{entry.sub}"
            found.append(_Line(index, entry.key, canonical, entry.value))
        return found

    def get(self, key: str) -> list[str]:
        """Values this file itself gives ``key``, in order (includes not read)."""
        canonical = _canonical(key)
        return [line.value for line in self._keyed_lines() if line.canonical == canonical]

    # --- editing --------------------------------------------------------------------------

    def set(self, key: str, value: str) -> str:
        """Set ``key`` to ``value`` (see the module docstring); returns the canonical key."""
        spec, canonical, sub, index = _resolve(key)
        _check_value(spec, canonical, sub, index, value)
        text = _quote(value)
        if value == "":
            self._remove(lambda line: line.canonical == canonical)
            self._append(f"{canonical} =")
        elif _is_list(spec, sub):
            self._append(f"{canonical} = {text}")
        else:
            self._replace_or_add(canonical, index, text)
        return canonical

    def unset(self, key: str) -> int:
        """Remove every line of ``key`` (and of its subkeys); returns how many."""
        try:
            spec, canonical, _, index = _resolve(key)
        except ConfigError:
            removed = self._remove_written(key)
            if removed:
                return removed
            raise
        bare = spec.kind == "prefix" or canonical in ("lxc.hook", "lxc.net") or (
            isinstance(spec, keys.NetResetKey) and index >= 0)
        prefix = canonical + "."
        return self._remove(lambda line: line.canonical == canonical
                            or (bare and line.canonical.startswith(prefix)))

    def _replace_or_add(self, canonical: str, index: int, text: str) -> None:
        matching = [line for line in self._keyed_lines() if line.canonical == canonical]
        if not matching:
            self._add(canonical, index, text)
            return
        last = matching[-1]
        line = self.lines[last.index]
        ending = "\r" if line.endswith("\r") else ""  # keep CRLF files CRLF
        eq = line.index("=")
        blanks = len(line[eq + 1:]) - len(line[eq + 1:].lstrip(" \t"))
        self.lines[last.index] = line[: eq + 1 + blanks] + text + ending

    def _add(self, canonical: str, index: int, text: str) -> None:
        new = f"{canonical} = {text}"
        if index >= 0:  # next to the network's other lines
            prefix = f"lxc.net.{index}."
            same = [line for line in self._keyed_lines() if line.canonical.startswith(prefix)]
            if same:
                self.lines.insert(same[-1].index + 1, new)
                return
        self._append(new)

    def _append(self, line: str) -> None:
        if self.lines[-1] == "":
            self.lines.insert(len(self.lines) - 1, line)
        else:
            self.lines.append(line)
            self.lines.append("")

    def _remove_written(self, key: str) -> int:
        """Remove the lines whose key is written exactly as key (whatever it means)."""
        doomed = set()
        for index, line in enumerate(self.lines):
            entry = parse_line(line.replace("\r", ""), self.path, index + 1)
            if entry is not None and entry.key == key:
                doomed.add(index)
        self.lines = [text for index, text in enumerate(self.lines) if index not in doomed]
        return len(doomed)

    def _remove(self, match: Callable[[_Line], bool]) -> int:
        doomed = {line.index for line in self._keyed_lines() if match(line)}
        self.lines = [text for index, text in enumerate(self.lines) if index not in doomed]
        return len(doomed)

    def save(self, path: str | None = None) -> None:
        """Replace the file atomically (same directory, rename), keeping mode and owner."""
        target = path or self.path
        data = self.text().encode("utf-8", "surrogateescape")
        temporary = f"{target}.lxcsd-tmp{os.getpid()}"
        try:
            st = os.stat(target)
        except FileNotFoundError:
            st = None
        try:
            _write(temporary, data, st)
            os.replace(temporary, target)
        except OSError as exc:
            _unlink(temporary)
            raise ConfigError(f"cannot write config: {exc.strerror}", path=target) from None


def _write(path: str, data: bytes, st: os.stat_result | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        if st is not None:
            os.fchmod(fd, st.st_mode & 0o7777)
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, st.st_uid, st.st_gid)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _resolve(key: str) -> tuple[keys.Key, str, str, int]:
    try:
        spec, canonical, sub, index = keys.lookup(key)
    except keys.UnknownKey as exc:
        raise ConfigError(exc.message, key=key, hint=exc.hint) from None
    if index < -1:
        raise ConfigError("legacy unindexed network keys cannot be set", key=key,
                          hint=f"write lxc.net.N.{sub}")
    if spec is keys.EXACT["lxc.include"]:
        raise ConfigError("lxc.include cannot be set this way", key=key,
                          hint="edit the file to add or remove includes")
    return spec, canonical, sub, index


def _canonical(key: str) -> str:
    return _resolve(key)[1]


def _check_value(spec: keys.Key, canonical: str, sub: str, index: int, value: str) -> None:
    entry = Entry(key=canonical, value=value, path="", line=0, canonical=canonical, spec=spec,
                  sub=sub, index=index)
    try:
        spec.parser.item(entry)
    except ConfigError as exc:
        exc.key = canonical
        raise
