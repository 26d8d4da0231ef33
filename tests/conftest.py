"""Shared pytest fixtures: the harness on sys.path and a fresh server."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))

import harness  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "rpcbind: uses the host's rpcbind; `make test` runs these apart, one "
        "at a time (every log server registers the one program number there)")
    config.addinivalue_line(
        "markers", "alone: bounds a time or a CPU use tightly (a reply within 50 ms, no "
        "spinning); `make test` runs these apart, one at a time, not among parallel tests")


def pytest_collection_modifyitems(items):
    """A test that uses the rpcbind fixture is marked rpcbind."""
    for item in items:
        if "rpcbind" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.rpcbind)


@pytest.fixture(autouse=True)
def config_home(tmp_path_factory, monkeypatch):
    """Every program a test starts (clients above all: their records of
    published files, their history) sees a fresh HOME and XDG_CONFIG_HOME,
    never the real ones."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home / ".config"


@pytest.fixture
def server():
    """A fresh index server on a free port, stopped by PID afterwards."""
    srv = harness.Server("-t", "2")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_server():
    """Start servers with chosen flags/env; all are stopped afterwards."""
    started = []

    def start(*args, **kw):
        srv = harness.Server(*args, **kw)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
