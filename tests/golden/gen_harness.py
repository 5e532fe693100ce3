"""Golden-test harness for lxcsd-generator, after Podman quadlet's test/e2e/quadlet.

A case is a config file ``cases/NAME.conf`` (container NAME) or a directory ``cases/NAME/``
holding lxcpaths (``lxcpath*/CONTAINER/config``, in name order, as ``$LXCSD_LXCPATH``) and
an optional ``case.txt``. Comment lines starting with ``## `` are directives; a config's
assertions target its own drop-in (``lxc@NAME.service.d/10-lxcsd.conf``) until a
``## file PATH`` line names another output file (``case.txt`` starts with no target).

Assertions (``!`` before one negates it):

    ## assert-key-is SECTION KEY VALUE...     all values of KEY in SECTION, in order
    ## assert-key-contains SECTION KEY TEXT   one value of KEY contains TEXT
    ## assert-key-is-empty SECTION KEY        KEY is set, to an empty value (a reset)
    ## assert-has-key SECTION KEY             KEY is set in SECTION
    ## assert-comment TEXT                    a comment line contains TEXT
    ## assert-symlink LINK [TARGET]           LINK exists in the output; TARGET: where it points
    ## assert-file PATH                       PATH exists in the output
    ## assert-failed                          the container is marked broken and its error logged
    ## assert-log TEXT                        a logged message contains TEXT
    ## assert-no-log                          nothing was logged (whole run)

Setup directives (``case.txt`` or any config): ``## bridge NAME`` (net.conf's bridge),
``## missing-lxcpath DIR`` (an lxcpath that does not exist, after the case's own),
``## empty-lxcpath DIR``, ``## fstab DIR`` (a mount point configured in fstab but not
mounted), ``## name NAME`` (a .conf case's container name), ``## init-systemd`` (the
config's rootfs gets /sbin/init -> /lib/systemd/systemd; other roots get a plain
/sbin/init script, so that every container's start plan compiles). Words are split like a shell
(quotes group). In configs and directives, ``@LXCPATH@`` is the lxcpath the config lands in,
``@CONFIG@`` its config path, ``@CASES@`` the cases directory, ``@INCLUDES@`` the shared
include directory, ``@TMP@`` the case's temporary directory.

Device numbers resolve against ``fakeroot/`` (a small /sys/dev and /proc/devices), so the
expected DeviceAllow= lines do not depend on the machine.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from lxcsd.config.names import is_valid_name
from lxcsd.generator import devices, plan, scan
from lxcsd.generator.log import Log
from lxcsd.generator.output import write_plan
from lxcsd.generator.unitfile import one_line
from lxcsd.runtime import compiler, lsm

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
INCLUDES = HERE / "includes"
FAKEROOT = HERE / "fakeroot"
REPO = HERE.parent.parent
UNIT_DIR = "/usr/local/lib/systemd/system"   # where install.sh puts the units: links point there
# The host the start plans are compiled for: the same outputs on every machine.
HOST = compiler.Host(controllers={"cpu", "io", "memory", "pids"}, lsm=lsm.Host())


class CaseError(AssertionError):
    pass


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if p.suffix == ".conf" or p.is_dir())


class Directive:
    __slots__ = ("source", "line", "target", "negate", "name", "args")

    def __init__(self, source: str, line: int, target: str | None, text: str) -> None:
        words = shlex.split(text)
        self.source, self.line, self.target = source, line, target
        self.negate = words[0].startswith("!")
        self.name = words[0].lstrip("!")
        self.args = words[1:]

    def where(self) -> str:
        return f"{self.source}:{self.line}: {'!' if self.negate else ''}{self.name} " \
               f"{shlex.join(self.args)}"


def parse_directives(text: str, source: str, target: str | None) -> list[Directive]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("## "):
            continue
        directive = Directive(source, number, target, line[3:])
        if directive.name == "file":
            target = directive.args[0]
            continue
        directive.target = target
        found.append(directive)
    return found


class Case:
    """One case laid out in a temporary directory, generated, and checked."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        self.tmp = tmp
        self.out = tmp / "out"
        self.directives: list[Directive] = []
        self.lxcpaths: list[str] = []
        self.configs: dict[str, str] = {}     # container name -> config path
        self.log_stream = io.StringIO()
        self.log = Log(kmsg=False, journal=False, stream=self.log_stream)

    # -- layout ---------------------------------------------------------------------------

    def subst(self, text: str, lxcpath: str = "", config: str = "") -> str:
        for key, value in (("@LXCPATH@", lxcpath), ("@CONFIG@", config),
                           ("@CASES@", str(CASES)), ("@INCLUDES@", str(INCLUDES)),
                           ("@TMP@", str(self.tmp))):
            text = text.replace(key, value)
        return text

    def add_config(self, lxcpath: Path, name: str, text: str) -> None:
        config = lxcpath / name / "config"
        config.parent.mkdir(parents=True, exist_ok=True)
        (config.parent / "rootfs/sbin").mkdir(parents=True, exist_ok=True)
        init = config.parent / "rootfs/sbin/init"  # a start plan compiles (not systemd)
        if "## init-systemd" in text:  # /sbin/init -> /lib/systemd/systemd, as on Debian
            (config.parent / "rootfs/lib/systemd").mkdir(parents=True, exist_ok=True)
            (config.parent / "rootfs/lib/systemd/systemd").write_text("#!/bin/sh\n")
            (config.parent / "rootfs/lib/systemd/systemd").chmod(0o755)
            init.symlink_to("../lib/systemd/systemd")
        else:
            init.write_text("#!/bin/sh\n")
            init.chmod(0o755)
        body = self.subst(text, str(lxcpath), str(config))
        config.write_bytes(body.encode("utf-8", "surrogateescape"))
        self.configs[name] = str(config)
        dropin = plan.dropin_path(f"lxc@{scan.instance_of(name)}.service") \
            if is_valid_name(name) else None
        self.directives += parse_directives(body, f"{self.name}/{name}", dropin)

    def lay_out(self) -> None:
        source = CASES / self.name
        if source.is_dir():
            self._lay_out_dir(source)
        else:
            text = source.read_text(encoding="utf-8", errors="surrogateescape")
            name = source.stem
            for line in text.splitlines():
                if line.startswith("## name "):
                    name = shlex.split(line[8:])[0]
            lxcpath = self.tmp / "lxcpath"
            self.lxcpaths.append(str(lxcpath))
            self.add_config(lxcpath, name, text)

    def _lay_out_dir(self, source: Path) -> None:
        for path in sorted(source.iterdir()):
            if path.is_dir() and path.name.startswith("lxcpath"):
                lxcpath = self.tmp / path.name
                lxcpath.mkdir()
                self.lxcpaths.append(str(lxcpath))
                for container in sorted(path.iterdir()):
                    if not (container / "config").is_file():
                        continue  # not a container (a case may say so)
                    text = (container / "config").read_text(errors="surrogateescape")
                    self.add_config(lxcpath, container.name, text)
        case_txt = source / "case.txt"
        if case_txt.exists():
            text = self.subst(case_txt.read_text())
            self.directives += parse_directives(text, f"{self.name}/case.txt", None)

    # -- running --------------------------------------------------------------------------

    def setup_values(self, name: str) -> list[str]:
        return [self.subst(d.args[0]) for d in self.directives if d.name == name]

    def settings(self) -> plan.Settings:
        for empty in self.setup_values("empty-lxcpath"):
            Path(empty).mkdir(parents=True, exist_ok=True)
        late = self.setup_values("missing-lxcpath") + self.setup_values("empty-lxcpath")
        bridge = (self.setup_values("bridge") or ["lxcbr0"])[-1]
        mounts = scan.MountState(mounted=set(), fstab=set(self.setup_values("fstab")),
                                 unit_dirs=())
        return plan.Settings(lxcpaths=self.lxcpaths + late, unit_dir=UNIT_DIR, bridge=bridge,
                             device_names=devices.DeviceNames(str(FAKEROOT)), mounts=mounts,
                             env_lxcpath=":".join(self.lxcpaths + late),
                             plan_dir=str(self.tmp / "plans"), run_dir=str(self.tmp / "run"),
                             host=HOST)

    def run(self) -> plan.UnitFiles:
        self.out.mkdir()
        result = plan.make_plan(self.settings(), self.log)
        failures = write_plan(result, str(self.out), self.log)
        assert failures == 0, self.log_stream.getvalue()
        return result

    # -- checking -------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Every failed assertion, as text."""
        problems = []
        for directive in self.directives:
            if directive.name in SETUP:
                continue
            check = CHECKS.get(directive.name)
            if check is None:
                problems.append(f"{directive.where()}: unknown directive")
                continue
            ok, detail = check(self, directive)
            if ok == directive.negate:
                problems.append(f"{directive.where()}: failed: {detail}")
        return problems

    def target_text(self, directive: Directive) -> str:
        if directive.target is None:
            raise CaseError(f"{directive.where()}: no target file (use '## file PATH')")
        path = self.out / directive.target
        return path.read_text(errors="surrogateescape") if path.exists() else ""

    def messages(self) -> list[str]:
        return [text for _, text in self.log.messages]


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Section → [(key, value)] in order; comments under the key "#"."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = sections.setdefault("", [])
    for line in text.splitlines():
        if line.startswith("#"):
            current.append(("#", line[1:].strip()))
        elif line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif "=" in line:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def _values(case: Case, d: Directive) -> list[str]:
    section, key = d.args[0], d.args[1]
    entries = parse_unit(case.target_text(d)).get(section, [])
    return [value for name, value in entries if name == key]


def _key_is(case: Case, d: Directive) -> tuple[bool, str]:
    values = _values(case, d)
    return values == [case.subst(a) for a in d.args[2:]], f"values are {values}"


def _key_contains(case: Case, d: Directive) -> tuple[bool, str]:
    values = _values(case, d)
    return any(case.subst(d.args[2]) in v for v in values), f"values are {values}"


def _key_is_empty(case: Case, d: Directive) -> tuple[bool, str]:
    values = _values(case, d)
    return "" in values, f"values are {values}"


def _has_key(case: Case, d: Directive) -> tuple[bool, str]:
    values = _values(case, d)
    return bool(values), f"values are {values}"


def _comment(case: Case, d: Directive) -> tuple[bool, str]:
    text = case.target_text(d)
    comments = [line for line in text.splitlines() if line.startswith("#")]
    return any(case.subst(d.args[0]) in c for c in comments), f"comments are {comments}"


def _symlink(case: Case, d: Directive) -> tuple[bool, str]:
    link = case.out / d.args[0]
    if not link.is_symlink():
        return False, f"no symlink {d.args[0]}"
    target = os.readlink(link)
    if len(d.args) > 1 and target != d.args[1]:
        return False, f"it points at {target}"
    return True, f"it exists, pointing at {target}"


def _file(case: Case, d: Directive) -> tuple[bool, str]:
    path = case.out / case.subst(d.args[0])
    return path.is_file(), f"{d.args[0]} {'exists' if path.exists() else 'is missing'}"


def _failed(case: Case, d: Directive) -> tuple[bool, str]:
    text = case.target_text(d)
    description = [v for k, v in parse_unit(text).get("Unit", []) if k == "Description"]
    marker = "(broken config: "
    broken = bool(description) and marker in description[0]
    # The error shown must be the one logged (its file may be an include, not the config).
    shown = description[0].partition(marker)[2][:-1].replace("%%", "%") if broken else ""
    logged = any(one_line(m) == shown for m in case.messages())
    return broken and logged, f"description {description}, messages {case.messages()}"


def _log(case: Case, d: Directive) -> tuple[bool, str]:
    want = case.subst(d.args[0], config=case.configs.get(d.source.rsplit("/", 1)[-1], ""))
    return any(want in m for m in case.messages()), f"messages are {case.messages()}"


def _no_log(case: Case, d: Directive) -> tuple[bool, str]:
    return not case.messages(), f"messages are {case.messages()}"


CHECKS = {
    "assert-key-is": _key_is, "assert-key-contains": _key_contains,
    "assert-key-is-empty": _key_is_empty, "assert-has-key": _has_key,
    "assert-comment": _comment, "assert-symlink": _symlink, "assert-file": _file,
    "assert-failed": _failed, "assert-log": _log, "assert-no-log": _no_log,
}
SETUP = {"bridge", "missing-lxcpath", "empty-lxcpath", "fstab", "name", "init-systemd"}


# --- systemd-analyze verify ---------------------------------------------------------------


FAKE_PROGRAMS = ("libexec/lxcsd-helper", "libexec/lxcsd-console", "libexec/lxcsd-net",
                 "libexec/lxcsd-autostart", "bin/lxcsd")


def unit_tree(out: Path, dest: Path) -> Path:
    """The static units rendered as install.sh does (with stand-in programs under
    ``dest/../libexec`` and ``../bin``, so verify finds what ExecStart= names) plus the
    generator's output, in one directory for SYSTEMD_UNIT_PATH."""
    dest.mkdir()
    for program in FAKE_PROGRAMS:
        path = dest.parent / program
        path.parent.mkdir(exist_ok=True)
        path.write_text("#!/bin/sh\nexit 1\n")
        path.chmod(0o755)
    for unit in sorted((REPO / "units").iterdir()):
        text = (unit.read_text().replace("@LIBEXECDIR@", str(dest.parent / "libexec"))
                .replace("@BINDIR@", str(dest.parent / "bin"))
                .replace("@DATADIR@", str(REPO / "config")))
        (dest / unit.name.removesuffix(".in")).write_text(text)
    shutil.copytree(out, dest, dirs_exist_ok=True, symlinks=True)
    return dest


def generated_units(out: Path) -> list[str]:
    """Every unit the output adds to or configures (drop-in dirs and wants)."""
    units = set()
    for entry in out.iterdir():
        if entry.name.endswith((".d", ".wants")):
            units.add(entry.name.rsplit(".", 1)[0])
            if entry.name.endswith(".wants"):
                units.update(p.name for p in entry.iterdir())
    return sorted(units)


def verify(out: Path, tmp: Path) -> tuple[list[str], str]:
    """(units verified, systemd-analyze's complaints about them)."""
    tree = unit_tree(out, tmp / "units")
    units = generated_units(out)
    if not units:
        return [], ""
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tree}:", "SYSTEMD_LOG_COLOR": "0"}
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *units],
                            capture_output=True, text=True, env=env, timeout=120)
    complaints = "\n".join(line for line in (result.stdout + result.stderr).splitlines()
                           if line.strip())
    if result.returncode != 0 and not complaints:
        complaints = f"systemd-analyze verify exited {result.returncode}"
    return units, complaints
