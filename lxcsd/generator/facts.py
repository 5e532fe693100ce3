"""What the generator takes from a container's config, and its cache across runs.

:class:`UnitFacts` is everything the drop-in and the autostart wiring need: the config's
errors, lxc.start.*, lxc.group, the paths to require mounted, the networks' links, the
device rules, and how systemd stops the container (lxcsd.runtime.compiler._stop). Taken
once from the config model (:func:`facts_of`) and kept in ``/run/lxcsd-plans/
generator.cache`` (:class:`Cache`) with the stamps of every file they depend on (those of
the container's compiled plan: config, includes, policy, init), so that a daemon-reload with
unchanged configs reads no config, imports no config reader, and compiles no plan.

Format as the plans' (lxcsd.runtime.planfile): ``marshal`` of a dict, read only when root's
alone and written by this Python (lxcsd.rootfile); each entry's dependencies are its plan's
(planfile.unchanged checks them). lxcsd's own code (planfile.code_dependencies), the same for
every entry, is kept once for the whole cache: any of it changed, every entry is dropped
(stored per entry, its ~42 stamps made the cache of 1000 containers 42000 entries to load and
check at every daemon-reload). Containers whose plan did not
compile (a broken config, a root not mounted yet) are not cached: they are read again at
every run, and their errors logged again, as before.
"""

from __future__ import annotations

import os

from lxcsd import rootfile
from lxcsd.runtime import planfile, state
from lxcsd.runtime.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcsd.config.model import CgroupSetting, Container
    from lxcsd.runtime.plan import CgroupValue

CACHE_FILE = "generator.cache"


class UnitFacts(Record):
    """One container, as the generator renders it."""

    __slots__ = ("errors", "auto", "order", "delay", "groups", "mount_paths", "links",
                 "devices2", "devices1", "stop", "signal_names")
    errors: list[str]
    auto: bool
    order: int
    delay: int
    groups: tuple[str, ...]
    mount_paths: list[str]
    links: list[tuple[int, str | None]]  # (lxc.net.N index, lxc.net.N.link)
    devices2: tuple[CgroupValue, ...]  # lxc.cgroup2.devices.* lines, then the v1 ones
    devices1: tuple[CgroupValue, ...]
    stop: dict[str, int]
    signal_names: dict[int, str]  # the names of stop's signals, for the drop-in

    def dump(self) -> tuple[Any, ...]:
        return tuple(tuple(v.dump() for v in getattr(self, name))
                     if name in ("devices2", "devices1") else getattr(self, name)
                     for name in self.__slots__)

    @classmethod
    def load(cls, values: tuple[Any, ...]) -> UnitFacts:
        facts: UnitFacts = Record.load.__func__(cls, values)  # type: ignore[attr-defined]
        for name in ("devices2", "devices1"):
            dumped: tuple[tuple[Any, ...], ...] = getattr(facts, name)
            if dumped:  # the plan's records are imported only for a config with devices
                from lxcsd.runtime.plan import CgroupValue

                setattr(facts, name, tuple(CgroupValue.load(v) for v in dumped))
        return facts


def _devices(settings: tuple[CgroupSetting, ...]) -> tuple[CgroupValue, ...]:
    from lxcsd.runtime.plan import CgroupValue

    return tuple(CgroupValue(key=s.key, value=s.value, path=s.path, line=s.line)
                 for s in settings if s.key.startswith("devices."))


def mount_paths(container: Container) -> list[str]:
    """Host paths the container needs mounted: its directory, its rootfs (dir, btrfs,
    loop image, overlay layers)."""
    rootfs = container.rootfs
    paths = [container.config_path.rpartition("/")[0]]
    if rootfs.kind in ("dir", "btrfs", "loop") and rootfs.path:
        paths.append(rootfs.path)
    elif rootfs.kind == "overlay":
        paths.extend(rootfs.lower)
        if rootfs.upper:
            paths.append(rootfs.upper)
    return paths


def facts_of(container: Container, errors: list[str], stop: dict[str, int] | None
             ) -> UnitFacts:
    """The facts of a loaded (maybe partly broken) config; ``stop`` from its plan, None when
    it has none (the template's stop applies)."""
    start = container.start
    if not stop:
        stop = dict(state.TEMPLATE_STOP, stop=container.signals.stop or 0)
    return UnitFacts(
        errors=errors, auto=bool(start.auto), order=start.order or 0, delay=start.delay or 0,
        groups=tuple(container.groups), mount_paths=mount_paths(container),
        links=[(net.index, net.link) for net in container.net],
        devices2=_devices(container.cgroup2), devices1=_devices(container.cgroup_v1),
        stop=dict(stop), signal_names=_names(stop))


def _names(stop: dict[str, int]) -> dict[int, str]:
    from lxcsd.config.values import signal_name

    return {n: signal_name(n) for n in (stop.get("halt"), stop.get("stop")) if n}


class Cache:
    """config path → (deps, facts) of the containers whose plans compiled."""

    def __init__(self, directory: str | None) -> None:
        self.path = os.path.join(directory, CACHE_FILE) if directory else None
        self.entries: dict[str, tuple[list[tuple[Any, ...]], tuple[Any, ...]]] = {}
        self.dirty = False
        self.stamps: dict[str, tuple[int, ...]] = {}  # this run's: shared files stat'd once
        self.code: list[tuple[str, tuple[int, ...]]] = []  # of the entries, checked at load
        if self.path is not None:
            found = planfile.load(self.path)
            entries = found.get("entries") if found is not None else None
            code = found.get("code") if found is not None else None
            if isinstance(entries, dict) and code and planfile.unchanged(code):
                self.entries, self.code = entries, list(code)
            elif entries:
                self.dirty = True  # lxcsd changed: every entry was compiled by other code

    def stamp(self, path: str) -> tuple[int, ...]:
        """planfile.stamp, once a run for each path (a policy or an include many configs
        share, /etc/lxc/lxc.conf)."""
        found = self.stamps.get(path)
        if found is None:
            found = self.stamps[path] = planfile.stamp(path)
        return found

    def get(self, config: str, stamp: tuple[int, ...] = ()) -> UnitFacts | None:
        """The cached facts of ``config`` when every file they depend on is unchanged
        (``stamp``: the config's, when the caller has it)."""
        found = self.entries.get(config)
        if found is None:
            return None
        if stamp:
            self.stamps[config] = stamp
        try:
            deps, facts = found
            if not planfile.unchanged(deps, self.stamp):
                return None
            return UnitFacts.load(facts)
        except (TypeError, ValueError):
            return None

    def put(self, config: str, deps: list[tuple[Any, ...]],
            facts: UnitFacts) -> None:
        self.entries[config] = (deps, facts.dump())
        self.dirty = True

    def forget(self, config: str) -> None:
        self.dirty |= self.entries.pop(config, None) is not None

    def keep_only(self, configs: set[str]) -> None:
        """Forget containers that are gone."""
        for config in [c for c in self.entries if c not in configs]:
            del self.entries[config]
            self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        os.makedirs(os.path.dirname(self.path), 0o700, exist_ok=True)
        # The code of the entries kept (unchanged since the load) and of this run's.
        code = dict(self.code)
        code.update(planfile.code_dependencies())
        rootfile.dump(self.path, {**planfile.environment(), "code": sorted(code.items()),
                                  "entries": self.entries})
