"""The generator's entry point, as systemd runs it (systemd.generator(7)):

    lxcsd-generator NORMAL_DIR [EARLY_DIR LATE_DIR]
    lxcsd-generator --dry-run [--no-kmsg] [NAME...]

Everything goes into NORMAL_DIR (after /etc and /run/systemd/system, before /usr/lib, so
an admin's drop-ins win). ``--dry-run`` prints what would be written instead, like
quadlet's -dryrun (``lxcsd generate --dry-run`` does the same). ``--no-kmsg`` logs to stderr
(tests). Exit status: 0 whatever the configs say, 2 for wrong arguments only: a generator
that fails makes systemd warn on every boot, and broken containers are reported per
container (kernel log or journal, and each unit's status).

Import-light by design (docs/design.md, "Imports"): argv is parsed by hand, and only the
standard library's light modules are loaded (tests/unit/test_imports.py checks it).
"""

from __future__ import annotations

import gc

# The generator is a short-lived process that frees nothing: the cyclic garbage collector
# would only run (a few times, ~1 ms each) over the key table and the models while they are
# built. Disabled before the imports; `lxcsd generate` turns it back on.
gc.disable()

import os  # noqa: E402
import sys  # noqa: E402

from lxcsd.config import netconf  # noqa: E402
from lxcsd.config.globalconf import lxcpaths as configured_lxcpaths  # noqa: E402
from lxcsd.errors import ConfigError  # noqa: E402

from . import devices, scan  # noqa: E402
from .log import Log  # noqa: E402
from .output import print_plan, write_plan  # noqa: E402
from .plan import Settings, UnitFiles, default_unit_dir, make_plan  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

USAGE = ("usage: lxcsd-generator NORMAL_DIR [EARLY_DIR LATE_DIR]\n"
         "       lxcsd-generator --dry-run [--no-kmsg] [NAME...]\n")
LXCPATH_ENV = "LXCSD_LXCPATH"


def lxcpaths(log: Log) -> list[str]:
    """The lxcpaths, absolute; /var/lib/lxc if /etc/lxc/lxc.conf cannot be read."""
    try:
        paths = configured_lxcpaths()
    except ConfigError as exc:
        log.error(f"{exc}; using /var/lib/lxc")
        paths = ["/var/lib/lxc"]
    return [os.path.abspath(path) for path in paths]


def settings(log: Log, compile_plans: bool = True) -> Settings:
    """compile_plans: write the containers' compiled start plans (not for dry runs)."""
    from lxcsd.runtime import planfile, state

    return Settings(lxcpaths=lxcpaths(log), unit_dir=default_unit_dir(),
                    bridge=netconf.bridge_name(), device_names=devices.DeviceNames(),
                    mounts=scan.MountState(), env_lxcpath=os.environ.get(LXCPATH_ENV),
                    plan_dir=planfile.plan_dir() if compile_plans else None,
                    run_dir=state.run_dir())


def plan(log: Log, compile_plans: bool = True) -> UnitFiles:
    return make_plan(settings(log, compile_plans), log)


def generate(normal_dir: str, log: Log) -> None:
    write_plan(plan(log), normal_dir, log)


def dry_run(names: list[str], log: Log, stream: TextIO | None = None) -> None:
    """Print the plan (only what belongs to ``names`` when given) on ``stream``; writes
    nothing, compiled plans included."""
    print_plan(plan(log, compile_plans=False), stream or sys.stdout,
               set(names) if names else None)


def parse_args(argv: list[str]) -> tuple[dict[str, bool], list[str]] | None:
    """({"dry-run": ..., "no-kmsg": ...}, positional) or None for wrong arguments."""
    flags = {"dry-run": False, "no-kmsg": False}
    rest = []
    for arg in argv:
        if arg.startswith("--") and arg[2:] in flags:
            flags[arg[2:]] = True
        elif arg.startswith("-") and arg != "-":
            return None
        else:
            rest.append(arg)
    if not flags["dry-run"] and len(rest) not in (1, 3):
        return None
    return flags, rest


def main(argv: list[str] | None = None) -> int:
    parsed = parse_args(sys.argv[1:] if argv is None else argv)
    if parsed is None:
        sys.stderr.write(USAGE)
        return 2
    flags, rest = parsed
    quiet_kmsg = flags["no-kmsg"] or flags["dry-run"]
    log = Log(kmsg=not quiet_kmsg, journal=not quiet_kmsg)
    try:
        if flags["dry-run"]:
            dry_run(rest, log)
        else:
            generate(rest[0], log)
    except Exception as exc:  # noqa: BLE001 - never fail the boot over a bug here
        log.error(f"lxcsd-generator failed: {type(exc).__name__}: {exc}")
    finally:
        log.close()
    return 0
