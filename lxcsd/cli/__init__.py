"""lxcsd's command line. :mod:`lxcsd.cli.main` dispatches to one module per subcommand.

A subcommand module ``lxcsd/cli/NAME.py`` exposes ``add_parser(subparsers)``, which adds its
parser with ``subparsers.add_parser(...)`` and returns it, and ``run(args) -> int`` (the exit
status). main finds such modules by itself: adding one needs no other edit. Raise
:class:`lxcsd.errors.LxcsdError` for problems the user can fix; main prints it as one line.
"""
