"""The container managers compared, each behind the same small interface (a "runner").

A runner knows how to lay out a container (busybox or Debian), which commands start and stop
it, what "started" means for it, and which host processes are its per-container overhead.
All commands run inside the benchmark's systemd sandbox.

    lxcsd       systemctl start lxc@NAME          (Type=notify: READY=1 once init has exec'd,
                                                   a systemd guest's own READY=1 for Debian)
    lxcsd-exec  the same with lxcsd.init.notify = 0 (Debian boot only: readiness at exec)
    lxc         lxc-start -d + lxc-wait RUNNING   (what LXC users script)
    lxc-unit    LXC's own lxc@.service            (Type=simple: returns at fork, says nothing
                                                   about readiness), installed as
                                                   lxc-native@.service
    nspawn      systemd-nspawn -b in a Type=notify unit (--notify-ready=no: nspawn sends READY=1
                once it has started the container's init, comparable to lxcsd's)
    nspawn-ready  the same with --notify-ready=yes: READY=1 when the guest's systemd sends it
                (what lxcsd does for systemd guests; the Debian boot benchmark only)

lxcsd and LXC read the same config format: one config text serves both (separate copies and
names, so they never share a rootfs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bench.harness import Bench, BenchError, log, raw_path, short_error
from tests.infra.rootfs import busybox_rootfs, debian_rootfs, debian_rootfs_copy

LXCPATH = "/var/lib/lxc"
MACHINES = "/var/lib/machines"
LXCSD_GENERATOR = "/usr/local/lib/systemd/system-generators/lxcsd-generator"
LXCSD_HELPER = "/usr/local/libexec/lxcsd/lxcsd-helper"
NSPAWN_UNIT = "bench-nspawn@.service"
LXC_NATIVE_UNIT = "lxc-native@.service"

# nspawn needs /etc/os-release to boot a directory; every runner's copy gets it, so the trees
# stay identical.
OS_RELEASE = "NAME=BusyBox\nID=busybox\nPRETTY_NAME=BusyBox (lxcsd bench)\n"

# kind "prompt": the busybox tree with an init that exits at once on the halt signal (busybox
# init's own halt sequence sleeps about 2 s, which hides the managers' stop overhead).
PROMPT_INIT = """\
#!/bin/sh
# lxcsd bench: an init that exits as soon as it gets the halt signal (SIGUSR1)
trap 'exit 0' USR1
echo "lxcsd-bench: prompt init on $(hostname)"
while :; do
    sleep 1000 &
    wait
done
"""


def busybox_config(name: str, extra: str = "") -> str:
    """As LXC's busybox template writes it (less AppArmor, absent here), loopback only."""
    return f"""\
# lxcsd bench: busybox container {name} (the config of LXC's busybox template)
lxc.rootfs.path = dir:{LXCPATH}/{name}/rootfs
lxc.uts.name = {name}
lxc.signal.halt = SIGUSR1
lxc.signal.reboot = SIGTERM
lxc.net.0.type = empty
lxc.autodev = 1
lxc.tty.max = 1
lxc.pty.max = 16
lxc.cap.drop = sys_module mac_admin mac_override sys_time
lxc.mount.auto = cgroup:mixed proc:mixed sys:ro
lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0
{extra}"""


def debian_config(name: str) -> str:
    """Debian with systemd as init; the halt signal is left to detection (SIGRTMIN+3)."""
    return f"""\
# lxcsd bench: Debian bookworm container {name}, systemd as init
lxc.rootfs.path = dir:{LXCPATH}/{name}/rootfs
lxc.uts.name = {name}
lxc.net.0.type = empty
lxc.autodev = 1
lxc.tty.max = 0
lxc.pty.max = 16
lxc.cap.drop = sys_module mac_admin mac_override sys_time sys_rawio
lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed
"""


NSPAWN_UNIT_TEXT = """\
# lxcsd bench: systemd-nspawn as systemd-nspawn@.service runs it, but without user
# namespace or veth (the LXC configs compared have neither) and without machined
# registration unless NSPAWN_REGISTER=yes. Type=notify with --notify-ready=no: nspawn sends
# READY=1 when the container's init has been started (NOTIFY_READY=yes: when the guest's
# systemd sends it).
[Unit]
Description=lxcsd bench: systemd-nspawn container %i

[Service]
Type=notify
Environment=KILL_SIGNAL=SIGRTMIN+3 NSPAWN_REGISTER=no NOTIFY_READY=no NSPAWN_EXTRA=
EnvironmentFile=-/etc/bench-nspawn/%i.env
ExecStart=/usr/bin/systemd-nspawn --quiet --keep-unit --boot --register=${NSPAWN_REGISTER} \
 --private-network --link-journal=no --console=read-only --notify-ready=${NOTIFY_READY} \
 --kill-signal=${KILL_SIGNAL} --machine=%i --directory=/var/lib/machines/%i $NSPAWN_EXTRA
KillMode=mixed
Delegate=yes
Slice=machine.slice
TimeoutStopSec=90
"""


KIND_TAG = {"busybox": "bb", "prompt": "pi", "debian": "deb"}


class Runner:
    container = True  # False: a reference measurement, no container to check
    key = ""
    label = ""
    prefix = ""
    start_means = ""
    stop_means = ""
    kinds: tuple[str, ...] = ("busybox", "debian")

    def __init__(self) -> None:
        self.unavailable: str | None = None

    # -- set-up ------------------------------------------------------------------------

    def setup(self, b: Bench) -> None:
        """Check the tools are there; set self.unavailable to a reason otherwise."""

    def name(self, kind: str, i: int | str) -> str:
        return f"{self.prefix}-{KIND_TAG[kind]}-{i}"

    def rootfs_dir(self, name: str) -> str:
        return f"{LXCPATH}/{name}/rootfs"

    def container_dir(self, name: str) -> str:
        """The directory destroy() removes: everything of this container."""
        return f"{LXCPATH}/{name}"

    def create(self, b: Bench, name: str, kind: str) -> None:
        root = self.rootfs_dir(name)
        parent, leaf = root.rsplit("/", 1)
        if kind in ("busybox", "prompt"):
            b.run(["mkdir", "-p", parent])
            host = busybox_rootfs(f"{b.sb.path(parent)}/{leaf}", hostname=name)
            (host / "etc/os-release").write_text(OS_RELEASE)
            if kind == "prompt":
                init = host / "sbin/init"
                init.unlink()
                init.write_text(PROMPT_INIT)
                init.chmod(0o755)
        else:
            debian_rootfs_copy(root, src=debian_rootfs(), run=b.run)
        self.write_config(b, name, kind)

    def write_config(self, b: Bench, name: str, kind: str) -> None:
        text = debian_config(name) if kind == "debian" else busybox_config(name)
        b.write(f"{LXCPATH}/{name}/config", text)

    def destroy(self, b: Bench, names: Sequence[str]) -> None:
        dirs = [self.container_dir(n) for n in names]
        for i in range(0, len(dirs), 100):
            b.run(["rm", "-rf", "--one-file-system", *dirs[i:i + 100]], check=False,
                  timeout=600)

    # -- commands ----------------------------------------------------------------------

    def start_cmds(self, name: str) -> list[list[str]]:
        raise NotImplementedError

    def stop_cmds(self, name: str) -> list[list[str]]:
        raise NotImplementedError

    def start_all(self, names: Sequence[str]) -> tuple[list[list[str]], bool]:
        """Commands starting all names at once, and whether they run in parallel."""
        return [c for n in names for c in self.start_cmds(n)], True

    def stop_all(self, names: Sequence[str]) -> tuple[list[list[str]], bool]:
        return [c for n in names for c in self.stop_cmds(n)], True

    def unit(self, name: str) -> str | None:
        return None

    # -- checks ------------------------------------------------------------------------

    def stopped_problems(self, b: Bench, names: Sequence[str]) -> list[str]:
        """What is wrong after a stop: an init still running, a unit failed or active."""
        wrong = b.wait_inits(names, present=False, timeout=10)
        problems = [f"{n}: init still running" for n in wrong]
        units = [u for u in (self.unit(n) for n in names) if u]
        for unit, (active, result) in b.unit_states(units).items():
            if active != "inactive" or result != "success":
                problems.append(f"{unit}: {active}/{result}")
        return problems

    def force_stop(self, b: Bench, names: Sequence[str]) -> None:
        """Clean-up after a failure: stop whatever is still running, never fail."""
        units = [u for u in (self.unit(n) for n in names) if u]
        if units:
            b.run(["systemctl", "kill", "--signal=SIGKILL", "--", *units], check=False)
            b.run(["systemctl", "stop", "--", *units], check=False, timeout=300)
            b.run(["systemctl", "reset-failed", "--", *units], check=False)

    def overhead(self, procs: list[dict], names: Sequence[str]) -> list[dict]:
        """The host processes that exist because these containers run (their supervisors),
        excluding the containers' own processes."""
        return []


def _in_container(p: dict) -> bool:
    return len(p.get("nspid", [])) >= 2


class LxcsdRunner(Runner):
    key = "lxcsd"
    label = "lxcsd (lxc@.service)"
    prefix = "sd"
    start_means = ("`systemctl start lxc@NAME`: Type=notify, returns when the helper has sent "
                   "READY=1: after the container's init exec'd (busybox), after the guest's "
                   "systemd sent READY=1 (Debian)")
    stop_means = "`systemctl stop lxc@NAME`: halt signal, waits for init to exit, cleanup"

    def __init__(self) -> None:
        super().__init__()
        self.generator_unavailable: str | None = None

    def setup(self, b: Bench) -> None:
        """Installed? Does the generator run? Does a probe container start and stop?"""
        self.unavailable = self.generator_unavailable = None
        if b.lxcsd_install_error:
            self.unavailable = self.generator_unavailable = b.lxcsd_install_error
            return
        self.generator_unavailable = self._probe_generator(b)
        if self.generator_unavailable:
            self.unavailable = self.generator_unavailable
            return
        self.unavailable = self._probe_start(b)

    @staticmethod
    def _probe_generator(b: Bench) -> str | None:
        b.run(["mkdir", "-p", "/run/bench-probe/lxc", "/run/bench-probe/out"])
        r = b.run([LXCSD_GENERATOR, "/run/bench-probe/out", "/run/bench-probe/out",
                   "/run/bench-probe/out"], check=False,
                  env={"LXCSD_LXCPATH": "/run/bench-probe/lxc"})
        b.run(["rm", "-rf", "/run/bench-probe"], check=False)
        if r.returncode != 0:
            return f"{LXCSD_GENERATOR} exits {r.returncode}: {_gist(r.stderr + r.stdout)}"
        return None

    def _probe_start(self, b: Bench) -> str | None:
        name = "sd-probe"
        try:
            self.create(b, name, "busybox")
            b.daemon_reload()
            r = b.timed(self.start_cmds(name), timeout=30)
            if not r["ok"]:
                return f"`systemctl start lxc@{name}` failed: {_last_line(r['error'])}"
            if b.find_init(name, timeout=5) is None:
                return f"lxc@{name} started but no container init named {name} runs"
            r = b.timed(self.stop_cmds(name), timeout=60)
            if not r["ok"]:
                return f"`systemctl stop lxc@{name}` failed: {_last_line(r['error'])}"
            problems = self.stopped_problems(b, [name])
            return f"after stop: {'; '.join(problems)}" if problems else None
        except Exception as e:  # noqa: BLE001
            return f"probe container: {short_error(e)}"
        finally:
            raw_path("lxcsd-probe-journal.txt").write_text(b.journal(f"lxc@{name}.service"))
            self.force_stop(b, [name])
            self.destroy(b, [name])

    def start_cmds(self, name: str) -> list[list[str]]:
        return [["systemctl", "start", f"lxc@{name}.service"]]

    def stop_cmds(self, name: str) -> list[list[str]]:
        return [["systemctl", "stop", f"lxc@{name}.service"]]

    def start_all(self, names: Sequence[str]) -> tuple[list[list[str]], bool]:
        # One systemctl: systemd runs the start jobs concurrently; returns when all are ready.
        return [["systemctl", "start", "--", *(f"lxc@{n}.service" for n in names)]], False

    def stop_all(self, names: Sequence[str]) -> tuple[list[list[str]], bool]:
        return [["systemctl", "stop", "--", *(f"lxc@{n}.service" for n in names)]], False

    def unit(self, name: str) -> str | None:
        return f"lxc@{name}.service"

    def overhead(self, procs: list[dict], names: Sequence[str]) -> list[dict]:
        """Every lxcsd process (the shared console service, any helper left), and anything
        in a container's unit cgroup outside its payload leaf."""
        units = {f"lxc@{n}.service" for n in names}
        out = []
        for p in procs:
            if _in_container(p):
                continue
            cg = p["cgroup"].split("/")
            in_unit = any(part in units for part in cg) and not any(
                part.startswith("lxc.payload") for part in cg)
            if in_unit or "lxcsd" in p["cmdline"]:
                out.append(p)
        return out


class LxcsdExecRunner(LxcsdRunner):
    """lxcsd with the guest's readiness turned off: what lxcsd did before issue 16."""

    key = "lxcsd-exec"
    label = "lxcsd, lxcsd.init.notify = 0"
    prefix = "se"
    kinds = ("debian",)
    start_means = ("`systemctl start lxc@NAME` with `lxcsd.init.notify = 0` in the config: "
                   "READY=1 once init exec'd, the guest's boot not awaited")

    def write_config(self, b: Bench, name: str, kind: str) -> None:
        b.write(f"{LXCPATH}/{name}/config", debian_config(name) + "lxcsd.init.notify = 0\n")


class LxcRunner(Runner):
    key = "lxc"
    label = "LXC (lxc-start -d)"
    prefix = "lx"
    start_means = "`lxc-start -d -n NAME` then `lxc-wait -n NAME -s RUNNING`"
    stop_means = "`lxc-stop -n NAME`: halt signal, waits for the container to stop"

    def setup(self, b: Bench) -> None:
        r = b.run(["lxc-start", "--version"], check=False)
        self.unavailable = None if r.returncode == 0 else "lxc-start not installed"

    def start_cmds(self, name: str) -> list[list[str]]:
        return [["lxc-start", "-d", "-n", name, "-o", f"/run/bench-lxc-{name}.log"],
                ["lxc-wait", "-n", name, "-s", "RUNNING", "-t", "60"]]

    def stop_cmds(self, name: str) -> list[list[str]]:
        return [["lxc-stop", "-n", name]]

    def start_all(self, names: Sequence[str]) -> tuple[list[list[str]], bool]:
        return [["/bin/sh", "-c", f"lxc-start -d -n {n} -o /run/bench-lxc-{n}.log && "
                 f"lxc-wait -n {n} -s RUNNING -t 120"] for n in names], True

    def stopped_problems(self, b: Bench, names: Sequence[str]) -> list[str]:
        problems = super().stopped_problems(b, names)
        r = b.run(["lxc-ls", "--running", "-1"], check=False)
        running = set(r.stdout.split()) & set(names)
        return problems + [f"{n}: lxc-ls says running" for n in sorted(running)]

    def force_stop(self, b: Bench, names: Sequence[str]) -> None:
        r = b.run(["lxc-ls", "--active", "-1"], check=False)
        active = [n for n in r.stdout.split() if n in set(names)]
        if active:
            b.timed([["lxc-stop", "-k", "-n", n] for n in active], timeout=120, parallel=True)

    def overhead(self, procs: list[dict], names: Sequence[str]) -> list[dict]:
        wanted = set(names)
        return [p for p in procs if not _in_container(p)
                and p["cmdline"].startswith("[lxc monitor]")
                and p["cmdline"].split()[-1] in wanted]


class LxcUnitRunner(LxcRunner):
    key = "lxc-unit"
    label = "LXC's lxc@.service"
    prefix = "lu"
    kinds = ("busybox",)
    start_means = ("`systemctl start lxc-native@NAME` (LXC's unit, Type=simple running "
                   "`lxc-start -F`): returns once lxc-start is forked — **says nothing about "
                   "readiness**")
    stop_means = "`systemctl stop lxc-native@NAME` (ExecStop=lxc-stop)"

    def setup(self, b: Bench) -> None:
        super().setup(b)
        if self.unavailable:
            return
        src = b.sb.path("/lib/systemd/system/lxc@.service")
        if not src.is_file():
            self.unavailable = "LXC's /lib/systemd/system/lxc@.service not installed"
            return
        text = ("# LXC's own /lib/systemd/system/lxc@.service, copied under another name "
                "(lxcsd's lxc@.service shadows it)\n" + src.read_text())
        b.write(f"/etc/systemd/system/{LXC_NATIVE_UNIT}", text)
        b.daemon_reload()

    def start_cmds(self, name: str) -> list[list[str]]:
        return [["systemctl", "start", f"lxc-native@{name}.service"]]

    def stop_cmds(self, name: str) -> list[list[str]]:
        return [["systemctl", "stop", f"lxc-native@{name}.service"]]

    def unit(self, name: str) -> str | None:
        return f"lxc-native@{name}.service"

    def force_stop(self, b: Bench, names: Sequence[str]) -> None:
        Runner.force_stop(self, b, names)
        super().force_stop(b, names)


class LxcUnitWaitRunner(LxcUnitRunner):
    """LXC's unit plus lxc-wait, so that its figure means 'running' like the others'."""

    key = "lxc-unit-wait"
    label = "LXC's lxc@.service + lxc-wait"
    prefix = "lw"
    start_means = ("`systemctl start lxc-native@NAME` then `lxc-wait -n NAME -s RUNNING`: "
                   "LXC's unit made comparable")

    def start_cmds(self, name: str) -> list[list[str]]:
        return [*super().start_cmds(name), ["lxc-wait", "-n", name, "-s", "RUNNING", "-t", "60"]]


class NspawnRunner(Runner):
    key = "nspawn"
    label = "systemd-nspawn"
    prefix = "ns"
    register = "no"
    notify_ready = "no"
    start_means = ("`systemctl start bench-nspawn@NAME`: Type=notify unit running "
                   "`systemd-nspawn -b --notify-ready=no`, READY=1 once nspawn started init")
    stop_means = "`systemctl stop bench-nspawn@NAME`: nspawn sends its --kill-signal to init"

    def setup(self, b: Bench) -> None:
        r = b.run(["systemd-nspawn", "--version"], check=False)
        if r.returncode != 0:
            self.unavailable = "systemd-nspawn not installed"
            return
        b.write(f"/etc/systemd/system/{NSPAWN_UNIT}", NSPAWN_UNIT_TEXT)
        b.run(["mkdir", "-p", MACHINES, "/etc/bench-nspawn"])
        b.daemon_reload()

    def rootfs_dir(self, name: str) -> str:
        return f"{MACHINES}/{name}"

    def container_dir(self, name: str) -> str:
        return f"{MACHINES}/{name}"

    def write_config(self, b: Bench, name: str, kind: str) -> None:
        sig = "SIGRTMIN+3" if kind == "debian" else "SIGUSR1"
        b.write(f"/etc/bench-nspawn/{name}.env",
                f"KILL_SIGNAL={sig}\nNSPAWN_REGISTER={self.register}\n"
                f"NOTIFY_READY={self.notify_ready}\n")

    def destroy(self, b: Bench, names: Sequence[str]) -> None:
        super().destroy(b, names)
        b.run(["rm", "-f", *(f"/etc/bench-nspawn/{n}.env" for n in names)], check=False)

    def start_cmds(self, name: str) -> list[list[str]]:
        return [["systemctl", "start", f"bench-nspawn@{name}.service"]]

    def stop_cmds(self, name: str) -> list[list[str]]:
        return [["systemctl", "stop", f"bench-nspawn@{name}.service"]]

    def start_all(self, names: Sequence[str]) -> tuple[list[list[str]], bool]:
        return [["systemctl", "start", "--", *(f"bench-nspawn@{n}.service" for n in names)]], \
            False

    def stop_all(self, names: Sequence[str]) -> tuple[list[list[str]], bool]:
        return [["systemctl", "stop", "--", *(f"bench-nspawn@{n}.service" for n in names)]], \
            False

    def unit(self, name: str) -> str | None:
        return f"bench-nspawn@{name}.service"

    def overhead(self, procs: list[dict], names: Sequence[str]) -> list[dict]:
        wanted = {f"--machine={n}" for n in names}
        return [p for p in procs if not _in_container(p) and p["comm"] == "systemd-nspawn"
                and wanted & set(p["cmdline"].split())]


class NspawnMachinedRunner(NspawnRunner):
    key = "nspawn-machined"
    label = "systemd-nspawn + machined"
    prefix = "nm"
    register = "yes"
    kinds = ("busybox",)
    start_means = ("as systemd-nspawn, with `--register=yes` (machined registration, as "
                   "systemd-nspawn@.service does)")


class NspawnReadyRunner(NspawnRunner):
    key = "nspawn-ready"
    label = "systemd-nspawn --notify-ready=yes"
    prefix = "nr"
    notify_ready = "yes"
    kinds = ("debian",)
    start_means = ("as systemd-nspawn, with `--notify-ready=yes`: READY=1 when the guest's "
                   "systemd sends it on /run/host/notify")


FLOOR_NOTIFY = """\
# lxcsd bench: the least a Python Type=notify helper can do: start, send READY=1, wait.
import os, socket, time
addr = os.environ["NOTIFY_SOCKET"]
addr = "\\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
s.send(b"READY=1")
time.sleep(1e9)
"""


class FloorRunner(Runner):
    """Not a container: what systemd itself costs. `systemctl start` of a unit that runs
    `sleep` (Type=simple), the floor of any unit-based start."""

    key = "floor-simple"
    label = "reference: Type=simple unit (sleep)"
    prefix = "fs"
    container = False
    kinds = ("busybox", "prompt")
    template = "bench-floor-simple@.service"
    start_means = "`systemctl start` of a Type=simple unit running `sleep infinity`: " \
        "systemd's own round trip, no container"
    stop_means = "`systemctl stop` of it (SIGTERM)"
    unit_text = ("[Unit]\nDescription=lxcsd bench: floor %i\n[Service]\nType=simple\n"
                 "ExecStart=/bin/sleep infinity\n")

    def setup(self, b: Bench) -> None:
        b.write(f"/etc/systemd/system/{self.template}", self.unit_text)
        b.write("/usr/local/lib/lxcsd-bench/notify-ready.py", FLOOR_NOTIFY)
        b.daemon_reload()

    def create(self, b: Bench, name: str, kind: str) -> None:
        pass

    def destroy(self, b: Bench, names: Sequence[str]) -> None:
        pass

    def unit(self, name: str) -> str | None:
        return self.template.replace("@", f"@{name}")

    def start_cmds(self, name: str) -> list[list[str]]:
        return [["systemctl", "start", str(self.unit(name))]]

    def stop_cmds(self, name: str) -> list[list[str]]:
        return [["systemctl", "stop", str(self.unit(name))]]

    def stopped_problems(self, b: Bench, names: Sequence[str]) -> list[str]:
        units = [str(self.unit(n)) for n in names]
        return [f"{u}: {a}/{r}" for u, (a, r) in b.unit_states(units).items()
                if a != "inactive" or r != "success"]


class FloorNotifyRunner(FloorRunner):
    key = "floor-notify"
    label = "reference: Type=notify, python3 -I -S sends READY=1"
    prefix = "fn"
    template = "bench-floor-notify@.service"
    start_means = ("`systemctl start` of a Type=notify unit whose Debian `python3 -I -S` "
                   "sends READY=1 at once: the floor for a Python helper, no container")
    unit_text = ("[Unit]\nDescription=lxcsd bench: notify floor %i\n[Service]\nType=notify\n"
                 "ExecStart=/usr/bin/python3 -I -S /usr/local/lib/lxcsd-bench/notify-ready.py\n")


ALL: dict[str, type[Runner]] = {r.key: r for r in (
    LxcsdRunner, LxcsdExecRunner, LxcRunner, LxcUnitRunner, LxcUnitWaitRunner, NspawnRunner,
    NspawnMachinedRunner, NspawnReadyRunner, FloorRunner, FloorNotifyRunner)}


def make(keys: Sequence[str], b: Bench) -> list[Runner]:
    """Runners for keys, set up in the sandbox (unavailable ones keep their reason)."""
    runners = []
    for k in keys:
        r = ALL[k]()
        try:
            r.setup(b)
        except Exception as e:  # noqa: BLE001
            r.unavailable = f"set-up failed: {short_error(e)}"
        if r.unavailable:
            log(f"{r.key}: not available: {r.unavailable}")
        runners.append(r)
    return runners


def _gist(text: str) -> str:
    """The informative line of an error output: a traceback's last line, else the first."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "(no output)"
    return lines[-1] if any(ln.startswith("Traceback") for ln in lines) else lines[0]


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return re.sub(r"\s+", " ", lines[-1]) if lines else "(no output)"


def require_running(b: Bench, r: Runner, names: Sequence[str], timeout: float = 5.0) -> None:
    """Raise unless every name has a running init (checked after the timed start)."""
    missing = b.wait_inits(names, present=True, timeout=timeout)
    if missing:
        raise BenchError(f"{r.key}: start returned but no init runs for "
                         f"{len(missing)}/{len(names)} ({', '.join(missing[:5])})")
