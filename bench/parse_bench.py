#!/usr/bin/python3
"""Config parse rate: how fast lxcsd.config reads containers, as the boot generator does.

    /usr/bin/python3 bench/parse_bench.py [--quick] [--containers N]

Writes N container configs shaped like lxc-download's (including LXC's common.conf, as
nearly every container does) into a temporary lxcpath, then measures:

- in one process, loading each config once (``load_path``), with the include cache warm
  (common.conf parsed once, as in the generator) and cold (cache cleared before each load);
- a config without includes;
- the import of ``lxcsd.config.load`` in a new ``/usr/bin/python3 -I -S`` (as the generator
  starts), next to the bare interpreter;
- a new process that discovers and loads 100 and N containers: the generator's config
  work end to end, next to Podman quadlet's figures in docs/design.md (11 ms for 100
  units, 82 ms for 1000, interpreter start included).

Prints a markdown table, then the figures as one JSON line (bench/parse.py keeps it).
Times are the best of several rounds (the machine is shared; the best is the least
disturbed), µs per config unless stated.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lxcsd.config import build, reader  # noqa: E402
from lxcsd.config.load import load_path  # noqa: E402

PYTHON = "/usr/bin/python3"
COMMON = "/usr/share/lxc/config/common.conf"
QUADLET_MS = {100: 11.0, 1000: 82.0}  # docs/design.md

TYPICAL = """\
# Template used to create this container: /usr/share/lxc/templates/lxc-download
# Parameters passed to the template: --dist debian --release bookworm --arch amd64
# For additional config options, please look at lxc.container.conf(5)

# Uncomment the following line to support nesting containers:
#lxc.include = /usr/share/lxc/config/nesting.conf
# (Be aware this has security implications)


# Distribution configuration
lxc.include = {common}
lxc.arch = linux64

# Container specific configuration
lxc.apparmor.profile = generated
lxc.apparmor.allow_nesting = 1
lxc.rootfs.path = dir:{lxcpath}/{name}/rootfs
lxc.uts.name = {name}
lxc.start.auto = 1

# Network configuration
lxc.net.0.type = veth
lxc.net.0.link = lxcbr0
lxc.net.0.flags = up
lxc.net.0.hwaddr = 00:16:3e:{a:02x}:{b:02x}:{c:02x}
"""

STANDALONE = """\
lxc.uts.name = {name}
lxc.rootfs.path = dir:{lxcpath}/{name}/rootfs
lxc.mount.auto = proc:mixed sys:ro cgroup:mixed
lxc.cap.drop = sys_module mac_admin mac_override sys_time
lxc.net.0.type = empty
lxc.signal.halt = SIGRTMIN+3
"""


def write_containers(lxcpath: str, count: int, template: str, prefix: str) -> list[str]:
    paths = []
    for n in range(count):
        name = f"{prefix}{n:05d}"
        os.makedirs(os.path.join(lxcpath, name))
        path = os.path.join(lxcpath, name, "config")
        with open(path, "w") as handle:
            handle.write(template.format(common=COMMON, lxcpath=lxcpath, name=name,
                                         a=n >> 16 & 255, b=n >> 8 & 255, c=n & 255))
        paths.append(path)
    return paths


def clear_caches() -> None:
    reader.clear_cache()
    build._PATCHES.clear()


def per_config_us(paths: list[str], rounds: int, cold: bool) -> list[float]:
    """µs per load_path over ``paths``, one figure per round."""
    results = []
    load_path(paths[0])  # warm the code paths (and, unless cold, the include cache)
    for _ in range(rounds):
        start = time.perf_counter()
        for path in paths:
            if cold:
                clear_caches()
            load_path(path)
        results.append((time.perf_counter() - start) * 1e6 / len(paths))
    return results


def run_ms(argv: list[str], rounds: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall time of a command, in ms, per round."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1e3)
    return times


GENERATOR_LIKE = f"""\
import sys; sys.path.insert(0, {ROOT!r})
from lxcsd.config.load import discover, load_path
for name, path in discover():
    load_path(path, name)
"""


def generator_like_ms(lxcpath: str, rounds: int) -> list[float]:
    env = {"LXCSD_LXCPATH": lxcpath, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return run_ms([PYTHON, "-I", "-S", "-c", GENERATOR_LIKE], rounds, env)


def summary(values: list[float]) -> dict[str, float]:
    return {"best": min(values), "median": statistics.median(values)}


def measure(count: int, rounds: int, workdir: str) -> dict[str, object]:
    lxcpath = os.path.join(workdir, "lxc")
    typical = write_containers(lxcpath, count, TYPICAL, "c")
    standalone = write_containers(os.path.join(workdir, "plain"), min(count, 200),
                                  STANDALONE, "p")
    small = os.path.join(workdir, "lxc100")
    os.makedirs(small)
    for name in sorted(os.listdir(lxcpath))[:100]:
        os.symlink(os.path.join(lxcpath, name), os.path.join(small, name))
    base = f"import sys; sys.path.insert(0, {ROOT!r})"
    results: dict[str, object] = {
        "containers": count,
        "warm_us": summary(per_config_us(typical, rounds, cold=False)),
        "cold_us": summary(per_config_us(typical[: min(count, 300)], rounds, cold=True)),
        "standalone_us": summary(per_config_us(standalone, rounds, cold=False)),
        "python_ms": summary(run_ms([PYTHON, "-I", "-S", "-c", base], rounds * 3)),
        "import_ms": summary(run_ms([PYTHON, "-I", "-S", "-c",
                                     base + "; import lxcsd.config.load"], rounds * 3)),
        "process_100_ms": summary(generator_like_ms(small, rounds * 2)),
        f"process_{count}_ms": summary(generator_like_ms(lxcpath, rounds)),
    }
    return results


def table(r: dict) -> str:
    count = r["containers"]

    def us(key: str) -> str:
        best = r[key]["best"]
        return f"{best:.1f} µs ({1e6 / best:,.0f} configs/s; median {r[key]['median']:.1f})"

    def ms(key: str, extra: str = "") -> str:
        return f"{r[key]['best']:.1f} ms (median {r[key]['median']:.1f}){extra}"

    import_ms = r["import_ms"]["best"] - r["python_ms"]["best"]
    rows = [
        ("typical config with includes, include cache warm", us("warm_us")),
        ("same, include cache cleared before each load", us("cold_us")),
        ("config without includes", us("standalone_us")),
        ("`/usr/bin/python3 -I -S` start", ms("python_ms")),
        ("…plus `import lxcsd.config.load`", ms("import_ms", f"; import {import_ms:.1f} ms")),
        ("new process: discover + load 100 containers",
         ms("process_100_ms", f"; quadlet: {QUADLET_MS[100]:.0f} ms for 100 units")),
        (f"new process: discover + load {count} containers",
         ms(f"process_{count}_ms",
            f"; quadlet: {QUADLET_MS[1000]:.0f} ms for 1000 units" if count == 1000 else "")),
    ]
    lines = ["| measurement | result |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not os.path.exists(COMMON):
        print(f"{COMMON} is missing: install Debian's lxc package", file=sys.stderr)
        return 1
    quick = "--quick" in argv
    count = 1000
    if "--containers" in argv:
        count = int(argv[argv.index("--containers") + 1])
    rounds = 2 if quick else 5
    workdir = tempfile.mkdtemp(prefix="lxcsd-parse-bench.")
    try:
        results = measure(count, rounds, workdir)
    finally:
        shutil.rmtree(workdir)
    print(f"Config parse rate, {count} lxc-download-shaped containers including "
          f"{COMMON}; best of {rounds} rounds, Python {sys.version.split()[0]}\n")
    print(table(results))
    print()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
