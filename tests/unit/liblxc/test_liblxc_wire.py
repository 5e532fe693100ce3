"""liblxc's command-socket format (lxcsd.liblxc.wire), against what LXC 5.0.2 does.

The struct sizes are those strace showed between Debian's lxc-* tools and a real
``lxc-start -d`` container (16-byte request and response, 80-byte struct cgroup_fd,
96-byte struct cgroup_ctx, 32 bytes of lxc_state_t[MAX_STATE]); the socket names are the
ones a real lxc-start bound, read from /proc/net/unix in the sandbox (both sides of the
105/106-byte boundary where liblxc switches to the FNV-1a hash).
"""

from __future__ import annotations

import pytest

from lxcsd.liblxc import wire

LONG_LXCPATH = ("/var/lib/lxc-long-path-0123456789-0123456789-0123456789-0123456789-"
                "0123456789-0123456789-abcdef")


def test_struct_sizes_are_liblxcs() -> None:
    assert (wire.REQ.size, wire.RSP.size) == (16, 16)
    assert wire.CGROUP_FD.size == 80
    assert wire.CGROUP_CTX.size == 96
    assert wire.STATES.size == 32
    assert wire.CONSOLE_LOG_REQ.size == 24
    assert wire.MSG.size == 264  # type, name[NAME_MAX + 1], value


def test_socket_name_as_lxc_start_binds_it() -> None:
    assert wire.socket_name("/var/lib/lxc", "t1") == b"\0/var/lib/lxc/t1/command"
    # Bound by LXC 5.0.2's lxc-start -P LONG_LXCPATH -n h1 (from /proc/net/unix).
    assert wire.socket_name(LONG_LXCPATH, "h1") == b"\0lxc/87c23b5ac4253368/command"


@pytest.mark.parametrize(("length", "hashed"), [(94, b""), (95, b"lxc/e9d43fa51567d6f6/")])
def test_hashing_starts_at_106_bytes(length: int, hashed: bytes) -> None:
    lxcpath = "/var/lib/" + "x" * (length - 9)
    name = wire.socket_name(lxcpath, "h1")
    if hashed:  # 95 + len("/h1/command") = 106 bytes: liblxc's snprintf ran over
        assert name == b"\0" + hashed + b"command"
    else:       # 105 bytes: literal
        assert name == b"\0" + f"{lxcpath}/h1/command".encode()


def test_fnv1a_known_vectors() -> None:
    assert wire.fnv1a_64(b"") == 0xCBF29CE484222325
    assert wire.fnv1a_64(b"a") == 0xAF63DC4C8601EC8C  # the FNV reference test vector


def test_pointer_field_reads_as_ptr_to_int() -> None:
    # INT_TO_PTR(-1) (lxc-console: "next free tty") sign-extends to 64 bits.
    header = (wire.GET_TTY_FD).to_bytes(4, "little") + b"\0" * 4 + b"\xff" * 8
    assert wire.unpack(header) == (wire.GET_TTY_FD, 0, -1)
    assert wire.unpack(wire.pack(0, 0, 176)) == (0, 0, 176)
    # A client's garbage pointer beside datalen > 0: only the low 32 bits count.
    assert wire.unpack(wire.pack(7, 15, 0x7FFC07E485E0))[:2] == (7, 15)


def test_c_string_validation_as_liblxc() -> None:
    assert wire.c_string(b"lxc.net.0.type\0") == "lxc.net.0.type"
    assert wire.c_string(b"no terminator") is None
    assert wire.c_string(b"two\0nuls\0") is None
    assert wire.c_string(b"") is None


def test_state_message() -> None:
    kind, name, value = wire.MSG.unpack(wire.state_message("web", wire.STOPPED))
    assert (kind, name.rstrip(b"\0"), value) == (wire.MSG_STATE, b"web", 0)


@pytest.mark.parametrize("text", [None, "", "0", "onboot\nweb\n", "a\\nb\\\\", "ünï"])
def test_item_encoding_round_trips_without_newlines(text: str | None) -> None:
    encoded = wire.encode_item(text)
    assert "\n" not in encoded
    assert wire.decode_item(encoded) == text
