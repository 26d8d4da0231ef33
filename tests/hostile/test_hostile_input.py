"""Hostile bytes: huge fields, garbage streams, trickling and split
requests, pipelined junk.  The server answers what it can ("other error"
for a bad or partial request of a known operation, a bare close for an
unknown one), changes no state for them, and keeps serving."""
import random
import socket
import threading
import time

import pytest

import harness
from hostile_lib import connect, scaled, wait_replies

# Replies within tight bounds, CPU use, fd counts: not among parallel tests.
pytestmark = pytest.mark.alone

MB = b"A" * (1 << 20)
DT = harness.DATETIME


def send_and_read(port, data, shut_wr=True):
    """Send data from a second thread while reading the reply, so that a
    server that answers early and closes cannot deadlock us; returns what
    arrived before the close (or reset)."""
    s = connect(port)

    def pump():
        try:
            s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass                # the server stopped reading: expected

    t = threading.Thread(target=pump)
    t.start()
    got = wait_replies([s], 20)[s]
    t.join()
    s.close()
    return got


@pytest.mark.parametrize("fields, reply", [
    ([MB], b""),                                         # operation name
    (["REGISTER", MB, "alice"], b"\x02"),                # date-time
    (["REGISTER", DT, MB], b"\x02"),                     # user
    (["CONNECT", DT, "alice", b"4" * (1 << 20)], b"\x03"),   # port
    (["PUBLISH", DT, "alice", b"/" + MB, "d"], b"\x04"),     # path
    (["PUBLISH", DT, "alice", "/a", MB], b"\x04"),           # description
    (["LIST_CONTENT", DT, "alice", MB], b"\x04"),            # target
])
def test_one_megabyte_field(server, fields, reply):
    assert harness.code(server.port, "REGISTER", "alice") == 0
    assert harness.code(server.port, "CONNECT", "alice", "40000") == 0
    assert send_and_read(server.port, harness.encode(*fields)) == reply
    # Nothing changed and the server still serves.
    code, listing = harness.request(server.port, "LIST_CONTENT", "alice", "alice")
    assert (code, listing) == (0, ["0"])
    assert server.stop() == 0


def test_garbage_streams(server):
    rng = random.Random(20141217)
    ops = ["REGISTER", "UNREGISTER", "CONNECT", "DISCONNECT", "PUBLISH",
           "DELETE", "LIST_USERS", "LIST_CONTENT"]
    for i in range(scaled(300, 60)):
        junk = rng.randbytes(rng.randrange(0, 4096))
        if i % 2:
            # Random bytes: no operation name, closed without a reply.
            junk = b"\x01" + junk
            assert send_and_read(server.port, junk) == b""
        else:
            # A real name, then random bytes and a close of the write side.
            op = rng.choice(ops)
            got = send_and_read(server.port, op.encode() + b"\0" + junk)
            assert len(got) >= 1 and got[0] <= 4
            assert len(got) == 1 or op.startswith("LIST_")
    assert harness.code(server.port, "REGISTER", "zed") == 0
    assert server.stop() == 0


def test_unterminated_endless_field_is_cut_at_the_limit(server):
    # No NUL ever: refused once the field passes 256 bytes, not read forever.
    got = send_and_read(server.port, b"PUBLISH\0" + DT.encode() + b"\0" + MB * 8,
                        shut_wr=False)
    assert got == b"\x04"


def test_trickling_client_is_dropped_at_the_deadline(make_server):
    srv = make_server("-t", "1")
    data = harness.encode("REGISTER", DT, "slowpoke")
    s = connect(srv.port)
    start = time.monotonic()
    got = b""
    try:
        s.sendall(b"REGISTER\0")
        for i in range(len(b"REGISTER\0"), len(data)):
            s.sendall(data[i:i + 1])    # a byte every 0.2 s: 5 s in all
            time.sleep(0.2)
            s.setblocking(False)
            try:
                got = s.recv(16)
                break
            except BlockingIOError:
                pass
            finally:
                s.setblocking(True)
    except OSError:
        pass
    finally:
        s.close()
    # The whole request must arrive within -t, however busy the sender.
    assert got == b"\x02"
    assert time.monotonic() - start < 4
    assert harness.code(srv.port, "REGISTER", "slowpoke") == 0


@pytest.mark.parametrize("fields", [
    ("REGISTER", DT, "splitter"),
    ("LIST_CONTENT", DT, "splitter", "splitter"),
])
def test_request_split_into_single_bytes_is_served(server, fields):
    """TCP may cut a request anywhere, even right after the operation name."""
    if fields[0] != "REGISTER":
        assert harness.code(server.port, "REGISTER", "splitter") == 0
        assert harness.code(server.port, "CONNECT", "splitter", "40000") == 0
    data = harness.encode(*fields)
    with connect(server.port) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                time.sleep(0.002)
        except OSError as e:
            pytest.fail("server closed after %r: %s" % (data[:i], e))
        got = wait_replies([s], 5)[s]
    assert got is not None and got[:1] == b"\x00"


def test_pipelined_junk_after_a_request_is_ignored(server):
    data = (harness.encode("REGISTER", DT, "first")
            + harness.encode("REGISTER", DT, "second") + MB[:5000])
    assert send_and_read(server.port, data) == b"\x00"
    assert harness.code(server.port, "REGISTER", "first") == 1
    assert harness.code(server.port, "REGISTER", "second") == 0


def test_half_close_mid_request_answers_other_error(server):
    assert send_and_read(server.port, b"CONNECT\0" + DT.encode() + b"\0alice\0400") == b"\x03"
    assert harness.code(server.port, "REGISTER", "alice") == 0
