"""Shared pytest fixtures: the harness on sys.path and a fresh server."""
import itertools
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))

import harness  # noqa: E402

# A shell starts a background job (`make test &` in a script, nohup) with
# SIGINT ignored, and an ignored signal stays ignored across exec: the
# clients and `make run` that the Ctrl-C tests start would never see their
# Ctrl-C.  Caught here instead, it is back to the default in every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "alone: bounds a time or a CPU use tightly (a reply within 50 ms, no "
        "spinning), or keeps a core busy throughout (among parallel tests it runs several "
        "times longer, holding the core all the while); `make test` runs these apart, "
        "one at a time, not among parallel tests")
    config.addinivalue_line(
        "markers", "python_only: starts none of our C programs (only Python: the client, "
        "stubs, the kit), so a sanitizer has nothing to watch in it; the sanitizer runs "
        "(make test-asan, test-tsan) leave these out.  Checked on every process the test "
        "starts (_python_only_starts_no_c_program below)")


_prog_count = itertools.count()


@pytest.fixture(autouse=True)
def log_rpc_prog(monkeypatch):
    """Every test's log servers and index servers use an ONC-RPC program
    number of their own (LOG_RPC_PROG, docs/oplog.md), from the transient
    range 0x40000000-0x5fffffff: made of this pytest process's PID (unique
    among the processes running at once) and a count of its tests.  So
    tests that use the host's rpcbind run in parallel with one another and
    with a concurrent test run, and no test touches the registration of a
    log server running for real on this host.  Returns the number."""
    prog = 0x40000000 | (os.getpid() % (1 << 22)) << 7 | next(_prog_count) % (1 << 7)
    monkeypatch.setenv("LOG_RPC_PROG", str(prog))
    return prog


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


# What a python_only test may not start: our C programs (anything under the
# programs' directory, or a compiled program of this tree) and what starts them.
_STARTERS = {"make", "run.sh", "demo.sh", "ours.py", "netns_cap.py"}


def _is_our_c_program(word):
    path = os.path.realpath(word)
    if path.startswith(os.path.realpath(harness.BIN) + os.sep):
        return True
    if not path.startswith(harness.ROOT + os.sep) or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _python_only_starts_no_c_program(request, monkeypatch):
    """A test marked python_only (left out of the sanitizer runs) fails if it
    starts one of our C programs, or make or a script that would: every
    word of every command line it runs is looked at."""
    if request.node.get_closest_marker("python_only") is None:
        return
    popen_init = subprocess.Popen.__init__

    def checked(self, args, *rest, **kw):
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        for arg in argv:
            for word in os.fsdecode(arg).split():
                assert not (_is_our_c_program(word) or os.path.basename(word) in _STARTERS), \
                    "a test marked python_only runs %r: it is no pure Python test" % (args,)
        popen_init(self, args, *rest, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", checked)
