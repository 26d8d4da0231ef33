"""The operation log end to end: real index server, real log server, rpcbind."""
import collections
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness
from log_lib import LogServer, read_lines, wait_err, wait_lines


def every_operation(port):
    """One of each operation, each with its own date-time; the lines they make."""
    steps = [
        (("REGISTER", "alice"), "alice REGISTER {}"),
        (("CONNECT", "alice", "40001"), "alice CONNECT {}"),
        (("PUBLISH", "alice", "/home/alice/a.txt", "notes"), "alice PUBLISH /home/alice/a.txt {}"),
        (("LIST_USERS", "alice"), "alice LIST_USERS {}"),
        (("LIST_CONTENT", "alice", "alice"), "alice LIST_CONTENT {}"),
        (("DELETE", "alice", "/home/alice/a.txt"), "alice DELETE /home/alice/a.txt {}"),
        (("DISCONNECT", "alice"), "alice DISCONNECT {}"),
        (("UNREGISTER", "alice"), "alice UNREGISTER {}"),
        (("UNREGISTER", "alice"), "alice UNREGISTER {}"),       # fails (1), still logged
    ]
    expected = []
    for i, (fields, line) in enumerate(steps):
        dt = "17/12/2014 13:20:%02d" % i
        assert harness.code(port, *fields, datetime=dt) in (0, 1)
        expected.append(line.format(dt))
    return expected


def test_every_operation_makes_exactly_its_line_in_order(logs, logged_server):
    log = logs(port=0)
    srv = logged_server(log.port)
    expected = every_operation(srv.port)
    assert wait_lines(log.path, len(expected)) == expected
    # Printed on the log server's stdout too.
    log.wait_line("^alice UNREGISTER 17/12/2014 13:20:08$")
    assert log.lines == expected
    assert srv.stop() == 0
    assert read_lines(log.path) == expected


def test_extension_discovery_is_not_logged(logs, logged_server):
    """EXTENSIONS is no user's operation: the log gets only the REGISTER after it."""
    log = logs(port=0)
    srv = logged_server(log.port)
    raw = harness.exchange(srv.port, harness.encode("EXTENSIONS", harness.DATETIME))
    assert raw[:1] == b"\0"
    assert harness.code(srv.port, "REGISTER", "alice", datetime="17/12/2014 13:20:35") == 0
    assert wait_lines(log.path, 1) == ["alice REGISTER 17/12/2014 13:20:35"]


def test_refused_requests_are_not_logged(logs, logged_server):
    log = logs(port=0)
    srv = logged_server(log.port)
    assert harness.code(srv.port, "REGISTER", "x" * 257) == 2
    assert harness.code(srv.port, "CONNECT", "bob", "70000") == 3
    assert harness.code(srv.port, "REGISTER", "bob") == 0
    assert wait_lines(log.path, 1) == ["bob REGISTER " + harness.DATETIME]
    srv.stop()
    assert read_lines(log.path) == ["bob REGISTER " + harness.DATETIME]


def test_control_bytes_in_datetime_cannot_forge_lines(logs, logged_server):
    log = logs(port=0)
    srv = logged_server(log.port)
    assert harness.code(srv.port, "REGISTER", "eve", datetime="x\nmallory REGISTER y") == 0
    srv.stop()
    assert read_lines(log.path) == ["eve REGISTER x?mallory REGISTER y"]


def registered(prog):
    """Whether the host's rpcbind holds a registration of this program."""
    out = subprocess.run(["rpcinfo", "-p", "127.0.0.1"], capture_output=True, text=True)
    return any(line.split()[:1] == [str(prog)] for line in out.stdout.splitlines())


def test_rpcbind_mode(rpcbind, logs, logged_server, log_rpc_prog):
    log = logs()                                  # no -p: rpcbind only
    wait_err(log, "registered with rpcbind")
    assert registered(log_rpc_prog)               # the test's own LOG_RPC_PROG
    srv = logged_server()                         # no LOG_RPC_PORT: ask rpcbind
    assert harness.code(srv.port, "REGISTER", "viaportmap") == 0
    assert wait_lines(log.path, 1) == ["viaportmap REGISTER " + harness.DATETIME]
    srv.stop()
    assert log.stop() == 0
    assert not registered(log_rpc_prog)           # unregistered at exit


def test_two_log_servers_share_one_rpcbind_with_their_own_programs(rpcbind, logs,
                                                                   logged_server, tmp_path,
                                                                   log_rpc_prog):
    """LOG_RPC_PROG: two log servers registered at once, each index server
    finds its own through rpcbind; stopping one leaves the other's entry."""
    progs = (log_rpc_prog, log_rpc_prog ^ 0x1000000)
    pairs = []
    for i, prog in enumerate(progs):
        log = logs(path=tmp_path / ("log%d" % i), env={"LOG_RPC_PROG": str(prog)})
        wait_err(log, "registered with rpcbind")
        pairs.append((log, logged_server(LOG_RPC_PROG=prog)))
    for i, (log, srv) in enumerate(pairs):
        assert harness.code(srv.port, "REGISTER", "user%d" % i) == 0
    for i, (log, srv) in enumerate(pairs):
        assert wait_lines(log.path, 1) == ["user%d REGISTER %s" % (i, harness.DATETIME)]
    assert pairs[0][0].stop() == 0
    assert not registered(progs[0]) and registered(progs[1])
    assert harness.code(pairs[1][1].port, "REGISTER", "later") == 0
    assert wait_lines(pairs[1][0].path, 2)[1] == "later REGISTER " + harness.DATETIME


def test_bad_log_rpc_prog_is_refused_by_both_programs(logs, tmp_path):
    """Outside 0x20000000-0x5fffffff, or not decimal: exit 1, saying why."""
    for bad in ("1", "0x40000000", "1610612736", "-5", "536870911x"):
        env = dict(os.environ, LOG_RPC_PROG=bad)
        for argv in ([os.path.join(harness.BIN, "log_server"), "-f", str(tmp_path / "x"),
                      "-p", "0"],
                     [os.path.join(harness.BIN, "server"), "-p", "0"]):
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10)
            assert done.returncode == 1, (argv, bad, done.stderr)
            assert "bad LOG_RPC_PROG '%s'" % bad in done.stderr
    for prog in ("log_server", "server"):
        out = subprocess.run([os.path.join(harness.BIN, prog), "--help"],
                             capture_output=True, text=True, timeout=10).stdout
        assert "LOG_RPC_PROG=PROG" in out and "772611589" in out


def test_program_numbers_must_match_on_a_fixed_port(logs, logged_server, log_rpc_prog):
    """An index server with another LOG_RPC_PROG than its log server's
    delivers nothing there; with the same one, everything."""
    log = logs(port=0)
    other = logged_server(log.port, LOG_RPC_PROG=log_rpc_prog ^ 0x1000000)
    assert harness.code(other.port, "REGISTER", "lost") == 0
    wait_err(other, "operation log unreachable")
    srv = logged_server(log.port)
    assert harness.code(srv.port, "REGISTER", "found") == 0
    assert wait_lines(log.path, 1) == ["found REGISTER " + harness.DATETIME]
    other.kill()
    assert read_lines(log.path) == ["found REGISTER " + harness.DATETIME]


def test_stale_rpcbind_registration_does_not_stop_a_restart(rpcbind, logs, logged_server,
                                                            tmp_path):
    first = logs()
    first.kill()                                  # leaves its registration behind
    second = logs()
    wait_err(second, "registered with rpcbind")
    srv = logged_server()
    assert harness.code(srv.port, "REGISTER", "after_stale") == 0
    assert wait_lines(second.path, 1) == ["after_stale REGISTER " + harness.DATETIME]


def test_fixed_port_with_rpcbind_running_too(rpcbind, logs, logged_server):
    log = logs(port=0)
    srv = logged_server(log.port)
    assert harness.code(srv.port, "REGISTER", "both") == 0
    assert wait_lines(log.path, 1) == ["both REGISTER " + harness.DATETIME]


def test_log_server_down_at_start_then_up_loses_nothing(logs, logged_server, tmp_path):
    port = harness.fixed_port()             # the log server comes later
    srv = logged_server(port)
    for i in range(50):
        assert harness.code(srv.port, "REGISTER", "early%d" % i) == 0
    srv.wait_line(r"operation log unreachable", stderr=True)
    log = logs(port=port)
    lines = wait_lines(log.path, 50)
    assert lines == ["early%d REGISTER %s" % (i, harness.DATETIME) for i in range(50)]


def test_kill_9_mid_load_every_operation_exactly_once(logs, logged_server, tmp_path):
    """16 threads, 5,000 operations; the log server is killed with SIGKILL in
    the middle and restarted on the same port once the index server has
    found it gone."""
    log = logs(port=harness.fixed_port())       # the same port after the restart
    port = log.port
    srv = logged_server(port)
    total, threads = 5000, 16
    done = collections.Counter()
    lock = threading.Lock()
    restarted = []

    def killer():
        while done["n"] < total // 3:
            time.sleep(0.01)
        log.kill()
        srv.wait_line(r"operation log unreachable", stderr=True, timeout=30)
        restarted.append(logs(port=port))

    def work(t):
        for k in range(t, total, threads):
            assert harness.code(srv.port, "REGISTER", "u%04d" % k) == 0
            with lock:
                done["n"] += 1

    k = threading.Thread(target=killer)
    k.start()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    k.join(30)
    assert restarted, "the log server was not restarted"
    lines = wait_lines(log.path, total, timeout=60)
    want = collections.Counter("u%04d REGISTER %s" % (k, harness.DATETIME) for k in range(total))
    assert collections.Counter(lines) == want          # each exactly once
    assert srv.stop() == 0


def test_queue_full_refuses_operations_then_recovers(logs, logged_server, tmp_path):
    port = harness.fixed_port()             # the log server comes later
    srv = logged_server(port, LOG_QUEUE_MAX=5)
    for i in range(5):
        assert harness.code(srv.port, "REGISTER", "q%d" % i) == 0
    # The queue is full: each operation answers its "other error" and is not performed.
    assert harness.code(srv.port, "REGISTER", "refused") == 2
    assert harness.code(srv.port, "CONNECT", "q0", "4000") == 3
    assert harness.code(srv.port, "PUBLISH", "q0", "/f", "d") == 4
    log = logs(port=port)
    assert wait_lines(log.path, 5) == ["q%d REGISTER %s" % (i, harness.DATETIME)
                                       for i in range(5)]
    deadline = time.monotonic() + 10
    while harness.code(srv.port, "REGISTER", "refused") != 0:   # room again
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert harness.code(srv.port, "LIST_USERS", "q0") == 2      # CONNECT never happened
    # The refused attempts left no line; the accepted ones did, in order.
    assert wait_lines(log.path, 7)[5:] == ["refused REGISTER " + harness.DATETIME,
                                           "q0 LIST_USERS " + harness.DATETIME]


def test_sigterm_drains_the_queue(logs, logged_server):
    port = harness.fixed_port()             # the log server comes later
    srv = logged_server(port)
    for i in range(20):
        assert harness.code(srv.port, "REGISTER", "d%d" % i) == 0
    log = logs(port=port)
    assert srv.stop() == 0                      # returns after the queue is delivered
    assert len(read_lines(log.path)) == 20


def test_sighup_reopens_the_file(logs, logged_server, tmp_path):
    log = logs(port=0)
    srv = logged_server(log.port)
    assert harness.code(srv.port, "REGISTER", "before") == 0
    wait_lines(log.path, 1)
    os.rename(log.path, str(log.path) + ".1")
    os.kill(log.pid, signal.SIGHUP)
    wait_err(log, "reopened")
    assert harness.code(srv.port, "REGISTER", "after") == 0
    assert wait_lines(log.path, 1) == ["after REGISTER " + harness.DATETIME]
    assert read_lines(str(log.path) + ".1") == ["before REGISTER " + harness.DATETIME]


def test_restart_does_not_write_twice(logs, logged_server, tmp_path):
    log = logs(port=0)
    srv = logged_server(log.port)
    every_operation(srv.port)
    lines = wait_lines(log.path, 9)
    assert log.stop() == 0
    again = logs(port=log.port)
    assert harness.code(srv.port, "REGISTER", "later") == 0
    assert wait_lines(again.path, 10)[-1] == "later REGISTER " + harness.DATETIME
    assert read_lines(again.path)[:9] == lines and len(read_lines(again.path)) == 10


def test_without_log_rpc_ip_the_server_says_so_once(server):
    # stdout and stderr are read by separate threads: wait for the line.
    server.wait_line("without an operation log", stderr=True)
    assert sum("without an operation log" in l for l in server.err_lines) == 1
    assert harness.code(server.port, "REGISTER", "nolog") == 0


def test_log_server_flags(tmp_path):
    binary = os.path.join(harness.BIN, "log_server")
    assert subprocess.run([binary, "-h"], capture_output=True).returncode == 0
    for args in (["-x"], ["-p", "abc"], ["-p", "70000"], ["extra"]):
        r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "usage:" in r.stderr
    r = subprocess.run([binary, "-f", "/nonexistent-dir/x.log", "-p", "0"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "cannot open" in r.stderr
