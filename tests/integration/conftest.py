"""The integration tier (marker ``root``): real namespaces, mounts, cgroups and busybox roots,
veth pairs in network namespaces the tests make (those modules add ``network``); no
systemd (the sandbox tier has one)."""

from tests.infra import tiers

pytest_collection_modifyitems = tiers.marker_hook(__file__, "root")
