"""Hosts for Ansible: systemd sandboxes reached over SSH, as an admin reaches servers.

:class:`ControllerNet` is a network namespace the test makes (held by a ``sleep`` that dies
with pytest) with a bridge, ``fleet0``, on :data:`SUBNET`; :meth:`ControllerNet.attach`
gives a sandbox an ``eth0`` on it (a veth pair made in the test's namespace, its peer
created directly in the sandbox's own network namespace), so the host's network is never
touched. The Ansible controller runs in that namespace (``nsenter --net``, nothing else
changed: it reads the test's files).

:func:`start_sshd` runs Debian's own ``ssh.service`` in a sandbox with fresh host keys and
the test's key authorised for root; :class:`Controller` holds the controller's key, its
``known_hosts`` (read out of each sandbox, so host keys are checked as in production),
``ansible.cfg``, and runs ``ansible-playbook``. Why SSH rather than a connection plugin
entering the sandboxes' namespaces: it is what admins run, so the test also covers
Ansible's SSH connection, pipelining, the module shipped to a remote Python, and rsync
over SSH for moves; a sandbox's sshd starts in milliseconds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from lxcsd import linux
from tests.infra.sandbox import CMD_ENV, Sandbox

SUBNET = "192.0.2"  # TEST-NET-1 (RFC 5737): never routed, so never a real address
PREFIX = 24
CONTROLLER_ADDRESS = f"{SUBNET}.1"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
                   r"failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)


def _pdeath() -> None:
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)


class ControllerNet:
    """The controller's network namespace and bridge; hosts are attached to it."""

    def __init__(self) -> None:
        own = os.readlink("/proc/self/ns/net")
        self.proc = subprocess.Popen(["unshare", "--net", "sleep", "infinity"],
                                     preexec_fn=_pdeath)
        for _ in range(500):
            if os.readlink(f"/proc/{self.proc.pid}/ns/net") != own:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the controller's namespace was not made")
        self.netns = f"/proc/{self.proc.pid}/ns/net"
        self.inode = os.stat(self.netns).st_ino
        self.ip("link", "set", "lo", "up")
        self.ip("link", "add", "fleet0", "type", "bridge")
        self.ip("addr", "add", f"{CONTROLLER_ADDRESS}/{PREFIX}", "dev", "fleet0")
        self.ip("link", "set", "fleet0", "up")
        self.hosts = 0

    def ip(self, *args: str) -> str:
        return self.run(["ip", *args]).stdout

    def run(self, argv: list[str], *, env: dict[str, str] | None = None,
            timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        """argv in the controller's network namespace (mounts and files are the test's)."""
        result = subprocess.run(["nsenter", f"--net={self.netns}", "--", *argv],
                                capture_output=True, text=True, timeout=timeout,
                                env=env or dict(CMD_ENV), stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{argv} in the controller's namespace: status "
                                 f"{result.returncode}\n{result.stdout}{result.stderr}")
        return result

    def attach(self, sb: Sandbox) -> str:
        """Give the sandbox eth0 on fleet0; returns its address."""
        self.hosts += 1
        port, address = f"fleet{self.hosts}", f"{SUBNET}.{10 + self.hosts}"
        self.ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
                str(sb.pid))
        self.ip("link", "set", port, "master", "fleet0", "up")
        sb.run(["ip", "addr", "add", f"{address}/{PREFIX}", "dev", "eth0"])
        sb.run(["ip", "link", "set", "eth0", "up"])
        return address

    def processes(self) -> list[int]:
        """Pids in the namespace (the holder, ssh's ControlPersist masters)."""
        found = []
        for entry in os.scandir("/proc"):
            try:
                if entry.name.isdigit() and \
                        os.stat(f"/proc/{entry.name}/ns/net").st_ino == self.inode:
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def close(self) -> None:
        """End what runs in the namespace (all started by this test), then the holder: the
        namespace, its bridge and veth ends go with it."""
        for pid in self.processes():
            if pid != self.proc.pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self.proc.kill()
        self.proc.wait(10)


def start_sshd(sb: Sandbox, public_key: str) -> list[str]:
    """Debian's ssh.service in the sandbox, with its own host keys (the overlay shows the
    host's: each sandbox makes new ones) and public_key authorised for root. Returns the
    ed25519 host key (type and key), for the controller's known_hosts."""
    sb.run("rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub && ssh-keygen -A -q")
    sb.write_file("/root/.ssh/authorized_keys", public_key, 0o600)
    sb.run(["chmod", "700", "/root/.ssh"])
    # The sandbox masks what the host enabled, ssh.service included when the host runs it.
    sb.systemctl("unmask", "ssh.service")
    sb.systemctl("start", "ssh.service")
    return sb.path("/etc/ssh/ssh_host_ed25519_key.pub").read_text().split(" ")[:2]


class Controller:
    """An Ansible controller in the test's directory: key, known_hosts, ansible.cfg."""

    def __init__(self, net: ControllerNet, workdir: Path, collections: Path) -> None:
        self.net = net
        self.dir = workdir
        self.home = workdir / "home"
        self.home.mkdir(exist_ok=True)
        self.key = workdir / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-test",
                        "-f", str(self.key)], check=True, capture_output=True)
        self.known_hosts = workdir / "known_hosts"
        self.known_hosts.write_text("")
        self.config = workdir / "ansible.cfg"
        self.config.write_text(self._config(collections))

    @property
    def public_key(self) -> str:
        return self.key.with_suffix(".pub").read_text()

    def trust(self, address: str, host_key: list[str]) -> None:
        with self.known_hosts.open("a") as f:
            f.write(f"{address} {' '.join(host_key)}\n")

    def _config(self, collections: Path) -> str:
        # Pipelining: one SSH round trip per task; ControlPersist: one connection per host.
        # Host keys checked against the keys read out of the sandboxes.
        ssh_args = ("-o ControlMaster=auto -o ControlPersist=300s -o StrictHostKeyChecking=yes "
                    f"-o UserKnownHostsFile={self.known_hosts} -o ConnectTimeout=20")
        return f"""\
[defaults]
inventory = {self.dir}/inventory
collections_path = {collections}
host_key_checking = True
interpreter_python = /usr/bin/python3
retry_files_enabled = False
local_tmp = {self.dir}/ansible-tmp
nocolor = True
forks = 5

[ssh_connection]
pipelining = True
control_path_dir = {self.dir}/cp
ssh_args = {ssh_args}
"""

    def ssh_path(self) -> str:
        """PATH with an ``ssh`` first that uses the controller's key and known_hosts: what
        `systemctl -H` and `machinectl -H` run (systemd 252 runs "ssh" from PATH; an admin's
        ~/.ssh/config does the same job, and the test must not touch root's)."""
        bindir = self.dir / "bin"
        bindir.mkdir(exist_ok=True)
        wrapper = bindir / "ssh"
        wrapper.write_text(f"#!/bin/sh\nexec /usr/bin/ssh -i {self.key} "
                           f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile="
                           f"{self.known_hosts} \"$@\"\n")
        wrapper.chmod(0o755)
        return f"{bindir}:{CMD_ENV['PATH']}"

    def playbook(self, *args: str, timeout: float = 900) -> Run:
        """ansible-playbook ARGS from the test's directory, in the controller's namespace."""
        env = {**CMD_ENV, "HOME": str(self.home), "ANSIBLE_CONFIG": str(self.config),
               "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"}
        t0 = time.monotonic()
        result = self.net.run(["/bin/sh", "-c", f'cd "{self.dir}" && exec "$@"', "sh",
                               "ansible-playbook", *args], env=env, timeout=timeout,
                              check=False)
        return Run(result, time.monotonic() - t0)


class Run:
    """One ansible-playbook run: status, output, and its PLAY RECAP per host."""

    def __init__(self, result: subprocess.CompletedProcess[str], seconds: float) -> None:
        self.status = result.returncode
        self.output = result.stdout + result.stderr
        self.seconds = seconds
        self.recap = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)),
                                   "unreachable": int(m.group(4)), "failed": int(m.group(5))}
                      for m in RECAP.finditer(result.stdout)}

    def __str__(self) -> str:
        return f"ansible-playbook exited {self.status} after {self.seconds:.1f} s\n" + \
            "\n".join(self.output.splitlines()[-150:])

    __repr__ = __str__
