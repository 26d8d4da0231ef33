"""Clients that go away mid-reply: reset right after the request, or never
read.  The server must neither crash (SIGPIPE), nor leak the thread or the
descriptor, nor hold a thread longer than its send timeout."""
import socket
import struct

import pytest

import harness
from hostile_lib import connect, proc_stat, open_fds, scaled, settle, wait_replies

# Replies within tight bounds, CPU use, fd counts: not among parallel tests.
pytestmark = pytest.mark.alone

TIMEOUT = 1


def publish_many(srv, user, count):
    """Register and connect `user` and publish `count` long paths; returns
    the reply size of LIST_CONTENT for that user (far above socket buffers)."""
    assert harness.code(srv.port, "REGISTER", user) == 0
    assert harness.code(srv.port, "CONNECT", user, "40000") == 0
    size = 1
    for i in range(count):
        path = "/srv/%s/%s/%06d" % (user, "d" * 200, i)
        assert harness.code(srv.port, "PUBLISH", user, path, "file %d" % i) == 0
        size += len(path) + 1
    return size


def test_reset_right_after_list_content(make_server):
    srv = make_server("-t", str(TIMEOUT))
    files = 2000          # the reply must be far bigger than socket buffers
    size = publish_many(srv, "alice", files)
    assert size > 4 * 65536
    fds0, threads0 = open_fds(srv.pid), proc_stat(srv.pid)[1]

    request = harness.encode("LIST_CONTENT", harness.DATETIME, "alice", "alice")
    for _ in range(scaled(50, 10)):
        s = connect(srv.port)
        s.sendall(request)
        # Linger 0: close() sends RST, discarding whatever the server sent.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

    assert settle(srv.pid, fds0, threads0)
    code, fields = harness.request(srv.port, "LIST_CONTENT", "alice", "alice")
    assert code == 0 and fields[0] == str(files) and len(fields) == files + 1
    assert srv.stop() == 0


def test_reader_that_never_reads_is_dropped_at_the_send_timeout(make_server, sockets):
    srv = make_server("-t", str(TIMEOUT))
    publish_many(srv, "bob", scaled(2000, 300))
    fds0, threads0 = open_fds(srv.pid), proc_stat(srv.pid)[1]

    request = harness.encode("LIST_CONTENT", harness.DATETIME, "bob", "bob")
    for _ in range(scaled(20, 5)):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(request)
        sockets.append(s)

    # The clients still hold their sockets, unread: the server gives up on
    # them after its send timeout and frees the threads and descriptors.
    assert settle(srv.pid, fds0, threads0, timeout=TIMEOUT + 10)
    # What they get is a cut-off reply followed by a close (or a reset).
    for got in wait_replies(sockets, 10).values():
        assert got is not None and (got == b"" or got[0] == 0)
    assert harness.code(srv.port, "LIST_USERS", "bob") == 0
    assert srv.stop() == 0
