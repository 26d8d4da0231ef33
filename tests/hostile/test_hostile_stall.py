"""Slowloris: a thousand clients send half a request and stall.

The stalled connections must not keep well-behaved clients from being
served, and each must be dropped at the request deadline (-t) with its
operation's "other error" code and no change of state.
"""
import collections
import time

import pytest

import harness
from hostile_lib import connect, proc_stat, open_fds, scaled, settle, wait_replies

# Replies within tight bounds, CPU use, fd counts: not among parallel tests.
pytestmark = pytest.mark.alone

TIMEOUT = 2


def test_stalled_half_requests_are_dropped_at_the_deadline(make_server, nofile, sockets):
    n = scaled(1000, 50)
    nofile(n + 256)                 # the server inherits the raised limit too
    srv = make_server("-t", str(TIMEOUT), "-c", "2000", "-i", "2000")
    fds0, threads0 = open_fds(srv.pid), proc_stat(srv.pid)[1]

    half = harness.encode("REGISTER", harness.DATETIME)
    for i in range(n):
        s = connect(srv.port)
        s.sendall(half + b"stalled%d" % i)      # the user's NUL never comes
        sockets.append(s)
    last_connect = time.monotonic()

    # Well-behaved clients are served at once meanwhile (within 1 s, the
    # bound scaled as the workload is for slow builds: 4 s under TSan).
    for i in range(20):
        start = time.monotonic()
        assert harness.code(srv.port, "REGISTER", "good%d" % i, timeout=5) == 0
        assert time.monotonic() - start < 1.0 / min(1.0, harness.SCALE)

    # Every stalled client gets REGISTER's "other error" (2) and a close.
    got = wait_replies(sockets, TIMEOUT + 15)
    assert time.monotonic() - last_connect < TIMEOUT + 15
    assert collections.Counter(got.values()) == {b"\x02": n}

    # Nothing of the half requests was registered; all threads are gone.
    assert harness.code(srv.port, "REGISTER", "stalled0") == 0
    assert harness.code(srv.port, "REGISTER", "stalled%d" % (n - 1)) == 0
    assert settle(srv.pid, fds0, threads0)
    assert srv.stop() == 0
