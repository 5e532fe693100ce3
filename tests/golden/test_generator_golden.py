"""Golden tests of lxcsd-generator: every case in ``cases/`` generated and checked against the
assertions written in it (gen_harness.py's docstring), the errors table ``errors.txt``, and
``systemd-analyze verify`` of everything generated with the static units installed.

Each case also proves its assertions can fail: every assertion is checked once more negated,
and must then be reported (an assertion that holds both ways tests nothing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from gen_harness import CASES, HERE, INCLUDES, Case, case_names, parse_unit, verify

from lxcsd.config.names import escape
from lxcsd.generator import plan

ERRORS = HERE / "errors.txt"

_RUNS: dict[str, Case] = {}


@pytest.fixture(scope="module")
def case_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gen-cases")


def run_case(name: str, root: Path) -> Case:
    """The case generated once per test session (verify and the errors table reuse it)."""
    if name not in _RUNS:
        tmp = root / name
        shutil.rmtree(tmp, ignore_errors=True)  # left by an earlier failed run
        tmp.mkdir()
        case = Case(name, tmp)
        case.lay_out()
        case.run()
        _RUNS[name] = case
    return _RUNS[name]


@pytest.mark.parametrize("name", case_names())
def test_case(name: str, case_root: Path) -> None:
    case = run_case(name, case_root)
    assertions = [d for d in case.directives if d.name.startswith("assert-")]
    assert assertions, f"case {name} asserts nothing"
    problems = case.check()
    assert not problems, "\n".join(problems) + "\n--- log:\n" + case.log_stream.getvalue()
    for directive in assertions:
        directive.negate = not directive.negate
        try:
            label, inverted = directive.where(), case.check()
        finally:
            directive.negate = not directive.negate
        assert any(p.startswith(label) for p in inverted), \
            f"{label}: holds too, so {directive.where()} can never fail"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("name", case_names())
def test_verify(name: str, case_root: Path, tmp_path: Path) -> None:
    """Every generated drop-in and wants link, with the static units, loads cleanly."""
    case = run_case(name, case_root)
    units, complaints = verify(case.out, tmp_path)
    if not units:
        pytest.skip(f"case {name} generates no unit")
    assert not complaints, f"systemd-analyze verify {' '.join(units)}:\n{complaints}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_verify_reports_mistakes(case_root: Path, tmp_path: Path) -> None:
    """The verify step can fail: an ordering cycle and a bad value added to the order
    case's output are reported."""
    out = tmp_path / "out"
    shutil.copytree(run_case("order", case_root).out, out, symlinks=True)
    (out / "lxc@c0.service.d" / "20-bad.conf").write_text(
        "[Unit]\nAfter=lxc@c1.service\n[Service]\nKillSignal=SIGFOO\n")
    units, complaints = verify(out, tmp_path)
    assert "lxc@c0.service" in units
    assert "ordering cycle" in complaints
    assert "SIGFOO" in complaints


def _tree(out: Path) -> dict[str, str]:
    """Every output entry: file text, or "-> target" for links."""
    found = {}
    for path in sorted(out.rglob("*")):
        rel = str(path.relative_to(out))
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_text(errors="surrogateescape")
    return found


@pytest.mark.parametrize("name", case_names())
def test_a_second_run_from_the_cache_writes_the_same(name: str, tmp_path: Path) -> None:
    """The facts cache (lxcsd.generator.facts) is a shortcut: a second run over unchanged
    configs, which takes every compiled container from it, writes the same files and logs
    the same lines, byte for byte."""
    first = Case(name, tmp_path)
    first.lay_out()
    first.run()
    cached = plan.Compiler(first.settings()).cache.entries
    second = Case(name, tmp_path)
    second.configs, second.lxcpaths, second.out = first.configs, first.lxcpaths, \
        tmp_path / "out2"
    second.directives = first.directives
    second.run()
    assert _tree(second.out) == _tree(first.out)
    assert second.messages() == first.messages()
    assert all(any(c.startswith(p + "/") for p in first.lxcpaths) for c in cached), cached


# --- the errors table ----------------------------------------------------------------------


def error_rows() -> list[tuple[str, str, str]]:
    """(case, container, expected text) of errors.txt."""
    rows = []
    for line in ERRORS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            where, _, expected = line.partition("\t")
            case, _, container = where.partition("/")
            rows.append((case, container, expected))
    return rows


@pytest.mark.parametrize(("name", "container", "expected"), error_rows(),
                         ids=[f"{r[0]}/{r[1]}" for r in error_rows()])
def test_expected_error(name: str, container: str, expected: str, case_root: Path) -> None:
    """The first error is in the unit's Description (systemctl status) and in the log."""
    case = run_case(name, case_root)
    config = case.configs[container]
    want = expected.replace("@CONFIG@", config).replace("@INCLUDES@", str(INCLUDES))
    dropin = case.out / plan.dropin_path(f"lxc@{escape(container)}.service")
    unit = parse_unit(dropin.read_text(errors="surrogateescape"))
    description = [v.replace("%%", "%") for k, v in unit["Unit"] if k == "Description"]
    assert description and description[0].startswith(f"LXC container {container} "
                                                     f"(broken config: {want}"), description
    assert any(m.startswith(want) for m in case.messages()), case.messages()


def test_errors_table_covers_every_broken_container(case_root: Path) -> None:
    """Every container a case marks broken has its expected error in errors.txt."""
    table = {(case, container) for case, container, _ in error_rows()}
    marked = {(name, d.source.split("/", 1)[1]) for name in case_names()
              for d in run_case(name, case_root).directives
              if d.name == "assert-failed" and not d.negate}
    assert marked == table


# --- names that cannot be units -----------------------------------------------------------


def test_refused_names_are_logged_and_skipped(tmp_path: Path) -> None:
    """A name with a control character, or one whose unit name would pass 255 bytes, gets
    no unit; the others are generated."""
    lxcpath = tmp_path / "lxcpath"
    for name in ("ok", "tab\tname", "ü" * 31):
        (lxcpath / name).mkdir(parents=True)
        (lxcpath / name / "config").write_text("lxc.start.auto = 1\n")
    case = Case("refused", tmp_path)
    case.lxcpaths.append(str(lxcpath))
    result = case.run()
    written = sorted(rel for _, rel, _ in result.files)
    assert written == ["lxc@ok.service.d/10-lxcsd.conf"]
    assert sorted(os.listdir(case.out / "lxc-containers.target.wants")) == ["lxc@ok.service"]
    errors = case.log.errors()
    assert any(f"{lxcpath}/tab\tname/config: refused: invalid container name" in e and
               "control character" in e for e in errors), errors
    assert any("refused" in e and "longer than 255 bytes" in e for e in errors), errors


def test_cases_directory_is_complete() -> None:
    """The cases cover what the issue asks for (a deleted case would pass silently)."""
    names = set(case_names())
    for needed in ("autostart.conf", "order", "delay", "groups", "escaping", "broken",
                   "legacy.conf", "includes", "lxcpaths", "late", "fstab", "devices.conf"):
        assert needed in names
    assert (CASES / "broken" / "case.txt").exists()


# --- a daemon-reload while containers run ------------------------------------------------------


def test_a_running_container_keeps_how_it_started(tmp_path: Path) -> None:
    """A daemon-reload while a container runs writes how it must stop as its start recorded
    it (its state file: the config it started with, as liblxc's monitor keeps it), not as
    its config says now; a state directory whose init is gone, or without a state file,
    counts for nothing."""
    case = Case("stop", tmp_path)
    case.lay_out()
    run = tmp_path / "run"
    states = {"halt-set": (os.getpid(), "halt:15,stop:9,exec_stop:0,cleanup:1"),
              "post-stop": (2**22 + 7, "halt:15,stop:0,exec_stop:1,cleanup:1")}
    for name, (pid, stop) in states.items():
        (run / name).mkdir(parents=True)
        (run / name / "state").write_text(f"name={name}\ninit_pid={pid}\nstop={stop}\n")
    (run / "stop-hook").mkdir()
    case.run()
    running = (case.out / "lxc@halt-set.service.d/10-lxcsd.conf").read_text()
    assert "KillSignal=SIGTERM\n" in running and "FinalKillSignal" not in running
    assert "Environment=LXCSD_STOP=halt:15,stop:9,exec_stop:0,cleanup:1\n" in running
    assert "RuntimeDirectory=" not in running  # cleanup=1: ExecStopPost= stays
    gone = (case.out / "lxc@post-stop.service.d/10-lxcsd.conf").read_text()
    assert "halt:15" not in gone  # its init is gone: the config's stop
    fresh = Case("stop", tmp_path / "fresh")
    (tmp_path / "fresh").mkdir()
    fresh.lay_out()
    fresh.run()
    for name in ("post-stop", "stop-hook"):
        unit = f"lxc@{name}.service.d/10-lxcsd.conf"
        assert (case.out / unit).read_text().replace(str(tmp_path), "") == \
            (fresh.out / unit).read_text().replace(str(tmp_path / "fresh"), "")


def test_the_writer_replaces_an_entry_it_finds(tmp_path: Path) -> None:
    """systemd empties the output directories, so files are made new (O_EXCL, one write());
    one already there is replaced whole through a temporary name, none left behind."""
    from lxcsd.generator.output import DirWriter

    writer = DirWriter(str(tmp_path))
    try:
        writer.file("lxc@a.service.d/10-lxcsd.conf", "first\n")
        writer.file("lxc@a.service.d/10-lxcsd.conf", "second\n")
        writer.link("x.target.wants/lxc@a.service", "/one")
        writer.link("x.target.wants/lxc@a.service", "/two")
    finally:
        writer.close()
    assert (tmp_path / "lxc@a.service.d/10-lxcsd.conf").read_text() == "second\n"
    assert os.listdir(tmp_path / "lxc@a.service.d") == ["10-lxcsd.conf"]
    assert os.readlink(tmp_path / "x.target.wants/lxc@a.service") == "/two"
