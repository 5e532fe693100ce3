"""``lxc.net.N.script.up`` / ``script.down``: run as liblxc's ``run_script_argv`` does.

The command runs through ``/bin/sh -c "exec SCRIPT ARGS"`` on the host, with stdout and
stderr inherited (the unit's journal). Arguments by network type, as liblxc passes them:
veth ``veth LINK HOST_END``, macvlan/phys ``TYPE LINK``, ipvlan/vlan ``TYPE`` (liblxc passes
the link only for macvlan, phys and veth), empty ``empty``.

- ``lxc.hook.version = 0`` (the default): ``exec SCRIPT 'NAME' 'net' 'up|down' ARGS``.
- ``lxc.hook.version = 1``: ``exec SCRIPT ARGS`` with ``LXC_HOOK_TYPE=up|down``,
  ``LXC_HOOK_SECTION=net``, ``LXC_NET_TYPE``, ``LXC_NET_PARENT`` (veth, macvlan, phys) and
  ``LXC_NET_PEER`` (veth: the host end).

Both versions also get ``LXC_NAME``, ``LXC_CONFIG_FILE`` and ``LXC_HOOK_VERSION`` as liblxc
sets them for the whole start.
"""

from __future__ import annotations

import os

from lxcsd.errors import LxcsdError


def script_args(net_type: str, link: str, peer: str) -> list[str]:
    if net_type == "veth":
        return ["veth", link, peer]
    if net_type in ("macvlan", "phys"):
        return [net_type, link]
    return [net_type]


def hook_env(*, name: str, config_file: str, version: int, hook: str, args: list[str]
             ) -> dict[str, str]:
    env = dict(os.environ)
    env.update(LXC_NAME=name, LXC_CONFIG_FILE=config_file, LXC_HOOK_VERSION=str(version))
    if version == 1:
        env.update(LXC_HOOK_TYPE=hook, LXC_HOOK_SECTION="net", LXC_NET_TYPE=args[0])
        if args[0] in ("veth", "macvlan", "phys"):
            env["LXC_NET_PARENT"] = args[1] if len(args) > 1 else ""
        if args[0] == "veth":
            env["LXC_NET_PEER"] = args[2] if len(args) > 2 else ""
    return env


def command_line(script: str, name: str, version: int, hook: str, args: list[str]) -> str:
    if version == 0:
        return " ".join([f"exec {script} '{name}' 'net' '{hook}'", *args])
    return " ".join([f"exec {script}", *args])


def run(script: str, *, name: str, config_file: str, version: int, hook: str,
        net_type: str, link: str = "", peer: str = "") -> int:
    """Run one hook; returns its exit status (127 when /bin/sh cannot run)."""
    args = script_args(net_type, link, peer)
    env = hook_env(name=name, config_file=config_file, version=version, hook=hook, args=args)
    line = command_line(script, name, version, hook, args)
    try:
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", line], env)
    except OSError as err:
        raise LxcsdError(f"cannot run network {hook} hook {script!r}: {err.strerror}") from err
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
