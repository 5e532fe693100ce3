"""The part of the benchmark that runs inside the systemd sandbox: timing and inspection.

Run as ``/usr/bin/python3 -I -S bench/inside.py COMMAND ...`` through ``Sandbox.run`` (the
source tree is visible at the same path inside). Standard library only; prints one JSON
object on stdout. Timing happens here, next to the commands timed, so the cost of entering
the sandbox (nsenter, this interpreter's start-up) is never part of a figure.

Commands:
  time [--timeout S] -- CMD... [--- CMD...]   run the commands one after another (each must
                                              exit 0); wall time of each and of all
  par [--timeout S] -- CMD... [--- CMD...]    run all at once (each in its own thread);
                                              wall time until the last one returned
      (both: --cpu-fd N: a cgroup2 cpu.stat the benchmark opened: the CPU time spent by
      everything below it while the commands ran, and until 0.2 s after they returned;
      time: --until-inits PREFIX N: after the commands, wait until N container inits with a
      host name starting with PREFIX run, "all_running" the time that took from the start)
  find-init NAME [--timeout S]                poll until a container init (PID 1 of a child
                                              pid namespace) has host name NAME
  inits                                       every container init with its host name
  procs                                       every process: comm, cmdline, cgroup, NSpid, PSS
  boot NAME [--timeout S] -- CMD...           run CMD (a start), then time until the init
                                              named NAME answers `systemctl
                                              is-system-running` with running or degraded
"""

import ctypes
import json
import os
import subprocess
import sys
import threading
import time

CLONE_NEWUTS = 0x04000000
_libc = ctypes.CDLL(None, use_errno=True)


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def split_cmds(args):
    """["a", "b", "---", "c"] -> [["a", "b"], ["c"]]"""
    cmds, cur = [], []
    for a in args:
        if a == "---":
            if cur:
                cmds.append(cur)
            cur = []
        else:
            cur.append(a)
    if cur:
        cmds.append(cur)
    return cmds


def parse(argv):
    """Options before "--" (--timeout S, --cpu-fd N), the rest after it."""
    opts, rest, pos = {"timeout": 60.0, "cpu_fd": None, "until_inits": None}, [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest = argv[i + 1:]
            break
        if a == "--timeout":
            opts["timeout"] = float(argv[i + 1])
            i += 2
            continue
        if a == "--cpu-fd":
            opts["cpu_fd"] = int(argv[i + 1])
            i += 2
            continue
        if a == "--until-inits":
            opts["until_inits"] = (argv[i + 1], int(argv[i + 2]))
            i += 3
            continue
        pos.append(a)
        i += 1
    return opts, pos, rest


def run_one(cmd, timeout):
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
        rc, err = r.returncode, (r.stderr + r.stdout).decode(errors="replace")[-2000:]
    except subprocess.TimeoutExpired:
        rc, err = -999, f"timed out after {timeout} s"
    return time.perf_counter() - t0, rc, err


SETTLE = 0.2  # seconds after the commands returned that still count as their CPU time


def cpu_usec(fd):
    """usage_usec of a cgroup2 cpu.stat opened by the benchmark; None without one."""
    if fd is None:
        return None
    for line in os.pread(fd, 4096, 0).decode().splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1])
    return None


def cpu_fields(fd, before):
    """cpu_ms (until now) and cpu_settled_ms (until SETTLE seconds later)."""
    if before is None:
        return {}
    now = cpu_usec(fd)
    time.sleep(SETTLE)
    later = cpu_usec(fd)
    return {"cpu_ms": (now - before) / 1000, "cpu_settled_ms": (later - before) / 1000}


def cmd_time(argv):
    opts, _, rest = parse(argv)
    cpu0 = cpu_usec(opts["cpu_fd"])
    steps, t0 = [], time.perf_counter()
    for cmd in split_cmds(rest):
        dt, rc, err = run_one(cmd, opts["timeout"])
        steps.append(dt)
        if rc != 0:
            return out({"ok": False, "total": time.perf_counter() - t0, "steps": steps,
                        "failed": cmd, "rc": rc, "error": err})
    total = time.perf_counter() - t0
    extra = {}
    if opts["until_inits"]:
        prefix, count = opts["until_inits"]
        found = wait_inits(prefix, count, t0 + opts["timeout"])
        extra = {"all_running": time.perf_counter() - t0, "running": found}
    out({"ok": True, "total": total, "steps": steps, **extra,
         **cpu_fields(opts["cpu_fd"], cpu0)})


def cmd_par(argv):
    opts, _, rest = parse(argv)
    cmds = split_cmds(rest)
    results = [None] * len(cmds)

    def work(i):
        results[i] = run_one(cmds[i], opts["timeout"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cmds))]
    cpu0 = cpu_usec(opts["cpu_fd"])
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = time.perf_counter() - t0
    failed = [{"cmd": cmds[i], "rc": r[1], "error": r[2]}
              for i, r in enumerate(results) if r[1] != 0]
    out({"ok": not failed, "total": total, "n": len(cmds), "failed": failed[:10],
         "n_failed": len(failed), "slowest": max(r[0] for r in results) if results else 0,
         **cpu_fields(opts["cpu_fd"], cpu0)})


# -- containers -------------------------------------------------------------------------

def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def nspid(pid):
    for line in read(f"/proc/{pid}/status").splitlines():
        if line.startswith("NSpid:"):
            return line.split()[1:]
    return []


def hostname_of(pid):
    """The UTS host name of pid: setns in a forked child (os.setns is Python >= 3.12)."""
    try:
        fd = os.open(f"/proc/{pid}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            if _libc.setns(fd, CLONE_NEWUTS) == 0:
                os.write(w, os.uname().nodename.encode())
        finally:
            os._exit(0)
    os.close(w)
    os.close(fd)
    name = b""
    while True:
        chunk = os.read(r, 256)
        if not chunk:
            break
        name += chunk
    os.close(r)
    os.waitpid(child, 0)
    return name.decode() or None


def container_inits():
    """pids that are PID 1 of a pid namespace below ours."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and entry != "1":
            ids = nspid(entry)
            if len(ids) >= 2 and ids[-1] == "1":
                found.append(int(entry))
    return found


def find_init(name, timeout, interval=0.002):
    seen = {}
    deadline = time.monotonic() + timeout
    while True:
        for pid in container_inits():
            if pid not in seen or seen[pid] != name:
                seen[pid] = hostname_of(pid)
            if seen[pid] == name:
                return pid
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_inits(prefix, count, deadline):
    """Poll until `count` container inits have a host name starting with prefix (or the
    deadline); returns how many there were."""
    names = {}
    while True:
        pids = container_inits()
        for pid in pids:
            if pid not in names:
                names[pid] = hostname_of(pid) or ""
        found = sum(1 for pid in pids if names.get(pid, "").startswith(prefix))
        if found >= count or time.perf_counter() > deadline:
            return found
        time.sleep(0.05)


def cmd_find_init(argv):
    opts, pos, _ = parse(argv)
    t0 = time.perf_counter()
    pid = find_init(pos[0], opts["timeout"])
    out({"ok": pid is not None, "pid": pid, "waited": time.perf_counter() - t0,
         "comm": read(f"/proc/{pid}/comm").strip() if pid else None})


def cmd_inits(argv):
    res = []
    for pid in container_inits():
        res.append({"pid": pid, "hostname": hostname_of(pid),
                    "comm": read(f"/proc/{pid}/comm").strip(), "nspid": nspid(pid)})
    out({"ok": True, "inits": res})


def pss_kb(pid):
    for line in read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


def cmd_procs(argv):
    res = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = read(f"/proc/{entry}/stat")
        ppid = int(stat.rsplit(")", 1)[1].split()[1]) if ")" in stat else 0
        res.append({"pid": int(entry), "ppid": ppid,
                    "comm": read(f"/proc/{entry}/comm").strip(),
                    "cmdline": read(f"/proc/{entry}/cmdline").replace("\0", " ").strip(),
                    "cgroup": read(f"/proc/{entry}/cgroup").strip().split("::")[-1],
                    "nspid": nspid(entry), "pss_kb": pss_kb(entry)})
    out({"ok": True, "procs": res})


def system_state(pid, timeout):
    """`systemctl is-system-running --wait` in the mount namespace of the container's init."""
    r = subprocess.run(["nsenter", "-t", str(pid), "-m", "-p", "--", "systemctl",
                        "is-system-running", "--wait"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return r.stdout.decode().strip(), r.stderr.decode(errors="replace").strip()


def cmd_boot(argv):
    opts, pos, rest = parse(argv)
    name, timeout = pos[0], opts["timeout"]
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    times = {}
    for cmd in split_cmds(rest):
        dt, rc, err = run_one(cmd, timeout)
        if rc != 0:
            return out({"ok": False, "failed": cmd, "rc": rc, "error": err})
    times["start_returned"] = time.perf_counter() - t0
    pid = find_init(name, timeout)
    if pid is None:
        return out({"ok": False, "error": f"no container init named {name}", **times})
    times["init_found"] = time.perf_counter() - t0
    sock = f"/proc/{pid}/root/run/systemd/private"
    while not os.path.exists(sock):
        if time.monotonic() > deadline or not os.path.exists(f"/proc/{pid}"):
            return out({"ok": False, "error": "the container's systemd never listened", **times})
        time.sleep(0.002)
    times["pid1_listening"] = time.perf_counter() - t0
    state, err = "", ""
    while time.monotonic() < deadline:
        state, err = system_state(pid, max(1.0, deadline - time.monotonic()))
        if state in ("running", "degraded"):
            break
        if state in ("maintenance", "stopping", "offline"):
            break
        time.sleep(0.005)  # "Failed to connect to bus" early on: try again
    times["system_running"] = time.perf_counter() - t0
    ok = state in ("running", "degraded")
    failed = ""
    if state == "degraded":
        r = subprocess.run(["nsenter", "-t", str(pid), "-m", "-p", "--", "systemctl",
                            "--failed", "--plain", "--no-legend"], capture_output=True)
        failed = r.stdout.decode(errors="replace")
    out({"ok": ok, "state": state, "error": err if not ok else "", "failed_units": failed,
         "pid": pid, **times})


COMMANDS = {"time": cmd_time, "par": cmd_par, "find-init": cmd_find_init,
            "inits": cmd_inits, "procs": cmd_procs, "boot": cmd_boot}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write(__doc__)
        return 2
    COMMANDS[sys.argv[1]](sys.argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
