"""Autostart across a reboot of the sandbox (its systemd starts again, same disk):
`systemctl enable lxc@NAME` and `lxc.start.auto = 1` both start a container at boot, in
lxc.start.order; a container with neither stays down; a broken autostart config fails
alone. One private sandbox and one reboot for all of it (boots are the expensive part).
"""

from __future__ import annotations

from collections.abc import Callable

from tests.infra import e2e_util as u
from tests.infra.sandbox import Sandbox


def test_enable_and_start_auto_autostart_after_reboot(
        new_sandbox: Callable[..., Sandbox]) -> None:
    sb = new_sandbox()
    sb.install_lxcsd()
    u.make_busybox(sb, "enabled1")
    u.make_busybox(sb, "manual1")
    for name, order in (("auto-c", 3), ("auto-a", 1), ("auto-b", 2)):
        u.make_busybox(sb, name, ("lxc.start.auto = 1", f"lxc.start.order = {order}"))
    config = u.make_busybox(sb, "autobad", ("lxc.start.auto = 1", "lxc.cap.drop = nope"))
    sb.systemctl("daemon-reload")
    sb.systemctl("enable", "lxc@enabled1.service")
    assert sb.path("/etc/systemd/system/lxc-containers.target.wants/"
                   "lxc@enabled1.service", follow=False).is_symlink()
    assert u.prop(sb, "lxc@auto-a.service", "ActiveState") == "inactive"

    sb.reboot()

    assert sb.boot == 2  # the first boot counts as 1
    states = {n: u.prop(sb, u.unit(n), "ActiveState")
              for n in ("enabled1", "manual1", "auto-a", "auto-b", "auto-c", "autobad")}
    assert states == {"enabled1": "active", "manual1": "inactive", "auto-a": "active",
                      "auto-b": "active", "auto-c": "active", "autobad": "failed"}, \
        sb.journal(lines=120)
    stamps = [int(u.prop(sb, u.unit(n), "ActiveEnterTimestampMonotonic"))
              for n in ("auto-a", "auto-b", "auto-c")]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert f"{config}:" in u.status(sb, "lxc@autobad.service")
    # The failed container is reported by the boot (degraded), the others run their init.
    assert "lxc@autobad.service" in sb.failed_unit_names()
    for name in ("enabled1", "auto-a"):
        assert u.in_container(sb, name, ["hostname"]).strip() == name
