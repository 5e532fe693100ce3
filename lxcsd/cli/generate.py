"""``lxcsd generate --dry-run [NAME...]``: what lxcsd-generator would write, printed.

Like quadlet's -dryrun: every drop-in, every link, the problems on stderr. With NAMEs, only
what belongs to those containers (the autostart order still comes from all of them). The
real generator runs at boot and at every ``systemctl daemon-reload``.
"""

from __future__ import annotations

import argparse
import os
import sys

from lxcsd.errors import LxcsdError

from ._target import add_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd generate --dry-run               everything, for every container
  lxcsd generate --dry-run web1 web2     the drop-ins and links of two containers
  lxcsd generate --dry-run -P /srv/lxc   the containers of another lxcpath

Exit status: 0, also when configs have errors (the generator goes on with the others);
use 'lxcsd check' to fail on them.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "generate", help="show what lxcsd-generator would write",
        description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_names(parser, many=True, required=False, help="only these containers")
    parser.add_argument("--dry-run", action="store_true", required=True,
                        help="print instead of writing (the only mode: systemd runs the "
                        "generator itself)")
    parser.add_argument("-P", "--lxcpath", metavar="DIR[:DIR...]",
                        help="lxcpaths to read (default: $LXCSD_LXCPATH, else lxc.lxcpath of "
                        "/etc/lxc/lxc.conf, else /var/lib/lxc)")
    return parser


def run(args: argparse.Namespace) -> int:
    import gc

    from lxcsd.generator.log import Log
    from lxcsd.generator.main import LXCPATH_ENV, dry_run

    gc.enable()  # lxcsd.generator.main disables it for the generator's own process

    if args.lxcpath:
        os.environ[LXCPATH_ENV] = args.lxcpath
    if not args.dry_run:
        raise LxcsdError("only --dry-run is supported",
                         hint="systemd runs lxcsd-generator at boot and daemon-reload")
    log = Log(kmsg=False, journal=False, stream=sys.stderr)
    dry_run(args.names, log)
    return 0
