"""The Container Interface and readiness from the guest, through ``lxcsd-helper start`` run
directly (no systemd: the test listens on the NOTIFY_SOCKET as systemd would).

Inits here are shell scripts in a busybox root; the static probe sends the sd_notify
datagram (``probe notify LINE... -- CMD``) and then execs CMD, so it is sent by PID 1
itself, as a guest's systemd sends it. What init saw is written to /probe.out.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from tests.infra import helper_util as hu

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# A child of init says READY=1 first (must be ignored: not init), then init reports.
NOTIFYING_INIT = """exec > /probe.out 2>&1
/bin/probe notify READY=1 STATUS=not-init
echo "manager=$(cat /run/host/container-manager)"
echo "uuid=$(cat /run/host/container-uuid)"
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
ls -ln /run/host/notify
env | sort
echo done
sleep 0.4
exec /bin/probe notify "STATUS=guest up" READY=1 -- /bin/sleep 1000
"""

PLAIN_INIT = """exec > /probe.out 2>&1
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
ls /run/host 2>&1
env | sort
echo done
exec sleep 1000
"""


def _out(root: Path) -> list[str]:
    return hu.wait_file(root / "probe.out").splitlines()


def _value(out: list[str], key: str) -> str:
    return next(line.split("=", 1)[1] for line in out if line.startswith(key + "="))


def _host_boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _check_interface(started: hu.Started, root: Path) -> list[str]:
    pid = started.init_pid
    out = _out(root)
    assert _value(out, "manager") == "lxc"  # systemd-detect-virt must keep saying lxc
    uuid = _value(out, "uuid")
    assert UUID_RE.match(uuid) and _value(out, "container_uuid") == uuid
    assert _value(out, "NOTIFY_SOCKET") == "/run/host/notify"
    boot_id = _value(out, "boot_id")
    assert UUID_RE.match(boot_id) and boot_id != _host_boot_id()
    sock = next(line for line in out if line.endswith("/run/host/notify"))
    assert sock.startswith("srwx------ ")  # only the container's root may send
    host = Path("/etc/os-release").read_text()
    assert Path(f"/proc/{pid}/root/run/host/os-release").read_text() == host
    host_id = next(line[3:].strip('"') for line in host.splitlines() if line.startswith("ID="))
    assert _value(out, "container_host_id") == host_id
    mnts = hu.mountinfo(pid)
    assert mnts["/run/host"].startswith("ro") and mnts["/run"].startswith("rw")
    return out


def test_ready_when_init_says_so(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    root = lxcpath.container("g1", "lxcsd.init.notify = 1\n", init_script=NOTIFYING_INIT)
    started = lxcpath.start("g1", unit_cgroup)
    assert started.status == 0, started
    pid = started.init_pid
    _check_interface(started, root)
    # Booting first (while the container's child said READY=1), ready only from init.
    statuses = [line[7:] for m in started.messages for line in m.splitlines()
                if line.startswith("STATUS=")]
    assert statuses[0] == f"Booting, init PID {pid}: waiting for READY=1", statuses
    assert "not-init" not in " ".join(statuses)
    assert started.fields["STATUS"] == f"Running, init PID {pid}: guest up"
    # MAINPID is init at READY=1: the probe itself, or sleep once it exec'd (the probe
    # sends READY=1 and then execs, so the hand-over may come before or after the exec).
    assert started.exe_at_ready in ("/bin/probe", "/bin/busybox")
    seconds = float(re.search(r"g1 ready after ([0-9.]+) s", started.stderr).group(1))
    assert seconds >= 0.35, started.stderr  # not the child's early READY=1


def test_unprivileged_guest(lxcpath: hu.Lxcpath, unit_cgroup: str,
                            subids: None) -> None:
    root = lxcpath.container("g2", "lxcsd.init.notify = 1\nlxc.idmap = u 0 100000 65536\n"
                             "lxc.idmap = g 0 100000 65536\n", owner=100000,
                             init_script=NOTIFYING_INIT)
    started = lxcpath.start("g2", unit_cgroup)
    assert started.status == 0, started
    _check_interface(started, root)
    assert started.fields["READY"] == "1"
    dev = f"/proc/{started.init_pid}/root/dev"
    assert stat.S_ISCHR(os.stat(f"{dev}/net/tun").st_mode)  # a bind of the host's node


def test_systemd_as_init_is_detected(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    """auto: /sbin/init -> /lib/systemd/systemd gets the socket without any setting."""
    root = lxcpath.container("g3")
    (root / "lib/systemd").mkdir(parents=True)
    script = root / "lib/systemd/systemd"
    script.write_text("#!/bin/sh\n" + NOTIFYING_INIT)
    script.chmod(0o755)
    (root / "sbin/init").unlink()
    (root / "sbin/init").symlink_to("/lib/systemd/systemd")
    started = lxcpath.start("g3", unit_cgroup)
    assert started.status == 0, started
    assert started.fields["STATUS"].endswith(": guest up")


def test_other_inits_are_ready_at_exec(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    root = lxcpath.container("g4", init_script=PLAIN_INIT)
    started = lxcpath.start("g4", unit_cgroup)
    assert started.status == 0, started
    assert started.fields["STATUS"] == f"Running, init PID {started.init_pid}"
    out = _out(root)
    assert "NOTIFY_SOCKET" not in " ".join(out)
    assert any("No such file or directory" in line for line in out)  # no /run/host
    # The UUID and a fresh boot id are everybody's.
    assert UUID_RE.match(_value(out, "container_uuid"))
    assert _value(out, "boot_id") != _host_boot_id()
    assert _value(out, "container_host_id")


def test_boot_id_is_new_at_every_start(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    root = lxcpath.container("g5", init_script=PLAIN_INIT)
    seen = []
    for _ in range(2):
        started = lxcpath.start("g5", unit_cgroup)
        assert started.status == 0, started
        out = _out(root)
        seen.append((_value(out, "boot_id"), _value(out, "container_uuid")))
        started.stop()
        (root / "probe.out").unlink()
    assert seen[0][0] != seen[1][0]  # a new boot
    assert seen[0][1] == seen[1][1]  # the same container


def test_uuid_is_the_guests_machine_id(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    root = lxcpath.container("g6", init_script=PLAIN_INIT)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    started = lxcpath.start("g6", unit_cgroup)
    assert started.status == 0, started
    assert _value(_out(root), "container_uuid") == "01234567-89ab-cdef-0123-456789abcdef"


def test_init_crashing_while_booting_fails_the_start(lxcpath: hu.Lxcpath,
                                                     unit_cgroup: str) -> None:
    lxcpath.container("g7", "lxcsd.init.notify = 1\n", init_script="sleep 0.2\nexit 3\n")
    started = lxcpath.start("g7", unit_cgroup)
    assert started.status == 3, started
    assert "READY" not in started.fields and "MAINPID" not in started.fields
    assert started.fields["STATUS"] == "Failed: init exited with status 3 while booting"
    assert "g7: init exited with status 3 before it reported ready" in started.stderr


def test_poweroff_while_booting_completes_then_ends_as_init(lxcpath: hu.Lxcpath,
                                                          unit_cgroup: str) -> None:
    """reboot(2) from a pid namespace's init ends it with SIGINT for a poweroff: the helper
    says READY=1 (the unit then ends inactive as a running one would) and dies the same."""
    lxcpath.container("g8", "lxcsd.init.notify = 1\n",
                      init_script="sleep 0.2\nexec /bin/busybox poweroff -f\n")
    started = lxcpath.start("g8", unit_cgroup)
    assert started.status == -2, started  # SIGINT, as init
    assert started.fields["READY"] == "1"
    assert started.fields["STATUS"] == "Init killed by signal 2 while booting"


def test_device_policy_decides_tun_and_fuse(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    lxcpath.container("g9", "lxc.cgroup2.devices.deny = a\n"
                      "lxc.cgroup2.devices.allow = c 10:229 rwm\n")
    lxcpath.container("g10")
    devs = {}
    for name in ("g9", "g10"):
        started = lxcpath.start(name, unit_cgroup)
        assert started.status == 0, started
        dev = Path(f"/proc/{started.init_pid}/root/dev")
        devs[name] = {n for n in ("net/tun", "fuse") if (dev / n).exists()}
        for n in devs[name]:
            st = os.stat(dev / n)
            assert stat.S_ISCHR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666
            assert (os.major(st.st_rdev), os.minor(st.st_rdev)) in ((10, 200), (10, 229))
    assert devs == {"g9": {"fuse"}, "g10": {"net/tun", "fuse"}}


def test_kernel_file_systems_are_masked(lxcpath: hu.Lxcpath, unit_cgroup: str) -> None:
    """A privileged container's /sys/kernel/{debug,config,...}: an empty read-only tmpfs
    (a guest's systemd would mount the host kernel's debugfs there)."""
    lxcpath.container("g11")
    started = lxcpath.start("g11", unit_cgroup)
    assert started.status == 0, started
    pid = started.init_pid
    mnts = hu.mountinfo(pid)
    for path in ("/sys/kernel/debug", "/sys/kernel/config", "/sys/kernel/tracing"):
        if os.path.isdir(path):
            assert mnts.get(path, "").startswith("ro"), (path, mnts.get(path))
            assert os.listdir(f"/proc/{pid}/root{path}") == []


def test_a_flood_from_inside_reaches_systemd_bounded(lxcpath: hu.Lxcpath,
                                                     unit_cgroup: str) -> None:
    """A hostile container floods the notify socket: 20000 READY=1 from a process that is
    not init (all ignored), 3000 STATUS= from init itself (forwarded at most twice a
    second); init's READY=1 after that still ends the start, and the STATUS= lines systemd
    got stay few."""
    flood = ("/bin/probe notify -n 20000 READY=1 STATUS=fake &\n"
             "exec /bin/probe notify -n 3000 STATUS=spam -- "
             "/bin/probe notify STATUS=done READY=1 -- /bin/sleep 1000\n")
    lxcpath.container("g12", "lxcsd.init.notify = 1\n", init_script=flood)
    started = lxcpath.start("g12", unit_cgroup, timeout=120)
    assert started.status == 0, started
    pid = started.init_pid
    assert started.fields["STATUS"] == f"Running, init PID {pid}: done"
    statuses = [line for m in started.messages for line in m.splitlines()
                if line.startswith("STATUS=")]
    assert "fake" not in " ".join(statuses)
    seconds = float(re.search(r"g12 ready after ([0-9.]+) s", started.stderr).group(1))
    assert len(statuses) <= 3 + seconds / 0.5, (len(statuses), seconds)
