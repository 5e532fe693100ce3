"""Container networking: what the helper calls to give a container its ``lxc.net.N`` devices.

The helper (H, in the host's network namespace) calls, after C1 made the container's
network namespace and before init is exec'd::

    if lxcsd.net.needs_netlink(container):       # at compile time (lxcsd.runtime.compiler)
        names = lxcsd.net.setup(lxcsd.net.spec.plan_of(container), init_pid, state_dir)

and ``lxcsd-helper cleanup`` calls ``lxcsd.net.cleanup(name, state_dir)`` (cheap when the
container had no network: one failed ``open``).

This module stays import-light (docs/design.md, "Imports"): ``needs_netlink`` reads the model
only; pyroute2's message classes (~55 ms, see :mod:`lxcsd.net.nl`) are imported by
:mod:`lxcsd.net.create` only when a network type needs netlink, and by
:mod:`lxcsd.net.teardown` only when the state file lists a device.

Decisions (see docs/design.md, "Networking"):

- Devices are created directly in the container's namespace where the kernel allows it
  (the veth peer, macvlan, ipvlan, vlan: ``IFLA_NET_NS_PID`` at creation, as LXC does for
  veth), so nothing is left on the host for them but a veth's host end.
- ``hwaddr`` templates (``00:16:3e:xx:xx:xx``) are filled from a hash of the container name
  and network index: stable per container across starts without writing the config back
  (LXC rewrites the config file; a config shared by includes cannot be rewritten safely).
- A container with a ``phys`` network has its network namespace pinned by a bind mount of
  ``/proc/INIT/ns/net`` on ``STATE_DIR/netns``: when init dies, virtual devices (dummy,
  veth, macvlan) would otherwise be destroyed with the namespace and real NICs would go
  back to the *initial* namespace, not the helper's. Cleanup moves them back under their
  original name, then unmounts the pin.
- What cleanup needs is written to ``STATE_DIR/net`` (tab-separated ``key=value`` lines,
  see :mod:`lxcsd.net.state`) *before* each device is created, so a helper killed half way
  leaves enough to undo.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.config.model import Container

    from .spec import NetPlan

NETLINK_TYPES = frozenset(("veth", "macvlan", "ipvlan", "vlan", "phys"))


def needs_netlink(container: Container) -> bool:
    """True when :func:`setup` has work beyond bringing up loopback: a network type made
    with netlink, or a ``script.up``/``script.down`` hook to run (hooks alone do not import
    pyroute2). ``empty`` networks without hooks and ``none`` need nothing."""
    for net in container.net:
        if net.type in NETLINK_TYPES or net.script_up or net.script_down:
            return True
    return False


def preload(plan: NetPlan | None) -> None:
    """Import the netlink code :func:`setup` will need (~40-60 ms, most of a veth's cost),
    so that H does it while its children are busy (right after forking C1) rather than
    after. Cheap when no network needs netlink."""
    if plan is not None and any(net.type in NETLINK_TYPES for net in plan.networks):
        from . import create, nl

        nl.import_messages()
        del create  # imported for its own imports; setup() uses it


def setup(plan: NetPlan, init_pid: int, state_dir: str) -> list[str]:
    """Create and configure every network of ``plan`` (:func:`lxcsd.net.spec.plan_of`) for
    the network namespace of ``init_pid``; returns the container-side interface names.
    Raises LxcsdError (a ConfigError naming the ``lxc.net.N.*`` key and its file:line when
    the config is at fault) after undoing what it did."""
    from .create import setup_all

    return setup_all(plan, init_pid, state_dir)


def cleanup(name: str, state_dir: str) -> None:
    """Undo :func:`setup` from what it recorded in ``state_dir``; idempotent, and safe after
    the helper was SIGKILLed at any point of setup."""
    from .teardown import cleanup_state

    cleanup_state(name, state_dir)
