"""Fixtures for the liveness tests (-L, -N); helpers are in liveness_lib.py."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "client"))

from client_lib import ClientProc  # noqa: E402
from liveness_lib import Peer  # noqa: E402


@pytest.fixture
def clients():
    """Start real clients; every one is stopped by PID afterwards."""
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


@pytest.fixture
def peers():
    """Start live endpoints (accept and close); all are closed afterwards."""
    started = []

    def start():
        p = Peer()
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()
