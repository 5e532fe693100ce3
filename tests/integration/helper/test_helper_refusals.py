"""``lxcsd check`` agrees with ``lxcsd-helper start``: every refusal of the start path, walked.

Each case is a config a real start (the helper, as root, no systemd) refuses: the test runs
the start and ``lxcsd check`` on the same file and asserts both name the same problem, check
with file:line as an error (exit 1), the start failing before it made anything. And the
reverse: the configs check accepts in these cases' neighbourhood start.

``test_every_refusal_of_the_plan_is_walked`` reads lxcsd/runtime/compiler.py (the one
validation both run, ``make_plan``) and fails when a refusal there has no case here: a new
refusal must come with its case. Refusals that depend on AppArmor (``lsm.decide``) cannot
happen on this host: tests/unit/runtime/test_rt_lsm.py covers them with described hosts, the
VM tier for real.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcsd.runtime import compiler as plan_module
from tests.infra import helper_util as hu

REPO = Path(__file__).resolve().parents[3]
NOTIFY_POLICY = "2\ndenylist\nmknod notify\n"


def _memory_in_cgroup2() -> bool:
    from lxcsd.runtime import compiler

    return "memory" in compiler.host_controllers()


def _remove_init(root: Path, base: Path) -> None:
    (root / "sbin/init").unlink()


def _policy(text: str) -> Callable[[Path, Path], None]:
    def write(root: Path, base: Path) -> None:
        (base / "policy.seccomp").write_text(text)

    return write


# (id, extra config lines ({base}: the lxcpath, {root}: the rootfs), what both must say,
#  optional set-up of the rootfs/lxcpath)
CASES: list[tuple[str, str, str, Callable[[Path, Path], None] | None]] = [
    ("no-rootfs", "lxc.rootfs.path =\n", "lxc.rootfs.path: no root file system configured",
     None),
    ("storage", "lxc.rootfs.path = btrfs:/srv/x\n", "storage type 'btrfs' is not supported",
     None),
    ("rootfs-missing", "lxc.rootfs.path = dir:/nonexistent/rootfs\n",
     "lxc.rootfs.path: /nonexistent/rootfs is not a directory", None),
    ("overlay-lower", "lxc.rootfs.path = overlay:/nonexistent/lower:{base}/upper\n"
     "lxc.rootfs.mount = {base}/mnt\n",
     "overlay lower directory /nonexistent/lower is not a directory", None),
    ("overlay-mount", "lxc.rootfs.path = overlay:{root}:{base}/upper\n",
     "lxc.rootfs.mount: an overlay rootfs needs lxc.rootfs.mount", None),
    ("init-cmd", "lxc.init.cmd = /sbin/nope --flag\n",
     "lxc.init.cmd: /sbin/nope is not an executable file in the container's root", None),
    ("default-init", "", "has no executable /sbin/init (the default lxc.init.cmd)",
     _remove_init),
    ("idmap-overlap", "lxc.idmap = u 0 100000 10\nlxc.idmap = u 5 100100 10\n"
     "lxc.idmap = g 0 100000 10\n", "overlap on the container side", None),
    ("idmap-root", "lxc.idmap = u 1 100000 10\nlxc.idmap = g 1 100000 10\n",
     "the container's root (uid and gid 0) is not mapped", None),
    ("idmap-delegation", "lxc.idmap = u 0 700000 65536\nlxc.idmap = g 0 700000 65536\n",
     "are not delegated to root in /etc/subuid", None),
    ("keep-mnt", "lxc.namespace.keep = mnt\n",
     "keeping the host's mnt namespace is not supported", None),
    ("share-pid", "lxc.namespace.share.pid = 1\n",
     "sharing the pid namespace is not supported", None),
    ("cgroup-no-ns", "lxc.namespace.keep = cgroup\nlxc.mount.auto = cgroup:mixed\n",
     "the container would see the host's whole cgroup tree", None),
    ("cgroup-v1", "lxc.cgroup.net_cls.classid = 0x100001\n",
     "lxc.cgroup.net_cls.classid: cgroup v1 key with no cgroup2 equivalent", None),
    ("controller", "lxc.cgroup2.memory.max = 64M\n",
     "lxc.cgroup2.memory.max: the cgroup2 controller 'memory' is not available on this host",
     None),
    ("cap-number", "lxc.cap.drop = 60\n",
     "capability '60' is unknown to the running kernel", None),
    ("seccomp-file", "lxc.seccomp.profile = /nonexistent.seccomp\n",
     "lxc.seccomp.profile: cannot read /nonexistent.seccomp", None),
    ("seccomp-parse", "lxc.seccomp.profile = {base}/policy.seccomp\n",
     "policy.seccomp:2: ", _policy("2\nwhatlist\n")),
    ("seccomp-notify", "lxc.seccomp.profile = {base}/policy.seccomp\n",
     "seccomp notify actions are not supported yet", _policy(NOTIFY_POLICY)),
    ("console-path", "lxc.console.path = /dev/nonexistent-console\n",
     "lxc.console.path: /dev/nonexistent-console does not exist", None),
    ("no-seccomp-binding", "", "cannot compile the policy: the libseccomp binding",
     None),
]
# Cases run with a Python that finds a module first: python3-seccomp not installed.
NO_BINDING = "raise ImportError('python3-seccomp is not installed (test stand-in)')\n"


def _case_env(name: str, base: Path) -> dict[str, str]:
    if name != "no-seccomp-binding":
        return {}
    (base / "stubs").mkdir(exist_ok=True)
    (base / "stubs" / "seccomp.py").write_text(NO_BINDING)
    return {"PYTHONPATH": f"{base / 'stubs'}:{REPO}"}


def check(config: Path, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lxcsd.cli.main", "check", "--no-warnings",
                           str(config)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.mark.parametrize(("name", "extra", "expected", "setup"), CASES,
                         ids=[case[0] for case in CASES])
def test_check_reports_what_the_start_refuses(lxcpath: hu.Lxcpath, unit_cgroup: str,
                                              subids: None, name: str, extra: str,
                                              expected: str,
                                              setup: Callable[[Path, Path], None] | None
                                              ) -> None:
    if name == "controller" and _memory_in_cgroup2():
        pytest.skip("this host has the memory controller in cgroup2")
    root = lxcpath.base / name / "rootfs"
    lxcpath.container(name, extra.format(base=lxcpath.base, root=root))
    if setup is not None:
        setup(root, lxcpath.base)
    config = lxcpath.base / name / "config"
    env = _case_env(name, lxcpath.base)
    started = lxcpath.start(name, unit_cgroup, env=env)
    assert started.status == 1 and expected in started.stderr, started
    assert "READY=1" not in started.fields and started.state is None
    assert hu.host_mounts_under(lxcpath.base) == []
    checked = check(config, env)
    assert checked.returncode == 1, checked
    errors = [line for line in checked.stdout.splitlines() if ": error: " in line]
    assert any(expected in line for line in errors), checked.stdout
    assert all(line.startswith(f"{config}:") or line.startswith(str(lxcpath.base))
               for line in errors), errors  # file:line (the policy's own for seccomp-parse)


def test_what_check_accepts_starts(lxcpath: hu.Lxcpath, unit_cgroup: str,
                                   subids: None) -> None:
    """The neighbours of the refusals: check says 0 errors, and the start succeeds."""
    root = lxcpath.base / "ok1" / "rootfs"
    policy = lxcpath.base / "ok.seccomp"
    policy.write_text("2\ndenylist\nkexec_load errno 1\n")
    lxcpath.container("ok1", "lxc.cap.drop = sys_module\nlxc.namespace.keep = ipc\n"
                      f"lxc.seccomp.profile = {policy}\n"
                      "lxc.cgroup.devices.allow = c 1:3 rwm\n")  # v1 devices: the unit's
    assert root.is_dir()
    checked = check(lxcpath.base / "ok1" / "config")
    assert checked.returncode == 0 and "0 error(s)" in checked.stderr, checked
    started = lxcpath.start("ok1", unit_cgroup)
    assert started.status == 0, started


def _refusal_texts() -> list[tuple[int, str]]:
    """(line, the longest literal part of the message) of every refusal raised in compiler.py."""
    source = Path(plan_module.__file__).read_text()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
            continue
        call = node.exc
        name = getattr(call.func, "id", "")
        index = {"key_error": 2, "ConfigError": 0}.get(name)
        if index is None or len(call.args) <= index:
            continue
        message = call.args[index]
        parts = [message.value] if isinstance(message, ast.Constant) else \
            [v.value for v in getattr(message, "values", []) if isinstance(v, ast.Constant)]
        # "... (it has: {x})": the text before a parenthesis, which formatting follows
        texts = [str(p).split("(")[0].strip(" :") for p in parts]
        texts = [text for text in texts if text]
        if texts:  # a message passed through (exc.message) has no literal part
            found.append((node.lineno, max(texts, key=len)))
    return found


def test_every_refusal_of_the_plan_is_walked() -> None:
    texts = _refusal_texts()
    assert len(texts) >= 14, texts  # the walk found them
    expected = [case[2] for case in CASES]
    missing = [(line, text) for line, text in texts
               if not any(text in fragment or fragment in text for fragment in expected)]
    assert not missing, f"refusals in compiler.py without a case here: {missing}"
