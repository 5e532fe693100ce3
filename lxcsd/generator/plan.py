"""Everything the generator writes, computed before anything is written: :func:`make_plan`.

Steps: find containers in each lxcpath (late lxcpaths set aside), load each config (a
broken one best-effort, see :func:`load`), build the autostart graph, render one drop-in per
container, then the targets' wants, the delay units and, for late lxcpaths, the wiring of
``lxcsd-autostart.service``. A failure inside one container's steps is logged and that
container gets a minimal drop-in; nothing here raises for a container.

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

from lxcsd.config.load import check_path, load_path
from lxcsd.config.names import escape
from lxcsd.errors import ConfigError

from . import autostart, devices, fastload, render, scan
from .autostart import CONTAINERS_TARGET, Member

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.config.model import Container

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
    """What a run depends on besides the configs (tests replace parts of it)."""

    __slots__ = ("lxcpaths", "unit_dir", "bridge", "device_names", "mounts", "env_lxcpath")

    def __init__(self, *, lxcpaths: list[str], unit_dir: str, bridge: str,
                 device_names: devices.DeviceNames, mounts: scan.MountState,
                 env_lxcpath: str | None = None) -> None:
        self.lxcpaths = lxcpaths
        self.unit_dir = unit_dir
        self.bridge = bridge
        self.device_names = device_names
        self.mounts = mounts
        self.env_lxcpath = env_lxcpath


class Slot:
    """One container on its way through the plan."""

    __slots__ = ("found", "container", "errors", "member")

    def __init__(self, found: scan.Found) -> None:
        self.found = found
        self.container: Container | None = None
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


FAST_LOAD = True  # tests compare both paths


def load(slot: Slot) -> None:
    """Load the config (fastload's exact shortcut, else the full reader); for a broken one
    keep every error (the first is what the helper reports at start) and the model of the
    lines that did parse (check_path)."""
    if FAST_LOAD:
        slot.container = fastload.load(slot.found.config, slot.found.name)
        if slot.container is not None:
            return
    try:
        slot.container = load_path(slot.found.config, slot.found.name)
        return
    except ConfigError as exc:
        first = exc
    container, errors = check_path(slot.found.config, slot.found.name)
    slot.container = container
    slot.errors = [first] + [e for e in errors if str(e) != str(first)]


def set_member(slot: Slot) -> None:
    container = slot.container
    if container is None:
        return
    start, member = container.start, slot.member
    member.auto = bool(start.auto)
    member.order = start.order or 0
    member.delay = start.delay or 0
    member.groups = container.groups


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
                log: Log, warned: set[str]) -> str:
    container, found = slot.container, slot.found
    policy = None
    if container is not None:
        policy = devices.policy(container.cgroup2, container.cgroup_v1, settings.device_names)
        for warning in policy.warnings:
            if warning not in warned:
                warned.add(warning)
                log.warning(f"container {found.name}: {warning}")
    after = graph.after.get(found.name, [])
    facts = render.Facts(
        name=found.name, instance=found.instance, config=found.config, container=container,
        errors=slot.errors, after=after, bridge=settings.bridge, devices=policy,
        auto=autostart_note(slot.member) if after else "")
    return render.container_dropin(facts)


def fallback_dropin(slot: Slot, exc: Exception) -> str:
    """The drop-in of a container whose rendering failed unexpectedly."""
    error = ConfigError(f"lxcsd-generator failed: {type(exc).__name__}: {exc}",
                        path=slot.found.config)
    facts = render.Facts(name=slot.found.name, instance=slot.found.instance,
                         config=slot.found.config, container=None, errors=[error], after=[],
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
    for slot in slots:
        try:
            _prepare(slot, log)
        except Exception as exc:  # noqa: BLE001 - one container must not stop the others
            _internal_error(slot, log, exc)
    members = [slot.member for slot in slots]
    graph = autostart.build(members, group_targets(members, log))
    warned: set[str] = set()
    for slot in slots:
        unit = f"lxc@{slot.found.instance}.service"
        try:
            text = render_slot(slot, graph, settings, log, warned)
        except Exception as exc:  # noqa: BLE001 - one container must not stop the others
            _internal_error(slot, log, exc)
            text = fallback_dropin(slot, exc)
        plan.files.append((slot.found.name, dropin_path(unit), text))
    _wants(plan, graph, members, settings.unit_dir)
    _late(plan, settings)
    return plan


def _prepare(slot: Slot, log: Log) -> None:
    load(slot)
    for error in slot.errors:
        log.error(str(error))
    set_member(slot)
    skip_if_lxc_runs(slot, log)


LXC_PROBE_TIMEOUT = 0.5  # seconds an LXC monitor may take to answer: a generator never hangs


def skip_if_lxc_runs(slot: Slot, log: Log) -> None:
    """A container lxc-start runs (found at a daemon-reload) is not wired into the boot
    autostart: lxc@NAME would refuse to start it. Asked on its liblxc command socket, only
    for autostart containers: nobody listening costs one refused connect()."""
    if not slot.member.auto:
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
