"""The key table: complete against liblxc, consistent, and the docs generated from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lxcsd.config import docs, keys
from lxcsd.paths import SOURCE_TREE

# Every key of liblxc's config_jump_table (LXC 5.0 and 6/7, confile.c), and of its network
# table, with example names for the prefix keys. Keep in sync when LXC adds keys.
LIBLXC_KEYS = """
lxc.arch lxc.apparmor.profile lxc.apparmor.allow_incomplete lxc.apparmor.allow_nesting
lxc.apparmor.raw lxc.autodev.tmpfs.size lxc.autodev lxc.cap.drop lxc.cap.keep
lxc.cgroup2.memory.max lxc.cgroup.dir.monitor.pivot lxc.cgroup.dir.monitor
lxc.cgroup.dir.container.inner lxc.cgroup.dir.container lxc.cgroup.dir lxc.cgroup.relative
lxc.cgroup.memory.limit_in_bytes lxc.console.buffer.size lxc.console.logfile
lxc.console.path lxc.console.rotate lxc.console.size lxc.sched.core lxc.environment.runtime
lxc.environment.hooks lxc.environment lxc.ephemeral lxc.execute.cmd lxc.group
lxc.hook.autodev lxc.hook.clone lxc.hook.destroy lxc.hook.mount lxc.hook.post-stop
lxc.hook.pre-mount lxc.hook.pre-start lxc.hook.start lxc.hook.start-host lxc.hook.stop
lxc.hook.version lxc.hook lxc.idmap lxc.include lxc.init.cmd lxc.init.gid lxc.init.groups
lxc.init.uid lxc.init.cwd lxc.keyring.session lxc.log.file lxc.log.level lxc.log.syslog
lxc.monitor.unshare lxc.monitor.signal.pdeath lxc.mount.auto lxc.mount.entry
lxc.mount.fstab lxc.namespace.clone lxc.namespace.keep lxc.namespace.share.net
lxc.time.offset.boot lxc.time.offset.monotonic lxc.net lxc.no_new_privs
lxc.prlimit.nofile lxc.pty.max lxc.rootfs.managed lxc.rootfs.mount lxc.rootfs.options
lxc.rootfs.path lxc.seccomp.allow_nesting lxc.seccomp.notify.cookie
lxc.seccomp.notify.proxy lxc.seccomp.profile lxc.selinux.context.keyring
lxc.selinux.context lxc.signal.halt lxc.signal.reboot lxc.signal.stop lxc.start.auto
lxc.start.delay lxc.start.order lxc.tty.dir lxc.tty.max lxc.uts.name
lxc.sysctl.net.ipv4.ip_forward lxc.proc.oom_score_adj
""".split()
LIBLXC_NET_KEYS = """
flags hwaddr ipv4.address ipv4.gateway ipv6.address ipv6.gateway link l2proxy macvlan.mode
ipvlan.mode ipvlan.isolation mtu name script.down script.up type vlan.id veth.mode
veth.n_rxqueues veth.n_txqueues veth.pair veth.ipv4.route veth.ipv6.route veth.vlan.id
veth.vlan.tagged.id
""".split()
# lxc-update-config's renames (and LXC 2.1's legacy table).
LEGACY = {
    "lxc.id_map": "lxc.idmap", "lxc.pts": "lxc.pty.max", "lxc.tty": "lxc.tty.max",
    "lxc.devttydir": "lxc.tty.dir", "lxc.aa_profile": "lxc.apparmor.profile",
    "lxc.aa_allow_incomplete": "lxc.apparmor.allow_incomplete",
    "lxc.se_context": "lxc.selinux.context", "lxc.mount": "lxc.mount.fstab",
    "lxc.utsname": "lxc.uts.name", "lxc.seccomp": "lxc.seccomp.profile",
    "lxc.console": "lxc.console.path", "lxc.haltsignal": "lxc.signal.halt",
    "lxc.rebootsignal": "lxc.signal.reboot", "lxc.stopsignal": "lxc.signal.stop",
    "lxc.syslog": "lxc.log.syslog", "lxc.loglevel": "lxc.log.level",
    "lxc.logfile": "lxc.log.file", "lxc.init_cmd": "lxc.init.cmd",
    "lxc.init_uid": "lxc.init.uid", "lxc.init_gid": "lxc.init.gid",
    "lxc.limit.nofile": "lxc.prlimit.nofile", "lxc.rootfs": "lxc.rootfs.path",
    "lxc.network": "lxc.net", "lxc.network.1.link": "lxc.net.1.link",
    "lxc.network.0.ipv4": "lxc.net.0.ipv4.address",
}


@pytest.mark.parametrize("key", LIBLXC_KEYS)
def test_every_liblxc_key_is_in_the_table(key: str) -> None:
    spec, canonical, _, _ = keys.lookup(key)
    assert canonical == key and spec.doc


@pytest.mark.parametrize("sub", LIBLXC_NET_KEYS)
def test_every_liblxc_network_key_is_in_the_table(sub: str) -> None:
    spec, canonical, found, index = keys.lookup(f"lxc.net.3.{sub}")
    assert (canonical, found, index) == (f"lxc.net.3.{sub}", sub, 3) and spec.doc


@pytest.mark.parametrize("old, new", sorted(LEGACY.items()))
def test_legacy_names(old: str, new: str) -> None:
    assert keys.lookup(old)[1] == new


def test_table_is_consistent() -> None:
    patterns = [key.pattern for key in keys.KEYS]
    assert len(patterns) == len(set(patterns))
    for key in keys.KEYS:
        assert key.doc.endswith(".") and key.group and key.parser.type_doc, key
    # keys the runtime does not honour yet are implemented=False; the reader's own key is
    assert "lxc.include" in [key.name for key in keys.KEYS if key.implemented]


def test_lookup_unknown_keys() -> None:
    for key in ("lxc.foo", "lxc.net.0.foo", "lxc.network.foo", "lxc.cgroup2.", "lxc.net.x.type"):
        with pytest.raises(keys.UnknownKey):
            keys.lookup(key)


def test_parsers_follow_the_value_old_convention() -> None:
    drop = keys.EXACT["lxc.cap.drop"].parser
    assert drop("sys_admin", None) == (False, ("sys_admin",), False)
    assert drop("", (False, ("sys_admin",), False)) == (False, (), True)
    entry = keys.EXACT["lxc.mount.entry"].parser
    first = entry("proc proc proc 0 0", None)
    assert len(entry("sys sys sysfs 0 0", first)) == 2 and len(first) == 1  # old unchanged
    assert keys.EXACT["lxc.tty.max"].parser("4", 2) == 4
    assert keys.EXACT["lxc.sysctl"].parser("1", {"a": "0"}, "b") == {"a": "0", "b": "1"}


def test_committed_docs_are_up_to_date() -> None:
    with open(docs.DOC_PATH, encoding="utf-8") as handle:
        assert handle.read() == docs.render(), "run: python -m lxcsd.config.docs"
    assert "`lxc.net.[i].veth.pair`" in docs.render()


def test_docs_command_checks() -> None:
    result = subprocess.run([sys.executable, "-m", "lxcsd.config.docs", "--check"],
                            cwd=SOURCE_TREE, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
