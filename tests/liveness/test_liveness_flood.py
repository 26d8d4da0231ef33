"""Liveness without hand-over: a flood of conflicting CONNECTs from another
address neither drives probes at the connected user nor takes its session.

The issue's attack sent 18,396 CONNECTs in 2.7 s from 127.0.0.9; its
probes (6,630 a second) made a live client's probe fail, and the session was
expired and taken over.  The quick version here: thousands of CONNECTs in a
couple of seconds, from 127.0.0.9, many connections at once.
"""
import socket
import threading
import time

import harness
from client_lib import start_connected
from liveness_lib import listed, online, scaled

FLOOD = scaled(3000, 500)


def flood(port, user, n, threads=16):
    """n classic CONNECTs of user from 127.0.0.9; the count of each code."""
    codes = {}
    lock = threading.Lock()
    request = harness.encode("CONNECT", harness.DATETIME, user, "6666")

    def worker(k):
        for _ in range(k):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10,
                                              source_address=("127.0.0.9", 0)) as s:
                    s.sendall(request)
                    got = s.recv(1)
                code = got[0] if got else None
            except OSError:
                code = None
            with lock:
                codes[code] = codes.get(code, 0) + 1

    pool = [threading.Thread(target=worker, args=(n // threads,)) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return codes


def test_flood_probes_a_classic_user_at_most_once_per_interval(make_server, peers):
    """A classic user (its endpoint counts every connection): the flood gets
    USER ALREADY CONNECTED throughout, and the endpoint sees at most one
    probe from the conflicts in the interval, plus the regular rounds."""
    srv = make_server("-L", "30", "-N", "3")
    victim = peers()
    online(srv, "victim", victim.port)
    start = time.monotonic()
    codes = flood(srv.port, "victim", FLOOD)
    took = time.monotonic() - start
    assert codes.get(2, 0) == FLOOD // 16 * 16, codes
    # One round at start, one more per 30 s, one conflict probe per 30 s.
    rounds = 1 + int(took // 30)
    assert victim.accepted <= 2 * rounds, (victim.accepted, took)
    assert not [l for l in srv.lines if l.startswith("s> EXPIRED")]
    code, fields = srv.request("LIST_USERS", "victim")
    assert code == 0 and fields[1:] == ["victim", "127.0.0.1", str(victim.port)]


def test_flood_cannot_take_an_authenticated_users_session(make_server, clients):
    """Our client's user (authenticated): no classic CONNECT probes it at
    all; every one is refused, and the live client keeps its session."""
    srv = make_server("-L", "1", "-N", "3")
    alice = start_connected(clients, srv.port, "alice")
    codes = flood(srv.port, "alice", FLOOD)
    assert codes.get(3, 0) == FLOOD // 16 * 16, codes
    assert not [l for l in srv.lines if l.startswith("s> EXPIRED")]
    alice.do("LIST_USERS", "c> LIST_USERS OK")
    alice.wait_line(r"^\talice 127\.0\.0\.1 \d+$", start=len(alice.lines) - 1)
    online(srv, "watcher", "40000")
    assert "alice" in listed(srv, "watcher")
