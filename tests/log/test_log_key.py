"""Who may append: with a key (-k on both servers) only signed batches are
written; the key never travels; without one, the log server says once that
anyone can append.  Also `make run`'s start-up (scripts/run.sh)."""
import os
import socket
import subprocess
import sys
import time

import pytest

import harness
from log_lib import (LOG_OK, LOG_REFUSED, RpcConn, read_lines, sign, wait_err, wait_lines)

DT = "17/12/2014 13:20:35"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "log.key"
    path.write_bytes(os.urandom(32).hex().encode() + b"\n")
    path.chmod(0o600)
    return path


def test_signed_batches_from_the_index_server_are_written(logs, logged_server, key):
    log = logs(port=0, args=("-k", str(key)))
    srv = logged_server(log.port, "-k", str(key))
    for i in range(5):
        assert harness.code(srv.port, "REGISTER", "k%d" % i) == 0
    assert wait_lines(log.path, 5) == ["k%d REGISTER %s" % (i, DT) for i in range(5)]
    assert not any("anyone" in l for l in log.err_lines)


def test_without_the_key_nothing_is_written(logs, logged_server, key, tmp_path):
    log = logs(port=0, args=("-k", str(key)))
    conn = RpcConn(log.port)
    # Unsigned.
    assert conn.append([(5, 1, "mallory", "REGISTER", "", DT)]) == LOG_REFUSED
    # Signed with another key, and signed right but without asking for a nonce.
    entries = [(5, 1, "mallory", "REGISTER", "", DT)]
    nonce = conn.nonce()
    assert conn.append_signed(entries, sign(b"another key, 16+ bytes", nonce, 0, entries)) \
        == LOG_REFUSED
    fresh = RpcConn(log.port)
    secret = key.read_bytes().rstrip(b"\n")
    assert fresh.append_signed(entries, sign(secret, b"\0" * 16, 0, entries)) == LOG_REFUSED
    # An index server without the key, or with another one: refused, says so.
    other = tmp_path / "other.key"
    other.write_bytes(b"x" * 32)
    other.chmod(0o600)
    # (With another key, the log server's refusal is not signed with ours either.)
    servers = []
    for args, says in (((), "refuses our entries"),
                       (("-k", str(other)), "did not prove the key")):
        srv = logged_server(log.port, *args)
        assert harness.code(srv.port, "REGISTER", "nokey") == 0
        wait_err(srv, says)
        servers.append(srv)
    # Refused (or answered without the proof), the entries can never leave
    # during the 5 s drain: each server gives up at once and says so.
    began = time.monotonic()
    assert harness.stop_all(*servers) == [0, 0]
    assert time.monotonic() - began < 4, "an exit waited out the drain"
    for srv in servers:
        wait_err(srv, "1 operation log entries could not be delivered before exit")
    assert read_lines(log.path) == []


def test_a_recorded_call_cannot_be_replayed(logs, key):
    log = logs(port=0, args=("-k", str(key)))
    secret = key.read_bytes().rstrip(b"\n")
    conn = RpcConn(log.port)
    nonce = conn.nonce()
    first = [(6, 1, "alice", "REGISTER", "", DT)]
    mac = sign(secret, nonce, 0, first)
    assert conn.append_signed(first, mac) == LOG_OK
    # The same bytes again: on this connection (call 1 now) and on another.
    assert conn.append_signed(first, mac) == LOG_REFUSED
    other = RpcConn(log.port)
    other.nonce()
    assert other.append_signed(first, mac) == LOG_REFUSED
    second = [(6, 2, "bob", "REGISTER", "", DT)]
    assert conn.append_signed(second, sign(secret, nonce, 2, second)) == LOG_OK
    assert read_lines(log.path) == ["alice REGISTER " + DT, "bob REGISTER " + DT]


def test_the_key_never_travels(logs, logged_server, key, tmp_path):
    """What the index server sends, captured by a relay, holds no key bytes."""
    log = logs(port=0, args=("-k", str(key)))
    # Every connection is relayed (the index server connects again after a
    # call that timed out, e.g. its 1 s nonce call on a busy machine), and
    # everything it sends on any of them is captured.
    relay_code = (
        "import socket, sys, threading\n"
        "lst = socket.create_server(('127.0.0.1', 0)); print(lst.getsockname()[1], flush=True)\n"
        "out, lock = open(sys.argv[2], 'wb'), threading.Lock()\n"
        "def pipe(a, b, keep):\n"
        "    try:\n"
        "        while (d := a.recv(65536)):\n"
        "            if keep:\n"
        "                with lock: out.write(d); out.flush()\n"
        "            b.sendall(d)\n"
        "    except OSError: pass\n"
        "    for x in (a, b):\n"
        "        try: x.shutdown(socket.SHUT_RDWR)\n"
        "        except OSError: pass\n"
        "while True:\n"
        "    c, _ = lst.accept(); s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
        "    threading.Thread(target=pipe, args=(s, c, False), daemon=True).start()\n"
        "    threading.Thread(target=pipe, args=(c, s, True), daemon=True).start()\n")
    captured = tmp_path / "captured"
    relay = harness.Process([sys.executable, "-c", relay_code, str(log.port), str(captured)])
    try:
        relay.wait_line(r"^\d+$")
        srv = logged_server(int(relay.lines[0]), "-k", str(key))
        assert harness.code(srv.port, "REGISTER", "watched") == 0
        assert wait_lines(log.path, 1) == ["watched REGISTER " + DT]
        srv.stop()
    finally:
        relay.stop()
    data = captured.read_bytes()
    assert b"watched" in data
    secret = key.read_bytes().rstrip(b"\n")
    assert secret not in data and bytes.fromhex(secret.decode()) not in data


def test_without_a_key_anyone_can_append_and_it_says_so_once(logs):
    log = logs(port=0)
    assert sum("anyone who reaches the port can append" in l for l in log.err_lines) == 1
    assert RpcConn(log.port).append([(3, 1, "open", "REGISTER", "", DT)]) == LOG_OK


def test_a_key_file_others_may_read_is_refused(tmp_path, key):
    key.chmod(0o644)
    for argv in ([os.path.join(harness.BIN, "log_server"), "-f", str(tmp_path / "l"), "-p",
                  "0", "-k", str(key)],):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and "chmod 600" in r.stderr
    assert not (tmp_path / "l").exists()
    r = subprocess.run([os.path.join(harness.BIN, "server"), "-p", "0", "-k", str(key)],
                       env=dict(os.environ, LOG_RPC_IP="127.0.0.1", LOG_RPC_PORT="1"),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "chmod 600" in r.stderr


def run_sh(tmp_path, port, log_port, timeout=30):
    env = dict(os.environ, BIN=harness.BIN, PORT=str(port), LOG_PORT=str(log_port),
               HTTP_PORT=str(harness.fixed_port()), PYTHON=harness.PYTHON)
    return subprocess.run(["sh", os.path.join(ROOT, "scripts", "run.sh")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_make_run_fails_loudly_when_a_server_cannot_start(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        # The log server's port is taken.
        r = run_sh(tmp_path, harness.fixed_port(), taken)
        assert r.returncode == 1 and "run.sh: the log server" in r.stderr
        assert "Address already in use" in r.stderr
        # The index server's port is taken: the log server it started is stopped.
        r = run_sh(tmp_path, taken, harness.fixed_port())
        assert r.returncode == 1 and "the index server did not start" in r.stderr
        assert "lines written" in r.stderr
    key = tmp_path / "operations.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 64
