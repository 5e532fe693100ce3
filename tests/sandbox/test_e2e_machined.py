"""machined registration under a real systemd (the sandbox runs systemd-machined, Debian's
systemd-container): `machinectl list|status|poweroff|terminate` and `journalctl -M`.

The first tests call lxcsd.runtime.machined from a transient unit that stands for
lxc@NAME.service (a sleep is the "init"), so registration is tested on its own; the others
run real containers through lxc@NAME.service, where lxcsd-helper registers them.
"""

from __future__ import annotations

import pytest

from tests.infra import e2e_util as u
from tests.infra.sandbox import REPO_ROOT, Sandbox

# Runs in a unit, as lxcsd-helper would: registers a child `sleep` as the leader of machine
# NAME; "twice": then a second leader, the old one gone (a reboot inside the container:
# the unit never became inactive, so machined still lists the first life); "unregister":
# then unregisters, as `lxcsd-helper cleanup` does from the same unit.
REGISTER = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from lxcsd.runtime import machined
name, root, mode = sys.argv[2:5]
leader = subprocess.Popen(["sleep", "1000"])
machined.register(name, leader.pid, root, [1])
print("registered", leader.pid, flush=True)
if mode == "twice":
    leader.kill()
    leader.wait()
    leader = subprocess.Popen(["sleep", "1000"])
    machined.register(name, leader.pid, root, [1])
    print("registered", leader.pid, flush=True)
elif mode == "unregister":
    time.sleep(float(sys.argv[5]))
    machined.unregister(name)
    print("unregistered", flush=True)
time.sleep(1000)
"""
UNREGISTER = """
import sys
sys.path.insert(0, sys.argv[1])
from lxcsd.runtime import machined
machined.unregister(sys.argv[2])
"""


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Sandbox:
    return clean_lxcsd_sandbox


def machines(sb: Sandbox) -> dict[str, list[str]]:
    out = sb.run(["machinectl", "list", "--no-legend", "--no-pager"]).stdout
    return {f[0]: f[1:] for f in (line.split() for line in out.splitlines()) if f}


def machine_props(sb: Sandbox, name: str) -> dict[str, str]:
    out = sb.run(["machinectl", "show", name]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def fake_container(sb: Sandbox, unit: str, name: str, root: str = "/", mode: str = "once",
                   *args: str) -> int:
    """Start the stand-in unit; the leader pid of its last registration."""
    sb.run(["systemd-run", "--quiet", f"--unit={unit}", "/usr/bin/python3", "-c", REGISTER,
            str(REPO_ROOT), name, root, mode, *args])
    count = 2 if mode == "twice" else 1

    def lines() -> list[str]:
        return [x for x in u.journal_text(sb, unit).splitlines() if x.startswith("registered")]

    u.wait_for(lambda: len(lines()) >= count, what=f"{unit} registering")
    return int(lines()[-1].split()[1])


def test_register_shows_in_machinectl_and_goes_with_the_unit(sb: Sandbox) -> None:
    leader = fake_container(sb, "fakect-m1.service", "m1", "/srv")
    assert machines(sb)["m1"][:2] == ["container", "lxcsd"]
    props = machine_props(sb, "m1")
    assert props["Leader"] == str(leader)
    assert props["Unit"] == "fakect-m1.service"
    assert props["RootDirectory"] == "/srv"
    status = sb.run(["machinectl", "status", "m1", "--no-pager"]).stdout
    assert "Service: lxcsd; class container" in status
    assert "Unit: fakect-m1.service" in status
    assert "Iface: lo" in status  # ifindex 1
    # No informational line: machined is there.
    assert "not registered" not in u.journal_text(sb, "fakect-m1.service")
    sb.systemctl("stop", "fakect-m1.service")
    u.wait_for(lambda: "m1" not in machines(sb), what="machined dropping m1")


def test_register_again_from_the_same_unit_replaces_the_old_life(sb: Sandbox) -> None:
    leader = fake_container(sb, "fakect-m2.service", "m2", "/", "twice")
    assert machine_props(sb, "m2")["Leader"] == str(leader)
    assert "not registered" not in u.journal_text(sb, "fakect-m2.service")
    sb.systemctl("stop", "fakect-m2.service")


def test_same_name_from_another_unit_is_refused(sb: Sandbox) -> None:
    first = fake_container(sb, "fakect-m3.service", "m3")
    fake_container(sb, "fakect-m3b.service", "m3")
    assert machine_props(sb, "m3")["Leader"] == str(first)
    text = u.journal_text(sb, "fakect-m3b.service")
    assert "lxcsd-helper: m3 not registered with systemd-machined:" in text
    # Nor does another unit's unregister drop it ...
    sb.run(["systemd-run", "--quiet", "--pipe", "--wait", "--collect", "/usr/bin/python3",
            "-c", UNREGISTER, str(REPO_ROOT), "m3"])
    assert "m3" in machines(sb)
    sb.systemctl("stop", "fakect-m3.service", "fakect-m3b.service")


def test_unregister_from_the_unit_itself(sb: Sandbox) -> None:
    fake_container(sb, "fakect-m4.service", "m4", "/", "unregister", "1")
    assert "m4" in machines(sb)
    u.wait_for(lambda: "unregistered" in u.journal_text(sb, "fakect-m4.service"),
               what="unregister")
    assert "m4" not in machines(sb)
    assert prop_active(sb, "fakect-m4.service") == "active"  # the unit goes on
    sb.systemctl("stop", "fakect-m4.service")


def prop_active(sb: Sandbox, unit: str) -> str:
    return u.prop(sb, unit, "ActiveState")
