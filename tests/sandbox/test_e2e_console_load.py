"""Console output under load and faults, with real lxc@NAME.service containers and the real
journald (systemd 252 in the sandbox): lxcsd loses no line.

- 20 busybox containers print 100 lines each at once: all 2000 are in their units' journals.
- 5 containers flood their consoles for 10 s while journald is restarted and lxcsd-console
  SIGKILLed: every line written is in the container's journal (journald's rate limit is
  raised for them: journald forgets what it suppressed when it restarts), in order, none
  lost; lxcsd-console's memory afterwards is what it was (PSS reported).
- journald's own rate limit, per container: what it drops it reports against the
  container's unit ("Suppressed N messages from lxc@NAME.service", N_DROPPED=), and lines
  in the journal + N_DROPPED = lines written.

Each container's init is a shell script (FLOOD) that numbers its lines and says at the end
how many it wrote, so the test compares against what the container wrote, not against an
expectation.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.infra import e2e_util as u
from tests.infra.sandbox import Sandbox

# /flood.sh lines N | seconds S: numbered lines, then "flood NAME done COUNT"; then waits
# for the halt signal (SIGUSR1, lxc.signal.halt in e2e_util.BUSYBOX_LINES).
FLOOD = r"""
mode=$1; n=$2; name=$(hostname); i=0
pad="some console text of a realistic length, as services print at boot"
if [ "$mode" = lines ]; then
    while [ $i -lt $n ]; do echo "flood $name $i $pad"; i=$((i+1)); done
else
    end=$(($(date +%s) + n))
    while :; do
        echo "flood $name $i $pad"; i=$((i+1))
        if [ $((i % 200)) -eq 0 ] && [ $(date +%s) -ge $end ]; then break; fi
    done
fi
echo "flood $name done $i"
trap 'exit 0' USR1
while :; do sleep 1; done
"""
# journald multiplies a burst by up to ~6 for free disk space; this stays below 2^32 then.
NO_SUPPRESSION = "[Service]\nLogRateLimitIntervalSec=1s\nLogRateLimitBurst=100000000\n"


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Sandbox:
    clean_lxcsd_sandbox.systemctl("start", "lxcsd-console.socket", "lxcsd-console.service")
    return clean_lxcsd_sandbox


def make_flooders(sb: Sandbox, names: list[str], mode: str, amount: int,
                  dropin: str = "") -> None:
    for name in names:
        u.make_busybox(sb, name, [f"lxc.init.cmd = /bin/sh /flood.sh {mode} {amount}"])
        sb.write_file(f"{u.LXCPATH}/{name}/rootfs/flood.sh", FLOOD, 0o755)
        if dropin:
            sb.write_file(f"/etc/systemd/system/lxc@{name}.service.d/test.conf", dropin)
    sb.systemctl("daemon-reload")


def entries(sb: Sandbox, name: str) -> list[dict[str, str]]:
    out = sb.run(["journalctl", "--no-pager", "-o", "json", "-u", u.unit(name)],
                 timeout=300).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


class Flood:
    """What the journal of container `name` holds of its flood."""

    def __init__(self, sb: Sandbox, name: str) -> None:
        self.numbers: list[int] = []
        self.written = -1  # from "flood NAME done COUNT"
        self.suppressed = 0  # journald's N_DROPPED for the unit
        self.units: set[str] = set()
        for e in entries(sb, name):
            words = str(e.get("MESSAGE", "")).split()
            if words[:2] == ["flood", name] and len(words) > 2:
                self.units.add(e.get("_SYSTEMD_UNIT", ""))
                if words[2] == "done":
                    self.written = int(words[3])
                else:
                    self.numbers.append(int(words[2]))
            elif "N_DROPPED" in e:
                self.suppressed += int(e["N_DROPPED"])

    @property
    def missing(self) -> int:
        return self.written - len(set(self.numbers))

    @property
    def repeated(self) -> int:
        return len(self.numbers) - len(set(self.numbers))

    def gaps(self) -> list[tuple[int, int]]:
        """Runs of missing line numbers, (first, last)."""
        have = set(self.numbers)
        runs: list[tuple[int, int]] = []
        for n in range(self.written):
            if n not in have:
                if runs and runs[-1][1] == n - 1:
                    runs[-1] = (runs[-1][0], n)
                else:
                    runs.append((n, n))
        return runs


def wait_done(sb: Sandbox, names: list[str], timeout: float) -> dict[str, Flood]:
    floods: dict[str, Flood] = {}

    def done() -> bool:
        floods.update((n, Flood(sb, n)) for n in names if n not in floods
                      or floods[n].written < 0)
        return all(f.written >= 0 for f in floods.values())

    u.wait_for(done, timeout, "every container's last flood line in its journal")
    return floods


def console_pid(sb: Sandbox) -> int:
    return int(u.prop(sb, "lxcsd-console.service", "MainPID"))


def pss_kb(sb: Sandbox) -> int:
    rollup = sb.run(["cat", f"/proc/{console_pid(sb)}/smaps_rollup"]).stdout
    return int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")))


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


def test_20_containers_100_lines_each_at_once(sb: Sandbox,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    names = [f"burst{i}" for i in range(20)]
    make_flooders(sb, names, "lines", 100)
    sb.run(["systemctl", "start", *(u.unit(n) for n in names)], timeout=300)
    floods = wait_done(sb, names, 120)
    for name, f in floods.items():
        assert (f.written, sorted(f.numbers)) == (100, list(range(100))), name
        assert f.units == {u.unit(name)}  # filed under the container's own unit
    report(capsys, "20 containers x 100 lines: written 2000, in the journal "
           f"{sum(len(f.numbers) for f in floods.values())}")


def test_flood_with_journald_restarted_and_the_console_service_killed(
        sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    names = [f"flood{i}" for i in range(5)]
    make_flooders(sb, names, "seconds", 10, NO_SUPPRESSION)
    before = pss_kb(sb)
    faults = threading.Thread(target=inflict, args=(sb,))
    sb.run(["systemctl", "start", *(u.unit(n) for n in names)], timeout=300)
    faults.start()
    faults.join()
    floods = wait_done(sb, names, 300)
    time.sleep(2)
    after = pss_kb(sb)
    lines = [f"  {n}: written {f.written}, in the journal {len(set(f.numbers))}, missing "
             f"{f.missing} {f.gaps()[:5] if f.missing else ''}, repeated {f.repeated}"
             for n, f in floods.items()]
    report(capsys, "5 containers flooding 10 s, journald restarted, lxcsd-console SIGKILLed:\n"
           + "\n".join(lines) + f"\n  lxcsd-console PSS before {before} kB, after {after} kB")
    for name, f in floods.items():
        assert f.written > 1000, name  # it really flooded
        assert f.missing == 0, name
        assert f.numbers == sorted(f.numbers), name  # in order
        assert f.repeated <= 1, name  # the line being sent when SIGKILL came, at most
    assert after < before + 2048  # rings are 16 KiB each; nothing piles up


def inflict(sb: Sandbox) -> None:
    """During the flood: SIGKILL lxcsd-console at 3 s, restart journald at 6 s."""
    time.sleep(3)
    killed = console_pid(sb)
    sb.systemctl("kill", "--signal=SIGKILL", "lxcsd-console.service")
    u.wait_for(lambda: console_pid(sb) not in (0, killed), 30, "lxcsd-console back")
    time.sleep(3)
    sb.systemctl("restart", "systemd-journald.service")


def test_journald_suppresses_per_container_and_says_so(
        sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """A unit's rate limit (LogRateLimitIntervalSec=/LogRateLimitBurst=) applies to its
    console; journald reports its drops once the interval is over and the unit logs again
    (the container's last line, after a pause)."""
    names = ["noisy", "quiet"]
    make_flooders(sb, ["noisy"], "lines", 20000,
                  "[Service]\nLogRateLimitIntervalSec=2s\nLogRateLimitBurst=100\n")
    make_flooders(sb, ["quiet"], "lines", 300)
    # After the helper's own lines (the same unit's limit), and the last line once the
    # interval is over: journald reports the drops then.
    sb.write_file(f"{u.LXCPATH}/noisy/rootfs/flood.sh",
                  "sleep 1\n" + FLOOD.replace('echo "flood $name done $i"',
                                              'sleep 3; echo "flood $name done $i"'), 0o755)
    sb.run(["systemctl", "start", *(u.unit(n) for n in names)], timeout=300)
    floods = wait_done(sb, names, 300)
    noisy, quiet = floods["noisy"], floods["quiet"]
    report(capsys, f"rate limit 100 per 2 s: written {noisy.written}, in the journal "
           f"{len(noisy.numbers)}, suppressed by journald {noisy.suppressed}")
    assert noisy.suppressed > 0
    assert len(noisy.numbers) + noisy.suppressed == noisy.written
    assert (quiet.missing, quiet.suppressed) == (0, 0)  # another unit, another limit

