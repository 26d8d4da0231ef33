"""The client on a terminal (a pseudo-terminal): prompt, Ctrl-C cancels the
line or the command and returns to the prompt, a second Ctrl-C within a
second quits (disconnecting), Ctrl-D quits, tab completes local paths and
the user names of the last LIST_USERS, long waits say what they wait for."""
import os
import socket
import threading
import time

import pytest

import harness
from stubs import StubServer
from tty_lib import TtyClient


@pytest.fixture
def tty(server, tmp_path):
    started = []

    def start(port=None, **kw):
        c = TtyClient(port or server.port, tmp_path, **kw)
        started.append(c)
        return c
    yield start
    for c in started:
        c.stop()


def connected(server):
    assert harness.code(server.port, "REGISTER", "watcher") in (0, 1)
    assert harness.code(server.port, "CONNECT", "watcher", "40000") in (0, 2)
    return harness.request(server.port, "LIST_USERS", "watcher")[1][1::3]


def test_ctrl_c_cancels_the_line_and_twice_quits(server, tty):
    c = tty()
    c.line("REGISTER tina", r"c> REGISTER OK")
    c.line("CONNECT tina", r"c> CONNECT OK")
    since = c.mark()
    c.type("REGISTER half-typed")
    c.expect(r"REGISTER half-typed", since=since)
    c.ctrl_c()
    c.expect(r"Ctrl-C again within a second", since=since)
    c.expect(r"c> ", since=c.mark() - 3)
    time.sleep(1.2)                         # a later Ctrl-C is a first one again
    c.line("LIST_USERS", r"c> LIST_USERS OK")
    assert harness.code(server.port, "UNREGISTER", "half-typed") == 1
    # Two Ctrl-Cs before the client runs its handler are one signal to it:
    # the second goes once the first is answered and the client waits again.
    since = c.mark()
    c.ctrl_c()
    c.expect(r"Ctrl-C again within a second", since=since)
    c.ctrl_c()
    assert c.proc.wait(10) == 130
    c.expect(r"DISCONNECT OK")              # its last output, read by now or soon
    assert "tina" not in connected(server)


def test_ctrl_d_quits_and_disconnects(server, tty):
    c = tty()
    c.line("REGISTER dora", r"c> REGISTER OK")
    c.line("CONNECT dora", r"c> CONNECT OK")
    c.type("\x04")
    assert c.proc.wait(10) == 0
    c.expect(r"c> DISCONNECT OK")           # its last output, read by now or soon
    assert "dora" not in connected(server)


def test_ctrl_c_cancels_a_download(server, tty, tmp_path):
    """A peer that announces a file and then stalls: Ctrl-C removes the
    temporary file, prints GET_FILE FAIL with a reason, and the prompt returns."""
    peer = socket.socket()
    peer.bind(("127.0.0.1", 0))
    peer.listen(4)
    held = []

    def serve():
        conn, _ = peer.accept()
        conn.recv(4096)
        conn.sendall(b"\x00" + b"1000000\x00" + b"x" * 1000)
        held.append(conn)                   # then nothing more
    threading.Thread(target=serve, daemon=True).start()
    assert harness.code(server.port, "REGISTER", "staller") == 0
    assert harness.code(server.port, "CONNECT", "staller", str(peer.getsockname()[1])) == 0
    dest = tmp_path / "dl"
    dest.mkdir()
    c = tty()
    c.line("REGISTER getter", r"c> REGISTER OK")
    c.line("CONNECT getter", r"c> CONNECT OK")
    since = c.mark()
    c.type("GET_FILE staller /f.bin %s\r" % dest)
    c.expect(r"waiting for staller at 127\.0\.0\.1:\d+ \(Ctrl-C cancels\)", since=since)
    assert len(os.listdir(dest)) == 1       # the temporary file
    c.ctrl_c()
    m = c.expect(r"c> GET_FILE FAIL", since=since)
    c.expect(r"GET_FILE: cancelled \(Ctrl-C\); no file written", since=since)
    c.expect(r"c> ", since=m.end())
    assert os.listdir(dest) == []
    c.line("LIST_USERS", r"c> LIST_USERS OK")       # still running, still connected
    for conn in held:
        conn.close()
    peer.close()


def test_long_index_wait_is_explained_and_cancelled(tty):
    stub = StubServer(lambda fields: None)           # never answers
    try:
        c = tty(port=stub.port)
        since = c.mark()
        c.type("REGISTER slow\r")
        c.expect(r"REGISTER: waiting for the index server at 127\.0\.0\.1:%d \(up to 10 s; "
                 r"Ctrl-C cancels\)" % stub.port, since=since)
        c.ctrl_c()
        c.expect(r"c> REGISTER FAIL", since=since)
        c.expect(r"REGISTER: cancelled \(Ctrl-C\)", since=since)
        assert c.proc.poll() is None
    finally:
        stub.close()


def test_tab_completes_paths_and_listed_users(server, tty, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lecture-notes.txt").write_text("n")
    assert harness.code(server.port, "REGISTER", "zoe") == 0
    assert harness.code(server.port, "CONNECT", "zoe", "40003") == 0
    c = tty()
    c.line("REGISTER carl", r"c> REGISTER OK")
    c.line("CONNECT carl", r"c> CONNECT OK")
    # A path: ~ is HOME (tmp_path) here; the directory gets its /.
    c.line("PUBLISH ~/do\tlec\t notes", r"c> PUBLISH OK")
    assert harness.request(server.port, "LIST_CONTENT", "zoe", "carl")[1] == [
        "1", str(docs / "lecture-notes.txt")]
    # User names come from the last LIST_USERS.
    c.line("LIST_USERS", r"c> LIST_USERS OK")
    c.line("LIST_CONTENT z\t", r"c> LIST_CONTENT OK")
    assert "LIST_CONTENT zoe" in c.text()
