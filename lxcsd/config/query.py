"""The value of one key in a loaded config, as liblxc's get_config_item shows it.

:func:`values` replays the container's entries (includes expanded) for one key and returns
the raw values in effect, one string per value, after the reset rules: a single-valued key
gives its last value; a list gives every value since its last reset; a prefix key without a
name (``lxc.cgroup2``, ``lxc.sysctl``) or ``lxc.hook`` gives ``KEY = VALUE`` lines for
everything under it. Not on a hot path.
"""

from __future__ import annotations

from lxcsd.errors import ConfigError

from . import keys
from .model import Container, Entry
from .parsers import Keyed, Multi


def _resets(entry: Entry, canonical: str, spec: keys.Key) -> bool:
    """Whether an empty-valued entry clears ``canonical``."""
    other = entry.canonical
    if other == canonical:
        return True
    if canonical.startswith(other + "."):  # lxc.net, lxc.net.0, lxc.hook, lxc.cgroup2, ...
        return other in ("lxc.net", "lxc.hook") or other.startswith("lxc.net.") or \
            entry.spec is spec
    caps = ("lxc.cap.drop", "lxc.cap.keep")
    return other in caps and canonical in caps  # the two share one list in liblxc


def _matches(entry: Entry, canonical: str, bare: bool) -> bool:
    if entry.canonical == canonical:
        return True
    return bare and entry.canonical.startswith(canonical + ".")


def _type_resets(entry: Entry, canonical: str) -> bool:
    # lxc.net.N.type = X resets the network's other keys.
    network = entry.canonical[: -len("type")]
    return entry.canonical.endswith(".type") and entry.canonical.startswith("lxc.net.") and \
        canonical.startswith(network) and canonical != entry.canonical


def _shape(key: str) -> tuple[keys.Key, str, bool, bool]:
    """(spec, canonical name, whether the key names a whole prefix, whether it has many
    values); raises ConfigError for an unknown key."""
    try:
        spec, canonical, _, _ = keys.lookup(key)
    except keys.UnknownKey as exc:
        raise ConfigError(exc.message, key=key, hint=exc.hint) from None
    bare = canonical == spec.name and (spec.kind == "prefix" or canonical == "lxc.hook")
    parser = spec.parser
    many = bare or isinstance(parser, Multi) or (
        spec.is_list and not isinstance(parser, Keyed))
    return spec, canonical, bare, many


def is_list(key: str) -> bool:
    """Whether ``key`` holds several values (liblxc's getters print one per line)."""
    return _shape(key)[3]


def _head(canonical: str) -> str:
    """``lxc.X`` of ``lxc.X.Y...``: an entry can set or reset a key only when both share it
    (the checks below all compare prefixes, the cap lists share lxc.cap)."""
    first = canonical.find(".")
    second = canonical.find(".", first + 1)
    return canonical if second < 0 else canonical[:second]


def values(container: Container, key: str) -> list[str]:
    """The values in effect for ``key`` (legacy names accepted); [] when it is unset."""
    spec, canonical, bare, many = _shape(key)
    head = _head(canonical)
    found: list[str] = []
    for entry in container.entries:
        if entry.spec is None or entry.error is not None or _head(entry.canonical) != head:
            continue
        if (entry.value == "" and _resets(entry, canonical, spec)) or \
                _type_resets(entry, canonical):
            found = []
        elif entry.value and _matches(entry, canonical, bare):
            line = f"{entry.canonical} = {entry.value}" if bare else entry.value
            found = found + [line] if many else [line]
    return found
