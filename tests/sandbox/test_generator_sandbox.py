"""lxcsd-generator under a real systemd (the sandbox, tests/infra/README.md), installed by
packaging/install.sh: `systemctl daemon-reload` runs it for real, and what a user checks with
`systemctl show`, `systemctl list-dependencies`, `systemctl enable` and the journal follows
from the configs in /var/lib/lxc. Then the late-lxcpath path: lxcsd-autostart.service wired
while /var/lib/lxc is empty, and started once containers are there.
"""

from __future__ import annotations

from pathlib import Path

from tests.infra.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
LXCPATH = "/var/lib/lxc"
GENERATOR_DIR = "/run/systemd/generator"
UNIT_DIR = "/usr/local/lib/systemd/system"

CONFIGS = {
    # name: config text (the rootfs directories are created, empty)
    "db": "lxc.start.auto = 1\nlxc.start.order = 1\nlxc.start.delay = 2\n",
    "web": "lxc.start.auto = 1\nlxc.start.order = 2\nlxc.signal.stop = SIGTERM\n",
    "bad": "lxc.start.auto = 1\nlxc.bogus = 1\nlxc.start.order = 3\n",
    "grp": "lxc.group = web\n",
    "my box": "lxc.start.auto = 0\n",
}


def write_configs(sb: Sandbox, configs: dict[str, str]) -> None:
    for name, text in configs.items():
        sb.run(["mkdir", "-p", f"{LXCPATH}/{name}/rootfs"])
        sb.write_file(f"{LXCPATH}/{name}/config",
                      f"lxc.rootfs.path = dir:{LXCPATH}/{name}/rootfs\n{text}", 0o644)


def show(sb: Sandbox, unit: str, *props: str) -> dict[str, str]:
    out = sb.systemctl("show", unit, *[f"-p{p}" for p in props]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def dependencies(sb: Sandbox, target: str) -> set[str]:
    out = sb.systemctl("list-dependencies", "--plain", "--no-legend", target).stdout
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


def test_daemon_reload_generates_units(clean_lxcsd_sandbox: Sandbox) -> None:
    sb = clean_lxcsd_sandbox
    write_configs(sb, CONFIGS)
    try:
        sb.systemctl("daemon-reload")
        web = show(sb, "lxc@web.service", "Description", "SourcePath", "After", "FragmentPath",
                   "DropInPaths", "KillSignal", "RequiresMountsFor")
        assert web["Description"] == "LXC container web"
        assert web["SourcePath"] == f"{LXCPATH}/web/config"
        assert web["FragmentPath"] == f"{UNIT_DIR}/lxc@.service"
        assert f"{GENERATOR_DIR}/lxc@web.service.d/10-lxcsd.conf" in web["DropInPaths"]
        after = web["After"].split()
        assert "lxc@db.service" in after and "lxc-delay@db.service" in after
        # The template's SIGTERM: lxc.signal.stop is ExecStop='s to send (lxcsd.runtime.stop).
        assert web["KillSignal"] == "15"
        assert f"{LXCPATH}/web/rootfs" in web["RequiresMountsFor"].split()

        boot = dependencies(sb, "lxc-containers.target")
        assert {"lxc@db.service", "lxc@web.service", "lxc@bad.service",
                "lxc-delay@db.service"} <= boot
        assert "lxc@grp.service" not in boot and "lxc@my\\x20box.service" not in boot
        assert "lxc@grp.service" in dependencies(sb, "lxc-group@web.target")

        delay = show(sb, "lxc-delay@db.service", "Environment", "After")
        assert "LXCSD_DELAY=2" in delay["Environment"]
        assert "lxc@db.service" in delay["After"].split()

        # A broken config: the unit exists, says why, and the generator said so in the log.
        bad = show(sb, "lxc@bad.service", "Description", "LoadState")
        assert bad["LoadState"] == "loaded"
        assert f"(broken config: {LXCPATH}/bad/config:3: lxc.bogus: unknown key" in \
            bad["Description"]
        log = sb.run(["journalctl", "-q", "-o", "cat", "-t", "lxcsd-generator"]).stdout
        assert f"{LXCPATH}/bad/config:3: lxc.bogus: unknown key" in log

        # An escaped name, and `systemctl enable` like any unit (the template has [Install]).
        box = show(sb, "lxc@my\\x20box.service", "Description", "SourcePath")
        assert box["Description"] == "LXC container my box"
        sb.systemctl("enable", "lxc@my\\x20box.service")
        assert sb.systemctl("is-enabled", "lxc@my\\x20box.service").stdout.strip() == "enabled"
        assert "lxc@my\\x20box.service" in dependencies(sb, "lxc-containers.target")

        # The real units with the generated drop-ins pass systemd-analyze verify.
        units = ["lxc@db.service", "lxc@web.service", "lxc@bad.service",
                 "lxc-delay@db.service", "lxc-containers.target", "lxc-group@web.target"]
        verify = sb.run(["systemd-analyze", "verify", "--man=no", *units], check=False)
        assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), \
            verify.stdout + verify.stderr
    finally:
        sb.systemctl("disable", "lxc@my\\x20box.service", check=False)
        sb.run(["rm", "-rf", *[f"{LXCPATH}/{name}" for name in CONFIGS]])
        sb.systemctl("daemon-reload")


def test_autostart_of_a_late_lxcpath(clean_lxcsd_sandbox: Sandbox) -> None:
    """/var/lib/lxc empty at generator time (as when /var is mounted later): the autostart
    service is wanted at boot; once containers are there it reloads systemd and starts
    lxc-containers.target, which starts them through their own units."""
    sb = clean_lxcsd_sandbox
    sb.run(["sh", "-c", f"mkdir -p {LXCPATH} && ! ls -A {LXCPATH} | grep -q ."])
    sb.systemctl("daemon-reload")
    assert "lxcsd-autostart.service" in dependencies(sb, "lxc-containers.target")
    conditions = show(sb, "lxcsd-autostart.service", "ConditionResult", "DropInPaths")
    assert f"{GENERATOR_DIR}/lxcsd-autostart.service.d/10-lxcsd.conf" in \
        conditions["DropInPaths"]
    try:
        write_configs(sb, {"late1": "lxc.start.auto = 1\n", "late2": "lxc.start.auto = 0\n"})
        sb.systemctl("start", "lxcsd-autostart.service")
        # Reloaded: the new container has its drop-in; started by the target, not by hand.
        late = show(sb, "lxc@late1.service", "Description", "InactiveExitTimestampMonotonic")
        assert late["Description"] == "LXC container late1"
        assert int(late["InactiveExitTimestampMonotonic"]) > 0
        other = show(sb, "lxc@late2.service", "InactiveExitTimestampMonotonic")
        assert int(other["InactiveExitTimestampMonotonic"]) == 0
        # Now that the lxcpath has containers, the generator no longer wires the service.
        assert "lxcsd-autostart.service" not in dependencies(sb, "lxc-containers.target")
        log = sb.journal(unit="lxcsd-autostart.service")
        assert "lxc-containers.target queued" in log
    finally:
        sb.systemctl("stop", "lxc@late1.service", check=False)
        sb.run(["rm", "-rf", f"{LXCPATH}/late1", f"{LXCPATH}/late2"])
        sb.systemctl("daemon-reload")


def test_broken_config_fails_at_start_with_its_error(clean_lxcsd_sandbox: Sandbox) -> None:
    """The unit of a broken config starts and fails at once; the helper reports the same
    file:line error the generator put in the description."""
    sb = clean_lxcsd_sandbox
    write_configs(sb, {"broken": "lxc.start.auto = 1\nlxc.bogus = 1\n"})
    try:
        sb.systemctl("daemon-reload")
        error = f"{LXCPATH}/broken/config:3: lxc.bogus: unknown key"
        assert error in show(sb, "lxc@broken.service", "Description")["Description"]
        assert sb.systemctl("start", "lxc@broken.service", check=False).returncode != 0
        state = show(sb, "lxc@broken.service", "ActiveState", "Result")
        assert state == {"ActiveState": "failed", "Result": "exit-code"}
        helper = sb.run(["journalctl", "-q", "-o", "cat", "-u", "lxc@broken.service",
                         "-t", "lxcsd-helper"]).stdout
        assert error in helper
    finally:
        sb.systemctl("reset-failed", "lxc@broken.service", check=False)
        sb.run(["rm", "-rf", f"{LXCPATH}/broken"])
        sb.systemctl("daemon-reload")
