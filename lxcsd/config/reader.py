"""Read LXC config files into entries: lines parsed, legacy keys translated, includes expanded.

Line syntax as liblxc's parse_line (confile.c): lines are split at ``\\n`` and ``\\r``;
blank lines and lines whose first non-blank character is ``#`` are skipped; lines that do not
start with ``lxc.`` are ignored by liblxc (kept here as a warning, except lxcsd's own
``lxcsd.*`` keys); ``KEY = VALUE`` with blanks
around ``=`` optional; the value is kept verbatim (a ``#`` inside it is part of it) except
that surrounding blanks and one pair of matching surrounding quotes are removed.

Never raises for what a file contains: a bad line becomes an :class:`~lxcsd.config.model.Entry`
carrying its error, raised when the builder applies it (so errors come in config order, and
``lxcsd check`` can report them all). Only an unreadable top-level file raises ConfigError.

Includes (``lxc.include = FILE`` or a directory's ``*.conf`` files in sorted order) are read
once per process and cached by path, inode and mtime: every container includes common.conf,
and the generator reads every container at boot. Cycles and nesting deeper than
:data:`MAX_INCLUDE_DEPTH` are errors.

API: :func:`read_config` (path → flat entry list), :func:`read_config_text` (the same for
text not yet saved), :func:`parse_text` (text → entries of one file, includes not
expanded), :func:`parse_line` (one line, for the writer), :func:`read_text` (a file's text
as the reader takes it), :func:`expand_includes` (includes of a list of entries expanded in
place), :func:`clear_cache`.
"""

from __future__ import annotations

import os
import stat

from lxcsd.errors import ConfigError

from . import keys
from .model import Entry
from .values import parse_rootfs_path

_new = object.__new__

MAX_FILE_SIZE = 16 << 20
MAX_INCLUDE_DEPTH = 64
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_INCLUDE = keys.EXACT["lxc.include"]
_RESOLVED = keys.RESOLVED
# lxcsd's own keys (lxcsd.init.notify): liblxc ignores every line not starting with "lxc."
# ("martian option" in confile.c parse_line), so a config using them still works with LXC.
LXCSD_PREFIX = "lxcsd."

# path -> (stat stamp, entries, positions of includes);
# directory path -> (stat stamp, sorted *.conf names)
_FILE_CACHE: dict[str, tuple[tuple[int, ...], tuple[Entry, ...], tuple[int, ...]]] = {}
_DIR_CACHE: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {}


def clear_cache() -> None:
    """Forget cached include files (tests, benchmarks of cold reads)."""
    _FILE_CACHE.clear()
    _DIR_CACHE.clear()
    _CLOSURE_CACHE.clear()


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


# --- one file -------------------------------------------------------------------------------


def read_text(path: str) -> tuple[str, os.stat_result]:
    """The file's text (UTF-8; undecodable bytes kept as surrogates) and its stat."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise OSError(f"{kind}")
        want = st.st_size + 1
        data = os.read(fd, min(want, MAX_FILE_SIZE + 1))
        if len(data) >= want:  # it grew since fstat (or /proc-like): read to the end
            data = _read_rest(fd, data)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_SIZE:
        raise OSError(f"larger than {MAX_FILE_SIZE >> 20} MiB")
    return data.decode("utf-8", "surrogateescape"), st


def _read_rest(fd: int, data: bytes) -> bytes:
    chunks = [data]
    total = len(data)
    while total <= MAX_FILE_SIZE and (chunk := os.read(fd, 1 << 16)):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _os_message(exc: OSError | ValueError) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _error_entry(path: str, line: int, key: str, value: str, message: str,
                 hint: str = "") -> Entry:
    error = ConfigError(message, path=path, line=line, key=key, hint=hint)
    return Entry(key=key, value=value, path=path, line=line, canonical=key, error=error)


def _rootfs_backend(text: str) -> str | None:
    """lxc-update-config prefixes a legacy lxc.rootfs with the file's last
    lxc.rootfs.backend (default dir)."""
    backend = None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip(" \t") == "lxc.rootfs.backend" and value.strip(" \t"):
            backend = value.strip(" \t")
    return backend


def _legacy_rootfs(entry: Entry, backend: str | None) -> None:
    if backend and entry.value[:1] == "/":
        try:
            entry.item = parse_rootfs_path(f"{backend}:{entry.value}")
        except ConfigError as exc:
            entry.error = keys.config_error(exc, entry)


def _odd_line(line: str, path: str, number: int) -> Entry | None:
    """Lines liblxc skips or rejects: blank, comment, not lxc.*, no '=', NUL bytes."""
    text = line.lstrip(" \t")
    if not text.strip(" \t\f") or text[0] == "#":
        return None
    if "\0" in text:
        key = text.partition("=")[0].strip(" \t").replace("\0", "\\0")
        return _error_entry(path, number, key, "", "line contains a NUL byte",
                            "the file is binary or corrupt")
    if text.startswith(LXCSD_PREFIX) and "=" in text:
        return _entry(text, path, number)  # lxcsd's own keys, which liblxc skips
    if not text.startswith("lxc."):
        note = "ignored: not an lxc.* key (liblxc ignores such lines)"
        key = text.split("=", 1)[0].strip(" \t")
        return Entry(key=key, value="", path=path, line=number, canonical=key, note=note)
    key, colon, value = text.strip(" \t").partition(":")
    if colon and " " not in key.strip():  # Proxmox's pct.conf syntax, copied over
        return _error_entry(path, number, key.strip(), value.strip(),
                            "'key: value' is Proxmox's syntax, not LXC's",
                            f"write {key.strip()} = {value.strip()}")
    return _error_entry(path, number, text.strip(" \t"), "", "line has no '='",
                        "write KEY = VALUE")


def _placeholder(text: str) -> str | None:
    """An unsubstituted template placeholder in a line: @NAME@ (autoconf, LXC's own
    templates) or {{ name }} (jinja2, mustache). Scanned by hand: no re on the hot path."""
    start = text.find("{{")
    if start >= 0 and text.find("}}", start) > start:
        return text[start:text.find("}}", start) + 2]
    at = text.find("@")
    while at >= 0:
        end = text.find("@", at + 1)
        if end < 0:
            return None
        word = text[at + 1:end]
        if word and word[0].isupper() and word.replace("_", "").isalnum() and word.isupper():
            return text[at:end + 1]
        at = end
    return None


def _entry(text: str, path: str, number: int) -> Entry | None:
    """A line that starts with "lxc." after blanks (``text``) → its Entry."""
    eq = text.find("=")
    if eq < 0 or "\0" in text:
        return _odd_line(text, path, number)
    key = text[:eq].rstrip(" \t")
    value = text[eq + 1:].strip(" \t")
    if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0]:
        value = value[1:-1]
    if ("@" in text or "{{" in text) and _placeholder(text):
        return _error_entry(path, number, key, value, "unsubstituted template placeholder "
                            f"{_placeholder(text)}", "this file is a template that was not "
                            "rendered: put the real value in")
    if ":" in key:  # "lxc.environment: A=1": Proxmox's syntax with an '=' in the value
        return _odd_line(text, path, number)
    found = _RESOLVED.get(key)
    if found is None:
        try:
            found = keys.lookup(key)
        except keys.UnknownKey as exc:
            return _unknown(key, value, path, number, exc)
    # Entry(...) without keyword arguments, which cost 2.5 times as much: this runs for every
    # line of every container at boot.
    entry: Entry = _new(Entry)
    entry.key, entry.value, entry.path, entry.line = key, value, path, number
    spec = entry.spec = found[0]
    entry.canonical, entry.sub, entry.index = found[1], found[2], found[3]
    entry.error = None
    entry.note = ""
    try:
        entry.item = spec.parser.item(entry)
    except ConfigError as exc:
        entry.item = None
        entry.error = keys.config_error(exc, entry)
    return entry


def _unknown(key: str, value: str, path: str, number: int, exc: keys.UnknownKey) -> Entry:
    if key in keys.REMOVED:
        note = f"ignored: {key} was removed in LXC 2.1 (lxc-update-config deletes it)"
        return Entry(key=key, value=value, path=path, line=number, canonical=key, note=note)
    return _error_entry(path, number, key, value, exc.message, exc.hint)


def parse_line(line: str, path: str = "", number: int = 0) -> Entry | None:
    """One line → an Entry, or None for blank and comment lines (``\\r`` must be split off)."""
    text = line.lstrip(" \t")
    if text.startswith("lxc."):
        return _entry(text, path, number)
    return _odd_line(text, path, number)


def parse_text(text: str, path: str) -> tuple[Entry, ...]:
    """Entries of one file, in order (includes appear as entries, not expanded)."""
    entries: list[Entry] = []
    number = 0
    for line in text.split("\n"):
        number += 1
        content = line.lstrip(" \t")
        if content.startswith("lxc.") and "\r" not in content:
            entry = _entry(content, path, number)
        elif content[:1] == "#" and "\r" not in content or not content:
            continue  # most lines of a typical config: skip them without a call
        else:
            entry = None
            # liblxc splits lines at \r too: "a = b\rc = d" is two lines.
            for part in content.split("\r"):
                entry = parse_line(part, path, number)
                if entry is not None:
                    entries.append(entry)
            continue
        if entry is not None:
            entries.append(entry)
    if "lxc.rootfs" in text:
        backend = _rootfs_backend(text) if "lxc.rootfs.backend" in text else None
        for entry in entries:
            if entry.key == "lxc.rootfs" and entry.error is None:
                _legacy_rootfs(entry, backend)
    return tuple(entries)


# --- includes -------------------------------------------------------------------------------


class Entries(list[Entry]):
    """read_config's result: the entries, plus ``segments``, which tells the builder where
    each include's entries are: id(include entry) -> (start, count, key), ``key`` naming the
    exact versions of every file read for it (so the builder may reuse their folded result,
    see lxcsd.config.build); and ``stamps``, (path, stat stamp) of every file and directory
    read, the config first (``()`` for a missing include directory): what a compiled start
    plan depends on (lxcsd.runtime.planfile)."""

    segments: dict[int, tuple[int, int, tuple[object, ...]]]
    stamps: list[tuple[str, tuple[int, ...]]]


# An include's whole expansion (its entries with nested includes expanded), by include value:
# (stamps of every file and directory read, entries, nested segments, nesting depth). Every
# container includes common.conf, which includes common.conf.d/: reusing the expansion
# costs one stat per file instead of walking the includes again. Only expansions without
# errors are kept (so they hold no cycle, see _Expansion.reuse).
TYPE_CHECKING = False
if TYPE_CHECKING:
    _Closure = tuple[tuple[tuple[str, tuple[int, ...]], ...], tuple[Entry, ...],
                     tuple[tuple[int, int, int, tuple[object, ...]], ...], int]
_CLOSURE_CACHE: dict[str, _Closure] = {}


def _unchanged(stamps: tuple[tuple[str, tuple[int, ...]], ...]) -> bool:
    for path, stamp in stamps:
        try:
            if _stamp(os.stat(path)) != stamp:
                return False
        except FileNotFoundError:
            if stamp:
                return False
        except (OSError, ValueError):
            return False
    return True


class _Expansion:
    """State of one read_config call: the output list and the include stack."""

    __slots__ = ("out", "stack", "names", "stamps", "failures", "deepest")

    def __init__(self) -> None:
        self.out = Entries()
        self.out.segments = {}
        self.stack: list[tuple[int, int]] = []  # (st_dev, st_ino) of files being expanded
        self.names: list[str] = []
        self.stamps: list[tuple[str, tuple[int, ...]]] = []  # every file and directory read
        self.out.stamps = self.stamps
        self.failures = 0
        self.deepest = 0

    def add(self, entries: tuple[Entry, ...], includes: tuple[int, ...]) -> None:
        """Append a file's entries, expanding the includes at positions ``includes``."""
        out = self.out
        start = 0
        for position in includes:
            out.extend(entries[start: position + 1])
            self.segment(entries[position])
            start = position + 1
        out.extend(entries[start:] if start else entries)

    def segment(self, entry: Entry) -> None:
        """Expand one include and record where its entries went."""
        target = include_target(entry.value)
        cached = _CLOSURE_CACHE.get(target)
        if cached is not None and self.reuse(entry, cached):
            return
        out = self.out
        begin, stamps, failures = len(out), len(self.stamps), self.failures
        depth = self.deepest = len(self.stack)
        self.include(entry, target)
        if self.failures != failures:
            return
        key = tuple(self.stamps[stamps:])
        if len(out) > begin:
            out.segments[id(entry)] = (begin, len(out) - begin, key)
        nested = tuple((ident, start - begin, count, nested_key)
                       for ident, (start, count, nested_key) in out.segments.items()
                       if start >= begin and ident != id(entry))
        if len(_CLOSURE_CACHE) < 1024:
            _CLOSURE_CACHE[target] = (key, tuple(out[begin:]), nested, self.deepest - depth)

    def reuse(self, entry: Entry, cached: _Closure) -> bool:
        """Append a cached expansion if its files are unchanged and it cannot close a cycle
        (it has none inside; one through the current stack must pass its first file)."""
        key, entries, nested, depth = cached
        first = key[0][1][:2] if key and key[0][1] else None
        if first in self.stack or len(self.stack) + depth >= MAX_INCLUDE_DEPTH:
            return False
        if not _unchanged(key):
            return False
        out = self.out
        begin = len(out)
        out.extend(entries)
        if entries:
            out.segments[id(entry)] = (begin, len(entries), key)
        for ident, start, count, nested_key in nested:
            out.segments[ident] = (begin + start, count, nested_key)
        self.stamps.extend(key)
        return True

    def include(self, entry: Entry, target: str) -> None:
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            self.fail(entry, f"includes nested deeper than {MAX_INCLUDE_DEPTH} files",
                      "an include chain this deep is almost certainly a mistake")
        elif target[-1] == "/":
            self.include_dir(entry, target)
        else:
            self.include_path(entry, target)

    def include_path(self, entry: Entry, target: str, listed: bool = False) -> None:
        """Include a file, or a directory unless ``target`` came from a directory listing
        (liblxc reads *.conf entries as files, so a directory there is an error)."""
        try:
            st = os.stat(target)
        except FileNotFoundError:
            relative = "" if entry.value[:1] == "/" else \
                f" ({entry.value!r} is relative to the reader's working directory, as in liblxc)"
            self.fail(entry, f"include {target} not found{relative}",
                      "fix the path, or remove the lxc.include line")
            return
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            self.fail(entry, f"cannot open include {target}: {_os_message(exc)}",
                      "fix the path, or remove the lxc.include line")
            return
        if stat.S_ISDIR(st.st_mode) and not listed:
            self.include_dir(entry, target, st)
        elif not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            self.stamps.append((target, _stamp(st)))  # /dev/null: liblxc reads nothing
        else:
            self.include_file(entry, target, st)

    def include_dir(self, entry: Entry, target: str, st: os.stat_result | None = None) -> None:
        try:
            stamp = _stamp(st or os.stat(target))
            names = _conf_names(target, stamp)
        except FileNotFoundError:
            self.stamps.append((target, ()))
            return  # liblxc skips a missing include directory
        except OSError as exc:
            self.fail(entry, f"cannot list include directory {target}: {_os_message(exc)}")
            return
        self.stamps.append((target, stamp))
        for name in names:
            self.include_path(entry, os.path.join(target, name), listed=True)

    def include_file(self, entry: Entry, target: str, st: os.stat_result) -> None:
        identity = (st.st_dev, st.st_ino)
        if identity in self.stack:
            chain = " -> ".join(self.names[self.stack.index(identity):] + [target])
            self.fail(entry, f"include cycle: {chain}", "remove one of the lxc.include lines")
            return
        stamp = _stamp(st)
        try:
            entries, includes = _cached_file(target, stamp)
        except OSError as exc:
            self.fail(entry, f"cannot read include {target}: {_os_message(exc)}")
            return
        self.stamps.append((target, stamp))
        self.stack.append(identity)
        self.names.append(target)
        self.deepest = max(self.deepest, len(self.stack))
        self.add(entries, includes)
        self.stack.pop()
        self.names.pop()

    def fail(self, entry: Entry, message: str, hint: str = "") -> None:
        self.failures += 1
        self.out.append(_error_entry(entry.path, entry.line, entry.key, entry.value, message,
                                     hint))


def include_target(value: str) -> str:
    """An lxc.include value as liblxc opens it: a relative path is relative to the working
    directory of the reading process (the helper's and the generator's is /); a trailing
    '/' (a directory, skipped when missing) is kept."""
    return value if value[:1] == "/" else os.path.join(os.getcwd(), value)


def _conf_names(directory: str, stamp: tuple[int, ...]) -> tuple[str, ...]:
    """The directory's *.conf names, sorted (liblxc uses readdir order: unspecified)."""
    cached = _DIR_CACHE.get(directory)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    names = tuple(sorted(n for n in os.listdir(directory) if len(n) > 5 and n.endswith(".conf")))
    _DIR_CACHE[directory] = (stamp, names)
    return names


def _include_positions(entries: tuple[Entry, ...]) -> tuple[int, ...]:
    return tuple(pos for pos, entry in enumerate(entries)
                 if entry.spec is _INCLUDE and entry.error is None and entry.value)


def _cached_file(path: str, stamp: tuple[int, ...]) -> tuple[tuple[Entry, ...], tuple[int, ...]]:
    cached = _FILE_CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    text, st = read_text(path)
    entries = parse_text(text, path)
    includes = _include_positions(entries)
    _FILE_CACHE[path] = (_stamp(st), entries, includes)
    return entries, includes


def read_config(path: str) -> Entries:
    """Every entry of a container config in application order, includes expanded.

    Raises ConfigError only when ``path`` itself cannot be read; everything else is carried
    by entries (see the module docstring).
    """
    try:
        text, st = read_text(path)
    except OSError as exc:
        raise ConfigError(f"cannot read config: {_os_message(exc)}", path=path,
                          hint="check the path and its permissions") from None
    entries = _expand(text, path, (st.st_dev, st.st_ino))
    entries.stamps.insert(0, (path, _stamp(st)))
    return entries


def read_config_text(text: str, path: str) -> Entries:
    """Like :func:`read_config` for ``text`` standing for the file at ``path`` (writers check
    an edit this way before saving it)."""
    try:
        st = os.stat(path)
        identity = (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        identity = (-1, -1)
    return _expand(text, path, identity)


def _expand(text: str, path: str, identity: tuple[int, int]) -> Entries:
    return expand_includes(parse_text(text, path), path, identity)


def expand_includes(entries: tuple[Entry, ...] | list[Entry], path: str,
                    identity: tuple[int, int]) -> Entries:
    """``entries`` of the file at ``path`` (``identity``: its st_dev and st_ino, for
    cycles) with each include expanded in place, as :func:`read_config` does."""
    expansion = _Expansion()
    expansion.stack.append(identity)
    expansion.names.append(path)
    entries = tuple(entries)
    expansion.add(entries, _include_positions(entries))
    return expansion.out
