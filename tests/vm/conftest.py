"""The VM tier (markers ``vm``, ``root``): a nested QEMU VM with every cgroup2 controller and
AppArmor, one at a time host-wide (tests/infra/vm/README.md; fixtures in
tests/infra/vm/fixtures.py)."""

from tests.infra import tiers

pytest_collection_modifyitems = tiers.marker_hook(__file__, "vm", "root")
