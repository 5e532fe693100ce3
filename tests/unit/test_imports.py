"""The hot paths stay import-light (docs/design.md, "Imports").

Each entry point runs as its launcher runs it (Debian's /usr/bin/python3 -I -S, this tree
first on sys.path) with ``-X importtime``; the test fails if any module of the banned list
(or a submodule of one) was imported:

- the generator, for real: a run over an lxcpath of containers using what a boot meets
  (includes, autostart order and delay, groups, devices, a bridge), into three output dirs;
- lxcsd-helper: its entry and each verb module it loads (``start``, ``stop``, ``cleanup``);
- the console daemon: the module lxcsd-console imports.

design.md allows a few light standard modules on hot paths (``signal``, ``socket``, ...),
and those import ``enum`` themselves; a banned module is a failure when lxcsd code (or the
entry) imports it, directly or through anything but those allowed modules. ``-X importtime``
prints a module after the modules it imported, one indentation level deeper, which gives
each module's importer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"   # Debian's, as the launchers run
BANNED = frozenset({"dataclasses", "typing", "enum", "re", "pathlib", "argparse", "subprocess",
                    "json", "asyncio", "logging", "shlex", "inspect"})
# The generator also never loads the command line's libraries (design.md: CLI only).
GENERATOR_BANNED = BANNED | {"pystemd", "dbus_fast", "jinja2", "pyroute2"}

pytestmark = pytest.mark.skipif(not Path(PYTHON).exists(), reason="needs Debian's python3")


# design.md's light modules, allowed on hot paths whatever they import themselves.
ALLOWED_STDLIB = frozenset({"os", "sys", "socket", "struct", "ctypes", "signal", "errno",
                            "stat", "fcntl", "select", "array"})


class Imports(dict):  # type: ignore[type-arg]
    """Module → the module that imported it ("" for the code run itself)."""

    def culprits(self, names: frozenset[str]) -> list[str]:
        """Banned modules imported by lxcsd code or the entry, as "module (via chain)"."""
        found = []
        for module, parent in self.items():
            if module.split(".")[0] not in names:
                continue
            chain = [module]
            while parent and parent.split(".")[0] not in ALLOWED_STDLIB:
                chain.append(parent)
                parent = self.get(parent, "")
            if not parent:   # reached the entry without passing an allowed module
                found.append(" <- ".join(chain))
        return sorted(found)


def imported(code: str, env: dict[str, str] | None = None) -> tuple[Imports, str]:
    """(modules imported by ``code`` with their importers, its other output)."""
    prologue = f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
    result = subprocess.run([PYTHON, "-IS", "-X", "importtime", "-c", prologue + code],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, **(env or {})})
    lines = result.stderr.splitlines()
    rest = "\n".join([result.stdout] + [x for x in lines if not x.startswith("import time:")])
    assert result.returncode == 0, rest
    entries = []   # (depth, module), children before their parent
    for line in lines[1:]:
        if line.startswith("import time:"):
            field = line.split("|")[-1]
            name = field.strip()
            entries.append(((len(field) - len(field.lstrip()) - 1) // 2, name))
    imports = Imports()
    for index, (depth, name) in enumerate(entries):
        parent = next((n for d, n in entries[index + 1:] if d == depth - 1), "")
        imports.setdefault(name, parent)
    return imports, rest


def banned(imports: Imports, names: frozenset[str]) -> list[str]:
    return imports.culprits(names)


def write_lxcpath(root: Path) -> Path:
    lxcpath = root / "lxc"
    include = root / "common.conf"
    include.write_text("lxc.cgroup2.devices.deny = a\nlxc.cgroup2.devices.allow = c 1:3 rwm\n"
                       "lxc.cgroup2.devices.allow = c 136:* rwm\nlxc.group = onboot\n")
    for index in range(5):
        name = f"c{index}"
        (lxcpath / name / "rootfs").mkdir(parents=True)
        (lxcpath / name / "config").write_text(
            f"lxc.include = {include}\nlxc.uts.name = {name}\n"
            f"lxc.rootfs.path = dir:{lxcpath}/{name}/rootfs\n"
            "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.flags = up\n"
            f"lxc.start.auto = 1\nlxc.start.order = {index}\nlxc.start.delay = 1\n"
            "lxc.signal.stop = SIGTERM\nlxc.mount.auto = proc:mixed sys:ro cgroup:mixed\n")
    return lxcpath


def test_generator_run_imports_nothing_heavy(tmp_path: Path) -> None:
    lxcpath = write_lxcpath(tmp_path)
    out = [tmp_path / d for d in ("normal", "early", "late")]
    for directory in out:
        directory.mkdir()
    code = ("sys.argv[1:] = ['--no-kmsg', " + ", ".join(repr(str(d)) for d in out) + "]\n"
            "from lxcsd.generator.main import main\nsys.exit(main())\n")
    modules, output = imported(code, env={"LXCSD_LXCPATH": str(lxcpath)})
    written = sorted(p.name for p in out[0].iterdir())
    assert "lxc@c4.service.d" in written and "lxc-containers.target.wants" in written, \
        (written, output)
    assert "lxcsd.generator.plan" in modules
    assert not banned(modules, GENERATOR_BANNED), banned(modules, GENERATOR_BANNED)


HELPER_MODULES = ["lxcsd.runtime.main", "lxcsd.runtime.start", "lxcsd.runtime.stop",
                  "lxcsd.runtime.cleanup"]


@pytest.mark.parametrize("module", HELPER_MODULES)
def test_helper_imports_nothing_heavy(module: str) -> None:
    modules, _ = imported(f"import {module}\n")
    assert module in modules
    assert not banned(modules, BANNED), banned(modules, BANNED)


def test_helper_entry_runs_light() -> None:
    """The launcher's own path (usage, no verb) imports nothing beyond the entry."""
    code = "from lxcsd.runtime.main import main\nmain(['--help'])\n"
    modules, _ = imported(code)
    assert not banned(modules, BANNED), banned(modules, BANNED)


def test_console_daemon_imports_nothing_heavy() -> None:
    modules, _ = imported("import lxcsd.console.daemon\n")
    assert "lxcsd.console.daemon" in modules
    assert not banned(modules, BANNED), banned(modules, BANNED)


def test_the_check_can_fail() -> None:
    """A module that imports a banned one is caught (the test is not vacuous)."""
    modules, _ = imported("import lxcsd.errors\nimport argparse\n")
    assert "argparse" in banned(modules, BANNED)
    modules, _ = imported("import lxcsd.cli.main\n")
    assert any(c.startswith("argparse <- lxcsd.cli.main") for c in banned(modules, BANNED))
    modules, _ = imported("import signal\n")   # enum through an allowed module: fine
    assert "enum" in modules and not banned(modules, BANNED)


CONFIG_READER = ("lxcsd.config.load", "lxcsd.config.build", "lxcsd.config.reader",
                 "lxcsd.config.keys", "lxcsd.config.values", "lxcsd.config.model",
                 "lxcsd.runtime.compiler")


def _generate(lxcpath: Path, out: Path, plans: Path) -> tuple[Imports, dict[str, str]]:
    shutil.rmtree(out, ignore_errors=True)
    dirs = [out / d for d in ("normal", "early", "late")]
    for directory in dirs:
        directory.mkdir(parents=True)
    code = ("sys.path.append('/usr/lib/python3/dist-packages')  # as the launcher\n"
            "sys.argv[1:] = ['--no-kmsg', " + ", ".join(repr(str(d)) for d in dirs) + "]\n"
            "from lxcsd.generator.main import main\nsys.exit(main())\n")
    modules, _ = imported(code, env={"LXCSD_LXCPATH": str(lxcpath),
                                          "LXCSD_PLAN_DIR": str(plans),
                                          "LXCSD_RUN_DIR": str(out / "run")})
    files = {str(p.relative_to(dirs[0])): p.read_text() for p in dirs[0].rglob("*.conf")}
    return modules, files


def test_a_generator_run_over_unchanged_configs_reads_no_config(tmp_path: Path) -> None:
    """The facts cache (lxcsd.generator.facts): a second run takes every container from
    it, imports none of the config reader and compiles nothing, and writes the same; an
    edited include is read again at the next run."""
    lxcpath = write_lxcpath(tmp_path)
    for init in lxcpath.glob("*/rootfs"):
        (init / "sbin").mkdir()
        (init / "sbin/init").write_text("#!/bin/sh\n")
        (init / "sbin/init").chmod(0o755)
    plans = tmp_path / "plans"
    cold, first = _generate(lxcpath, tmp_path / "out", plans)
    assert "lxcsd.config.reader" in cold and sorted(p.name for p in plans.iterdir()) == [
        "c0.plan", "c1.plan", "c2.plan", "c3.plan", "c4.plan", "generator.cache"]
    warm, second = _generate(lxcpath, tmp_path / "out", plans)
    assert [m for m in CONFIG_READER if m in warm] == []
    assert second == first and "lxc@c4.service.d/10-lxcsd.conf" in second
    include = tmp_path / "common.conf"
    include.write_text(include.read_text().replace("lxc.group = onboot\n",
                                                   "lxc.group = onboot web\n"))
    edited, third = _generate(lxcpath, tmp_path / "out", plans)
    assert "lxcsd.config.reader" in edited
    assert third != first and not banned(edited, GENERATOR_BANNED)
