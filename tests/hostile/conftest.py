"""Fixtures for the hostile-client tests; helpers are in hostile_lib.py."""
import os
import resource

import pytest

import harness


@pytest.fixture
def nofile():
    """Raise this process's RLIMIT_NOFILE soft limit; restored afterwards."""
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)

    def raise_to(n):
        soft, hard = saved
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, n))
        if soft == resource.RLIM_INFINITY or soft < n:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))

    yield raise_to
    resource.setrlimit(resource.RLIMIT_NOFILE, saved)


@pytest.fixture
def sockets():
    """A list to put client sockets in; every one is closed afterwards."""
    opened = []
    yield opened
    for s in opened:
        s.close()


@pytest.fixture
def limited_server():
    """Start the server with a low RLIMIT_NOFILE (prlimit execs it, so the
    PID is the server's); stopped by PID afterwards."""
    started = []

    def start(fds, *args):
        proc = harness.Process(
            ["prlimit", "--nofile=%d:%d" % (fds, fds),
             os.path.join(harness.BIN, "server"), "-p", "0", *args])
        started.append(proc)
        m = proc.wait_line(r"^s> init server (\S+):(\d+)$")
        proc.port = int(m.group(2))
        return proc

    yield start
    for proc in started:
        proc.stop()

