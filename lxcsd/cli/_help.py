"""How lxcsd's parsers print: help without source markup, a subcommand's own usage on a
wrong option, and the rules argparse cannot state, checked after parsing.

Descriptions are the modules' docstrings, written for readers of the source (``code``,
:mod:`x`); :func:`plain` turns them into terminal text for ``--help`` and the man pages.
"""

from __future__ import annotations

import argparse
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

# ``x`` and `x` quoting, :role:`x` references (the role dropped, a leading ~ too).
_MARKUP = re.compile(r":[a-z]+:`~?([^`]*)`|``([^`]*)``|`([^`]*)`")


def plain(text: str, quotes: tuple[str, str] = ("'", "'")) -> str:
    """text without reStructuredText markup: ``lxc-ls -f`` → 'lxc-ls -f' (quotes: what
    goes around a literal; the man pages ask for bold)."""
    def repl(match: re.Match[str]) -> str:
        role, literal, quoted = match.groups()
        if role is not None:
            return role
        return quotes[0] + (literal if literal is not None else quoted) + quotes[1]

    return _MARKUP.sub(repl, text)


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (their examples are laid out by hand), with
    markup removed; option help wrapped as usual."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain(text))

    def _expand_help(self, action: argparse.Action) -> str:
        return plain(super()._expand_help(action))


class Parser(argparse.ArgumentParser):
    """Every lxcsd parser: the Formatter, and a wrong option reported by the subcommand's
    parser with its own usage (argparse would pass it up to the top-level parser, whose
    usage does not mention the subcommand's options)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["formatter_class"] = Formatter
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def after_parse(parser: argparse.ArgumentParser,
                rule: Callable[[argparse.Namespace, Callable[[str], NoReturn]], None]) -> None:
    """Run rule(args, error) once the command line is parsed (lxcsd.cli.main calls
    :func:`finish`); error(message) prints parser's usage and exits 2, as argparse's own."""
    parser.set_defaults(after_parse=lambda args: rule(args, parser.error))


def finish(args: argparse.Namespace) -> None:
    hook = getattr(args, "after_parse", None)
    if hook is not None:
        hook(args)
