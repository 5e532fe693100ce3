"""Where lxcsd's files are, installed or in a source checkout.

packaging/install.sh writes lxcsd/_installed.py (PREFIX = "...", UNITDIR = "...") into the
installed package, the way meson's configure_file bakes paths in; a source checkout has no such
file and uses the tree itself, so tests run against the code they test.
"""

from __future__ import annotations

import os

try:
    # Not found in a checkout; found untyped when mypy sees an installed copy in the venv.
    from lxcsd import _installed  # type: ignore[attr-defined, unused-ignore]
except ImportError:
    _installed = None

PREFIX: str = getattr(_installed, "PREFIX", "")
# The Debian package's units are in /lib/systemd/system (bookworm's debhelper), outside its
# prefix /usr; an installation by an older install.sh has no UNITDIR.
UNITDIR: str = getattr(_installed, "UNITDIR", "")
SOURCE_TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_DIR = "/run/lxcsd"
UNIT_TEMPLATE = "lxc@.service"


def datadir() -> str:
    """Shipped defaults: default.conf, common includes, the default seccomp policy."""
    return os.path.join(PREFIX, "share/lxcsd") if PREFIX else os.path.join(SOURCE_TREE, "config")


def unitdir() -> str:
    """Where the static units (lxc@.service, lxc-containers.target) are installed. A source
    checkout assumes install.sh's default prefix, where the tests and the sandbox put them."""
    return UNITDIR or os.path.join(PREFIX or "/usr/local", "lib/systemd/system")


def libexecdir() -> str:
    """Installed helpers; in a checkout, what is built from libexec/ goes to build/ (tests
    build it there: tests/probe/build.py)."""
    return os.path.join(PREFIX, "libexec/lxcsd") if PREFIX else os.path.join(SOURCE_TREE,
                                                                             "build")


def attach_exec() -> str:
    """The static exec stub of ``lxcsd attach`` (libexec/lxcsd-attach-exec.c)."""
    return os.path.join(libexecdir(), "lxcsd-attach-exec")
