"""Fixtures for the liveness tests (-L, -N); helpers are in liveness_lib.py."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "client"))

from client_lib import clients  # noqa: E402,F401  (the shared fixture)
from liveness_lib import Peer  # noqa: E402


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
