"""The state directory (-d): state survives a stop and a kill -9, a clean
stop replays nothing, compaction, torn tails and damage, --dump, -S always,
and the disk budget for undelivered log entries."""
import glob
import os
import subprocess

import harness
from durable_lib import dump, log_env

SERVER = os.path.join(harness.BIN, "server")


def setup_alice(srv):
    assert srv.request("REGISTER", "alice")[0] == 0
    assert srv.request("CONNECT", "alice", "4000")[0] == 0
    assert srv.request("PUBLISH", "alice", "/a.txt", "first file")[0] == 0
    assert srv.request("REGISTER", "bob")[0] == 0


def test_clean_stop_keeps_state_and_replays_nothing(make_server, tmp_path):
    state = tmp_path / "state"
    srv = make_server("-d", str(state))
    setup_alice(srv)
    assert srv.stop() == 0
    srv = make_server("-d", str(state))
    srv.wait_line(r"2 users, 1 files .*, 0 journal records replayed", stderr=True)
    assert srv.request("LIST_USERS", "alice") == (0, ["1", "alice", "127.0.0.1", "4000"])
    assert srv.request("LIST_CONTENT", "alice", "alice") == (0, ["1", "/a.txt"])
    assert srv.request("REGISTER", "bob")[0] == 1      # the old names stay taken


def test_kill9_keeps_state(make_server, tmp_path):
    state = tmp_path / "state"
    srv = make_server("-d", str(state))
    setup_alice(srv)
    assert srv.request("DELETE", "alice", "/nope")[0] == 3
    srv.kill()
    srv = make_server("-d", str(state))
    srv.wait_line(r"5 journal records replayed", stderr=True)
    assert srv.request("LIST_CONTENT", "alice", "bob") == (0, ["0"])
    assert dump(state) == {"alice": ("127.0.0.1", 4000, {"/a.txt": "first file"}),
                           "bob": (None, 0, {})}


def test_without_d_nothing_is_kept(make_server, tmp_path):
    srv = make_server()
    setup_alice(srv)
    srv.stop()
    srv = make_server()
    assert srv.request("REGISTER", "alice")[0] == 0


def size_of(path):
    """A file's size; 0 when a compaction has just removed it."""
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def test_compaction_snapshot_and_new_journal(make_server, tmp_path):
    state = tmp_path / "state"
    srv = make_server("-d", str(state), "-C", "2000")
    assert srv.request("REGISTER", "u")[0] == 0
    assert srv.request("CONNECT", "u", "5")[0] == 0
    for i in range(200):
        assert srv.request("PUBLISH", "u", "/f%d" % i, "d")[0] == 0
    for i in range(0, 200, 2):
        assert srv.request("DELETE", "u", "/f%d" % i)[0] == 0
    # Compactions run beside the operations (in the sync thread): wait for
    # the last one to end (slow under sanitizers on a loaded machine).
    for _ in range(400):
        sizes = [size_of(s) for s in glob.glob(str(state / "journal.*"))]
        done = all(size < 2000 + 200 for size in sizes)
        if done and os.path.exists(state / "snapshot"):
            break
        harness.time.sleep(0.05)
    assert os.path.exists(state / "snapshot")
    assert all(size < 2000 + 200 for size in sizes), sizes
    srv.kill()
    want = {"u": ("127.0.0.1", 5, {"/f%d" % i: "d" for i in range(1, 200, 2)})}
    assert dump(state) == want
    srv = make_server("-d", str(state))
    assert srv.request("LIST_CONTENT", "u", "u")[1][0] == "100"


def last_segment(state):
    return sorted(glob.glob(str(state / "journal.*")))[-1]


def test_torn_tail_at_every_offset_of_the_last_record(make_server, tmp_path):
    state = tmp_path / "state"
    srv = make_server("-d", str(state))
    setup_alice(srv)
    seg = last_segment(state)
    before = os.path.getsize(seg)
    assert srv.request("PUBLISH", "alice", "/b.txt", "last")[0] == 0
    srv.kill()
    with open(seg, "rb") as f:
        whole = f.read()
    after = len(whole)
    assert after > before
    want = dump(state)
    del want["alice"][2]["/b.txt"]
    for cut in range(before, after):
        with open(seg, "wb") as f:
            f.write(whole[:cut])
        srv = make_server("-d", str(state))
        if cut > before:
            srv.wait_line(r"cut a torn tail of %d bytes at offset %d" % (cut - before, before),
                          stderr=True)
        srv.kill()
        assert os.path.getsize(seg) == before
        assert dump(state) == want


def test_flipped_byte_mid_journal_refuses_with_file_and_offset(make_server, tmp_path):
    state = tmp_path / "state"
    srv = make_server("-d", str(state))
    setup_alice(srv)
    srv.kill()
    seg = last_segment(state)
    with open(seg, "r+b") as f:
        data = bytearray(f.read())
        data[30] ^= 0x20            # inside the first record
        f.seek(0)
        f.write(data)
    out = subprocess.run([SERVER, "-p", "0", "-d", str(state)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1
    assert "%s: damaged record at offset 0" % seg in out.stderr
    assert os.path.getsize(seg) == len(data)       # nothing was cut


def test_dump_lists_users_connections_and_files(make_server, tmp_path):
    state = tmp_path / "state"
    srv = make_server("-d", str(state))
    setup_alice(srv)
    out = subprocess.run([SERVER, "-d", str(state), "--dump"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0
    assert "user alice connected 127.0.0.1 4000\n  file /a.txt first file\n" in out.stdout
    assert "user bob not-connected\n" in out.stdout
    assert srv.request("REGISTER", "carol")[0] == 0    # the server went on


def test_sync_always(make_server, tmp_path):
    state = tmp_path / "state"
    srv = make_server("-d", str(state), "-S", "always")
    srv.wait_line(r"sync always", stderr=True)
    setup_alice(srv)
    srv.kill()
    assert set(dump(state)) == {"alice", "bob"}


def test_bad_sync_mode_is_refused(tmp_path):
    out = subprocess.run([SERVER, "-p", "0", "-d", str(tmp_path), "-S", "never"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "bad sync mode 'never'" in out.stderr


def test_one_server_per_directory(make_server, tmp_path):
    state = tmp_path / "state"
    make_server("-d", str(state))
    out = subprocess.run([SERVER, "-p", "0", "-d", str(state)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and "another server uses this directory" in out.stderr


def test_log_budget_refuses_then_recovers(make_server, logs, tmp_path):
    """With the log server away, operations are refused only once the journal
    it has not got passes the budget; said once; accepted again once it is back."""
    state = tmp_path / "state"
    log_port = harness.fixed_port()         # the log server comes later
    srv = make_server("-d", str(state), "-B", "4096", env=log_env(log_port))
    codes = [srv.request("REGISTER", "user%03d" % i)[0] for i in range(300)]
    assert codes[0] == 0
    first_refused = codes.index(2)
    assert first_refused > 4096 // 100
    assert all(c == 2 for c in codes[first_refused:])
    srv.wait_line(r"refusing operations until it catches up", stderr=True)
    assert sum("refusing operations" in line for line in srv.err_lines) == 1
    log = logs(tmp_path / "operations.log", log_port)
    srv.wait_line(r"caught up|reachable again", stderr=True, timeout=30)
    tries = 0
    for tries in range(300):
        if srv.request("REGISTER", "late%d" % tries)[0] == 0:
            break
        harness.time.sleep(0.1)
    assert tries < 299
    for _ in range(300):
        with open(log.path) as f:
            lines = f.read().splitlines()
        if len(lines) > first_refused:
            break
        harness.time.sleep(0.1)
    assert lines[:first_refused] == ["user%03d REGISTER 17/12/2014 13:20:35" % i
                                     for i in range(first_refused)]


def test_state_files_are_private(make_server, tmp_path):
    """Names, addresses and paths: the state directory is 0700, its files 0600
    (as operations.log), after a stop and after a compaction."""
    state = tmp_path / "state"
    srv = make_server("-d", str(state), "-C", "1")
    setup_alice(srv)
    assert srv.stop() == 0
    assert os.stat(state).st_mode & 0o777 == 0o700
    names = os.listdir(state)
    assert names
    for name in names:
        assert os.stat(state / name).st_mode & 0o777 == 0o600, name
