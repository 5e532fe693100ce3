"""lxcsd.runtime.machined without machined: it never raises, says one line, stays light.

Registration itself is tested against a real machined in tests/sandbox/test_e2e_machined.py.
Each case runs in a fresh interpreter whose system bus address points nowhere, so that on a
host where a system bus and machined do run nothing gets registered by these tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
NOWHERE = "unix:path=/nonexistent/lxcsd-test-bus"


def run(code: str, bus: str = NOWHERE) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           "DBUS_SYSTEM_BUS_ADDRESS": bus}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)


def test_no_bus_one_line_no_exception() -> None:
    r = run("from lxcsd.runtime import machined\n"
            "machined.MACHINED = (machined.__file__,)  # 'installed'\n"
            "machined.register('c1', 12345, '/var/lib/lxc/c1/rootfs', [1])\n"
            "print('went on')")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "went on\n"
    assert r.stderr.splitlines() == [
        "lxcsd-helper: systemd-machined is not running; c1 is not registered as a machine"]


def test_not_installed_one_line_and_no_libsystemd() -> None:
    r = run("import sys\n"
            "from lxcsd.runtime import machined\n"
            "machined.MACHINED = ('/nonexistent/systemd-machined',)\n"
            "machined.register('c1', 12345, '/', [])\n"
            "from lxcsd.systemd import sdbus\n"
            "print(sdbus._lib is None)")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "True\n"  # libsystemd was never loaded
    assert r.stderr.splitlines() == [
        "lxcsd-helper: systemd-machined is not installed; c1 is not registered as a machine"]


def test_unregister_of_unknown_machine_is_silent() -> None:
    r = run("from lxcsd.runtime import machined\n"
            "machined.MACHINED = (machined.__file__,)\n"
            "machined.STATE_DIR = '/nonexistent'\n"
            "machined.unregister('c1')\nprint('ok')")
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok\n", "")


def test_bus_call_reports_the_failure(tmp_path: Path) -> None:
    # A bus "address" that exists but is no socket: sd-bus fails, BusError carries errno.
    r = run("from lxcsd.systemd import sdbus\n"
            "try:\n"
            "    sdbus.bus_call('org.example', '/', 'org.example.I', 'M', [('s', 'x')])\n"
            "except sdbus.BusError as e:\n"
            "    print(type(e).__name__, e.errno > 0, repr(e.name))",
            bus=f"unix:path={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "BusError True ''\n"


def test_import_is_light() -> None:
    # As the helper's launcher runs: -I -S, the package put on sys.path by hand.
    r = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c",
                        f"import sys; sys.path.insert(0, {str(REPO)!r}); "
                        "import lxcsd.runtime.machined"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines()[1:]}
    heavy = {"dbus_fast", "pystemd", "typing", "dataclasses", "re", "enum", "subprocess",
             "json", "asyncio", "logging"}
    assert "lxcsd.runtime.machined" in imported
    assert not imported & heavy


def test_unit_of_cgroup() -> None:
    from lxcsd.runtime.machined import unit_of_cgroup

    assert unit_of_cgroup("0::/machine.slice/lxc@c1.service/lxc.monitor.c1\n") \
        == "lxc@c1.service"
    assert unit_of_cgroup("0::/machine.slice/lxc@c1.service/.control\n") == "lxc@c1.service"
    legacy = ("4:memory:/machine.slice/x.service\n"
              "1:name=systemd:/machine.slice/lxc@c2.service/lxc.payload.c2\n0::/\n")
    assert unit_of_cgroup(legacy) == "lxc@c2.service"
    assert unit_of_cgroup("0::/user.slice/session-1.scope\n") == ""
    assert unit_of_cgroup("garbage\n") == ""
