"""The demo of README.md: a busybox container `demo` as lxc@demo.service under systemd.

    packaging/setup.sh demo        installs lxcsd, then runs this with lxcsd's venv python
    packaging/demo.py [--here] [--sandbox-only]

1. creates the container /var/lib/lxc/demo without network (`lxcsd create -t busybox` when
   this lxcsd has it, else a busybox rootfs and config written here, with the test suite's
   rootfs code);
2. `systemctl daemon-reload` (lxcsd-generator makes lxc@demo.service's drop-in);
3. `systemctl start lxc@demo.service`, which returns once the container's init runs;
4. prints `systemctl status lxc@demo` and `journalctl -u lxc@demo` (the helper's lines and
   the container's console).

On a host booted with systemd it does this with the host's systemd and leaves the container
running. Where PID 1 is not systemd (a build container, a CI job), it boots the test suite's
systemd sandbox (tests/infra/sandbox.py: a real systemd as PID 1 in namespaces), installs
lxcsd inside, runs the same steps there (`--here`) and tears the sandbox down.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAME = "demo"
LXCPATH = Path("/var/lib/lxc")
UNIT = f"lxc@{NAME}.service"
PREFIX = "/usr/local"
VENV_PYTHON = f"{PREFIX}/lib/lxcsd/venv/bin/python"
MARKER = "# Made by lxcsd's packaging/demo.py."
# A self-contained config (no includes: Debian's lxc package need not be installed).
CONFIG = f"""{MARKER} Remove with: systemctl stop {UNIT}; rm -r {LXCPATH / NAME}
lxc.uts.name = {NAME}
lxc.rootfs.path = dir:{LXCPATH / NAME / 'rootfs'}
lxc.net.0.type = empty
lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed
lxc.cap.drop = sys_module mac_admin mac_override sys_time sys_rawio
lxc.tty.max = 1
lxc.pty.max = 16
# busybox init halts on SIGUSR1 and reboots on SIGTERM (as LXC's busybox template says).
lxc.signal.halt = SIGUSR1
lxc.signal.reboot = SIGTERM
"""


# What `lxcsd create -f` starts the config from.
BASE = f"""{MARKER} Remove with: systemctl stop {UNIT}; rm -r {LXCPATH / NAME}
lxc.net.0.type = empty
"""


class DemoError(Exception):
    """Something the user has to fix; printed as one line."""


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def show(argv: list[str], check: bool = True) -> str:
    """Run a command the way a user would type it, printing it and its output."""
    print(f"\n$ {' '.join(argv)}", flush=True)
    r = subprocess.run(argv, capture_output=True, text=True,
                       env={**os.environ, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"})
    out = r.stdout + r.stderr
    print(out.rstrip("\n"), flush=True)
    if check and r.returncode != 0:
        raise DemoError(f"`{' '.join(argv)}` failed with exit status {r.returncode}")
    return out


def systemd_is_pid1() -> bool:
    """sd_booted(3): the host runs systemd as its init."""
    try:
        comm = Path("/proc/1/comm").read_text().strip()
    except OSError:
        return False
    return comm == "systemd" and os.path.isdir("/run/systemd/system")


# ------------------------------------------------------------------------------------------
# The steps, on whatever systemd runs this

def remove_old_demo() -> None:
    """A demo container from an earlier run is replaced; anything else named demo is not."""
    config = LXCPATH / NAME / "config"
    if not (LXCPATH / NAME).exists():
        return
    if not config.is_file() or MARKER not in config.read_text(errors="replace"):
        raise DemoError(f"{LXCPATH / NAME} exists and was not made by this demo; "
                        "remove it or run the demo elsewhere")
    subprocess.run(["systemctl", "stop", UNIT], capture_output=True)
    subprocess.run(["systemctl", "reset-failed", UNIT], capture_output=True)
    shutil.rmtree(LXCPATH / NAME)


def lxcsd_create_available() -> bool:
    lxcsd = f"{PREFIX}/bin/lxcsd"
    if not os.access(lxcsd, os.X_OK):
        return False
    r = subprocess.run([lxcsd, "create", "--help"], capture_output=True, text=True)
    return r.returncode == 0 and "busybox" in r.stdout


def create() -> None:
    remove_old_demo()
    if lxcsd_create_available():
        # -f: the demo's own start of the config instead of /etc/lxc/default.conf, whose
        # network (a veth on lxcbr0) would make the demo depend on the host's bridges.
        fd, base = tempfile.mkstemp(prefix="lxcsd-demo-", suffix=".conf")
        try:
            os.write(fd, BASE.encode())
            os.close(fd)
            show([f"{PREFIX}/bin/lxcsd", "create", "-t", "busybox", "-f", base, NAME])
        finally:
            os.unlink(base)
        show(["cat", str(LXCPATH / NAME / "config")])
        return
    sys.path.insert(0, str(REPO))
    from tests.infra.rootfs import busybox_rootfs  # the test suite's busybox tree

    busybox_rootfs(LXCPATH / NAME / "rootfs", hostname=NAME)
    (LXCPATH / NAME / "config").write_text(CONFIG)
    say(f"created {LXCPATH / NAME}: a busybox root file system and this config:")
    print(CONFIG.rstrip("\n"))


def wait_for_console(timeout: float = 10.0) -> None:
    """The console's first line reaches the journal through lxcsd-console a moment after
    the start returned; wait for it so the journal printed next shows it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["journalctl", "-q", "-o", "cat", "-u", UNIT, "--no-pager"],
                           capture_output=True, text=True)
        if "sysinit" in r.stdout or "BusyBox" in r.stdout:
            return
        time.sleep(0.2)


def run_here(in_sandbox: bool) -> None:
    create()
    show(["systemctl", "daemon-reload"])
    show(["cat", f"/run/systemd/generator/{UNIT}.d/10-lxcsd.conf"], check=False)
    t0 = time.monotonic()
    show(["systemctl", "start", UNIT])
    say(f"`systemctl start` returned after {time.monotonic() - t0:.2f} s: the container's "
        "init runs (Type=notify)")
    wait_for_console()
    show(["systemctl", "status", "--no-pager", "-l", UNIT], check=False)
    show(["journalctl", "--no-pager", "-u", UNIT])
    if shutil.which("machinectl"):
        show(["machinectl", "list", "--no-pager"], check=False)
    if in_sandbox:
        show(["systemctl", "stop", UNIT])
        show(["journalctl", "--no-pager", "-n", "8", "-u", UNIT])
        return
    lxcsd = f"{PREFIX}/bin/lxcsd"
    print(f"""
demo: {UNIT} is running. Try:
  systemctl status {UNIT}          journalctl -fu {UNIT}
  {lxcsd} ls                     {lxcsd} attach {NAME} -- ps
  {lxcsd} console {NAME}         (Ctrl-a q leaves)
  systemctl stop {UNIT}            systemctl enable {UNIT}   (start at boot)
  remove it: systemctl stop {UNIT}; rm -r {LXCPATH / NAME}""")


# ------------------------------------------------------------------------------------------
# No systemd as PID 1: the same steps inside the test suite's systemd sandbox

def run_in_sandbox() -> None:
    comm = Path("/proc/1/comm").read_text().strip() if Path("/proc/1/comm").exists() else "?"
    say(f"PID 1 here is {comm!r}, not systemd: running the demo inside a systemd sandbox "
        "(a real systemd as PID 1 in its own namespaces, tests/infra/sandbox.py), then "
        "tearing it down.")
    if not os.access(VENV_PYTHON, os.X_OK):
        raise DemoError(f"{VENV_PYTHON} is missing: run packaging/setup.sh demo")
    sys.path.insert(0, str(REPO))
    from tests.infra.sandbox import Sandbox, SandboxCommandError

    t0 = time.monotonic()
    with Sandbox(hostname="lxcsd-demo") as sb:
        say(f"sandbox booted in {time.monotonic() - t0:.1f} s (systemd "
            f"{sb.run(['systemctl', '--version']).stdout.split()[1]}); installing lxcsd "
            "inside with packaging/install.sh")
        sb.install_lxcsd()
        try:
            r = sb.run([VENV_PYTHON, str(REPO / "packaging/demo.py"), "--here", "--in-sandbox"],
                       timeout=300)
            print(r.stdout, end="", flush=True)
        except SandboxCommandError as e:
            print(e.stdout or "", end="")
            print(e.stderr or "", end="", file=sys.stderr)
            raise DemoError("the demo failed inside the sandbox") from None
    say("sandbox stopped: nothing of it is left on this machine.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--here", action="store_true",
                    help="use the systemd that runs this machine (PID 1 must be systemd)")
    ap.add_argument("--sandbox-only", action="store_true",
                    help="use the systemd sandbox even when PID 1 is systemd")
    ap.add_argument("--in-sandbox", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("demo: needs root (it creates a container and starts a system service)",
              file=sys.stderr)
        return 1
    try:
        if args.here or (systemd_is_pid1() and not args.sandbox_only):
            if not systemd_is_pid1():
                raise DemoError("--here needs systemd as PID 1")
            run_here(args.in_sandbox)
        else:
            run_in_sandbox()
    except DemoError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
