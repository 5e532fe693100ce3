"""Capabilities and seccomp as init sees them, through the static probe."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from lxcsd import linux
from lxcsd.paths import datadir
from lxcsd.runtime import caps, seccomp_policy
from tests.integration.primitives import harness as h

DEFAULT_POLICY = str(Path(datadir()) / "common.seccomp")


def _status(result: h.Result) -> dict[str, int]:
    found = {}
    for line in result.lines:
        key, sep, value = line.partition(":")
        if sep and key.startswith("Cap"):
            found[key] = int(value.strip(), 16)
    return found


def _run(root: Path, script: str, *, keep: frozenset[int] | None = None, uid: int = 0,
         policy: str | None = None, **spec_args: Any) -> h.Result:
    def compile_filter() -> object:
        return seccomp_policy.build_filter(seccomp_policy.read(policy))[0] if policy else None

    spec = h.Spec(rootfs=str(root), argv=["/bin/sh", "-c", script],
                  build=lambda ctx: h.busybox_build(ctx, compile_filter=compile_filter),
                  before_exec=lambda ctx: h.finish(ctx, keep, uid=uid, gid=uid),
                  **spec_args)
    return h.run(spec).check()


LXC_COMMON_DROP = ("mac_admin", "mac_override", "sys_time", "sys_module", "sys_rawio")


def test_cap_drop_shows_in_init_status(bb_root: Path) -> None:
    keep = caps.keep_set(drop=LXC_COMMON_DROP)
    result = _run(bb_root, "/bin/probe caps", keep=keep)
    status = _status(result)
    host_bounding = caps.status_caps()["CapBnd"]
    assert status["CapBnd"] == caps.mask(keep) & host_bounding
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"]
    assert status["CapInh"] == 0 and status["CapAmb"] == 0
    assert not caps.mask(caps.number(n, 40) for n in LXC_COMMON_DROP) & status["CapEff"]


def test_cap_keep_none_and_sys_admin_gone(bb_root: Path) -> None:
    keep = caps.keep_set(keep=["none", "chown", "kill"])
    script = "/bin/probe caps; /bin/probe syscall sethostname x 1"
    result = _run(bb_root, script, keep=keep)
    status = _status(result)
    assert caps.names(status["CapBnd"]) == ["chown", "kill"]
    assert caps.names(status["CapEff"]) == ["chown", "kill"]
    assert "sethostname ret=-1 errno=1" in result.lines  # EPERM without CAP_SYS_ADMIN


def test_non_root_init_keeps_caps_as_ambient(bb_root: Path) -> None:
    keep = caps.keep_set(keep=["net_bind_service", "kill"])
    result = _run(bb_root, "/bin/probe ids; /bin/probe caps", keep=keep, uid=1000)
    status = _status(result)
    assert "uid=1000 gid=1000 euid=1000 egid=1000" in result.lines
    for key in ("CapBnd", "CapEff", "CapPrm", "CapAmb", "CapInh"):
        assert caps.names(status[key]) == ["kill", "net_bind_service"], key


def test_default_seccomp_policy(bb_root: Path) -> None:
    script = "; ".join([
        "/bin/probe caps",
        "/bin/probe syscall keyctl 0 -3 0",
        "/bin/probe syscall kexec_load 0 0 0 0",
        "/bin/probe syscall delete_module nosuch 0",
        "mkdir -p /tmp/m && mount -t tmpfs t /tmp/m",
        "/bin/probe syscall umount2 /tmp/m 1",
        "/bin/probe syscall umount2 /tmp/m 0",
        "/bin/probe syscall getpid",
    ])
    result = _run(bb_root, script, policy=DEFAULT_POLICY)
    out = result.lines
    assert "keyctl ret=-1 errno=38" in out          # keyctl errno 38
    assert "kexec_load ret=-1 errno=1" in out       # kexec_load errno 1
    assert "delete_module ret=-1 errno=1" in out
    assert "umount2 ret=-1 errno=13" in out         # reject_force_umount: EACCES
    assert "umount2 ret=0 errno=0" in out           # a plain umount is allowed
    assert "getpid ret=1 errno=0" in out
    assert "Seccomp:\t2" in result.output and "NoNewPrivs:\t0" in result.output


def test_denylist_rules_with_argument_filters(bb_root: Path, tmp_path: Path) -> None:
    policy = tmp_path / "deny-args.seccomp"
    policy.write_text("2\ndenylist\n[all]\n"
                      "keyctl errno 5 [0,0,SCMP_CMP_EQ]\n"          # only KEYCTL_GET_KEYRING_ID
                      "sethostname errno 7 [1,3,SCMP_CMP_GE]\n")    # names of 3+ bytes
    script = ("/bin/probe syscall keyctl 0 -3 0; /bin/probe syscall keyctl 99 0 0; "
              "/bin/probe syscall sethostname ab 2; /bin/probe syscall sethostname abc 3")
    out = _run(bb_root, script, policy=str(policy)).lines
    assert "keyctl ret=-1 errno=5" in out
    assert "keyctl ret=-1 errno=95" in out or "keyctl ret=-1 errno=22" in out  # the kernel's
    assert "sethostname ret=0 errno=0" in out and "sethostname ret=-1 errno=7" in out


def test_seccomp_and_caps_in_user_namespace(mapped_root: Path, subids: list[str]) -> None:
    keep = caps.keep_set(drop=LXC_COMMON_DROP)
    script = "/bin/probe caps; /bin/probe syscall keyctl 0 -3 0"
    result = _run(mapped_root, script, keep=keep, policy=DEFAULT_POLICY,
                  userns=h.DEFAULT_MAP)
    assert "keyctl ret=-1 errno=38" in result.lines
    status = _status(result)
    # a new user namespace starts with a full bounding set (set_cred_user_ns), so the
    # host's (here without sys_resource) does not narrow it
    assert status["CapEff"] == status["CapBnd"] == caps.mask(keep)


def test_seccomp_loads_before_sys_admin_goes(bb_root: Path) -> None:
    """caps.apply loads the filter while CAP_SYS_ADMIN is still effective: without
    no_new_privs the kernel refuses a filter from a process lacking it."""
    keep = caps.keep_set(keep=["chown", "kill"])
    result = _run(bb_root, "/bin/probe caps; /bin/probe syscall keyctl 0 -3 0", keep=keep,
                  uid=1000, policy=DEFAULT_POLICY)
    assert "keyctl ret=-1 errno=38" in result.lines
    assert caps.names(_status(result)["CapEff"]) == ["chown", "kill"]


def test_new_session_keyring(bb_root: Path) -> None:
    nr = linux._NR_KEYCTL[os.uname().machine]
    host_keyring = linux._sys(nr, 0, -3, 0)  # KEYCTL_GET_KEYRING_ID of the session keyring

    def before_exec(ctx: h.Ctx) -> None:
        linux.keyctl_join_session_keyring("lxcsd-test")

    spec = h.Spec(rootfs=str(bb_root), argv=["/bin/probe", "syscall", "keyctl", "0", "-3",
                                             "0"], build=h.busybox_build,
                  before_exec=before_exec)
    line = h.run(spec).check().lines[0]
    inner = int(line.split()[1].removeprefix("ret="))
    assert inner > 0 and inner != host_keyring


@pytest.mark.parametrize("cmd, signal_number", [
    (linux.LINUX_REBOOT_CMD_RESTART, signal.SIGHUP),
    (linux.LINUX_REBOOT_CMD_POWER_OFF, signal.SIGINT),
])
def test_reboot_in_pid_namespace_ends_init(bb_root: Path, cmd: int,
                                           signal_number: int) -> None:
    """reboot(2) in a pid namespace kills its init with SIGHUP (restart) or SIGINT
    (power off): the statuses lxc@.service maps (docs/design.md)."""
    result = h.run(h.Spec(rootfs=str(bb_root), argv=["/bin/true"],
                          build=lambda ctx: linux.reboot(cmd)))
    assert result.error is None and result.status == -signal_number
