"""Fixtures for the client tests; helpers are in client_lib.py."""
import pytest

from client_lib import ClientProc


@pytest.fixture
def clients():
    """Start clients; every one is stopped by PID afterwards."""
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
