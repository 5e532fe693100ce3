"""``lxcsd info NAME...``: one container in detail, like ``lxc-info``: state, init PID,
IP addresses, each network's host link with its TX/RX bytes, cgroup usage and limits (CPU,
memory, swap, processes, I/O where the host tracks them), its unit and cgroup, config path,
autostart, start order and delay, groups.
"""

from __future__ import annotations

import argparse
import json
import sys

from lxcsd.config.load import find_container

from ._status import container_status, human_bytes, human_seconds
from ._target import add_lxcpath_option, add_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPILOG = """\
examples:
  lxcsd info web1
  lxcsd info web1 --format json
  lxcsd info web1 -s           the state only (RUNNING, STOPPED, ...), as lxc-info -s
  lxcsd info -n web1 -p        init's PID only, as lxc-info -n web1 -p

Limits are the tightest of the unit's (systemctl set-property lxc@NAME MemoryMax=...) and
the config's (lxc.cgroup2.memory.max, pids.max, cpu.max); the host needs those cgroup2
controllers. TX and RX bytes are counted from the container's side, as lxc-info does.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "info", help="show a container's state, addresses and resource usage",
        description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_names(parser, many=True, help="container names")
    parser.add_argument("-s", "--state", action="store_true", help="print the state only")
    parser.add_argument("-p", "--pid", action="store_true", help="print init's PID only")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text)")
    add_lxcpath_option(parser)
    return parser


def lines(info: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs in lxc-info's order, with lxcsd's additions."""
    pairs = [("Name", info["name"]), ("State", info["state"])]
    if info.get("runs_under") == "lxc":
        pairs.append(("Run by", f"LXC, {info['lxc_monitor']}: not lxc@{info['name']}.service "
                                "(lxcsd will not start it; lxc-stop stops it)"))
    if info["pid"]:
        pairs.append(("PID", str(info["pid"])))
    pairs += [("IP", address) for address in info["ipv4"] + info["ipv6"]]
    if info["state"] not in ("STOPPED", "FAILED"):
        pairs += usage_lines(info)
    for link in info["links"]:
        pairs += [("Link", link["link"]), (" TX bytes", human_bytes(link["tx"])),
                  (" RX bytes", human_bytes(link["rx"]))]
        if link["tx"] is not None and link["rx"] is not None:
            pairs.append((" Total bytes", human_bytes(link["tx"] + link["rx"])))
    pairs += [("Unit", f"{info['unit']} ({info['active_state']}/{info['sub_state']})")]
    if info["control_group"]:
        pairs.append(("Cgroup", info["control_group"]))
    if info["status_text"]:
        pairs.append(("Status", info["status_text"]))
    pairs += [("Config", info["config"]),
              ("Autostart", ("yes" if info["autostart"] else "no")
               + (" (lxc.start.auto)" if info["start_auto"] else "")
               + (" (unit enabled)" if info["enabled"] else "")),
              ("Start order", str(info["start_order"])),
              ("Start delay", str(info["start_delay"])),
              ("Groups", ",".join(info["groups"]) or "-"),
              ("Unprivileged", "yes" if info["unprivileged"] else "no")]
    if info["config_error"]:
        pairs.append(("Config error", info["config_error"]))
    if info.get("autostart_warning"):
        pairs.append(("Warning", info["autostart_warning"]))
    return pairs


def _limited(text: str, limit: str | None) -> str:
    return f"{text} (limit {limit})" if limit else text


def usage_lines(info: dict[str, Any]) -> list[tuple[str, str]]:
    """Usage, each with its limit when there is one."""
    limit = info["limits"]
    cpus, high = limit["cpus"], limit["memory_high"]
    memory = _limited(human_bytes(info["memory"]), human_bytes(limit["memory_max"])
                      if limit["memory_max"] is not None else None)
    pairs = [("CPU use", _limited(human_seconds(info["cpu_ns"]),
                                  f"{cpus:g} CPU" if cpus is not None else None)),
             ("Memory use", memory)]
    if high is not None:
        pairs.append(("Memory high", human_bytes(high)))
    if info["swap"] is not None or limit["swap_max"] is not None:
        pairs.append(("Swap use", _limited(human_bytes(info["swap"]), human_bytes(
            limit["swap_max"]) if limit["swap_max"] is not None else None)))
    pids = "-" if info["pids"] is None else str(info["pids"])
    pairs += [("Processes", _limited(pids, str(limit["pids_max"])
                                     if limit["pids_max"] is not None else None)),
              ("I/O read", human_bytes(info["io_read"])),
              ("I/O written", human_bytes(info["io_write"]))]
    return pairs


def run(args: argparse.Namespace) -> int:
    from lxcsd.systemd.manager import Systemd

    infos = []
    with Systemd() as systemd:
        for name in args.names:
            config = find_container(name, args.lxcpath)
            infos.append(container_status(systemd, name, config, detail=True))
    if args.format == "json":
        json.dump(infos if len(infos) > 1 else infos[0], sys.stdout, indent=2)
        print()
        return 0
    for number, info in enumerate(infos):
        if args.state or args.pid:
            print(info["state"] if args.state else (info["pid"] or ""))
            continue
        if number:
            print()
        width = max(len(label) for label, _ in lines(info)) + 1
        for label, value in lines(info):
            print(f"{label + ':':<{width}} {value}")
    return 0
