"""The error types every lxcsd module raises for conditions a user can act on."""

from __future__ import annotations


class LxcsdError(Exception):
    """A failure with a message meant for the user; the CLI prints it without a traceback."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(LxcsdError):
    """Bad container or global configuration, located at a file and line."""

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int = 0,
        key: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.path = path
        self.line = line
        self.key = key

    def location(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}"
        return self.path

    def __str__(self) -> str:
        parts = [p for p in (self.location(), self.key) if p]
        text = ": ".join(parts + [self.message])
        return f"{text} ({self.hint})" if self.hint else text
