"""Descriptor exhaustion: the server runs out of file descriptors.

It must refuse what it cannot accept by closing (no client left hanging),
must not spin on the listening socket meanwhile, and must recover as soon
as descriptors are free again."""
import time

import pytest

import harness
from hostile_lib import connect, proc_stat, open_fds, scaled, settle, wait_replies

# Replies within tight bounds, CPU use, fd counts: not among parallel tests.
pytestmark = pytest.mark.alone

FDS = 64


def test_out_of_descriptors_refuses_without_spinning_and_recovers(limited_server, sockets):
    srv = limited_server(FDS, "-t", "30", "-c", "1000", "-i", "1000")
    fds0, threads0 = open_fds(srv.pid), proc_stat(srv.pid)[1]
    assert harness.code(srv.port, "REGISTER", "alice") == 0

    for _ in range(scaled(200, 2 * FDS)):
        sockets.append(connect(srv.port))
    # Done when the server has every descriptor in use, each extra one a
    # connection it holds, and every other client has seen its close.
    got = wait_replies(sockets, 30, lambda got, still_open:
                       len(still_open) == FDS - fds0 and open_fds(srv.pid) == FDS)
    held = [s for s in sockets if got[s] is None]
    # Every descriptor the server has is in use; the rest were closed.
    assert 0 < len(held) < FDS
    assert open_fds(srv.pid) == FDS
    assert all(got[s] == b"" for s in sockets if got[s] is not None)

    # While exhausted, more connections keep coming: each is closed at once
    # and the server sleeps in between (a spin would burn ~1 CPU second).
    cpu0 = proc_stat(srv.pid)[0]
    start = time.monotonic()
    while time.monotonic() - start < 1.5:
        with connect(srv.port) as s:
            assert wait_replies([s], 2)[s] == b""
        time.sleep(0.03)
    assert proc_stat(srv.pid)[0] - cpu0 < 0.5

    # Descriptors come back: the held clients are served, then everyone.
    for s in held:
        s.sendall(harness.encode("LIST_USERS", harness.DATETIME, "alice"))
    assert all(v == b"\x02" for v in wait_replies(held, 5).values())
    for s in held:
        s.close()
    assert settle(srv.pid, fds0, threads0)
    assert harness.code(srv.port, "REGISTER", "alice") == 1
    assert harness.code(srv.port, "CONNECT", "alice", "40000") == 0
    assert harness.code(srv.port, "LIST_USERS", "alice") == 0
    assert srv.stop() == 0
