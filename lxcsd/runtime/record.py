"""Plain records for what the runtime executes: slots only, keyword construction, and a
tuple of the fields (in slot order) to store them with ``marshal`` and read them back.

Not ``dataclasses`` (12 ms to import, see docs/design.md "Imports"): a record's fields are
written once as annotations and once in ``__slots__``; mypy checks construction through
``dataclass_transform``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, dataclass_transform
else:
    def dataclass_transform(**_: object) -> object:
        return lambda cls: cls


@dataclass_transform(kw_only_default=True)
class Record:
    """Subclasses list their fields in ``__slots__`` and annotate them."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, fields[name])

    def dump(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    @classmethod
    def load(cls, values: tuple[Any, ...]) -> Any:
        obj = object.__new__(cls)
        for name, value in zip(cls.__slots__, values, strict=True):
            setattr(obj, name, value)
        return obj

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.dump() == other.dump()  # type: ignore[attr-defined]

    def __hash__(self) -> int:  # only for records whose fields are hashable
        return hash(self.dump())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({inner})"
