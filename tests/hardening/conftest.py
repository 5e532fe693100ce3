"""The hardening tier (marker ``hardening``, root): real containers through lxcsd-helper (no
systemd), as the helper tests start them, with tests/conftest.py's fixtures (the unit's
cgroups, a temporary lxcpath, subordinate ids for unprivileged containers)."""

from tests.infra import tiers

pytest_collection_modifyitems = tiers.marker_hook(__file__, "hardening", "root")
