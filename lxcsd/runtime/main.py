"""lxcsd-helper: what lxc@NAME.service runs (docs/design.md, "Process design").

    lxcsd-helper start NAME            ExecStart=: build the container, hand init to systemd
    lxcsd-helper stop NAME MAINPID     ExecStop=: halt init the way LXC does, wait for it
    lxcsd-helper cleanup NAME          ExecStopPost=: undo what outlives the namespaces

NAME is the unit's instance string (%i, systemd-escaped); each verb unescapes it. argv is
parsed by hand and each verb's module is imported only when it runs: this is a hot path
(argparse alone would cost milliseconds, see docs/design.md "Imports").
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

USAGE = "usage: lxcsd-helper start NAME | stop NAME MAINPID | cleanup NAME"


def _usage(message: str) -> int:
    sys.stderr.write(f"lxcsd-helper: {message}\n{USAGE}\n")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return _usage("no verb given")
    verb, rest = args[0], args[1:]
    if verb in ("-h", "--help"):
        sys.stdout.write(USAGE + "\n")
        return 0
    if verb == "start" and len(rest) == 1:
        from lxcsd.runtime import start

        return start.main(rest[0])
    if verb == "stop" and len(rest) in (1, 2):
        # systemd drops an empty $MAINPID (no main process left): 0 means "none".
        mainpid = rest[1] if len(rest) == 2 else "0"
        if not mainpid.isdigit():
            return _usage(f"MAINPID must be a number, not {mainpid!r}")
        from lxcsd.runtime import stop

        return stop.main(rest[0], int(mainpid))
    if verb == "cleanup" and len(rest) == 1:
        from lxcsd.runtime import cleanup

        return cleanup.main(rest[0])
    if verb in ("start", "stop", "cleanup"):
        return _usage(f"wrong number of arguments for {verb}")
    return _usage(f"unknown verb {verb!r}")


if __name__ == "__main__":
    sys.exit(main())
