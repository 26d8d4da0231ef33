"""Helpers for the client tests: real client processes driven through stdin."""
import os
import subprocess
import sys

import pytest

import harness

CLIENT = os.path.join(harness.ROOT, "client", "client.py")
# The client's package (client/peerdex/), importable in-process by the unit tests.
sys.path.insert(0, os.path.join(harness.ROOT, "client"))


class ClientProc(harness.Process):
    """A real client.py whose stdin is a pipe: send commands, wait for lines."""

    def __init__(self, port, *args, host="127.0.0.1"):
        super().__init__([harness.PYTHON, CLIENT, "-s", host, "-p", str(port), *args],
                         stdin=subprocess.PIPE)

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    # How long do() and finish() wait by default: a wait, not a bound (a test
    # that bounds a time says so); the first command includes the client's
    # start and its time service's (Python, Flask), which on a busy machine
    # has taken more than 15 s.
    WAIT = 60

    def do(self, line, expect, timeout=WAIT):
        """Send a command and wait for the result line `expect` (a regex,
        anchored) that appears after what was there before."""
        start = len(self.lines)
        self.send(line)
        return self.wait_line("^" + expect + "$", timeout=timeout, start=start)

    def finish(self, timeout=WAIT):
        """Close stdin (end of input) and wait for the exit status."""
        self.proc.stdin.close()
        self.proc.wait(timeout)
        for t in self._readers:
            t.join(2)
        return self.proc.returncode


def peer_addr(server, user):
    """A user's peer address from LIST_USERS, as any downloader gets it."""
    if harness.code(server.port, "REGISTER", "probe") == 0:
        assert harness.code(server.port, "CONNECT", "probe", "40000") == 0
    fields = harness.request(server.port, "LIST_USERS", "probe")[1]
    i = fields.index(user)
    return ("127.0.0.1", int(fields[i + 2]))


def run_script(port, lines, *args, timeout=30):
    """Pipe a whole script into a client; returns (exit status, stdout lines, stderr)."""
    r = subprocess.run([harness.PYTHON, CLIENT, "-s", "127.0.0.1", "-p", str(port), *args],
                       input="".join(l + "\n" for l in lines).encode(),
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode().splitlines(), r.stderr.decode()


def start_connected(clients, port, user):
    """A real client (started through the clients fixture), REGISTERed and
    CONNECTed as user."""
    c = clients(port)
    c.do("REGISTER " + user, "c> REGISTER OK")
    c.do("CONNECT " + user, "c> CONNECT OK")
    return c


@pytest.fixture
def clients():
    """Start real clients; every one is stopped by PID afterwards (the
    fixture of tests/client and tests/liveness, imported by their conftest)."""
    started = []

    def start(port, *args):
        c = ClientProc(port, *args)
        started.append(c)
        return c

    yield start
    for c in started:
        if c.proc.poll() is None:
            try:
                c.proc.stdin.close()
            except OSError:
                pass
        c.stop()
