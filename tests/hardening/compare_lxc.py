"""The hardening probes under lxcsd and under LXC, on the same configs: the table of
docs/hardening.md (issue 15's closing note).

    /usr/local/lib/lxcsd/venv/bin/python -m tests.hardening.compare_lxc   (as root)

For each runtime and privileged/unprivileged, a busybox container with the hostile probe
(tests/probe/hostile.c), whose root runs every probe class once: lxcsd (lxcsd-helper start
in scratch cgroups as the tier's tests do, lxcsd attach), LXC with the same config
(lxc-start, lxc-attach), and LXC with lxc-create's includes (common.conf: its capability
drops and common.seccomp; userns.conf for unprivileged). Prints a Markdown table of
open/closed per class; the probes' raw lines go to stderr.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from lxcsd.runtime import cgroup
from tests.hardening import hardening_util as hb
from tests.infra import helper_util as hu
from tests.infra import v1cgroups

CLASSES: list[tuple[str, Callable[[hb.Box, Path], hb.Result]]] = [
    ("capabilities reaching the host kernel", lambda b, m: b.probe("caps")),
    ("cgroup v1: host release_agent, siblings, new hierarchy", lambda b, m: b.probe("cgroup1")),
    ("fresh proc/sysfs: host core_pattern, sysfs", lambda b, m: b.probe("procsys")),
    ("bind source symlinked to / by the container", hb.bind_source),
    ("attach hijack (CVE-2019-5736 class)", lambda b, m: hb.attach_hijack(b, ATTACH_TRIES)),
    ("TIOCSTI into the caller's terminal", lambda b, m: _tiocsti_verdict(b)),
]
ATTACH_TRIES = 60  # the watcher races each attach's window before its exec
COLUMNS = [("lxcsd", True), ("lxcsd", False), ("lxc", True), ("lxc", False),
           ("lxc+common", True), ("lxc+common", False)]


def _tiocsti_verdict(box: hb.Box) -> hb.Result:
    result, typed = hb.tiocsti(box)
    verdict = "open" if b"#hostile-typed" in typed else "closed"
    return hb.Result("tiocsti", subprocess.CompletedProcess([], result.returncode,
                                                            f"tiocsti {verdict}\n", ""))


def run_column(runtime: str, privileged: bool, hostile: Path, marker: Path,
               scratch: tuple[hu.Lxcpath, str] | None, lxc_base: Path) -> list[str]:
    verdicts = []
    for index, (label, run) in enumerate(CLASSES):
        name = f"h{index}{'p' if privileged else 'u'}"
        box: hb.Box
        if runtime == "lxcsd":
            assert scratch is not None
            box = hb.make_box(scratch[0], scratch[1], name, hostile, privileged=privileged)
        else:
            box = hb.make_lxc_box(lxc_base / runtime, name, hostile, privileged=privileged,
                                  include_common=runtime == "lxc+common")
        try:
            result = run(box, marker)
            verdict = result.verdict + (_catches(result) if result.cls == "watch" else "")
            text = result.stdout + result.stderr
        except (subprocess.CalledProcessError, AssertionError) as exc:
            verdict, text = "closed (start refused)", f"{exc}\n{_lxc_errors(box)}"
        finally:
            box.stop()
        print(f"--- {runtime} {'privileged' if privileged else 'unprivileged'}: {label}\n"
              f"{text}", file=sys.stderr)
        verdicts.append(verdict)
    return verdicts


def _catches(result: hb.Result) -> str:
    """How many attach processes the watcher caught before their exec, and how many of
    those it could have taken over (a host file writable or reachable, or traceable while
    holding more than the container)."""
    early = [line for line in result.lines if line.startswith("watch pid=")
             and ("exe=/memfd:" in line or "exe=/usr/" in line)]
    bad = [line for line in early if "exe_host=1" in line or "writable_host=0" not in line
           or ("ptrace=ok" in line and "richer=1" in line)]
    return f" ({len(bad)} of {len(early)} caught before exec{' exploitable' if bad else ''})"


def _lxc_errors(box: hb.Box) -> str:
    if not isinstance(box, hb.LxcBox):
        return ""
    try:
        log = (box.base / f"{box.name}.log").read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(line for line in log.splitlines() if " ERROR " in line)


def main() -> int:
    if os.geteuid() != 0:
        print("compare_lxc: run as root", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="lxcsd-hardening-", dir="/var/tmp"))
    work.chmod(0o755)
    hostile = hb.build_hostile(work)
    marker = work / f"host-marker-{secrets.token_hex(4)}"
    marker.write_text("on the host\n")
    for runtime in ("lxc", "lxc+common"):
        (work / runtime).mkdir()
    name = f"lxcsd-helper-{uuid.uuid4().hex[:10]}"
    unit = os.path.join(cgroup.own_cgroup_dir(), name)
    os.mkdir(unit)
    v1 = v1cgroups.make(name)
    lxcpath = hu.Lxcpath(None)
    table: dict[tuple[str, bool], list[str]] = {}
    try:
        for runtime, privileged in COLUMNS:
            table[(runtime, privileged)] = run_column(runtime, privileged, hostile, marker,
                                                      (lxcpath, unit), work)
    finally:
        lxcpath.remove()
        _remove_scratch(unit, v1)
        shutil.rmtree(work, ignore_errors=True)
    print(render(table))
    return 0


def _remove_scratch(unit: str, v1: list[Path]) -> None:
    cgroup.kill_all(unit)
    for _ in range(200):
        hu.reap_orphans()
        try:
            cgroup.remove(unit)
            break
        except Exception:  # noqa: BLE001 - killed processes leave asynchronously
            time.sleep(0.05)
    v1cgroups.remove(v1)


def render(table: dict[tuple[str, bool], list[str]]) -> str:
    head = "| class | " + " | ".join(
        f"{runtime} {'priv' if privileged else 'unpriv'}" for runtime, privileged in COLUMNS)
    lines = [head + " |", "| --- |" + " --- |" * len(COLUMNS)]
    for index, (label, _) in enumerate(CLASSES):
        cells = [table[column][index] for column in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
