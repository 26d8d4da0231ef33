"""Fixtures for the operation-log tests: the real log server, rpcbind, and an
index server that logs to them.  Helpers are in log_lib.py."""
import os
import shutil
import time

import pytest

import harness
from log_lib import LogServer, rpcbind_running


@pytest.fixture(scope="session")
def rpcbind():
    """rpcbind on this host: the running one, or one we start (and stop by PID)."""
    if rpcbind_running():
        yield None
        return
    binary = shutil.which("rpcbind") or "/usr/sbin/rpcbind"
    if not os.path.exists(binary):
        pytest.skip("rpcbind is not installed")
    os.makedirs("/run/rpcbind", exist_ok=True)
    proc = harness.Process([binary, "-f", "-w"])
    deadline = time.monotonic() + 10
    while not rpcbind_running():
        if proc.proc.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            pytest.skip("cannot start rpcbind: %r" % proc.err_lines)
        time.sleep(0.05)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def logs(tmp_path):
    """Start log servers (all stopped by PID afterwards)."""
    started = []

    def start(path=None, port=None, args=(), prefix=(), env=None):
        srv = LogServer(path or tmp_path / "operations.log", port, args, prefix, env=env)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def logged_server(make_server):
    """An index server logging to 127.0.0.1 (port given, or via rpcbind)."""

    def start(log_port=None, *args, **env):
        full = {"LOG_RPC_IP": "127.0.0.1"}
        if log_port is not None:
            full["LOG_RPC_PORT"] = str(log_port)
        full.update({k: str(v) for k, v in env.items()})
        return make_server("-t", "5", *args, env=full)

    return start
