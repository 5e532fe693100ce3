"""The files a template writes, rendered with jinja2 from templates an admin can override.

Each template (``busybox``, ``debian``) is a directory of jinja2 files shipped in the
package (``lxcsd/templates/files/TEMPLATE/``):

    config.j2            the container's config (lxc.* lines after lxc.default_config's)
    rootfs/PATH.j2       rendered to PATH in the new root file system; a file that renders
                         to nothing but blank lines is not written (e.g. a network file
                         when the container has no DHCP interface)

``/etc/lxcsd/templates/TEMPLATE/...`` holds the admin's versions: a file there replaces the
shipped one of the same name, a new ``rootfs/PATH.j2`` there adds a file. ``common/*.j2``
are blocks the configs include (header, id maps).

Variables: ``name``, ``template``, ``rootfs``, ``lxcpath``, ``default_config`` (the text of
lxc.default_config, /etc/lxc/default.conf) and ``default_config_path``, ``idmap`` (a list of
(kind, container id, host id, count)), ``dhcp_interfaces`` (the container's interfaces with
no static IPv4 address, for the rootfs files), ``release`` (debian).

Rendering is strict: an undefined variable is an error naming the template, not an empty
string in a config.
"""

from __future__ import annotations

import os

from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    import jinja2

ETC_DIR = "/etc/lxcsd/templates"
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "files")
SUFFIX = ".j2"


def environment(etc_dir: str | None = None) -> jinja2.Environment:
    import jinja2

    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(etc_dir or ETC_DIR),
                                  jinja2.FileSystemLoader(SHIPPED_DIR)])
    # Not HTML: no autoescaping; blocks leave no blank lines behind.
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def render(template: str, name: str, context: Mapping[str, Any],
           etc_dir: str | None = None) -> str:
    """TEMPLATE/NAME (e.g. busybox/config.j2) rendered."""
    import jinja2

    path = f"{template}/{name}"
    try:
        return environment(etc_dir).get_template(path).render(context)
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or path
        line = getattr(exc, "lineno", None)
        raise LxcsdError(f"template {where}{f':{line}' if line else ''}: {exc.message}",
                         f"fix it, or remove the override in {etc_dir or ETC_DIR}") from None


def rootfs_files(template: str, etc_dir: str | None = None) -> list[str]:
    """Paths inside the rootfs the template writes (shipped and the admin's), sorted."""
    prefix = f"{template}/rootfs/"
    names = environment(etc_dir).list_templates(filter_func=lambda n: n.startswith(prefix)
                                                and n.endswith(SUFFIX))
    return sorted({name[len(prefix):-len(SUFFIX)] for name in names})


def write_rootfs(template: str, rootfs: str, context: Mapping[str, Any],
                 modes: Mapping[str, int], etc_dir: str | None = None) -> list[str]:
    """Render every rootfs file into rootfs (a tree this process just made: no symlink in it
    is the container's yet); returns the paths written."""
    written = []
    for rel in rootfs_files(template, etc_dir):
        text = render(template, f"rootfs/{rel}{SUFFIX}", context, etc_dir)
        if not text.strip():
            continue
        path = os.path.join(rootfs, rel)
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)  # debootstrap's file (or a link to one) is replaced, not followed
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     modes.get(rel, 0o644))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, modes.get(rel, 0o644))  # whatever the umask
        written.append(rel)
    return written
