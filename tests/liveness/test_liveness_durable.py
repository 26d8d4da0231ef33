"""Liveness with a state directory (-L with -d): an expiry is journaled, so a
restart does not bring the session back, and reaches the operation log
through the journal; sessions restored at start are probed at once."""
import os
import re
import shutil
import time

import pytest

import harness
from liveness_lib import listed, online
from test_liveness import EXPIRED_LOG, log_lines, log_server, start_connected


def test_expiry_survives_kill9(make_server, clients, peers, tmp_path):
    """-d and -L 1 -N 2: a client killed with -9 expires; its expiry reaches
    the log server from the journal; the server is killed with -9 and
    started again (without -L): the user is not connected and can CONNECT."""
    state = str(tmp_path / "state")
    logger = log_server(tmp_path)
    try:
        srv = make_server("-d", state, "-L", "1", "-N", "2",
                          env={"LOG_RPC_IP": "127.0.0.1", "LOG_RPC_PORT": str(logger.port)})
        online(srv, "watcher", peers().port)
        alice = start_connected(clients, srv.port, "alice")
        assert set(listed(srv, "watcher")) == {"watcher", "alice"}
        alice.kill()
        srv.wait_line(r"^s> EXPIRED alice 127\.0\.0\.1 \d+ \(2 probes failed\)$")
        # The journal record is the log entry (the outbox), with the server's date-time.
        assert [l.split()[0] for l in log_lines(tmp_path, EXPIRED_LOG, 1)] == ["alice"]
        srv.kill()
    finally:
        logger.stop()
    srv = make_server("-d", state)
    srv.wait_line(r"journal records replayed", stderr=True)
    assert listed(srv, "watcher") == ["watcher"]
    # alice's secret is kept per server address (host:port), and the port is
    # new: the client says which file it needs; with it copied, alice CONNECTs.
    again = clients(srv.port)
    again.do("CONNECT alice", "c> CONNECT FAIL")
    m = again.wait_line(r"this client needs it: copy .* to (\S+secret-\S+\.key) ",
                        stderr=True)
    (old,) = [p for p in os.listdir(os.path.dirname(m.group(1))) if p.startswith("secret-")]
    shutil.copy(os.path.join(os.path.dirname(m.group(1)), old), m.group(1))
    again.do("CONNECT alice", "c> CONNECT OK")


@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_restored_session_is_probed_at_start(make_server, clients, peers, tmp_path, how):
    """A user connected with -d; the server stops (SIGTERM: restored from the
    snapshot; kill -9: from the journal); the user's client is killed; the
    server starts again with -L 1 -N 1: the restored session expires, a live
    restored one stays, and the expiry is kept by a further restart."""
    state = str(tmp_path / "state")
    srv = make_server("-d", state)
    online(srv, "watcher", peers().port)
    alice = start_connected(clients, srv.port, "alice")
    if how == "stop":
        assert srv.stop() == 0
    else:
        srv.kill()
    alice.kill()
    start = time.monotonic()
    srv = make_server("-d", state, "-L", "1", "-N", "1")
    srv.wait_line(r"2 users", stderr=True)
    srv.wait_line(r"^s> EXPIRED alice 127\.0\.0\.1 \d+ \(1 probes failed\)$")
    assert time.monotonic() - start < 10        # the first round runs at start
    assert listed(srv, "watcher") == ["watcher"]
    assert not [l for l in srv.lines if l.startswith("s> EXPIRED watcher")]
    srv.kill()
    srv = make_server("-d", state)
    assert listed(srv, "watcher") == ["watcher"]


def test_restored_dead_session_goes_in_the_first_round(make_server, clients, peers, tmp_path):
    """As under `make run` (-L 30, -N 3): a session restored at start whose
    client died meanwhile has not been seen since the restart, so the first
    round's one failed probe ends it (not 3 rounds, about 62 s, later)."""
    state = str(tmp_path / "state")
    srv = make_server("-d", state)
    online(srv, "watcher", peers().port)
    alice = start_connected(clients, srv.port, "alice")
    srv.kill()
    alice.kill()
    start = time.monotonic()
    srv = make_server("-d", state, "-L", "30", "-N", "3")
    srv.wait_line(r"^s> EXPIRED alice 127\.0\.0\.1 \d+ \(1 probes failed\)$", timeout=20)
    assert time.monotonic() - start < 15
    assert listed(srv, "watcher") == ["watcher"]
