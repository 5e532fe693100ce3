"""Debian's lxc.service (package lxc): would it autostart a container a second time?

At boot, lxc.service runs ``/usr/libexec/lxc/lxc-containers start``, which runs
``lxc-autostart $OPTIONS -g "$BOOTGROUPS"`` when ``LXC_AUTO`` is true; both are set in
/etc/default/lxc (defaults LXC_AUTO="true", BOOTGROUPS="onboot,": the onboot group, then
containers without a group; OPTIONS="-a" means every group). lxc-autostart starts each
``lxc.start.auto = 1`` container it selects unless it is running already, and at shutdown
``lxc-containers stop`` shuts down every running container (``lxc-autostart -a -A -s``).

lxcsd's lxc-containers.target is ordered before lxc.service, and LXC's tools see lxcsd's
containers running (lxcsd-console answers their command socket), so lxc-autostart skips
them at boot; still, two autostart mechanisms for one container is a trap (a failed lxcsd
start is followed by an lxc-start one, stopping lxc.service stops it). ``lxcsd check`` and
``lxcsd info`` warn about it (:func:`double_autostart`).
"""

from __future__ import annotations

import os

ROOT = "/"  # where /etc is (tests point it at a tree of their own)
UNIT = "lxc.service"
DEFAULTS = "/etc/default/lxc"
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system")


def enabled(root: str | None = None) -> bool:
    """Whether lxc.service is enabled (a wants link in /etc or /run) and not masked."""
    root = root or ROOT
    for directory in UNIT_DIRS:
        base = os.path.join(root, directory.lstrip("/"))
        unit = os.path.join(base, UNIT)
        if os.path.islink(unit) and os.readlink(unit) == "/dev/null":
            return False
    for directory in UNIT_DIRS:
        base = os.path.join(root, directory.lstrip("/"))
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        if any(entry.endswith((".wants", ".requires"))
               and os.path.lexists(os.path.join(base, entry, UNIT)) for entry in entries):
            return True
    return False


def settings(root: str | None = None) -> dict[str, str]:
    """LXC_AUTO, BOOTGROUPS and OPTIONS as lxc-containers sees them: its defaults, then
    the simple ``NAME=value`` lines of /etc/default/lxc (quotes removed; the last wins)."""
    values = {"LXC_AUTO": "true", "BOOTGROUPS": "onboot,", "OPTIONS": ""}
    try:
        with open(os.path.join(root or ROOT, DEFAULTS.lstrip("/")), encoding="utf-8",
                  errors="replace") as f:
            text = f.read()
    except OSError:
        return values
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in values:
            values[name] = value.strip().strip("\"'")
    return values


def selects(auto: bool, groups: list[str] | tuple[str, ...], values: dict[str, str]) -> bool:
    """Whether ``lxc-autostart $OPTIONS -g $BOOTGROUPS`` starts a container with this
    lxc.start.auto and these lxc.group values."""
    if not auto or values.get("LXC_AUTO") != "true":
        return False
    if "-a" in values.get("OPTIONS", "").split():
        return True
    wanted = values.get("BOOTGROUPS", "").split(",")
    # An empty element (leading, trailing or doubled comma) selects containers of no group.
    return any(g in wanted for g in groups) or (not groups and "" in wanted)


def double_autostart(auto: bool, groups: list[str] | tuple[str, ...],
                     root: str | None = None) -> str:
    """The warning for a container Debian's lxc.service autostarts too, else ""."""
    if not auto or not enabled(root) or not selects(auto, groups, settings(root)):
        return ""
    return ("Debian's lxc.service is enabled and autostarts this container too "
            "(lxc.start.auto = 1, lxc-autostart at boot); lxcsd starts it first and "
            "lxc-autostart then skips it, but a failed lxcsd start is retried by lxc-start, "
            "and stopping lxc.service stops it; keep one: systemctl disable lxc.service, "
            "or lxc.start.auto = 0 with systemctl enable lxc@NAME")
