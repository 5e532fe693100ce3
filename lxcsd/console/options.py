"""What a container asks of the console service: ``lxc.console.*`` and journal forwarding.

Sizes follow LXC (lxc.container.conf(5)): ``auto`` is 128 KiB; a number may carry a KB, MB
or GB suffix (powers of 1024, any case); a value is raised to at least a page and then to
the next power of two; an empty value means "none". The config layer hands over bytes
already rounded; strings are accepted too so the rules live in one place for both.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

AUTO_SIZE = 1 << 17
# LXC keeps no ring buffer unless lxc.console.buffer.size is set. lxcsd keeps a small one by
# default, so `lxcsd console --show-log` has something to show; it grows only as output
# arrives (see ring.py): 20 containers cost at most 320 KiB.
DEFAULT_BUFFER_SIZE = 16 << 10
_SUFFIXES = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}


def parse_size(value: str) -> int:
    """Bytes for an lxc.console.size / lxc.console.buffer.size value; raises ValueError."""
    text = value.strip()
    if not text:
        return 0
    if text == "auto":
        return AUTO_SIZE
    number, multiple = _split_suffix(text)
    if not number.isdigit():
        raise ValueError(f"invalid size {value!r} (a number with KB, MB or GB, or auto)")
    return round_size(int(number) * multiple)


def _split_suffix(text: str) -> tuple[str, int]:
    # LXC ignores a one-letter suffix ("512B", "4k" is 4 bytes) and knows three two-letter ones.
    if len(text) > 2 and text[-2:].isalpha():
        multiple = _SUFFIXES.get(text[-2:].lower())
        if multiple is None:
            raise ValueError(f"invalid size suffix in {text!r} (KB, MB or GB)")
        return text[:-2].rstrip(), multiple
    if len(text) > 1 and text[-1].isalpha():
        return text[:-1].rstrip(), 1
    return text, 1


def round_size(size: int) -> int:
    """At least a page, then the next power of two (LXC's rounding)."""
    size = max(size, os.sysconf("SC_PAGESIZE"))
    return 1 << (size - 1).bit_length()


def _size(value: int | str | None, default: int) -> int:
    if value is None:
        return default
    return parse_size(value) if isinstance(value, str) else int(value)


class ConsoleOptions:
    """Console settings for one container, as they travel in a register message.

    ``log_size`` 0 means no limit; ``buffer_size`` 0 means no ring buffer.
    """

    __slots__ = ("logfile", "log_size", "log_rotate", "buffer_size", "journal")

    def __init__(
        self,
        *,
        logfile: str | None = None,
        log_size: int | str | None = None,
        log_rotate: bool = False,
        buffer_size: int | str | None = None,
        journal: bool = True,
    ) -> None:
        self.logfile = logfile or None
        self.log_size = _size(log_size, 0)
        self.log_rotate = bool(log_rotate)
        self.buffer_size = _size(buffer_size, DEFAULT_BUFFER_SIZE)
        self.journal = bool(journal)

    @classmethod
    def from_console(cls, console: object, *, journal: bool = True) -> ConsoleOptions:
        """From the config model's ``Console`` (``lxcsd.config.model``): logfile, size,
        rotate, buffer_size."""
        return cls(
            logfile=getattr(console, "logfile", None),
            log_size=getattr(console, "size", None),
            log_rotate=bool(getattr(console, "rotate", False)),
            buffer_size=getattr(console, "buffer_size", None),
            journal=journal,
        )

    def fields(self) -> dict[str, str]:
        fields = {"logsize": str(self.log_size), "logrotate": str(int(self.log_rotate)),
                  "buffer": str(self.buffer_size), "journal": str(int(self.journal))}
        if self.logfile:
            fields["logfile"] = self.logfile
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> ConsoleOptions:
        """The inverse of fields(); raises ValueError on a malformed number."""
        return cls(
            logfile=fields.get("logfile"),
            log_size=int(fields.get("logsize", "0")),
            log_rotate=fields.get("logrotate") == "1",
            buffer_size=int(fields.get("buffer", str(DEFAULT_BUFFER_SIZE))),
            journal=fields.get("journal", "1") == "1",
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConsoleOptions):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"ConsoleOptions({inner})"
