"""Generated interface names and MAC addresses.

- Host-side names follow LXC's ``vethXXXXXX`` pattern: six random letters and digits
  (``[a-zA-Z0-9]``, as liblxc's ``lxc_ifname_alnum_case_sensitive``), so tools that match
  ``veth*`` keep working.
- ``hwaddr`` templates: each ``x``/``X`` is a hex digit taken from a hash of the container
  name and network index, so the MAC is random-looking but the same at every start (a DHCP
  server keeps giving the same lease) without writing the config back as LXC does. The
  first octet, when templated, is made unicast and locally administered.
- A veth's host end gets ``fe`` as its first octet (as LXC): a bridge takes the lowest port
  MAC as its own, and ``fe`` keeps the container's out of that choice.
"""

from __future__ import annotations

import os

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_HEX = "0123456789abcdef"


def random_ifname(prefix: str = "veth") -> str:
    """``prefix`` plus random alphanumerics up to 10 characters (LXC's vethXXXXXX)."""
    count = max(1, 10 - len(prefix))
    return prefix + "".join(_ALNUM[byte % len(_ALNUM)] for byte in os.urandom(count))


def fill_hwaddr(template: str, container: str, index: int) -> str:
    """The MAC for ``template``: ``x`` digits from a stable hash of (container, index)."""
    if "x" not in template.lower():
        return template.lower()
    import hashlib  # only for templates: not every start pays for it

    digest = hashlib.sha256(f"lxcsd-hwaddr\0{container}\0{index}".encode()).digest()
    digits = iter(digest.hex())
    octets = []
    for position, octet in enumerate(template.lower().split(":")):
        filled = "".join(next(digits) if char == "x" else char for char in octet)
        if position == 0 and filled != octet:
            # A random first octet must still be a unicast, locally administered address.
            filled = f"{(int(filled, 16) & 0xFC) | 0x02:02x}"
        octets.append(filled)
    return ":".join(octets)


def host_hwaddr(mac: str) -> str:
    """The host end's MAC: ``mac`` with its first octet replaced by fe."""
    return "fe" + mac[2:]
