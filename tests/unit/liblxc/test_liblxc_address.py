"""Which liblxc command sockets listen (lxcsd.liblxc.address): /proc/net/unix read once,
against the connect() the generator made per container before."""

from __future__ import annotations

import socket
from pathlib import Path

from lxcsd.liblxc import address

PROC_NET_UNIX = """\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 101 @/var/lib/lxc/web/command
0000000000000000: 00000002 00000000 00000000 0001 01 102 @/var/lib/lxc/bound/command
0000000000000000: 00000002 00000000 00010000 0001 01 103 /run/systemd/private
0000000000000000: 00000002 00000000 00010000 0001 01 104 @/srv/my lxc/db/command
0000000000000000: 00000003 00000000 00000000 0001 03 105
0000000000000000: 00000002 00000000 00010000 0001 01 106 @lxc/00aa00bb00cc00dd/command
"""


def test_listening_names_from_proc_net_unix(tmp_path: Path) -> None:
    table = tmp_path / "unix"
    table.write_text(PROC_NET_UNIX)
    found = address.listening_abstract(str(table))
    assert found == {b"@/var/lib/lxc/web/command", b"@/srv/my lxc/db/command",
                     b"@lxc/00aa00bb00cc00dd/command"}
    assert address.may_listen(address.socket_name("/var/lib/lxc", "web"), found)
    assert address.may_listen(address.socket_name("/srv/my lxc", "db"), found)
    # bound without listen(): a connect() is refused as for nothing at all
    assert not address.may_listen(address.socket_name("/var/lib/lxc", "bound"), found)
    assert not address.may_listen(address.socket_name("/var/lib/lxc", "other"), found)


def test_what_the_table_cannot_say_is_probed(tmp_path: Path) -> None:
    assert address.listening_abstract(str(tmp_path / "missing")) is None
    assert address.may_listen(address.socket_name("/var/lib/lxc", "c1"), None)
    # a newline in the name breaks the table's lines
    assert address.may_listen(address.socket_name("/var/lib/lxc", "a\nb"), frozenset())


def test_a_real_listening_socket_is_seen(tmp_path: Path) -> None:
    lxcpath = str(tmp_path / "lxc")
    name = address.socket_name(lxcpath, "c1")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(name)
        listener.listen(1)
        bound.bind(address.socket_name(lxcpath, "c2"))
        found = address.listening_abstract()
        assert address.may_listen(name, found)
        assert not address.may_listen(address.socket_name(lxcpath, "c2"), found)
    finally:
        listener.close()
        bound.close()
