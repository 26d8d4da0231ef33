"""GET_FILE between real clients: exact bytes, concurrency, refusals, failures."""
import hashlib
import os
import socket
import time

import pytest

from client_lib import start_connected
from stubs import registered_peer


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def owner(server, clients, tmp_path):
    """alice, connected, with a published 20 MB random file and a small one."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 << 20))
    small = tmp_path / "small.txt"
    small.write_text("hello peer\n")
    c = start_connected(clients, server.port, "alice")
    c.do("PUBLISH %s a big random file" % big, "c> PUBLISH OK")
    c.do("PUBLISH %s" % small, "c> PUBLISH OK")
    c.big, c.small = big, small
    return c


@pytest.fixture
def downloader(server, clients):
    return start_connected(clients, server.port, "bob")


def test_20mb_binary_arrives_byte_identical(owner, downloader, tmp_path):
    target = tmp_path / "copy.bin"
    downloader.do("GET_FILE alice %s %s" % (owner.big, target), "c> GET_FILE OK", timeout=60)
    assert digest(target) == digest(owner.big)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_empty_file(owner, downloader, tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    owner.do("PUBLISH %s nothing" % empty, "c> PUBLISH OK")
    target = tmp_path / "empty.copy"
    downloader.do("GET_FILE alice %s %s" % (empty, target), "c> GET_FILE OK")
    assert target.read_bytes() == b""


def test_two_downloads_at_once(server, owner, downloader, clients, tmp_path):
    second = clients(server.port)
    second.do("REGISTER carol", "c> REGISTER OK")
    second.do("CONNECT carol", "c> CONNECT OK")
    t1, t2 = tmp_path / "one.bin", tmp_path / "two.bin"
    n1, n2 = len(downloader.lines), len(second.lines)
    downloader.send("GET_FILE alice %s %s" % (owner.big, t1))
    second.send("GET_FILE alice %s %s" % (owner.big, t2))
    downloader.wait_line("^c> GET_FILE OK$", timeout=60, start=n1)
    second.wait_line("^c> GET_FILE OK$", timeout=60, start=n2)
    assert digest(t1) == digest(t2) == digest(owner.big)


def test_unpublished_and_system_files_are_refused(owner, downloader, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not published")
    for remote in (secret, "/etc/passwd", "%s/../secret.txt" % tmp_path, "relative.txt"):
        target = tmp_path / "stolen"
        downloader.do("GET_FILE alice %s %s" % (remote, target),
                      "c> GET_FILE FAIL, FILE NOT EXIST")
        assert not target.exists()


def test_deleted_file_is_refused(owner, downloader, tmp_path):
    owner.do("DELETE %s" % owner.small, "c> DELETE OK")
    target = tmp_path / "after_delete"
    downloader.do("GET_FILE alice %s %s" % (owner.small, target),
                  "c> GET_FILE FAIL, FILE NOT EXIST")
    assert not target.exists()


def test_published_file_removed_from_disk_is_refused(owner, downloader, tmp_path):
    os.unlink(owner.small)
    downloader.do("GET_FILE alice %s %s" % (owner.small, tmp_path / "x"),
                  "c> GET_FILE FAIL, FILE NOT EXIST")


def test_unknown_owner_and_not_connected_fail(server, owner, downloader, clients, tmp_path):
    downloader.do("GET_FILE nobody /x %s" % (tmp_path / "x"), "c> GET_FILE FAIL")
    loner = clients(server.port)
    loner.do("GET_FILE alice %s %s" % (owner.small, tmp_path / "y"), "c> GET_FILE FAIL")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_files_published_before_reconnect_are_served(owner, downloader, tmp_path):
    owner.do("DISCONNECT alice", "c> DISCONNECT OK")
    owner.do("CONNECT alice", "c> CONNECT OK")
    target = tmp_path / "again.txt"
    downloader.do("GET_FILE alice %s %s" % (owner.small, target), "c> GET_FILE OK")
    assert target.read_text() == "hello peer\n"


def test_owner_killed_mid_transfer_leaves_no_partial_file(server, downloader, tmp_path):
    """The owner announces a size, sends part of it and vanishes."""
    def short_sender(conn):
        conn.sendall(b"\x00" + b"1000000\x00" + b"z" * 300000)
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    peer = registered_peer(server.port, "flaky", short_sender)
    target = tmp_path / "partial.bin"
    downloader.do("GET_FILE flaky /data/file %s" % target, "c> GET_FILE FAIL")
    peer.close()
    peer.thread.join(5)              # the sender is done and its connection reset
    assert list(tmp_path.iterdir()) == []


def test_owner_process_killed_mid_transfer(server, clients, downloader, tmp_path):
    """kill -9 of a real owner while it streams a file to a slow reader."""
    big = tmp_path / "huge.bin"
    with open(big, "wb") as f:
        f.truncate(256 << 20)            # sparse: cheap to make, slow enough to send
    owner = start_connected(clients, server.port, "dave")
    owner.do("PUBLISH %s sparse" % big, "c> PUBLISH OK")
    target = tmp_path / "huge.copy"
    start = len(downloader.lines)
    downloader.send("GET_FILE dave %s %s" % (big, target))
    # Wait until the download has begun, then kill the owner outright.
    deadline = time.monotonic() + 20
    while not any(p.name.endswith(".part") and p.stat().st_size > 0 for p in tmp_path.iterdir()):
        if downloader.lines[start:]:
            pytest.skip("transfer finished before the owner could be killed")
        assert time.monotonic() < deadline
        time.sleep(0.001)
    owner.kill()
    m = downloader.wait_line("^c> GET_FILE (OK|FAIL)$", timeout=30, start=start)
    if m.group(1) == "OK":
        pytest.skip("transfer finished before the owner died")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.bin"]
