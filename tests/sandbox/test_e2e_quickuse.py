"""README's quick-use flow, run literally under a real systemd (the sandbox) on a host with
Debian's lxc package: its /etc/lxc/default.conf (veth on lxcbr0, lxc.apparmor.profile =
generated, allow_nesting) is the start of every config `lxcsd create` writes. The sandbox
has its own network namespace: lxcbr0, dnsmasq and the container's address never reach the
host's network. This host has no AppArmor: the generated profile is one warning line.

busybox: `lxcsd create web1`, daemon-reload, `systemctl start lxc@web1`: it runs, its
console shows one shell banner (no respawn loop), `lxcsd attach web1 -- ps` one shell, eth0
gets a lease from lxcsd-net's dnsmasq (udhcpc at boot), `lxcsd info` shows it and the
sandbox pings it. debian: the same with systemd-networkd inside (the template's .network
file), created from the debootstrap cache (seeded with the test suite's Debian tree: the
sandbox has no network to debootstrap with).
"""

from __future__ import annotations

import shutil
import time

import pytest

from tests.infra import e2e_util as u
from tests.infra import rootfs
from tests.infra.sandbox import Sandbox

pytestmark = [pytest.mark.network,
              pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="needs dnsmasq-base")]

LXCSD = "/usr/local/bin/lxcsd"
DEFAULT_CONF = "/etc/lxc/default.conf"
BANNER = "built-in shell (ash)"


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Sandbox:
    sb = clean_lxcsd_sandbox
    text = sb.run(["cat", DEFAULT_CONF], check=False).stdout
    if "lxc.net.0.link = lxcbr0" not in text:
        pytest.skip(f"{DEFAULT_CONF} is not Debian lxc's (a veth on lxcbr0)")
    return sb


def lease(sb: Sandbox, name: str, timeout: float = 90.0) -> str:
    """The container's 10.0.3.x address once it has one, as `lxcsd info` shows it."""
    found = [""]

    def has() -> bool:
        out = sb.run([LXCSD, "info", name], check=False).stdout
        found[0] = next((line.split()[1] for line in out.splitlines()
                         if line.startswith("IP:") and line.split()[1].startswith("10.0.3.")),
                        "")
        return bool(found[0])

    u.wait_for(has, timeout, f"a DHCP address for {name} in `lxcsd info`")
    return found[0]


def test_quick_use_busybox(sb: Sandbox) -> None:
    try:
        sb.run([LXCSD, "create", "web1"])
        config = sb.run(["cat", "/var/lib/lxc/web1/config"]).stdout
        assert "lxc.apparmor.profile = generated" in config  # default.conf's, as lxc-create
        check = sb.run([LXCSD, "check", "web1"], check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        sb.systemctl("daemon-reload")
        u.start(sb, "web1")
        address = lease(sb, "web1")
        sb.run(["busybox", "ping", "-c", "1", "-W", "5", address])  # no iputils here
        # Long enough for a respawn loop (busybox init respawns once a second) to show.
        time.sleep(3)
        journal = u.journal_text(sb, u.unit("web1"))
        assert journal.count(BANNER) == 1, journal
        assert journal.count("AppArmor is not enabled on this host") == 1, journal
        ps = sb.run([LXCSD, "attach", "web1", "--", "ps"]).stdout
        shells = [line for line in ps.splitlines() if line.endswith("sh -l")]
        assert len(shells) == 1, ps
        assert "job control turned off" not in journal, journal
        sb.systemctl("stop", u.unit("web1"))
        assert u.prop(sb, u.unit("web1"), "ActiveState") == "inactive"
    except Exception:
        print(u.journal_text(sb, u.unit("web1"))[-4000:])
        print(sb.journal("lxcsd-net.service"))
        raise
    finally:
        sb.run(["systemctl", "stop", u.unit("web1"), "lxcsd-net.service"], check=False)


def test_quick_use_debian_gets_an_address_by_networkd(sb: Sandbox, debian_root: object) -> None:
    """`lxcsd create -t debian` from the template's cache (seeded with the cached test
    tree, which has the template's package list), booted with systemd-networkd enabled."""
    arch = sb.run(["dpkg", "--print-architecture"]).stdout.strip()
    cache = "/var/cache/lxcsd-seed"
    base = f"{cache}/{rootfs.SUITE}-{arch}"
    sb.run(["mkdir", "-p", base])
    sb.run(["ln", "-s", str(debian_root), f"{base}/rootfs"])
    packages = ",".join(rootfs.INCLUDE)
    sb.write_file(f"{base}/lxcsd-cache", f"suite={rootfs.SUITE}\npackages={packages}\n")
    try:
        out = sb.run(["env", f"LXCSD_DEBIAN_CACHE={cache}", LXCSD, "create", "deb1", "-t",
                      "debian"], timeout=600)
        assert "copying the cached bookworm tree" in out.stderr, out.stderr
        assert "lxcsd attach deb1" in out.stderr  # how to get in: root has no password
        network = "/var/lib/lxc/deb1/rootfs/etc/systemd/network/80-lxcsd-dhcp.network"
        assert "Name=eth0" in sb.run(["cat", network]).stdout
        sb.systemctl("daemon-reload")
        u.start(sb, "deb1")
        address = lease(sb, "deb1", timeout=180)
        sb.run(["busybox", "ping", "-c", "1", "-W", "5", address])  # no iputils here
        assert u.in_container(sb, "deb1", ["systemctl", "is-active",
                                           "systemd-networkd"]).strip() == "active"
        sb.systemctl("stop", u.unit("deb1"))
    except Exception:
        print(u.journal_text(sb, u.unit("deb1"))[-4000:])
        raise
    finally:
        sb.run(["systemctl", "stop", u.unit("deb1"), "lxcsd-net.service"], check=False)
        sb.run(["rm", "-rf", cache], check=False)
