"""Messages of the console socket (lxcsd.console.protocol) and fd-store names (store)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcsd.console import protocol, store
from lxcsd.console.protocol import ProtocolError

keys = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
values = st.text(st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]))


@given(verb=keys, fields=st.dictionaries(keys, values))
def test_encode_decode_round_trip(verb: str, fields: dict[str, str]) -> None:
    assert protocol.decode(protocol.encode(verb, fields)) == (verb, fields)


def test_encoding_is_plain_key_value_text() -> None:
    assert protocol.encode("attach", {"name": "web", "tty": 2}) == b"attach\nname=web\ntty=2\n"


def test_a_repeated_key_keeps_every_value() -> None:
    message = protocol.ok([("container", "a\tx"), ("container", "b\ty")])
    assert message == b"ok\ncontainer=a\tx\ncontainer=b\ty\n"
    verb, fields = protocol.decode(message)
    assert fields["container"].split("\n") == ["a\tx", "b\ty"]


@pytest.mark.parametrize("key, value", [("name", "a\nb"), ("a=b", "x"), ("", "x")])
def test_encode_refuses_what_would_break_a_line(key: str, value: str) -> None:
    with pytest.raises(ProtocolError):
        protocol.encode("register", {key: value})


@pytest.mark.parametrize("data", [b"ok\nnovalue\n", b"ok\n=x\n", b"\xff\xfe"])
def test_decode_refuses_malformed_messages(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode(data)


def test_an_error_reply_raises_with_message_and_code() -> None:
    with pytest.raises(ProtocolError, match="no console registered") as info:
        protocol.check_reply(protocol.error("no console registered for 'x'", "unknown"))
    assert info.value.code == "unknown"


def test_an_empty_reply_says_the_service_closed() -> None:
    with pytest.raises(ProtocolError, match="closed the connection"):
        protocol.check_reply(b"")


def test_ok_reply_fields() -> None:
    assert protocol.check_reply(protocol.ok({"size": 3})) == {"size": "3"}


@pytest.mark.parametrize("name", ["", "a/b", "tab\there", "new\nline", "x" * 256])
def test_invalid_container_names(name: str) -> None:
    with pytest.raises(ProtocolError, match="invalid container name"):
        protocol.check_name(name)


@pytest.mark.parametrize("name", ["web", "db-1.example", "ünïcode", "with space", "a:b"])
def test_valid_container_names(name: str) -> None:
    assert protocol.check_name(name) == name


def test_socket_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(protocol.SOCKET_ENV, raising=False)
    assert protocol.socket_path() == "/run/lxcsd/console.sock"
    monkeypatch.setenv(protocol.SOCKET_ENV, "/tmp/x.sock")
    assert protocol.socket_path() == "/tmp/x.sock"


# -- file-descriptor store names ------------------------------------------------------------

def test_store_names_are_valid_fdnames() -> None:
    name = store.fd_name(12, store.tty_kind(3))
    assert name == "lxcsd.12.tty3"
    assert ":" not in name and name.isprintable() and len(name) <= 255
    assert store.parse_fd_name(name) == (12, "tty3")


@pytest.mark.parametrize("name", ["lxcsd-console.socket", "unknown", "lxcsd.x.meta",
                                  "lxcsd.1.other", "lxcsd.1.ttyx", "lxcsd.1"])
def test_foreign_names_are_not_parsed(name: str) -> None:
    assert store.parse_fd_name(name) is None


def test_group_by_registration() -> None:
    named = [(3, "lxcsd-console.socket"), (4, "lxcsd.1.meta"), (5, "lxcsd.1.tty0"),
             (6, "lxcsd.2.meta"), (7, "lxcsd.1.pid"), (8, "lxcsd.1.tty0")]
    groups, others = store.group(named)
    assert groups == {1: {"meta": 4, "tty0": 5, "pid": 7}, 2: {"meta": 6}}
    assert others == [3, 8]  # the socket, and a duplicate name
