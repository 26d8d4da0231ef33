"""The log server proves itself to the index server (issue 22.3): with -k,
only an acknowledgment carrying the keyed hash over the connection's nonce
and what it acknowledges drops entries; anything else on the log port keeps
them, and they reach the real log server exactly once."""
import os
import sys
import threading
import time

import pytest

import harness
from log_lib import (LOG_OK, LOG_REFUSED, RpcConn, ack_mac, read_lines, sign, wait_err,
                     wait_lines)

DT = harness.DATETIME
IMPOSTOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rpc_impostor.py")


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "log.key"
    path.write_bytes(os.urandom(32).hex().encode())
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("durable", [False, True], ids=["queue", "journal"])
def test_an_impostor_on_the_log_port_loses_nothing(logs, logged_server, key, tmp_path,
                                                   durable):
    log = logs(port=0, args=("-k", str(key)))
    port = log.port
    args = ["-k", str(key)] + (["-d", str(tmp_path / "state")] if durable else [])
    srv = logged_server(port, *args)
    names = ["p%02d" % i for i in range(25)]
    for name in names[:5]:
        assert harness.code(srv.port, "REGISTER", name) == 0
    wait_lines(log.path, 5)
    assert log.stop() == 0
    impostor = harness.Process([sys.executable, IMPOSTOR, str(port)])
    try:
        impostor.wait_line(r"^\d+$")
        for name in names[5:]:
            assert harness.code(srv.port, "REGISTER", name) == 0
        impostor.wait_line(r"^call [134]$")          # it was asked to take entries
        wait_err(srv, r"the log server at 127\.0\.0\.1:%d did not prove the key" % port)
    finally:
        impostor.stop()
    again = logs(path=log.path, port=port, args=("-k", str(key)))
    want = ["%s REGISTER %s" % (n, DT) for n in names]
    assert wait_lines(again.path, len(want)) == want
    assert srv.stop() == 0
    assert read_lines(again.path) == want           # each once, in order
    assert not any("jumps" in line for line in again.err_lines)


def test_the_answer_is_signed_as_documented(logs, key):
    """The reply's MAC, computed here from rpc/logmac.h's description: it
    covers the status and the very batch, so it cannot be moved to another."""
    log = logs(port=0, args=("-k", str(key)))
    secret = key.read_bytes()
    conn = RpcConn(log.port)
    nonce = conn.nonce()
    first = [(8, 1, "pat", "REGISTER", "", DT)]
    mac = sign(secret, nonce, 0, first)
    status, reply = conn.append_proven(first, mac)
    assert (status, reply) == (LOG_OK, ack_mac(secret, nonce, 0, LOG_OK, mac))
    bad = sign(b"another key, 16+ bytes", nonce, 1, first)
    status, reply = conn.append_proven(first, bad)
    assert (status, reply) == (LOG_REFUSED, ack_mac(secret, nonce, 1, LOG_REFUSED, bad))
    assert reply != ack_mac(secret, nonce, 1, LOG_OK, bad)
    # Without a key the log server cannot prove anything: an all-zero MAC.
    plain = logs(path=log.path.parent / "plain.log", port=0)
    conn = RpcConn(plain.port)
    status, reply = conn.append_proven(first, mac)
    assert (status, reply) == (LOG_OK, b"\0" * 32)


def test_without_a_key_the_index_says_acknowledgments_are_unproven(logs, logged_server):
    log = logs(port=0)
    srv = logged_server(log.port)
    wait_err(srv, "no key \\(-k\\): the log server's acknowledgments are not proven")
    assert harness.code(srv.port, "REGISTER", "plain") == 0
    assert wait_lines(log.path, 1) == ["plain REGISTER " + DT]


class NonceHolders:
    """n keyless clients that each hold a log server connection, calling
    NONCE (which needs no key) every half second and reconnecting at once
    when closed; counts the connections the log server closed."""

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.conns = [None] * n
        self.closed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def hold(self, i):
        try:
            if self.conns[i] is None:
                self.conns[i] = RpcConn(self.port, timeout=2)
            self.conns[i].nonce()
        except (OSError, AssertionError):
            if self.conns[i] is not None:
                self.conns[i].close()
                self.conns[i] = None
                self.closed += 1

    def run(self):
        while not self.stop.is_set():
            for i in range(self.n):
                self.hold(i)
            self.stop.wait(0.5)

    def __enter__(self):
        for i in range(self.n):
            self.hold(i)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        for c in self.conns:
            if c is not None:
                c.close()


def test_keyless_nonce_holders_cannot_starve_the_index(logs, logged_server, key):
    log = logs(port=0, args=("-k", str(key)))                 # 64 slots
    srv = logged_server(log.port, "-k", str(key))
    with NonceHolders(log.port, 64) as holders:
        assert all(c is not None for c in holders.conns)     # every slot taken
        start = time.monotonic()
        for i in range(5):
            assert harness.code(srv.port, "REGISTER", "held%d" % i) == 0
        assert wait_lines(log.path, 5, timeout=8) == \
            ["held%d REGISTER %s" % (i, DT) for i in range(5)]
        took = time.monotonic() - start
        # A NONCE never extends a connection's life: the holders are cut.
        deadline = time.monotonic() + 15
        while holders.closed < 64 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert holders.closed >= 64, holders.closed
    assert took < 8
