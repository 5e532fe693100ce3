"""lxcsd config apply: every key of a fragment gets the fragment's values in effect, in one
checked edit of the container's own file; nothing that already has them is touched."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from lxcsd.cli.main import main

CONFIG = """\
# web: made by hand
lxc.include = {common}
lxc.uts.name = web
lxc.net.0.type = veth
lxc.net.0.link = lxcbr0
lxc.net.0.flags = up

lxc.net.1.type = empty
lxc.tty.max = 2
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path))
    common = tmp_path / "common.conf"
    common.write_text("lxc.cap.drop = sys_module\nlxc.start.delay = 3\n")
    (tmp_path / "web").mkdir()
    path = tmp_path / "web" / "config"
    path.write_text(CONFIG.format(common=common))
    return path


def apply(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fragment: str,
          *options: str) -> dict[str, object]:
    """Run `lxcsd config apply web - --format json OPTIONS` with the fragment on stdin."""
    monkeypatch.setattr("sys.stdin", io.StringIO(fragment))
    status = main(["config", "apply", "web", "-", "--format", "json", *options])
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    assert status == (1 if "error" in result else 0)
    return result


def get(capsys: pytest.CaptureFixture[str], key: str) -> list[str]:
    assert main(["config", "get", "web", key]) == 0
    return capsys.readouterr().out.splitlines()


def test_single_keys_in_place_and_a_second_apply_changes_nothing(
        config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fragment = "lxc.uts.name = db\nlxc.net.0.link = br0\nlxc.start.auto = 1\n"
    first = apply(monkeypatch, capsys, fragment)
    assert first["changed"] is True
    assert first["keys"] == ["lxc.uts.name", "lxc.net.0.link", "lxc.start.auto"]
    text = config.read_text()
    assert text == first["after"]
    # Replaced where they were written; a new key added at the end; the rest untouched.
    assert text.splitlines()[2:5] == ["lxc.uts.name = db", "lxc.net.0.type = veth",
                                      "lxc.net.0.link = br0"]
    assert text.endswith("lxc.tty.max = 2\nlxc.start.auto = 1\n")
    assert text.startswith("# web: made by hand\n")
    again = apply(monkeypatch, capsys, fragment)
    assert again["changed"] is False and again["keys"] == []
    assert config.read_text() == text


def test_a_list_key_gets_exactly_the_fragments_lines(
        config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fragment = "lxc.cap.drop = mknod\nlxc.cap.drop = sys_rawio\n"
    assert apply(monkeypatch, capsys, fragment)["changed"] is True
    # common.conf's sys_module is cleared by a reset line: the fragment's two, nothing else.
    assert get(capsys, "lxc.cap.drop") == ["mknod", "sys_rawio"]
    assert config.read_text().endswith(
        "lxc.cap.drop =\nlxc.cap.drop = mknod\nlxc.cap.drop = sys_rawio\n")
    assert apply(monkeypatch, capsys, fragment)["changed"] is False
    # Shorter list: the file's lines go, the reset line stays (the include still says more).
    assert apply(monkeypatch, capsys, "lxc.cap.drop = mknod\n")["changed"] is True
    assert get(capsys, "lxc.cap.drop") == ["mknod"]
    assert config.read_text().count("lxc.cap.drop") == 2


def test_an_empty_value_clears_also_what_an_include_gives(
        config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    result = apply(monkeypatch, capsys, "lxc.tty.max =\nlxc.start.delay =\n")
    assert result["keys"] == ["lxc.tty.max", "lxc.start.delay"]
    assert "lxc.tty.max" not in config.read_text()  # its own line: removed
    assert get(capsys, "lxc.start.delay") == []      # the include's: reset
    assert config.read_text().endswith("lxc.start.delay =\n")
    assert apply(monkeypatch, capsys, "lxc.tty.max =\nlxc.start.delay =\n")["changed"] is False


def test_lxc_net_reset_makes_the_networks_exactly_the_fragments(
        config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fragment = "lxc.net =\nlxc.net.0.type = veth\nlxc.net.0.link = br0\n"
    result = apply(monkeypatch, capsys, fragment)
    assert result["keys"] == ["lxc.net"]
    text = config.read_text()
    # Network 0 edited where it is (flags, not in the fragment, removed); network 1 gone.
    assert "lxc.net.0.type = veth\nlxc.net.0.link = br0\n\nlxc.tty.max = 2\n" in text
    assert "flags" not in text and "lxc.net.1" not in text
    assert apply(monkeypatch, capsys, fragment)["changed"] is False
    # A new second network: its lines together, after the first's.
    apply(monkeypatch, capsys, fragment + "lxc.net.1.type = veth\nlxc.net.1.link = br1\n")
    assert get(capsys, "lxc.net.1.link") == ["br1"]
    assert "lxc.net.1.type = veth\nlxc.net.1.link = br1\n" in config.read_text()


def test_check_and_diff_change_nothing(config: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    before = config.read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO("lxc.uts.name = db\n"))
    assert main(["config", "apply", "web", "-", "--check", "--diff"]) == 0
    out, err = capsys.readouterr()
    assert "-lxc.uts.name = web\n+lxc.uts.name = db\n" in out
    assert f"{config}: would change lxc.uts.name" in err
    assert config.read_text() == before
    result = apply(monkeypatch, capsys, "lxc.uts.name = db\n", "--check")
    assert result["changed"] is True and result["before"] == before
    assert "lxc.uts.name = db" in str(result["after"]) and config.read_text() == before


def test_from_a_file_in_text_mode(config: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    fragment = tmp_path / "web.conf"
    fragment.write_text("# what web should have\nlxc.start.order = 10\n")
    assert main(["config", "apply", "-n", "web", str(fragment)]) == 0
    assert f"{config}: changed lxc.start.order" in capsys.readouterr().err
    assert main(["config", "apply", str(config), str(fragment)]) == 0
    assert f"{config}: unchanged" in capsys.readouterr().err


@pytest.mark.parametrize(("fragment", "where", "message"), [
    ("lxc.uts.name = db\nlxc.net.0.lnk = br0\n", "<stdin>:2", "did you mean link?"),
    ("lxc.tty.max = lots\n", "<stdin>:1", "not a valid number"),
    ("lxc.include = /etc/lxc/x.conf\n", "<stdin>:1", "cannot be applied"),
    ("lxc.network.type = veth\n", "<stdin>:1", "legacy unindexed network key"),
    ("hostname = db\n", "<stdin>:1", "not an lxc.* key"),
    # Valid on its own, not in this config: the error is located in the config itself.
    ("lxc.net.1.veth.pair = v1\n", "{config}:", "lxc.net.1.type = veth"),
])
def test_errors_are_located_and_leave_the_file(
        config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        fragment: str, where: str, message: str) -> None:
    before = config.read_text()
    result = apply(monkeypatch, capsys, fragment)
    error = result["error"]
    assert isinstance(error, dict)
    assert str(error["text"]).startswith(where.format(config=config)), error
    assert message in str(error["text"])
    assert config.read_text() == before


def test_a_key_set_before_an_include_that_sets_it_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The include read after the key's line would win: the key is written after it."""
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path))
    (tmp_path / "late.conf").write_text("lxc.start.delay = 3\n")
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "config").write_text(
        f"lxc.start.delay = 1\nlxc.include = {tmp_path / 'late.conf'}\n")
    assert apply(monkeypatch, capsys, "lxc.start.delay = 5\n")["changed"] is True
    assert get(capsys, "lxc.start.delay") == ["5"]
    assert apply(monkeypatch, capsys, "lxc.start.delay = 5\n")["changed"] is False
