"""Fixtures for the client tests; helpers are in client_lib.py."""
import pytest

from client_lib import ClientProc


@pytest.fixture(autouse=True)
def config_home(tmp_path_factory, monkeypatch):
    """Every client of a test keeps its records (published files, history)
    under a fresh HOME and XDG_CONFIG_HOME, never the real ones."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home / ".config"


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
