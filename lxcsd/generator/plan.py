"""Everything the generator writes, computed before anything is written: :func:`make_plan`.

Steps: find containers in each lxcpath (late lxcpaths set aside), take each container's
facts (:mod:`lxcsd.generator.facts`: from the cache when no file changed, else from the
config, compiling its start plan for the helper on the way; a broken config best-effort,
see :func:`load`), build the autostart graph, render one drop-in per container, then the
targets' wants, the delay units and, for late lxcpaths, the wiring of
``lxcsd-autostart.service``. A failure inside one container's steps is logged and that
container gets a minimal drop-in; nothing here raises for a container.

The compiled plans go to ``/run/lxcsd-plans`` (lxcsd.runtime.planfile), outside the
generator's output directories: systemd keeps /run writable for generators (its generator
sandbox of v253 and later makes the rest of the file system read-only), and a plan that
cannot be written only costs its container's start the config reader.

Output layout (all in the generator's normal directory; links point at the static units):

    lxc@NAME.service.d/10-lxcsd.conf                  every container
    lxc-containers.target.wants/lxc@NAME.service      boot autostart
    lxc-group@GROUP.target.wants/lxc@NAME.service     every lxc.group member
    lxc-delay@NAME.service.d/10-lxcsd.conf            lxc.start.delay (when a container follows)
    lxc-containers.target.wants/lxc-delay@NAME.service   (and lxc-group@GROUP.target.wants/)
    lxc-containers.target.wants/lxcsd-autostart.service  an lxcpath missing, empty or unmounted
    lxcsd-autostart.service.d/10-lxcsd.conf
"""

from __future__ import annotations

import os

from lxcsd.config.names import escape
from lxcsd.errors import ConfigError

from . import autostart, devices, render, scan
from .autostart import CONTAINERS_TARGET, Member
from .facts import Cache, UnitFacts, facts_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.config.model import Container
    from lxcsd.runtime.compiler import Host

    from .log import Log

AUTOSTART_SERVICE = "lxcsd-autostart.service"
UNIT_NAME_MAX = 255


class UnitFiles:
    """``files``: (owner, relative path, text); ``links``: (owner, relative path, target).
    The owner is the container name, "" for what belongs to no container."""

    __slots__ = ("files", "links", "late")

    def __init__(self) -> None:
        self.files: list[tuple[str, str, str]] = []
        self.links: list[tuple[str, str, str]] = []
        self.late: list[str] = []


class Settings:
    """What a run depends on besides the configs (tests replace parts of it). ``plan_dir``:
    where compiled plans and the facts cache go (None: nowhere, as for dry runs)."""

    __slots__ = ("lxcpaths", "unit_dir", "bridge", "device_names", "mounts", "env_lxcpath",
                 "plan_dir", "run_dir", "host")

    def __init__(self, *, lxcpaths: list[str], unit_dir: str, bridge: str,
                 device_names: devices.DeviceNames, mounts: scan.MountState,
                 env_lxcpath: str | None = None, plan_dir: str | None = None,
                 run_dir: str | None = None, host: Host | None = None) -> None:
        self.lxcpaths = lxcpaths
        self.unit_dir = unit_dir
        self.bridge = bridge
        self.device_names = device_names
        self.mounts = mounts
        self.env_lxcpath = env_lxcpath
        self.plan_dir = plan_dir
        self.run_dir = run_dir  # the helper's state files (running containers' stop)
        self.host = host  # what plans read from the host (None: this host's, read once)


class Slot:
    """One container on its way through the plan."""

    __slots__ = ("found", "facts", "errors", "member")

    def __init__(self, found: scan.Found) -> None:
        self.found = found
        self.facts: UnitFacts | None = None
        self.errors: list[ConfigError] = []
        self.member = Member(name=found.name, instance=found.instance)


# --- finding and loading --------------------------------------------------------------------


def find(settings: Settings, plan: UnitFiles, log: Log) -> list[scan.Found]:
    found: list[scan.Found] = []
    seen: dict[str, str] = {}
    problems: list[str] = []
    for lxcpath in settings.lxcpaths:
        reason = scan.late_reason(lxcpath, settings.mounts)
        names = scan.list_lxcpath(lxcpath, problems) if reason is None else None
        if reason is not None or names == []:
            plan.late.append(lxcpath)
            if reason is not None and "mounted" in reason:
                log.notice(f"{lxcpath} {reason}: {AUTOSTART_SERVICE} starts its autostart "
                           "containers once it is mounted")
        elif names is not None:
            found += scan.scan_lxcpath(lxcpath, names, seen, problems)
    for problem in problems:
        log.error(problem)
    return found


class Compiler:
    """A run's compiling of plans: the facts cache, the host facts the plans read (once per
    run), where the plans go; what else a run reads once: the listening abstract sockets
    (LXC's running containers), the running containers' state directories."""

    def __init__(self, settings: Settings) -> None:
        self.plan_dir = settings.plan_dir
        self.cache = Cache(settings.plan_dir)
        self._host: Host | None = settings.host
        self._listening: tuple[frozenset[bytes] | None] | None = None

    @property
    def listening(self) -> frozenset[bytes] | None:
        if self._listening is None:
            from lxcsd.liblxc import address

            self._listening = (address.listening_abstract(),)
        return self._listening[0]

    @property
    def host(self) -> Host:
        if self._host is None:
            from lxcsd.runtime import compiler

            self._host = compiler.Host(controllers=compiler.host_controllers())
        return self._host


def load(slot: Slot, compiler: Compiler) -> None:
    """The container's facts: cached when no file they come from changed; else from the
    config, with its start plan compiled and written for the helper. For a broken config,
    every error (the first is what the helper reports at start) and the facts of the lines
    that did parse (check_path)."""
    config = slot.found.config
    cached = compiler.cache.get(config, slot.found.stamp)
    if cached is not None:
        slot.facts = cached
        return
    from lxcsd.config.load import check_path, load_with_sources

    try:
        container, sources = load_with_sources(config, slot.found.name)
    except ConfigError as exc:
        broken, errors = check_path(config, slot.found.name)
        slot.errors = [exc] + [e for e in errors if str(e) != str(exc)]
        if broken is not None:
            slot.facts = facts_of(broken, [str(e) for e in slot.errors], None)
        compiler.cache.forget(config)
        return
    _compile(slot, compiler, container, sources)


def _compile(slot: Slot, compiler: Compiler, container: Container,
             sources: list[tuple[str, tuple[int, ...]]]) -> None:
    """Make the start plan and write it for the helper; the facts, cached with the plan's
    dependencies when it was written."""
    from lxcsd import paths
    from lxcsd.runtime import compiler as runtime
    from lxcsd.runtime import planfile

    try:
        plan = runtime.make_plan(slot.found.name, container, datadir=paths.datadir(),
                                 host=compiler.host)
    except ConfigError:
        plan = None  # the start reports it (a root not mounted yet at boot, ...)
    slot.facts = facts_of(container, [], plan.stop if plan is not None else None)
    if plan is None or compiler.plan_dir is None:
        compiler.cache.forget(slot.found.config)
        return
    deps = runtime.dependencies(plan, container, sources)
    dumped = plan.dump()
    try:
        planfile.write(slot.found.instance, planfile.compiled(
            dumped, deps, planfile.host_facts(dumped)), compiler.plan_dir)
    except OSError:
        compiler.cache.forget(slot.found.config)  # the next run tries again
        return
    compiler.cache.put(slot.found.config, deps, slot.facts)


def set_member(slot: Slot) -> None:
    facts = slot.facts
    if facts is None:
        return
    member = slot.member
    member.auto = facts.auto
    member.order = facts.order
    member.delay = facts.delay
    member.groups = facts.groups


# --- autostart ------------------------------------------------------------------------------


def group_targets(members: list[Member], log: Log) -> dict[str, str]:
    """Group name → ``lxc-group@ESCAPED.target``, for the groups that can have one."""
    targets: dict[str, str] = {}
    for member in members:
        for group in member.groups:
            if group in targets:
                continue
            unit = f"lxc-group@{escape(group)}.target"
            if len(unit) > UNIT_NAME_MAX:
                log.error(f"lxc.group {group[:40]!r}...: the name is too long for a unit, "
                          f"container {member.name!r} is in no target for it")
                continue
            targets[group] = unit
    return targets


def autostart_note(member: Member) -> str:
    groups = " ".join(member.groups) or "(none)"
    return (f"lxc.start.auto = {int(member.auto)}, lxc.start.order = {member.order}, "
            f"lxc.group = {groups}: after the container before it (and its "
            "lxc.start.delay) when a target starts both")


# --- rendering ------------------------------------------------------------------------------


def render_slot(slot: Slot, graph: autostart.Graph, settings: Settings,
                log: Log, warned: set[str], running: set[str] | None = None) -> str:
    """``running``: the names with a state directory (:func:`running_names`), None: look
    for every container's."""
    unit, found = slot.facts, slot.found
    policy = None
    stop = None
    if unit is not None:
        policy = devices.policy(unit.devices2, unit.devices1, settings.device_names)
        for warning in policy.warnings:
            if warning not in warned:
                warned.add(warning)
                log.warning(f"container {found.name}: {warning}")
        if running is None or found.name in running:
            stop = running_stop(found.name, settings.run_dir)
        stop = stop or unit.stop
    after = graph.after.get(found.name, [])
    facts = render.Facts(
        name=found.name, instance=found.instance, config=found.config, unit=unit,
        errors=slot.errors, after=after, bridge=settings.bridge, devices=policy,
        auto=autostart_note(slot.member) if after else "", stop=stop)
    return render.container_dropin(facts)


def running_names(run_dir: str | None) -> set[str]:
    """The containers with a state directory (one listing a run, not one open() each)."""
    if run_dir is None:
        return set()
    try:
        return set(os.listdir(run_dir))
    except OSError:
        return set()


def running_stop(name: str, run_dir: str | None) -> dict[str, int] | None:
    """How a running container must stop: as the start recorded it (lxc.signal.halt and
    the hooks of the config it started with, as liblxc's monitor keeps that config), None
    when it does not run (or cannot tell)."""
    if run_dir is None:
        return None
    from lxcsd.runtime import state

    try:
        with open(os.path.join(run_dir, name, "state"), encoding="utf-8",
                  errors="surrogateescape") as f:
            fields = state.parse_state(f.read())
    except OSError:
        return None
    stop = state.parse_stop(fields.get("stop", ""))
    pid = fields.get("init_pid", "")
    if stop is None or not pid.isdigit() or not os.path.exists(f"/proc/{pid}"):
        return None
    return stop


def fallback_dropin(slot: Slot, exc: Exception) -> str:
    """The drop-in of a container whose rendering failed unexpectedly."""
    error = ConfigError(f"lxcsd-generator failed: {type(exc).__name__}: {exc}",
                        path=slot.found.config)
    facts = render.Facts(name=slot.found.name, instance=slot.found.instance,
                         config=slot.found.config, unit=None, errors=[error], after=[],
                         bridge="", devices=None)
    return render.container_dropin(facts)


def dropin_path(unit: str) -> str:
    return f"{unit}.d/{render.DROPIN}"


def template_path(unit_dir: str, unit: str) -> str:
    """The static unit file a wants link points at (an instance's template)."""
    if "@" in unit:
        prefix, _, rest = unit.partition("@")
        unit = f"{prefix}@{rest[rest.rindex('.'):]}"
    return f"{unit_dir}/{unit}"


# --- the plan -------------------------------------------------------------------------------


def make_plan(settings: Settings, log: Log) -> UnitFiles:
    plan = UnitFiles()
    slots = [Slot(found) for found in find(settings, plan, log)]
    compiler = Compiler(settings)
    for slot in slots:
        try:
            _prepare(slot, log, compiler)
        except Exception as exc:  # noqa: BLE001 - one container must not stop the others
            _internal_error(slot, log, exc)
    compiler.cache.keep_only({slot.found.config for slot in slots})
    try:
        compiler.cache.save()
    except OSError as exc:
        log.warning(f"facts cache not written: {exc.strerror}")
    members = [slot.member for slot in slots]
    graph = autostart.build(members, group_targets(members, log))
    warned: set[str] = set()
    running = running_names(settings.run_dir)
    for slot in slots:
        unit = f"lxc@{slot.found.instance}.service"
        try:
            text = render_slot(slot, graph, settings, log, warned, running)
        except Exception as exc:  # noqa: BLE001 - one container must not stop the others
            _internal_error(slot, log, exc)
            text = fallback_dropin(slot, exc)
        plan.files.append((slot.found.name, dropin_path(unit), text))
    _wants(plan, graph, members, settings.unit_dir)
    _late(plan, settings)
    return plan


def _prepare(slot: Slot, log: Log, compiler: Compiler) -> None:
    load(slot, compiler)
    for error in slot.errors:
        log.error(str(error))
    set_member(slot)
    skip_if_lxc_runs(slot, log, compiler)


LXC_PROBE_TIMEOUT = 0.5  # seconds an LXC monitor may take to answer: a generator never hangs


def skip_if_lxc_runs(slot: Slot, log: Log, compiler: Compiler) -> None:
    """A container lxc-start runs (found at a daemon-reload) is not wired into the boot
    autostart: lxc@NAME would refuse to start it. Asked on its liblxc command socket, only
    for autostart containers whose socket listens (/proc/net/unix, read once a run:
    ~2 µs a container where a refused connect() costs ~20)."""
    if not slot.member.auto:
        return
    from lxcsd.liblxc import address

    name = address.socket_name(slot.found.lxcpath, slot.found.name)
    if not address.may_listen(name, compiler.listening):
        return
    from lxcsd.liblxc import owner

    holder = owner.running_under_lxc(slot.found.lxcpath, slot.found.name, LXC_PROBE_TIMEOUT)
    if holder is not None:
        slot.member.auto = False
        log.notice(f"container {slot.found.name} runs under {holder.describe()}: "
                   "lxc-containers.target does not start it")


def _internal_error(slot: Slot, log: Log, exc: Exception) -> None:
    """A bug, not a config error: logged with the container, which keeps a drop-in."""
    message = f"lxcsd-generator failed: {type(exc).__name__}: {exc}"
    log.error(f"{slot.found.config}: {message}")
    slot.errors = slot.errors or [ConfigError(message, path=slot.found.config)]


def _wants(plan: UnitFiles, graph: autostart.Graph, members: list[Member], unit_dir: str) -> None:
    owners = {m.unit(): m.name for m in members}
    owners.update({m.delay_unit(): m.name for m in members if m.name in graph.delays})
    for target, units in graph.wants.items():
        for unit in units:
            plan.links.append((owners.get(unit, ""), f"{target}.wants/{unit}",
                               template_path(unit_dir, unit)))
    for member in members:
        seconds = graph.delays.get(member.name)
        if seconds:
            plan.files.append((member.name, dropin_path(member.delay_unit()),
                               render.delay_dropin(member.name, seconds)))


def _late(plan: UnitFiles, settings: Settings) -> None:
    if not plan.late:
        return
    plan.links.append(("", f"{CONTAINERS_TARGET}.wants/{AUTOSTART_SERVICE}",
                       f"{settings.unit_dir}/{AUTOSTART_SERVICE}"))
    plan.files.append(("", dropin_path(AUTOSTART_SERVICE),
                       render.autostart_dropin(plan.late, settings.env_lxcpath)))


def default_unit_dir() -> str:
    """Where the static units are: lxcsd.paths.unitdir()."""
    from lxcsd import paths

    return paths.unitdir()
