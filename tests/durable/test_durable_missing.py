"""What the state directory must hold: a deleted snapshot or a missing
journal segment stops the start, naming the file and what is lost;
--accept-loss starts without it, saying so and marking it in the operation
log; --dump prints a whole state or fails, also during compactions; and a
removed lock file does not let a second server in."""
import glob
import os
import subprocess
import threading

import harness
from durable_lib import dump, log_env

SERVER = os.path.join(harness.BIN, "server")


def start_fails(state, *extra, env=None):
    """Run a server that must refuse to start; its stderr."""
    out = subprocess.run([SERVER, "-p", "0", "-d", str(state), *extra], capture_output=True,
                         text=True, timeout=30, env=dict(os.environ, **(env or {})))
    assert out.returncode == 1, out.stderr
    return out.stderr


def segments(state):
    return sorted(glob.glob(str(state / "journal.*")))


def test_deleted_snapshot_stops_the_start(make_server, tmp_path):
    state = tmp_path / "state"
    srv = make_server("-d", str(state), "-C", "2000")
    for i in range(221):
        assert srv.request("REGISTER", "u%03d" % i)[0] == 0
    assert srv.stop() == 0          # a final snapshot; the journal it covers goes
    os.remove(state / "snapshot")
    err = start_fails(state)
    assert "missing: snapshot: up to seq 221 (221 users, 0 files" in err
    assert "refusing to start" in err and "--accept-loss" in err
    # The operator takes the loss: said with its size, then a fresh start.
    srv = make_server("-d", str(state), "--accept-loss")
    srv.wait_line(r"started with 2 losses accepted", stderr=True)
    assert srv.request("REGISTER", "u000")[0] == 0      # the loss, as stated
    srv.stop()
    srv = make_server("-d", str(state))                 # nothing missing now
    assert srv.request("REGISTER", "u000")[0] == 1


def test_missing_middle_segment_stops_the_start_and_is_marked_in_the_log(
        make_server, logs, tmp_path):
    state = tmp_path / "state"
    log_port = harness.free_port()
    env = log_env(log_port)
    # No log server yet: the journal keeps every segment for it.
    srv = make_server("-d", str(state), "-C", "1500", env=env)
    # Until compactions (run by the sync thread, slower on a busy machine)
    # have left at least four segments.
    for i in range(5000):
        assert srv.request("REGISTER", "u%04d" % i)[0] == 0
        if i % 20 == 19 and len(segments(state)) >= 4:
            break
    srv.kill()
    segs = segments(state)
    assert len(segs) >= 4, segs
    gone = segs[len(segs) // 2]
    first = int(gone.rsplit(".", 1)[1])
    after = int(segs[len(segs) // 2 + 1].rsplit(".", 1)[1])
    os.remove(gone)
    err = start_fails(state, env=env)
    assert ("missing: journal.%020d: seqs %d to %d (%d operations)"
            % (first, first, after - 1, after - first)) in err
    log = logs(tmp_path / "operations.log", log_port)
    srv = make_server("-d", str(state), "--accept-loss", env=env)
    srv.wait_line(r"losses accepted .*new origin", stderr=True)
    assert srv.request("REGISTER", "late")[0] == 0
    for _ in range(300):
        with open(log.argv[2]) as f:
            lines = f.read().splitlines()
        if any(line.startswith("late REGISTER") for line in lines):
            break
        harness.time.sleep(0.1)
    assert any(line.startswith("- LOSS journal.%020d: seqs %d to %d" % (first, first, after - 1))
               for line in lines), lines
    assert lines[-1].startswith("late REGISTER"), lines
    srv.stop()
    make_server("-d", str(state), env=env)              # nothing missing now


def test_deleted_current_segment_stops_the_start(make_server, tmp_path):
    state = tmp_path / "state"
    srv = make_server("-d", str(state))
    for i in range(5):
        assert srv.request("REGISTER", "u%d" % i)[0] == 0
    srv.kill()
    for seg in segments(state):
        os.remove(seg)
    err = start_fails(state)
    assert "missing: journal.%020d: seqs from 1 on" % 1 in err


def test_dump_during_compactions_is_whole_or_fails(make_server, tmp_path):
    """Users come and go in order while compactions run (u<i> registered,
    then u<i-50> unregistered): every dump that succeeds shows a run of 50
    or 51 consecutive users, never one with a gap."""
    state = tmp_path / "state"
    srv = make_server("-d", str(state), "-C", "1200")
    stop = threading.Event()
    errors = []

    def churn():
        i = 50
        while not stop.is_set():
            codes = [srv.request("REGISTER", "u%d" % i)[0],
                     srv.request("UNREGISTER", "u%d" % (i - 50))[0]]
            if codes != [0, 0]:
                errors.append((i, codes))
            i += 1

    for i in range(50):
        assert srv.request("REGISTER", "u%d" % i)[0] == 0
    t = threading.Thread(target=churn)
    t.start()
    bad, failed = [], 0
    try:
        for _ in range(200):
            out = subprocess.run([SERVER, "-d", str(state), "--dump"], capture_output=True,
                                 text=True, timeout=60)
            if out.returncode != 0:
                failed += 1
                continue
            seen = sorted(int(line.split(" ")[1][1:]) for line in out.stdout.splitlines()
                          if line.startswith("user "))
            if len(seen) not in (50, 51) or seen != list(range(seen[0], seen[0] + len(seen))):
                bad.append(seen)
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert bad == [] and failed < 20, (bad[:3], failed)


def test_removed_lock_file_does_not_let_a_second_server_in(make_server, tmp_path):
    state = tmp_path / "state"
    make_server("-d", str(state))
    if os.path.exists(state / "lock"):
        os.remove(state / "lock")
    err = start_fails(state)
    assert "another server uses this directory" in err
