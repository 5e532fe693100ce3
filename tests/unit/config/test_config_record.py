"""Records (lxcsd.config.record) and the model built of them: frozen, keyword-only, fields
written once; what the key table fills is a field of the model, of the declared type."""

from __future__ import annotations

import collections.abc
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

from lxcsd.config import keys, model
from lxcsd.config.build import warnings as config_warnings
from lxcsd.config.load import load_path
from lxcsd.config.record import Record, fields, replace
from lxcsd.errors import ConfigError
from lxcsd.paths import SOURCE_TREE

DATA = Path(__file__).parent / "data"


class Point(Record):
    x: int
    y: int = 0
    tags: dict[str, str] = {}


class Cell(Record, frozen=False):
    value: str


def test_records_are_keyword_only_and_check_their_fields() -> None:
    assert Point(x=1) == Point(x=1, y=0) and Point(x=1) != Point(x=2)
    assert hash(model.IdMap(kind="u", ns_id=0, host_id=1, count=2)) == \
        hash(model.IdMap(kind="u", ns_id=0, host_id=1, count=2))
    assert fields(Point) == ("x", "y", "tags") and Point.__slots__ == ("x", "y", "tags")
    with pytest.raises(TypeError, match="needs the field 'x'"):
        Point(y=1)
    with pytest.raises(TypeError, match="has no field 'z'"):
        Point(x=1, z=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1)  # type: ignore[misc]
    assert repr(Point(x=1)) == "Point(x=1, y=0, tags={})"
    assert replace(Point(x=1, y=2), y=3) == Point(x=1, y=3)


def test_frozen_unless_asked_and_dict_defaults_are_not_shared() -> None:
    point = Point(x=1)
    with pytest.raises(AttributeError, match="read-only"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.x  # type: ignore[misc]
    assert point.tags is not Point(x=2).tags
    cell = Cell(value="a")
    cell.value = "b"
    assert cell.value == "b"
    with pytest.raises(TypeError):
        hash(cell)  # mutable: unhashable, as dataclasses


def test_shared_empty_sections_cannot_be_changed_through_a_container() -> None:
    first = model.Container(name="a", config_path="/a")
    second = model.Container(name="b", config_path="/b")
    assert first.console is second.console
    with pytest.raises(AttributeError):
        first.console.path = "/dev/null"  # type: ignore[misc]
    assert first.hooks is not second.hooks


def test_entries_are_mutable_and_equal_only_to_themselves() -> None:
    entry = model.Entry(key="lxc.arch", value="x86_64", path="/c", line=1)
    twin = model.Entry(key="lxc.arch", value="x86_64", path="/c", line=1)
    entry.note = "n"
    assert entry != twin and entry == entry and len({entry, twin}) == 2


# What the model's annotations name (some only under TYPE_CHECKING there).
NAMES = {**vars(model), "Any": typing.Any, "ClassVar": typing.ClassVar, "Key": keys.Key,
         "Callable": collections.abc.Callable,
         "ConfigError": ConfigError}


def _hints(cls: type[Record]) -> dict[str, object]:
    hints = typing.get_type_hints(cls, NAMES)
    return {name: hints[name] for name in fields(cls)}


def _model_fields() -> dict[tuple[str | None, str], object]:
    """(section or None, field) -> its annotation, for every model field."""
    found: dict[tuple[str | None, str], object] = {}
    for name, hint in _hints(model.Container).items():
        found[(None, name)] = hint
    for section, cls in model.SECTIONS.items():
        for name, hint in _hints(cls).items():
            found[(section, name)] = hint
    for name, hint in _hints(model.Network).items():
        found[("net", name)] = hint
    return found


# The table's destinations the builder reshapes before the model: caps (caps_drop,
# caps_keep, caps_cleared), rootfs.path and rootfs.options (several Rootfs fields).
RESHAPED = {(None, "caps"), ("rootfs", "path"), ("rootfs", "options"), (None, "net"),
            (None, "include")}


def test_every_key_fills_a_field_of_the_model() -> None:
    known = _model_fields()
    missing = []
    for key in keys.KEYS:
        section = "net" if isinstance(key, keys.NetKey) else key.section
        where = (section, key.field)
        if where not in known and where not in RESHAPED:
            missing.append(f"{key.pattern} -> {where}")
    assert missing == []


def _conforms(value: object, hint: object) -> bool:
    """A small isinstance over the annotations the model uses."""
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(item, args[0]) for item in value)
        return len(value) == len(args) and all(map(_conforms, value, args))
    if origin is dict:
        return isinstance(value, dict) and all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items())
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)  # type: ignore[arg-type]


def _check(record: Record, where: str, wrong: list[str]) -> None:
    hints = _hints(type(record))
    for name in fields(record):
        value = getattr(record, name)
        if not _conforms(value, hints[name]):
            wrong.append(f"{where}.{name} = {value!r} is not {hints[name]}")
        for item in (value if isinstance(value, tuple) else (value,)):
            if isinstance(item, Record) and not isinstance(item, model.Entry):
                _check(item, f"{where}.{name}", wrong)


@pytest.mark.parametrize("config", sorted(p.name for p in DATA.glob("*.conf")))
def test_built_models_have_the_declared_types(config: str) -> None:
    """What the parsers produce is what the model declares (mypy cannot see through the
    builder's per-key state)."""
    assert not _conforms(("1",), tuple[int, ...]) and not _conforms(True, int | None)
    container = load_path(str(DATA / config), name="c")
    wrong: list[str] = []
    _check(container, "container", wrong)
    assert wrong == []


def test_cgroup_relative_0_warns_that_it_has_no_effect(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("lxc.cgroup.relative = 0\n")
    (warning,) = config_warnings(load_path(str(path)))
    assert warning.line == 1 and "no effect" in warning.message
    path.write_text("lxc.cgroup.relative = 1\n")
    assert config_warnings(load_path(str(path))) == []


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs Debian's python3")
def test_records_import_light() -> None:
    """The model imports nothing beyond the record module (no typing, no dataclasses)."""
    code = (f"import sys; sys.path.insert(0, {SOURCE_TREE!r})\n"
            "before = set(sys.modules)\nimport lxcsd.config.model\n"
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run(["/usr/bin/python3", "-IS", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert eval(out) == ["__future__", "lxcsd", "lxcsd.config", "lxcsd.config.model",
                         "lxcsd.config.record"], out
    assert sys.version_info >= (3, 11)
