"""Fold entries into the typed model: :func:`build` (entries → Container).

The builder walks entries in order, as liblxc applies lines, and lets each key's parser fold
the pre-parsed value into a plain dict ``state`` (``state[field]`` for top-level attributes,
``state[section][field]`` for sections, ``state["net"][index][field]`` for networks). Then it
constructs the model once. Errors stop the build (the default, for the generator and the
runtime) or are collected (``errors=[]``, for ``lxcsd check``).

Each key folds its own lines (``Key.apply``, :mod:`lxcsd.config.keys`; networks as liblxc
does). Then :func:`assemble` makes the model, :func:`validate` checks what no single line
shows, and :func:`warnings` lists what ``lxcsd check`` shows beside errors.
"""

from __future__ import annotations

from itertools import islice

from lxcsd.errors import ConfigError

from . import keys
from .model import SECTIONS, Container, Entry, IdMap, Network, Rootfs
from .parsers import NamespaceList
from .record import replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def build(
    entries: list[Entry] | tuple[Entry, ...],
    *,
    name: str,
    config_path: str,
    errors: list[ConfigError] | None = None,
) -> Container:
    """Apply ``entries`` in order and return the Container.

    With ``errors=None`` the first error is raised (ConfigError, located at its line);
    otherwise every error is appended to ``errors`` and the build goes on, skipping the bad
    lines, so the returned Container is what the valid lines describe.
    """
    state: dict[str, Any] = {}
    segments = getattr(entries, "segments", None)
    lines = iter(entries)
    for entry in lines:
        error = entry.error
        if error is None:
            spec = entry.spec
            if spec is None:
                continue
            if spec is _INCLUDE:
                if segments and _apply_segment(state, entries, segments.get(id(entry))):
                    count = segments[id(entry)][1]
                    next(islice(lines, count, count), None)  # consume its entries
                continue
            try:
                spec.apply(state, entry)
                continue
            except ConfigError as exc:
                error = keys.config_error(exc, entry)
        else:
            error = _copy(error)  # the entry (maybe a cached include's) keeps its own
        if errors is None:
            raise error
        errors.append(error)
    container = assemble(state, name, config_path, entries)
    for error in validate(container):
        if errors is None:
            raise error
        errors.append(error)
    return container


def _copy(error: ConfigError) -> ConfigError:
    """A fresh exception: raising a shared one again and again would grow its traceback."""
    return ConfigError(error.message, path=error.path, line=error.line, key=error.key,
                       hint=error.hint)


# --- include files folded once ------------------------------------------------------------
#
# Every container includes common.conf (30-odd lines). Folded alone, an included file gives
# the same values as folded into a container's state as long as the container has not set
# any of the fields it touches yet (parsers only see the old value of their own field). So
# the fold of an include (with its own includes) is kept per exact file versions, and
# applied as a patch when none of its fields is set; otherwise its lines are folded one by
# one. Networks and lxc.namespace.clone/keep depend on more than their own field: an include
# using them is always folded line by line.

_INCLUDE = keys.EXACT["lxc.include"]
# A patch: (section or None for top-level fields, {field: value}) pairs.
if TYPE_CHECKING:
    Patch = tuple[tuple[str | None, dict[str, Any]], ...]
_PATCHES: dict[tuple[object, ...], Patch | None] = {}


def _patch(entries: list[Entry]) -> Patch | None:
    state: dict[str, Any] = {}
    for entry in entries:
        spec = entry.spec
        if entry.error is not None or isinstance(spec, (keys.NetKey, keys.NetResetKey)):
            return None
        if spec is None or isinstance(spec.parser, NamespaceList):
            if spec is not None:
                return None
            continue
        try:
            spec.apply(state, entry)
        except ConfigError:
            return None
    top = {field: value for field, value in state.items() if field not in SECTIONS}
    sections = [(field, value) for field, value in state.items() if field in SECTIONS]
    return ((None, top),) + tuple(sections) if top else tuple(sections)


def _apply_segment(state: dict[str, Any], entries: list[Entry] | tuple[Entry, ...],
                   segment: tuple[int, int, tuple[object, ...]] | None) -> bool:
    """Apply an include's cached fold if possible; False: fold its lines instead."""
    if segment is None:
        return False
    start, count, key = segment
    patch = _PATCHES.get(key, ())
    if patch == ():
        patch = _patch(list(entries[start: start + count]))
        if len(_PATCHES) < 1024:
            _PATCHES[key] = patch
    if not patch:
        return False
    for section, fields in patch:
        target = state if section is None else state.get(section)
        if target and not target.keys().isdisjoint(fields):
            return False
    for section, fields in patch:
        target = state if section is None else state.get(section) or state.setdefault(section, {})
        target.update(fields)
        for field, value in fields.items():
            if type(value) is dict:  # the model's dicts are never shared between containers
                target[field] = dict(value)
    return True


# --- assembly -------------------------------------------------------------------------------


def _rootfs(fields: dict[str, Any]) -> Rootfs:
    path, options = fields.get("path"), fields.get("options")
    return Rootfs(
        spec=path.spec if path else None,
        kind=path.kind if path else None,
        path=path.path if path else None,
        lower=path.lower if path else (),
        upper=path.upper if path else None,
        mount=fields.get("mount"),
        options=options[0] if options else None,
        mount_options=options[1] if options else None,
        managed=fields.get("managed"),
    )


def _networks(nets: dict[int, dict[str, Any]]) -> tuple[Network, ...]:
    return tuple(Network(index=index, **nets[index]) for index in sorted(nets))


def _resolved_entries(entries: list[Entry] | tuple[Entry, ...],
                      resolved: dict[int, str]) -> tuple[Entry, ...]:
    """Entries with legacy unindexed network keys given the index the builder assigned."""
    out = []
    for entry in entries:
        canonical = resolved.get(id(entry))
        if canonical is not None:
            entry = replace(entry, canonical=canonical, index=int(canonical.split(".")[2]),
                            error=None, note="")
        out.append(entry)
    return tuple(out)


def assemble(state: dict[str, Any], name: str, config_path: str,
             entries: list[Entry] | tuple[Entry, ...]) -> Container:
    """The Container of a folded state (``entries``: the lines it was folded from)."""
    fields: dict[str, Any] = {}
    for field, value in state.items():
        if field in SECTIONS:
            fields[field] = _rootfs(value) if field == "rootfs" else SECTIONS[field](**value)
        elif field == "net":
            fields["net"] = _networks(value)
        elif field == "caps":
            keep, names, cleared = value
            fields["caps_keep" if keep else "caps_drop"] = names
            fields["caps_cleared"] = cleared
        elif field[0] != "_":
            fields[field] = value
    resolved = state.get("_resolved")
    return Container(
        name=name, config_path=config_path,
        entries=_resolved_entries(entries, resolved) if resolved else tuple(entries),
        build_warnings=tuple(state.get("_warnings", ())), **fields,
    )


# --- checks across keys ---------------------------------------------------------------------


def _entry_for(container: Container, canonical: str) -> Entry | None:
    for entry in reversed(container.entries):
        if entry.canonical == canonical and entry.error is None:
            return entry
    return None


def _error_at(container: Container, canonical: str, message: str, hint: str = "") -> ConfigError:
    entry = _entry_for(container, canonical)
    if entry is None:
        return ConfigError(message, path=container.config_path, key=canonical, hint=hint)
    return ConfigError(message, path=entry.path, line=entry.line, key=entry.key, hint=hint)


def _overlap(maps: list[IdMap], side: str) -> tuple[IdMap, IdMap] | None:
    ranges = sorted(((getattr(m, side), m) for m in maps), key=lambda pair: pair[0])
    for (start, first), (next_start, second) in zip(ranges, ranges[1:], strict=False):
        if start + first.count > next_start:
            return first, second
    return None


def _check_idmaps(container: Container) -> list[ConfigError]:
    problems = []
    for kind in ("u", "g"):
        maps = [m for m in container.idmaps if m.kind == kind]
        for side, what in (("ns_id", "container"), ("host_id", "host")):
            pair = _overlap(maps, side)
            if pair:
                problems.append(_error_at(
                    container, "lxc.idmap", f"id mappings {pair[0]} and {pair[1]} overlap on "
                    f"the {what} side", "the kernel refuses overlapping ranges"))
    kinds = {m.kind for m in container.idmaps}
    if len(kinds) == 1:
        missing = "g" if "u" in kinds else "u"
        problems.append(_error_at(container, "lxc.idmap", f"lxc.idmap has no '{missing}' "
                                  "mapping", f"add e.g. lxc.idmap = {missing} 0 100000 65536"))
    return problems


def _check_cgroup_dirs(container: Container) -> list[ConfigError]:
    dirs = container.cgroup_dir
    if dirs.path and (dirs.container or dirs.monitor):
        return [_error_at(container, "lxc.cgroup.dir", "lxc.cgroup.dir excludes "
                          "lxc.cgroup.dir.container and lxc.cgroup.dir.monitor",
                          "use either lxc.cgroup.dir, or the container/monitor pair")]
    if bool(dirs.container) != bool(dirs.monitor):
        key = "lxc.cgroup.dir.container" if dirs.container else "lxc.cgroup.dir.monitor"
        return [_error_at(container, key, "lxc.cgroup.dir.container and "
                          "lxc.cgroup.dir.monitor must be set together")]
    return []


def validate(container: Container) -> list[ConfigError]:
    """Problems no single line shows (liblxc finds most of them only at start)."""
    problems: list[ConfigError] = []
    if container.idmaps:
        problems += _check_idmaps(container)
    if container.cgroup_dir.path or container.cgroup_dir.container or container.cgroup_dir.monitor:
        problems += _check_cgroup_dirs(container)
    return problems


# --- warnings -------------------------------------------------------------------------------


def _located(entry: Entry, message: str, hint: str = "") -> ConfigError:
    return ConfigError(message, path=entry.path, line=entry.line, key=entry.key, hint=hint)


def _entry_warnings(entry: Entry, seen: set[str]) -> list[ConfigError]:
    spec = entry.spec
    if entry.note:
        return [_located(entry, entry.note)]
    if spec is None or entry.error is not None:
        return []
    found: list[ConfigError] = []
    if keys.is_legacy(entry.key, entry.canonical):
        found.append(_located(entry, f"legacy key, now {entry.canonical}",
                              "lxc-update-config rewrites legacy keys"))
    if not spec.implemented and entry.value and spec.pattern not in seen:
        seen.add(spec.pattern)
        found.append(_located(entry, "recognized, but lxcsd does not implement it yet",
                              "it has no effect for now"))
    return found


def warnings(container: Container) -> list[ConfigError]:
    """What ``lxcsd check`` shows beside errors: ignored lines, legacy keys, keys not
    implemented yet (once per key), and the builder's own (Container.build_warnings)."""
    seen: set[str] = set()
    found = [w for entry in container.entries for w in _entry_warnings(entry, seen)]
    return found + list(container.build_warnings)
