"""LXC seccomp policy files: parsing (versions 1 and 2, errors with file:line) and
compiling with libseccomp (no filter is loaded here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxcsd.errors import ConfigError
from lxcsd.paths import datadir
from lxcsd.runtime import seccomp_policy as sp

LXC_COMMON = """2
denylist
reject_force_umount  # comment this to allow umount -f;  not recommended
[all]
kexec_load errno 1
open_by_handle_at errno 1
init_module errno 1
finit_module errno 1
delete_module errno 1
"""


def _rules(policy: sp.SeccompPolicy) -> list[tuple[object, ...]]:
    return [(r.syscall, r.action, r.args, r.section) for r in policy.rules]


def test_lxc_common_policy() -> None:
    policy = sp.parse(LXC_COMMON, "common.seccomp")
    assert policy.version == 2 and not policy.allowlist
    assert policy.default_action == ("allow", 0)
    assert _rules(policy)[0] == ("umount2", ("errno", 13), ((1, "MASKED_EQ", 1, 1),), None)
    assert _rules(policy)[1] == ("kexec_load", ("errno", 1), (), "all")
    assert [r.line for r in policy.rules] == [3, 5, 6, 7, 8, 9]


def test_default_actions_by_list_kind() -> None:
    deny = sp.parse("2\nblacklist\nmknod\n")
    assert not sp.parse("2\nblocklist\nmknod\n").allowlist  # lxcsd reads it, too
    assert deny.default_action == ("allow", 0) and deny.rules[0].action == ("kill", 0)
    allow = sp.parse("2\nwhitelist\nread\n")
    assert allow.default_action == ("kill", 0) and allow.rules[0].action == ("allow", 0)
    trap = sp.parse("2\nallowlist trap\n[x86_64]\nopen\nmount errno 0\n")
    assert trap.default_action == ("trap", 0)
    assert _rules(trap) == [("open", ("allow", 0), (), "x86_64"),
                            ("mount", ("errno", 0), (), "x86_64")]


def test_lxc_examples_parse() -> None:
    v1 = "1\nallowlist\n" + "".join(f"{n}\n" for n in range(0, 301))
    assert [r.syscall for r in sp.parse(v1).rules] == list(range(301))
    v2 = sp.parse("2\ndenylist\n# comment in column 1\nmknod errno 0\n")
    assert _rules(v2) == [("mknod", ("errno", 0), (), None)]


def test_argument_filters() -> None:
    text = ("2\ndenylist\n"
            "mknod notify [1,8192,SCMP_CMP_MASKED_EQ,61440]\n"
            "seccomp errno 22 [1,0x7ff00000,&=,0x7ff00000]\n"
            "setxattr notify [3,1,SCMP_CMP_EQ][0,010,!=]\n"
            "kill errno 1 [0, 1, <=] [1, 2, >]\n")
    rules = _rules(sp.parse(text))
    assert rules[0][1:3] == (("notify", 0), ((1, "MASKED_EQ", 8192, 61440),))
    assert rules[1][2] == ((1, "MASKED_EQ", 0x7FF00000, 0x7FF00000),)
    assert rules[2][2] == ((3, "EQ", 1, 0), (0, "NE", 8, 0))  # 010 is octal, as strtoull
    assert rules[3][2] == ((0, "LE", 1, 0), (1, "GT", 2, 0))


@pytest.mark.parametrize("text, line, message", [
    ("3\ndenylist\n", 1, "invalid seccomp policy version '3'"),
    ("", 1, "invalid seccomp policy version ''"),
    ("2\ngreylist\n", 2, "invalid seccomp policy type 'greylist'"),
    ("1\ndenylist\n", 2, "invalid seccomp policy type 'denylist'"),
    ("2\ndenylist debug\n", 2, "'debug' is not implemented"),
    ("2\ndenylist errno\n", 2, "invalid errno action 'errno'"),
    ("2\ndenylist\nread\nmount errno x\n", 4, "invalid errno action 'errno x'"),
    ("2\ndenylist\nmount errno 4096\n", 3, "invalid errno action"),
    ("2\ndenylist\nmount explode\n", 3, "unknown seccomp action 'explode'"),
    ("2\ndenylist\nmount kill now\n", 3, "unexpected 'now' after 'kill'"),
    ("2\ndenylist\n[sparc]\n", 3, "unsupported architecture section '[sparc]'"),
    ("2\ndenylist\nmount [1,2,SCMP_CMP_EQ]\n", 3, "argument filters need an explicit action"),
    ("2\ndenylist\nmount errno 1 [6,2,==]\n", 3, "invalid argument filter [6,2,==]"),
    ("2\ndenylist\nmount errno 1 [1,2,~=]\n", 3, "unknown comparison '~='"),
    ("2\ndenylist\nmount errno 1 [1,zz,==]\n", 3, "invalid number in [1,zz,==]"),
    ("2\ndenylist\nmount errno 1 [1,2,==\n", 3, "unterminated argument filter"),
    ("1\nallowlist\n0\nread\n", 4, "version 1 policies list system call numbers"),
    ("2\ndenylist\nx errno 1 " + "[0,1,==]" * 7 + "\n", 3, "at most 6 argument filters"),
])
def test_errors_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        sp.parse(text, "/etc/lxc/p.seccomp")
    assert err.value.path == "/etc/lxc/p.seccomp" and err.value.line == line
    assert message in str(err.value)
    assert str(err.value).startswith(f"/etc/lxc/p.seccomp:{line}: ")


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        sp.read(str(tmp_path / "nope"))
    assert "cannot read seccomp policy" in str(err.value)


def test_c_integer() -> None:
    assert sp.c_integer("0x10") == 16 and sp.c_integer("010") == 8
    assert sp.c_integer("0") == 0 and sp.c_integer("18446744073709551615") == 2**64 - 1
    assert sp.c_integer("18446744073709551616") is None
    assert sp.c_integer("-1") is None and sp.c_integer("0x") is None
    assert sp.c_integer("09") is None


@pytest.mark.parametrize("machine, host", [
    ("x86_64", "x86_64"), ("i686", "x86"), ("aarch64", "arm64"), ("armv7l", "arm"),
    ("ppc64le", "ppc64le"), ("s390x", "s390x"), ("riscv64", "riscv64"),
])
def test_host_arch(machine: str, host: str) -> None:
    assert sp.host_arch(machine) == host


def test_sections_apply_like_liblxc() -> None:
    policy = sp.parse("2\ndenylist\nbefore\n[x86]\na\n[x32]\nb\n[arm64]\nc\n[ALL]\nd\n")
    on = {host: [r.syscall for r in policy.rules if sp.applies(r, host)]
          for host in ("x86_64", "x86", "arm64", "arm")}
    assert on["x86_64"] == ["before", "a", "b", "d"]
    assert on["x86"] == ["before", "a", "d"]
    assert on["arm64"] == ["before", "c", "d"]
    assert on["arm"] == ["before", "d"]


def _pfc(flt: object) -> str:
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "w") as out:
        flt.export_pfc(out)  # type: ignore[attr-defined]
    with os.fdopen(read_fd) as f:
        return f.read()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="checks x86_64 syscall numbers")
def test_build_default_policy() -> None:
    policy = sp.read(os.path.join(datadir(), "common.seccomp"))
    flt, unknown = sp.build_filter(policy)
    assert unknown == []
    pfc = _pfc(flt)
    assert "filter for arch x86_64" in pfc and "filter for arch x86 " in pfc
    assert "filter for arch x32" in pfc
    assert 'syscall "keyctl" (250)' in pfc and "action ERRNO(38);" in pfc
    assert 'syscall "umount2" (166)' in pfc and "action ERRNO(13);" in pfc
    assert "# invalid architecture action\naction KILL;" in pfc  # as liblxc


def test_default_policy_hardening_rules() -> None:
    """TIOCSTI and TIOCLINUX denied on the low 32 bits of the request only (the kernel's
    view, so 0x100005412 cannot pass), bpf and perf_event_open denied (CAP_SYS_ADMIN,
    which privileged containers keep, would allow both)."""
    policy = sp.read(os.path.join(datadir(), "common.seccomp"))
    rules = {(r.syscall, r.args) for r in policy.rules if r.action == ("errno", 1)}
    for request in (0x5412, 0x541C):
        assert ("ioctl", ((1, "MASKED_EQ", request, 0xFFFFFFFF),)) in rules
    assert ("bpf", ()) in rules and ("perf_event_open", ()) in rules


def test_build_skips_unknown_and_default_repeats() -> None:
    policy = sp.parse("2\ndenylist\nno_such_call errno 1\nread allow\nkeyctl errno 38\n")
    flt, unknown = sp.build_filter(policy)
    assert [r.syscall for r in unknown] == ["no_such_call"]
    pfc = _pfc(flt)
    assert '"read"' not in pfc and '"keyctl"' in pfc


def test_build_allowlist_and_masked_args() -> None:
    policy = sp.parse("2\nallowlist errno 38\nread\nwrite\n"
                      "mknod notify [1,8192,SCMP_CMP_MASKED_EQ,61440]\n")
    flt, _ = sp.build_filter(policy)
    pfc = _pfc(flt)
    assert "action ERRNO(38);" in pfc
    assert "& 0x0000f000 == 8192)\n        action 0x7fc00000;" in pfc  # SECCOMP_RET_USER_NOTIF
    assert sp.wants_notify(policy)
    assert not sp.wants_notify(sp.parse(LXC_COMMON))


def test_already_confined(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n")
    assert sp.already_confined(str(status))
    status.write_text("Seccomp:\t0\n")
    assert not sp.already_confined(str(status))
    status.write_text("Name:\tx\n")
    assert not sp.already_confined(str(status))


def test_repr_is_readable() -> None:
    rule = sp.parse("2\ndenylist\n[all]\nkeyctl errno 38\n").rules[0]
    assert repr(rule) == "SeccompRule('keyctl', ('errno', 38), (), [all])"
