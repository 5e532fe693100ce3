"""packaging/demo.py's steps on a systemd that is PID 1 (the sandbox's, as on a host booted
with systemd): the container is made, started as lxc@demo.service and left running, and what
it prints is what README.md promises. The route through a sandbox of its own (PID 1 not
systemd) is what `packaging/setup.sh demo` runs on this machine."""

from __future__ import annotations

from tests.infra import e2e_util as u
from tests.infra.sandbox import REPO_ROOT, Sandbox


def test_demo_on_a_host_systemd(clean_lxcsd_sandbox: Sandbox) -> None:
    sb = clean_lxcsd_sandbox
    out = sb.run([f"{u.PREFIX}/lib/lxcsd/venv/bin/python", f"{REPO_ROOT}/packaging/demo.py"],
                 timeout=300).stdout
    assert "$ systemctl start lxc@demo.service" in out
    assert "Active: active (running)" in out
    assert "lxc.payload.demo" in out  # the cgroup tree of systemctl status
    assert "demo/console[" in out and "BusyBox" in out  # the console, in journalctl -u
    assert "lxcsd: demo running, init PID" in out
    assert "lxc@demo.service is running" in out
    # Left running for the user, as a machine too.
    assert u.prop(sb, "lxc@demo.service", "ActiveState") == "active"
    assert "demo" in sb.run(["machinectl", "list", "--no-legend"]).stdout.split()
    # Running it again replaces its own container.
    again = sb.run([f"{u.PREFIX}/lib/lxcsd/venv/bin/python",
                    f"{REPO_ROOT}/packaging/demo.py"], timeout=300).stdout
    assert "Active: active (running)" in again


def test_demo_leaves_a_foreign_demo_alone(clean_lxcsd_sandbox: Sandbox) -> None:
    sb = clean_lxcsd_sandbox
    sb.write_file("/var/lib/lxc/demo/config", "lxc.uts.name = demo\n")
    r = sb.run([f"{u.PREFIX}/lib/lxcsd/venv/bin/python", f"{REPO_ROOT}/packaging/demo.py"],
               check=False, timeout=300)
    assert r.returncode == 1
    assert "was not made by this demo" in r.stderr
    assert sb.path("/var/lib/lxc/demo/config").read_text() == "lxc.uts.name = demo\n"
