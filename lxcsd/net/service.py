"""lxcsd-net.service: the default bridge, forwarding, NAT and dnsmasq (what lxc-net does).

``up`` (``lxcsd-net start``): create the bridge (or adopt one that exists: see below) with its
address, turn on IPv4 forwarding, load the NAT table, and start dnsmasq for DHCP/DNS on the
bridge when it is installed. ``down`` (``lxcsd-net stop``, the unit's ExecStopPost=): undo it
from what ``up`` recorded in ``RUN_DIR/state`` (not from the config, which may have changed).

Which process is the unit's main one: ``lxcsd-net start`` forks dnsmasq
(``--keep-in-foreground``), waits until it has written its pid file (sockets bound), then
sends ``MAINPID=<dnsmasq>`` with ``READY=1`` and exits (the unit is ``Type=notify``): systemd
supervises dnsmasq itself, so a crash fails the unit and ``Restart=on-failure`` applies, and no
Python process stays. Without dnsmasq, it sends ``READY=1`` and exits: ``RemainAfterExit=yes``
keeps the unit active.

Restarting must not disturb running containers, so ``down`` deletes the bridge only when it
created it and no port is attached; a bridge with container veths stays up with its address
(and forwarding stays on) and the next ``up`` adopts it. LXC's lxc-net deletes the bridge
unconditionally, which detaches every container; here only stopping the last container and
then lxcsd-net removes it. The NAT table is replaced (conntrack keeps established flows).

NAT: the python3-nftables bindings (libnftables, the library ``nft`` is built on), given the
ruleset as ``nft`` text: the same syntax as the admin's ``nft list ruleset``, applied
atomically, with libnftables' own error messages. pyroute2's nftables module builds raw
netlink expressions one by one (no ``masquerade``/``iifname`` helpers, no atomic batch API in
0.9) — more code for the same rules, and nothing readable to show for it.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

from lxcsd.config.netconf import NetConf
from lxcsd.errors import LxcsdError

RUN_DIR = "/run/lxcsd/net"
LEASE_DIR = "/var/lib/lxcsd/net"
TABLE = "lxcsd-net"
STATE = "state"
PIDFILE = "dnsmasq.pid"


def ruleset(conf: NetConf, bridge: str) -> str:
    """The nft text of lxcsd-net's table (LXC's iptables rules, in nftables)."""
    network = conf.network
    rules = [f"table ip {TABLE} {{"]
    rules += [
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        f'    iifname "{bridge}" udp dport {{ 53, 67 }} accept',
        f'    iifname "{bridge}" tcp dport 53 accept',
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        f'    iifname "{bridge}" accept',
        f'    oifname "{bridge}" accept',
        "  }",
    ]
    if conf.nat:
        rules += [
            "  chain postrouting {",
            "    type nat hook postrouting priority srcnat; policy accept;",
            f"    ip saddr {network} ip daddr != {network} masquerade",
            "  }",
        ]
    return "\n".join(rules + ["}"]) + "\n"


def _nft(command: str, *, check: bool = True) -> None:
    import nftables  # type: ignore[import-untyped]  # python3-nftables (Debian's)

    nft = nftables.Nftables()
    rc, _, err = nft.cmd(command)
    if rc != 0 and check:
        raise LxcsdError(f"nftables: {err.strip()}")


# --- state ----------------------------------------------------------------------------------


def _write_state(run_dir: str, values: dict[str, str]) -> None:
    os.makedirs(run_dir, mode=0o755, exist_ok=True)
    text = "".join(f"{key}={value}\n" for key, value in values.items())
    tmp = os.path.join(run_dir, STATE + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, os.path.join(run_dir, STATE))


def _read_state(run_dir: str) -> dict[str, str]:
    try:
        with open(os.path.join(run_dir, STATE)) as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return {}
    return dict(line.partition("=")[::2] for line in lines if "=" in line)


# --- bridge ---------------------------------------------------------------------------------


def _ensure_bridge(conf: NetConf) -> bool:
    """Create the bridge, or adopt it; give it its address; up. True when created here."""
    from . import nl

    with nl.open_host() as ipr:
        index = nl.index_of(ipr, conf.bridge)
        created = index is None
        if index is None:
            ipr.link("add", ifname=conf.bridge, kind="bridge")
            index = nl.index_of(ipr, conf.bridge)
            if index is None:
                raise LxcsdError(f"{conf.bridge} vanished right after its creation")
        elif nl.link_kind(ipr, index) != "bridge":
            raise LxcsdError(f"{conf.bridge} exists and is not a bridge",
                             "set another name with bridge = in /etc/lxcsd/net.conf")
        present = {nl.attr(msg, "address") for msg in ipr.get_addr(index=index, family=nl.AF_INET)}
        if conf.address not in present:
            ipr.addr("add", index=index, address=conf.address,
                     prefixlen=conf.interface.network.prefixlen,
                     broadcast=str(conf.interface.network.broadcast_address))
        ipr.link("set", index=index, state="up")
    return created


def _bridge_ports(bridge: str) -> list[str]:
    from . import nl

    with nl.open_host() as ipr:
        index = nl.index_of(ipr, bridge)
        if index is None:
            return []
        return [str(nl.attr(link, "ifname")) for link in ipr.get_links()
                if nl.attr(link, "master") == index]


def _delete_bridge(bridge: str) -> None:
    from . import nl

    with nl.open_host() as ipr:
        index = nl.index_of(ipr, bridge)
        if index is not None and nl.link_kind(ipr, index) == "bridge":
            ipr.link("del", index=index)


def _sysctl(path: str, value: str | None = None) -> str:
    with open(path, "r+" if value is not None else "r") as handle:
        old = handle.read().strip()
        if value is not None and old != value:
            handle.seek(0)
            handle.write(value)
    return old


# --- dnsmasq --------------------------------------------------------------------------------


def dnsmasq_argv(conf: NetConf, run_dir: str, lease_dir: str, binary: str) -> list[str]:
    """dnsmasq's command line, as lxc-net runs it."""
    assert conf.dhcp_range is not None
    argv = [binary, "--keep-in-foreground", f"--conf-file={conf.dhcp_conf or '/dev/null'}",
            "--strict-order", "--bind-interfaces",
            f"--pid-file={os.path.join(run_dir, PIDFILE)}",
            f"--listen-address={conf.address}",
            f"--dhcp-range={conf.dhcp_range[0]},{conf.dhcp_range[1]}",
            f"--dhcp-lease-max={conf.dhcp_max}", "--dhcp-no-override",
            "--except-interface=lo", f"--interface={conf.bridge}",
            f"--dhcp-leasefile={os.path.join(lease_dir, f'dnsmasq.{conf.bridge}.leases')}",
            "--dhcp-authoritative"]
    if conf.domain:
        argv += [f"--domain={conf.domain}", f"--local=/{conf.domain}/"]
    for user in ("dnsmasq", "nobody"):
        try:
            import pwd

            pwd.getpwnam(user)
        except KeyError:
            continue
        argv.append(f"--user={user}")
        break
    return argv


def _start_dnsmasq(conf: NetConf, run_dir: str, lease_dir: str, timeout: float) -> int | None:
    binary = shutil.which("dnsmasq", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not conf.dnsmasq or conf.dhcp_range is None or binary is None:
        return None
    os.makedirs(lease_dir, mode=0o755, exist_ok=True)
    pidfile = os.path.join(run_dir, PIDFILE)
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    pid = os.posix_spawn(binary, dnsmasq_argv(conf, run_dir, lease_dir, binary), os.environ)
    deadline = time.monotonic() + timeout
    while not os.path.exists(pidfile):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            raise LxcsdError(f"dnsmasq exited with status {os.waitstatus_to_exitcode(status)} "
                             "(its messages are in the journal)")
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise LxcsdError(f"dnsmasq did not start within {timeout:g} s")
        time.sleep(0.01)
    return pid


def _stop_dnsmasq(run_dir: str, pid_hint: str) -> None:
    """SIGTERM the recorded dnsmasq if it still runs (under systemd it is already gone)."""
    pid = int(pid_hint) if pid_hint.isdigit() else 0
    if not pid:
        return
    try:
        with open(f"/proc/{pid}/comm") as handle:
            if handle.read().strip() != "dnsmasq":
                return
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError):
        return
    for _ in range(500):
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            if not os.path.exists(f"/proc/{pid}"):
                return
        time.sleep(0.01)


# --- up / down ------------------------------------------------------------------------------


def up(conf: NetConf, *, run_dir: str = RUN_DIR, lease_dir: str = LEASE_DIR,
       timeout: float = 10.0) -> int | None:
    """Bring the default network up; returns dnsmasq's pid, or None without dnsmasq."""
    old = _read_state(run_dir)
    if old.get("bridge") and old["bridge"] != conf.bridge:
        down(run_dir=run_dir)  # a previous run with another bridge was not stopped
    created = _ensure_bridge(conf)
    values = {"bridge": conf.bridge,
              "created": "1" if created or old.get("created") == "1" else "0"}
    _write_state(run_dir, values)
    values["forward"] = _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    if old.get("forward"):
        values["forward"] = old["forward"]  # the value before lxcsd-net ever ran
    _write_state(run_dir, values)
    _nft(f"delete table ip {TABLE}", check=False)
    _nft(ruleset(conf, conf.bridge))
    values["nft"] = "1"
    _write_state(run_dir, values)
    pid = _start_dnsmasq(conf, run_dir, lease_dir, timeout)
    values["dnsmasq"] = str(pid or "")
    _write_state(run_dir, values)
    return pid


def down(*, run_dir: str = RUN_DIR) -> list[str]:
    """Undo :func:`up`; returns the ports that kept the bridge (empty when it was removed)."""
    values = _read_state(run_dir)
    if not values:
        return []
    _stop_dnsmasq(run_dir, values.get("dnsmasq", ""))
    if values.get("nft") == "1":
        _nft(f"delete table ip {TABLE}", check=False)
    bridge = values.get("bridge", "")
    ports = _bridge_ports(bridge) if bridge else []
    if not ports:
        if values.get("created") == "1":
            _delete_bridge(bridge)
        if values.get("forward") in ("0", "1"):
            _sysctl("/proc/sys/net/ipv4/ip_forward", values["forward"])
        os.unlink(os.path.join(run_dir, STATE))
    else:
        values.pop("nft", None)
        values.pop("dnsmasq", None)
        _write_state(run_dir, values)
    for name in (PIDFILE,):
        try:
            os.unlink(os.path.join(run_dir, name))
        except FileNotFoundError:
            pass
    return ports
