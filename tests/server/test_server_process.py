"""The server as a process: flags, usage, signals, in-flight requests at exit."""
import os
import signal
import socket
import subprocess
import time

import pytest

import harness

SERVER = os.path.join(harness.BIN, "server")


def run(*args):
    """Run the server binary to completion with these arguments."""
    return subprocess.run([SERVER, *args], capture_output=True, text=True, timeout=10)


def test_help_prints_usage_and_exits_0():
    """-h prints the usage and succeeds."""
    r = run("-h")
    assert r.returncode == 0
    assert "usage: server -p PORT" in r.stdout + r.stderr


@pytest.mark.parametrize("args", [
    [], ["-x"], ["-p", "abc"], ["-p", "70000"], ["-p", "-1"], ["-p"],
    ["-p", "0", "-c", "0"], ["-p", "0", "-c", "many"], ["-p", "0", "-t", "0"],
    ["-p", "0", "-t", "soon"], ["-p", "0", "extra"], ["-p", "0", "-i", "-1"],
    ["-p", "0", "-f", "-5"], ["-p", "0", "-b", "10k"], ["-p", "+80"], ["-p", " 80"],
])
def test_bad_flags_exit_2_with_usage(args):
    """Bad command lines exit 2 with a usage line on stderr."""
    r = run(*args)
    assert r.returncode == 2
    assert "usage:" in r.stderr


def test_help_lists_every_flag_and_variable():
    """-h and --help name each option and environment variable with its default."""
    for flag in ("-h", "--help"):
        out = run(flag).stdout
        for word in ("-p PORT", "-c N", "-t SECS", "-i N", "-f N", "-b BYTES",
                     "-L SECS", "-N N", "-k FILE", "-d DIR", "-S MODE", "-D",
                     "LOG_RPC_IP", "LOG_RPC_PORT", "LOG_QUEUE_MAX", "(default 1024)"):
            assert word in out, (flag, word)


def test_bad_environment_variable_is_named():
    """A malformed LOG_* variable stops the server with its name (status 1)."""
    r = subprocess.run([SERVER, "-p", "0"], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, LOG_QUEUE_MAX="lots"))
    assert r.returncode == 1 and "bad LOG_QUEUE_MAX 'lots'" in r.stderr


def test_port_in_use_is_a_clear_error(server):
    """A port already taken is reported, not ignored."""
    r = run("-p", str(server.port))
    assert r.returncode != 0
    assert "cannot listen" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_exit_0(sig):
    """SIGTERM and SIGINT both end the server with status 0."""
    srv = harness.Server()
    try:
        assert harness.code(srv.port, "REGISTER", "alice") == 0
    finally:
        assert srv.stop(sig) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_in_flight_request_is_answered_after_the_signal(sig):
    """A request begun before the signal and completed after it is served."""
    srv = harness.Server()
    try:
        fds = harness.open_fds(srv.pid)
        with socket.create_connection(srv.addr, timeout=10) as s:
            s.sendall(b"REGISTER\x00" + harness.DATETIME.encode() + b"\x00al")
            harness.wait_until(lambda: harness.open_fds(srv.pid) > fds, what="accepted")
            os.kill(srv.pid, sig)
            # It has taken the signal once no thread waits in accept() any more.
            harness.wait_until(lambda: not harness.threads_in_accept(srv.pid),
                               what="accepting stopped")
            s.sendall(b"ice\x00")
            assert s.recv(16) == b"\x00"
        srv.proc.wait(10)
        assert srv.proc.returncode == 0
        # No new connection is accepted once the signal arrived.
        with pytest.raises(OSError):
            socket.create_connection(srv.addr, timeout=2).close()
    finally:
        srv.stop()


def test_stalled_client_does_not_hold_up_shutdown():
    """A stalled client cannot keep the server alive after SIGTERM."""
    srv = harness.Server()
    try:
        fds = harness.open_fds(srv.pid)
        with socket.create_connection(srv.addr, timeout=10) as s:
            s.sendall(b"REGISTER\x00")
            harness.wait_until(lambda: harness.open_fds(srv.pid) > fds, what="accepted")
            start = time.monotonic()
            os.kill(srv.pid, signal.SIGTERM)
            srv.proc.wait(10)
            assert time.monotonic() - start < 6
            assert srv.proc.returncode == 0
    finally:
        srv.stop()


def test_missing_port_is_named():
    """No -p: the usage says what is missing."""
    r = run()
    assert r.returncode == 2 and "server: missing -p PORT" in r.stderr


def test_help_names_short_and_long_options():
    """--help names -D and --dump (the README uses --dump), and every long name."""
    out = run("--help").stdout
    for word in ("-D", "--dump", "--port", "--state-dir", "--liveness"):
        assert word in out, word
