"""lxcsd-net.service's settings, ``net.conf``: the counterpart of LXC's /etc/default/lxc-net.

The one reader of the format, for both its users: lxcsd-net (:func:`load`, every key
checked) and the generator (:func:`bridge_name`, which must name the bridge lxcsd-net
makes, and must never fail a boot: a file it cannot read counts as not setting it).

Files: ``/etc/lxcsd/net.conf`` (the administrator's), then the shipped ``$datadir/net.conf``;
for each key the first file that sets it wins, and within a file the last line. ``key =
value`` lines, ``#`` comments (whole lines, or after `` #`` in a value). Keys (LXC's
variable in brackets):

=============  ================================================  =========================
key            meaning                                           default
=============  ================================================  =========================
bridge         bridge name (LXC_BRIDGE)                          lxcbr0
address        bridge address, ``A.B.C.D`` or ``A.B.C.D/PREFIX``  10.0.3.1
               (LXC_ADDR)
netmask        netmask or prefix when address has none           255.255.255.0
               (LXC_NETMASK)
dhcp_range     ``FIRST,LAST`` (LXC_DHCP_RANGE); ``off``: no DHCP  .2 to the last host
dhcp_max       leases (LXC_DHCP_MAX)                             size of the range
dhcp_conf      extra dnsmasq config file (LXC_DHCP_CONFILE)      none
domain         local DNS domain (LXC_DOMAIN)                     none
nat            ``on``/``off``: masquerade leaving traffic        on
dnsmasq        ``on``/``off``: run dnsmasq when installed        on
=============  ================================================  =========================

Import-light for the generator: ``ipaddress`` is imported by :func:`load` only.
"""

from __future__ import annotations

import os

from lxcsd.errors import ConfigError
from lxcsd.paths import datadir

from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from ipaddress import IPv4Interface

ETC_NET_CONF = "/etc/lxcsd/net.conf"
DEFAULT_BRIDGE = "lxcbr0"
KEYS = ("bridge", "address", "netmask", "dhcp_range", "dhcp_max", "dhcp_conf", "domain",
        "nat", "dnsmasq")
_BOOLS = {"on": True, "yes": True, "true": True, "1": True,
          "off": False, "no": False, "false": False, "0": False}
MAX_SIZE = 1 << 16


def shipped_path() -> str:
    return os.path.join(datadir(), "net.conf")


def net_conf_files() -> list[str]:
    return [ETC_NET_CONF, shipped_path()]


def _lines(path: str, strict: bool) -> list[str] | None:
    """The file's lines; None when it is missing (or, not strict, unreadable)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_SIZE).decode("utf-8").splitlines()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        if not strict:
            return None
        why = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read: {why}", path=path) from err


def _settings(path: str, lines: list[str], strict: bool) -> dict[str, tuple[str, str, int]]:
    mine: dict[str, tuple[str, str, int]] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or key not in KEYS:
            if strict:
                raise ConfigError(f"unknown setting {text!r}", path=path, line=number,
                                  hint="keys: " + ", ".join(KEYS))
            continue
        mine[key] = (value.split(" #")[0].strip(), path, number)
    return mine


def read_files(files: list[str] | None = None, *,
               strict: bool = True) -> dict[str, tuple[str, str, int]]:
    """{key: (value, file, line)}: per key, the first file that sets it, its last line.
    ``strict``: an unreadable file or an unknown line is a ConfigError, else skipped."""
    found: dict[str, tuple[str, str, int]] = {}
    for path in net_conf_files() if files is None else files:
        lines = _lines(path, strict)
        if lines is not None:
            for key, item in _settings(path, lines, strict).items():
                found.setdefault(key, item)
    return found


def bridge_name(files: list[str] | None = None) -> str:
    """The bridge lxcsd-net makes, for the generator: never raises."""
    return read_files(files, strict=False).get("bridge", ("",))[0] or DEFAULT_BRIDGE


class NetConf(Record):
    """The resolved settings."""

    bridge: str
    interface: IPv4Interface
    dhcp_range: tuple[str, str] | None
    dhcp_max: int
    dhcp_conf: str
    domain: str
    nat: bool
    dnsmasq: bool

    @property
    def address(self) -> str:
        return str(self.interface.ip)

    @property
    def network(self) -> str:
        return str(self.interface.network)


def load(files: list[str] | None = None) -> NetConf:
    """Every setting checked; ConfigError with file and line for a bad one."""
    import ipaddress

    raw = read_files(files)

    def get(key: str, default: str) -> str:
        return raw[key][0] if key in raw and raw[key][0] != "" else default

    def fail(key: str, message: str) -> ConfigError:
        _, path, line = raw.get(key, ("", "", 0))
        return ConfigError(message, path=path, line=line, key=key)

    def flag(key: str) -> bool:
        value = get(key, "on").lower()
        if value not in _BOOLS:
            raise fail(key, f"{value!r} is not on or off")
        return _BOOLS[value]

    address = get("address", "10.0.3.1")
    if "/" not in address:
        address += "/" + get("netmask", "255.255.255.0")
    try:
        interface = ipaddress.IPv4Interface(address)
    except ValueError as err:
        raise fail("address" if "address" in raw else "netmask", str(err)) from err
    if interface.network.num_addresses - 2 < 2:
        raise fail("address", f"{interface.network} is too small for containers")
    dhcp_range = _range(get("dhcp_range", ""), interface, fail)
    try:
        dhcp_max = int(get("dhcp_max", str(_range_size(dhcp_range) if dhcp_range else 0)))
    except ValueError as err:
        raise fail("dhcp_max", "not a number") from err
    bridge = get("bridge", DEFAULT_BRIDGE)
    if len(bridge) > 15 or "/" in bridge or " " in bridge:
        raise fail("bridge", f"{bridge!r} is not a valid interface name")
    return NetConf(bridge=bridge, interface=interface, dhcp_range=dhcp_range,
                   dhcp_max=dhcp_max, dhcp_conf=get("dhcp_conf", ""),
                   domain=get("domain", ""), nat=flag("nat"), dnsmasq=flag("dnsmasq"))


def _range(value: str, interface: IPv4Interface,
           fail: Callable[[str, str], ConfigError]) -> tuple[str, str] | None:
    import ipaddress

    if value.lower() == "off":
        return None
    if not value:
        net = interface.network
        start = net.network_address + 2 if interface.ip == net.network_address + 1 else \
            net.network_address + 1
        return str(start), str(net.broadcast_address - 1)
    first, sep, last = value.partition(",")
    try:
        low, high = ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())
    except ValueError as err:
        raise fail("dhcp_range", f"{value!r}: {err}") from err
    if not sep or low > high or low not in interface.network or high not in interface.network:
        raise fail("dhcp_range", f"{value!r} is not FIRST,LAST inside {interface.network}")
    return str(low), str(high)


def _range_size(dhcp_range: tuple[str, str]) -> int:
    import ipaddress

    low, high = (int(ipaddress.IPv4Address(a)) for a in dhcp_range)
    return high - low + 1
