"""A miniature lxcsd-helper for testing the runtime primitives with real namespaces.

It follows docs/design.md's process design, with the pieces under test:

    pytest ── fork ──▶ H (subreaper, own process group: the test's "helper")
                        ├─ fork ──▶ C1: [unshare user ns; H writes maps] unshare mount, uts,
                        │           ipc, net, cgroup, pid; fork C2; send its pidfd; exit
                        └─ (reaps) C2: pid 1 of the new pid ns: spec.build(ctx) builds the
                                   root and pivots, spec.before_exec(ctx) drops caps / loads
                                   seccomp, then exec of spec.argv

Sync points (lxcsd.runtime.exec_sync.Sync): 0 H → C1 "moved into the cgroup", 1 C1 → H
"user ns made", 2 H → C1 "maps written" (+ an idmapped rootfs tree), 3 C1 → H "C2 forked"
(+ C2's pidfd). C2 reports failures on the exec report pipe; its stdout/stderr come back
through a pipe, and H writes spec.stdin to its stdin after running spec.host_check(pid of
C2) while the container waits on `read`.

Everything runs in forked copies of the pytest process, so build/host_check may be closures.
The pytest process itself never changes a namespace.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import subprocess
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from lxcsd import linux
from lxcsd.runtime import caps, cgroup, dev, exec_sync, idmap, mounts, seccomp_policy

NS_FLAGS = (linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWNET
            | linux.CLONE_NEWCGROUP | linux.CLONE_NEWPID)
BUILD_MARK = "lxcsd-build-ms "
DEFAULT_MAP = [("u", 0, 100000, 65536), ("g", 0, 100000, 65536)]


class Ctx:
    """What C2's build steps share."""

    def __init__(self, spec: Spec, idmapped_fd: int) -> None:
        self.spec = spec
        self.idmapped_fd = idmapped_fd
        self.root_fd = -1
        self.dev_fd = -1
        self.devpts_fd = -1
        self.filter: Any = None
        self.notes: dict[str, Any] = {}


class Spec:
    def __init__(self, *, rootfs: str, argv: Sequence[str],
                 build: Callable[[Ctx], None] | None = None,
                 before_exec: Callable[[Ctx], None] | None = None,
                 userns: Sequence[tuple[str, int, int, int]] | None = None,
                 idmapped_rootfs: bool = False, cgroup_dir: str | None = None,
                 host_check: Callable[[int], Any] | None = None, stdin: bytes = b"",
                 timeout: float = 20.0) -> None:
        self.rootfs = rootfs
        self.argv = list(argv)
        self.build = build
        self.before_exec = before_exec
        self.userns = list(userns) if userns else None
        self.idmapped_rootfs = idmapped_rootfs
        self.cgroup_dir = cgroup_dir
        self.host_check = host_check
        self.stdin = stdin
        self.timeout = timeout


class Result:
    def __init__(self, *, status: int | None = None, output: str = "",
                 report: str | None = None, extra: Any = None, error: str | None = None,
                 c2_pid: int = 0, exec_ms: float = 0.0) -> None:
        self.status = status
        self.output = output
        self.report = report
        self.extra = extra
        self.error = error
        self.c2_pid = c2_pid
        self.exec_ms = exec_ms  # H's fork of C1 to EOF on the report pipe (init exec'd)

    @property
    def build_ms(self) -> float | None:
        for line in self.output.splitlines():
            if line.startswith(BUILD_MARK):
                return float(line[len(BUILD_MARK):])
        return None

    @property
    def lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if not line.startswith(BUILD_MARK)]

    def check(self) -> Result:
        assert self.error is None, self.error
        assert self.report is None, f"container setup failed: {self.report}"
        assert self.status == 0, f"exit status {self.status}, output:\n{self.output}"
        return self

    def __repr__(self) -> str:
        return (f"Result(status={self.status}, report={self.report!r}, error={self.error!r},"
                f" output={self.output!r})")


# ------------------------------------------------------------------------------------------
# pytest side


def run(spec: Spec) -> Result:
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _host_main(spec, write_fd)
    os.close(write_fd)
    data = _read_until(read_fd, time.monotonic() + spec.timeout + 10)
    os.close(read_fd)
    if data is None:
        os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    if data is None:
        return Result(error=f"the test helper did not finish within {spec.timeout + 10} s")
    result: Result = pickle.loads(data)
    return result


def _read_until(fd: int, deadline: float) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# ------------------------------------------------------------------------------------------
# H


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout()


def _host_main(spec: Spec, result_fd: int) -> None:
    try:
        os.setpgid(0, 0)
        result = _host(spec)
    except BaseException:
        result = Result(error=traceback.format_exc())
    data = pickle.dumps(result)
    while data:
        data = data[os.write(result_fd, data):]
    os._exit(0)


def _host(spec: Spec) -> Result:
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    sync, report = exec_sync.Sync(), exec_sync.Report()
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    in_r, in_w = os.pipe2(os.O_CLOEXEC)
    started = time.perf_counter()
    c1 = os.fork()
    if c1 == 0:
        os.close(out_r)
        os.close(in_w)
        _c1(spec, sync.child_side(), report.child_side(), in_r, out_w)
    sync.parent_side()
    report.parent_side()
    os.close(in_r)
    os.close(out_w)
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, spec.timeout)
    pidfd = -1
    try:
        pidfd = _host_sync(spec, sync, c1)
        return _host_finish(spec, report, pidfd, in_w, out_r, started)
    except _Timeout:
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return Result(error=f"timeout after {spec.timeout} s", output=_drain(out_r))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _host_sync(spec: Spec, sync: exec_sync.Sync, c1: int) -> int:
    if spec.cgroup_dir:
        cgroup.move(c1, spec.cgroup_dir)
    sync.wake(0)
    if spec.userns:
        sync.wait(1)
        uids, gids = idmap.split_maps(spec.userns)
        idmap.write_maps(c1, uids, gids)
        fds = []
        if spec.idmapped_rootfs:
            userns_fd = os.open(f"/proc/{c1}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(mounts.idmapped_tree(spec.rootfs, userns_fd))
            os.close(userns_fd)
        sync.wake(2, fds)
        for fd in fds:
            os.close(fd)
    try:
        (pidfd,) = sync.wait(3, 1)
    finally:
        os.waitpid(c1, 0)
    return pidfd


def _host_finish(spec: Spec, report: exec_sync.Report, pidfd: int, in_w: int,
                 out_r: int, started: float) -> Result:
    c2 = pid_of_pidfd(pidfd)
    message = report.result()
    exec_ms = (time.perf_counter() - started) * 1000
    extra = None
    if message is None and spec.host_check is not None:
        extra = spec.host_check(c2)
    if spec.stdin:
        os.write(in_w, spec.stdin)
    os.close(in_w)
    output = _drain(out_r)
    _, status = os.waitpid(c2, 0)
    return Result(status=os.waitstatus_to_exitcode(status), output=output, report=message,
                  extra=extra, c2_pid=c2, exec_ms=exec_ms)


def _drain(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def pid_of_pidfd(pidfd: int) -> int:
    with open(f"/proc/self/fdinfo/{pidfd}", encoding="ascii") as f:
        for line in f:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    raise RuntimeError("pidfd without Pid:")


# ------------------------------------------------------------------------------------------
# C1 and C2


def _c1(spec: Spec, sync: exec_sync.Sync, report: exec_sync.Report, in_r: int,
        out_w: int) -> None:
    # Namespaces: all the host's. Cgroup: the test's (H moved us before sync point 0).
    def step() -> None:
        sync.wait(0)
        idmapped_fd = -1
        if spec.userns:
            linux.unshare(linux.CLONE_NEWUSER)
            sync.wake(1)
            fds = sync.wait(2, 1 if spec.idmapped_rootfs else 0)
            idmapped_fd = fds[0] if fds else -1
            # Become the namespace's root (host 100000) so files we make are owned by it.
            os.setgroups([])
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        linux.unshare(NS_FLAGS)
        c2 = os.fork()
        if c2 == 0:
            _c2(spec, report, in_r, out_w, idmapped_fd)
        sync.wake(3, [os.pidfd_open(c2)])

    exec_sync.run_reporting(report, step)
    os._exit(0)


def _c2(spec: Spec, report: exec_sync.Report, in_r: int, out_w: int,
        idmapped_fd: int) -> None:
    # Namespaces: new user (if spec.userns, maps written), mount (a copy of the host's),
    # uts, ipc, net, cgroup (rooted at the test cgroup), pid (we are its pid 1).
    def step() -> None:
        ctx = Ctx(spec, idmapped_fd)
        start = time.perf_counter()
        if spec.build is not None:
            spec.build(ctx)
        build_ms = (time.perf_counter() - start) * 1000
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.write(1, f"{BUILD_MARK}{build_ms:.2f}\n".encode())
        if spec.before_exec is not None:
            spec.before_exec(ctx)
        exec_sync.close_fds_except([report.write_fd])
        exec_sync.exec_init(spec.argv)

    exec_sync.run_reporting(report, step)


# ------------------------------------------------------------------------------------------
# The standard build: a busybox root with everything lxc.mount.auto = proc:mixed sys:mixed
# cgroup:mixed and lxc.autodev = 1 give.


def busybox_build(ctx: Ctx, *, hostname: str = "c1", proc: str = "mixed",
                  sys: str = "mixed", cgroup_mode: str | None = "mixed", ptys: int = 8,
                  ttys: int = 2, masks: bool = True, tty_gid: int | None = 5,
                  compile_filter: Callable[[], Any] | None = None,
                  before_pivot: Callable[[Ctx], None] | None = None) -> None:
    mounts.make_rslave()
    root = mounts.mount_rootfs("dir", ctx.spec.rootfs, idmapped_fd=ctx.idmapped_fd)
    ctx.root_fd = root
    host_dev = os.open("/dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    null = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
    mounts.mount_proc(root, proc)
    mounts.mount_sys(root, sys)
    if cgroup_mode:
        mounts.mount_cgroup(root, cgroup_mode)
    dev_fd = ctx.dev_fd = dev.mount_dev(root)
    ctx.notes["dev_method"] = dev.fill_dev(dev_fd, host_dev)
    ctx.devpts_fd = dev.mount_devpts(dev_fd, ptys + ttys, gid=tty_gid)
    _, console, _ = dev.allocate_pty(ctx.devpts_fd)
    dev.bind_console(dev_fd, console)
    tty_slaves = [dev.allocate_pty(ctx.devpts_fd)[1] for _ in range(ttys)]
    dev.bind_ttys(dev_fd, tty_slaves, tty_dir="lxc")
    dev.make_symlinks(dev_fd)
    dev.mount_shm(dev_fd)
    dev.mount_mqueue(dev_fd)
    if masks:
        files, dirs, readonly = mounts.protected_paths(proc, sys)
        mounts.mask_paths(root, files, dirs, null)
        mounts.make_readonly(root, readonly)
    linux.sethostname(hostname)
    linux.interface_up("lo")
    if compile_filter is not None:
        ctx.filter = compile_filter()  # imports seccomp: must happen before pivot_root
    if before_pivot is not None:
        before_pivot(ctx)
    mounts.pivot_root(root)


def host_ps_uid(pid: int) -> str:
    out = subprocess.run(["ps", "-o", "uid=", "-p", str(pid)], capture_output=True,
                         text=True, check=False)
    return out.stdout.strip()


# ------------------------------------------------------------------------------------------
# A function in a private mount namespace (no container): for mount tests that inspect the
# result from outside the root.


def in_mount_ns(fn: Callable[[], Any], timeout: float = 20.0) -> Any:
    """fn() in a forked child with its own mount namespace (made a recursive slave);
    returns its result or raises AssertionError with the child's traceback."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            linux.unshare(linux.CLONE_NEWNS)
            mounts.make_rslave()
            data = pickle.dumps(("ok", fn()))
        except BaseException:
            data = pickle.dumps(("error", traceback.format_exc()))
        while data:
            data = data[os.write(write_fd, data):]
        os._exit(0)
    os.close(write_fd)
    answer = _read_until(read_fd, time.monotonic() + timeout)
    os.close(read_fd)
    if answer is None:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert answer, "the mount namespace child did not answer"
    kind, value = pickle.loads(answer)
    assert kind == "ok", value
    return value


def mount_points(prefix: str = "") -> list[str]:
    """Mount points of this process (mountinfo field 5), under prefix if given."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix.rstrip("/") + "/")] \
        if prefix else points


def finish(ctx: Ctx, keep: frozenset[int] | None = None, *, uid: int = 0, gid: int = 0,
           groups: Sequence[int] = ()) -> None:
    """The last steps before exec: caps.apply with the seccomp filter loaded in its place.
    (Runs after pivot_root: everything it needs was imported before.)"""
    def load() -> None:
        if ctx.filter is not None:
            seccomp_policy.load(ctx.filter)

    if keep is None:
        load()
    else:
        caps.apply(keep, uid=uid, gid=gid, groups=groups, load_seccomp=load)
