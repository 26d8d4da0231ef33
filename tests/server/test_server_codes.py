"""Every result code of every operation, provoked for real, and the reply formats.

The expected codes are the table of the protocol spec; each test builds the
state it needs through the wire protocol only.
"""
import socket

import pytest

import harness


def op(server, *fields):
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
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "REGISTER", "alice") == 1
    assert op(server, "REGISTER", "") == 2
    assert op(server, "REGISTER", "x" * 257) == 2


def test_unregister_codes(server):
    assert op(server, "UNREGISTER", "ghost") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "UNREGISTER", "alice") == 0
    assert op(server, "UNREGISTER", "alice") == 1
    assert op(server, "UNREGISTER", "") == 2


def test_unregister_drops_files_and_connection(server):
    connected(server, "alice")
    connected(server, "bob", "40002")
    assert op(server, "PUBLISH", "alice", "/a/one.txt", "one") == 0
    assert op(server, "UNREGISTER", "alice") == 0
    names = listing(server, "LIST_USERS", "bob")[1][1::3]
    assert "alice" not in names
    assert op(server, "REGISTER", "alice") == 0
    assert listing(server, "LIST_CONTENT", "bob", "alice") == (0, ["0"])
    # Re-registered, alice starts disconnected.
    assert op(server, "PUBLISH", "alice", "/a/one.txt", "one") == 2


# --- CONNECT / DISCONNECT ---------------------------------------------------

def test_connect_codes(server):
    assert op(server, "CONNECT", "ghost", "40001") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "CONNECT", "alice", "40002") == 2
    assert op(server, "CONNECT", "alice", "abc") == 3


def test_disconnect_codes(server):
    assert op(server, "DISCONNECT", "ghost") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "DISCONNECT", "alice") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "DISCONNECT", "alice") == 0
    assert op(server, "DISCONNECT", "alice") == 2
    assert op(server, "DISCONNECT", "") == 3


def test_reconnect_updates_port(server):
    connected(server, "alice", "40001")
    assert listing(server, "LIST_USERS", "alice") == (0, ["1", "alice", "127.0.0.1", "40001"])
    assert op(server, "DISCONNECT", "alice") == 0
    assert op(server, "CONNECT", "alice", "40099") == 0
    assert listing(server, "LIST_USERS", "alice") == (0, ["1", "alice", "127.0.0.1", "40099"])


# --- PUBLISH / DELETE -------------------------------------------------------

def test_publish_codes(server):
    assert op(server, "PUBLISH", "ghost", "/f", "d") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "PUBLISH", "alice", "/f", "d") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "PUBLISH", "alice", "/f", "a description with spaces") == 0
    assert op(server, "PUBLISH", "alice", "/f", "other") == 3
    assert op(server, "PUBLISH", "alice", "/g", "x" * 257) == 4
    assert op(server, "PUBLISH", "alice", "", "d") == 4


def test_delete_codes(server):
    assert op(server, "DELETE", "ghost", "/f") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "DELETE", "alice", "/f") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "DELETE", "alice", "/f") == 3
    assert op(server, "PUBLISH", "alice", "/f", "d") == 0
    assert op(server, "DELETE", "alice", "/f") == 0
    assert op(server, "DELETE", "alice", "/f") == 3
    assert op(server, "DELETE", "alice", "/" + "x" * 256) == 4


def test_published_is_per_user(server):
    connected(server, "alice", "40001")
    connected(server, "bob", "40002")
    assert op(server, "PUBLISH", "alice", "/same/path", "a") == 0
    assert op(server, "PUBLISH", "bob", "/same/path", "b") == 0
    assert op(server, "DELETE", "alice", "/same/path") == 0
    assert listing(server, "LIST_CONTENT", "alice", "bob") == (0, ["1", "/same/path"])
    assert listing(server, "LIST_CONTENT", "alice", "alice") == (0, ["0"])


def test_files_stay_while_owner_disconnected(server):
    connected(server, "alice", "40001")
    connected(server, "bob", "40002")
    assert op(server, "PUBLISH", "alice", "/a/b.txt", "b") == 0
    assert op(server, "DISCONNECT", "alice") == 0
    assert listing(server, "LIST_CONTENT", "bob", "alice") == (0, ["1", "/a/b.txt"])


# --- LIST_USERS / LIST_CONTENT ----------------------------------------------

def test_list_users_codes(server):
    assert op(server, "LIST_USERS", "ghost") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "LIST_USERS", "alice") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "LIST_USERS", "alice") == 0
    assert op(server, "LIST_USERS", "") == 3


def test_list_users_shows_only_connected(server):
    connected(server, "alice", "40001")
    connected(server, "bob", "40002")
    assert op(server, "REGISTER", "carol") == 0            # never connected
    connected(server, "dave", "40004")
    assert op(server, "DISCONNECT", "dave") == 0
    code, fields = listing(server, "LIST_USERS", "alice")
    assert code == 0 and fields[0] == "2" and len(fields) == 1 + 2 * 3
    triples = sorted(tuple(fields[i:i + 3]) for i in range(1, len(fields), 3))
    assert triples == [("alice", "127.0.0.1", "40001"), ("bob", "127.0.0.1", "40002")]


def test_list_users_reply_bytes(server):
    connected(server, "alice", "40001")
    raw = harness.exchange(server.port, harness.encode("LIST_USERS", harness.DATETIME, "alice"))
    assert raw == b"\x001\x00alice\x00127.0.0.1\x0040001\x00"


@pytest.mark.parametrize("source_ip", ["127.0.0.2", "127.0.0.3"])
def test_list_users_ip_comes_from_the_socket(server, source_ip):
    assert op(server, "REGISTER", "alice") == 0
    with socket.socket() as s:
        s.bind((source_ip, 0))
        s.connect(("127.0.0.1", server.port))
        s.sendall(harness.encode("CONNECT", harness.DATETIME, "alice", "40555"))
        assert s.recv(16) == b"\x00"
    assert listing(server, "LIST_USERS", "alice") == (0, ["1", "alice", source_ip, "40555"])


def test_list_content_codes(server):
    assert op(server, "LIST_CONTENT", "ghost", "ghost") == 1
    assert op(server, "REGISTER", "alice") == 0
    assert op(server, "LIST_CONTENT", "alice", "alice") == 2
    assert op(server, "CONNECT", "alice", "40001") == 0
    assert op(server, "LIST_CONTENT", "alice", "ghost") == 3
    assert op(server, "LIST_CONTENT", "alice", "alice") == 0
    assert op(server, "LIST_CONTENT", "alice", "") == 4
    assert op(server, "LIST_CONTENT", "", "alice") == 4


def test_list_content_reply_bytes(server):
    connected(server, "alice", "40001")
    assert op(server, "PUBLISH", "alice", "/x/one", "first") == 0
    raw = harness.exchange(server.port,
                           harness.encode("LIST_CONTENT", harness.DATETIME, "alice", "alice"))
    assert raw == b"\x001\x00/x/one\x00"


def test_list_content_target_need_not_be_connected(server):
    connected(server, "alice", "40001")
    assert op(server, "REGISTER", "bob") == 0
    assert listing(server, "LIST_CONTENT", "alice", "bob") == (0, ["0"])


def test_list_content_of_2000_files(server):
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
    assert server.host_ip != "0.0.0.0"
    socket.inet_aton(server.host_ip)
    assert server.lines[0] == "s> init server %s:%d" % (server.host_ip, server.port)


def test_operation_lines(server):
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
