"""lxcsd create/copy/destroy on the real file system, as root, in temporary lxcpaths (the
host's containers are never touched): the busybox template, unprivileged id shifting, the
copy's rewritten config, refusals and cleanup, and destroy never following symlinks or
deleting into mounts."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lxcsd import linux
from lxcsd.cli import copy_cmd
from lxcsd.cli import main as cli
from lxcsd.config.load import load_container
from lxcsd.errors import LxcsdError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def lxcpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "lxc"
    path.mkdir()
    monkeypatch.setenv("LXCSD_LXCPATH", str(path))
    # No D-Bus here: "running" is judged by state files, kept in the test's directory.
    monkeypatch.setenv("LXCSD_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("LXCSD_LOCK_DIR", str(tmp_path / "lock"))  # LXC's is /run/lxc/lock
    return path


def lxcsd(*argv: str) -> int:
    return cli.main(list(argv))


def fails(message: str, *argv: str) -> None:
    """The command fails with message (raised: --debug keeps the exception)."""
    with pytest.raises(LxcsdError, match=message):
        cli.main(["--debug", *argv])


def test_create_busybox(lxcpath: Path) -> None:
    assert lxcsd("create", "b1", "-f", "/dev/null") == 0
    root = lxcpath / "b1/rootfs"
    assert os.access(root / "bin/busybox", os.X_OK)
    assert os.readlink(root / "sbin/init") == "/bin/busybox"
    assert (root / "etc/hostname").read_text() == "b1\n"
    container = load_container("b1")  # the written config reads back
    assert container.uts_name == "b1" and container.rootfs.path == str(root)
    assert container.signals.halt is not None
    result = subprocess.run([str(root / "bin/busybox"), "echo", "ok"], capture_output=True,
                            text=True, check=True)  # static: runs anywhere
    assert result.stdout == "ok\n"
    assert lxcsd("check", "b1") == 0
    fails("already exists", "create", "b1", "-f", "/dev/null")


def test_busybox_console_shell_has_job_control(lxcpath: Path) -> None:
    """The template's console script, run on a terminal in the new root as busybox init runs
    it, gives a shell whose controlling terminal is the console (no "job control turned
    off"), with every program it names present in the root; the process init started stays
    while the shell runs (busybox init respawns the script as soon as it ends)."""
    assert lxcsd("create", "b2", "-f", "/dev/null") == 0
    root = lxcpath / "b2/rootfs"
    master, slave = os.openpty()
    pid = os.fork()
    if pid == 0:  # as busybox init starts it: a new session, the console without O_CTTY
        os.setsid()
        tty = os.open(os.ttyname(slave), os.O_RDWR | os.O_NOCTTY)
        for fd in (0, 1, 2):
            os.dup2(tty, fd)
        # The pty at /dev/console, as the runtime binds it (in a mount namespace of ours).
        linux.unshare(linux.CLONE_NEWNS)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        (root / "dev/console").touch()
        linux.mount(os.ttyname(slave), str(root / "dev/console"), None, linux.MS_BIND)
        os.chroot(root)
        os.chdir("/")
        os.execve("/etc/init.d/console", ["console"], {"PATH": "/bin:/sbin:/usr/bin:/usr/sbin"})
    os.close(slave)
    out = b""

    def read_until(marker: bytes) -> None:
        nonlocal out
        deadline = time.monotonic() + 10
        while marker not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    out += os.read(master, 4096)
                except OSError:  # EIO: the terminal's last process is gone
                    return

    try:
        read_until(b"# ")  # the prompt: typing earlier is flushed by the starting shell
        os.write(master, b"set -o | grep -c 'monitor.*on' | sed s/^/jobs-/; echo ppid-$PPID\n")
        read_until(b"jobs-1")
        read_until(f"ppid-{pid}\r\n".encode())
        time.sleep(0.5)
        alive = os.waitpid(pid, os.WNOHANG) == (0, 0)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(master)
    text = out.decode(errors="replace")
    assert "not found" not in text and "job control turned off" not in text, text
    assert "jobs-1" in text, text
    # The shell's parent is the script init started, and it waits for the shell.
    assert f"ppid-{pid}\r\n" in text and alive, text


def test_create_is_unprivileged_by_default(lxcpath: Path) -> None:
    from lxcsd.cli._containers import subid_base

    try:
        base = subid_base("u"), subid_base("g")
    except LxcsdError:
        pytest.skip("root has no /etc/subuid range")
    assert lxcsd("create", "u1", "-f", "/dev/null") == 0
    root = lxcpath / "u1/rootfs"
    for path in (root, root / "etc/passwd", root / "bin/busybox"):
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == base
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (lxcpath / "u1").stat().st_uid == base[0]  # the mapped root reaches its rootfs
    idmaps = load_container("u1").idmaps
    assert [m.as_tuple() for m in idmaps] == [("u", 0, base[0], 65536),
                                             ("g", 0, base[1], 65536)]


def test_create_privileged(lxcpath: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lxcsd("create", "p1", "-f", "/dev/null", "--privileged") == 0
    assert "note: p1 is privileged: its root is the host's root" in capsys.readouterr().err
    assert load_container("p1").idmaps == ()
    assert (lxcpath / "p1/rootfs/bin/busybox").stat().st_uid == 0
    with pytest.raises(SystemExit):
        cli.main(["create", "p2", "--privileged", "--unprivileged"])
    assert "not allowed with argument --privileged" in capsys.readouterr().err


def test_create_without_subids_says_what_to_do(lxcpath: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from lxcsd.runtime import idmap

    monkeypatch.setattr(idmap, "read_subids", lambda *args: [])
    fails(r"root has no range of 65536 ids in /etc/subuid \(add a line such as "
          r"root:100000:65536 to /etc/subuid, or create a privileged container with "
          r"--privileged\)", "create", "n1", "-f", "/dev/null")
    assert not (lxcpath / "n1").exists()


def test_create_failure_leaves_nothing(lxcpath: Path) -> None:
    fails("no such file", "create", "x1", "-f", "/nonexistent/config")
    assert not (lxcpath / "x1").exists()


def test_copy_rewrites_name_paths_and_hwaddr(lxcpath: Path) -> None:
    assert lxcsd("create", "src", "-f", "/dev/null") == 0
    config = lxcpath / "src/config"
    fstab = lxcpath / "src/fstab"
    fstab.write_text("")
    with config.open("a") as f:
        f.write("lxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:00:00:01\n"
                f"lxc.mount.fstab = {fstab}\n")
    (lxcpath / "src/rootfs/root/data").write_text("payload")
    assert lxcsd("copy", "src", "dst") == 0
    copied = load_container("dst")
    assert copied.uts_name == "dst"
    assert copied.rootfs.path == str(lxcpath / "dst/rootfs")
    assert copied.mounts.fstab == str(lxcpath / "dst/fstab")
    assert copied.net[0].hwaddr not in (None, "00:16:3e:00:00:01")
    assert (lxcpath / "dst/rootfs/root/data").read_text() == "payload"
    assert (lxcpath / "dst/rootfs/etc/hostname").read_text() == "dst\n"
    assert load_container("src").uts_name == "src"  # the source is unchanged
    fails("already exists", "copy", "src", "dst")


def test_copy_refuses_a_running_source_and_cleans_up_a_failure(
        lxcpath: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lxcsd.runtime import state

    assert lxcsd("create", "src", "-f", "/dev/null") == 0
    state.write("src", {"name": "src", "init_pid": os.getpid()})
    fails("running", "copy", "src", "dst")
    os.unlink(state.state_path("src"))

    def broken(*args: object) -> None:
        raise LxcsdError("disk full")

    monkeypatch.setattr(copy_cmd, "rewrite_config", broken)
    fails("disk full", "copy", "src", "dst")
    assert not (lxcpath / "dst").exists()


def test_destroy_never_follows_symlinks(lxcpath: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    assert lxcsd("create", "d1", "-f", "/dev/null") == 0
    (lxcpath / "d1/rootfs/link-out").symlink_to(outside)
    (lxcpath / "d1/rootfs/file-link").symlink_to(outside / "precious")
    assert lxcsd("destroy", "d1") == 0
    assert not (lxcpath / "d1").exists()
    assert (outside / "precious").read_text() == "keep"


def test_destroy_a_symlinked_directory_removes_only_the_link(lxcpath: Path,
                                                             tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "config").write_text(f"lxc.rootfs.path = dir:{real}/rootfs\n")
    (real / "rootfs").mkdir()
    (lxcpath / "s1").symlink_to(real)
    assert lxcsd("destroy", "s1") == 0
    assert not (lxcpath / "s1").exists() and (real / "config").exists()


def test_destroy_keeps_an_outside_rootfs(lxcpath: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rootfs = tmp_path / "ext-rootfs"
    rootfs.mkdir()
    (lxcpath / "e1").mkdir()
    (lxcpath / "e1/config").write_text(f"lxc.rootfs.path = dir:{rootfs}\n")
    assert lxcsd("destroy", "e1") == 0
    assert rootfs.is_dir() and f"kept {rootfs}" in capsys.readouterr().err


def test_destroy_refuses_running_and_mounts_below(lxcpath: Path) -> None:
    from lxcsd.runtime import state

    assert lxcsd("create", "r1", "-f", "/dev/null") == 0
    state.write("r1", {"name": "r1", "init_pid": os.getpid()})
    fails("is running", "destroy", "r1")
    os.unlink(state.state_path("r1"))
    # A mount below the directory (in a private mount namespace of a child process).
    mnt = lxcpath / "r1/rootfs/mnt"
    script = (f"mount -t tmpfs none {mnt} && touch {mnt}/inside && "
              f"{sys.executable} -m lxcsd.cli.main destroy r1; echo rc=$?")
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, check=True,
                            env={**os.environ})
    assert "rc=1" in result.stdout and "mounted below it" in result.stderr
    assert (lxcpath / "r1/config").exists()


def test_interrupted_create_leaves_nothing(lxcpath: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C half way (here: in the template's build, after files were made) removes the
    container and ends with one line and status 130, no traceback."""
    from lxcsd.templates import busybox

    real = busybox.build

    def interrupted(rootfs: str, name: str) -> None:
        real(rootfs, name)
        raise KeyboardInterrupt

    monkeypatch.setattr(busybox, "build", interrupted)
    assert lxcsd("create", "i1", "-f", "/dev/null") == 130
    assert os.listdir(lxcpath) == []  # neither i1 nor its hidden build (.lxcsd-create-*)
    err = capsys.readouterr().err
    assert err.startswith(f"lxcsd: create i1: interrupted; removed what it had made "
                          f"({lxcpath}/.lxcsd-create-") and err.count("\n") == 1, err


@pytest.mark.skipif(not os.path.exists("/usr/sbin/debootstrap"), reason="needs debootstrap")
def test_debian_create_shows_progress_and_ctrl_c_cleans_up(lxcpath: Path,
                                                           tmp_path: Path) -> None:
    """A real `lxcsd create -t debian` (debootstrap from the host's mirror): its progress
    lines come with the elapsed time; SIGINT (what Ctrl-C sends it: debootstrap runs in a
    session of its own) stops debootstrap's whole process group, removes the container and
    the partial cache, and exits 130 with one line."""
    cache = tmp_path / "cache"
    env = {**os.environ, "LXCSD_DEBIAN_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    # SIGINT as a terminal's: a shell's background job ignores it, and Python then never
    # raises KeyboardInterrupt; the child gets the default back.
    proc = subprocess.Popen([sys.executable, "-m", "lxcsd.cli.main", "create", "d1", "-t",
                             "debian"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if "] downloading packages" in line:
            time.sleep(2)  # well inside debootstrap: packages are being fetched
            break
    assert any(line.startswith("lxcsd: [") and " s] downloading packages" in line
               for line in seen), seen
    partial = [p for p in cache.iterdir() if p.name.startswith(".partial-")]
    # Built under a hidden name; d1 itself appears only when complete.
    building = [p for p in lxcpath.iterdir() if p.name.startswith(".lxcsd-create-")]
    assert partial and building and building[0].is_dir() and not (lxcpath / "d1").exists()
    proc.send_signal(2)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, seen + [rest]
    assert rest.splitlines()[-1] == (f"lxcsd: create d1: interrupted; removed what it had "
                                     f"made ({building[0]})")
    assert "Traceback" not in rest
    assert list(lxcpath.iterdir()) == [] and list(cache.iterdir()) == []
    left = subprocess.run(["pgrep", "-f", str(partial[0])], capture_output=True, text=True)
    assert left.stdout == "", left.stdout  # no debootstrap, dpkg or wget left running
