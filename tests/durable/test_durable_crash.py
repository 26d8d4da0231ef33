"""kill -9 of the index under load: every acknowledged operation is in the
registry and in the operation log exactly once, in order (also when the log
server is killed in the same run, with or without a key); entries resent to a
restarted log server are duplicates, not a jump; replaying the log in its
order gives the result codes the clients got."""
import threading
import time

import pytest

import harness
from durable_lib import Model, dump, log_env, make_key, refusals, stamp, unstamp

THREADS = 8


def thread_ops(t, i):
    """Thread t's i-th round of mixed operations, refused ones included."""
    u, prev = "u%d_%d" % (t, i), "u%d_%d" % (t, i - 1)
    ops = [("REGISTER", u), ("REGISTER", u), ("CONNECT", u, str(40000 + t)),
           ("PUBLISH", u, "/f%d" % i, "file %d" % i), ("PUBLISH", u, "/f%d" % i, "again"),
           ("PUBLISH", u, "/g%d" % i, "gone"), ("DELETE", u, "/g%d" % i),
           ("LIST_USERS", u), ("DELETE", u, "/nope")]
    if i % 2:
        ops.append(("DISCONNECT", u))
    if i % 3 == 2:
        ops.append(("UNREGISTER", prev))
    return ops


def worker(t, port, stop, done):
    """Run rounds until stopped or the server dies; record (k, op, code)."""
    k = t * 10_000_000
    i = 0
    while not stop.is_set():
        for op in thread_ops(t, i):
            k += 1
            try:
                code, _ = harness.request(port, *op, datetime=stamp(k), timeout=5)
            except OSError:
                code = None
            done.append((k, op, code))
            if code is None:
                return          # the server is gone: this one is in doubt
        i += 1


def run_load(port, seconds, during=None, at_least=400):
    """Start the workers; return after `seconds` once they have done
    at_least operations (at most 30 s: sanitizer builds are slow)."""
    stop = threading.Event()
    done = [[] for _ in range(THREADS)]
    threads = [threading.Thread(target=worker, args=(t, port, stop, done[t]))
               for t in range(THREADS)]
    for th in threads:
        th.start()
    if during:
        during()
    time.sleep(seconds)
    deadline = time.monotonic() + 30
    while sum(map(len, done)) < at_least and time.monotonic() < deadline:
        time.sleep(0.1)
    return stop, threads, done


def possible_states(done):
    """The registry states the acknowledged operations allow: each thread's
    own names, with its one operation in doubt applied or not."""
    states = [Model()]
    for ops in done:
        for k, op, code in ops:
            if code is None:
                states = [s for m in states for s in (m, m.copy())]
                for m in states[1::2]:
                    m.apply(op[0], *op[1:])
                continue
            for m in states:
                assert m.apply(op[0], *op[1:]) == code, (k, op, code)
    return [m.as_dump() for m in states]


def log_entries(path):
    """The log file as (k, user, op) in its order."""
    with open(path) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        f = line.split(" ")
        out.append((unstamp(" ".join(f[-2:])), f[0], f[1]))
    return out


def wait_log(path, acked, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        ks = {k for k, _, _ in log_entries(path)}
        if acked <= ks or time.monotonic() > deadline:
            return
        time.sleep(0.1)


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "keyed"])
def test_kill9_under_load_loses_nothing_acknowledged(make_server, logs, tmp_path, keyed):
    """The log server is killed and restarted midway, then both servers are
    killed at once under load and restarted: with or without a key (signed
    batches), no batch is refused and every acknowledged operation is in the
    log once."""
    state, log_path = tmp_path / "state", tmp_path / "operations.log"
    key = make_key(tmp_path / "log.key") if keyed else None
    kflag = ("-k", str(key)) if keyed else ()
    log_port = harness.fixed_port()         # the same port after each restart
    log_servers = [logs(log_path, log_port, key)]
    srv = make_server("-d", str(state), "-C", "200000", *kflag, env=log_env(log_port))

    def bounce():
        time.sleep(0.5)
        log_servers[-1].kill()
        srv.wait_line(r"operation log unreachable", stderr=True, timeout=30)
        log_servers.append(logs(log_path, log_port, key))

    bouncer = threading.Thread(target=bounce)
    stop, threads, done = run_load(srv.port, 1.5, bouncer.start)
    bouncer.join(30)
    log_servers[-1].kill()              # both at once, while the index sends
    srv.kill()
    stop.set()
    for th in threads:
        th.join(30)
    ops = [op for thread in done for op in thread]
    acked = {k for k, _, code in ops if code is not None}
    doubt = {k for k, _, code in ops if code is None}
    assert len(acked) > 200

    # Every acknowledged operation is in the registry, no refused one is.
    assert dump(state) in possible_states(done)

    # The restarted index sends the rest; the log has each one once, in order.
    log_servers.append(logs(log_path, log_port, key))
    restarted = make_server("-d", str(state), *kflag, env=log_env(log_port))
    wait_log(log_path, acked)
    assert restarted.stop() == 0        # it stops once the log has all it sent
    entries = log_entries(log_path)
    ks = [k for k, _, _ in entries]
    assert len(ks) == len(set(ks)), "an entry was logged twice"
    assert acked <= set(ks)
    assert set(ks) <= acked | doubt
    by_k = {k: op for k, op, _ in ops}
    for k, user, op in entries:
        assert (user, op) == (by_k[k][1], by_k[k][0])
    for t in range(THREADS):            # each client's operations in its order
        mine = [k for k in ks if k // 10_000_000 == t]
        assert mine == sorted(mine)
    assert refusals(srv, restarted, *log_servers) == []


def test_entries_resent_after_a_log_restart_are_duplicates(make_server, logs, tmp_path):
    """The log server restarts with its idx intact and so knows the index's
    origin (kept in DIR/origin); an index that lost how far it was
    acknowledged (DIR/outbox damaged: read as 0) resends everything: the log
    server drops what it has as duplicates, refuses nothing, and the index
    goes on from there."""
    state, log_path = tmp_path / "state", tmp_path / "operations.log"
    key = make_key(tmp_path / "log.key")
    log_port = harness.fixed_port()         # the same port after the restart
    log = logs(log_path, log_port, key)
    srv = make_server("-d", str(state), "-k", str(key), env=log_env(log_port))
    for k in range(1, 21):
        assert harness.code(srv.port, "REGISTER", "r%d" % k, datetime=stamp(k)) == 0
    wait_log(log_path, set(range(1, 21)))
    origin = (state / "origin").read_text()
    srv.kill()
    assert log.stop() == 0
    assert any("20 lines written" in line for line in log.err_lines), log.err_lines

    (state / "outbox").write_bytes(b"")
    log = logs(log_path, log_port, key)
    srv = make_server("-d", str(state), "-k", str(key), env=log_env(log_port))
    assert harness.code(srv.port, "REGISTER", "r21", datetime=stamp(21)) == 0
    wait_log(log_path, set(range(1, 22)))
    assert [k for k, _, _ in log_entries(log_path)] == list(range(1, 22))
    assert (state / "origin").read_text() == origin
    srv.stop()
    assert log.stop() == 0
    assert any("1 lines written, 20 duplicates skipped" in line
               for line in log.err_lines), log.err_lines
    assert refusals(srv, log) == []


def test_log_replay_reproduces_result_codes(make_server, logs, tmp_path):
    """Concurrent conflicting REGISTER/UNREGISTER of the same names: replaying
    the log in its order on a fresh index gives every client's code."""
    state, log_path = tmp_path / "state", tmp_path / "operations.log"
    log_port = logs(log_path).port
    srv = make_server("-d", str(state), env=log_env(log_port))
    names = ["n0", "n1", "n2"]
    got = {}

    def clash(t):
        for i in range(60):
            k = t * 10_000_000 + i
            op = "REGISTER" if (i + t) % 2 else "UNREGISTER"
            got[k] = (op, names[i % 3], harness.code(srv.port, op, names[i % 3],
                                                     datetime=stamp(k)))

    threads = [threading.Thread(target=clash, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    wait_log(log_path, set(got))
    entries = log_entries(log_path)
    assert sorted(k for k, _, _ in entries) == sorted(got)

    fresh = make_server()
    for k, user, op in entries:
        assert (op, user) == got[k][:2]
        assert fresh.request(op, user)[0] == got[k][2], (k, op, user)
