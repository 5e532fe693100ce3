"""A container's config, loaded for the generator: the same model fields as
:func:`lxcsd.config.load.load_path`, at a fraction of its cost, or None when in doubt.

Why: the generator runs at every boot and daemon-reload and must keep up with Podman's
quadlet (docs/design.md); the full reader and builder cost ~150 µs per config, most of it
parsing values the generator never reads, again for every container although most lines
are the same in every config.

How, keeping every check of the full path:

- each distinct line is parsed once per run (:func:`lxcsd.config.reader.parse_line`, the
  reader's own code; parsed items are pure and shared, see
  ``lxcsd.config.parsers.Parser.item``), except cgroup lines, whose parsed item carries its
  file and line;
- includes are expanded by the reader (:func:`lxcsd.config.reader.expand_includes`), with
  its cache;
- only the entries the generator reads (start, groups, rootfs, signals, networks, cgroup
  settings) and those that can fail only in combination with other lines (capabilities,
  namespaces, id maps, cgroup directories, networks) are folded, with the keys' own
  ``apply``; the cross-key checks of :func:`lxcsd.config.build.validate` then run on them.

Anything unusual gives None and the caller takes the full path, which reports the exact
errors: an error on any line, a legacy key (their translation looks at the whole file),
``\\r`` or NUL in the text, or anything this module did not expect (an exception).
``tests/golden`` runs every golden case both ways and requires identical output.
"""

from __future__ import annotations

from lxcsd.config import build, keys, reader
from lxcsd.config.model import Entry
from lxcsd.config.parsers import Multi
from lxcsd.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.config.model import Container

_new = object.__new__
_FOLD_SECTIONS = frozenset({"start", "rootfs", "signals", "cgroup_dir", "namespace"})
_FOLD_FIELDS = frozenset({"groups", "cgroup2", "cgroup_v1", "idmaps", "caps"})
_CHECKED_ONLY = ("caps", "namespace")

# Line text -> what the next occurrence needs: (key, value, spec, canonical, sub, index,
# item) to rebuild a folded entry from; () for a valid line that is not folded; _REPARSE
# for a folded line parsed each time (cgroup lines: their item carries file and line).
_MEMO: dict[str, Any] = {}
_REPARSE = 1
_INCLUDE = keys.EXACT["lxc.include"]


class Unusual(Exception):
    """Take the full path."""


def _folded(spec: keys.Key) -> bool:
    return (isinstance(spec, (keys.NetKey, keys.NetResetKey, keys.IncludeKey))
            or spec.section in _FOLD_SECTIONS
            or (spec.section is None and spec.field in _FOLD_FIELDS))


def _parse(content: str, path: str, number: int) -> Entry | None:
    """A line seen for the first time: parsed by the reader, remembered in the memo.
    Returns its entry if it is folded."""
    entry = reader.parse_line(content, path, number)
    if entry is not None and (entry.error is not None
                              or keys.is_legacy(entry.key, entry.canonical)):
        raise Unusual  # a legacy key: its translation looks at the whole file
    if entry is None or entry.spec is None or not _folded(entry.spec):
        _MEMO[content] = ()
        return None
    spec = entry.spec
    _MEMO[content] = _REPARSE if isinstance(spec.parser, Multi) else (
        entry.key, entry.value, spec, entry.canonical, entry.sub, entry.index, entry.item)
    return entry


def _entry(memo: tuple[Any, ...], path: str, number: int) -> Entry:
    entry: Entry = _new(Entry)
    (entry.key, entry.value, entry.spec, entry.canonical, entry.sub, entry.index,
     entry.item) = memo
    entry.path, entry.line, entry.error, entry.note = path, number, None, ""
    return entry


def _lines(text: str, path: str) -> list[Entry]:
    """The entries of one file that are folded or included, in order (every line checked:
    parsed now, or known from the memo to parse without error)."""
    kept: list[Entry] = []
    memo = _MEMO
    number = 0
    for line in text.split("\n"):
        number += 1
        content = line.lstrip(" \t")
        if not content or content[0] == "#":
            continue
        found = memo.get(content)
        if found is None:
            entry = _parse(content, path, number)
        elif not found:
            continue
        elif found is _REPARSE:
            entry = reader.parse_line(content, path, number)
            if entry is None or entry.error is not None:
                raise Unusual
        else:
            kept.append(_entry(found, path, number))
            continue
        if entry is not None:
            kept.append(entry)
    return kept


def _expand(entries: list[Entry], path: str, identity: tuple[int, int]) -> list[Entry]:
    """Includes expanded in place, by the reader (and its cache of include expansions)."""
    if not any(entry.spec is _INCLUDE and entry.value for entry in entries):
        return entries
    return reader.expand_includes(entries, path, identity)


def _fold(entries: list[Entry], included: bool) -> dict[str, Any]:
    """Apply the folded entries (``included``: some come from includes, unfiltered)."""
    state: dict[str, Any] = {}
    include = _INCLUDE
    for entry in entries:
        spec = entry.spec
        if entry.error is not None or keys.is_legacy(entry.key, entry.canonical):
            raise Unusual
        if spec is None or spec is include or (included and not _folded(spec)):
            continue
        spec.apply(state, entry)
    if "_resolved" in state:
        raise Unusual  # legacy network numbering
    return state


def _load(path: str, name: str) -> Container:
    text, st = reader.read_text(path)
    if "\r" in text or "\0" in text:
        raise Unusual
    kept = _lines(text, path)
    entries = _expand(kept, path, (st.st_dev, st.st_ino))
    state = _fold(entries, entries is not kept)
    for checked_only in _CHECKED_ONLY:   # folded for their errors; the generator skips them
        state.pop(checked_only, None)
    container = build.assemble(state, name, path, ())
    if build.validate(container):
        raise Unusual
    return container


def load(path: str, name: str) -> Container | None:
    """The container at ``path`` with the fields the generator reads, or None: use
    :func:`lxcsd.config.load.load_path` (errors, legacy keys, anything unexpected)."""
    try:
        return _load(path, name)
    except (Unusual, ConfigError, OSError):
        return None
    except Exception:  # noqa: BLE001 - a surprise here must only cost the full path
        return None
