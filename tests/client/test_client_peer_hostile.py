"""Hostile downloaders against a real client's peer file server."""
import os
import socket
import time

import pytest

import harness


@pytest.fixture
def peer(server, clients, tmp_path):
    """A connected client `owner` with one published file; returns it with
    its peer address (taken from LIST_USERS, as any downloader would)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "pub.txt").write_text("public\n")
    (tmp_path / "private.txt").write_text("private\n")
    c = clients(server.port)
    c.do("REGISTER owner", "c> REGISTER OK")
    c.do("CONNECT owner", "c> CONNECT OK")
    c.do("PUBLISH %s shared" % (shared / "pub.txt"), "c> PUBLISH OK")
    assert harness.code(server.port, "REGISTER", "probe") == 0
    assert harness.code(server.port, "CONNECT", "probe", "40000") == 0
    fields = harness.request(server.port, "LIST_USERS", "probe")[1]
    i = fields.index("owner")
    c.addr = ("127.0.0.1", int(fields[i + 2]))
    c.dir = tmp_path
    return c


def get_file(addr, payload, timeout=10):
    """Send raw bytes to the peer server; everything it answers."""
    return harness.exchange(addr[1], payload, host=addr[0], timeout=timeout)


def test_published_file_is_served(peer):
    path = str(peer.dir / "shared" / "pub.txt")
    assert get_file(peer.addr, harness.encode("GET_FILE", path)) == b"\x007\x00public\n"


@pytest.mark.parametrize("remote", [
    "/etc/passwd", "/etc/shadow", "{d}/private.txt", "{d}/shared/../private.txt",
    "{d}/shared/./pub.txt", "{d}/shared//pub.txt", "../private.txt", "shared/pub.txt",
    "pub.txt", "", "/",
])
def test_traversal_is_refused(peer, remote):
    payload = harness.encode("GET_FILE", remote.format(d=peer.dir))
    assert get_file(peer.addr, payload) == b"\x01"


def test_symlink_swapped_in_after_publishing_is_refused(peer):
    pub = peer.dir / "shared" / "pub.txt"
    os.unlink(pub)
    os.symlink("/etc/passwd", pub)
    assert get_file(peer.addr, harness.encode("GET_FILE", str(pub))) == b"\x01"


def test_directory_swapped_in_is_refused(peer):
    pub = peer.dir / "shared" / "pub.txt"
    os.unlink(pub)
    os.mkdir(pub)
    assert get_file(peer.addr, harness.encode("GET_FILE", str(pub))) == b"\x01"


def test_oversize_path_and_garbage(peer):
    assert get_file(peer.addr, harness.encode("GET_FILE", "/" + "a" * 300)) == b"\x02"
    assert get_file(peer.addr, b"\xff" * 64 + b"\x00") == b""
    assert get_file(peer.addr, b"PUT_FILE\x00/x\x00") == b""


def test_stalled_and_vanished_downloaders_do_not_block_others(peer):
    path = str(peer.dir / "shared" / "pub.txt")
    stalled = []
    try:
        for _ in range(20):
            s = socket.create_connection(peer.addr)
            s.sendall(b"GET_FI")                  # and nothing more
            stalled.append(s)
        for _ in range(20):
            with socket.create_connection(peer.addr) as s:
                s.sendall(b"GET_FILE\x00/et")     # then vanish
        for _ in range(5):
            start = time.monotonic()
            assert get_file(peer.addr, harness.encode("GET_FILE", path)) == b"\x007\x00public\n"
            assert time.monotonic() - start < 2
    finally:
        for s in stalled:
            s.close()
    # The client is still fine for its user.
    peer.do("LIST_CONTENT owner", "c> LIST_CONTENT OK")


def test_downloader_that_never_reads(peer):
    big = peer.dir / "shared" / "big.bin"
    big.write_bytes(os.urandom(8 << 20))
    peer.do("PUBLISH %s big" % big, "c> PUBLISH OK")
    with socket.create_connection(peer.addr) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(harness.encode("GET_FILE", str(big)))
        assert s.recv(1) == b"\x00"           # the transfer has begun; now unread
        path = str(peer.dir / "shared" / "pub.txt")
        assert get_file(peer.addr, harness.encode("GET_FILE", path)) == b"\x007\x00public\n"


def test_after_disconnect_nothing_is_served(peer):
    peer.do("DISCONNECT owner", "c> DISCONNECT OK")
    with pytest.raises(OSError):
        socket.create_connection(peer.addr, timeout=2).close()
