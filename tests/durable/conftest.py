"""Fixtures for the durable-state tests: servers and log servers started
for real, all stopped by PID afterwards."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from durable_lib import LogServer  # noqa: E402


@pytest.fixture
def logs():
    """Start log servers; all are stopped afterwards."""
    started = []

    def start(path, port=0, key=None):
        """A log server on FILE path: a free port (0), or `port` (a restart
        on the port an index server sends to)."""
        srv = LogServer(path, port, key)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
