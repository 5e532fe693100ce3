"""The reader: liblxc's line syntax, includes (files, directories, cycles, caching), errors
located at file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxcsd.config import reader
from lxcsd.config.build import warnings as config_warnings
from lxcsd.config.load import check_path, load_path
from lxcsd.errors import ConfigError


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_line_syntax(tmp_path: Path) -> None:
    config = write(tmp_path / "config", (
        "# comment\n"
        "   # indented comment\n"
        "\n"
        "\t \n"
        "lxc.uts.name=tight\n"
        "  lxc.apparmor.profile   =   spaced # not a comment  \n"
        "lxc.selinux.context = 'single quoted'\n"
        "lxc.seccomp.notify.cookie = \"unbalanced\n"
        "lxc.init.cmd = \"a\" \"b\"\n"
    ))
    c = load_path(config)
    assert c.uts_name == "tight"
    assert c.apparmor.profile == "spaced # not a comment"
    assert c.selinux.context == "single quoted"
    assert c.seccomp.notify_cookie == '"unbalanced'
    # As in liblxc: the reader first strips the outer pair, leaving a" "b to split.
    assert c.init.cmd == ('a"',)
    assert [(e.canonical, e.line) for e in c.entries][:2] == [("lxc.uts.name", 5),
                                                               ("lxc.apparmor.profile", 6)]


def test_crlf_and_bare_cr_split_lines_like_liblxc(tmp_path: Path) -> None:
    config = write(tmp_path / "config", "lxc.uts.name = a\r\nlxc.tty.max = 2\rlxc.pty.max = 3\r\n")
    c = load_path(config)
    assert (c.uts_name, c.tty_max, c.pty_max) == ("a", 2, 3)
    assert [e.line for e in c.entries] == [1, 2, 2]


def test_lines_liblxc_ignores_are_warnings(tmp_path: Path) -> None:
    config = write(tmp_path / "config", "foo = bar\nlxc.uts.name = x\nlxc.pivotdir = old\n")
    c = load_path(config)
    assert c.uts_name == "x"
    assert [(w.line, w.key) for w in config_warnings(c) if "ignored" in w.message] == [
        (1, "foo"), (3, "lxc.pivotdir")]


@pytest.mark.parametrize("line, message", [
    ("lxc.uts.name", "no '='"),
    ("lxc.utsnme = x", "unknown key"),
    ("lxc.net.0.tpye = veth", "unknown network key"),
    ("lxc.net.x.type = veth", "unknown network key"),
    ("lxc.cgroup2. = 1", "needs a name"),
    ("lxc.uts.name = a\0b", "NUL"),
    ("lxc.net = x", "takes no value"),
    ("lxc.hook = /bin/true", "takes no value"),
    ("lxc.sysctl = 1", "needs a name"),
    ("lxc.mount.fstab =", "needs a value"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, line: str, message: str) -> None:
    config = write(tmp_path / "config", f"# first\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_path(config)
    error = info.value
    assert (error.path, error.line) == (config, 2)
    assert message in error.message
    assert error.key and error.key in line


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean lxc.uts.name"):
        load_path(write(tmp_path / "config", "lxc.uts.nam = x\n"))


def test_check_reports_every_error_in_order(tmp_path: Path) -> None:
    config = write(tmp_path / "config", "lxc.tty.max = x\nlxc.uts.name = ok\nlxc.bogus = 1\n"
                   "lxc.start.auto = 3\n")
    container, errors = check_path(config)
    assert [e.line for e in errors] == [1, 3, 4]
    assert container is not None and container.uts_name == "ok"


def test_include_file_directory_and_order(tmp_path: Path) -> None:
    write(tmp_path / "d/20-b.conf", "lxc.group = b\n")
    write(tmp_path / "d/10-a.conf", "lxc.group = a\n")
    write(tmp_path / "d/notes.txt", "lxc.group = never\n")
    write(tmp_path / "d/.conf", "lxc.group = never\n")
    write(tmp_path / "common.conf", f"lxc.group = common\nlxc.include = {tmp_path}/d\n")
    config = write(tmp_path / "config", f"lxc.group = first\nlxc.include = {tmp_path}/common.conf\n"
                   f"lxc.include = {tmp_path}/d/\nlxc.group = last\n")
    c = load_path(config)
    assert c.groups == ("first", "common", "a", "b", "a", "b", "last")
    located = [(os.path.basename(e.path), e.line) for e in c.entries if e.key == "lxc.group"]
    assert located[:3] == [("config", 1), ("common.conf", 1), ("10-a.conf", 1)]


def test_missing_include_directory_is_skipped_but_a_missing_file_is_an_error(
        tmp_path: Path) -> None:
    load_path(write(tmp_path / "ok", f"lxc.include = {tmp_path}/nowhere/\n"))
    with pytest.raises(ConfigError) as info:
        load_path(write(tmp_path / "bad", f"lxc.include = {tmp_path}/nowhere.conf\n"))
    assert info.value.message == f"include {tmp_path}/nowhere.conf not found"


def test_relative_includes_resolve_against_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As liblxc: open(2) of the value as written, so relative to the reader's cwd (the
    helper's and the generator's is /); a missing relative directory/ is skipped too."""
    write(tmp_path / "inc/common.conf", "lxc.uts.name = from-inc\n")
    config = write(tmp_path / "c/config", "lxc.include = inc/common.conf\n"
                   "lxc.include = inc/missing.d/\n")
    monkeypatch.chdir(tmp_path)
    assert load_path(config).uts_name == "from-inc"
    monkeypatch.chdir(tmp_path / "c")  # another cwd: the same text means another file
    with pytest.raises(ConfigError, match=r"include .*/c/inc/common.conf not found "
                       r"\('inc/common.conf' is relative to the reader's working directory"):
        load_path(config)


def test_an_include_of_dev_null_reads_nothing(tmp_path: Path) -> None:
    config = write(tmp_path / "config", "lxc.uts.name = x\nlxc.include = /dev/null\n")
    assert load_path(config).uts_name == "x"


@pytest.mark.parametrize("value, message", [
    ("/nonexistent/relative.conf", "not found"),
    ("/etc/passwd/x.conf", "cannot open include"),  # a file where a directory is expected
])
def test_bad_includes(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_path(write(tmp_path / "config", f"lxc.uts.name = x\nlxc.include = {value}\n"))
    assert info.value.line == 2 and info.value.key == "lxc.include"


def test_directory_where_a_file_is_expected(tmp_path: Path) -> None:
    (tmp_path / "d/sub.conf").mkdir(parents=True)
    with pytest.raises(ConfigError, match="a directory"):
        load_path(write(tmp_path / "config", f"lxc.include = {tmp_path}/d\n"))
    with pytest.raises(ConfigError, match="cannot read config: a directory"):
        load_path(str(tmp_path / "d"))


def test_include_cycle(tmp_path: Path) -> None:
    write(tmp_path / "a.conf", f"lxc.include = {tmp_path}/b.conf\n")
    write(tmp_path / "b.conf", f"lxc.include = {tmp_path}/a.conf\n")
    config = write(tmp_path / "config", f"lxc.include = {tmp_path}/a.conf\n")
    with pytest.raises(ConfigError, match="include cycle") as info:
        load_path(config)
    assert "a.conf -> " in info.value.message and info.value.path.endswith("b.conf")


def test_self_include_through_a_symlink_is_a_cycle(tmp_path: Path) -> None:
    config = write(tmp_path / "config", f"lxc.include = {tmp_path}/alias\n")
    os.symlink(config, tmp_path / "alias")
    with pytest.raises(ConfigError, match="include cycle"):
        load_path(config)


def test_the_same_file_twice_is_not_a_cycle(tmp_path: Path) -> None:
    common = write(tmp_path / "common.conf", "lxc.mount.entry = proc proc proc 0 0\n")
    c = load_path(write(tmp_path / "config", f"lxc.include = {common}\nlxc.include = {common}\n"))
    assert len(c.mounts.entries) == 2


def test_deep_include_chain_is_an_error_not_a_crash(tmp_path: Path) -> None:
    depth = reader.MAX_INCLUDE_DEPTH + 5
    for n in range(depth):
        write(tmp_path / f"{n}.conf", f"lxc.include = {tmp_path}/{n + 1}.conf\n")
    write(tmp_path / f"{depth}.conf", "lxc.uts.name = deep\n")
    with pytest.raises(ConfigError, match="nested deeper"):
        load_path(str(tmp_path / "0.conf"))


def test_includes_are_read_once_and_reread_when_changed(tmp_path: Path) -> None:
    common = tmp_path / "common.conf"
    write(common, "lxc.tty.max = 1\n")
    config = write(tmp_path / "config", f"lxc.include = {common}\n")
    assert load_path(config).tty_max == 1
    first = reader._FILE_CACHE[str(common)][1]
    assert load_path(config).tty_max == 1
    assert reader._FILE_CACHE[str(common)][1] is first  # parsed once
    write(common, "lxc.tty.max = 22\n")  # a new size, so a new stamp even within one tick
    assert load_path(config).tty_max == 22


def test_cached_include_values_are_not_shared_between_containers(tmp_path: Path) -> None:
    common = write(tmp_path / "common.conf", "lxc.sysctl.kernel.msgmax = 1\n"
                   "lxc.hook.start = /bin/true\n")
    a = load_path(write(tmp_path / "a", f"lxc.include = {common}\n"))
    b = load_path(write(tmp_path / "b", f"lxc.include = {common}\n"))
    assert a.sysctl == b.sysctl and a.sysctl is not b.sysctl
    assert a.hooks is not b.hooks


def test_unreadable_top_level_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config") as info:
        load_path(str(tmp_path / "missing"))
    assert info.value.path == str(tmp_path / "missing")


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge"
    with open(path, "wb") as handle:
        handle.truncate(reader.MAX_FILE_SIZE + 1)  # sparse: costs no disk
    with pytest.raises(ConfigError, match="larger than"):
        load_path(str(path))


def test_binary_junk_is_errors_not_crashes(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"lxc.uts.name = \xff\xfe\nlxc.\x00\x01 = 2\n\x89PNG\r\n")
    container, errors = check_path(str(path))
    assert container is not None and container.uts_name == "\udcff\udcfe"
    assert [e.line for e in errors] == [2]


def test_legacy_rootfs_takes_the_backend_like_lxc_update_config(tmp_path: Path) -> None:
    c = load_path(write(tmp_path / "config", "lxc.rootfs = /dev/vg/c\n"
                        "lxc.rootfs.backend = lvm\n"))
    assert (c.rootfs.kind, c.rootfs.path) == ("lvm", "/dev/vg/c")
    assert load_path(write(tmp_path / "plain", "lxc.rootfs = /srv/c\n")).rootfs.kind == "dir"


def test_parse_line_for_writers() -> None:
    entry = reader.parse_line("  lxc.utsname = old  ")
    assert entry is not None and (entry.key, entry.canonical, entry.value) == (
        "lxc.utsname", "lxc.uts.name", "old")
    assert reader.parse_line("# lxc.uts.name = x") is None
    assert reader.parse_line("") is None


def test_cached_include_expansion_follows_directory_and_file_changes(tmp_path: Path) -> None:
    write(tmp_path / "d/10-a.conf", "lxc.group = a\n")
    common = write(tmp_path / "common.conf", f"lxc.include = {tmp_path}/d/\n")
    config = write(tmp_path / "config", f"lxc.include = {common}\n")
    assert load_path(config).groups == ("a",)
    assert load_path(config).groups == ("a",)  # from the cached expansion
    write(tmp_path / "d/20-b.conf", "lxc.group = b\n")  # the directory changes
    assert load_path(config).groups == ("a", "b")
    os.unlink(tmp_path / "d/10-a.conf")
    assert load_path(config).groups == ("b",)
    os.rename(tmp_path / "d", tmp_path / "gone")  # a missing directory is skipped
    assert load_path(config).groups == ()
    os.unlink(common)
    with pytest.raises(ConfigError, match="not found"):
        load_path(config)


def test_hwaddr_with_text_after_the_octets_starts_with_a_warning(tmp_path: Path) -> None:
    """liblxc converts six octets and ignores the rest: such configs run under LXC."""
    config = write(tmp_path / "config", "lxc.net.0.type = veth\n"
                   "lxc.net.0.hwaddr = 00:16:3e:aa:bb:cc # web1's MAC\n")
    container = load_path(config)
    assert container.net[0].hwaddr == "00:16:3e:aa:bb:cc"
    (warning,) = [w for w in config_warnings(container) if w.key == "lxc.net.0.hwaddr"]
    assert warning.line == 2 and "ignored: \"# web1's MAC\"" in warning.message
    assert "no inline comments" in warning.message
    with pytest.raises(ConfigError, match="invalid hardware address"):
        load_path(write(tmp_path / "bad", "lxc.net.0.type = veth\n"
                        "lxc.net.0.hwaddr = 00:16:3e:aa:bb:ccdd\n"))


@pytest.mark.parametrize(("line", "message", "hint"), [
    ("lxc.rootfs.path = dir:@LXCPATH@/c1/rootfs",
     "unsubstituted template placeholder @LXCPATH@", "template that was not rendered"),
    ("lxc.uts.name = {{ name }}", "unsubstituted template placeholder {{ name }}",
     "put the real value in"),
    ("lxc.apparmor.profile: generated", "'key: value' is Proxmox's syntax, not LXC's",
     "write lxc.apparmor.profile = generated"),
    ("lxc.environment: HOME=/root", "'key: value' is Proxmox's syntax, not LXC's",
     "write lxc.environment = HOME=/root"),
    ("lxc.lxcpath = /srv/lxc", "lxc.lxcpath is a system-wide setting, not a container's",
     "it belongs in /etc/lxc/lxc.conf"),
    ("lxc.cgroup.pattern = lxc/%n", "lxc.cgroup.pattern is a system-wide setting",
     "lxc.system.conf(5)"),
])
def test_messages_that_say_what_went_wrong(tmp_path: Path, line: str, message: str,
                                           hint: str) -> None:
    config = write(tmp_path / "config", f"lxc.uts.name = x\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_path(config)
    assert info.value.line == 2 and info.value.message.startswith(message), info.value
    assert hint in info.value.hint, info.value.hint
    assert load_path(write(tmp_path / "ok", "lxc.environment = MAIL=root@host\n"))
