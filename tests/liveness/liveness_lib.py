"""Helpers for the liveness tests: live and dead endpoints, listings, bulk users.

PEERDEX_HOSTILE_SCALE (default 1) scales the bulk user count down for slow
builds (the TSan run), as in tests/hostile.
"""
import time
from concurrent.futures import ThreadPoolExecutor

import harness
from stubs import Listener


def scaled(n, least=100):
    """n, scaled by PEERDEX_HOSTILE_SCALE (harness.scaled), at least `least`."""
    return harness.scaled(n, least)


class Peer(Listener):
    """A live endpoint: a listening socket whose thread accepts and closes
    every connection (as a client's peer server does with a probe)."""

    def __init__(self):
        self.accepted = 0
        super().__init__(backlog=128)

    def serve(self, conn):
        self.accepted += 1
        conn.close()

    def close(self):
        super().close()
        self.thread.join(2)


def dead_endpoint():
    """A port nothing listens on (harness.dead_port), held while the test
    runs: (the holder to close, the port)."""
    r = harness.dead_port()
    return r, r.port


def online(srv, user, port):
    """REGISTER and CONNECT user with the given listening port."""
    assert srv.request("REGISTER", user)[0] == 0
    assert srv.request("CONNECT", user, port)[0] == 0


def listed(srv, observer):
    """The names LIST_USERS gives the connected user `observer`."""
    code, fields = srv.request("LIST_USERS", observer)
    assert code == 0, (code, fields)
    return fields[1::3]


def wait_gone(srv, observer, names, since, timeout):
    """Wait until none of `names` is listed; return the seconds from `since`
    (a time.monotonic()) until then.  Fails after `timeout` seconds."""
    while True:
        now = time.monotonic()
        left = set(names) & set(listed(srv, observer))
        if not left:
            return now - since
        assert now - since < timeout, "still listed after %.1f s: %s" % (
            now - since, sorted(left)[:5])
        time.sleep(0.05)


def connect_many(srv, prefix, n, port, threads=8):
    """REGISTER and CONNECT n users prefix0..prefix{n-1}, all with `port`."""
    def one(i):
        name = "%s%d" % (prefix, i)
        return (harness.code(srv.port, "REGISTER", name),
                harness.code(srv.port, "CONNECT", name, port))

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(n), chunksize=64))
    assert all(r == (0, 0) for r in results), [r for r in results if r != (0, 0)][:5]
