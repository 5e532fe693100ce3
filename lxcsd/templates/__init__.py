"""Root file system templates for ``lxcsd create``: ``busybox`` (a static busybox, as
LXC's lxc-busybox template) and ``debian`` (debootstrap, cached). Each module has
``build(rootfs, name, ...)`` (the tree), ``MODES`` (modes of its rendered files) and
optionally ``finish(rootfs, context)``; the config and the files in the root are jinja2
templates under files/TEMPLATE/, rendered by :mod:`lxcsd.templates.render`.
"""

from __future__ import annotations

TEMPLATES = ("busybox", "debian")
