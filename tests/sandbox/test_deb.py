"""The Debian package, the way an admin meets it: built from this tree by
packaging/build-deb.sh (debhelper, dh-python), checked by lintian, then installed with
apt-get in a sandbox next to Debian's own lxc package, used through README's quick-use flow
from the packaged files only, upgraded to a rebuilt package with a container running,
removed and purged.

The sandbox hides the host's /usr/local install (its units would shadow the package's) and
removes the Docker-style /usr/sbin/policy-rc.d of the host image (exit 101: maintainer
scripts may start nothing), which a stock Debian does not have. It has no network: apt
resolves the package's dependencies from what the host has installed (packaging/setup.sh's
test packages). The tests run in file order on one sandbox; each later phase checks that
the earlier one left the package in the state it needs."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.infra.sandbox import REPO_ROOT, Sandbox

VERSION, UPGRADE = "0.1.0", "0.1.0+rebuild1"
DEBS = "/tmp/lxcsd-debs"
HIDDEN = ("/var/lib/lxc", "/usr/local/lib/systemd", "/usr/local/bin", "/usr/local/libexec",
          "/usr/local/lib/lxcsd")
UNIT_DIR = "/lib/systemd/system"
DIVERTED = f"{UNIT_DIR}/lxc@.service.lxc-distrib"
APT = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "-q",
       "-o", "Dpkg::Use-Pty=0"]


def wait_until(cond: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what or cond}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The package at VERSION and a rebuild at UPGRADE, built on the host."""
    out = tmp_path_factory.mktemp("debs")
    built = {}
    for version, extra in ((VERSION, []), (UPGRADE, ["--version", UPGRADE])):
        result = subprocess.run([str(REPO_ROOT / "packaging/build-deb.sh"), "--out", str(out),
                                 *extra], capture_output=True, text=True, timeout=900,
                                check=False)
        assert result.returncode == 0, result.stderr
        built[version] = Path(result.stdout.strip().splitlines()[-1])
        assert built[version].name == f"lxcsd_{version}_all.deb"
    return built


@pytest.fixture(scope="module")
def sb(debs: dict[str, Path]) -> Iterator[Sandbox]:
    sandbox = Sandbox(hostname="lxcsd-deb", hide=HIDDEN)
    sandbox.start()
    try:
        sandbox.run(["rm", "-f", "/usr/sbin/policy-rc.d"])
        for path in debs.values():
            sandbox.write_file(f"{DEBS}/{path.name}", path.read_bytes())
        sandbox.run(["chmod", "-R", "a+rX", DEBS])
        yield sandbox
    finally:
        sandbox.stop(check=False)


def run(sb: Sandbox, cmd: str | list[str], check: bool = True, timeout: float = 300) -> str:
    result = sb.run(cmd, check=check, timeout=timeout)
    return result.stdout + result.stderr


def installed_version(sb: Sandbox) -> str:
    result = sb.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Version}", "lxcsd"],
                    check=False)
    text = result.stdout.strip()
    return text[3:].strip() if text.startswith("ii") else ""


def need_version(sb: Sandbox, version: str) -> None:
    if installed_version(sb) != version:
        pytest.skip(f"needs lxcsd {version} installed by the earlier phase")


def show(sb: Sandbox, unit: str, prop: str) -> str:
    return sb.systemctl("show", unit, "-p", prop, "--value").stdout.strip()


def journal(sb: Sandbox, unit: str) -> str:
    return sb.run(["journalctl", "--no-pager", "-q", "-o", "cat", "-u", unit]).stdout


# ------------------------------------------------------------------------------------------


def test_lintian_has_no_errors_and_no_unexplained_warnings(debs: dict[str, Path]) -> None:
    result = subprocess.run(["lintian", "--pedantic", "--fail-on", "error,warning",
                             str(debs[VERSION])], capture_output=True, text=True, timeout=600,
                            check=False)
    tags = [line for line in result.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert result.returncode == 0 and not tags, result.stdout + result.stderr


def test_install_beside_debians_lxc(sb: Sandbox) -> None:
    # Debian's lxc is there, with its own lxc@.service running lxc-start.
    assert "lxc-start" in sb.path(f"{UNIT_DIR}/lxc@.service").read_text()
    out = run(sb, [*APT, "install", f"{DEBS}/lxcsd_{VERSION}_all.deb"])
    assert installed_version(sb) == VERSION, out
    # lxc's copy is diverted, kept, and not read by systemd; lxc@NAME is lxcsd's.
    diversion = run(sb, ["dpkg-divert", "--list", f"{UNIT_DIR}/lxc@.service"])
    assert f"diversion of {UNIT_DIR}/lxc@.service to {DIVERTED} by lxcsd" in diversion
    assert "lxc-start" in sb.path(DIVERTED).read_text()
    assert "/usr/libexec/lxcsd/lxcsd-helper start %i" in run(sb, ["systemctl", "cat",
                                                                  "lxc@any.service"])
    assert run(sb, ["dpkg-query", "-W", "-f", "${Status}", "lxc"]) == "install ok installed"
    # Units as the package scripts leave them; nothing of lxcsd's came from /usr/local.
    assert sb.systemctl("is-enabled", "lxc-containers.target").stdout.strip() == "enabled"
    assert sb.systemctl("is-active", "lxcsd-console.socket").stdout.strip() == "active"
    enabled = sb.systemctl("is-enabled", "lxcsd-net.service", check=False).stdout.strip()
    assert enabled == "disabled"
    assert run(sb, ["sh", "-c", "command -v lxcsd"]).strip() == "/usr/bin/lxcsd"
    # Debian's python3 packages, no venv: the launcher's path, and pyroute2 0.7's modules.
    code = "import lxcsd, pyroute2; print(lxcsd.__file__, pyroute2.__file__)"
    assert run(sb, ["/usr/bin/python3", "-I", "-c", code]).split() == [
        "/usr/lib/python3/dist-packages/lxcsd/__init__.py",
        "/usr/lib/python3/dist-packages/pyroute2/__init__.py"]
    assert "lxcsd.1" in run(sb, ["man", "-w", "lxcsd"])
    page = run(sb, ["env", "MANWIDTH=100", "man", "-P", "cat", "lxc@.service"])
    assert "systemctl edit lxc@NAME" in " ".join(page.split())
    assert sb.path("/usr/share/bash-completion/completions/lxcsd").is_file()


def _default_conf(sb: Sandbox) -> str:
    """Debian's /etc/lxc/default.conf without its AppArmor lines (lxc.apparmor.profile =
    generated is issue 12's: lxcsd does not generate profiles yet): a veth on lxcbr0."""
    lines = sb.path("/etc/lxc/default.conf").read_text().splitlines()
    kept = [line for line in lines if not line.startswith("lxc.apparmor")]
    assert "lxc.net.0.link = lxcbr0" in kept
    sb.write_file("/root/default.conf", "\n".join(kept) + "\n")
    return "/root/default.conf"


def test_quick_use_flow_from_the_package(sb: Sandbox) -> None:
    need_version(sb, VERSION)
    run(sb, ["lxcsd", "create", "-n", "web1", "-f", _default_conf(sb)])
    sb.systemctl("daemon-reload")
    sb.systemctl("start", "lxc@web1")
    # lxcsd-net made lxcbr0 (the generator wanted it for the veth); pyroute2 0.7.2 set up
    # the veth.
    assert show(sb, "lxcsd-net.service", "ActiveState") == "active"
    assert "lxc.payload.web1" in run(sb, ["systemctl", "status", "--no-pager", "lxc@web1"])
    wait_until(lambda: "busybox container web1 started" in journal(sb, "lxc@web1.service"),
               what="the container's console line in its journal")
    table = run(sb, ["lxcsd", "ls"])
    assert re.search(r"^web1\s+RUNNING\s", table, re.M), table
    assert run(sb, ["lxcsd", "ls", "-1", "--running"]).split() == ["web1"]
    info = run(sb, ["lxcsd", "info", "-n", "web1"])
    link = re.search(r"^Link:\s+(veth\S+)$", info, re.M)
    assert link and re.search(r"^ TX bytes:\s+\d", info, re.M), info
    assert sb.path(f"/sys/class/net/{link.group(1)}/master").resolve().name == "lxcbr0"
    assert run(sb, ["lxcsd", "attach", "web1", "--", "hostname"]).strip() == "web1"
    assert run(sb, ["lxcsd", "check", "web1"]).count("0 error(s)") == 1
    # bash completion asks the packaged lxcsd, through D-Bus (pystemd 0.11), for running
    # containers.
    complete = ("source /usr/share/bash-completion/bash_completion; _completion_loader lxcsd;"
                " COMP_WORDS=(lxcsd stop ''); COMP_CWORD=2; _shtab_lxcsd;"
                " printf '%s\\n' \"${COMPREPLY[@]}\"")
    assert run(sb, ["bash", "-c", complete]).split() == ["web1"]
    run(sb, ["lxcsd", "enable", "web1"])
    assert sb.systemctl("is-enabled", "lxc@web1").stdout.strip() == "enabled"


def _console_line(sb: Sandbox, marker: str) -> None:
    """A line written on the container's console reaches its journal through lxcsd-console."""
    run(sb, ["lxcsd", "attach", "web1", "--", "sh", "-c", f"echo {marker} > /dev/console"])
    wait_until(lambda: marker in journal(sb, "lxc@web1.service"), 30,
               f"{marker} on the console")


def test_upgrade_keeps_containers_running_and_consoles_attached(sb: Sandbox) -> None:
    need_version(sb, VERSION)
    assert show(sb, "lxc@web1.service", "ActiveState") == "active"
    init = run(sb, ["lxcsd", "info", "-p", "web1"]).strip()
    console = show(sb, "lxcsd-console.service", "MainPID")
    _console_line(sb, "before-upgrade")
    out = run(sb, [*APT, "install", f"{DEBS}/lxcsd_{UPGRADE}_all.deb"])
    assert installed_version(sb) == UPGRADE, out
    # The container was not stopped nor restarted; the console service was, for its new code.
    assert show(sb, "lxc@web1.service", "ActiveState") == "active"
    assert run(sb, ["lxcsd", "info", "-p", "web1"]).strip() == init
    assert show(sb, "lxc@web1.service", "NRestarts") == "0"
    assert show(sb, "lxcsd-console.service", "MainPID") not in (console, "0")
    _console_line(sb, "after-upgrade")
    log = run(sb, ["lxcsd", "console", "web1", "--show-log"])
    assert "before-upgrade" in log and "after-upgrade" in log
    assert "lxcsd-helper" in run(sb, ["systemctl", "cat", "lxc@web1.service"])
    assert f"to {DIVERTED} by lxcsd" in run(sb, ["dpkg-divert", "--list", "*lxc@.service"])


def _host_link(sb: Sandbox, name: str) -> str:
    link = re.search(r"^Link:\s+(\S+)$", run(sb, ["lxcsd", "info", name]), re.M)
    assert link, run(sb, ["lxcsd", "info", name])
    return link.group(1)


def test_debians_lxc_net_keeps_its_bridge(sb: Sandbox) -> None:
    """With Debian's lxc-net.service up (it is enabled by default), lxcsd-net stands aside
    and containers join LXC's lxcbr0; it never fights it for the bridge or dnsmasq."""
    need_version(sb, UPGRADE)
    sb.systemctl("stop", "lxc@web1.service", "lxcsd-net.service")
    assert not sb.path("/sys/class/net/lxcbr0").exists()  # lxcsd-net removed its bridge
    sb.systemctl("unmask", "lxc-net.service")  # the sandbox masks what the host enabled
    sb.systemctl("start", "lxc-net.service")
    assert sb.path("/run/lxc/network_up").exists()
    sb.systemctl("start", "lxc@web1.service")
    assert show(sb, "lxcsd-net.service", "ActiveState") == "inactive"
    assert show(sb, "lxcsd-net.service", "ConditionResult") == "no"
    assert show(sb, "lxc-net.service", "ActiveState") == "active"
    master = sb.path(f"/sys/class/net/{_host_link(sb, 'web1')}/master").resolve().name
    assert master == "lxcbr0"


def test_lxc_service_leaves_autostart_to_lxcsd(sb: Sandbox) -> None:
    """Debian lxc's lxc.service (lxc-autostart) starts no container beside lxcsd's units."""
    need_version(sb, UPGRADE)
    run(sb, ["lxcsd", "create", "auto1", "-f", "/dev/null"])
    run(sb, ["lxcsd", "config", "set", "auto1", "lxc.start.auto", "1"])
    sb.systemctl("unmask", "lxc.service")  # the sandbox masks what the host enabled
    sb.systemctl("daemon-reload")
    sb.systemctl("start", "lxc.service")
    assert show(sb, "lxc.service", "ActiveState") == "active"
    # Without lxcsd's drop-in, lxc-autostart starts auto1 here: LXC's monitor process
    # ("[lxc monitor] /var/lib/lxc auto1") and lxc-ls --running list it.
    assert "lxc monitor" not in run(sb, ["ps", "-eo", "args"])
    assert "auto1" not in run(sb, ["lxc-ls", "--running", "-1"])
    sb.systemctl("start", "lxc-containers.target")
    wait_until(lambda: show(sb, "lxc@auto1.service", "ActiveState") == "active",
               what="lxc@auto1 started by lxc-containers.target")
    assert "lxc monitor" not in run(sb, ["ps", "-eo", "args"])


def test_remove_stops_containers_and_gives_lxc_its_unit_back(sb: Sandbox) -> None:
    need_version(sb, UPGRADE)
    out = run(sb, [*APT, "remove", "lxcsd"])
    assert installed_version(sb) == "", out
    # Stopped cleanly while the helper was still there: busybox halted on lxc.signal.halt.
    for name in ("web1", "auto1"):
        assert show(sb, f"lxc@{name}.service", "ActiveState") in ("inactive", ""), name
    assert "lxcsd: web1 stopped (status success" in journal(sb, "lxc@web1.service")
    assert not sb.path("/usr/libexec/lxcsd/lxcsd-helper").exists()
    # lxc's own lxc@.service is back; containers, configs and conffiles stay.
    assert "lxc-start" in sb.path(f"{UNIT_DIR}/lxc@.service").read_text()
    assert not sb.path(DIVERTED).exists()
    assert "lxc-start" in run(sb, ["systemctl", "cat", "lxc@web1.service"])
    assert sb.path("/var/lib/lxc/web1/config").is_file()
    assert sb.path("/var/lib/lxc/web1/rootfs/bin/busybox").exists()
    assert sb.path("/etc/lxcsd/net.conf").is_file()
    assert sb.path("/etc/lxc/default.conf").is_file()


def test_purge_removes_only_lxcsds_own_files(sb: Sandbox) -> None:
    if run(sb, ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "lxcsd"], check=False)[:2] \
            != "rc":
        pytest.skip("needs lxcsd removed by the earlier phase")
    leases = sb.path("/var/lib/lxcsd").exists()
    out = run(sb, [*APT, "purge", "lxcsd"])
    status = sb.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "lxcsd"], check=False)
    assert status.stdout.strip() in ("", "un"), out
    for path in ("/etc/lxcsd", "/var/lib/lxcsd", "/run/lxcsd",
                 "/etc/systemd/system/lxc-containers.target.wants"):
        assert not sb.path(path, follow=False).exists(), path
    assert leases, "lxcsd-net's lease directory never existed: nothing was purged"
    for path in ("/var/lib/lxc/web1/config", "/var/lib/lxc/auto1/config",
                 "/etc/lxc/default.conf", f"{UNIT_DIR}/lxc@.service"):
        assert sb.path(path).exists(), path
    assert run(sb, ["dpkg-query", "-W", "-f", "${Status}", "lxc"]) == "install ok installed"
    assert "lxcsd" not in run(sb, ["dpkg-divert", "--list"])
