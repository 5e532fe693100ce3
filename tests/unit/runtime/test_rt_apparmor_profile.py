"""lxcsd.runtime.apparmor_profile: what a generated profile allows and denies, checked path
by path with a matcher for AppArmor's globs (this host has no AppArmor and no
apparmor_parser; tests/vm/test_vm_apparmor.py loads the profile into a real kernel)."""

from __future__ import annotations

import re

import pytest

from lxcsd.runtime import apparmor_profile as ap


def glob_regex(glob: str) -> re.Pattern[str]:
    """AppArmor's glob syntax (apparmor.d(5)) as a regex: ** any characters, * and ? any but
    '/', [^..] one character (never '/' here: the strict reading), {a,b} alternation."""
    out, i = "", 0
    while i < len(glob):
        ch = glob[i]
        if glob.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = glob.index("]", i)
            body = glob[i + 1:end]
            out += f"[^/{re.escape(body[1:])}]" if body.startswith("^") else f"[{body}]"
            i = end
        elif ch == "{":
            out += "(?:"
        elif ch == "}":
            out += ")"
        elif ch == ",":
            out += "|"
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + r"\Z")


def matched(patterns: list[str], path: str) -> bool:
    return any(glob_regex(p).match(path) for p in patterns)


def test_matcher_reads_globs_as_apparmor() -> None:
    assert matched(["/a/{,[^b]*}{,/**}"], "/a/") and matched(["/a/{,[^b]*}{,/**}"], "/a/c/d")
    assert not matched(["/a/{,[^b]*}{,/**}"], "/a/b")
    assert matched(["/x/*/**"], "/x/y/z") and not matched(["/x/*/**"], "/x/y")


PROC_SYS_DENIED = ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
                   "/proc/sys/vm/drop_caches", "/proc/sys/fs/binfmt_misc/register",
                   "/proc/sys/kernel/randomize_va_space", "/proc/sys/kernelx/y",
                   "/proc/sys/k", "/proc/sys/kernel/shmmax/x", "/proc/sys/netfilter/x",
                   "/proc/sys/user/max_user_namespaces", "/proc/sys/kernel/sysrq"]
PROC_SYS_WRITABLE = ["/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname",
                     "/proc/sys/kernel/shmmax", "/proc/sys/kernel/shm_rmid_forced",
                     "/proc/sys/kernel/msgmnb", "/proc/sys/kernel/sem",
                     "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/core/somaxconn",
                     "/proc/sys", "/proc/sys/kernel", "/proc/sys/net"]


@pytest.mark.parametrize("path", PROC_SYS_DENIED)
def test_proc_sys_writes_denied_outside_the_namespaced_ones(path: str) -> None:
    assert matched(ap.outside("/proc/sys", ap.PROC_SYS_WRITABLE), path)


@pytest.mark.parametrize("path", PROC_SYS_WRITABLE)
def test_proc_sys_net_and_namespaced_kernel_keys_stay_writable(path: str) -> None:
    assert not matched(ap.outside("/proc/sys", ap.PROC_SYS_WRITABLE), path)


def test_sys_writes_only_to_cgroups_and_network_devices() -> None:
    deny = ap.outside("/sys", ap.SYS_WRITABLE)
    for path in ("/sys/power/state", "/sys/module/x/parameters/y", "/sys/class/block/sda/x",
                 "/sys/devices/system/cpu/cpu1/online", "/sys/fs/fuse/connections/1/abort",
                 "/sys/firmware/efi/x", "/sys/bus/pci/rescan", "/sys/devices/virtual/tty/x",
                 "/sys/classx", "/sys/fs/cgroupx/y"):
        assert matched(deny, path), path
    for path in ("/sys/fs/cgroup/memory.max", "/sys/class/net/eth0/mtu",
                 "/sys/devices/virtual/net/veth0/mtu", "/sys/kernel/mm/x"):
        assert not matched(deny, path), path  # /sys/kernel: the stacking rules decide
    stacking = [r.split()[1] for r in ap.stacking_rules("ns") if r.startswith("  deny")]
    assert matched(stacking, "/sys/kernel/mm/transparent_hugepage/enabled")
    assert matched(stacking, "/sys/kernel/security/lockdown")
    assert not matched(stacking, "/sys/kernel/security/apparmor/.load")


def test_mounts_keep_proc_sys_and_dev_in_place() -> None:
    bind = ap.outside("/", ap.BIND_EXCEPT)
    rbind = ap.outside("/", ap.RBIND_EXCEPT)
    for path in ("/", "/proc", "/proc/1/root", "/sys", "/sys/kernel", "/dev",
                 "/dev/.lxc/proc", "/dev/.lxc"):
        assert not matched(bind, path), path
    for path in ("/home/u", "/var/lib/x", "/dev/shm", "/dev/null", "/procx", "/d", "/s",
                 "/sysroot/a", "/dev/.lx", "/dev/.lxcx"):
        assert matched(bind, path), path
    assert not matched(rbind, "/dev/shm") and matched(rbind, "/srv/data")


def test_names_as_liblxc_makes_them() -> None:
    assert ap.profile_name("web1", "/var/lib/lxc") == "lxc-web1_</var/lib/lxc>"
    assert ap.namespace_name("web1", "/var/lib/lxc") == "lxc-web1_<-var-lib-lxc>"
    long = ap.profile_name("c" * 200, "/srv/" + "d" * 60)
    assert re.fullmatch(r"[0-9a-f]{16}", long)
    assert ap.fnv1a_64(b"") == 0xCBF29CE484222325 and ap.fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    stacked = ap.label("web1", "/var/lib/lxc", ap.Features())
    assert stacked == "lxc-web1_</var/lib/lxc>//&:lxc-web1_<-var-lib-lxc>:"
    assert ap.label("web1", "/var/lib/lxc", ap.Features(stacking=False)) == \
        "lxc-web1_</var/lib/lxc>"


def test_profile_text_follows_the_features_and_keys() -> None:
    text = ap.profile_text("web1", "/var/lib/lxc", ap.Features())
    assert text.startswith('#include <tunables/global>\nprofile "lxc-web1_</var/lib/lxc>" '
                           'flags=(attach_disconnected,mediate_deleted) {\n')
    assert text.endswith("}\n") and text.count("{\n") == 1
    assert 'change_profile -> ":lxc-web1_<-var-lib-lxc>:*",' in text
    assert "deny /sys/k*{,/**} rwklx," not in text
    assert "mount fstype=cgroup2 -> /sys/fs/cgroup/**," in text
    assert "unix peer=(label=@{profile_name})," in text
    assert "  mount,\n" not in text and "pivot_root" not in text  # no nesting, privileged
    assert "mount options=(ro,remount,bind,nodev,nosuid,noexec,strictatime) -> /home{" not in \
        text  # destinations are the globs, never literal paths
    assert len([line for line in text.splitlines() if "remount,bind" in line]) == 8 * 3 * 16
    plain = ap.profile_text("web1", "/var/lib/lxc", ap.Features(stacking=False, unix=False,
                                                                cgroup_ns=False),
                            nesting=True, unprivileged=True, raw=("  deny /tmp/x w,",))
    assert "deny /sys/k*{,/**} rwklx," in plain and "change_profile -> \":" not in plain
    assert 'change_profile -> "lxc-web1_</var/lib/lxc>",' in plain  # nesting, no stacking
    assert "  mount,\n" in plain and "mount options=(rw, bind),\n" in plain
    assert "unix" not in plain and "fstype=cgroup2" not in plain
    assert plain.endswith("  deny /tmp/x w,\n}\n")
