#!/usr/bin/python3
"""Check the harness's lxcsd runner before lxcsd's start path exists: a stand-in "lxcsd".

    bench/selftest.py [BENCHMARK ...]     (default: startstop memory density boot generator
                                           profile, each in --quick size)

Instead of installing lxcsd, the sandbox gets a stand-in at lxcsd's installed paths that
keeps lxcsd's contract with the same tools LXC has: `lxcsd-helper start NAME` runs
`lxc-start -F` for NAME, waits for RUNNING, hands its pid over as MAINPID=, sends READY=1 and
waits on BARRIER=1; `stop NAME PID` runs lxc-stop; the generator writes one drop-in per
container found in LXCSD_LXCPATH. Its figures mean nothing about lxcsd; they are printed, never
saved (bench/results/ is not touched: profiles go to bench/results/raw/selftest-profile/).
What it shows is that every lxcsd code path of the harness runs: availability probe, start,
stop, checks, memory attribution, density, boot, generator, profile drop-ins.
"""

from __future__ import annotations

import json
import os
import sys

if __package__ in (None, ""):
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(
        os.path.abspath(__file__))]
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import boot, density, generator, memory, profiling, startstop  # noqa: E402
from bench.harness import RAW, Bench, log  # noqa: E402
from bench.options import Options  # noqa: E402
from bench.runners import LXCSD_GENERATOR, LXCSD_HELPER  # noqa: E402
from tests.infra.sandbox import REPO_ROOT  # noqa: E402

FAKE_HELPER = r'''#!/usr/bin/python3
# lxcsd-bench selftest: a stand-in for lxcsd-helper built on LXC. NOT lxcsd.
import os, select, socket, subprocess, sys

def notify(msg, fds=()):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(addr)
    socket.send_fds(s, [msg.encode()], list(fds))

def barrier():
    r, w = os.pipe()
    notify("BARRIER=1", [w])
    os.close(w)
    select.select([r], [], [], 10)

cmd, name = sys.argv[1], sys.argv[2]
if cmd == "start":
    p = subprocess.Popen(["lxc-start", "-F", "-n", name, "-o", f"/run/fake-lxcsd-{name}.log"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    if subprocess.run(["lxc-wait", "-n", name, "-s", "RUNNING", "-t", "30"]).returncode:
        p.kill()
        sys.exit(1)
    notify(f"MAINPID={p.pid}\nREADY=1\nSTATUS=stand-in running {name}\n")
    barrier()
elif cmd == "stop":
    sys.exit(subprocess.run(["lxc-stop", "-n", name]).returncode)
'''

FAKE_GENERATOR = r'''#!/usr/bin/python3
# lxcsd-bench selftest: a stand-in for lxcsd-generator. NOT lxcsd.
import os, sys
normal = sys.argv[1]
for base in os.environ.get("LXCSD_LXCPATH", "/var/lib/lxc").split(":"):
    try:
        names = os.listdir(base)
    except OSError:
        continue
    for name in names:
        if os.path.isfile(os.path.join(base, name, "config")):
            d = os.path.join(normal, f"lxc@{name}.service.d")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "50-standin.conf"), "w") as f:
                f.write(f"[Unit]\nDescription=stand-in lxcsd container {name}\n")
'''


class StandInBench(Bench):
    """A Bench whose "lxcsd" is the stand-in above."""

    def _install_lxcsd(self) -> None:
        self.write(LXCSD_HELPER, FAKE_HELPER, 0o755)
        self.write(LXCSD_GENERATOR, FAKE_GENERATOR, 0o755)
        unit = (REPO_ROOT / "units/lxc@.service.in").read_text().replace(
            "@LIBEXECDIR@", os.path.dirname(LXCSD_HELPER))
        self.write("/usr/local/lib/systemd/system/lxc@.service", unit)
        self.daemon_reload()


MODULES = {"startstop": startstop, "memory": memory, "density": density, "boot": boot,
           "generator": generator, "profile": profiling}


def lxcsd_part(name: str, data: dict) -> object:
    if name == "generator":
        return {"lxcsd": data["lxcsd"], **{n: {k: v["time"].get("median") for k, v in d.items()}
                                         for n, d in data["by_n"].items()}}
    if name == "profile":
        return {k: v for k, v in data.items() if k != "files"}
    r = data["runners"]["lxcsd"]
    return {k: v for k, v in r.items() if k not in ("samples", "rounds")}


def main(argv: list[str]) -> int:
    names = argv or list(MODULES)
    profiling.PROFILE_DIR = RAW / "selftest-profile"
    failed = []
    for name in names:
        log(f"selftest: {name}")
        if hasattr(MODULES[name], "prepare"):
            MODULES[name].prepare(Options(quick=True))
        with StandInBench() as b:
            data = MODULES[name].run(b, Options(quick=True))
        part = lxcsd_part(name, data)
        ok = (data.get("available") if name == "profile" else
              data["lxcsd"]["available"] if name == "generator" else
              data["runners"]["lxcsd"]["available"])
        print(f"--- {name}: stand-in lxcsd {'measured' if ok else 'NOT measured'}")
        print(json.dumps(part, indent=1, default=str)[:3000])
        if not ok:
            failed.append(name)
    print(f"selftest: {len(names) - len(failed)} passed, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
