"""lxcsd: LXC-style system containers as systemd services.

Kept empty on purpose: the generator and the helper import submodules directly and must
not pay for anything here (see docs/design.md, "Imports").
"""

__version__ = "0.1.0"
