"""Liveness (-L SECONDS, -N FAILURES): the server probes every connected user's
endpoint; dead ones leave the list, and a crashed user can connect again."""
import os
import re
import signal
import time

import pytest

import harness
from client_lib import start_connected
from liveness_lib import (connect_many, dead_endpoint, listed, online, scaled,
                          wait_gone)

EXPIRED_LOG = re.compile(r"^(\S+) DISCONNECT -expired- \d\d/\d\d/\d{4} \d\d:\d\d:\d\d$")


def log_server(tmp_path):
    """The real log server on a free port, writing tmp_path/operations.log."""
    return harness.LogServer(tmp_path / "operations.log")


def log_lines(tmp_path, pattern, n, timeout=10):
    """Wait until n lines of the operation log match pattern; return them."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(tmp_path / "operations.log") as f:
                found = [line.rstrip("\n") for line in f if pattern.match(line.rstrip("\n"))]
        except FileNotFoundError:
            found = []
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_killed_clients_leave_the_list(make_server, clients, peers, tmp_path):
    """kill -9, SIGTERM, SIGHUP of a connected client: with -L 1 and 3
    failures its user is gone from LIST_USERS within 5 s; an expiry is
    logged as `<user> DISCONNECT -expired- <server date-time>`."""
    logger = log_server(tmp_path)
    try:
        srv = make_server("-L", "1", "-N", "3",
                          env={"LOG_RPC_IP": "127.0.0.1", "LOG_RPC_PORT": str(logger.port)})
        online(srv, "watcher", peers().port)
        victims = {"kill9": signal.SIGKILL, "term": signal.SIGTERM, "hup": signal.SIGHUP}
        procs = {u: start_connected(clients, srv.port, u) for u in victims}
        assert set(victims) <= set(listed(srv, "watcher"))
        killed = {}
        for user, sig in victims.items():
            os.kill(procs[user].pid, sig)
            killed[user] = time.monotonic()
        for user in victims:
            wait_gone(srv, "watcher", [user], killed[user], 5)
        assert listed(srv, "watcher") == ["watcher"]
        # The client killed with -9 cannot disconnect itself: the server did.
        srv.wait_line(r"^s> EXPIRED kill9 127\.0\.0\.1 \d+ \(3 probes failed\)$")
        assert "kill9" in [l.split()[0] for l in log_lines(tmp_path, EXPIRED_LOG, 1)]
        # The watcher's endpoint answers: it never expires.
        assert not [l for l in srv.lines if l.startswith("s> EXPIRED watcher")]
        srv.stop()                  # before the log server: nothing left to send
    finally:
        logger.stop()


@pytest.mark.parametrize("interval", ["1", "3600"])
def test_crashed_user_connects_again_at_once(make_server, clients, interval):
    """After kill -9, the user CONNECTs from a new client at once: the CONNECT
    probes the old endpoint, finds it dead and replaces the session.  A live
    user's second CONNECT still gets USER ALREADY CONNECTED.  With -L 3600
    only the probe on CONNECT can have acted."""
    srv = make_server("-L", interval, "-N", "3")
    crashed = start_connected(clients, srv.port, "alice")
    live = start_connected(clients, srv.port, "bob")
    again = clients(srv.port)
    again.do("REGISTER carol", "c> REGISTER OK")   # up and reading commands
    crashed.kill()
    start = time.monotonic()
    again.do("CONNECT alice", "c> CONNECT OK")
    assert time.monotonic() - start < 5         # generous: a loaded machine
    # The CONNECT's own probe replaced the session (not a periodic round).
    srv.wait_line(r"^s> EXPIRED alice 127\.0\.0\.1 \d+ \(probe failed on CONNECT\)$")
    second = clients(srv.port)
    second.do("CONNECT bob", "c> USER ALREADY CONNECTED")
    again.do("LIST_USERS", "c> LIST_USERS OK")
    again.wait_line(r"^\s+alice 127\.0\.0\.1 \d+$", start=len(again.lines) - 1)
    live.do("LIST_USERS", "c> LIST_USERS OK")   # bob's session is untouched


def test_probe_costs_the_client_nothing(make_server, clients):
    """Probed every second, a real client prints nothing, keeps no extra
    thread, and stays listed."""
    srv = make_server("-L", "1", "-N", "1")
    c = start_connected(clients, srv.port, "alice")
    lines, errors = len(c.lines), len(c.err_lines)
    tasks = "/proc/%d/task" % c.pid
    before = len(os.listdir(tasks))
    most = before
    end = time.monotonic() + 3.5                # at least 3 probes
    while time.monotonic() < end:
        most = max(most, len(os.listdir(tasks)))
        time.sleep(0.02)
    assert most <= before + 1, (before, most)   # a probe's thread ends at once
    assert c.lines[lines:] == [] and c.err_lines[errors:] == []
    c.do("LIST_USERS", "c> LIST_USERS OK")
    assert not [l for l in srv.lines if l.startswith("s> EXPIRED")]


def test_many_dead_users_expire(make_server, peers):
    """10,000 users connected with endpoints nobody listens on, -L 1: all
    expired within 10 s, and the live one stays."""
    n = scaled(10000)
    sock, port = dead_endpoint()
    try:
        srv = make_server("-L", "1", "-N", "3")
        online(srv, "watcher", peers().port)
        connect_many(srv, "d", n, port)
        start = time.monotonic()
        while len(listed(srv, "watcher")) > 1:
            assert time.monotonic() - start < 10, len(listed(srv, "watcher"))
            time.sleep(0.2)
        assert listed(srv, "watcher") == ["watcher"]
    finally:
        sock.close()
    srv.wait_line(r"^s> EXPIRED d%d " % (n - 1))
    assert sum(l.startswith("s> EXPIRED d") for l in srv.lines) == n


@pytest.mark.parametrize("args", [(), ("-L", "0", "-N", "1")])
def test_classic_without_liveness(make_server, args):
    """Bare binary, and -L 0: a user CONNECTed with a port nothing listens
    on stays listed, and a second CONNECT answers 2 as the classic server."""
    sock, port = dead_endpoint()
    try:
        srv = make_server(*args)
        online(srv, "ghost", port)
        time.sleep(1.5)
        assert listed(srv, "ghost") == ["ghost"]
        assert srv.request("CONNECT", "ghost", port)[0] == 2
        assert not [l for l in srv.lines if "EXPIRED" in l]
    finally:
        sock.close()


def test_no_expiry_goes_unlogged(make_server, peers, tmp_path):
    """While the operation-log queue is full (log server down, LOG_QUEUE_MAX
    4), a dead session is not expired; once the log server is up, it is,
    and the log has its line."""
    sock, port = dead_endpoint()
    witness = peers()                           # alive: counts the probe rounds
    log_port = harness.fixed_port()             # the log server comes later
    logger = None
    try:
        srv = make_server("-L", "1", "-N", "1",
                          env={"LOG_RPC_IP": "127.0.0.1", "LOG_RPC_PORT": str(log_port),
                               "LOG_QUEUE_MAX": "4"})
        online(srv, "witness", witness.port)
        online(srv, "ghost", port)              # four entries: the queue is full
        # The witness's third probe from now on means two whole rounds since
        # ghost connected, each with a failed probe of ghost (one is enough
        # to expire it, with -N 1).
        base = witness.accepted
        harness.wait_until(lambda: witness.accepted >= base + 3, 30, "three probe rounds")
        assert not [l for l in srv.lines if "EXPIRED" in l]
        logger = harness.Process([os.path.join(harness.BIN, "log_server"),
                                  "-f", str(tmp_path / "operations.log"), "-p", str(log_port)])
        srv.wait_line(r"^s> EXPIRED ghost ", timeout=10)
        assert [l.split()[0] for l in log_lines(tmp_path, EXPIRED_LOG, 1)] == ["ghost"]
        srv.stop()
    finally:
        sock.close()
        if logger is not None:
            logger.stop()
