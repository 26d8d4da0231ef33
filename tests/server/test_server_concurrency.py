"""Many clients at once against one real server: races, stalls and the cap."""
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import harness

DT = harness.DATETIME


def test_32_threads_race_to_register_one_name(server):
    for round_ in range(5):
        name = "contested%d" % round_
        with ThreadPoolExecutor(32) as pool:
            codes = list(pool.map(lambda _: harness.code(server.port, "REGISTER", name),
                                  range(32)))
        assert sorted(codes) == [0] + [1] * 31


def _worker(port, i):
    """One user's life: register, connect, publish 20, delete the odd ones,
    list; plus contention on shared names.  Returns what it expects to stay."""
    user = "worker%02d" % i
    assert harness.code(port, "REGISTER", user) == 0
    assert harness.code(port, "CONNECT", user, str(41000 + i)) == 0
    for k in range(20):
        assert harness.code(port, "PUBLISH", user, "/w/%s/f%02d" % (user, k), "d") == 0
        # Everyone publishes the same shared path once: per-user, so all succeed.
    assert harness.code(port, "PUBLISH", user, "/shared/common", "d") == 0
    for k in range(1, 20, 2):
        assert harness.code(port, "DELETE", user, "/w/%s/f%02d" % (user, k)) == 0
    assert harness.code(port, "LIST_USERS", user) == 0
    assert harness.code(port, "LIST_CONTENT", user, user) == 0
    # Shared-name contention: exactly one of all threads gets each of these.
    won = [n for n in ("shared_a", "shared_b") if harness.code(port, "REGISTER", n) == 0]
    # Even workers disconnect at the end, odd ones stay connected.
    if i % 2 == 0:
        assert harness.code(port, "DISCONNECT", user) == 0
    return won


def test_64_threads_mixed_operations_leave_a_consistent_state(server):
    with ThreadPoolExecutor(64) as pool:
        wins = list(pool.map(lambda i: _worker(server.port, i), range(64)))
    flat = sorted(n for w in wins for n in w)
    assert flat == ["shared_a", "shared_b"]

    assert harness.code(server.port, "REGISTER", "observer") == 0
    assert harness.code(server.port, "CONNECT", "observer", "40000") == 0
    code, fields = harness.request(server.port, "LIST_USERS", "observer")
    assert code == 0
    users = {fields[i]: (fields[i + 1], fields[i + 2]) for i in range(1, len(fields), 3)}
    expected = {"worker%02d" % i: ("127.0.0.1", str(41000 + i)) for i in range(1, 64, 2)}
    expected["observer"] = ("127.0.0.1", "40000")
    assert users == expected and fields[0] == str(len(expected))
    for i in range(64):
        user = "worker%02d" % i
        code, files = harness.request(server.port, "LIST_CONTENT", "observer", user)
        want = sorted(["/w/%s/f%02d" % (user, k) for k in range(0, 20, 2)] + ["/shared/common"])
        assert code == 0 and files[0] == str(len(want)) and sorted(files[1:]) == want


def _stall(port, n):
    """Open n connections that each send half a request and then wait."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"REGISTER\x00" + DT.encode()[:5])
        socks.append(s)
    return socks


def test_50_stalled_connections_do_not_delay_others(make_server):
    srv = make_server("-t", "5")
    socks = _stall(srv.port, 50)
    try:
        for i in range(30):
            start = time.monotonic()
            assert harness.code(srv.port, "REGISTER", "prompt%d" % i) == 0
            assert time.monotonic() - start < 1.0
    finally:
        for s in socks:
            s.close()


def test_stalled_connections_are_dropped_at_the_deadline(server):
    socks = _stall(server.port, 10)
    try:
        time.sleep(0.2)
        deadline = time.monotonic() + 8
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            assert s.recv(16) == b"\x02"         # REGISTER's other error, then close
            assert s.recv(16) == b""
    finally:
        for s in socks:
            s.close()


def test_connection_cap_refuses_then_recovers(make_server):
    srv = make_server("-c", "4", "-t", "2")
    socks = _stall(srv.port, 4)
    try:
        time.sleep(0.3)
        # The fifth is accepted by the kernel and closed by the server, unanswered.
        with socket.create_connection(srv.addr, timeout=5) as s:
            try:
                s.sendall(harness.encode("REGISTER", DT, "fifth"))
                assert s.recv(16) == b""
            except ConnectionResetError:
                pass
        # The stalled four time out; the server serves again.
        for s in socks:
            s.settimeout(8)
            assert s.recv(16) == b"\x02"
        deadline = time.monotonic() + 5
        while harness.code(srv.port, "REGISTER", "later") is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert harness.code(srv.port, "REGISTER", "later") == 1
        assert harness.code(srv.port, "UNREGISTER", "fifth") == 1
    finally:
        for s in socks:
            s.close()
