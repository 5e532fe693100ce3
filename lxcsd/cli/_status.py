"""What ``lxcsd ls`` and ``lxcsd info`` show about a container: state from its unit, IP
addresses from inside its network namespace, resource usage from its cgroup.

IP addresses are read the cheap way, without netlink or entering a namespace:
/proc/INIT/net/fib_trie (IPv4: the table's ``/32 host LOCAL`` leaves) and
/proc/INIT/net/if_inet6 (IPv6) show the network namespace of the container's init. As
``lxc-ls``, loopback addresses and IPv6 link-local ones are left out.

Usage numbers come from systemd's properties of the unit (MemoryCurrent, CPUUsageNSec,
TasksCurrent, IO*Bytes) when systemd tracks them, else from the unit's cgroup files
(memory.current, cpu.stat's usage_usec, the processes of cgroup.procs below it, io.stat),
else they are None ('-' in tables). Limits are the tightest of the unit's cgroup (systemd's
MemoryMax=, TasksMax=, CPUQuota=) and the payload cgroup (lxc.cgroup2.*): memory.max,
memory.high, memory.swap.max, pids.max, cpu.max; None when unlimited or not there (a
cgroup2 tree without the controller).

Links are lxc-info's: the host side of each network (a veth's host end, else the
lxc.net.N.link device), from the network state file lxcsd.net wrote at start, with its
byte counters from /sys/class/net/LINK/statistics seen from the container (the host end's
received bytes are what the container sent).
"""

from __future__ import annotations

import os

from lxcsd.config.load import load_path
from lxcsd.config.names import unit_name
from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.config.model import Container
    from lxcsd.liblxc.owner import Holder
    from lxcsd.systemd.manager import Systemd

# if_inet6 scope values (include/net/ipv6.h IPV6_ADDR_*): only global addresses are shown.
IPV6_SCOPE_GLOBAL = 0x00


# ------------------------------------------------------------------------------------------
# IP addresses


def parse_fib_trie(text: str) -> list[str]:
    """Local IPv4 addresses of a /proc/net/fib_trie dump, loopback excluded, in order."""
    found: list[str] = []
    last = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|--"):
            last = stripped[3:].strip()
        elif stripped.startswith("/32 host LOCAL") and last:
            if not last.startswith("127.") and last not in found:
                found.append(last)
    return found


def parse_if_inet6(text: str) -> list[str]:
    """Global IPv6 addresses of /proc/net/if_inet6 (addr ifindex plen scope flags name)."""
    import ipaddress

    found: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[5] == "lo":
            continue
        try:
            scope = int(fields[3], 16)
            address = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
        except ValueError:
            continue
        if scope == IPV6_SCOPE_GLOBAL and address not in found:
            found.append(address)
    return found


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def addresses(pid: int) -> tuple[list[str], list[str]]:
    """(IPv4, IPv6) addresses of the network namespace of pid; empty when unreadable."""
    v4 = _read(f"/proc/{pid}/net/fib_trie")
    v6 = _read(f"/proc/{pid}/net/if_inet6")
    return (parse_fib_trie(v4) if v4 else [], parse_if_inet6(v6) if v6 else [])


# ------------------------------------------------------------------------------------------
# cgroup usage


def cgroup_dir(control_group: str) -> str | None:
    """Host directory of a unit's ControlGroup (relative to systemd's cgroup2 root)."""
    if not control_group:
        return None
    from lxcsd.runtime.cgroup import cgroup2_mount

    try:
        mountpoint, _ = cgroup2_mount()
    except LxcsdError:
        return None
    path = os.path.join(mountpoint, control_group.lstrip("/"))
    return path if os.path.isdir(path) else None


def parse_keyed(text: str) -> dict[str, int]:
    """A flat keyed file (cpu.stat, memory.stat): {key: value}."""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def parse_io_stat(text: str) -> tuple[int, int]:
    """(read bytes, written bytes) summed over the devices of io.stat."""
    read = written = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes" and value.isdigit():
                read += int(value)
            elif key == "wbytes" and value.isdigit():
                written += int(value)
    return read, written


def count_processes(directory: str) -> int:
    """Processes in directory's cgroup and every cgroup below it."""
    total = 0
    for top, _, files in os.walk(directory):
        if "cgroup.procs" in files:
            text = _read(os.path.join(top, "cgroup.procs")) or ""
            total += sum(1 for line in text.splitlines() if line.strip())
    return total


def usage(props: dict[str, Any]) -> dict[str, int | None]:
    """memory and swap (bytes), cpu_ns, pids, io_read, io_write of a unit (None where
    unknown)."""
    from lxcsd.systemd.manager import counter

    result: dict[str, int | None] = {
        "memory": counter(props.get("MemoryCurrent")),
        "cpu_ns": counter(props.get("CPUUsageNSec")),
        "pids": counter(props.get("TasksCurrent")),
        "io_read": counter(props.get("IOReadBytes")),
        "io_write": counter(props.get("IOWriteBytes")),
        "swap": None,  # systemd 252 has no MemorySwapCurrent
    }
    directory = cgroup_dir(props.get("ControlGroup") or "")
    if directory is None:
        return result
    result["swap"] = parse_limit(_read(os.path.join(directory, "memory.swap.current")))
    if result["memory"] is None:
        text = _read(os.path.join(directory, "memory.current"))
        result["memory"] = int(text) if text and text.strip().isdigit() else None
    if result["cpu_ns"] is None:
        stat = parse_keyed(_read(os.path.join(directory, "cpu.stat")) or "")
        result["cpu_ns"] = stat["usage_usec"] * 1000 if "usage_usec" in stat else None
    if result["pids"] is None:
        text = _read(os.path.join(directory, "pids.current"))
        result["pids"] = int(text) if text and text.strip().isdigit() \
            else count_processes(directory)
    if result["io_read"] is None:
        text = _read(os.path.join(directory, "io.stat"))
        if text is not None:
            result["io_read"], result["io_write"] = parse_io_stat(text)
    return result


def human_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.2f}{unit}"
        size /= 1024
    return f"{value}B"  # pragma: no cover


def human_seconds(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e9:.3f}s"


# ------------------------------------------------------------------------------------------
# Limits, interfaces, links

LIMIT_FILES = {"memory_max": "memory.max", "memory_high": "memory.high",
               "swap_max": "memory.swap.max", "pids_max": "pids.max"}


def parse_limit(text: str | None) -> int | None:
    """A cgroup limit file's value: None for "max", missing or unreadable."""
    value = (text or "").strip()
    return int(value) if value.isdigit() else None


def parse_cpu_max(text: str | None) -> float | None:
    """cpu.max ("QUOTA PERIOD" or "max PERIOD") as CPUs (0.5 = half of one), None: no limit."""
    words = (text or "").split()
    if len(words) != 2 or not words[0].isdigit() or not words[1].isdigit() or words[1] == "0":
        return None
    return int(words[0]) / int(words[1])


def _tightest(values: list[int | float | None]) -> int | float | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def limits(directories: list[str]) -> dict[str, int | float | None]:
    """memory_max, memory_high, swap_max, pids_max (numbers) and cpus (cpu.max as CPUs):
    the tightest over directories (a limit of a parent cgroup binds its children)."""
    found: dict[str, int | float | None] = {
        key: _tightest([parse_limit(_read(os.path.join(d, name))) for d in directories])
        for key, name in LIMIT_FILES.items()}
    found["cpus"] = _tightest([parse_cpu_max(_read(os.path.join(d, "cpu.max")))
                               for d in directories])
    return found


def parse_net_dev(text: str) -> list[str]:
    """Interface names of /proc/net/dev, loopback left out (as lxc-ls's INTERFACE)."""
    names = [line.split(":", 1)[0].strip() for line in text.splitlines()[2:] if ":" in line]
    return [name for name in names if name and name != "lo"]


def interfaces(pid: int) -> list[str]:
    return parse_net_dev(_read(f"/proc/{pid}/net/dev") or "")


def host_links(name: str, sysfs: str = "/sys/class/net") -> list[dict[str, Any]]:
    """[{link, type, tx, rx}] of the container's networks, tx/rx bytes as the container
    sees them (None when the device is not in the host's namespace: phys)."""
    from lxcsd.net import state as net_state
    from lxcsd.runtime import state

    recorded = net_state.read(state.state_dir(name))
    found = []
    for record in recorded[0] if recorded else []:
        link = record.get("host") or record.get("link") or ""
        if not link or record.get("type") == "phys":
            continue
        stats = os.path.join(sysfs, link, "statistics")
        found.append({"link": link, "type": record.get("type") or None,
                      "tx": parse_limit(_read(os.path.join(stats, "rx_bytes"))),
                      "rx": parse_limit(_read(os.path.join(stats, "tx_bytes")))})
    return found


def _details(name: str, pid: int, props: dict[str, Any]) -> dict[str, Any]:
    """What only info shows: links and limits."""
    from lxcsd.runtime import state

    directories = [d for d in (cgroup_dir(props.get("ControlGroup") or ""),
                               (state.read(name) or {}).get("payload_cgroup")) if d]
    return {"links": host_links(name) if pid else [], "limits": limits(directories)}


# ------------------------------------------------------------------------------------------
# One container


def lxc_run(name: str, config: str) -> Holder | None:
    """The container's LXC monitor when lxc-start (not lxcsd) runs it."""
    from ._containers import lxc_holder

    try:
        return lxc_holder(name, config)
    except OSError:
        return None


def holder_state(holder: Holder) -> str:
    from lxcsd.liblxc import wire

    return wire.STATE_NAMES[holder.state] if 0 <= holder.state < wire.MAX_STATE else "RUNNING"


def load_quietly(name: str, config: str) -> tuple[Container | None, str]:
    """The container model, or None and the error (ls shows broken configs too)."""
    try:
        return load_path(config, name), ""
    except LxcsdError as exc:
        return None, str(exc)


def container_status(systemd: Systemd, name: str, config: str, *,
                     loaded: dict[str, tuple[str, str, str]] | None = None,
                     detail: bool = False) -> dict[str, Any]:
    """Everything ls (and with detail, info) shows about one container."""
    from lxcsd.systemd.manager import container_state

    container, error = load_quietly(name, config)
    unit = unit_name(name)
    props: dict[str, Any] = {}
    if loaded is not None and unit not in loaded:
        active, sub = "inactive", "dead"  # not loaded: never started since boot
    else:
        props = systemd.unit_properties(unit)
        active, sub = props.get("ActiveState", "inactive"), props.get("SubState", "dead")
    state = container_state(active, sub)
    pid = int(props.get("MainPID") or 0) if state in ("RUNNING", "STOPPING") else 0
    holder = lxc_run(name, config) if state in ("STOPPED", "FAILED") else None
    if holder is not None:  # lxc-start runs it, outside lxc@NAME.service
        state, pid = holder_state(holder), holder.init_pid
    enabled = systemd.unit_file_state(unit) == "enabled"
    auto = bool(container is not None and container.start.auto)
    ipv4, ipv6 = addresses(pid) if pid else ([], [])
    info: dict[str, Any] = {
        "name": name, "state": state, "unit": unit, "active_state": active,
        "sub_state": sub, "autostart": auto or enabled, "enabled": enabled,
        "groups": list(container.groups) if container else [],
        "ipv4": ipv4, "ipv6": ipv6, "unprivileged": bool(container and container.idmaps),
        "pid": pid or None, "config": config, "config_error": error or None,
        "interfaces": interfaces(pid) if pid else [],
        "runs_under": "lxc" if holder is not None else ("lxcsd" if pid else None),
        "lxc_monitor": holder.describe() if holder is not None else None,
    }
    running = props and holder is None and state not in ("STOPPED", "FAILED")
    use = usage(props) if running else dict.fromkeys(
        ("memory", "cpu_ns", "pids", "io_read", "io_write", "swap"))
    info["memory"], info["swap"] = use["memory"], use["swap"]
    if detail:
        info.update(use)
        info["start_auto"] = auto
        info["start_order"] = (container.start.order or 0) if container else None
        info["start_delay"] = (container.start.delay or 0) if container else None
        info["hostname"] = (container.uts_name or name) if container else None
        info["control_group"] = props.get("ControlGroup") or None
        info["status_text"] = props.get("StatusText") or None
        info["result"] = props.get("Result") or None
        info.update(_details(name, pid, props))
        info["autostart_warning"] = autostart_warning(container)
    return info


def autostart_warning(container: Container | None) -> str | None:
    if container is None:
        return None
    from lxcsd.liblxc.lxcservice import double_autostart

    return double_autostart(bool(container.start.auto), container.groups) or None
