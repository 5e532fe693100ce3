"""`lxcsd console` against a real container: lxc@NAME.service started by systemctl, its
console pty handed by lxcsd-helper to lxcsd-console.service (tests/sandbox/test_console.py
covers the console service itself with a stand-in helper)."""

from __future__ import annotations

import pytest

from tests.infra import e2e_util as u
from tests.infra import rootfs
from tests.infra.sandbox import Sandbox


@pytest.fixture
def sb(clean_lxcsd_sandbox: Sandbox) -> Sandbox:
    return clean_lxcsd_sandbox


def test_lxcsd_console_types_into_the_containers_shell(sb: Sandbox) -> None:
    u.make_busybox(sb, "con1")
    sb.systemctl("daemon-reload")
    u.start(sb, "con1")
    # busybox init respawns a login shell on /dev/console (a terminal here). script(1) gives
    # the client a terminal; what is piped in is typed on it; Ctrl-a q detaches.
    typed = r"sleep 2; printf 'echo answer-$((6*7)) $(hostname)\r'; sleep 2; printf '\001q'"
    r = sb.run(["/bin/sh", "-c", f"({typed}) | script -qfec 'lxcsd console con1' /dev/null"],
               timeout=60, check=False)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "answer-42 con1" in r.stdout, r.stdout
    # The container is still running after the viewer detached.
    assert u.prop(sb, u.unit("con1"), "ActiveState") == "active"


def test_show_log_has_the_console_since_start(sb: Sandbox) -> None:
    u.make_busybox(sb, "con2")
    sb.systemctl("daemon-reload")
    u.start(sb, "con2")
    u.wait_for(lambda: rootfs.SYSINIT_LINE in sb.run(
        ["lxcsd", "console", "con2", "--show-log"]).stdout, 30, "the sysinit line in the log")


def test_console_of_a_stopped_container_is_a_clear_error(sb: Sandbox) -> None:
    u.make_busybox(sb, "con3")
    sb.systemctl("daemon-reload")
    sb.systemctl("start", "lxcsd-console.socket")  # as after any container started
    r = sb.run(["lxcsd", "console", "con3"], check=False)
    assert r.returncode != 0
    assert "con3" in r.stderr and "Traceback" not in r.stderr, r.stderr
