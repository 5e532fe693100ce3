"""Test-suite wiring: shared fixtures live in tests/infra and register here."""

import sys
from pathlib import Path

# Tests exercise the source tree, not an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

pytest_plugins = ["tests.infra.fixtures", "tests.infra.vm.fixtures"]
