"""Value parsers: liblxc's semantics for numbers, signals, sizes, id maps, mounts, rootfs."""

from __future__ import annotations

import os

import pytest

from lxcsd.config import values as v
from lxcsd.config.model import RLIM_INFINITY
from lxcsd.errors import ConfigError


@pytest.mark.parametrize("text, number", [
    ("SIGTERM", 15), ("sigterm", 15), ("SigPwr", 30), ("SIGKILL", 9), ("9", 9), ("0", 0),
    ("SIGRTMIN+3", v.SIGRTMIN + 3), ("sigrtmin+0", v.SIGRTMIN), ("SIGRTMAX-2", v.SIGRTMAX - 2),
    ("SIGIOT", 6), ("SIGCLD", 17), ("SIGPOLL", 29), ("SIGUSR1", 10), ("SIGWINCH", 28),
])
def test_parse_signal(text: str, number: int) -> None:
    assert v.parse_signal(text) == number


def test_sigrtmin_is_the_c_library_value() -> None:
    # glibc reserves two realtime signals: systemd's halt signal SIGRTMIN+3 is 37.
    assert v.parse_signal("SIGRTMIN+3") == 37
    assert v.SIGRTMAX == 64


@pytest.mark.parametrize("text, hint", [
    ("TERM", "SIGTERM"), ("RTMIN+3", "SIGRTMIN+3"), ("SIGFOO", "SIGRTMIN+3"),
    ("SIGRTMIN", "SIGRTMIN+N"), ("SIGRTMIN+31", "at most 30"), ("65", "up to 64"),
    ("SIGRTMIN+x", "SIGRTMIN+N"), ("-1", "SIGRTMIN"),
])
def test_parse_signal_refuses_with_a_hint(text: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        v.parse_signal(text)
    assert hint in str(info.value)


@pytest.mark.parametrize("text, number", [
    ("10", 10), ("0", 0), ("010", 8), ("0x1f", 31), ("0X10", 16), ("  7", 7), ("+5", 5),
    ("4294967295", 2**32 - 1),
])
def test_parse_uint_follows_strtoul_base_0(text: str, number: int) -> None:
    assert v.parse_uint(text) == number


@pytest.mark.parametrize("text", ["-1", "1.5", "1_000", "٣", "08", "0x", "", "4294967296", "1 "])
def test_parse_uint_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        v.parse_uint(text)


@pytest.mark.parametrize("text, number", [("-5", -5), ("+5", 5), ("-0x10", -16), ("017", 15)])
def test_parse_int(text: str, number: int) -> None:
    assert v.parse_int(text) == number


def test_parse_int_range() -> None:
    assert v.parse_int("2147483647") == 2**31 - 1
    with pytest.raises(ConfigError, match="32-bit"):
        v.parse_int("2147483648")


def test_parse_bool() -> None:
    assert v.parse_bool("1") is True and v.parse_bool("0") is False
    assert v.parse_bool("0x1") is True  # liblxc reads it through strtoul(..., 0)
    with pytest.raises(ConfigError, match="0 or 1"):
        v.parse_bool("2")
    with pytest.raises(ConfigError):
        v.parse_bool("yes")


@pytest.mark.parametrize("text, size", [
    ("4096", 4096), ("12B", 12), ("1KB", 1024), ("1kb", 1024), ("2 MB", 2 << 20),
    ("1GB", 1 << 30), ("0", 0),
])
def test_parse_size(text: str, size: int) -> None:
    assert v.parse_size(text) == size


@pytest.mark.parametrize("text", ["4K", "1TB", "KB", "-1", "x"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        v.parse_size(text)


def test_console_size_rounds_like_liblxc() -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    assert v.parse_console_size("auto") == 128 * 1024
    assert v.parse_console_size("1") == page  # at least one page
    assert v.parse_console_size("100KB") == 128 * 1024  # the next power of two
    assert v.parse_console_size("64KB") == 64 * 1024


def test_parse_time_offset() -> None:
    assert v.parse_time_offset("-2h") == -2 * 3600 * 10**9
    assert v.parse_time_offset("10 ms") == 10**7
    assert v.parse_time_offset("5ns") == 5
    for bad in ("10", "10d", "h", "1hm"):
        with pytest.raises(ConfigError):
            v.parse_time_offset(bad)


@pytest.mark.parametrize("text, simple", [
    ("/a//b/", "/a/b"), ("./a", "a"), ("a/./b", "a/b"), ("/", "/"), (".", "."), ("a/..", "a/.."),
    ("//", "/"), (".hidden", ".hidden"),
])
def test_simplify_path_like_lxc_path_simplify(text: str, simple: str) -> None:
    assert v.simplify_path(text) == simple


def test_parse_idmap() -> None:
    m = v.parse_idmap("u 0 100000 65536")
    assert (m.kind, m.ns_id, m.host_id, m.count) == ("u", 0, 100000, 65536)
    assert v.parse_idmap("g\t1000 \t 2000\r 1").as_tuple() == ("g", 1000, 2000, 1)


@pytest.mark.parametrize("text", [
    "u 0 100000", "x 0 1 1", "u 0 1 1 1", "u -1 0 1", "u 0 0 0", "u 4294967295 0 2", "u0 1 1",
])
def test_parse_idmap_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        v.parse_idmap(text)


def test_split_quoted_like_liblxc() -> None:
    assert v.split_quoted('/sbin/init "a b" \'c d\' e') == ("/sbin/init", "a b", "c d", "e")
    assert v.split_quoted("  a   b  ") == ("a", "b")
    assert v.split_quoted('a "unterminated') == ("a",)  # liblxc drops it
    assert v.split_quoted('a"b c"') == ('a"b', 'c"')  # quotes only start a word


def test_mount_entry_fields_and_escapes() -> None:
    m = v.parse_mount_entry("/srv/My\\040Files srv/files none rbind,ro,create=dir 0 2")
    assert (m.source, m.target, m.fstype) == ("/srv/My Files", "srv/files", "none")
    assert m.options == ("rbind", "ro", "create=dir")
    assert (m.freq, m.passno) == (0, 2)
    assert m.opts.bind and m.opts.recursive and m.opts.create == "dir"
    assert m.opts.flags == v.MS_RDONLY


def test_mount_entry_optional_fields() -> None:
    m = v.parse_mount_entry("none dev/shm tmpfs rw,nosuid,nodev,create=dir")
    assert (m.freq, m.passno) == (0, 0)
    assert m.opts.flags == v.MS_NOSUID | v.MS_NODEV and m.opts.clear_flags == v.MS_RDONLY
    assert v.parse_mount_entry("proc proc proc").options == ()


@pytest.mark.parametrize("text, hint", [
    ("/a b", "3 to 6"), ("/my dir /x none bind 0 0", "\\040"), ("a b c d x 0", "number"),
])
def test_mount_entry_refuses(text: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        v.parse_mount_entry(text)
    assert hint in str(info.value)


def test_mount_options_split() -> None:
    o = v.parse_mount_options(("bind", "rslave", "idmap=container", "optional", "relative",
                               "size=1m", "mode=0755", "noexec", "exec"))
    assert o.bind and not o.recursive and o.optional and o.relative
    assert o.idmap == "container" and o.propagation == v.MS_SLAVE | v.MS_REC
    assert o.data == "size=1m,mode=0755"
    assert o.flags == v.MS_NOEXEC and o.clear_flags == v.MS_NOEXEC
    # Exact matching: liblxc's prefix match would read this as "ro".
    assert v.parse_mount_options(("rootcontext=x",)).flags == 0
    with pytest.raises(ConfigError):
        v.parse_mount_options(("idmap=",))


@pytest.mark.parametrize("text, kind, path, lower, upper", [
    ("/var/lib/lxc/c/rootfs", "dir", "/var/lib/lxc/c/rootfs", (), None),
    ("dir:/var/lib/lxc/c/rootfs/", "dir", "/var/lib/lxc/c/rootfs", (), None),
    ("overlayfs:/lower:/upper", "overlay", "/lower:/upper", ("/lower",), "/upper"),
    ("overlay:/l1:/l2:/up", "overlay", "/l1:/l2:/up", ("/l1", "/l2"), "/up"),
    ("btrfs:/var/lib/lxc/c/rootfs", "btrfs", "/var/lib/lxc/c/rootfs", (), None),
    ("lvm:/dev/vg/c", "lvm", "/dev/vg/c", (), None),
])
def test_parse_rootfs_path(text: str, kind: str, path: str, lower: tuple[str, ...],
                           upper: str | None) -> None:
    r = v.parse_rootfs_path(text)
    assert (r.spec, r.kind, r.path, r.lower, r.upper) == (text, kind, path, lower, upper)


@pytest.mark.parametrize("text", ["aufs:/a:/b", "overlay:/only", "foo:/x"])
def test_parse_rootfs_path_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        v.parse_rootfs_path(text)


def test_prlimit() -> None:
    assert (v.parse_prlimit("1024").soft, v.parse_prlimit("1024").hard) == (1024, 1024)
    limit = v.parse_prlimit("1024 : unlimited")
    assert (limit.soft, limit.hard) == (1024, RLIM_INFINITY)
    for bad in ("x", "1:2:3", "-1", ""):
        with pytest.raises(ConfigError):
            v.parse_prlimit(bad)


def test_ipv4_address_defaults_like_liblxc() -> None:
    a = v.parse_ipv4_address("10.0.3.5")
    assert (a.address, a.prefix, a.broadcast) == ("10.0.3.5", 8, "10.255.255.255")  # class A
    a = v.parse_ipv4_address("192.168.1.5/24 192.168.1.255")
    assert (a.prefix, a.broadcast) == (24, "192.168.1.255")
    assert v.parse_ipv4_address("10.0.0.1/31").broadcast == "0.0.0.0"
    for bad in ("10.0.0.256", "10.0.0.1/33", "fd00::1", "10.0.0.1 x"):
        with pytest.raises(ConfigError):
            v.parse_ipv4_address(bad)


def test_ipv6_and_routes() -> None:
    assert v.parse_ipv6_address("fd00::2").prefix == 64
    assert v.parse_ipv6_address("fd00::2/48").prefix == 48
    assert v.parse_ipv4_route("10.0.0.0/8").prefix == 8
    for parse, bad in ((v.parse_ipv6_address, "fd00::g"), (v.parse_ipv4_route, "10.0.0.0"),
                       (v.parse_ipv6_route, "fd00::/129"), (v.parse_ipv4_gateway, "10.0.0")):
        with pytest.raises(ConfigError):
            parse(bad)
    assert v.parse_ipv6_gateway("auto") == "auto" and v.parse_ipv4_gateway("dev") == "dev"


def test_interface_names_and_mac() -> None:
    assert v.parse_ifname("eth0") == "eth0"
    for bad in ("a" * 16, "a b", "a/b"):
        with pytest.raises(ConfigError):
            v.parse_ifname(bad)
    assert v.parse_hwaddr("00:16:3e:xx:XX:0a") == "00:16:3e:xx:XX:0a"
    for bad in ("00:16:3e:xx:xx", "00:16:3e:xx:xx:xg", "0016.3e00.0000"):
        with pytest.raises(ConfigError):
            v.parse_hwaddr(bad)


@pytest.mark.parametrize("rule", ["a", "c 1:3 rwm", "b *:* m", "c 136:* rwm", "/dev/null rw"])
def test_device_rules(rule: str) -> None:
    assert v.parse_device_rule(rule) == rule


@pytest.mark.parametrize("rule", ["x 1:3 rwm", "c 1:3", "c 1-3 rwm", "c 1:3 rwx", "c a:3 r"])
def test_device_rules_refused(rule: str) -> None:
    with pytest.raises(ConfigError):
        v.parse_device_rule(rule)


def test_capabilities() -> None:
    v.check_capability("sys_admin")
    v.check_capability("40")
    with pytest.raises(ConfigError, match="write sys_admin"):
        v.check_capability("CAP_SYS_ADMIN")
    with pytest.raises(ConfigError):
        v.check_capability("sys_adm")


def test_environment_and_misc() -> None:
    assert v.parse_env("A=b=c") == ("A", "b=c")
    assert v.parse_env("PATH") == ("PATH", None)
    assert v.parse_env("EMPTY=") == ("EMPTY", "")
    assert v.parse_log_level("debug") == 1 and v.parse_log_level("8") == 8
    assert v.parse_namespace_list("NET ipc") == ("net", "ipc")
    assert v.parse_gid_list("4,,27") == (4, 27)
    assert v.parse_bridge_vlan_id("none") == -1
    for parse, bad in ((v.parse_log_level, "9"), (v.parse_namespace_list, "mount"),
                       (v.parse_syslog, "local8"), (v.parse_arch, "vax"),
                       (v.parse_seccomp_proxy, "tcp:1"), (v.parse_hook_version, "2"),
                       (v.parse_net_flags, "down"), (v.parse_bridge_vlan_id, "4095")):
        with pytest.raises(ConfigError):
            parse(bad)
