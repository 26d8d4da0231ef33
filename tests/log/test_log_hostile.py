"""The log server against clients that are hostile or clumsy: malformed
batches, stalled and idle connections, descriptor exhaustion, a second
instance on the same file, forged sequence numbers, and (test_log_key.py)
appends without the key."""
import os
import random
import resource
import select
import socket
import struct
import subprocess
import time

import pytest

import harness
from log_lib import (APPEND, GARBAGE_ARGS, LOG_OK, LOG_REFUSED, RpcConn, call_header,
                     cpu_seconds, mark, open_fds, read_lines, rss_kb, wait_lines, xdr_batch)

DT = "17/12/2014 13:20:35"
SCALE = float(os.environ.get("PEERDEX_HOSTILE_SCALE", "1"))
# Under AddressSanitizer freed memory is held in quarantine, so RSS says
# nothing about leaks there; LeakSanitizer checks each server's exit instead.
RSS_MEANINGFUL = "ASAN_OPTIONS" not in os.environ


def malformed_batches(rng):
    """Calls whose arguments fail to decode, of many shapes; the first kind
    leaked every entry decoded before the bad one."""
    big = [(7, 1, "a" * 200, "PUBLISH", "/" + "p" * 200, DT)] * 1000
    yield xdr_batch(big + [(7, 2, "x" * 257, "REGISTER", "", DT)])    # a 257-byte user
    good = [(7, 1, "alice", "PUBLISH", "/home/alice/a.txt", DT)] * 40
    body = xdr_batch(good)
    yield body[:rng.randrange(4, len(body) - 1)]                # cut short
    yield struct.pack(">I", 4096) + body[4:]                    # more entries than sent
    yield struct.pack(">I", 5000)                               # over the batch limit
    yield struct.pack(">I", 4096) + bytes(rng.randrange(256)    # random entries
                                          for _ in range(rng.randrange(1, 2000)))


def test_malformed_batches_leak_nothing(logs):
    log = logs(port=0)
    rng = random.Random(13)
    conn = RpcConn(log.port)
    assert conn.append([(9, 1, "warm", "REGISTER", "", DT)]) == LOG_OK
    rss0 = rss_kb(log.pid)
    sent = 0
    while sent < 1000:
        for args in malformed_batches(rng):
            accept, _ = conn.call(APPEND, args)
            assert accept == GARBAGE_ARGS
            sent += 1
    # Whole records that are not calls at all close the connection.
    for junk in (b"\0" * 3, b"\xff" * 64, call_header(1, APPEND)[:12]):
        with socket.create_connection(("127.0.0.1", log.port), timeout=5) as s:
            s.sendall(mark(junk))
            assert s.recv(100) == b""
    if RSS_MEANINGFUL:
        assert rss_kb(log.pid) - rss0 < 10 * 1024
    # Nothing of them was written; the server goes on serving.
    assert conn.append([(9, 2, "after", "REGISTER", "", DT)]) == LOG_OK
    assert read_lines(log.path) == ["warm REGISTER " + DT, "after REGISTER " + DT]
    conn.close()
    assert log.stop() == 0          # under ASan, LeakSanitizer checks the exit


def test_a_record_in_many_fragments_is_one_call(logs):
    log = logs(port=0)
    conn = RpcConn(log.port)
    entries = [(5, i + 1, "u%d" % i, "REGISTER", "", DT) for i in range(300)]
    assert conn.append(entries, fragment=1000) == LOG_OK
    assert len(read_lines(log.path)) == 300


def stall(port):
    """A connection that sends a call header and part of a batch, then nothing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    record = call_header(1, APPEND) + xdr_batch([(3, 1, "x" * 200, "REGISTER", "", DT)] * 50)
    s.sendall(struct.pack(">I", LAST_FRAGMENT_BIT | len(record)) + record[:len(record) // 2])
    return s


LAST_FRAGMENT_BIT = 0x80000000


@pytest.mark.alone                      # each entry within 1 s
def test_stalled_connections_hold_no_one_up(logs, logged_server):
    log = logs(port=0)
    stalled = [stall(log.port) for _ in range(3)]
    srv = logged_server(log.port)
    for i in range(40):
        assert harness.code(srv.port, "REGISTER", "s%d" % i) == 0
        sent = time.monotonic()
        assert len(wait_lines(log.path, i + 1, timeout=1)) == i + 1, "entry %d late" % i
        assert time.monotonic() - sent < 1
    for s in stalled:
        s.close()


@pytest.mark.alone                      # its CPU use is measured
def test_idle_connections_are_reaped_at_the_descriptor_limit(logs, logged_server):
    """1,100 idle connections against a log server limited to 1,024
    descriptors: those over the limit are closed at once through the spare
    descriptor, the rest at the deadline (-t 2); no spinning meanwhile; then
    an index server connects and is served."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1300:
        pytest.skip("RLIMIT_NOFILE hard limit %d < 1300" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300), hard))
    socks = []
    try:
        log = logs(port=0, args=("-c", "2000", "-t", "2"),
                   prefix=("prlimit", "--nofile=1024:1024"))
        first = RpcConn(log.port)
        first.nonce()                             # the loop runs: its descriptors are open
        fds = open_fds(log.pid)
        first.close()
        harness.wait_until(lambda: open_fds(log.pid) < fds, what="the first one closed")
        fds0 = open_fds(log.pid)
        cpu0 = cpu_seconds(log.pid)
        start = time.monotonic()
        # Never more than 32 connections the server has neither taken nor
        # refused yet: past its listen backlog (64) the kernel would drop
        # them, and each would wait out a SYN retransmission (1 s, then 3 s).
        closed = select.poll()
        for i in range(1100):
            s = socket.create_connection(("127.0.0.1", log.port), timeout=5)
            socks.append(s)
            closed.register(s, select.POLLIN)       # readable: closed (EOF)
            if i % 32 == 31:
                harness.wait_until(lambda: open_fds(log.pid) - fds0 + len(closed.poll(0))
                                   >= len(socks) - 32, what="connections accepted")
        # The accepts cost CPU in proportion to their number (several times
        # more under the sanitizers); after the last one the server only
        # waits for the deadline: a spinning loop shows there, wall time
        # against CPU time.
        accepted = time.monotonic()
        cpu1 = cpu_seconds(log.pid)
        assert cpu1 - cpu0 < 1100 * 0.0002 / SCALE + 0.05 * (accepted - start), \
            "%.2f s CPU for 1,100 accepts in %.1f s" % (cpu1 - cpu0, accepted - start)
        # Wait for the deadline to pass and every connection to be closed.
        deadline = time.monotonic() + 15
        while open_fds(log.pid) > fds0 and time.monotonic() < deadline:
            time.sleep(0.1)
        idle = time.monotonic() - accepted
        assert open_fds(log.pid) == fds0
        busy = cpu_seconds(log.pid) - cpu1
        print("accepts: %.3f s CPU in %.2f s; idle: %.3f s CPU in %.2f s"
              % (cpu1 - cpu0, accepted - start, busy, idle))
        assert busy < 0.05 * idle + 0.05 / SCALE, "%.2f s CPU in %.1f s idle" % (busy, idle)
        for s in socks:
            s.settimeout(5)
            assert s.recv(10) == b""              # closed by the server
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    srv = logged_server(log.port)
    assert harness.code(srv.port, "REGISTER", "afterwards") == 0
    assert wait_lines(log.path, 1) == ["afterwards REGISTER " + DT]


def test_connections_over_the_cap_are_closed_at_once(logs):
    log = logs(port=0, args=("-c", "2"))
    held = [RpcConn(log.port) for _ in range(2)]
    for c in held:
        assert c.nonce()                          # accepted and served
    with socket.create_connection(("127.0.0.1", log.port), timeout=5) as s:
        assert s.recv(10) == b""
    fds = open_fds(log.pid)
    held[0].close()
    harness.wait_until(lambda: open_fds(log.pid) < fds, what="a slot free")
    assert RpcConn(log.port).append([(4, 1, "room", "REGISTER", "", DT)]) == LOG_OK


def test_a_second_instance_on_the_same_file_changes_nothing(logs, tmp_path):
    log = logs(port=0)
    conn = RpcConn(log.port)
    assert conn.append([(8, i + 1, "u%d" % i, "REGISTER", "", DT) for i in range(5)]) == 0
    files = [log.path, str(log.path) + ".idx"]
    before = [open(f, "rb").read() for f in files]
    binary = os.path.join(harness.BIN, "log_server")
    for port in ("0", str(log.port)):             # a free port, and the busy one
        r = subprocess.run([binary, "-f", str(log.path), "-p", port], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode != 0
        assert "in use by process %d" % log.pid in r.stderr
        assert [open(f, "rb").read() for f in files] == before
    # The first one still writes, and a restart keeps every line.
    assert conn.append([(8, 6, "u5", "REGISTER", "", DT)]) == 0
    assert log.stop() == 0
    logs(path=log.path, port=0).stop()
    assert len(read_lines(log.path)) == 6


def test_files_are_created_private(logs):
    log = logs(port=0)
    assert os.stat(log.path).st_mode & 0o777 == 0o600
    assert os.stat(str(log.path) + ".idx").st_mode & 0o777 == 0o600


def test_forged_sequence_numbers_are_refused(logs):
    """A jump (2^64-1 after 2) would have made every later real entry a
    'duplicate'; it is refused and nothing is written."""
    log = logs(port=0)
    origin = 0x1234ABCD5678EF00
    conn = RpcConn(log.port)
    assert conn.append([(origin, 1, "a", "REGISTER", "", DT),
                        (origin, 2, "b", "REGISTER", "", DT)]) == LOG_OK
    assert conn.append([(origin, 2 ** 64 - 1, "mallory", "REGISTER", "", DT)]) == LOG_REFUSED
    assert conn.append([(origin, 5, "mallory", "REGISTER", "", DT)]) == LOG_REFUSED
    assert conn.append([(0, 1, "mallory", "REGISTER", "", DT)]) == LOG_REFUSED
    assert conn.append([(origin, 3, "c", "REGISTER", "", DT)]) == LOG_OK
    assert read_lines(log.path) == ["a REGISTER " + DT, "b REGISTER " + DT, "c REGISTER " + DT]
    wait_lines(log.path, 3)
    log.wait_line("jumps from seq 2 to 18446744073709551615", stderr=True)


def test_many_origins_stay_bounded(logs):
    """Batches of 4,096 new origins each: the origins kept and the idx stay
    bounded (1,024 origins, at most about four compact idx sizes)."""
    log = logs(port=0)
    conn = RpcConn(log.port)
    rss0 = None
    for call in range(int(20 * SCALE) or 1):
        base = call * 4096 + 1
        assert conn.append([(base + i, 1, "o", "REGISTER", "", DT) for i in range(4096)]) == 0
        if call == 1:
            rss0 = rss_kb(log.pid)
    assert os.path.getsize(str(log.path) + ".idx") <= (4 * 1025 + 64 + 4096) * 76
    if rss0 is not None and RSS_MEANINGFUL:
        assert rss_kb(log.pid) - rss0 < 10 * 1024
    assert log.stop() == 0
