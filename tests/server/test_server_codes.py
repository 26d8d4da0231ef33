"""Every result code of every operation, provoked for real, and the reply formats.

The expected codes are the table of the protocol spec; each test builds the
state it needs through the wire protocol only.  What the conformance kit
checks against our server (`make conformance`, docs/conformance.md) is not
repeated here; these are the cases it leaves to us.
"""
import socket

import pytest

import harness


def op(server, *fields):
    """Just the result code of one operation."""
    return harness.code(server.port, *fields)


def listing(server, *fields):
    """(code, fields) of a LIST_* operation."""
    return harness.request(server.port, *fields)


def connected(server, user, port="40001"):
    """Register and connect `user`."""
    assert op(server, "REGISTER", user) == 0
    assert op(server, "CONNECT", user, port) == 0


# --- REGISTER / UNREGISTER -------------------------------------------------

def test_register_codes(server):
    """0 new name, 1 name in use, 2 bad name (empty, too long)."""
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "REGISTER", "alice") == 1
    assert op(server, "REGISTER", "") == 2
    assert op(server, "REGISTER", "x" * 257) == 2


def test_unregister_codes(server):
    """1 unknown, 0 removed, 1 again once gone, 2 bad name."""
    assert op(server, "UNREGISTER", "ghost") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "UNREGISTER", "alice") == 0
    assert op(server, "UNREGISTER", "alice") == 1
    assert op(server, "UNREGISTER", "") == 2


# --- CONNECT / DISCONNECT ---------------------------------------------------

def test_disconnect_codes(server):
    """1 unknown user, 2 not connected, 0 disconnected, 3 bad name."""
    assert op(server, "DISCONNECT", "ghost") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "DISCONNECT", "alice") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "DISCONNECT", "alice") == 0
    assert op(server, "DISCONNECT", "alice") == 2
    assert op(server, "DISCONNECT", "") == 3


# --- PUBLISH / DELETE -------------------------------------------------------

def test_publish_codes(server):
    """1 unknown, 2 not connected, 0 published, 3 already published, 4 bad field."""
    assert op(server, "PUBLISH", "ghost", "/f", "d") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "PUBLISH", "alice", "/f", "d") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "PUBLISH", "alice", "/f", "a description with spaces") == 0
    assert op(server, "PUBLISH", "alice", "/f", "other") == 3
    assert op(server, "PUBLISH", "alice", "/g", "x" * 257) == 4
    assert op(server, "PUBLISH", "alice", "", "d") == 4


def test_delete_codes(server):
    """1 unknown, 2 not connected, 3 not published, 0 deleted, 4 bad path."""
    assert op(server, "DELETE", "ghost", "/f") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "DELETE", "alice", "/f") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "DELETE", "alice", "/f") == 3
    assert op(server, "PUBLISH", "alice", "/f", "d") == 0
    assert op(server, "DELETE", "alice", "/f") == 0
    assert op(server, "DELETE", "alice", "/f") == 3
    assert op(server, "DELETE", "alice", "/" + "x" * 256) == 4


# --- LIST_USERS / LIST_CONTENT ----------------------------------------------

def test_list_users_codes(server):
    """1 unknown, 2 not connected, 0 listed, 3 bad name."""
    assert op(server, "LIST_USERS", "ghost") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "LIST_USERS", "alice") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "LIST_USERS", "alice") == 0
    assert op(server, "LIST_USERS", "") == 3


@pytest.mark.parametrize("source_ip", ["127.0.0.2", "127.0.0.3"])
def test_list_users_ip_comes_from_the_socket(server, source_ip):
    """The listed IP is the CONNECT's source address; the port is the one sent."""
    assert op(server, "REGISTER", "alice") == 0
    with socket.socket() as s:
        s.bind((source_ip, 0))
        s.connect(("127.0.0.1", server.port))
        s.sendall(harness.encode("CONNECT", harness.DATETIME, "alice", "40555"))
        assert s.recv(16) == b"\x00"
    assert listing(server, "LIST_USERS", "alice") == (0, ["1", "alice", source_ip, "40555"])


def test_list_content_codes(server):
    """1 unknown requester, 2 requester not connected, 3 unknown target, 0 listed, 4 bad name."""
    assert op(server, "LIST_CONTENT", "ghost", "ghost") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "LIST_CONTENT", "alice", "alice") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "LIST_CONTENT", "alice", "ghost") == 3
    assert op(server, "LIST_CONTENT", "alice", "alice") == 0
    assert op(server, "LIST_CONTENT", "alice", "") == 4
    assert op(server, "LIST_CONTENT", "", "alice") == 4


def test_list_content_of_2000_files(server):
    """A long listing arrives whole."""
    connected(server, "alice", "40001")
    paths = ["/data/file_%04d.bin" % i for i in range(2000)]
    for p in paths:
        assert op(server, "PUBLISH", "alice", p, "desc of " + p) == 0
    code, fields = listing(server, "LIST_CONTENT", "alice", "alice")
    assert code == 0
    assert fields[0] == "2000"
    assert sorted(fields[1:]) == paths


# --- console ----------------------------------------------------------------

def test_init_line_shows_a_real_address(server):
    """The banner names an IPv4 address, not 0.0.0.0, and the chosen port."""
    assert server.host_ip != "0.0.0.0"
    socket.inet_aton(server.host_ip)
    assert server.lines[0] == "s> init server %s:%d" % (server.host_ip, server.port)


def test_operation_lines(server):
    """One `s> OPERATION <op> FROM <user>` line per request, in order."""
    connected(server, "alice", "40001")
    assert op(server, "PUBLISH", "alice", "/f", "d") == 0
    assert op(server, "DELETE", "alice", "/f") == 0
    listing(server, "LIST_USERS", "alice")
    listing(server, "LIST_CONTENT", "alice", "alice")
    assert op(server, "DISCONNECT", "alice") == 0
    assert op(server, "UNREGISTER", "alice") == 0
    expected = ["s> OPERATION %s FROM alice" % name for name in (
        "REGISTER", "CONNECT", "PUBLISH", "DELETE", "LIST_USERS", "LIST_CONTENT",
        "DISCONNECT", "UNREGISTER")]
    server.wait_line(r"^s> OPERATION UNREGISTER FROM alice$")
    assert [l for l in server.lines if l.startswith("s> OPERATION")] == expected


# --- exact reply bytes, code precedence, life cycle --------------------------

@pytest.mark.parametrize("fields, expect", [
    (("REGISTER", "alice"), b"\x01"),
    (("REGISTER", "newbie"), b"\x00"),
    (("UNREGISTER", "ghost"), b"\x01"),
    (("CONNECT", "ghost", "40001"), b"\x01"),
    (("CONNECT", "alice", "40009"), b"\x02"),
    (("CONNECT", "bob", "0"), b"\x03"),
    (("DISCONNECT", "bob"), b"\x02"),
    (("PUBLISH", "bob", "/f", "d"), b"\x02"),
    (("PUBLISH", "alice", "/a/one.txt", "d"), b"\x03"),
    (("PUBLISH", "alice", "relative", "d"), b"\x04"),
    (("DELETE", "alice", "/nope"), b"\x03"),
    (("DELETE", "alice", "/a/one.txt"), b"\x00"),
    (("LIST_USERS", "ghost"), b"\x01"),
    (("LIST_USERS", "bob"), b"\x02"),
    (("LIST_CONTENT", "bob", "alice"), b"\x02"),
    (("LIST_CONTENT", "alice", "ghost"), b"\x03"),
])
def test_non_list_replies_are_exactly_one_raw_byte(server, fields, expect):
    """Only a successful LIST_* carries data; every other reply is the bare
    code byte (a raw value, not an ASCII digit), then the server closes."""
    connected(server, "alice", "40001")
    assert op(server, "PUBLISH", "alice", "/a/one.txt", "one") == 0
    assert op(server, "REGISTER", "bob") == 0
    op_name, rest = fields[0], fields[1:]
    raw = harness.exchange(server.port, harness.encode(op_name, harness.DATETIME, *rest))
    assert raw == expect


def test_disconnected_user_is_not_connected_for_every_operation(server):
    """After DISCONNECT, the user-acting operations answer 2 whatever the
    file state would give, and nothing changes."""
    connected(server, "alice", "40001")
    connected(server, "bob", "40002")
    assert op(server, "PUBLISH", "alice", "/a/one.txt", "one") == 0
    assert op(server, "DISCONNECT", "alice") == 0
    assert op(server, "PUBLISH", "alice", "/a/two.txt", "two") == 2
    assert op(server, "PUBLISH", "alice", "/a/one.txt", "again") == 2
    assert op(server, "DELETE", "alice", "/a/one.txt") == 2
    assert op(server, "DELETE", "alice", "/a/none.txt") == 2
    assert op(server, "LIST_USERS", "alice") == 2
    assert op(server, "LIST_CONTENT", "alice", "bob") == 2
    assert op(server, "LIST_CONTENT", "alice", "ghost") == 2
    assert listing(server, "LIST_CONTENT", "bob", "alice") == (0, ["1", "/a/one.txt"])


def test_unknown_requester_comes_before_unknown_target(server):
    """LIST_CONTENT checks the requester first: 1, then 2, then the target's 3."""
    assert op(server, "LIST_CONTENT", "ghost", "phantom") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "LIST_CONTENT", "alice", "phantom") == 2


def test_unregister_a_connected_user_then_register_again(server):
    """UNREGISTER while connected disconnects; the new user must CONNECT again."""
    connected(server, "alice", "40001")
    assert op(server, "UNREGISTER", "alice") == 0
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "LIST_USERS", "alice") == 2
    assert op(server, "DISCONNECT", "alice") == 2
    assert op(server, "CONNECT", "alice", "40003") == 0
    assert listing(server, "LIST_USERS", "alice") == (0, ["1", "alice", "127.0.0.1", "40003"])
    assert listing(server, "LIST_CONTENT", "alice", "alice") == (0, ["0"])


def test_list_content_reply_with_several_files(server):
    """Count then one NUL-terminated path per file; descriptions never travel."""
    connected(server, "alice", "40001")
    paths = ["/x/a", "/x/b", "/y/c.txt"]
    for p in paths:
        assert op(server, "PUBLISH", "alice", p, "description of " + p) == 0
    raw = harness.exchange(server.port,
                           harness.encode("LIST_CONTENT", harness.DATETIME, "alice", "alice"))
    assert raw[:3] == b"\x003\x00"
    assert raw.endswith(b"\x00") and raw.count(b"\x00") == 1 + 1 + 3
    assert sorted(raw[3:-1].split(b"\x00")) == sorted(p.encode() for p in paths)


def test_list_users_count_is_decimal_text(server):
    """Twelve connected users: the count is the text "12", then 12 triples."""
    expected = []
    for i in range(12):
        connected(server, "user%02d" % i, str(40100 + i))
        expected.append(("user%02d" % i, "127.0.0.1", str(40100 + i)))
    code, fields = listing(server, "LIST_USERS", "user00")
    assert code == 0 and fields[0] == "12" and len(fields) == 1 + 12 * 3
    assert sorted(tuple(fields[i:i + 3]) for i in range(1, len(fields), 3)) == expected


def test_list_users_ips_of_several_sources(server):
    """Each connected user is listed with the source address of its own CONNECT."""
    for user, ip, port in (("alice", "127.0.0.2", "40002"), ("bob", "127.0.0.3", "40003")):
        assert op(server, "REGISTER", user) == 0
        with socket.socket() as s:
            s.bind((ip, 0))
            s.connect(("127.0.0.1", server.port))
            s.sendall(harness.encode("CONNECT", harness.DATETIME, user, port))
            assert s.recv(16) == b"\x00"
    code, fields = listing(server, "LIST_USERS", "alice")
    assert code == 0 and fields[0] == "2"
    assert sorted(tuple(fields[i:i + 3]) for i in range(1, len(fields), 3)) == [
        ("alice", "127.0.0.2", "40002"), ("bob", "127.0.0.3", "40003")]


# --- console, continued -------------------------------------------------------

def test_list_content_line_names_the_requester(server):
    """LIST_CONTENT is logged FROM the requesting user, not the target."""
    connected(server, "alice", "40001")
    assert op(server, "REGISTER", "bob") == 0
    start = len(server.lines)
    assert listing(server, "LIST_CONTENT", "alice", "bob") == (0, ["0"])
    server.wait_line(r"^s> OPERATION LIST_CONTENT FROM alice$", start=start)
    assert not any("LIST_CONTENT FROM bob" in l for l in server.lines)


@pytest.mark.parametrize("fields", [
    ("REGISTER", "ghost2"), ("UNREGISTER", "ghost"), ("CONNECT", "ghost", "40001"),
    ("DISCONNECT", "ghost"), ("PUBLISH", "ghost", "/f", "d"), ("DELETE", "ghost", "/f"),
    ("LIST_USERS", "ghost"), ("LIST_CONTENT", "ghost", "alice"),
])
def test_operation_line_also_for_refused_requests(server, fields):
    """A well-formed request is printed whatever its result code."""
    start = len(server.lines)
    harness.request(server.port, *fields)
    server.wait_line(r"^s> OPERATION %s FROM %s$" % (fields[0], fields[1]), start=start)


def test_init_line_address_belongs_to_this_host(server):
    """The banner's address is a real one of this host: a socket can bind to it
    (binding sends nothing, so the test stays off the network)."""
    with socket.socket() as s:
        s.bind((server.host_ip, 0))


def test_1000_connected_users_are_all_listed(server):
    """No arbitrary user limit: 1,000 connected users come back in one listing."""
    expected = set()
    for i in range(1000):
        connected(server, "many%04d" % i, str(10000 + i))
        expected.add(("many%04d" % i, "127.0.0.1", str(10000 + i)))
    code, fields = listing(server, "LIST_USERS", "many0000")
    assert code == 0 and fields[0] == "1000" and len(fields) == 1 + 3000
    assert {tuple(fields[i:i + 3]) for i in range(1, len(fields), 3)} == expected


def test_list_users_with_a_256_byte_name(server):
    """The longest valid name travels whole in a LIST_USERS reply."""
    name = "n" * 256
    connected(server, name, "65535")
    assert listing(server, "LIST_USERS", name) == (0, ["1", name, "127.0.0.1", "65535"])


def test_fields_are_byte_strings(server):
    """Non-ASCII bytes travel unchanged, and an empty description is still a field."""
    name, path = "ñandú", "/música/canción.ogg"
    connected(server, name, "40001")
    assert op(server, "PUBLISH", name, path, "") == 0
    raw = harness.exchange(server.port,
                           harness.encode("LIST_CONTENT", harness.DATETIME, name, name))
    assert raw == b"\x001\x00" + path.encode() + b"\x00"
    raw = harness.exchange(server.port, harness.encode("LIST_USERS", harness.DATETIME, name))
    assert raw == b"\x001\x00" + name.encode() + b"\x00127.0.0.1\x0040001\x00"
