"""The helper's lazily imported modules (hooks, limits): a missing one fails the start with
the keys it would have applied, rather than starting the container without them."""

from __future__ import annotations

import pytest

from lxcsd.errors import LxcsdError
from lxcsd.runtime import child


def test_a_missing_module_fails_naming_the_keys() -> None:
    with pytest.raises(LxcsdError, match=r"^lxc\.hook\.start: cannot apply them: No module"):
        child.optional_module("no_such_module", "lxc.hook.start")


def test_a_present_module_is_returned() -> None:
    assert child.optional_module("limits", "lxc.prlimit.*").__name__ == "lxcsd.runtime.limits"
