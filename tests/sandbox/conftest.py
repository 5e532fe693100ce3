"""The sandbox tier (markers ``sandbox``, ``root``): a real systemd 252 as PID 1 in namespaces,
lxcsd installed in it (tests/infra/README.md; fixtures in tests/infra/fixtures.py)."""

from tests.infra import tiers

pytest_collection_modifyitems = tiers.marker_hook(__file__, "sandbox", "root")
