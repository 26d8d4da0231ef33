"""Attacks on a real client: files published in its user's name by someone else,
slow and flooding downloaders, a peer server that cannot start threads, hostile
peers and index servers, a directory swapped during the open, spoofing names.
Every part is real (index server, clients); the attackers are this process."""
import os
import re
import resource
import socket
import stat
import subprocess
import time

import pytest

import harness
from client_lib import CLIENT, peer_addr, start_connected
from stubs import Listener, read_request, registered_peer


def get(addr, path, timeout=10):
    """One raw GET_FILE; everything the peer answered."""
    return harness.exchange(addr[1], harness.encode("GET_FILE", path), host=addr[0],
                            timeout=timeout)


@pytest.fixture
def files(tmp_path):
    """A file to publish and a secret that never is."""
    (tmp_path / "pub.txt").write_text("public\n")
    (tmp_path / "secret.txt").write_text("SECRET\n")
    return tmp_path / "pub.txt", tmp_path / "secret.txt"


def inject(server, user, *paths, disconnect=True):
    """Publish paths in `user`'s name, as anyone can for a classic user
    (the clients below run with --classic)."""
    harness.code(server.port, "CONNECT", user, "40001")      # 2 if she is online
    for p in paths:
        assert harness.code(server.port, "PUBLISH", user, str(p), "x") == 0
    if disconnect:
        assert harness.code(server.port, "DISCONNECT", user) == 0


# --- 1. only what this client published ---------------------------------------

def test_injected_publish_offline_is_never_served(server, clients, files, config_home):
    pub, secret = files
    c = clients(server.port, "--classic")
    c.do("REGISTER alice", "c> REGISTER OK")
    c.do("CONNECT alice", "c> CONNECT OK")
    c.do("PUBLISH %s mine" % pub, "c> PUBLISH OK")
    assert c.finish() == 0                  # QUIT: alice goes offline
    record = [p for p in (config_home / "peerdex").iterdir() if p.name.endswith(".json")]
    assert len(record) == 1
    assert stat.S_IMODE(record[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((config_home / "peerdex").stat().st_mode) == 0o700

    inject(server, "alice", secret, "/etc/passwd")
    c = clients(server.port, "--classic")
    c.do("CONNECT alice", "c> CONNECT OK")
    addr = peer_addr(server, "alice")
    assert get(addr, str(secret)) == b"\x01"
    assert get(addr, "/etc/passwd") == b"\x01"
    assert get(addr, str(pub)) == b"\x007\x00public\n"     # from the record
    c.do("LIST_CONTENT alice", "c> LIST_CONTENT OK")
    assert any("not serving %s" % secret in l for l in c.err_lines), c.err_lines
    assert c.finish() == 0


def test_injected_publish_online_is_never_served(server, clients, files):
    pub, secret = files
    c = clients(server.port, "--classic")
    c.do("REGISTER alice", "c> REGISTER OK")
    c.do("CONNECT alice", "c> CONNECT OK")
    c.do("PUBLISH %s mine" % pub, "c> PUBLISH OK")
    addr = peer_addr(server, "alice")
    inject(server, "alice", secret, "/etc/passwd", disconnect=False)
    assert get(addr, str(secret)) == b"\x01"
    # Disconnect her behind her back; she connects again.
    assert harness.code(server.port, "DISCONNECT", "alice") == 0
    c.do("CONNECT alice", "c> CONNECT OK")
    addr = peer_addr(server, "alice")
    assert get(addr, str(secret)) == b"\x01"
    assert get(addr, "/etc/passwd") == b"\x01"
    assert get(addr, str(pub)) == b"\x007\x00public\n"
    # Withdrawn by someone else: no longer served after the next CONNECT.
    assert harness.code(server.port, "DELETE", "alice", str(pub)) == 0
    assert harness.code(server.port, "DISCONNECT", "alice") == 0
    c.do("CONNECT alice", "c> CONNECT OK")
    assert get(peer_addr(server, "alice"), str(pub)) == b"\x01"
    assert c.finish() == 0


def test_injection_refused_for_an_authenticated_user(server, clients, files):
    """With the AUTH extension (our client and server), nobody else can act
    as alice at all: the forged CONNECT, PUBLISH and DISCONNECT are refused
    and alice's session and files stay as they were."""
    pub, secret = files
    c = clients(server.port)
    c.do("REGISTER alice", "c> REGISTER OK")
    c.do("CONNECT alice", "c> CONNECT OK")
    c.do("PUBLISH %s mine" % pub, "c> PUBLISH OK")
    assert harness.code(server.port, "CONNECT", "alice", "40001") == 3
    assert harness.code(server.port, "PUBLISH", "alice", str(secret), "x") == 4
    assert harness.code(server.port, "DISCONNECT", "alice") == 3
    c.do("LIST_CONTENT alice", "c> LIST_CONTENT OK")
    c.wait_line(r"^\t%s$" % re.escape(str(pub)), start=len(c.lines) - 1)
    assert not any(str(secret) in l for l in c.lines)
    c.do("LIST_USERS", "c> LIST_USERS OK")
    assert c.finish() == 0


# --- 2. the peer server under load and attack ---------------------------------

@pytest.fixture
def alice(server, clients, files):
    c = clients(server.port)
    c.do("REGISTER alice", "c> REGISTER OK")
    c.do("CONNECT alice", "c> CONNECT OK")
    c.do("PUBLISH %s mine" % files[0], "c> PUBLISH OK")
    c.pub = files[0]
    c.addr = peer_addr(server, "alice")
    return c


def threads_of(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def test_1000_stalled_connections_do_not_stop_an_honest_download(server, clients, alice,
                                                                 tmp_path):
    bob = clients(server.port)
    bob.do("REGISTER bob", "c> REGISTER OK")
    bob.do("CONNECT bob", "c> CONNECT OK")
    stalled = []
    try:
        for _ in range(1000):
            s = socket.create_connection(alice.addr)
            s.sendall(b"GET_FI")
            stalled.append(s)
        assert threads_of(alice.pid) < 20
        start = time.monotonic()
        bob.do("GET_FILE alice %s %s" % (alice.pub, tmp_path / "copy"), "c> GET_FILE OK",
               timeout=5)
        assert time.monotonic() - start < 3
        assert (tmp_path / "copy").read_text() == "public\n"
    finally:
        for s in stalled:
            s.close()


def test_past_the_per_ip_cap_code_2(alice, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 << 20))
    alice.do("PUBLISH %s big" % big, "c> PUBLISH OK")
    readers = []
    try:
        for _ in range(8):                  # 8 transfers from one IP: the cap
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(alice.addr)
            s.sendall(harness.encode("GET_FILE", str(big)))
            assert s.recv(1) == b"\x00"
            readers.append(s)
        assert get(alice.addr, str(alice.pub)) == b"\x02"
    finally:
        for s in readers:
            s.close()
    deadline = time.monotonic() + 5         # slots come back as transfers end
    while get(alice.addr, str(alice.pub)) != b"\x007\x00public\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def vm_size(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmSize:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024


def test_thread_start_failure_keeps_the_peer_server_alive(alice):
    # No room for one more thread stack: starting a transfer thread fails.
    soft, hard = resource.prlimit(alice.pid, resource.RLIMIT_AS)
    resource.prlimit(alice.pid, resource.RLIMIT_AS, (vm_size(alice.pid) + (2 << 20), hard))
    try:
        answers = [get(alice.addr, str(alice.pub)) for _ in range(5)]
    finally:
        resource.prlimit(alice.pid, resource.RLIMIT_AS, (soft, hard))
    assert answers == [b"\x02"] * 5
    alice.wait_line("cannot start a transfer", stderr=True)
    assert get(alice.addr, str(alice.pub)) == b"\x007\x00public\n"
    alice.do("LIST_CONTENT alice", "c> LIST_CONTENT OK")


# --- 3. hostile peers and index servers against the downloader ----------------

def trickle(head, byte=b"x", every=0.5, count=60):
    def behave(conn):
        conn.sendall(head)
        for _ in range(count):
            time.sleep(every)
            conn.sendall(byte)
    return behave


@pytest.fixture
def evil(server):
    """Register an evil peer on the real index server; yields start(behave)."""
    peers = []

    def start(behave, name="evil"):
        p = registered_peer(server.port, name, behave)
        peers.append(p)
        return p

    yield start
    for p in peers:
        p.close()


@pytest.fixture
def bob(server, clients):
    return start_connected(clients, server.port, "bob")


def assert_failed_cleanly(c, target, reason):
    """A FAIL line, the reason on stderr, no traceback, nothing left."""
    c.wait_line(reason, stderr=True)
    assert not any("Traceback" in l for l in c.err_lines), c.err_lines
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".part")] == []
    c.do("LIST_USERS", "c> LIST_USERS OK")          # and the client goes on


@pytest.mark.parametrize("behave,reason", [
    (trickle(b"\x00" + b"1000000000000000\x00"), "bytes free"),
    (lambda conn: conn.sendall(b"\x0010\x00" + b"2014-12-17 " + b"0123456789"),
     "more bytes than"),
    (lambda conn: conn.sendall(b"\x0010\x000123456789X"), "more bytes than"),
    (lambda conn: conn.sendall("\x00\u00b2\x00ab".encode()), "bad size"),
    (lambda conn: conn.sendall(b"\x00-1\x00"), "bad size"),
    (lambda conn: conn.sendall(b"\x00" + b"9" * 30 + b"\x00"), "bad size"),
    (lambda conn: conn.sendall(b"\x07"), "unexpected reply b'\\\\x07'"),
], ids=["huge-size-trickle", "date-prepended", "extra-byte", "superscript-two",
        "negative", "30-digit-size", "bad-code"])
def test_evil_peer_gives_a_fail_line(evil, bob, tmp_path, behave, reason):
    evil(behave)
    target = tmp_path / "got"
    start = time.monotonic()
    bob.do("GET_FILE evil /x %s" % target, "c> GET_FILE FAIL", timeout=8)
    assert time.monotonic() - start < 5
    assert_failed_cleanly(bob, target, reason)


class EvilIndex(Listener):
    """A stand-in index server that answers every request 0, and LIST_USERS
    with one user `evil` at the given IP and port text."""

    def __init__(self, ip, port):
        self.users = harness.encode("1", "evil", ip, port)
        super().__init__()

    def serve(self, conn):
        with conn:
            conn.settimeout(5)
            op = read_request(conn, lambda op: 2 if op == "EXTENSIONS" else 3).split(b"\0")[0]
            if op == b"LIST_USERS":
                conn.sendall(b"\x00" + self.users)
            elif op == b"LIST_CONTENT":
                conn.sendall(b"\x000\x00")
            else:
                conn.sendall(b"\x00")


@pytest.mark.parametrize("ip,port,reason", [
    ("127.0.0.1", "http", "bad port"),
    ("127.0.0.1", "\u00b2", "bad port"),
    ("127.0.0.1", "0", "bad port"),
    ("127.0.0.1", "65536", "bad port"),
    ("localhost", "1", "bad IP address"),
])
@pytest.mark.python_only
def test_bad_owner_address_from_the_index_gives_a_fail_line(clients, tmp_path, ip, port,
                                                             reason):
    index = EvilIndex(ip, port)
    c = clients(index.port)
    c.do("CONNECT bob", "c> CONNECT OK")
    target = tmp_path / "got"
    c.do("GET_FILE evil /x %s" % target, "c> GET_FILE FAIL")
    assert_failed_cleanly(c, target, reason)
    index.sock.close()


def test_ten_second_deadlines(server, clients, evil, alice, tmp_path):
    """All at once, as each waits 10 s: a request trickled to alice's peer
    server is dropped 10 s after accept; downloads from a peer that stalls and
    from one that trickles fail after 10 s; transfers to downloaders that stop
    reading are dropped after 10 s without progress, freeing their slots."""
    evil(trickle(b"\x00100\x000123456789", every=30), name="stall")
    evil(trickle(b"\x001000\x00", every=0.5), name="slow")
    got1, got2 = tmp_path / "got1", tmp_path / "got2"
    b1, b2 = clients(server.port), clients(server.port)
    for name, c in (("b1", b1), ("b2", b2)):
        c.do("REGISTER %s" % name, "c> REGISTER OK")
        c.do("CONNECT %s" % name, "c> CONNECT OK")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 << 20))
    alice.do("PUBLISH %s big" % big, "c> PUBLISH OK")
    readers = []
    for _ in range(8):                      # fill the per-IP cap, then read nothing
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(alice.addr)
        s.sendall(harness.encode("GET_FILE", str(big)))
        readers.append(s)
    try:
        start = time.monotonic()
        b1.send("GET_FILE stall /x %s" % got1)
        b2.send("GET_FILE slow /x %s" % got2)
        with socket.create_connection(alice.addr) as s:
            request = harness.encode("GET_FILE", "/" + "a" * 200)
            s.settimeout(1)
            answer = b""
            for byte in request:
                try:
                    s.sendall(bytes([byte]))
                    chunk = s.recv(16)
                    answer += chunk
                    if not chunk:
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
                assert time.monotonic() - start < 15
            dropped = time.monotonic() - start
        assert 9 < dropped < 12 and answer in (b"", b"\x02"), (dropped, answer)
        b1.wait_line("^c> GET_FILE FAIL$", timeout=15)
        b2.wait_line("^c> GET_FILE FAIL$", timeout=15)
        assert time.monotonic() - start < 14
        assert_failed_cleanly(b1, got1, "nothing received from the peer for 10 s")
        assert_failed_cleanly(b2, got2, "too slow")
        # The stalled transfers are gone by now: their slots serve again.
        deadline = time.monotonic() + 4
        while get(alice.addr, str(alice.pub)) != b"\x007\x00public\n":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        for s in readers:
            s.close()


# --- 4. the directory race --------------------------------------------------

SWAPPER = r"""
import os, sys
os.chdir(sys.argv[1])
while True:
    os.rename("dir", "dir.real"); os.symlink("decoy", "dir")      # a symlink on the way
    os.unlink("dir"); os.rename("dir.real", "dir")
    os.rename("dir", "dir.real"); os.rename("decoy", "dir")       # another directory
    os.rename("dir", "decoy"); os.rename("dir.real", "dir")
"""


@pytest.mark.alone      # the swapper keeps a core busy for as long as the 3,000 GETs take
def test_directory_swap_race_serves_nothing_unpublished(server, clients, tmp_path):
    race = tmp_path / "race"
    (race / "dir").mkdir(parents=True)
    (race / "decoy").mkdir()
    (race / "dir" / "f.txt").write_text("public\n")
    (race / "decoy" / "f.txt").write_text("SECRET\n")
    c = clients(server.port)
    c.do("REGISTER alice", "c> REGISTER OK")
    c.do("CONNECT alice", "c> CONNECT OK")
    c.do("PUBLISH %s f" % (race / "dir" / "f.txt"), "c> PUBLISH OK")
    addr = peer_addr(server, "alice")
    swapper = harness.Process([harness.PYTHON, "-c", SWAPPER, str(race)])
    counts = {}
    try:
        for _ in range(3000):
            answer = get(addr, str(race / "dir" / "f.txt"))
            counts[answer] = counts.get(answer, 0) + 1
    finally:
        swapper.kill()
    assert set(counts) <= {b"\x007\x00public\n", b"\x01"}, counts
    assert counts.get(b"\x01", 0) > 0, counts        # the swaps did happen


# --- 6., 7. display spoofing, a closed pipe -------------------------------------

def test_spoofing_characters_are_escaped(server, clients):
    name, path = "ev\u202eil\u009b", "/home/evil/\u202efdp.exe"
    assert harness.code(server.port, "REGISTER", name) == 0
    assert harness.code(server.port, "CONNECT", name, "40002") == 0
    assert harness.code(server.port, "PUBLISH", name, path, "d") == 0
    c = clients(server.port)
    c.do("REGISTER plain", "c> REGISTER OK")
    c.do("CONNECT plain", "c> CONNECT OK")
    c.do("LIST_USERS", "c> LIST_USERS OK")
    c.do("LIST_CONTENT %s" % name, "c> LIST_CONTENT OK")
    assert c.finish() == 0
    out = "\n".join(c.lines)
    assert "\u202e" not in out and "\u009b" not in out
    assert "\tev\\u202eil\\u009b 127.0.0.1 40002" in c.lines
    assert "\t/home/evil/\\u202efdp.exe" in c.lines
    # The server console escapes them too.
    server.wait_line(r"^s> OPERATION REGISTER FROM ev\\u202eil\\u009b$")
    assert not any("\u202e" in l or "\u009b" in l for l in server.lines)


def test_output_closed_early_is_no_traceback(server):
    client = subprocess.Popen([harness.PYTHON, CLIENT, "-s", "127.0.0.1", "-p",
                               str(server.port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-1"], stdin=client.stdout, stdout=subprocess.PIPE)
    client.stdout.close()               # only head reads it now
    try:
        _, err = client.communicate(b"REGISTER h\nCONNECT h\n" + b"HELP\n" * 2000,
                                    timeout=20)
        out, _ = head.communicate(timeout=20)
    finally:
        for p in (client, head):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert out == b"c> REGISTER OK\n"
    assert client.returncode == 1 and b"Traceback" not in err, err
    # It disconnected its user on the way out (h is an authenticated user:
    # another user looks).
    assert harness.code(server.port, "REGISTER", "w") == 0
    assert harness.code(server.port, "CONNECT", "w", "40000") == 0
    assert harness.request(server.port, "LIST_USERS", "w")[1] == ["1", "w", "127.0.0.1", "40000"]
