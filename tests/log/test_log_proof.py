"""The log server proves itself to the index server (issue 22.3): with -k,
only an acknowledgment carrying the keyed hash over the connection's nonce
and what it acknowledges drops entries; anything else on the log port keeps
them, and they reach the real log server exactly once."""
import collections
import os
import sys

import pytest

import harness
from log_lib import read_lines, wait_err, wait_lines

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


def test_without_a_key_the_index_says_acknowledgments_are_unproven(logs, logged_server):
    log = logs(port=0)
    srv = logged_server(log.port)
    wait_err(srv, "no key \\(-k\\): the log server's acknowledgments are not proven")
    assert harness.code(srv.port, "REGISTER", "plain") == 0
    assert wait_lines(log.path, 1) == ["plain REGISTER " + DT]
