"""LXC's hooks (``lxc.hook.*``): the environment, the arguments, and running them.

Where and when each hook runs is decided by its caller, as liblxc does (start.c, conf.c):

| hook | caller, namespaces, moment |
| --- | --- |
| pre-start | helper H, host namespaces, before any setup |
| pre-mount | C2, container mount ns, before the rootfs is mounted |
| mount | C2, container namespaces, rootfs mounted, before pivot_root |
| autodev | C2, as mount, after /dev is populated (lxc.autodev = 1) |
| start-host | helper H, host namespaces, container set up, before init runs (``LXC_PID``) |
| start | C2, inside the container after pivot_root, right before init is exec'd |
| stop | ``lxcsd-helper stop``, host namespaces, init gone, namespaces still referenced |
| post-stop | ``lxcsd-helper cleanup``, host namespaces, after the container stopped |
| clone, destroy | the command line (lxcsd copy / destroy) |

Each hook command runs without a shell, unlike liblxc's ``sh -c "exec HOOK ..."``: the
command is split as LXC splits ``lxc.init.cmd`` (blanks, quotes group words; no variable
expansion), the program is looked up in ``PATH`` when it has no ``/``, and it is
executed with ``os.execve`` in a forked child (``subprocess`` costs milliseconds at import).
With ``lxc.hook.version = 0`` (the default) it gets the arguments ``NAME lxc HOOKTYPE``
(and, for ``stop``, the namespace references); with version 1 the same information is in
``LXC_HOOK_TYPE``, ``LXC_HOOK_SECTION`` and ``LXC_*_NS`` variables. The hook's output goes
where the caller's goes (the unit's journal). A hook exiting non-zero, killed, or not
executable raises LxcsdError naming the hook key and the config line.
"""

from __future__ import annotations

import os

from lxcsd.errors import LxcsdError
from lxcsd.runtime.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

HOOK_TYPES = ("pre-start", "pre-mount", "mount", "autodev", "start-host", "start", "stop",
              "post-stop", "clone", "destroy")
# liblxc's ns_info[]: /proc/PID/ns name -> variable given to version-1 stop hooks.
NS_ENV = {"user": "LXC_USER_NS", "mnt": "LXC_MNT_NS", "pid": "LXC_PID_NS",
          "uts": "LXC_UTS_NS", "ipc": "LXC_IPC_NS", "net": "LXC_NET_NS",
          "cgroup": "LXC_CGROUP_NS", "time": "LXC_TIME_NS"}
# Where liblxc mounts the rootfs when lxc.rootfs.mount is unset (LXCROOTFSMOUNT).
DEFAULT_ROOTFS_MOUNT = "/usr/lib/x86_64-linux-gnu/lxc/rootfs"
# The start hook runs inside the container: it must not see the host's environment.
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class HookSet(Record):
    """What running a container's hooks needs, decided from its config
    (``lxcsd.runtime.compiler.hook_set``): ``commands`` maps a hook type to its commands in
    order, each (text as written, argv words split as LXC splits them, "path:line"); the
    rest is what liblxc passes in the environment."""

    __slots__ = ("name", "config_path", "rootfs_spec", "rootfs_mount", "console_path",
                 "console_logfile", "version", "env_hooks", "env", "commands")
    name: str
    config_path: str
    rootfs_spec: str | None
    rootfs_mount: str
    console_path: str | None
    console_logfile: str | None
    version: int
    env_hooks: list[tuple[str, str | None]]
    env: list[tuple[str, str | None]]
    commands: dict[str, list[tuple[str, tuple[str, ...], str]]]

    def has(self, hook: str) -> bool:
        return bool(self.commands.get(hook))


def hook_env(hooks: HookSet, hook: str, *, rootfs_mount: str | None = None,
             base: Mapping[str, str] | None = None,
             extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a hook gets (liblxc's lxc_init, run_script_argv, lxc_end).

    ``base``: the environment to start from (default: this process's for host hooks; a
    clean one with only PATH and ``container=lxc`` for the ``start`` hook, which runs in
    the container). ``lxc.environment.hooks`` is added to every hook, ``lxc.environment``
    to the ``start`` hook (liblxc sets both in the child before it); ``extra_env`` last
    (``LXC_PID``, ``LXC_TARGET``, namespace references).
    """
    if base is None:
        base = {"PATH": CONTAINER_PATH, "container": "lxc"} if hook == "start" else os.environ
    env = dict(base)
    extra_lists = (hooks.env, hooks.env_hooks) if hook == "start" else (hooks.env_hooks,)
    for pairs in extra_lists:
        for name, value in pairs:
            if value is None:  # "NAME" alone: the helper's own value, if it has one
                value = os.environ.get(name)
            if value is not None:
                env[name] = value
    env["LXC_NAME"] = hooks.name
    env["LXC_CONFIG_FILE"] = hooks.config_path
    env["LXC_ROOTFS_MOUNT"] = rootfs_mount or hooks.rootfs_mount
    if hooks.rootfs_spec:
        env["LXC_ROOTFS_PATH"] = hooks.rootfs_spec
    if hooks.console_path:
        env["LXC_CONSOLE"] = hooks.console_path
    if hooks.console_logfile:
        env["LXC_CONSOLE_LOGPATH"] = hooks.console_logfile
    if os.path.exists("/proc/self/ns/cgroup"):
        env["LXC_CGNS_AWARE"] = "1"
    env["LXC_HOOK_VERSION"] = "1" if hooks.version else "0"
    if hooks.version:
        env["LXC_HOOK_TYPE"] = hook
        env["LXC_HOOK_SECTION"] = "lxc"
    if extra_env:
        env.update(extra_env)
    return env


def hook_argv(hooks: HookSet, hook: str, words: Sequence[str],
              args: Sequence[str] = ()) -> list[str]:
    """The argv of one hook command: its words, then ``NAME lxc HOOKTYPE`` for hook
    version 0, then ``args`` (liblxc passes the stop hook's namespace references there)."""
    argv = list(words)
    if not argv:
        raise LxcsdError(f"lxc.hook.{hook}: empty command")
    if not hooks.version:
        argv += [hooks.name, "lxc", hook]
    return argv + list(args)


def run(hooks: HookSet, hook: str, *, rootfs_mount: str | None = None,
        extra_env: dict[str, str] | None = None, args: Sequence[str] = (),
        base_env: Mapping[str, str] | None = None) -> None:
    """Run every ``lxc.hook.HOOK`` command in order; the first failure raises LxcsdError
    ("path:line: lxc.hook.HOOK: ...") and the rest do not run."""
    if hook not in HOOK_TYPES:
        raise LxcsdError(f"unknown hook type {hook!r}", "one of " + ", ".join(HOOK_TYPES))
    commands = hooks.commands.get(hook, ())
    if not commands:
        return
    env = hook_env(hooks, hook, rootfs_mount=rootfs_mount, base=base_env,
                   extra_env=extra_env)
    key = f"lxc.hook.{hook}"
    for command, words, where in commands:
        problem = run_command(hook_argv(hooks, hook, words, args), env)
        if problem:
            raise LxcsdError(f"{where}: {key}: {command!r} {problem}")


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """Fork, exec argv (PATH lookup), wait. Returns "" on success, else what went wrong
    ("exited with status 3", "was killed by signal 9", "could not be executed: ...")."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only execs
        _child(argv, env, write_fd)
    os.close(write_fd)
    try:
        error = _read_all(read_fd)
    finally:
        os.close(read_fd)
    status = _wait(pid)
    if error:
        return f"could not be executed: {error}"
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    code = os.waitstatus_to_exitcode(status)
    return f"exited with status {code}" if code else ""


def _child(argv: Sequence[str], env: Mapping[str, str], report_fd: int) -> None:
    # In the forked child: only exec, report a failure to exec on the close-on-exec pipe.
    try:
        os.execvpe(argv[0], list(argv), dict(env))
    except OSError as exc:
        message = f"{argv[0]}: {exc.strerror}"
        try:
            os.write(report_fd, message.encode(errors="replace"))
        finally:
            os._exit(127)
    os._exit(127)


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _wait(pid: int) -> int:
    return os.waitpid(pid, 0)[1]
