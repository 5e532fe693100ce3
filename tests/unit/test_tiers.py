"""The test tiers are folders (tests/conftest.py): every test module sits in one, and each
tier's conftest marks what is below it, so ``-m`` selects tiers as the folders do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TIERS = ("unit", "golden", "integration", "sandbox", "hardening", "vm")
# tier -> the markers its tests carry, of the markers that name tiers
MARKS = {"unit": set(), "golden": set(), "integration": {"root"},
         "sandbox": {"sandbox", "root"}, "hardening": {"hardening", "root"},
         "vm": {"vm", "root"}}

# Collects the whole suite (nothing runs) and prints each test's tier markers.
COLLECT = """
import json, sys, pytest
class Marks:
    def __init__(self): self.found = {}
    def pytest_collection_finish(self, session):
        for item in session.items:
            names = {m.name for m in item.iter_markers()} & {"root", "sandbox", "vm", "hardening"}
            self.found[item.nodeid] = sorted(names)
marks = Marks()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"], plugins=[marks])
print("MARKS " + json.dumps(marks.found))
sys.exit(int(code))
"""


def test_every_test_module_is_in_a_tier_folder() -> None:
    strays = [str(path.relative_to(TESTS)) for path in TESTS.rglob("test_*.py")
              if path.relative_to(TESTS).parts[0] not in TIERS]
    assert strays == []


def test_markers_follow_the_folders() -> None:
    result = subprocess.run([sys.executable, "-c", COLLECT], cwd=TESTS.parent,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("MARKS "))
    found: dict[str, list[str]] = json.loads(line[6:])
    tiers = {node.split("/")[1] for node in found}
    assert tiers == set(TIERS)
    wrong = {node: marks for node, marks in found.items()
             if set(marks) != MARKS[node.split("/")[1]]}
    assert wrong == {}
