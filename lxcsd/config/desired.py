"""Give a container's config the values a fragment names (``lxcsd config apply``).

A fragment is LXC config text: the keys a tool or an admin wants, with their values. After
:func:`apply`, every key the fragment names has in effect (includes read, LXC's reset rules
applied, as ``lxcsd config get`` shows it) exactly the values it has in the fragment read
on its own; keys the fragment does not name keep theirs. A list key named in the fragment
gets exactly the fragment's lines (not more lines added to what the file had). An empty
value for a group of keys (``lxc.net =``, ``lxc.net.1 =``, ``lxc.cgroup2 =``, ``lxc.hook =``)
makes the whole group what the fragment says: ``lxc.net =`` followed by network lines makes
the networks exactly those.

The file is edited with :class:`~lxcsd.config.document.ConfigDocument` (comments, order and
includes kept), and a key already right is not touched, so applying the same fragment again
changes nothing (what configuration tools call idempotent). Nothing is saved here: the
caller checks the result as a whole (``lxcsd config`` refuses an edit that adds an error)
and saves it.
"""

from __future__ import annotations

from lxcsd.errors import ConfigError

from . import keys, query
from .build import build
from .document import ConfigDocument
from .reader import parse_text, read_config_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .model import Container, Entry

# What a group of keys has in effect: key -> values, for the keys that have any.
Values = dict[str, list[str]]


def _is_group(entry: Entry) -> bool:
    """Whether an empty value of this entry clears a group of keys (LXC's reset rules)."""
    spec = entry.spec
    if spec is None or entry.value != "":
        return False
    if isinstance(spec, keys.NetResetKey) or entry.canonical == "lxc.hook":
        return True
    return spec.kind == "prefix" and entry.canonical == spec.name


def _under(key: str, scope: str) -> bool:
    return key == scope or key.startswith(scope + ".")


def fragment_entries(text: str, path: str) -> tuple[Entry, ...]:
    """The fragment's lines; a line LXC would not take (unknown key, no '=', an include, a
    legacy unindexed network key) is a ConfigError at the fragment's file and line."""
    entries = parse_text(text, path)
    for entry in entries:
        if entry.error is not None:
            raise entry.error
        if entry.spec is None:
            raise ConfigError(entry.note or "not a config key", path=path, line=entry.line,
                              key=entry.key)
        if entry.spec is keys.EXACT["lxc.include"] or entry.index < -1:
            what = "lxc.include" if entry.index >= -1 else "a legacy unindexed network key"
            raise ConfigError(f"{what} cannot be applied", path=path, line=entry.line,
                              key=entry.key, hint="write lxc.net.N.KEY for networks; "
                              "edit the file itself for includes")
        _check(entry)
    return entries


def _check(entry: Entry) -> None:
    """The key table's check of one value (the writer's), located in the fragment."""
    if entry.value == "":
        return
    try:
        ConfigDocument(entry.path, "").set(entry.key, entry.value)
    except ConfigError as exc:
        exc.path, exc.line = entry.path, entry.line
        raise


def scopes(entries: tuple[Entry, ...]) -> list[str]:
    """The keys and groups a fragment names, in order: a key inside a group the fragment
    resets belongs to that group."""
    groups = [entry.canonical for entry in entries if _is_group(entry)]
    found: list[str] = []
    for entry in entries:
        covering = [group for group in groups if _under(entry.canonical, group)]
        scope = min(covering, key=len) if covering else entry.canonical
        if scope not in found:
            found.append(scope)
    return found


def in_effect(container: Container, scope: str) -> Values:
    """Every key under ``scope`` that has values in ``container``, with its values."""
    found: Values = {}
    for entry in container.entries:
        key = entry.canonical
        if entry.spec is None or key in found or not _under(key, scope):
            continue
        values = query.values(container, key)
        if values:
            found[key] = values
    return found


def _load(text: str, path: str, name: str) -> Container:
    """The config ``text`` would be (includes read), errors skipped: they are the caller's
    to report."""
    errors: list[ConfigError] = []
    return build(read_config_text(text, path), name=name, config_path=path, errors=errors)


def _ordered(wanted: Values) -> list[tuple[str, str]]:
    """(key, value) lines to write: a network's type first, as it resets the network's
    other keys."""
    lines = [(key, value) for key, values in wanted.items() for value in values]
    return sorted(lines, key=lambda line: not (line[0].startswith("lxc.net.")
                                               and line[0].endswith(".type")))


def _replace(document: ConfigDocument, scope: str, wanted: Values, name: str) -> None:
    """Write ``scope`` anew: the file's own lines removed, a reset line if an include still
    gives it values, then the wanted lines."""
    document.unset(scope)
    if in_effect(_load(document.text(), document.path, name), scope):
        document.set(scope, "")
    for key, value in _ordered(wanted):
        document.set(key, value)


def _edit(document: ConfigDocument, scope: str, wanted: Values, name: str) -> None:
    """Make ``scope`` have ``wanted``, with the smallest edit that does: a key's line
    replaced in place, a group edited key by key; else the scope written anew."""
    if scope in wanted or not wanted:
        if list(wanted) == [scope] and len(wanted[scope]) == 1 and \
                len(document.get(scope)) <= 1:
            # As ``lxcsd config set``: in place, or added (a list key that had other values
            # than this one falls through to _replace).
            document.set(scope, wanted[scope][0])
    else:
        _edit_group(document, scope, wanted, name)
    if in_effect(_load(document.text(), document.path, name), scope) != wanted:
        _replace(document, scope, wanted, name)


def _edit_group(document: ConfigDocument, scope: str, wanted: Values, name: str) -> None:
    """A group key by key: the file's own keys the fragment does not give removed, the
    others edited as single keys."""
    own = {entry.canonical for entry in parse_text(document.text(), document.path)
           if entry.spec is not None and _under(entry.canonical, scope)}
    for key in sorted(own - set(wanted)):
        document.unset(key)
    current = _load(document.text(), document.path, name)
    for key, values in sorted(wanted.items(), key=lambda item: not item[0].endswith(".type")):
        if in_effect(current, key) != {key: values}:
            _edit(document, key, {key: values}, name)


def apply(document: ConfigDocument, fragment: tuple[Entry, ...], name: str) -> list[str]:
    """Edit ``document`` so that each key or group the fragment names has the fragment's
    values in effect; returns the scopes that were changed (none: the document is as it
    was). ConfigError for a value the key table refuses, or a key an include keeps from
    taking its value."""
    wants = _load_fragment(fragment, document.path, name)
    current = _load(document.text(), document.path, name)
    changed = []
    for scope, wanted in wants.items():
        if in_effect(current, scope) == wanted:
            continue
        _edit(document, scope, wanted, name)
        changed.append(scope)
    if changed:
        _verify(document, wants, name)
    return changed


def _load_fragment(fragment: tuple[Entry, ...], path: str, name: str) -> dict[str, Values]:
    """scope -> what the fragment, read on its own, gives the keys under it."""
    alone = build(fragment, name=name, config_path=path, errors=[])
    return {scope: in_effect(alone, scope) for scope in scopes(fragment)}


def _verify(document: ConfigDocument, wants: dict[str, Values], name: str) -> None:
    """Every scope has its values in the edited text (an include read after a key's line
    can override it: said, rather than saved wrong)."""
    after = _load(document.text(), document.path, name)
    for scope, wanted in wants.items():
        got = in_effect(after, scope)
        if got != wanted:
            raise ConfigError(f"cannot give {scope} its value here: the config would have "
                              f"{got or 'nothing'}", path=document.path, key=scope,
                              hint="an lxc.include after the key's line overrides it; "
                              "edit the file")
