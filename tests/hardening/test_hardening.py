"""A hostile root inside the container tries to reach the host (issue 15), through the
static probe tests/probe/hostile.c, in privileged and unprivileged containers started by
the real lxcsd-helper on this host (hybrid cgroups: the CVE-2022-0492 setting). Each class
is shown closed in lxcsd's containers and, with the same probe, open in a deliberately
weakened one, so a probe that cannot see a hole does not pass for a closed one.

Classes: capabilities that reach the host's kernel; cgroup v1 (a host release_agent,
sibling cgroups, a new hierarchy); fresh proc/sysfs (host core_pattern); bind sources
inside the rootfs; hijacking lxcsd attach (CVE-2019-5736); TIOCSTI into the caller's
terminal. tests/hardening/compare_lxc.py runs the same probes under LXC.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hardening import hardening_util as hb
from tests.infra import helper_util as hu

MODES = ["privileged", "unprivileged"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hb.build_hostile(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def box(request: pytest.FixtureRequest, lxcpath: hu.Lxcpath, unit_cgroup: str,
        hostile: Path, subids: None) -> Callable[..., hb.Box]:
    """A factory of running containers: box(name, privileged, extra config)."""
    def make(name: str, privileged: bool, extra: str = "", start: bool = True) -> hb.Box:
        return hb.make_box(lxcpath, unit_cgroup, name, hostile, privileged=privileged,
                           extra=extra, start=start)
    return make


def _apparmor_enforcing() -> bool:
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False


# ------------------------------------------------------------------------------------------
# Capabilities


@pytest.mark.parametrize("mode", MODES)
def test_caps_closed(box: Callable[..., hb.Box], mode: str) -> None:
    result = box("cap", mode == "privileged").probe("caps")
    assert result.verdict == "closed", result
    if mode == "privileged":  # the probe did try, as host root
        assert "caps init_userns=1" in result.stdout, result
        # CAP_SYS_ADMIN, kept, would do for both: the default seccomp policy denies them.
        assert "caps use bpf-map EPERM" in result.stdout, result
        assert "caps use perf-system-wide EPERM" in result.stdout, result


@pytest.fixture
def no_seccomp(lxcpath: hu.Lxcpath) -> str:
    """Config lines for a policy that denies nothing (an empty lxc.seccomp.profile resets
    it to lxcsd's default instead)."""
    policy = lxcpath.base / "allow-all.seccomp"
    policy.write_text("2\ndenylist\n")
    return f"lxc.seccomp.profile = {policy}\n"


def test_caps_weakened_open(box: Callable[..., hb.Box], no_seccomp: str) -> None:
    """lxc.cap.drop = (empty) forgets the default drops: syslog, bpf, perfmon, sys_rawio
    come back, and without seccomp the probe uses them."""
    result = box("capw", True, "lxc.cap.drop =\n" + no_seccomp).probe("caps")
    assert result.verdict == "open", result
    assert "caps held sys_rawio" in result.stdout and "caps use bpf-map ok" in result.stdout


def test_caps_old_template_line_no_longer_replaces_the_defaults(
        box: Callable[..., hb.Box]) -> None:
    """The drop line the busybox template used to write now adds to the defaults."""
    line = "lxc.cap.drop = sys_module mac_admin mac_override sys_time\n"
    result = box("capt", True, line).probe("caps")
    assert result.verdict == "closed" and "sys_rawio" not in result.stdout, result


# ------------------------------------------------------------------------------------------
# cgroup v1


@pytest.mark.parametrize("mode", MODES)
def test_cgroup_v1_closed(box: Callable[..., hb.Box], mode: str) -> None:
    result = box("cg", mode == "privileged").probe("cgroup1")
    if "cgroup1 hierarchies=0" in result.stdout:
        pytest.skip("no cgroup v1 hierarchy on this host")
    assert result.verdict == "closed", result
    mounted = [line for line in result.lines if " mounted " in line]
    assert mounted and all("root=own release_agent=absent" in line for line in mounted), result
    # Refused: EPERM outside the initial cgroup namespace, EINVAL for the release_agent
    # option outside the initial user namespace.
    assert "cgroup1 new-hierarchy E" in result.stdout, result


def test_cgroup_v1_weakened_open(box: Callable[..., hb.Box]) -> None:
    """A privileged container left in the host's cgroup namespace (lxc.namespace.keep =
    cgroup) sees the hierarchies' roots: a release_agent the kernel would let it rewrite.
    (Never written: the probe evaluates the kernel's rule.)"""
    extra = "lxc.namespace.keep = cgroup\nlxc.mount.auto =\nlxc.mount.auto = proc:mixed sys:mixed\n"
    result = box("cgw", True, extra).probe("cgroup1")
    if "cgroup1 hierarchies=0" in result.stdout:
        pytest.skip("no cgroup v1 hierarchy on this host")
    assert result.verdict == "open", result
    assert "root=host release_agent=rewritable" in result.stdout, result


# ------------------------------------------------------------------------------------------
# Fresh proc and sysfs


def test_procsys_unprivileged_closed(box: Callable[..., hb.Box]) -> None:
    """The user namespace keeps host sysctls and sysfs read-only, fresh mounts or not."""
    result = box("pu", False).probe("procsys")
    assert result.verdict == "closed", result
    assert "procsys mount-proc ok" in result.stdout  # allowed in a user namespace, harmless


def test_procsys_privileged_needs_an_lsm(box: Callable[..., hb.Box]) -> None:
    """Documented limit: a privileged container keeps CAP_SYS_ADMIN, so without an LSM it
    can mount a fresh proc and reach the host's core_pattern (the probe detects it); with
    AppArmor's generated profile it cannot (the VM tier proves that)."""
    result = box("pp", True).probe("procsys")
    assert result.verdict == ("closed" if _apparmor_enforcing() else "open"), result
    assert "procsys own-proc core_pattern-writable EROFS" in result.stdout, result


# ------------------------------------------------------------------------------------------
# Bind sources inside the rootfs


@pytest.fixture
def host_marker(lxcpath: hu.Lxcpath) -> Iterator[Path]:
    marker = lxcpath.base / f"host-marker-{secrets.token_hex(4)}"
    marker.write_text("on the host\n")
    yield marker


@pytest.mark.parametrize("mode", MODES)
def test_bind_source_symlink_closed(box: Callable[..., hb.Box], host_marker: Path,
                                    mode: str) -> None:
    """The container makes /link -> / in its root; the admin's next start binds
    ROOTFS/link: it binds the container's own /, not the host's."""
    b = box("bs", mode == "privileged")
    result = hb.bind_source(b, host_marker)
    assert result.verdict == "closed", result
    assert b.attach("--", "ls", "/mnt/x/bin/busybox").returncode == 0  # its own root


def test_bind_source_weakened_open(box: Callable[..., hb.Box], host_marker: Path) -> None:
    """The probe sees the host's files when / is bound (here by the admin's config)."""
    b = box("bsw", True, "lxc.mount.entry = / mnt/x none rbind,create=dir 0 0\n")
    assert b.probe("hostfile", f"/mnt/x{host_marker}").verdict == "open"


# ------------------------------------------------------------------------------------------
# Hijacking lxcsd attach


@pytest.mark.parametrize("mode", MODES)
def test_attach_cannot_be_hijacked(box: Callable[..., hb.Box], mode: str) -> None:
    result = hb.attach_hijack(box("at", mode == "privileged"))
    assert result.verdict == "closed", result
    assert "watch seen=0" not in result.stdout, result  # it did see the attached processes
    assert "exe_host=1" not in result.stdout


NAIVE_ATTACH = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pid = int(sys.argv[1])
fds = [os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
       for ns in ("user", "mnt", "pid", "uts", "ipc", "net", "cgroup")
       if os.stat(f"/proc/{pid}/ns/{ns}").st_ino != os.stat(f"/proc/self/ns/{ns}").st_ino]
for fd in fds:
    assert libc.setns(fd, 0) == 0, os.strerror(ctypes.get_errno())
child = os.fork()
if child == 0:  # visible in the container from here: the host's python, all privileges
    open("/etc/passwd").read()
    os.execv("/bin/true", ["true"])
os.waitpid(child, 0)
"""


@pytest.mark.parametrize("mode", MODES)
def test_attach_weakened_open(box: Callable[..., hb.Box], mode: str) -> None:
    """A naive attach, as lxcsd's was (fork into the pid namespace, read /etc/passwd
    inside, then drop privileges and exec), is caught: the FIFO trap stalls it while it is
    the host's python, dumpable and fully privileged."""
    b = box("atw", mode == "privileged")
    naive = ["/usr/bin/python3", "-I", "-c", NAIVE_ATTACH, str(b.init_pid)]
    result = hb.watch(b, lambda: subprocess.run(naive, check=True, timeout=60,
                                             stdin=subprocess.DEVNULL))
    assert result.verdict == "open", result
    assert "exe_host=1" in result.stdout and "ptrace=ok" in result.stdout, result


# ------------------------------------------------------------------------------------------
# TIOCSTI into the caller's terminal


@pytest.mark.parametrize("mode", MODES)
def test_tiocsti_closed(box: Callable[..., hb.Box], mode: str) -> None:
    """The caller's stdout is a terminal (stdin /dev/null): the command gets a pty of the
    container's own, and the default policy denies TIOCSTI even there."""
    result, typed = hb.tiocsti(box("ti", mode == "privileged"))
    assert typed == b"", typed
    assert result.returncode == 0, result


@pytest.mark.parametrize("mode", MODES)
def test_tiocsti_weakened_open(box: Callable[..., hb.Box], no_seccomp: str, mode: str) -> None:
    """Without a pty (-T) and without seccomp, the command holds the caller's terminal and
    types into it."""
    b = box("tiw", mode == "privileged", no_seccomp)
    _, typed = hb.tiocsti(b, "-T")
    assert b"#hostile-typed" in typed, typed
