"""What a running container answers to GET_CONFIG_ITEM (``lxc-info``, ``lxc-ls -f``,
``lxc-attach``, ``c->get_running_config_item()``): the text of liblxc's getter for the key.

liblxc's monitor answers from the config it started with; lxcsd reads the config now,
through lxcsd.config (the one reader), with two values of the running container instead:

- ``lxc.seccomp.profile`` (and the legacy ``lxc.seccomp``): the policy the helper loaded,
  lxcsd's default denylist when the config names none. lxc-attach asks for it to put the
  attached process under the container's policy;
- ``lxc.net.N.veth.pair``: the host-side name the start gave the veth (lxc-info prints its
  traffic), as liblxc answers with the generated name when the config has none.

Formatting as liblxc's getters (confile.c): one value; for a key holding a list each value
followed by a newline; numbers it always prints print their default when unset (``0`` for
lxc.start.auto: lxc-ls reads it). An unset key, an unknown key or an empty text is no
answer (liblxc: ``ret = -1``).

The keys LXC's tools ask for (strace of lxc-ls -f, lxc-info, lxc-attach: :data:`PRESET`
and each network's) are computed by ``lxcsd-helper start`` from the config it starts with
and sent with the registration (:func:`preset`): lxcsd-console answers them at once, from
the config the container started with, as liblxc's monitor does. Any other key is read in
lxcsd-console's short-lived worker (lxcwork.py), never in the daemon itself (~14 ms: the
config reader's import).
"""

from __future__ import annotations

from lxcsd.config import keys, query
from lxcsd.errors import ConfigError
from lxcsd.liblxc import wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.config.model import Container

# liblxc prints these numbers even when the config does not set them.
NUMBERS = {
    "lxc.start.auto": "0", "lxc.start.delay": "0", "lxc.start.order": "0",
    "lxc.no_new_privs": "0", "lxc.tty.max": "0", "lxc.pty.max": "0", "lxc.ephemeral": "0",
    "lxc.monitor.unshare": "0", "lxc.init.uid": "0", "lxc.init.gid": "0",
}
SECCOMP = ("lxc.seccomp.profile",)
PRESET = ("lxc.start.auto", "lxc.group", "lxc.idmap", "lxc.arch", "lxc.seccomp.profile",
          "lxc.seccomp", "lxc.no_new_privs")
NET_PRESET = ("type", "link", "veth.pair")


def canonical(key: str) -> str | None:
    try:
        return keys.lookup(key)[1]
    except keys.UnknownKey:
        return None


def running_item(container: Container, key: str, state_dir: str,
                 datadir: str = "") -> str | None:
    """The answer for ``key``, or None for liblxc's "no value"."""
    name = canonical(key)
    if name is None:
        return None
    if name in SECCOMP:
        from lxcsd.runtime.seccomp_policy import policy_path

        return policy_path(container.seccomp.profile, datadir) or None
    try:
        found = query.values(container, name)
    except ConfigError:
        return None
    if not found:
        return veth_pair(name, state_dir) or NUMBERS.get(name)
    if query.is_list(name):
        return "".join(f"{value}\n" for value in found)
    return found[-1] or None


def preset(container: Container, state_dir: str, datadir: str = "") -> dict[str, str]:
    """Registration fields ``item.KEY`` (wire.encode_item) for the keys LXC's tools ask: the
    PRESET ones, each network's, and the type of the first network there is not (lxc-info
    asks for types until one has none)."""
    indices = sorted({net.index for net in container.net})
    asked = list(PRESET)
    for index in indices:
        asked += [f"lxc.net.{index}.{sub}" for sub in NET_PRESET]
    asked.append(f"lxc.net.{indices[-1] + 1 if indices else 0}.type")
    return {f"item.{key}": wire.encode_item(running_item(container, key, state_dir, datadir))
            for key in asked}


def veth_pair(name: str, state_dir: str) -> str | None:
    """The generated host-side veth name of ``lxc.net.N.veth.pair``, from the network state
    the start wrote (lxcsd.net.state); None without a state directory."""
    if not state_dir:
        return None
    head, _, rest = name.partition("lxc.net.")
    index, _, sub = rest.partition(".")
    if head or sub != "veth.pair" or not index.isdigit():
        return None
    from lxcsd.net import state

    recorded = state.read(state_dir)
    for net in recorded[0] if recorded else []:
        if net.get("net") == index and net.get("type") == "veth":
            return net.get("host") or None
    return None
