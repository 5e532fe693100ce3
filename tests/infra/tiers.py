"""Tiers are folders: each tier's conftest.py marks the tests below it.

    pytest_collection_modifyitems = tiers.marker_hook(__file__, "sandbox", "root")

pytest calls every conftest's collection hook with every collected item, so the hook
marks only the items under its own folder. It runs first (``tryfirst``): ``-m`` deselects
by these markers afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def marker_hook(conftest: str, *markers: str) -> Callable[[list[pytest.Item]], None]:
    folder = Path(conftest).resolve().parent
    marks = [getattr(pytest.mark, name) for name in markers]

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
        for item in items:
            if item.path.is_relative_to(folder):
                for mark in marks:
                    item.add_marker(mark)

    return pytest_collection_modifyitems
