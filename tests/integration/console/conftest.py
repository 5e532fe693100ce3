"""Fixtures for the console daemon's integration tests; the harness is console_harness.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from console_harness import FakeManager, PtyContainer


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[FakeManager]:
    fake = FakeManager(tmp_path)
    fake.start()
    yield fake
    log = fake.log()
    fake.close()
    assert "Traceback" not in log, log


@pytest.fixture
def containers() -> Iterator[Callable[..., PtyContainer]]:
    made: list[PtyContainer] = []

    def make(name: str, **kw: object) -> PtyContainer:
        made.append(PtyContainer(name, **kw))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for c in made:
        c.close()
