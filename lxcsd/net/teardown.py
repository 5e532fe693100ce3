"""Undo a container's network set-up from its state file (``lxcsd-helper cleanup``).

Runs in the host's network namespace, after init exited or while it still runs (a failed
start), possibly after the helper was SIGKILLed at any step of set-up. Idempotent: the state
file is removed last, and every step tolerates a device already gone. Only devices the state
file names are touched, and a recorded ifindex must still match (a name may have been taken
by another device since).

Per network, last first (liblxc's order): ``script.down``; veth: delete the host end (the
peer goes with it); phys: give the device back to the host's namespace under its original
name and MTU — from the pinned container namespace while it exists, else found in the
host's namespace by ifindex (a real NIC returns to the initial namespace by itself when the
namespace dies); l2proxy: remove the proxy entries. Then unmount the namespace pin.
"""

from __future__ import annotations

import os
import sys

from lxcsd import linux

from . import hooks, state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MNT_DETACH = 2


def cleanup_state(name: str, state_dir: str) -> None:
    parsed = state.read(state_dir)
    if parsed is None:
        return
    records, pins = parsed
    nl: Any = None
    host: Any = None
    inner: Any = None
    if any(("host" in r or "orig" in r or _proxies(r)) for r in records):
        from . import nl as nl_module

        nl = nl_module
        host = nl.open_host()
        inner = _open_pinned(nl, pins)
    try:
        for record in reversed(records):
            _undo(name, record, nl, host, inner)
    finally:
        for sock in (host, inner):
            if sock is not None:
                sock.close()
    for pin in pins:
        _unpin(pin)
    state.remove(state_dir)


def _open_pinned(nl: Any, pins: list[str]) -> Any:
    for pin in pins:
        try:
            return nl.open_in(pin)
        except OSError:
            continue  # not mounted (killed before the bind mount) or already unmounted
    return None


def _unpin(pin: str) -> None:
    try:
        linux.umount2(pin, MNT_DETACH)
    except OSError:
        pass
    try:
        os.unlink(pin)
    except FileNotFoundError:
        pass


def _proxies(record: dict[str, str]) -> list[tuple[str, str, int]]:
    """(address, link, family) of the l2proxy entries recorded for a network."""
    found = []
    for key, link in record.items():
        if key.startswith(("proxy4_", "proxy6_")):
            found.append((key[7:], link, 2 if key[5] == "4" else 10))
    return found


def _undo(name: str, record: dict[str, str], nl: Any, host: Any, inner: Any) -> None:
    net_type = record.get("type", "")
    if record.get("down"):
        _run_down(name, record, net_type)
    for address, link, family in _proxies(record):
        _del_proxy(nl, host, address, link, family)
    if net_type == "veth" and record.get("host"):
        _delete_host_end(nl, host, record)
    elif net_type == "phys" and record.get("orig"):
        _return_phys(nl, host, inner, record)


def _run_down(name: str, record: dict[str, str], net_type: str) -> None:
    try:
        status = hooks.run(record["down"], name=name, config_file=record.get("config", ""),
                           version=int(record.get("hookver", "0") or 0), hook="down",
                           net_type=net_type, link=record.get("link", ""),
                           peer=record.get("host", ""))
    except Exception as err:  # a broken hook must not stop the rest of the cleanup
        status = -1
        print(f"lxcsd: network down hook: {err}", file=sys.stderr)
    if status != 0:
        print(f"lxcsd: lxc.net.{record.get('net')}.script.down {record['down']!r} exited with "
              f"status {status}", file=sys.stderr)


def _delete_host_end(nl: Any, host: Any, record: dict[str, str]) -> None:
    index = nl.index_of(host, record["host"])
    if index is None:
        return  # gone with the container's namespace, or never created
    recorded = record.get("hostindex")
    if recorded and recorded != "None" and int(recorded) != index:
        return  # the name belongs to another device now
    if not recorded and nl.link_kind(host, index) != "veth":
        return
    try:
        host.link("del", index=index)
    except nl.NetlinkError as err:
        if getattr(err, "code", 0) != 19:  # ENODEV: went away meanwhile
            raise


def _return_phys(nl: Any, host: Any, inner: Any, record: dict[str, str]) -> None:
    ifindex = int(record["ifindex"])
    orig = record["orig"]
    if inner is not None and nl.link_attr(inner, ifindex, "ifname") is not None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            inner.link("set", index=ifindex, state="down")
            inner.link("set", index=ifindex, net_ns_fd=own, ifname=orig)
        finally:
            os.close(own)
    index = _find_returned(nl, host, ifindex, orig, record.get("inner", ""))
    if index is None:
        return  # not in this namespace: a NIC the kernel gave to the initial namespace
    if nl.link_attr(host, index, "ifname") != orig:
        host.link("set", index=index, state="down")
        host.link("set", index=index, ifname=orig)
    mtu = record.get("mtu")
    if mtu and mtu != "None" and nl.link_attr(host, index, "mtu") != int(mtu):
        host.link("set", index=index, mtu=int(mtu))


def _find_returned(nl: Any, host: Any, ifindex: int, orig: str, inner: str) -> int | None:
    """The phys device in the host's namespace: the recorded ifindex under its original or
    container-side name (ifindexes are per namespace: another device may hold it now)."""
    if nl.link_attr(host, ifindex, "ifname") in (orig, inner):
        return ifindex
    return None


def _del_proxy(nl: Any, host: Any, address: str, link: str, family: int) -> None:
    index = nl.index_of(host, link)
    if index is None:
        return
    try:
        host.neigh("del", dst=address, ifindex=index, family=family, flags=nl.NTF_PROXY)
    except nl.NetlinkError:
        pass  # already gone
