"""The autostart graph, as lxc-autostart computes it, expressed as unit dependencies (pure).

lxc-autostart (src/lxc/tools/lxc_autostart.c), as Debian's lxc.service runs it at boot
(``-g "onboot,"``): first the ``onboot`` group, then the containers without any
``lxc.group``; only ``lxc.start.auto = 1`` ones; each pass sorted by ``cmporder``
(``lxc.start.order`` ascending, ties by ``strcmp`` of the names); after starting a container
it sleeps ``lxc.start.delay`` seconds before the next. Shutdown runs the list backwards.

lxcsd expresses that as units:

- boot: ``lxc-containers.target`` wants every container of that list, and each container
  is ordered ``After=`` the one before it (systemd stops in reverse order by itself);
- groups: ``lxc-group@G.target`` wants every member of ``lxc.group G``, whatever its
  ``lxc.start.auto`` (like ``lxc-autostart -A -g G``: starting a group is an explicit
  request, ``lxc.start.auto`` only says what starts at boot), ordered the same way;
- delays: a container with ``lxc.start.delay = N`` followed by another one gets a
  ``lxc-delay@NAME.service`` (a oneshot ``sleep N`` ordered after the container), wanted
  only by the targets, never by the container: so the delay applies on the boot and group
  paths, and ``systemctl start lxc@NEXT`` alone never waits. The next container is ordered
  after the delay unit.

Every chain is sorted by the same (order, name) key and the boot chain only puts ``onboot``
members before ungrouped containers, which no group chain contains: the union of the
orderings has no cycle.
"""

from __future__ import annotations

ONBOOT = "onboot"
CONTAINERS_TARGET = "lxc-containers.target"


class Member:
    """What the graph needs of one container (``instance``: its escaped unit instance)."""

    __slots__ = ("name", "instance", "auto", "order", "delay", "groups")

    def __init__(self, *, name: str, instance: str, auto: bool = False, order: int = 0,
                 delay: int = 0, groups: tuple[str, ...] = ()) -> None:
        self.name = name
        self.instance = instance
        self.auto = auto
        self.order = order
        self.delay = delay
        self.groups = groups

    def unit(self) -> str:
        return f"lxc@{self.instance}.service"

    def delay_unit(self) -> str:
        return f"lxc-delay@{self.instance}.service"

    def __repr__(self) -> str:
        return f"Member({self.name!r}, auto={self.auto}, order={self.order})"


class Graph:
    """``after``: container name → units it is ordered after (predecessors and their delay
    units); ``wants``: target → units it wants, in start order; ``delays``: container name →
    seconds, for the delay units that exist; ``chains``: target → member names in order."""

    __slots__ = ("after", "wants", "delays", "chains")

    def __init__(self) -> None:
        self.after: dict[str, list[str]] = {}
        self.wants: dict[str, list[str]] = {}
        self.delays: dict[str, int] = {}
        self.chains: dict[str, list[str]] = {}


def sort_key(member: Member) -> tuple[int, bytes]:
    """lxc_autostart.c's cmporder: order ascending, then strcmp of the names (bytes)."""
    return (member.order, member.name.encode("utf-8", "surrogateescape"))


def boot_sequence(members: list[Member]) -> list[Member]:
    """The containers started at boot, in lxc-autostart's order (onboot first)."""
    auto = [m for m in members if m.auto]
    onboot = sorted((m for m in auto if ONBOOT in m.groups), key=sort_key)
    ungrouped = sorted((m for m in auto if not m.groups), key=sort_key)
    return onboot + ungrouped


def group_sequences(members: list[Member]) -> dict[str, list[Member]]:
    """Group name → its members in start order."""
    groups: dict[str, list[Member]] = {}
    for member in members:
        for group in dict.fromkeys(member.groups):
            groups.setdefault(group, []).append(member)
    return {group: sorted(groups[group], key=sort_key) for group in sorted(groups)}


def _chain(graph: Graph, target: str, sequence: list[Member]) -> None:
    wants = graph.wants.setdefault(target, [])
    wants.extend(member.unit() for member in sequence)
    graph.chains[target] = [member.name for member in sequence]
    for before, member in zip(sequence, sequence[1:], strict=False):
        after = graph.after.setdefault(member.name, [])
        after.append(before.unit())
        if before.delay > 0:
            after.append(before.delay_unit())
            wants.append(before.delay_unit())
            graph.delays[before.name] = before.delay


def build(members: list[Member], group_target: dict[str, str]) -> Graph:
    """The graph for all containers. ``group_target`` maps each group that may have a
    target to its unit name (groups missing from it, e.g. with an impossible unit name,
    are left out)."""
    graph = Graph()
    _chain(graph, CONTAINERS_TARGET, boot_sequence(members))
    for group, sequence in group_sequences(members).items():
        target = group_target.get(group)
        if target is not None:
            _chain(graph, target, sequence)
    # A container in several chains (boot and its groups) may follow the same one twice.
    for name, after in graph.after.items():
        if len(after) > 1:
            graph.after[name] = list(dict.fromkeys(after))
    return graph
