"""lxcsd's use of its libraries, run against Debian bookworm's packages of them.

The .deb depends on python3-pyroute2 (0.7.2), python3-pystemd (0.11), python3-dbus-fast
(1.84) and python3-seccomp (2.5.4) instead of the newer PyPI releases the venv pins
(docs/design.md, "Installed layout"). Each check here runs in Debian's /usr/bin/python3 with
-I, which sees this tree and /usr/lib/python3/dist-packages but never the venv, and calls
the library the way lxcsd calls it. packaging/setup.sh installs these packages for the
tests; where one is missing the test is skipped with its name. The whole run against them
is the .deb's sandbox test (tests/sandbox/test_deb.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
DIST = "/usr/lib/python3/dist-packages"


def debian_run(code: str, module: str) -> str:
    """Run code in Debian's python3 against dist-packages only; skip without the package."""
    if not Path(PYTHON).exists() or not Path(DIST, module).exists():
        pytest.skip(f"Debian's python3-{module.replace('_', '-')} is not installed")
    prelude = f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
    result = subprocess.run([PYTHON, "-I", "-c", prelude + code], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_pyroute2_messages_decode_real_links() -> None:
    """lxcsd.net.nl's message modules, imported without pyroute2's __init__, decode a real
    kernel dump; attr() reads names, numbers and nested linkinfo (0.7's get("ifname")
    returned None: it walked the string as a path)."""
    out = debian_run("""
from lxcsd.net import nl
assert nl.import_messages()["link"].__module__.startswith("pyroute2.netlink.rtnl")
import pyroute2
assert pyroute2.__path__[0].startswith("/usr/lib/python3/dist-packages/"), pyroute2.__path__
with nl.open_host() as ipr:
    index = nl.index_of(ipr, "lo")
    print(index, nl.link_attr(ipr, index, "ifname"), nl.link_attr(ipr, index, "mtu"),
          nl.link_kind(ipr, index), nl.first_address(ipr, index, nl.AF_INET))
""", "pyroute2")
    index, name, mtu, kind, address = out.split()
    assert (name, kind) == ("lo", "None") and int(index) > 0 and int(mtu) > 0
    assert address in ("127.0.0.1", "None")  # a network namespace may leave lo down


def test_pystemd_low_level_bus_api() -> None:
    """lxcsd.systemd.manager's calls into pystemd 0.11: the bus classes and signature packing."""
    out = debian_run("""
from pystemd.dbuslib import DBus, DBusAddress, apply_signature
print(apply_signature(b"ss", [b"lxc@a.service", b"replace"]))
print(apply_signature(b"asas", [[], [b"lxc@*.service"]]))
bus = DBusAddress(b"unix:path=/nonexistent", peer_to_peer=True)
print(type(bus).__name__, callable(DBus))
""", "pystemd")
    assert "lxc@a.service" in out and "lxc@*.service" in out
    assert out.splitlines()[-1] == "DBusAddress True"


def test_dbus_fast_message_api() -> None:
    """lxcsd.cli._watch's dbus-fast calls: a method call marshals, signal fields read."""
    out = debian_run("""
from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus
msg = Message(destination="org.freedesktop.systemd1", path="/org/freedesktop/systemd1",
              interface="org.freedesktop.systemd1.Manager", member="ListUnitsByPatterns",
              signature="asas", body=[[], ["lxc@*.service"]])
data = msg._marshall(False) if hasattr(msg, "_marshall") else msg.marshall()
print(len(data) > 0, MessageType.SIGNAL.name, BusType.SYSTEM.name, MessageBus.__name__)
""", "dbus_fast")
    assert out.split() == ["True", "SIGNAL", "SYSTEM", "MessageBus"]


def test_seccomp_builds_the_shipped_policy() -> None:
    """The default policy (config/common.seccomp) compiles with Debian's libseccomp binding,
    the only one there is (not on PyPI)."""
    out = debian_run(f"""
from lxcsd.runtime import seccomp_policy
policy = seccomp_policy.read({str(REPO / "config/common.seccomp")!r})
flt, skipped = seccomp_policy.build_filter(policy)
print(type(flt).__name__, len(policy.rules))
""", "seccomp.cpython-311-x86_64-linux-gnu.so")
    kind, rules = out.split()
    assert kind == "SyscallFilter" and int(rules) > 0
