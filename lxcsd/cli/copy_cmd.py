"""``lxcsd copy SRC DST``: a copy of a stopped container (lxc-copy): its directory with the
root file system (cp -a, reflinks where the file system has them), the config rewritten:
paths under SRC's directory point into DST's, lxc.uts.name and lxc.rootfs.path set, every
lxc.net.N.hwaddr a fresh address. Refuses an existing DST. The copy is made under a hidden
name and renamed into place when complete, holding LXC's locks of SRC and DST
(lxcsd.lock): a failure or Ctrl-C removes it, and two copies to one name never both
succeed.
"""

from __future__ import annotations

import argparse
import os
import sys

from lxcsd.config.document import ConfigDocument
from lxcsd.config.load import find_container, load_path
from lxcsd.errors import LxcsdError

from ._containers import (
    container_dir,
    discard,
    is_running,
    publish,
    random_hwaddr,
    refuse_existing,
    refuse_if_lxc_runs,
    require_root,
    temporary_path,
)
from ._help import after_parse
from ._target import add_lxcpath_option, add_name_option, take

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd copy web1 web2
  lxcsd copy web1 web2 -P /srv/lxc     (DST in another lxcpath; SRC is looked up as usual)
  lxcsd copy -n web1 -N web2           as lxc-copy
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "copy", help="copy a stopped container under a new name",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1] if __doc__ else None,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="lxcsd copy [-h] [-P DIR] {SRC | -n SRC} {DST | -N DST}")
    parser.add_argument("words", nargs="*", metavar="SRC DST",
                        help="the container to copy, then the name of the new one")
    add_name_option(parser)
    parser.add_argument("-N", "--newname", action="append", metavar="DST",
                        help="the new container's name, as lxc-copy -N takes it")
    add_lxcpath_option(parser)
    after_parse(parser, _words)
    return parser


def _words(args: argparse.Namespace, error: Any) -> None:
    words = list(args.words)
    args.source = take(words, args.n_names, "the container to copy (SRC)", error)
    args.dest = take(words, args.newname, "the new name (DST)", error)
    if words:
        error(f"unexpected arguments: {' '.join(words)}")


def _cp(source: str, dest: str) -> None:
    import subprocess
    result = subprocess.run(["cp", "-a", "--reflink=auto", "--", source, dest],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LxcsdError(f"copying {source} failed: {result.stderr.strip()}")


def rewrite_config(path: str, old_dir: str, new_dir: str, name: str, rootfs: str) -> None:
    """Point the copy's config at its own directory, name and addresses."""
    document = ConfigDocument.load(path)
    old, new = old_dir.rstrip("/") + "/", new_dir.rstrip("/") + "/"
    document.lines = [line.replace(old, new) if not line.lstrip().startswith("#") else line
                      for line in document.lines]
    document.set("lxc.uts.name", name)
    document.set("lxc.rootfs.path", f"dir:{rootfs}")
    for index in _net_indices(document):
        if document.get(f"lxc.net.{index}.hwaddr"):
            document.set(f"lxc.net.{index}.hwaddr", random_hwaddr())
    document.save()


def _net_indices(document: ConfigDocument) -> list[int]:
    indices = set()
    for line in document.lines:
        key = line.split("=", 1)[0].strip()
        parts = key.split(".")
        if len(parts) >= 4 and parts[:2] == ["lxc", "net"] and parts[2].isdigit():
            indices.add(int(parts[2]))
    return sorted(indices)


def run(args: argparse.Namespace) -> int:
    require_root("copy")
    src_config = find_container(args.source)
    src_dir = os.path.dirname(src_config)
    dst_dir = container_dir(args.dest, args.lxcpath or os.path.dirname(src_dir))
    refuse_existing(dst_dir)
    from lxcsd.lock import Locks

    with Locks([(os.path.dirname(src_dir), args.source),
                (os.path.dirname(dst_dir), args.dest)]):
        # Again, now that no other command changes them: SRC may be gone, DST made.
        src_config = find_container(args.source, os.path.dirname(src_dir))
        refuse_existing(dst_dir)
        copy(args, src_config, dst_dir)
    print(f"copied {args.source} to {args.dest} in {dst_dir}", file=sys.stderr)
    return 0


def copy(args: argparse.Namespace, src_config: str, dst_dir: str) -> None:
    source = load_path(src_config, args.source)
    src_dir = os.path.dirname(src_config)
    refuse_if_lxc_runs(args.source, src_config)
    if is_running(args.source):
        raise LxcsdError(f"{args.source} is running", f"stop it first: lxcsd stop {args.source}")
    if source.rootfs.kind != "dir" or not source.rootfs.path:
        raise LxcsdError(f"{args.source}: only directory root file systems can be copied "
                         f"(lxc.rootfs.path is {source.rootfs.spec!r})")
    src_rootfs = os.path.abspath(source.rootfs.path)
    inside = src_rootfs.startswith(src_dir.rstrip("/") + "/")
    rel = os.path.relpath(src_rootfs, src_dir) if inside else "rootfs"
    built = temporary_path(os.path.dirname(dst_dir), "copy")
    try:
        _cp(src_dir, built)
        if not inside:
            _cp(src_rootfs, os.path.join(built, rel))
        rewrite_config(os.path.join(built, "config"), src_dir, dst_dir, args.dest,
                       os.path.join(dst_dir, rel))
        hostname = os.path.join(built, rel, "etc/hostname")
        if os.path.isfile(hostname) and not os.path.islink(hostname):
            with open(hostname, "w", encoding="utf-8") as f:
                f.write(args.dest + "\n")
        publish(built, dst_dir)
    except BaseException:
        discard(built)
        raise
