"""The global LXC configuration, ``/etc/lxc/lxc.conf`` (lxc.system.conf(5)).

Its own small key table (:data:`GLOBAL_KEYS`); liblxc (initutils.c,
lxc_global_config_value) takes the *first* line that sets a key and ignores unknown lines,
so lxcsd does the same and reports unknown keys as warnings rather than errors: a typo there
must not stop every container at boot.

API: :func:`read_global_config` → :class:`GlobalConfig`; :func:`lxcpaths`.
"""

from __future__ import annotations

import os

from lxcsd.errors import ConfigError

LXCPATH_ENV = "LXCSD_LXCPATH"
GLOBAL_CONF = "/etc/lxc/lxc.conf"
DEFAULT_LXCPATH = "/var/lib/lxc"

# key -> (attribute, default, one-line doc)
GLOBAL_KEYS: dict[str, tuple[str, str | None, str]] = {
    "lxc.lxcpath": ("lxcpath", DEFAULT_LXCPATH, "Directory holding the containers."),
    "lxc.default_config": ("default_config", "/etc/lxc/default.conf",
                           "Config new containers start from."),
    "lxc.cgroup.use": ("cgroup_use", None, "Comma-separated cgroup controllers to use."),
    "lxc.cgroup.pattern": ("cgroup_pattern", None, "Format of cgroup paths (e.g. lxc/%n)."),
    "lxc.bdev.lvm.vg": ("bdev_lvm_vg", "lxc", "Default LVM volume group."),
    "lxc.bdev.lvm.thin_pool": ("bdev_lvm_thin_pool", "lxc", "Default LVM thin pool."),
    "lxc.bdev.zfs.root": ("bdev_zfs_root", "lxc", "Default ZFS root."),
    "lxc.bdev.rbd.rbdpool": ("bdev_rbd_rbdpool", "lxc", "Default Ceph RBD pool."),
    "lxc.bdev.rbd.rbduser": ("bdev_rbd_rbduser", "admin", "Default Ceph RBD user."),
}


class GlobalConfig:
    """Values of lxc.conf with liblxc's defaults; ``warnings`` for ignored lines."""

    __slots__ = (
        "path", "lxcpath", "default_config", "cgroup_use", "cgroup_pattern", "bdev_lvm_vg",
        "bdev_lvm_thin_pool", "bdev_zfs_root", "bdev_rbd_rbdpool", "bdev_rbd_rbduser",
        "warnings",
    )

    def __init__(self, *, path: str, warnings: list[ConfigError] | None = None,
                 **values: str | None) -> None:
        self.path = path
        self.warnings = warnings if warnings is not None else []
        for attribute, default, _ in GLOBAL_KEYS.values():
            setattr(self, attribute, values.get(attribute, default))

    lxcpath: str
    default_config: str


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(1 << 20).decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read global config: {exc.strerror}", path=path) from None


def _line(line: str) -> tuple[str, str] | None:
    text = line.strip(" \t\r")
    key, sep, value = text.partition("=")
    if not text or text[0] == "#" or not sep:
        return None
    return key.rstrip(" \t"), value.strip(" \t")


def read_global_config(path: str | None = None) -> GlobalConfig:
    """Parse lxc.conf (default :data:`GLOBAL_CONF`; a missing file means all defaults)."""
    path = path or GLOBAL_CONF
    text = _read(path)
    values: dict[str, str] = {}
    warnings = []
    for number, line in enumerate((text or "").split("\n"), 1):
        parsed = _line(line)
        if parsed is None or not parsed[1]:
            continue
        key, value = parsed
        if key not in GLOBAL_KEYS:
            warnings.append(ConfigError("unknown key, ignored", path=path, line=number,
                                        key=key, hint="lxc.system.conf(5) lists the keys"))
            continue
        attribute = GLOBAL_KEYS[key][0]
        if attribute not in values:  # liblxc takes the first line that sets a key
            values[attribute] = (value.rstrip("/") or "/") if key == "lxc.lxcpath" else value
    return GlobalConfig(path=path, warnings=warnings, **values)


def lxcpaths() -> list[str]:
    """The directories holding containers, in lookup order: ``$LXCSD_LXCPATH``
    (colon-separated, first match wins for a name; for tests and the generator), else
    ``lxc.lxcpath`` of /etc/lxc/lxc.conf, else /var/lib/lxc. Here rather than in
    lxcsd.config.load, so that the generator's run over unchanged configs needs no more of
    the config reader (lxcsd.generator.facts)."""
    env = os.environ.get(LXCPATH_ENV)
    if env is not None:
        return [path for path in env.split(":") if path]
    return [read_global_config().lxcpath]
