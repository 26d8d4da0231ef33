"""Every way a client ends leaves the index and the client agreeing: its
user is disconnected on the index (QUIT, exit, end of input, SIGTERM, SIGHUP,
SIGINT, an unexpected error), and DISCONNECT of another user also
disconnects ours, since the listener stops in every case."""
import signal
import socket
import time

import pytest

import harness


def connected(server):
    """The names the index lists as connected (asked as a user of its own)."""
    assert harness.code(server.port, "REGISTER", "watcher") in (0, 1)
    assert harness.code(server.port, "CONNECT", "watcher", "40000") in (0, 2)
    code, fields = harness.request(server.port, "LIST_USERS", "watcher")
    assert code == 0
    return fields[1::3]


def connected_client(server, clients, user):
    c = clients(server.port)
    c.do("REGISTER %s" % user, "c> REGISTER OK")
    c.do("CONNECT %s" % user, "c> CONNECT OK")
    assert user in connected(server)
    return c


@pytest.mark.parametrize("how, status", [("QUIT", 0), ("exit", 0), ("EOF", 0),
                                         (signal.SIGTERM, 128 + 15),
                                         (signal.SIGHUP, 128 + 1),
                                         (signal.SIGINT, 130)])
def test_every_way_out_disconnects(server, clients, how, status):
    c = connected_client(server, clients, "leaver")
    start = time.monotonic()
    if how == "EOF":
        assert c.finish() == status
    elif isinstance(how, str):
        c.send(how)
        assert c.finish() == status
    else:
        c.proc.send_signal(how)
        assert c.proc.wait(10) == status
    assert time.monotonic() - start < 5
    assert "leaver" not in connected(server)
    c.wait_line(r"^c> DISCONNECT OK$")


def test_an_unexpected_error_disconnects_and_exits_1(server, clients):
    """Undecodable input (stdin read strictly as UTF-8) is such an error."""
    c = harness.Process([harness.PYTHON, __import__("client_lib").CLIENT, "-s", "127.0.0.1",
                         "-p", str(server.port)], stdin=__import__("subprocess").PIPE,
                        env={"PYTHONIOENCODING": "utf-8:strict"})
    try:
        for line in (b"REGISTER crash\n", b"CONNECT crash\n"):
            c.proc.stdin.write(line)
        c.proc.stdin.flush()
        c.wait_line(r"^c> CONNECT OK$")
        c.proc.stdin.write(b"\xff\xfe\n")
        c.proc.stdin.close()
        assert c.proc.wait(10) == 1
        c.wait_line(r"^c> DISCONNECT OK$")
        c.wait_line(r"unexpected error, disconnecting and leaving", stderr=True)
        assert "crash" not in connected(server)
    finally:
        c.stop()


def test_disconnect_of_another_user_disconnects_ours_too(server, clients):
    assert harness.code(server.port, "REGISTER", "bob") == 0
    assert harness.code(server.port, "CONNECT", "bob", "40001") == 0
    c = connected_client(server, clients, "alice")
    start = len(c.lines)
    c.do("DISCONNECT bob", r"c> DISCONNECT OK")
    assert c.lines[start:] == ["c> DISCONNECT OK"]          # stdout: the statement's line
    c.wait_line(r"^DISCONNECT: this client's listener stopped, so its user alice was "
                r"disconnected on the index too \(DISCONNECT OK\)$", stderr=True)
    names = connected(server)
    assert "alice" not in names and "bob" not in names
    assert c.finish() == 0


def test_quit_waits_for_uploads_and_quit_now_does_not(server, clients, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (32 << 20))
    for now in (False, True):
        c = connected_client(server, clients, "up%d" % now)
        c.do("PUBLISH %s big" % big, "c> PUBLISH OK")
        users = harness.request(server.port, "LIST_USERS", "watcher")[1]
        port = int(users[users.index("up%d" % now) + 2])
        # 32 MB cannot fit in the socket buffers: the upload runs until we read.
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(harness.encode("GET_FILE", str(big)))
        s.recv(1)                           # the upload has started
        c.send("QUIT now" if now else "QUIT")
        if now:
            assert c.proc.wait(10) == 0
            s.close()
            assert not any("upload" in l for l in c.err_lines)
            continue
        c.wait_line(r"^QUIT: 1 upload to other peers in progress; waiting up to 5 s",
                    stderr=True)
        got = 1
        while True:                         # read it all now: the client waits for us
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
        s.close()
        assert c.proc.wait(10) == 0
        assert got > 32 << 20               # code, size and every byte
        assert not any("cut short" in l for l in c.err_lines)
