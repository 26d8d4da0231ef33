"""Faults of the disk under the state directory: a failed fdatasync (EIO,
through an LD_PRELOAD shim) is never followed by an OK for a change, and
running out of descriptors when a compaction is due backs off instead of
spinning."""
import os
import resource
import re
import socket
import subprocess
import urllib.request

import harness
from durable_lib import dump

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIM = os.environ.get("PEERDEX_FAILSYNC", os.path.join(ROOT, "build", "tests", "failsync.so"))


def shim_env(flag):
    """The environment that preloads the shim; fdatasync fails while flag exists."""
    if not os.path.exists(SHIM):
        subprocess.run(["make", "-s", "-C", ROOT, os.path.relpath(SHIM, ROOT)], check=True)
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"LD_PRELOAD": SHIM, "FAILSYNC_FLAG": str(flag),
            # A sanitized server must accept a preloaded library before its runtime.
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}


def sync_failed_metric(srv):
    """peerdex_journal_sync_failed from srv's /metrics (started with -H 0)."""
    port = int(srv.wait_line(r"live view at http://127\.0\.0\.1:(\d+)/", stderr=True).group(1))
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        body = r.read().decode("ascii")
    return int(re.search(r"^peerdex_journal_sync_failed (\d)$", body, re.M).group(1))


def setup_alice(srv):
    assert srv.request("REGISTER", "alice")[0] == 0
    assert srv.request("CONNECT", "alice", "4000")[0] == 0


def test_failed_sync_always_is_never_acknowledged(make_server, tmp_path):
    state, flag = tmp_path / "state", tmp_path / "fail"
    srv = make_server("-d", str(state), "-S", "always", "-H", "0", env=shim_env(flag))
    setup_alice(srv)
    assert sync_failed_metric(srv) == 0
    flag.touch()
    # The sync of this REGISTER fails: no OK, nor for any change after it.
    for name in ("bob", "carol", "dave"):
        assert srv.request("REGISTER", name)[0] == 2
    assert srv.request("PUBLISH", "alice", "/a", "d")[0] == 4
    srv.wait_line(r"journal fdatasync failed: Input/output error; operations that change "
                  r"the index are refused", stderr=True)
    # Reads go on.
    assert srv.request("LIST_USERS", "alice") == (0, ["1", "alice", "127.0.0.1", "4000"])
    assert srv.request("LIST_CONTENT", "alice", "alice") == (0, ["0"])
    assert sum("fdatasync failed" in line for line in srv.err_lines) == 1
    assert sync_failed_metric(srv) == 1
    # A restart (the disk healed) recovers from what is on disk.
    flag.unlink()
    assert srv.stop() == 0
    srv.wait_line(r"no final snapshot after a failed sync", stderr=True)
    srv = make_server("-d", str(state), "-S", "always")
    assert srv.request("REGISTER", "erin")[0] == 0
    assert "alice" in dump(state)


def test_failed_sync_batch_stops_acknowledging_changes(make_server, tmp_path):
    state, flag = tmp_path / "state", tmp_path / "fail"
    srv = make_server("-d", str(state), env=shim_env(flag))
    setup_alice(srv)
    flag.touch()
    srv.request("REGISTER", "bob")      # answered before its batch sync (documented)
    srv.wait_line(r"journal fdatasync failed", stderr=True)
    assert srv.request("REGISTER", "carol")[0] == 2
    assert srv.request("DISCONNECT", "alice")[0] == 3
    assert srv.request("LIST_USERS", "alice")[0] == 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# Among parallel tests: a busy machine can only make it print fewer lines in
# its 2.5 s window, never more (the bound is on a spin, not on a reply time).
def test_out_of_descriptors_at_compaction_backs_off(make_server, tmp_path):
    """With -C 1 every operation asks for a compaction; with no descriptor
    left it fails: one line and a wait that grows, not a loop, and it works
    again once descriptors are back."""
    state = tmp_path / "state"
    srv = make_server("-d", str(state), "-C", "1", "-t", "60")
    assert srv.request("REGISTER", "alice")[0] == 0
    # The compaction alice's REGISTER asked for has run (a new segment, a snapshot).
    for _ in range(500):
        if (state / "snapshot").exists() and (state / ("journal.%020d" % 2)).exists():
            break
        harness.time.sleep(0.02)
    before = len(srv.err_lines)
    held = []
    try:
        n0 = fd_count(srv.pid)
        # The held connections take every descriptor the lower limit leaves.
        resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (n0 + 6, n0 + 6))
        for _ in range(6):
            s = socket.create_connection(srv.addr, timeout=10)
            s.sendall(b"REGISTER\0" + harness.DATETIME.encode() + b"\0")
            held.append(s)
        for _ in range(200):
            if fd_count(srv.pid) >= n0 + 6:
                break
            harness.time.sleep(0.02)
        # This operation is journaled (the segment is open) and asks for a
        # compaction, which cannot open a new segment.
        held[0].sendall(b"bob\0")
        assert held[0].recv(1) == b"\0"
        srv.wait_line(r"compaction failed; trying again in 1 s", stderr=True, start=before)
        # Not a wait for correctness: the window in which a spin would print
        # thousands of lines and the back-off prints a few.
        harness.time.sleep(2.5)
        lines = len(srv.err_lines) - before
        assert lines <= 8, srv.err_lines[before:before + 20]
    finally:
        for s in held:
            s.close()
    srv.wait_line(r"compaction works again after \d+ failed tries", stderr=True, timeout=30)
    assert srv.request("REGISTER", "carol")[0] == 0
    srv.kill()
    assert set(dump(state)) == {"alice", "bob", "carol"}
