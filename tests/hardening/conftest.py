"""The hardening tier runs real containers through lxcsd-helper (no systemd), as the helper
tests do, with their fixtures: a scratch cgroup2 and cgroup v1 cgroups standing for the
unit's, a temporary lxcpath, subordinate ids for unprivileged containers."""

from __future__ import annotations

from tests.integration.helper.conftest import (  # noqa: F401 - fixtures, used by name
    _need_root,
    helper_probe,
    helper_subids,
    lxcpath,
    unit_cgroup,
)
