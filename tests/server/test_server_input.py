"""Bad input: a clear answer (or a close), nothing stored, everyone else served.

Every test takes a snapshot of the registry through the protocol before the
bad request and checks it is exactly the same afterwards.  The conformance
kit (`make conformance`) covers a last field without its NUL and clients that
hang up mid-request.
"""
import re
import socket
import struct
import time

import pytest

import harness

DT = harness.DATETIME


@pytest.fixture
def populated(server):
    """A server with alice (connected, one file) and bob (registered only)."""
    assert harness.code(server.port, "REGISTER", "alice") == 0
    assert harness.code(server.port, "CONNECT", "alice", "40001") == 0
    assert harness.code(server.port, "PUBLISH", "alice", "/a/one.txt", "one") == 0
    assert harness.code(server.port, "REGISTER", "bob") == 0
    return server


def snapshot(server):
    """What the protocol can see of the registry."""
    return (harness.request(server.port, "LIST_USERS", "alice"),
            harness.request(server.port, "LIST_CONTENT", "alice", "alice"),
            harness.request(server.port, "LIST_CONTENT", "alice", "bob"))


def refused(server, data, expect, shut_wr=True):
    """Send raw bytes; check the reply and that the registry did not change."""
    before = snapshot(server)
    assert harness.exchange(server.port, data, shut_wr=shut_wr) == expect
    assert snapshot(server) == before


LONG = "n" * 257


@pytest.mark.parametrize("fields, expect", [
    (("REGISTER", DT, LONG), b"\x02"),
    (("UNREGISTER", DT, LONG), b"\x02"),
    (("CONNECT", DT, LONG, "40000"), b"\x03"),
    (("DISCONNECT", DT, LONG), b"\x03"),
    (("PUBLISH", DT, "alice", "/" + "p" * 256, "d"), b"\x04"),
    (("PUBLISH", DT, "alice", "/p", "d" * 257), b"\x04"),
    (("PUBLISH", "t" * 257, "alice", "/p", "d"), b"\x04"),
    (("REGISTER", "t" * 257, "carol"), b"\x02"),
    (("DELETE", DT, "alice", "/" + "p" * 256), b"\x04"),
    (("LIST_USERS", DT, LONG), b"\x03"),
    (("LIST_CONTENT", DT, "alice", LONG), b"\x04"),
])
def test_field_over_256_bytes(populated, fields, expect):
    """A 257-byte field gets the operation's other error and changes nothing."""
    refused(populated, harness.encode(*fields), expect)


def test_257_byte_name_is_never_truncated(populated):
    """Neither the long name nor its 256-byte prefix is registered."""
    name = "u" * 257
    refused(populated, harness.encode("REGISTER", DT, name), b"\x02")
    assert harness.code(populated.port, "UNREGISTER", name[:256]) == 1
    assert harness.code(populated.port, "REGISTER", name[:256]) == 0
    assert harness.code(populated.port, "REGISTER", name[:256]) == 1


def test_256_byte_fields_are_accepted(populated):
    """256 bytes is the limit, inclusive, for every field."""
    name, path = "u" * 256, "/" + "p" * 255
    assert harness.code(populated.port, "REGISTER", name) == 0
    assert harness.code(populated.port, "CONNECT", name, "40002") == 0
    assert harness.code(populated.port, "PUBLISH", name, path, "d" * 256,
                        datetime="t" * 256) == 0
    assert harness.request(populated.port, "LIST_CONTENT", name, name) == (0, ["1", path])


def test_one_megabyte_field(populated):
    """Answered as soon as the field passes 256 bytes; the rest is never read,
    so the close may reset the connection before the client reads the byte."""
    before = snapshot(populated)
    reply = b""
    with socket.create_connection(populated.addr, timeout=10) as s:
        try:
            s.sendall(harness.encode("REGISTER", DT, "m" * (1 << 20)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            reply = s.recv(16)
        except ConnectionResetError:
            pass
    assert reply in (b"\x02", b"")
    assert snapshot(populated) == before


@pytest.mark.parametrize("fields, expect", [
    (("REGISTER",), b"\x02"),
    (("REGISTER", DT), b"\x02"),
    (("UNREGISTER", DT), b"\x02"),
    (("CONNECT", DT, "bob"), b"\x03"),
    (("DISCONNECT", DT), b"\x03"),
    (("PUBLISH", DT, "alice", "/a/two.txt"), b"\x04"),
    (("DELETE", DT, "alice"), b"\x04"),
    (("LIST_USERS", DT), b"\x03"),
    (("LIST_CONTENT", DT, "alice"), b"\x04"),
])
def test_missing_fields(populated, fields, expect):
    """A request cut short (then SHUT_WR) gets the other-error code."""
    refused(populated, harness.encode(*fields), expect)


@pytest.mark.parametrize("port", ["abc", "0", "70000", "65536", "-1", "", "4000x", "1e3", " 80"])
def test_bad_ports(populated, port):
    """A port that is not a decimal number in 1..65535 is refused with 3."""
    refused(populated, harness.encode("CONNECT", DT, "bob", port), b"\x03")
    assert harness.code(populated.port, "LIST_USERS", "bob") == 2      # still not connected


@pytest.mark.parametrize("port", ["1", "65535"])
def test_edge_ports_are_accepted(populated, port):
    """1 and 65535 are valid ports and are listed as sent."""
    assert harness.code(populated.port, "CONNECT", "bob", port) == 0
    users = harness.request(populated.port, "LIST_USERS", "bob")[1]
    assert ["bob", "127.0.0.1", port] == users[users.index("bob"):users.index("bob") + 3]


@pytest.mark.parametrize("user", ["", "two words", "tab\there", "new\nline", "bell\x07"])
def test_bad_user_names(populated, user):
    """Empty names and names with whitespace or control bytes are refused."""
    refused(populated, harness.encode("REGISTER", DT, user), b"\x02")
    # No part of the name was stored either.
    for part in filter(None, re.split(r"[\x00-\x20\x7f]+", user)):
        assert harness.code(populated.port, "UNREGISTER", part) == 1


@pytest.mark.parametrize("path", ["relative/path.txt", "/with space.txt", ""])
def test_bad_paths(populated, path):
    """A path must be absolute and without spaces."""
    refused(populated, harness.encode("PUBLISH", DT, "alice", path, "d"), b"\x04")


@pytest.mark.parametrize("data", [
    harness.encode("HELLO", DT, "alice"),
    harness.encode("register", DT, "carol"),
    harness.encode("REGISTERX", DT, "carol"),
    harness.encode("GET_FILE", "/etc/passwd"),
    b"\xff\xfe\x00garbage\x00\x00",
    bytes(range(256)) * 4,
    b"\x00\x00\x00\x00",
])
def test_unknown_operation_is_closed_without_reply(populated, data):
    """Unknown operations (case matters) are closed with no reply byte."""
    refused(populated, data, b"")


def test_garbage_does_not_stop_others(populated):
    """Bursts of garbage leave the server serving."""
    for _ in range(20):
        harness.exchange(populated.port, b"\x13\x37" * 500)
    assert harness.code(populated.port, "REGISTER", "carol") == 0


def test_stall_mid_field_is_answered_after_the_deadline(populated):
    """A stall mid-field gets other error after about -t seconds."""
    before = snapshot(populated)
    with socket.create_connection(populated.addr, timeout=10) as s:
        s.sendall(harness.encode("REGISTER", DT) + b"car")
        start = time.monotonic()
        assert s.recv(16) == b"\x02"
        waited = time.monotonic() - start
        assert s.recv(16) == b""
    assert 1.0 < waited < 8.0        # server runs with -t 2
    assert snapshot(populated) == before
    assert harness.code(populated.port, "UNREGISTER", "car") == 1


def test_extra_bytes_after_a_request_are_ignored(populated):
    """Bytes after the last field are not another request."""
    data = harness.encode("REGISTER", DT, "carol") + b"trailing junk\x00"
    assert harness.exchange(populated.port, data) == b"\x00"
    assert harness.code(populated.port, "REGISTER", "carol") == 1


def test_any_valid_datetime_is_accepted(populated):
    """The date-time is the client's; the server does not compare it to its clock."""
    for dt in ("01/01/1970 00:00:00", "29/02/2024 12:00:00", "31/12/9999 23:59:59"):
        assert harness.code(populated.port, "LIST_USERS", "alice", datetime=dt) == 0


def test_request_sent_byte_by_byte(populated):
    """Fields may arrive in any number of pieces: TCP is a byte stream."""
    with socket.create_connection(populated.addr, timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in harness.encode("PUBLISH", DT, "alice", "/a/two.txt", "two words"):
            s.sendall(bytes([b]))
            time.sleep(0.001)
        assert s.recv(16) == b"\x00"
        assert s.recv(16) == b""
    assert harness.request(populated.port, "LIST_CONTENT", "alice", "alice")[1][0] == "2"


@pytest.mark.parametrize("partial", [
    harness.encode("REGISTER"),
    harness.encode("REGISTER", DT),
    harness.encode("REGISTER", DT) + b"carol",
])
def test_stall_after_a_complete_field(populated, partial):
    """A stall at a field boundary is a stall too: other error at the deadline."""
    before = snapshot(populated)
    with socket.create_connection(populated.addr, timeout=10) as s:
        s.sendall(partial)
        assert s.recv(16) == b"\x02"
        assert s.recv(16) == b""
    assert snapshot(populated) == before
    assert harness.code(populated.port, "UNREGISTER", "carol") == 1


def test_server_serves_others_during_a_stall(populated):
    """One stalled client does not block a complete request from another."""
    with socket.create_connection(populated.addr, timeout=10) as s:
        s.sendall(harness.encode("PUBLISH", DT, "alice") + b"/a/th")
        assert harness.code(populated.port, "REGISTER", "carol") == 0
        assert s.recv(16) == b"\x04"
    assert harness.request(populated.port, "LIST_CONTENT", "alice", "alice") == (
        0, ["1", "/a/one.txt"])


def test_client_resets_before_reading_the_reply(populated):
    """A client that resets right after its request must not take the server
    down (no death by SIGPIPE while writing the reply)."""
    for i in range(100):
        assert harness.code(populated.port, "PUBLISH", "alice", "/big/%03d" % i, "d") == 0
    before = snapshot(populated)
    for _ in range(20):
        with socket.create_connection(populated.addr) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(harness.encode("LIST_CONTENT", DT, "alice", "alice"))
    assert populated.proc.poll() is None
    assert snapshot(populated) == before
