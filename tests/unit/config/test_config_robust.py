"""The reader never raises anything but ConfigError, whatever the files contain."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lxcsd.config import keys
from lxcsd.config.build import warnings as config_warnings
from lxcsd.config.document import ConfigDocument
from lxcsd.config.load import check_path, load_path
from lxcsd.errors import ConfigError

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

KNOWN_KEYS = [k.name for k in keys.KEYS if k.kind == "exact"] + [
    "lxc.net.0.type", "lxc.net.1.link", "lxc.net.0.veth.pair", "lxc.net.0.ipv4.address",
    "lxc.cgroup2.memory.max", "lxc.cgroup.devices.allow", "lxc.sysctl.net.x",
    "lxc.prlimit.nofile", "lxc.network.type", "lxc.network.link", "lxc.utsname",
    "lxc.namespace.share.net", "lxc.proc.oom_score_adj", "lxc.hook.start", "foo",
]
VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "veth", "up", "u 0 1 1", "SIGTERM", "a b c d 0 0",
                     "/usr/share/lxc/config/common.conf", "/", "auto", "none", "10.0.0.1/8"]),
    st.text(max_size=20),
)
LINES = st.one_of(
    st.tuples(st.sampled_from(KNOWN_KEYS), st.sampled_from([" = ", "=", " =", "\t=\t"]),
              VALUES).map("".join),
    st.sampled_from(["", "# comment", "lxc.", "lxc.=", "=", "lxc.include =", " \f "]),
    st.text(max_size=30),
)


def only_config_errors(path: str) -> None:
    """Both entry points: collecting (check) and raising (load)."""
    container, errors = check_path(path)
    assert all(isinstance(error, ConfigError) for error in errors)
    if container is not None:
        assert all(isinstance(w, ConfigError) for w in config_warnings(container))
        str(config_warnings(container))
    try:
        load_path(path)
    except ConfigError as exc:
        assert str(exc)


@SETTINGS
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "config"
    path.write_bytes(data)
    only_config_errors(str(path))


@SETTINGS
@given(lines=st.lists(LINES, max_size=40), ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_config_shaped_junk(tmp_path: Path, lines: list[str], ending: str) -> None:
    path = tmp_path / "config"
    path.write_text(ending.join(lines), errors="surrogateescape")
    only_config_errors(str(path))


@SETTINGS
@given(edges=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6)), max_size=12),
       bodies=st.lists(st.lists(LINES, max_size=4), min_size=6, max_size=6))
def test_include_graphs_with_cycles_and_missing_files(tmp_path: Path,
                                                      edges: list[tuple[int, int]],
                                                      bodies: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as directory:
        # File 6 never exists; a file may include itself or form cycles.
        for node in range(6):
            includes = [f"lxc.include = {directory}/{b}.conf" for a, b in edges if a == node]
            Path(directory, f"{node}.conf").write_text("\n".join(bodies[node] + includes))
        only_config_errors(f"{directory}/0.conf")


def test_special_files_where_configs_are_expected(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir.conf").mkdir()
    (tmp_path / "includes").mkdir()
    os.mkfifo(tmp_path / "includes/pipe.conf")
    os.symlink("loop", tmp_path / "loop")
    for target in ("fifo", "dir.conf", "includes", "includes/", "loop", "/dev/zero",
                   "/proc/self/status", "/etc/passwd/x", "missing/"):
        config = tmp_path / "config"
        config.write_text(f"lxc.include = {tmp_path}/{target}\n" if target[0] != "/"
                          else f"lxc.include = {target}\n")
        only_config_errors(str(config))
        only_config_errors(str(tmp_path / target))


@SETTINGS
@given(key=st.sampled_from(KNOWN_KEYS), value=st.text(max_size=20))
def test_writer_refuses_with_config_errors_only(key: str, value: str) -> None:
    document = ConfigDocument("/nonexistent", "lxc.net.0.type = veth\n")
    try:
        document.set(key, value)
    except ConfigError:
        return
    document.unset(key)
