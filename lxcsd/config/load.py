"""Find and load containers: the entry points the generator, the runtime and the CLI call.

- :func:`lxcpaths` — where containers live: ``$LXCSD_LXCPATH`` (colon-separated, first match
  wins for a name; for tests and the generator), else ``lxc.lxcpath`` of /etc/lxc/lxc.conf,
  else /var/lib/lxc.
- :func:`discover` — ``[(name, config_path)]`` of every container under the lxcpaths, in
  lxcpath order then by name; hidden and invalid names and directories without a ``config``
  file are skipped, as ``lxc-ls`` does.
- :func:`load_container` — ``LXCPATH/NAME/config`` → :class:`~lxcsd.config.model.Container`.
- :func:`load_path` — any config file → Container.
- :func:`check_path` — like load_path, but collects every error instead of raising the
  first (``lxcsd check``).

All raise :class:`lxcsd.errors.ConfigError` (file, line, key, message, hint) and nothing else.
"""

from __future__ import annotations

import os

from lxcsd.errors import ConfigError

from .build import build
from .globalconf import LXCPATH_ENV, lxcpaths
from .model import Container
from .names import is_valid_name, validate_name
from .reader import read_config

__all__ = ["LXCPATH_ENV", "check_path", "discover", "find_container", "load_container",
           "load_path", "load_with_sources", "lxcpaths"]


def _config_file(lxcpath: str, name: str) -> str | None:
    path = os.path.join(lxcpath, name, "config")
    try:
        return path if os.path.isfile(path) else None
    except ValueError:  # a NUL byte in a path from the environment
        return None


def discover(paths: list[str] | None = None) -> list[tuple[str, str]]:
    """Every container as (name, config path); the first lxcpath wins for a name."""
    found: dict[str, str] = {}
    for lxcpath in lxcpaths() if paths is None else paths:
        try:
            names = sorted(os.listdir(lxcpath))
        except OSError:
            continue
        for name in names:
            if name[0] == "." or name in found or not is_valid_name(name):
                continue
            config = _config_file(lxcpath, name)
            if config is not None:
                found[name] = config
    return list(found.items())


def find_container(name: str, lxcpath: str | None = None) -> str:
    """The config path of container ``name``; ConfigError when there is none."""
    validate_name(name)
    searched = [lxcpath] if lxcpath is not None else lxcpaths()
    for directory in searched:
        config = _config_file(directory, name)
        if config is not None:
            return config
    raise ConfigError(f"no container {name!r} in {':'.join(searched) or '(no lxcpath)'}",
                      hint=f"create it, or set {LXCPATH_ENV} / lxc.lxcpath in /etc/lxc/lxc.conf")


def _name_for(path: str) -> str:
    """A container's name from its config path: the directory of a file named "config"."""
    absolute = os.path.abspath(path)
    if os.path.basename(absolute) == "config":
        return os.path.basename(os.path.dirname(absolute))
    return os.path.splitext(os.path.basename(absolute))[0]


def load_path(path: str, name: str | None = None) -> Container:
    """Read, translate and build the config at ``path``; raises the first ConfigError."""
    entries = read_config(path)
    return build(entries, name=name if name is not None else _name_for(path), config_path=path)


def load_with_sources(path: str, name: str | None = None
                      ) -> tuple[Container, list[tuple[str, tuple[int, ...]]]]:
    """load_path, and (path, stat stamp) of every file and directory it read (the config
    and its includes): what a compiled start plan depends on (lxcsd.runtime.planfile)."""
    entries = read_config(path)
    container = build(entries, name=name if name is not None else _name_for(path),
                      config_path=path)
    return container, list(entries.stamps)


def load_container(name: str, lxcpath: str | None = None) -> Container:
    """Load container ``name`` from ``lxcpath`` (default: the first of :func:`lxcpaths`
    that has it)."""
    return load_path(find_container(name, lxcpath), name)


def check_path(path: str, name: str | None = None) -> tuple[Container | None,
                                                            list[ConfigError]]:
    """(Container or None, every error): for ``lxcsd check``, which reports them all."""
    errors: list[ConfigError] = []
    try:
        entries = read_config(path)
    except ConfigError as exc:
        return None, [exc]
    container = build(entries, name=name if name is not None else _name_for(path),
                      config_path=path, errors=errors)
    return container, errors
