"""bench/results/README.md and the PNG plots, from bench/results/data/*.json.

    python -m bench.report      (bench/run.py calls it after measuring)

Plots need matplotlib; without it the tables are still written.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.harness import BENCH_DIR, RESULTS, load_all

PENDING = "pending"
ANALYSIS = RESULTS / "analysis.md"  # hand-written notes on the profiles, shown under them


def ms(s: dict | None, spread: bool = True) -> str:
    if not s or not s.get("n"):
        return "–"
    med = s["median"]
    text = f"{med:.1f} ms" if med < 100 else f"{med:.0f} ms"
    if spread:
        text += f" ({s['min']:.1f}–{s['max']:.1f})" if med < 100 else \
            f" ({s['min']:.0f}–{s['max']:.0f})"
    return text


def mb(kb: float | None) -> str:
    return "–" if kb is None else f"{kb / 1024:.2f} MB"


def ratio_text(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None or not b else f"{a / b:.2f}×"


def med(s: dict | None) -> float | None:
    return s["median"] if s and s.get("n") else None


def reason_of(d: dict | None, key: str = "lxcsd") -> str:
    if not d:
        return "not measured"
    if "error" in d:
        return f"benchmark failed: {d['error'][:200]}"
    r = d.get("runners", {}).get(key, {})
    return r.get("reason") or ("no successful run" if not r.get("available") else "")


# ----------------------------------------------------------------------------------------
# aims

def aim_rows(data: dict, reasons: set[str]) -> list[list[str]]:
    """The aims table; reasons collects why lxcsd figures are pending."""
    rows = []

    def row(aim: str, lx: float | None, inc: float | None, fmt: Callable[[float], str],
            why: str, lower_better: bool = True) -> None:
        if lx is None or inc is None:
            rows.append([aim, PENDING if lx is None else fmt(lx),
                         "–" if inc is None else fmt(inc), "–",
                         PENDING if lx is None else "incumbent not measured"])
            reasons.add(why)
            return
        met = lx <= inc if lower_better else lx >= inc
        rows.append([aim, fmt(lx), fmt(inc), f"{lx / inc:.2f}×" if inc else "–",
                     "**met**" if met else "**not met**"])

    def f_ms(v: float) -> str:
        return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"

    ss = data.get("startstop")
    rs = (ss or {}).get("runners", {})
    lx, lc = rs.get("lxcsd", {}), rs.get("lxc", {})
    why = reason_of(ss)
    row("start → READY ≤ `lxc-start -d` + `lxc-wait` (busybox, median)",
        med(lx.get("start")), med(lc.get("start")), f_ms, why)
    row("stop ≤ `lxc-stop` (busybox, median)", med(lx.get("stop")), med(lc.get("stop")),
        f_ms, why)
    row("↳ same, init that exits at once (manager overhead only)",
        med(lx.get("stop_prompt")), med(lc.get("stop_prompt")), f_ms, why)
    gen = data.get("generator")
    for n in ("100", "1000"):
        g = (gen or {}).get("by_n", {}).get(n, {})
        why = (gen or {}).get("lxcsd", {}).get("reason") or (
            "not measured" if not gen else "error" if "error" in gen else
            f"generator: {n} containers not measured in a quick pass" if gen.get("quick")
            and n not in gen.get("by_n", {}) else f"generator: no sample for {n}")
        row(f"generator ≤ quadlet, {n} containers", med(g.get("lxcsd", {}).get("time")),
            med(g.get("quadlet", {}).get("time")), f_ms, why)
    mem = data.get("memory")
    if mem and "counts" in mem:
        # The aim is stated for 20 running containers; a quick pass has fewer.
        n = "20" if 20 in mem["counts"] else str(max(mem["counts"]))
        mr = mem["runners"]
        a = mr.get("lxcsd", {}).get("by_n", {}).get(n, {}).get("supervisor_kb_per_container")
        b = mr.get("lxc", {}).get("by_n", {}).get(n, {}).get("supervisor_kb_per_container")
        row(f"host memory per running container ≤ LXC monitor's ({n} containers, PSS)",
            a, b, lambda v: f"{v / 1024:.2f} MB", reason_of(mem))
    else:
        row("host memory per running container ≤ LXC monitor's", None, None, str,
            reason_of(mem))
    bt = data.get("boot")
    br = (bt or {}).get("runners", {})
    row("Debian boot to running ≤ LXC's (median)", med(br.get("lxcsd", {}).get("running")),
        med(br.get("lxc", {}).get("running")), f_ms, reason_of(bt))
    de = data.get("density")
    dl = (de or {}).get("runners", {}).get("lxcsd", {})
    n = (de or {}).get("n", 100)
    if dl.get("available"):
        ok = dl["all_running"] and dl["all_stopped_clean"]
        lxc_start = med(de["runners"].get("lxc", {}).get("start"))
        rows.append([f"{n} concurrent containers all running, all stopped cleanly",
                     f"{dl['min_running']}/{n} running, start {ms(dl['start'], False)}",
                     f"LXC start {f_ms(lxc_start) if lxc_start else '–'}",
                     ratio_text(med(dl["start"]), lxc_start),
                     "**met**" if ok else "**not met**"])
    else:
        dx = (de or {}).get("runners", {}).get("lxc", {})
        inc = (f"LXC: {dx['min_running']}/{n} running, start {ms(dx['start'], False)}"
               if dx.get("available") else "–")
        rows.append([f"{n} concurrent containers all running, all stopped cleanly", PENDING,
                     inc, "–", PENDING])
        reasons.add(reason_of(de))
    return rows


# ----------------------------------------------------------------------------------------
# sections

def table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |"
            for r in rows]
    return "\n".join(out)


def runner_label(r: dict, key: str) -> str:
    return r.get("label", key)


def unavailable_cell(r: dict) -> str:
    return f"not available: {r.get('reason') or 'no successful run'}"


def sec_startstop(d: dict) -> str:
    if "error" in d:
        return f"Failed: `{d['error']}`"
    rs = d["runners"]
    base = med(rs.get("lxc", {}).get("start"))
    rows = []
    for key in d["order"]:
        r = rs[key]
        if not r.get("available"):
            rows.append([runner_label(r, key), unavailable_cell(r), "", "", "", ""])
            continue
        rows.append([runner_label(r, key), ms(r["start"]), ratio_text(med(r["start"]), base),
                     ms(r["stop"]), ms(r.get("stop_prompt")), str(r["start"]["n"])
                     + (f" ({r['n_failures']} failed)" if r.get("n_failures") else "")])
    means = "\n".join(f"- **{runner_label(rs[k], k)}** — start: {rs[k]['start_means']}; "
                      f"stop: {rs[k]['stop_means']}" for k in d["order"])
    return "\n\n".join([
        f"Busybox container, {d['runs']} cycles per runner after {d['warmup']} warm-up, "
        "interleaved A B C A B C; median (min–max). A cycle counts only when an init with "
        "the container's host name ran after the start and was gone after the stop (units: "
        "inactive, result success).",
        table(["runner", "start", "start ÷ LXC", "stop", "stop, prompt init", "n"], rows),
        "The two *reference* rows start no container: they are what systemd itself costs "
        "(`systemctl start` of a Type=simple `sleep` unit) and the least a Python Type=notify "
        "helper can cost (Debian's `python3 -I -S` sending READY=1 at once). Every "
        "unit-based start pays the first; lxcsd's helper pays the second before doing any "
        "work.",
        "Busybox init's own halt sleeps ~2 s (SIGTERM all, sleep 1, SIGKILL all, sleep 1), "
        "the same for everyone: the *stop, prompt init* column stops the same tree whose "
        "init is a shell exiting at once on the halt signal, i.e. the manager's overhead.",
        "What each start and stop is:\n\n" + means,
        "![start and stop](startstop.png)"])


def sec_memory(d: dict) -> str:
    if "error" in d:
        return f"Failed: `{d['error']}`"
    parts = ["PSS from /proc/PID/smaps_rollup, busybox containers, 1 s after all are running. "
             "*supervisor* = what the manager keeps per container (LXC: `[lxc monitor]`; "
             "nspawn: `systemd-nspawn`; lxcsd: every lxcsd process, the shared "
             "lxcsd-console service divided by N); *init* = the container's own init (same "
             "program everywhere); *payload* = init and its children; *all Δ* = every "
             "process in the sandbox (systemd, journald included) with the containers minus "
             "without, per container."]
    rows = []
    for key in d["order"]:
        r = d["runners"][key]
        if not r.get("by_n"):
            rows.append([runner_label(r, key), "–", unavailable_cell(r), "", "", "", ""])
            continue
        for n, v in r["by_n"].items():
            if "error" in v:
                rows.append([runner_label(r, key), n, f"failed: {v['error'][:150]}", "", "",
                             "", ""])
                continue
            rows.append([runner_label(r, key), n, mb(v["supervisor_kb_per_container"]),
                         f"{v['supervisor_processes']} ({', '.join(v['supervisor_names'])})",
                         mb(v["init_kb_mean"]), mb(v["payload_kb_per_container"]),
                         mb(v["all_delta_kb_per_container"])])
    parts.append(table(["runner", "containers", "supervisor PSS / container",
                        "supervisor processes", "init PSS", "payload / container",
                        "all Δ / container"], rows))
    parts.append("![memory](memory.png)")
    return "\n\n".join(parts)


def sec_density(d: dict) -> str:
    if "error" in d:
        return f"Failed: `{d['error']}`"
    rows = []
    for key in d["order"]:
        r = d["runners"][key]
        if not r.get("available"):
            rows.append([runner_label(r, key), unavailable_cell(r), "", "", "", ""])
            continue
        rows.append([runner_label(r, key), ms(r["start"]),
                     "yes" if r["all_running"] else f"**no** (min {r['min_running']})",
                     ms(r["stop"]), "yes" if r["all_stopped_clean"] else "**no**",
                     str(len(r["rounds"]))])
    return "\n\n".join([
        f"{d['n']} busybox containers started at once on {d.get('machine', {}).get('cpus', '?')}"
        " CPUs, then all stopped at once (lxcsd, nspawn: one `systemctl start/stop` naming "
        "every unit; LXC: every `lxc-start -d && lxc-wait` / `lxc-stop` launched in "
        "parallel). Stop includes busybox init's ~2 s halt sleeps.",
        table(["runner", "start all", "all running", "stop all", "all stopped cleanly",
               "rounds"], rows),
        "![density](density.png)"])


def sec_boot(d: dict) -> str:
    if "error" in d:
        return f"Failed: `{d['error']}`"
    rs = d["runners"]
    base = med(rs.get("lxc", {}).get("running"))
    rows = []
    for key in d["order"]:
        r = rs[key]
        if not r.get("available"):
            rows.append([runner_label(r, key), unavailable_cell(r), "", "", "", "", ""])
            continue
        rows.append([runner_label(r, key), ms(r["running"]), ratio_text(med(r["running"]), base),
                     ms(r["start_returned"], False), ms(r["pid1_listening"], False),
                     ", ".join(r["states"]), ms(r["stop"], False)])
    degraded = [f"- {rs[k].get('label', k)}: degraded by `{u}`" for k in d["order"]
                for u in rs[k].get("degraded_units", [])]
    return "\n\n".join([
        f"Debian bookworm (debootstrap minbase + systemd, one copy per runner), {d['runs']} "
        "boots each after one warm-up, interleaved. *to running* = from the start command "
        "until `systemctl is-system-running --wait` in the container's namespaces answers "
        "running/degraded; *start returned* = when the start command returned (lxcsd and "
        "nspawn --notify-ready=yes: once the guest's systemd reported its boot done, so "
        "close to *to running*; LXC: `lxc-start -d` daemonized; nspawn and lxcsd with "
        "`lxcsd.init.notify = 0`: init started); *PID 1 listening* = the container's "
        "/run/systemd/private appeared (looked for only once the start command returned).",
        table(["runner", "to running", "÷ LXC", "start returned", "PID 1 listening", "state",
               "stop"], rows),
        *(["\n".join(degraded)] if degraded else []), "![boot](boot.png)"])


def sec_generator(d: dict) -> str:
    if "error" in d:
        return f"Failed: `{d['error']}`"
    rows = []
    for n, v in d["by_n"].items():
        lx, q = v.get("lxcsd", {}), v.get("quadlet", {})
        lx_cell = ms(lx.get("time")) if lx.get("time", {}).get("n") else (
            f"failed: {lx['problem']}" if lx.get("problem") else PENDING)
        q_cell = ms(q.get("time")) if q.get("time", {}).get("n") else f"failed: {q.get('problem')}"
        rows.append([n, lx_cell, q_cell, ratio_text(med(lx.get("time")), med(q.get("time")))])
    note = "" if d["lxcsd"]["available"] else \
        f"\n\nlxcsd's generator: pending — {d['lxcsd']['reason']}"
    return "\n\n".join([
        f"Wall time of one generator run (systemd's three output directories on a tmpfs, "
        f"emptied before each run), hyperfine `-N`, {d['rounds']} rounds × "
        f"{d['runs_per_round']} runs with alternating order, pooled; median (min–max). "
        f"quadlet {d['quadlet']['version']} from Debian 13's podman "
        f"(`{d['quadlet']['source'].rsplit('/', 1)[-1]}`).{note}",
        table(["containers", "lxcsd-generator", "quadlet", "lxcsd ÷ quadlet"], rows),
        "![generator](generator.png)"])


def sec_parse(d: dict, data: dict | None = None) -> str:
    if not d.get("available"):
        return f"Not measured: {d.get('reason') or d.get('error')}"
    lines = d["text"].splitlines()
    if d.get("json") is not None and lines and lines[-1].lstrip().startswith("{"):
        lines = lines[:-1]  # the JSON twin of the table is in results/data/parse.json
    body = "\n".join(lines).strip()
    markdown = any(ln.startswith("|") for ln in lines)
    # The data may come from another checkout (another BENCH_DIR): keep what follows bench/.
    command = d.get("command", "parse_bench.py").replace(f"{BENCH_DIR}/", "")
    command = command.split("/bench/", 1)[-1]
    out = [f"`bench/{command}` (a standalone script) printed:", "",
           body if markdown else f"```\n{body}\n```"]
    j, gen = d.get("json") or {}, ((data or {}).get("generator") or {}).get("by_n", {})
    for key, n in (("process_100_ms", "100"), ("process_1000_ms", "1000")):
        q = med(gen.get(n, {}).get("quadlet", {}).get("time"))
        v = j.get(key, {}).get("median") if isinstance(j.get(key), dict) else None
        if v is not None and q is not None:
            out.append(f"\nThis run's quadlet for {n} containers: {q:.1f} ms — a process that "
                       f"only discovers and loads {n} configs takes {v:.1f} ms "
                       f"({v / q:.2f}× quadlet's whole run).")
    return "\n".join(out)


def sec_netstart(d: dict) -> str:
    if not d.get("available", True) or "lo" not in d:
        return f"Not measured: {d.get('reason') or d.get('error')}"
    rows = []
    for kind, what in (("lo", "no lxc.net (loopback only)"),
                       ("veth", "one veth on a bridge, static address + gateway")):
        part = d[kind]
        net = part.get("net")
        rows.append([what, ms(part["ready"]), ms(net) if net else "–", ms(part["cleanup"])])
    return "\n\n".join([
        f"`bench/netstart.py` (a standalone script; run by `bench/run.py` as its own process): the "
        "helper as the unit runs it (Debian's `python3 -I -S`, this tree), in a network and "
        "mount namespace the script creates, fork → READY=1 on its own NOTIFY_SOCKET (no "
        f"systemd), {d.get('runs', '?')} runs each, alternating; median (min–max).",
        table(["container network", "start → READY=1", "lxc.net step (helper's mark)",
               "cleanup (`lxcsd-helper cleanup`)"], rows),
        f"One veth adds **{d['added_ms']:.1f} ms** to the start; importing pyroute2 alone "
        f"takes {d['pyroute2_import_ms']:.1f} ms in the same interpreter (the helper imports "
        "it only for network types that need netlink).", "![network start](netstart.png)"])


def sec_profile(d: dict, data: dict | None = None) -> str:
    if not d.get("available"):
        return f"Pending: lxcsd is not available ({d.get('reason') or d.get('error')})."
    lines = ["Kept in [profile/](profile/):", ""]
    lines += [f"- [{f}](profile/{f})" for f in d.get("files", [])]
    ht = d.get("helper_timing")
    if ht:
        steps = ht["steps_ms"]
        inner = steps.get("total", sum(v for k, v in steps.items() if k != "total"))
        rows = [[k, f"{v:.2f} ms"] for k, v in steps.items() if k != "total"]
        rows.append(["**inside the helper, from `start.main()`**", f"**{inner:.1f} ms**"])
        rows.append(["`systemctl start lxc@NAME`, the same starts",
                     f"{ht['systemctl_start_ms']:.1f} ms"])
        rows.append(["↳ outside the marks: systemd, interpreter start-up, imports",
                     f"{ht['systemctl_start_ms'] - inner:.1f} ms"])
        ss = ((data or {}).get("startstop") or {}).get("runners", {})
        for key, what in (("floor-notify", "reference: Python that only sends READY=1 "
                           "(startstop, same sandbox)"),
                          ("floor-simple", "reference: Type=simple `sleep` unit (startstop)")):
            if ss.get(key, {}).get("available"):
                rows.append([what, ms(ss[key]["start"], False)])
        lines += ["", f"The helper's own timing marks (`LXCSD_START_TIMING=1`, median of "
                  f"{ht['runs']} starts, busybox tree):", "", table(["step", "time"], rows)]
    for key, title in (("generator_importtime", "generator"), ("helper_importtime", "helper start"),
                       ("stop_importtime", "helper stop (ExecStop=)"),
                       ("cleanup_importtime", "helper cleanup (ExecStopPost=)")):
        it = d.get(key)
        if it:
            slow = ", ".join(f"{s['module']} {s['cumulative_ms']:.1f} ms"
                             for s in it["slowest"][:5])
            lines.append(f"\n{title}: imports {it['total_ms']:.1f} ms; slowest: {slow}; "
                         f"hot-path modules design.md forbids: "
                         f"{', '.join(it['forbidden_seen']) or 'none'}")
    for k in ("generator_error", "helper_error", "helper_timing_error"):
        if d.get(k):
            lines.append(f"\n{k.replace('_', ' ')}: {d[k]}")
    return "\n".join(lines)


SECTIONS = (
    ("startstop", "Start and stop latency", sec_startstop),
    ("memory", "Host memory per running container", sec_memory),
    ("density", "Density: many containers at once", sec_density),
    ("boot", "Debian (systemd) boot time", sec_boot),
    ("generator", "Generator wall time", sec_generator),
    ("parse", "Config parse rate", sec_parse),
    ("network", "Network start overhead (one veth)", sec_netstart),
    ("profile", "Where lxcsd's time goes", sec_profile),
)


def render(data: dict) -> str:
    any_d = next(iter(data.values()), {})
    m = any_d.get("machine", {})
    quick = sorted(k for k, v in data.items() if v.get("quick"))
    out = ["# lxcsd benchmark results", "",
           "Made by `bench/run.py` (see [bench/README.md](../README.md) for what each figure "
           "means and how to run it). Every runner is measured on this machine in the same "
           "run, interleaved, so read **ratios**, not absolute times.", "",
           f"Rendered {time.strftime('%Y-%m-%d %H:%M')}; measured on: {m.get('cpus', '?')} CPUs "
           f"({m.get('cpu', '?')}), {m.get('memory', '?')}, kernel {m.get('kernel', '?')}; "
           f"{m.get('systemd', '')}; LXC {m.get('lxc', '')}; {m.get('podman', '')} (quadlet: "
           f"Debian 13's); {m.get('hyperfine', '')}; lxcsd at {m.get('lxcsd_commit', '?')}. "
           "All systemd-run parts inside the namespace sandbox (tests/infra/sandbox.py: "
           "systemd 252 as PID 1, cgroup2 without memory/cpu controllers).", ""]
    loads = [float(x.split(",")[0]) for v in data.values() for x in v.get("load") or []]
    if loads:
        out += [f"The machine is shared with other engineers running tests: the 1-minute load "
                f"average on its {m.get('cpus', '?')} CPUs was between {min(loads):.1f} and "
                f"{max(loads):.1f} around the benchmarks (each section gives its own). Absolute "
                "times move with it; ratios between runners measured interleaved hold.", ""]
    if quick:
        out += [f"**Quick pass** (`--quick`: fewer runs, fewer containers) for: "
                f"{', '.join(quick)}.", ""]
    reasons: set[str] = set()
    rows = aim_rows(data, reasons)
    out += ["## Aims", "", "lxcsd against the incumbent each aim names (ratio = lxcsd ÷ "
            "incumbent; below 1 is better for times and memory).", "",
            table(["aim", "lxcsd", "incumbent", "ratio", "status"], rows), ""]
    floor = ((data.get("startstop") or {}).get("runners") or {})
    fn, lc = floor.get("floor-notify", {}), floor.get("lxc", {})
    if fn.get("available") and lc.get("available"):
        out += [f"Context for the start aim: a Type=notify unit whose Python process only sends "
                f"READY=1 takes {ms(fn['start'], False)} to `systemctl start` "
                f"({ratio_text(med(fn['start']), med(lc['start']))} LXC's "
                f"{ms(lc['start'], False)}); a do-nothing Type=simple unit "
                f"{ms(floor['floor-simple']['start'], False)} (reference rows under *Start and "
                "stop latency*).", ""]
    if reasons:
        out += ["**lxcsd figures pending** — "
                + "; ".join(r.replace("`", "'") for r in sorted(reasons)), ""]
    for key, title, fn in SECTIONS:
        out += [f"## {title}", ""]
        d = data.get(key)
        if not d:
            out += ["Not measured yet (`bench/run.py --only " + key + "`).", ""]
            continue
        when = f"*measured {d.get('measured', '?')}*"
        load = d.get("load")
        if load:
            when += f" — load average before/after: {load[0]} / {load[1]} (shared machine)"
        out += [when, "", fn(d, data) if key in ("parse", "profile") else fn(d), ""]
        if key == "profile":
            lost = [r[0] for r in rows if "not met" in r[4]]
            out += ["Aims lxcsd does not meet in this run: "
                    + ("; ".join(lost) if lost else "none measured as not met") + ".", ""]
            if ANALYSIS.exists():  # hand-written: why, from the profiles above
                out += [ANALYSIS.read_text().strip(), ""]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------------------
# plots

def hbox(ax: object, values: list[list[float]], labels: list[str]) -> None:
    """Horizontal box plot, labelled (boxplot's labels= was renamed in matplotlib 3.9)."""
    try:
        ax.boxplot(values, orientation="horizontal")  # type: ignore[attr-defined]
    except TypeError:  # matplotlib < 3.10
        ax.boxplot(values, vert=False)  # type: ignore[attr-defined]
    ax.set_yticks(range(1, len(labels) + 1), labels)  # type: ignore[attr-defined]


def plots(data: dict) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["matplotlib not installed: no plots"]
    made = []

    def save(fig: object, name: str) -> None:
        fig.tight_layout()  # type: ignore[attr-defined]
        fig.savefig(RESULTS / name, dpi=90)  # type: ignore[attr-defined]
        plt.close(fig)  # type: ignore[arg-type]
        made.append(name)

    ss = data.get("startstop")
    if ss and "runners" in ss:
        keys = [k for k in ss["order"] if ss["runners"][k].get("available")]
        if keys:
            fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
            for ax, metric, title in ((axes[0], "start", "start (ms)"),
                                      (axes[1], "stop_prompt", "stop, prompt init (ms)")):
                vals = [[x * 1000 for x in ss["runners"][k]["samples"].get(metric, [])]
                        for k in keys]
                hbox(ax, vals, [ss["runners"][k]["label"] for k in keys])
                ax.set_title(title)
                ax.set_xlabel("ms")
            axes[1].tick_params(labelleft=False)  # the same runners as on the left
            save(fig, "startstop.png")
    mem = data.get("memory")
    if mem and "runners" in mem:
        fig, ax = plt.subplots(figsize=(7, 4))
        for k in mem["order"]:
            pts = [(int(n), v["supervisor_kb_per_container"] / 1024)
                   for n, v in mem["runners"][k]["by_n"].items() if "error" not in v]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=mem["runners"][k]["label"])
        ax.set_xlabel("running containers")
        ax.set_ylabel("supervisor PSS per container (MB)")
        ax.legend()
        save(fig, "memory.png")
    de = data.get("density")
    if de and "runners" in de:
        keys = [k for k in de["order"] if de["runners"][k].get("available")]
        if keys:
            fig, ax = plt.subplots(figsize=(7, 3.5))
            x = range(len(keys))
            ax.bar([i - 0.2 for i in x], [med(de["runners"][k]["start"]) for k in keys], 0.4,
                   label="start all")
            ax.bar([i + 0.2 for i in x], [med(de["runners"][k]["stop"]) for k in keys], 0.4,
                   label="stop all")
            ax.set_xticks(list(x), [de["runners"][k]["label"] for k in keys])
            ax.set_ylabel(f"ms for {de['n']} containers")
            ax.legend()
            save(fig, "density.png")
    bt = data.get("boot")
    if bt and "runners" in bt:
        keys = [k for k in bt["order"] if bt["runners"][k].get("available")]
        if keys:
            fig, ax = plt.subplots(figsize=(7, 3.5))
            hbox(ax, [[x * 1000 for x in bt["runners"][k]["samples"]] for k in keys],
                 [bt["runners"][k]["label"] for k in keys])
            ax.set_xlabel("ms from start to system running")
            save(fig, "boot.png")
    gen = data.get("generator")
    if gen and "by_n" in gen:
        fig, ax = plt.subplots(figsize=(7, 4))
        for k, label in (("lxcsd", "lxcsd-generator"), ("quadlet", "quadlet")):
            pts = [(int(n), med(v.get(k, {}).get("time"))) for n, v in gen["by_n"].items()]
            pts = [(n, t) for n, t in pts if t is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("containers")
        ax.set_ylabel("median wall time (ms)")
        ax.legend()
        save(fig, "generator.png")
    ns = data.get("network")
    if ns and "lo" in ns and "veth" in ns:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        kinds = ["lo", "veth"]
        labels = ["no lxc.net", "one veth"]
        ready = [ns[k]["ready"]["median"] for k in kinds]
        net = [ns[k].get("net", {}).get("median", 0.0) for k in kinds]
        ax.barh(labels, [r - n for r, n in zip(ready, net, strict=True)],
                label="start → READY=1, without the network step")
        ax.barh(labels, net, left=[r - n for r, n in zip(ready, net, strict=True)],
                label="lxc.net step")
        ax.set_xlabel("ms (median)")
        ax.legend(fontsize="small", loc="lower right")
        save(fig, "netstart.png")
    return made


def main() -> int:
    data = load_all()
    RESULTS.mkdir(parents=True, exist_ok=True)
    notes = plots(data)
    (RESULTS / "README.md").write_text(render(data))
    print(f"wrote {RESULTS / 'README.md'}; plots: {', '.join(notes) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
