"""Two hosts, one playbook: the lxcsd.lxcsd collection as an admin runs it.

Two systemd sandboxes are the hosts, fleet-a and fleet-b, reached by Debian's
ansible-playbook over SSH (Debian's sshd in each, host keys checked) on a bridge in a
network namespace the test makes (tests/sandbox/fleetharness.py says how, and why SSH). The
role installs lxcsd on fleet-a from the Debian package built from this tree (apt-get, as
tests/sandbox/test_deb.py), on fleet-b with install.sh --offline from this tree, and brings
up different containers on each from host_vars. Then, in file order on the same two hosts
(each test checks that the earlier one left what it needs): a second run changes nothing;
--check --diff shows a change and makes none; a bad key on one host fails that host only;
the move playbook moves a running container from fleet-a to fleet-b; state: absent removes
a container cleanly, and again changes nothing.

The sandboxes have no network beyond the test's bridge: apt resolves the package's
dependencies from what the host has installed (packaging/setup.sh's test packages)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.sandbox import CMD_ENV, REPO_ROOT, Sandbox
from tests.sandbox.fleetharness import Controller, ControllerNet, Run, start_sshd

pytestmark = [pytest.mark.network]

TOOLS = ("ansible-playbook", "ansible-galaxy", "sshd", "rsync")
MISSING = [tool for tool in TOOLS
           if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None]
if MISSING:
    pytestmark.append(pytest.mark.skip(
        reason=f"{', '.join(MISSING)} not installed (packaging/setup.sh test installs them)"))

# fleet-a installs the package: the host's install.sh copy under /usr/local would shadow it.
HIDE_A = ("/var/lib/lxc", "/usr/local/lib/systemd", "/usr/local/bin", "/usr/local/libexec",
          "/usr/local/lib/lxcsd")
# fleet-b runs install.sh --offline, which reuses the venv under /usr/local/lib/lxcsd.
HIDE_B = ("/var/lib/lxc", "/usr/local/lib/systemd", "/usr/local/bin", "/usr/local/libexec")
SITE = """\
- name: lxcsd hosts and their containers
  hosts: lxcsd_hosts
  gather_facts: false
  roles:
    - lxcsd.lxcsd.lxcsd
"""


class Fleet:
    """The two hosts, the controller, and the inventory the tests edit."""

    def __init__(self, controller: Controller, hosts: dict[str, Sandbox],
                 addresses: dict[str, str], deb: Path) -> None:
        self.controller = controller
        self.hosts = hosts
        self.addresses = addresses
        self.deb = deb
        self.runs: list[tuple[str, float]] = []

    def write_inventory(self, containers: dict[str, list[dict[str, Any]]],
                        installs: dict[str, dict[str, Any]] | None = None) -> None:
        """inventory/hosts.yml and inventory/host_vars/HOST.yml, as docs/fleet.md shows
        (JSON is YAML)."""
        inventory = self.controller.dir / "inventory"
        (inventory / "host_vars").mkdir(parents=True, exist_ok=True)
        hosts = {name: {"ansible_host": address} for name, address in self.addresses.items()}
        (inventory / "hosts.yml").write_text(json.dumps({"all": {
            "vars": {"ansible_user": "root",
                     "ansible_ssh_private_key_file": str(self.controller.key)},
            "children": {"lxcsd_hosts": {"hosts": hosts}}}}, indent=1))
        installs = installs or {"fleet-a": {"lxcsd_deb": str(self.deb)},
                                "fleet-b": {"lxcsd_source": str(REPO_ROOT),
                                            "lxcsd_install_args": ["--offline"]}}
        for host in self.hosts:
            data = {**installs[host], "lxcsd_containers": containers[host]}
            (inventory / "host_vars" / f"{host}.yml").write_text(json.dumps(data, indent=1))

    def site(self, *options: str) -> Run:
        (self.controller.dir / "site.yml").write_text(SITE)
        return self.playbook("site.yml", *options)

    def playbook(self, *args: str) -> Run:
        run = self.controller.playbook(*args)
        self.runs.append((" ".join(args), run.seconds))
        return run


def containers(*, web1: dict[str, Any] | None = None, db1: dict[str, Any] | None = None,
               cache1: dict[str, Any] | None = None, moved: bool = False,
               extra_b: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The inventory's containers: fleet-a has web1 (a veth on lxcbr0, autostart) and web2
    (stopped); fleet-b has db1 (enabled), cache1 (made, not started) and replica1 (a copy of
    cache1). Arguments add options to web1, keys to db1 and cache1, move web2 to fleet-b,
    or add a container to fleet-b."""
    base = {"base_config": "/dev/null"}  # not the host's /etc/lxc/default.conf
    a = [{"name": "web1", **base,
          "network": [{"type": "veth", "link": "lxcbr0", "flags": "up",
                       "hwaddr": "00:16:3e:xx:xx:xx"}],
          "config": {"lxc.environment": ["ROLE=web", "TIER=front"]},
          "autostart": True, "start_order": 10, "groups": ["onboot", "web"], **(web1 or {})}]
    web2 = {"name": "web2", **base, "state": "stopped", "config": {"lxc.tty.max": 1}}
    b = [{"name": "db1", **base, "enabled": True,
          "config": {"lxc.environment": ["ROLE=db"], **(db1 or {})}},
         {"name": "cache1", **base, "state": "present", "config": cache1 or {}},
         {"name": "replica1", "clone_from": "cache1", "state": "stopped"}]
    if moved:
        b.append({**web2, "state": "started"})
    else:
        a.append(web2)
    if extra_b:
        b.append({**base, **extra_b})
    return {"fleet-a": a, "fleet-b": b}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("fleet")
    deb = _build_deb(work / "debs")
    collections = work / "collections"
    subprocess.run(["ansible-galaxy", "collection", "install", "--offline", "-p",
                    str(collections), str(REPO_ROOT / "ansible")], check=True,
                   capture_output=True, env={"HOME": str(work), "PATH": "/usr/bin:/bin"})
    net = ControllerNet()
    hosts: dict[str, Sandbox] = {}
    try:
        controller = Controller(net, work, collections)
        addresses = {}
        for name, hide in (("fleet-a", HIDE_A), ("fleet-b", HIDE_B)):
            sb = hosts[name] = Sandbox(hostname=name, hide=hide)
            sb.start()
            # The host image's policy-rc.d (exit 101) would keep the package's scripts from
            # starting lxcsd-console.socket; a stock Debian has none.
            sb.run(["rm", "-f", "/usr/sbin/policy-rc.d"])
            addresses[name] = net.attach(sb)
            controller.trust(addresses[name], start_sshd(sb, controller.public_key))
        fleet = Fleet(controller, hosts, addresses, deb)
        yield fleet
        boots = ", ".join(f"{name} {sb.timings['boot']:.1f}" for name, sb in hosts.items())
        runs = ", ".join(f"{what.split()[0]}{' ' + what.split()[1] if ' ' in what else ''} "
                         f"{seconds:.1f}" for what, seconds in fleet.runs)
        print(f"\nfleet: boots (s): {boots}; ansible-playbook runs (s): {runs}")
    finally:
        net.close()
        for sb in hosts.values():
            sb.stop(check=False)


def _build_deb(out: Path) -> Path:
    result = subprocess.run([str(REPO_ROOT / "packaging/build-deb.sh"), "--out", str(out)],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def sh(sb: Sandbox, cmd: str | list[str], check: bool = True) -> str:
    result = sb.run(cmd, check=check)
    return result.stdout + result.stderr


def active(sb: Sandbox, name: str) -> str:
    return sh(sb, ["systemctl", "show", "-P", "ActiveState", f"lxc@{name}.service"]).strip()


def names(sb: Sandbox) -> list[str]:
    return sh(sb, ["lxcsd", "ls", "-1"]).split()


def env_of(sb: Sandbox, name: str) -> list[str]:
    """The environment of the container's init: lxc.environment as it was at its start."""
    environ = sb.run(["lxcsd", "attach", name, "--", "cat", "/proc/1/environ"]).stdout
    return environ.split("\0")


def need(fleet: Fleet, host: str, container: str, state: str) -> None:
    if active(fleet.hosts[host], container) != state:
        pytest.skip(f"needs {container} {state} on {host}, left by the earlier test")


# ------------------------------------------------------------------------------------------


def test_first_run_installs_lxcsd_and_brings_up_each_hosts_containers(fleet: Fleet) -> None:
    fleet.write_inventory(containers())
    run = fleet.site()
    assert run.status == 0, run
    assert run.recap["fleet-a"]["changed"] > 0 and run.recap["fleet-b"]["changed"] > 0, run
    a, b = fleet.hosts["fleet-a"], fleet.hosts["fleet-b"]
    # fleet-a: the package, from apt; fleet-b: install.sh's /usr/local.
    assert sh(a, ["dpkg-query", "-W", "-f", "${Status}", "lxcsd"]) == "install ok installed"
    assert sh(a, "command -v lxcsd").strip() == "/usr/bin/lxcsd"
    assert sh(b, "command -v lxcsd").strip() == "/usr/local/bin/lxcsd"
    assert sh(b, ["dpkg-query", "-W", "lxcsd"], check=False).find("no packages") >= 0
    # Different containers on each host, in the states the inventory gives.
    assert names(a) == ["web1", "web2"] and names(b) == ["cache1", "db1", "replica1"]
    assert (active(a, "web1"), active(a, "web2")) == ("active", "inactive")
    assert (active(b, "db1"), active(b, "cache1")) == ("active", "inactive")
    assert sh(b, ["systemctl", "is-enabled", "lxc@db1.service"]).strip() == "enabled"
    assert sh(b, ["lxcsd", "config", "get", "replica1", "lxc.uts.name"]).strip() == "replica1"
    # The keys are in the configs and in effect in the running containers.
    assert {"ROLE=web", "TIER=front"} <= set(env_of(a, "web1"))
    assert "ROLE=db" in env_of(b, "db1")
    assert sh(a, ["lxcsd", "config", "get", "web1", "lxc.group"]).split() == ["onboot", "web"]
    assert sh(a, ["lxcsd", "config", "get", "web1", "lxc.start.order"]).split() == ["10"]
    link = re.search(r"^Link:\s+(\S+)$", sh(a, ["lxcsd", "info", "web1"]), re.M)
    assert link, sh(a, ["lxcsd", "info", "web1"])
    assert a.path(f"/sys/class/net/{link.group(1)}/master").resolve().name == "lxcbr0"
    # lxc.start.auto and lxc.group: the generator (run by the module's daemon-reload) wired
    # web1 for boot (its groups include onboot, as lxc-autostart wants) and its group.
    wants = sh(a, ["systemctl", "show", "-P", "Wants", "lxc-containers.target"]).split()
    assert "lxc@web1.service" in wants and "lxc@web2.service" not in wants
    group = sh(a, ["systemctl", "show", "-P", "Wants", "lxc-group@web.target"]).split()
    assert group == ["lxc@web1.service"]


def test_second_run_changes_nothing(fleet: Fleet) -> None:
    need(fleet, "fleet-a", "web1", "active")
    configs = {host: sh(sb, "cat /var/lib/lxc/*/config") for host, sb in fleet.hosts.items()}
    run = fleet.site()
    assert run.status == 0, run
    assert run.recap["fleet-a"]["changed"] == 0 and run.recap["fleet-b"]["changed"] == 0, run
    for host, sb in fleet.hosts.items():
        assert sh(sb, "cat /var/lib/lxc/*/config") == configs[host]


def test_ad_hoc_across_hosts_with_systemctl_and_machinectl(fleet: Fleet) -> None:
    """docs/fleet.md's ad-hoc commands: systemd's own tools reach each host's systemd over
    SSH (systemd-stdio-bridge on the host), from the controller."""
    need(fleet, "fleet-a", "web1", "active")
    env = {**CMD_ENV, "PATH": fleet.controller.ssh_path()}
    a, b = (f"root@{fleet.addresses[host]}" for host in ("fleet-a", "fleet-b"))
    run = fleet.controller.net.run
    assert run(["systemctl", "-H", a, "is-active", "lxc@web1.service"],
               env=env).stdout.strip() == "active"
    status = run(["systemctl", "-H", b, "status", "--no-pager", "lxc@db1.service"],
                 env=env, check=False).stdout
    assert "lxc.payload.db1" in status, status
    machines = run(["machinectl", "-H", a, "list", "--no-legend"], env=env).stdout
    assert "web1 container lxcsd" in " ".join(machines.split()), machines


def test_check_and_diff_show_the_change_and_make_none(fleet: Fleet) -> None:
    need(fleet, "fleet-a", "web1", "active")
    a, b = fleet.hosts["fleet-a"], fleet.hosts["fleet-b"]
    before = sh(a, "cat /var/lib/lxc/web1/config")
    fleet.write_inventory(containers(web1={"groups": ["onboot", "web", "front"]},
                                     extra_b={"name": "cache2"}))
    run = fleet.site("--check", "--diff")
    assert run.status == 0, run
    assert run.recap["fleet-a"]["changed"] == 1 and run.recap["fleet-b"]["changed"] == 1, run
    assert "+lxc.group = front" in run.output, run
    assert "+# lxcsd create cache2 -t busybox -f /dev/null" in run.output, run
    assert sh(a, "cat /var/lib/lxc/web1/config") == before
    assert "cache2" not in names(b)
    fleet.write_inventory(containers())


def test_bad_keys_fail_their_host_and_the_other_goes_on(fleet: Fleet) -> None:
    need(fleet, "fleet-b", "db1", "active")
    a, b = fleet.hosts["fleet-a"], fleet.hosts["fleet-b"]
    before = sh(b, "cat /var/lib/lxc/db1/config /var/lib/lxc/cache1/config")
    fleet.write_inventory(containers(
        web1={"config": {"lxc.environment": ["ROLE=web", "TIER=edge"]},
              "restart_on_change": True},
        db1={"lxc.uts.nmae": "db"}, cache1={"lxc.net.0.veth.pair": "v0"},
        extra_b={"name": "bad1", "config": {"lxc.tty.max": "lots"}}))
    run = fleet.site()
    assert run.status != 0, run
    assert run.recap["fleet-b"]["failed"] == 1, run
    assert run.recap["fleet-a"]["failed"] == 0 and run.recap["fleet-a"]["changed"] == 1, run
    # lxcsd's own messages: the key the inventory gave, or where the config would break.
    assert "db1: lxc.uts.nmae: unknown key 'lxc.uts.nmae' (did you mean lxc.uts.name?)" in \
        run.output, run
    assert re.search(r"cache1: /var/lib/lxc/cache1/config:\d+: lxc.net.0.veth.pair: not "
                     r"saved, the result would not load: .*lxc.net.0.type = veth", run.output)
    assert "bad1: lxc.tty.max: 'lots' is not a valid number" in run.output, run
    # fleet-b: the files as they were, db1 still running; bad1, made by this run and not
    # configurable, removed again.
    assert sh(b, "cat /var/lib/lxc/db1/config /var/lib/lxc/cache1/config") == before
    assert active(b, "db1") == "active"
    assert names(b) == ["cache1", "db1", "replica1"]
    # fleet-a went on: web1 got the new value, and was restarted into it.
    assert "TIER=edge" in env_of(a, "web1")


def test_move_a_running_container_to_the_other_host(fleet: Fleet) -> None:
    a, b = fleet.hosts["fleet-a"], fleet.hosts["fleet-b"]
    if "web2" not in names(a):
        pytest.skip("needs web2 on fleet-a, made by the first run")
    a.systemctl("start", "lxc@web2.service")
    sh(a, ["lxcsd", "attach", "web2", "--", "sh", "-c", "echo written-on-a > /root/marker"])
    stage = fleet.controller.dir / "stage"
    run = fleet.playbook("lxcsd.lxcsd.move", "-e", "lxcsd_move_name=web2",
                         "-e", "lxcsd_move_from=fleet-a", "-e", "lxcsd_move_to=fleet-b",
                         "-e", f"lxcsd_move_stage={stage}")
    assert run.status == 0, run
    # Running on fleet-b with what it wrote on fleet-a; gone from fleet-a.
    assert active(b, "web2") == "active"
    assert sh(b, ["lxcsd", "attach", "web2", "--", "cat", "/root/marker"]).strip() == \
        "written-on-a"
    assert "web2" not in names(a) and not a.path("/var/lib/lxc/web2").exists()
    assert active(a, "web2") == "inactive"
    assert not (stage / "web2").exists()
    fleet.write_inventory(containers(moved=True))


def test_absent_removes_a_container_cleanly_and_then_changes_nothing(fleet: Fleet) -> None:
    need(fleet, "fleet-a", "web1", "active")
    a = fleet.hosts["fleet-a"]
    link = re.search(r"^Link:\s+(\S+)$", sh(a, ["lxcsd", "info", "web1"]), re.M)
    assert link
    inventory = containers(moved=True)
    inventory["fleet-a"] = [{"name": "web1", "state": "absent"}]
    fleet.write_inventory(inventory)
    run = fleet.site()
    assert run.status == 0, run
    assert run.recap["fleet-a"]["changed"] == 1 and run.recap["fleet-b"]["changed"] == 0, run
    # Stopped cleanly (the halt signal, not a kill), then its directory, unit wiring, veth
    # and cgroup gone.
    assert "lxcsd: web1 stopped (status success" in sh(
        a, ["journalctl", "-q", "-o", "cat", "-u", "lxc@web1.service"])
    assert "web1" not in names(a) and not a.path("/var/lib/lxc/web1").exists()
    assert active(a, "web1") == "inactive"
    assert sh(a, ["systemctl", "is-enabled", "lxc@web1.service"], check=False).strip() != \
        "enabled"
    assert "lxc@web1.service" not in sh(a, ["systemctl", "show", "-P", "Wants",
                                            "lxc-containers.target"]).split()
    assert not a.path(f"/sys/class/net/{link.group(1)}").exists()
    assert not list(a.path("/sys/fs/cgroup/system.slice").glob("*web1*"))
    again = fleet.site()
    assert again.status == 0, again
    assert again.recap["fleet-a"]["changed"] == 0 and again.recap["fleet-b"]["changed"] == 0
