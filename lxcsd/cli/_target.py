"""Resolve the NAME|PATH argument shared by ``lxcsd check`` and ``lxcsd config``."""

from __future__ import annotations

import argparse
import os

from lxcsd.config.load import find_container
from lxcsd.errors import ConfigError


def resolve(target: str, lxcpath: str | None = None) -> tuple[str | None, str]:
    """(container name or None, config path) for a container name or a config file path.

    An argument with a '/' is a path; otherwise a container of that name wins over a file of
    that name in the current directory."""
    if "/" in target:
        return None, target
    try:
        return target, find_container(target, lxcpath)
    except ConfigError:
        if os.path.isfile(target):
            return None, target
        raise


def add_lxcpath_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-P", "--lxcpath", metavar="DIR",
        help="directory holding the containers (default: $LXCSD_LXCPATH, else lxc.lxcpath "
        "of /etc/lxc/lxc.conf, else /var/lib/lxc)")
