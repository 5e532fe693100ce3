"""Records: frozen, slotted, keyword-only classes whose fields are written once.

    class Console(Record):
        path: str | None = None
        size: int | None = None

The annotated names are the fields, in order; a default makes a field optional. The class
gets ``__slots__`` of its fields, an ``__init__`` taking them as keyword arguments only (an
unknown or missing one is a TypeError, as for any function), ``__eq__`` and, when frozen,
``__hash__`` over the fields, and a ``__repr__`` unless it defines one. Records are frozen:
assigning an attribute raises AttributeError, so a shared instance (the model's empty
sections) cannot be changed through one container. ``class Entry(Record, frozen=False)``
makes a mutable one. A ``dict`` default is copied for each instance.

This is ``@dataclass(frozen=True, slots=True, kw_only=True)``, and mypy reads it so
(``typing.dataclass_transform``, PEP 681): constructors and assignments are type-checked.
Why not dataclasses: importing them costs ~12 ms (``inspect``, ``re``, ...), a third of the
generator's whole run for 100 containers (bench/results), and the generator and the helper
load the model at every boot and start (docs/design.md, "Imports"). Nor ``exec``-generated
``__init__``s, as dataclasses make: compiling one per class costs ~75 µs, ~1.8 ms for the
model's 25 classes at every import, against ~3 µs more per construction of a 50-field
Container for the loop below (4 µs against 1.1 µs for a hand-written ``__init__``;
measured with Debian's /usr/bin/python3 -I -S; the generator builds five records per
container).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, TypeVar, dataclass_transform

    R = TypeVar("R", bound="Record")
else:
    def dataclass_transform(**_options: object) -> object:  # typing costs 7 ms at run time
        return lambda cls: cls

_MISSING: Any = object()
_set = object.__setattr__  # bypasses a frozen record's __setattr__


@dataclass_transform(kw_only_default=True, frozen_default=True, eq_default=True)
class RecordType(type):
    """The metaclass: turns a class body's annotations into slots and record methods."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                frozen: bool = True) -> RecordType:
        own = tuple(field for field in namespace.get("__annotations__", ())
                    if not field.startswith("__"))
        defaults = {field: namespace.pop(field) for field in own if field in namespace}
        namespace["__slots__"] = own
        cls: Any = super().__new__(mcls, name, bases, namespace)
        fields = getattr(cls, "__record_fields__", ()) + own
        defaults = {**getattr(cls, "__record_defaults__", {}), **defaults}
        cls.__record_fields__ = fields
        cls.__record_defaults__ = defaults
        # What __init__ walks: each field's slot setter (it bypasses a frozen __setattr__)
        # with its default (_MISSING for a required field); the field names; the dicts.
        cls.__record_init__ = tuple((getattr(cls, field).__set__, field,
                                     defaults.get(field, _MISSING)) for field in fields)
        cls.__record_names__ = frozenset(fields)
        cls.__record_required__ = frozenset(field for field in fields if field not in defaults)
        cls.__record_dicts__ = tuple((field, getattr(cls, field).__set__, default)
                                     for field, default in defaults.items()
                                     if type(default) is dict)
        if not frozen:
            cls.__setattr__ = object.__setattr__
            cls.__delattr__ = object.__delattr__
            if "__hash__" not in namespace:
                cls.__hash__ = None
        return cls  # type: ignore[no-any-return]


class Record(metaclass=RecordType):
    __slots__ = ()
    __record_fields__: ClassVar[tuple[str, ...]] = ()
    __record_defaults__: ClassVar[dict[str, Any]] = {}
    __record_init__: ClassVar[tuple[tuple[Callable[[Any, Any], None], str, Any], ...]] = ()
    __record_names__: ClassVar[frozenset[str]] = frozenset()
    __record_required__: ClassVar[frozenset[str]] = frozenset()
    __record_dicts__: ClassVar[tuple[tuple[str, Callable[[Any, Any], None], Any], ...]] = ()

    def __init__(self, **values: Any) -> None:
        cls = type(self)
        if not values.keys() <= cls.__record_names__:
            unknown = sorted(values.keys() - cls.__record_names__)
            raise TypeError(f"{cls.__name__}() has no field {unknown[0]!r}")
        if not cls.__record_required__ <= values.keys():
            missing = sorted(cls.__record_required__ - values.keys())
            raise TypeError(f"{cls.__name__}() needs the field {missing[0]!r}")
        get = values.get
        for setter, field, default in cls.__record_init__:
            setter(self, get(field, default))
        for field, setter, default in cls.__record_dicts__:
            if getattr(self, field) is default:
                setter(self, {})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__}.{name}: records are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__}.{name}: records are read-only")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, field) == getattr(other, field)
                   for field in self.__record_fields__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, field) for field in self.__record_fields__))

    def __repr__(self) -> str:
        shown = ", ".join(f"{field}={getattr(self, field)!r}"
                          for field in self.__record_fields__)
        return f"{type(self).__name__}({shown})"


def fields(record: Record | type[Record]) -> tuple[str, ...]:
    """A record's field names, in order."""
    return record.__record_fields__


def replace(record: R, **changes: Any) -> R:
    """A copy of ``record`` with some fields changed."""
    values = {field: getattr(record, field) for field in record.__record_fields__}
    values.update(changes)
    return type(record)(**values)
