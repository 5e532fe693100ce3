"""lxcsd.generator.fastload against the full reader on real configs: what LXC's templates
and lxc-create write (with LXC's shipped includes, common.conf and userns.conf, when
installed), each loaded twice (the second time from the line memo and the include cache).
The fields the generator reads must be equal; configs the shortcut declines (legacy keys,
errors) must be declined, not guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcsd.config.load import load_path
from lxcsd.config.model import Container
from lxcsd.generator import fastload

DATA = Path(__file__).resolve().parents[1] / "unit" / "config" / "data"
CONFIGS = sorted(DATA.glob("*.conf"))


def generator_fields(container: Container) -> tuple[object, ...]:
    rootfs = container.rootfs
    return (
        container.name, container.config_path,
        (rootfs.kind, rootfs.path, rootfs.lower, rootfs.upper),
        tuple((net.index, net.type, net.link) for net in container.net),
        (container.signals.halt, container.signals.reboot, container.signals.stop),
        (container.start.auto, container.start.order, container.start.delay),
        container.groups,
        tuple((s.key, s.value, s.path, s.line) for s in container.cgroup2),
        tuple((s.key, s.value, s.path, s.line) for s in container.cgroup_v1),
    )


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_same_fields_as_the_full_reader(config: Path) -> None:
    full = load_path(str(config), "ct")
    for _ in range(2):
        fast = fastload.load(str(config), "ct")
        if fast is None:
            assert any(e.key != e.canonical and not e.key.startswith("lxc.net.")
                       for e in full.entries), f"{config.name}: declined without a reason"
            continue
        assert generator_fields(fast) == generator_fields(full)


def test_declines_broken_and_legacy_configs(tmp_path: Path) -> None:
    cases = {
        "unknown": "lxc.bogus = 1\n",
        "bad-value": "lxc.start.order = soon\n",
        "legacy": "lxc.utsname = old\n",
        "caps": "lxc.cap.drop = sys_admin\nlxc.cap.keep = net_admin\n",
        "idmap-overlap": "lxc.idmap = u 0 100000 65536\nlxc.idmap = u 0 200000 10\n",
        "missing-include": f"lxc.include = {tmp_path}/none.conf\n",
        "cr": "lxc.start.auto = 1\rlxc.start.order = 2\n",
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.conf"
        path.write_text(text)
        assert fastload.load(str(path), name) is None, name
    good = tmp_path / "good.conf"
    good.write_text("lxc.start.auto = 1\nlxc.group = onboot web\nlxc.cgroup2.devices.deny = a\n")
    container = fastload.load(str(good), "good")
    assert container is not None and container.groups == ("onboot", "web")
    assert [(s.key, s.line) for s in container.cgroup2] == [("devices.deny", 3)]
