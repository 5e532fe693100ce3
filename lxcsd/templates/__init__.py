"""Root file system templates for ``lxcsd create``: ``busybox`` (a static busybox, as
LXC's lxc-busybox template) and ``debian`` (debootstrap). Each module exposes
``build(rootfs, name)`` and ``config_lines(name)``: what the template adds to the config.
"""

from __future__ import annotations

TEMPLATES = ("busybox", "debian")
