"""The habits lxcsd's users bring from LXC and systemd: -n NAME and -P DIR on every verb
that names a container, lxc-ls's listing options, a subcommand's own usage on a wrong
option, help without source markup, info's links and limits, config unset of whatever
check reports. Everything here runs the real parsers and the real commands on configs in
tmp_path; only systemd is out of reach (ls -1 does not need it)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lxcsd.cli import _help, _status, info, ls
from lxcsd.cli import main as cli


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command parser by its prog ("lxcsd config get"), nested ones too."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found[sub.prog] = sub
                found.update(_subparsers(sub))
    return found


PARSERS = _subparsers(cli.build_parser())


def parse(argv: list[str]) -> dict[str, object]:
    args = cli.build_parser().parse_args(argv)
    _help.finish(args)
    return {key: value for key, value in vars(args).items()
            if key not in ("func", "after_parse", "n_names", "words", "names", "newname",
                           "s_states")}


# Each verb with a name: the lxc-* spelling (-n) parses to what the positional one does.
SAME = [
    (["start", "-n", "a", "-n", "b"], ["start", "a", "b"]),
    (["stop", "-n", "a", "--no-block"], ["stop", "a", "--no-block"]),
    (["restart", "-n", "a"], ["restart", "a"]),
    (["enable", "-n", "a", "--now"], ["enable", "a", "--now"]),
    (["disable", "--name", "a"], ["disable", "a"]),
    (["info", "-n", "a", "-s"], ["info", "a", "-s"]),
    (["ls", "-n", "a"], ["ls", "a"]),
    (["monitor", "-n", "a"], ["monitor", "a"]),
    (["wait", "-n", "a", "-s", "RUNNING", "-t", "5"], ["wait", "a", "RUNNING", "-t", "5"]),
    (["console", "-n", "a", "-t", "1"], ["console", "a", "-t", "1"]),
    (["attach", "-n", "a", "--", "ps", "aux"], ["attach", "a", "--", "ps", "aux"]),
    (["attach", "-n", "a", "-u", "5", "--", "id"], ["attach", "-u", "5", "a", "--", "id"]),
    (["create", "-n", "a", "-t", "debian"], ["create", "a", "-t", "debian"]),
    (["destroy", "-n", "a", "-f"], ["destroy", "a", "-f"]),
    (["copy", "-n", "a", "-N", "b"], ["copy", "a", "b"]),
    (["copy", "-n", "a", "b"], ["copy", "a", "b"]),
    (["config", "get", "-n", "a", "lxc.uts.name"], ["config", "get", "a", "lxc.uts.name"]),
    (["config", "set", "-n", "a", "lxc.x", "v"], ["config", "set", "a", "lxc.x", "v"]),
    (["config", "unset", "-n", "a", "lxc.x"], ["config", "unset", "a", "lxc.x"]),
    (["generate", "--dry-run", "-n", "a"], ["generate", "--dry-run", "a"]),
]


@pytest.mark.parametrize(("lxc_style", "positional"), SAME, ids=[" ".join(s[0]) for s in SAME])
def test_dash_n_is_the_same_as_the_positional_name(lxc_style: list[str],
                                                   positional: list[str]) -> None:
    assert parse(lxc_style) == parse(positional)


def test_attach_command_and_wait_states_land_where_they_belong() -> None:
    assert parse(["attach", "-n", "a", "--", "ps", "aux"])["rest"] == ["ps", "aux"]
    got = parse(["wait", "-n", "a", "-s", "RUNNING|FAILED"])
    assert (got["name"], got["states"]) == ("a", "RUNNING|FAILED")
    got = parse(["config", "set", "a", "lxc.environment", "--", "--x"])
    assert (got["target"], got["key"], got["value"]) == ("a", "lxc.environment", "--x")
    got = parse(["copy", "-n", "a", "-N", "b"])
    assert (got["source"], got["dest"]) == ("a", "b")


def test_every_verb_with_a_name_takes_dash_n_and_dash_p() -> None:
    with_name = {prog: parser for prog, parser in PARSERS.items()
                 if "-n" in parser._option_string_actions}
    assert set(with_name) >= {f"lxcsd {verb}" for verb in (
        "start", "stop", "restart", "enable", "disable", "info", "ls", "monitor", "wait",
        "console", "attach", "create", "destroy", "copy", "check")}
    assert {"lxcsd config get", "lxcsd config set", "lxcsd config unset"} <= set(with_name)
    for prog, parser in with_name.items():
        assert "-P" in parser._option_string_actions, f"{prog} has -n but no -P"
        assert "--lxcpath" in parser._option_string_actions, prog


@pytest.mark.parametrize("argv", [
    ["info"], ["console"], ["wait", "a"], ["copy", "a"], ["config", "get", "a"],
    ["destroy", "a", "b"], ["start", "a", "-n"], ["create", "-n", "a", "-n", "b"],
    ["wait", "-n", "a", "-n", "b", "RUNNING"]])
def test_missing_or_extra_names_are_usage_errors(argv: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith(f"usage: lxcsd {' '.join(w for w in argv[:2] if w[0] != '-')}"
                          if argv[0] == "config" else f"usage: lxcsd {argv[0]}"), err


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_a_wrong_option_prints_the_subcommands_usage(prog: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    words = prog.split()[1:]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*words, "--no-such-option"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    # The first problem argparse meets is reported (for some, a missing argument), always
    # with this parser's usage.
    assert err.startswith(f"usage: {prog} "), err
    assert f"\n{prog}: error: " in err


@pytest.mark.parametrize("prog", ["lxcsd", *sorted(PARSERS)])
def test_help_has_no_source_markup(prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([*prog.split()[1:], "--help"])
    out = capsys.readouterr().out
    for mark in ("``", ":mod:", ":func:", ":class:", ":meth:", "`"):
        assert mark not in out, f"{prog} --help shows {mark!r}"


def test_markup_becomes_plain_text() -> None:
    text = "as ``lxc-ls -f``, see :mod:`lxcsd.attach` and `lxcsd console NAME`"
    assert _help.plain(text) == ("as 'lxc-ls -f', see lxcsd.attach and "
                                 "'lxcsd console NAME'")


def test_top_level_help_has_examples_of_the_everyday_verbs(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    examples = capsys.readouterr().out.split("examples:", 1)[1]
    for verb in ("create", "start", "stop", "ls", "info", "attach", "console", "enable",
                 "check", "config", "destroy"):
        assert f"  lxcsd {verb} " in examples, verb


# ------------------------------------------------------------------------------------------
# ls


@pytest.fixture
def lxcpath(tmp_path: Path) -> Path:
    for name in ("web1", "web2", "db"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config").write_text(f"lxc.uts.name = {name}\n")
    (tmp_path / "not-a-container").mkdir()
    return tmp_path


def test_ls_one_per_line_lists_names_without_systemd(lxcpath: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # No system bus is reachable from a unit test: -1 must not need one.
    assert cli.main(["ls", "-1", "-P", str(lxcpath)]) == 0
    assert capsys.readouterr().out.splitlines() == ["db", "web1", "web2"]
    assert cli.main(["ls", "--line", "-P", str(lxcpath), "web2", "-n", "db"]) == 0
    assert capsys.readouterr().out.splitlines() == ["db", "web2"]


def _info(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "c1", "state": "RUNNING", "autostart": True, "groups": ["web", "db"],
        "ipv4": ["10.0.3.5"], "ipv6": [], "unprivileged": False, "pid": 42,
        "memory": 2048, "swap": None, "interfaces": ["eth0", "eth1"]}
    base.update(kw)
    return base


def test_ls_fancy_format_columns_as_lxc_ls() -> None:
    assert ls.columns("name, State,ram") == ("NAME", "STATE", "RAM")
    with pytest.raises(argparse.ArgumentTypeError, match="invalid column BOGUS"):
        ls.columns("name,bogus")
    header = ls.columns("NAME,PID,RAM,SWAP,INTERFACE")
    assert ls.row(_info(), header) == ["c1", "42", "2.00KiB", "-", "eth0,eth1"]
    text = ls.table([ls.row(_info(), header)], header)
    assert text.splitlines()[0].split() == list(header)


def test_ls_state_and_group_filters() -> None:
    def args(**kw: object) -> argparse.Namespace:
        base = {"names": [], "running": False, "stopped": False, "active": False,
                "group": None}
        base.update(kw)
        return argparse.Namespace(**base)

    states = ("RUNNING", "STARTING", "STOPPING", "STOPPED", "FAILED")
    active = [s for s in states if ls.selected(_info(state=s), args(active=True))]
    assert active == ["RUNNING", "STARTING", "STOPPING"]
    stopped = [s for s in states if ls.selected(_info(state=s), args(stopped=True))]
    assert stopped == ["STOPPED", "FAILED"]
    # lxc-ls -g web,db: in both groups; a repeated -g: in either.
    assert ls.selected(_info(), args(group=["web,db"]))
    assert not ls.selected(_info(groups=["web"]), args(group=["web,db"]))
    assert ls.selected(_info(groups=["web"]), args(group=["db", "web"]))


def test_ls_rejects_a_wrong_column_with_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["ls", "-F", "name,frozen"])
    err = capsys.readouterr().err
    assert err.startswith("usage: lxcsd ls") and "invalid column FROZEN" in err


# ------------------------------------------------------------------------------------------
# info: limits, interfaces, links


def _write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def test_limits_are_the_tightest_of_unit_and_payload(tmp_path: Path) -> None:
    unit, payload = tmp_path / "lxc@c1.service", tmp_path / "lxc@c1.service/lxc.payload.c1"
    _write(unit, {"memory.max": "1073741824\n", "pids.max": "16384\n", "cpu.max": "max 100000\n",
                  "memory.high": "max\n"})
    _write(payload, {"memory.max": "536870912\n", "pids.max": "max\n",
                     "cpu.max": "50000 100000\n", "memory.swap.max": "0\n"})
    got = _status.limits([str(unit), str(payload)])
    assert got == {"memory_max": 512 << 20, "memory_high": None, "swap_max": 0,
                   "pids_max": 16384, "cpus": 0.5}
    assert _status.limits([str(tmp_path / "gone")]) == dict.fromkeys(got)


def test_info_shows_usage_with_limits_and_lxc_info_links() -> None:
    limits = {"memory_max": 512 << 20, "memory_high": None, "swap_max": None,
              "pids_max": 100, "cpus": 1.5}
    detail = _info(cpu_ns=2_000_000_000, pids=7, io_read=None, io_write=None, unit="lxc@c1",
                   active_state="active", sub_state="running", control_group=None,
                   status_text=None, config="/x/config", start_auto=True, enabled=False,
                   start_order=0, start_delay=0, config_error=None, limits=limits,
                   links=[{"link": "vethAB", "type": "veth", "tx": 1024, "rx": 2048},
                          {"link": "eth9", "type": "macvlan", "tx": None, "rx": None}])
    pairs = info.lines(detail)
    assert ("CPU use", "2.000s (limit 1.5 CPU)") in pairs
    assert ("Memory use", "2.00KiB (limit 512.00MiB)") in pairs
    assert ("Processes", "7 (limit 100)") in pairs
    links = [pair for pair in pairs if pair[0] in ("Link", " TX bytes", " RX bytes",
                                                   " Total bytes")]
    assert links == [("Link", "vethAB"), (" TX bytes", "1.00KiB"), (" RX bytes", "2.00KiB"),
                     (" Total bytes", "3.00KiB"), ("Link", "eth9"), (" TX bytes", "-"),
                     (" RX bytes", "-")]
    assert not any(label == "Swap use" for label, _ in pairs)


def test_net_dev_interfaces_without_loopback() -> None:
    text = ("Inter-|   Receive |  Transmit\n face |bytes    packets\n"
            "    lo: 1 2 3\n  eth0: 4 5 6\nveth1: 7\n")
    assert _status.parse_net_dev(text) == ["eth0", "veth1"]
    with open("/proc/self/net/dev", encoding="ascii") as f:
        assert "lo" not in _status.parse_net_dev(f.read())


def test_host_links_read_the_net_state_and_count_from_the_container_side(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lxcsd.net import state as net_state

    monkeypatch.setenv("LXCSD_RUN_DIR", str(tmp_path / "run"))
    state_dir = tmp_path / "run" / "c1"
    state_dir.mkdir(parents=True)
    net_state.append(str(state_dir), net=0, type="veth", host="vethAB", link="lxcbr0")
    net_state.append(str(state_dir), net=1, type="phys", orig="eth5", link="eth5")
    net_state.append(str(state_dir), net=2, type="macvlan", link="eth0")
    sysfs = tmp_path / "sys"
    _write(sysfs / "vethAB/statistics", {"rx_bytes": "100\n", "tx_bytes": "300\n"})
    got = _status.host_links("c1", sysfs=str(sysfs))
    assert got == [{"link": "vethAB", "type": "veth", "tx": 100, "rx": 300},
                   {"link": "eth0", "type": "macvlan", "tx": None, "rx": None}]
    assert _status.host_links("c2", sysfs=str(sysfs)) == []


# ------------------------------------------------------------------------------------------
# config unset of what check reports


def test_config_unset_removes_every_line_check_reports(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    (tmp_path / "c1").mkdir()
    config = tmp_path / "c1" / "config"
    config.write_text("lxc.uts.name = c1\nlxc.net.0.type = empty\nlxc.net.0.typo = x\n"
                      "lxc.foo = 1\nlxc.start.auto = banana\nlxc.bar\nlxc.include = /nope\n")
    P = ["-P", str(tmp_path)]
    assert cli.main(["check", "--config-only", *P, "c1"]) == 1
    reported = [line.split(": ")[2] for line in capsys.readouterr().out.splitlines()
                if ": note: " not in line]
    assert reported == ["lxc.net.0.typo", "lxc.foo", "lxc.start.auto", "lxc.bar",
                        "lxc.include"]
    for key in reported:
        assert cli.main(["config", "unset", *P, "c1", key]) == 0, capsys.readouterr().err
    assert config.read_text() == "lxc.uts.name = c1\nlxc.net.0.type = empty\n"
    assert cli.main(["check", "--config-only", *P, "c1"]) == 0


def test_config_edits_are_refused_only_for_errors_they_add(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    (tmp_path / "c1").mkdir()
    config = tmp_path / "c1" / "config"
    config.write_text("lxc.uts.name = c1\nlxc.typo = 1\n")
    P = ["-P", str(tmp_path)]
    # The file already has an error (lxc.typo): an unrelated edit still goes through.
    assert cli.main(["config", "set", *P, "c1", "lxc.start.auto", "1"]) == 0
    assert "lxc.start.auto = 1" in config.read_text()
    # A uid map without a gid map: the config would gain an error, so nothing is saved.
    before = config.read_text()
    assert cli.main(["config", "set", *P, "c1", "lxc.idmap", "u 0 100000 65536"]) == 1
    assert "not saved" in capsys.readouterr().err and config.read_text() == before
    assert cli.main(["config", "unset", *P, "c1", "lxc.nope"]) == 1
    assert "unknown key" in capsys.readouterr().err and config.read_text() == before

