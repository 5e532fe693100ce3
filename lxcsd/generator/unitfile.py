"""Unit-file syntax for generated values (systemd.syntax(7), systemd.unit(5)).

``%`` starts a specifier in most values, so it is doubled; a line ending in a backslash
continues on the next one, so no generated line may end in one; path lists
(``RequiresMountsFor=``) are split at blanks and unquoted, so odd paths are quoted.
"""

from __future__ import annotations

QUOTE_CHARS = frozenset(" \t\"'\\")


def spec(text: str) -> str:
    """Text with systemd's specifier character escaped."""
    return text.replace("%", "%%") if "%" in text else text


def one_line(text: str) -> str:
    """Text safe as the rest of a unit-file line: no control characters, no trailing
    backslash (which would join the next line)."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text + "." if text.endswith("\\") else text


def quote(word: str) -> str:
    """One word of a list that systemd splits at blanks and unquotes (C-style)."""
    if QUOTE_CHARS.isdisjoint(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def path_word(path: str) -> str | None:
    """A path as one word of a path list; None when it cannot be one (not absolute, or
    with control characters)."""
    if not path.startswith("/") or not path.isprintable():
        return None
    return spec(quote(path))
