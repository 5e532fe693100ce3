"""lxc.console.* semantics (lxcsd.console.options): LXC's size parsing and rounding."""

from __future__ import annotations

import pytest

from lxcsd.console.options import AUTO_SIZE, DEFAULT_BUFFER_SIZE, ConsoleOptions, parse_size


@pytest.mark.parametrize("text, size", [
    ("auto", 128 << 10),
    ("", 0),                 # an empty value: none
    ("1", 4096),             # at least a page
    ("4096", 4096),
    ("5000", 8192),          # next power of two
    ("64KB", 64 << 10),
    ("64kb", 64 << 10),
    ("64 Kb", 64 << 10),
    ("1MB", 1 << 20),
    ("3MB", 4 << 20),
    ("1GB", 1 << 30),
    ("8192B", 8192),         # LXC ignores a one-letter suffix
    ("4k", 4096),            # ... so this is 4 bytes, raised to a page
])
def test_parse_size_as_lxc(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["-1", "1TB", "KB", "x", "1.5MB"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_defaults_small_ring_no_log() -> None:
    options = ConsoleOptions()
    assert (options.logfile, options.log_size, options.log_rotate) == (None, 0, False)
    assert options.buffer_size == DEFAULT_BUFFER_SIZE
    assert options.journal


def test_strings_follow_lxc_and_ints_are_taken_as_given() -> None:
    options = ConsoleOptions(log_size="auto", buffer_size="1MB")
    assert (options.log_size, options.buffer_size) == (AUTO_SIZE, 1 << 20)
    assert ConsoleOptions(buffer_size=0).buffer_size == 0  # no ring buffer


def test_fields_round_trip() -> None:
    options = ConsoleOptions(logfile="/var/log/lxc/web.console", log_size=8192,
                             log_rotate=True, buffer_size=65536, journal=False)
    assert ConsoleOptions.from_fields(options.fields()) == options
    assert ConsoleOptions.from_fields(ConsoleOptions().fields()) == ConsoleOptions()


class FakeConsole:
    """The attributes of lxcsd.config.model.Console."""

    def __init__(self, **kw: object) -> None:
        self.path = None
        self.logfile = kw.get("logfile")
        self.size = kw.get("size")
        self.buffer_size = kw.get("buffer_size")
        self.rotate = kw.get("rotate")


def test_from_the_config_model() -> None:
    options = ConsoleOptions.from_console(
        FakeConsole(logfile="/l", size=4096, rotate=True, buffer_size=131072), journal=False)
    assert options == ConsoleOptions(logfile="/l", log_size=4096, log_rotate=True,
                                     buffer_size=131072, journal=False)
    assert ConsoleOptions.from_console(FakeConsole()) == ConsoleOptions()
