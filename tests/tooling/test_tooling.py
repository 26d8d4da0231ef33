"""The command line around the programs: make help, make client, make run's
first line, --help, .gitignore, and test programs that leave no files."""
import json
import os
import re
import signal
import subprocess
import urllib.request

import harness

ROOT = harness.ROOT
BIN = harness.BIN


def make(*args):
    """Run make in the repository; return its stdout (it must succeed)."""
    out = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def phony_targets():
    """Every target the Makefile and mk/*.mk declare .PHONY."""
    names = set()
    files = [os.path.join(ROOT, "Makefile")] + [
        os.path.join(ROOT, "mk", f) for f in os.listdir(os.path.join(ROOT, "mk"))
        if f.endswith(".mk")]
    for path in files:
        with open(path) as f:
            for line in f:
                if line.startswith(".PHONY:"):
                    names.update(line.split(":", 1)[1].split())
    return names


def test_make_help_lists_every_target_with_values():
    out = make("help")
    listed = set(re.findall(r"^  make(?: (\S+))?\s", out, re.M))
    assert "" in listed                     # plain `make`
    for target in phony_targets() - {"all"}:
        assert target in listed, "make help does not list %s" % target
    assert "$(" not in out
    assert "8888" in out                    # $(PORT) replaced by its value


def test_make_help_shows_the_variables_given():
    assert "port 4242" in make("help", "PORT=4242")


def test_plain_make_checks_packages_first():
    """Plain `make` runs the package check (it installs, or names with the
    exact apt-get line, what the build lacks) before building."""
    out = make("-n")
    lines = [l for l in out.splitlines() if l.strip()]
    assert "scripts/deps.sh build" in lines[0]


def test_make_client_names_server_and_port():
    out = make("-n", "client", "SERVER=example.org", "PORT=4242")
    assert re.search(r"client\S* -s example\.org -p 4242", out), out


def test_make_run_programs_quietly():
    """`make programs` when up to date says nothing (no 'Nothing to be done')."""
    make("programs")
    assert make("programs") == ""


def test_servers_answer_help():
    for prog in ("server", "log_server"):
        for flag in ("--help", "-h"):
            out = subprocess.run([os.path.join(BIN, prog), flag], capture_output=True,
                                 text=True, timeout=10)
            assert out.returncode == 0, (prog, flag, out.stderr)
            assert out.stdout.startswith("usage: %s" % prog)
            assert "--help" in out.stdout


def test_gitignore_covers_what_programs_write():
    for path in ("operations.log", "operations.log.idx", "var/state", "build/x",
                 "bin/server", "tests/fuzz/crash-1", "client/__pycache__/x.pyc"):
        out = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert out.returncode == 0, "%s is not ignored" % path


def test_fuzz_regression_leaves_no_files(tmp_path):
    """The log-store fuzz target removes its scratch directory at exit."""
    prog = os.path.join(os.path.dirname(BIN), "tests", "fuzz_logstore_regress")
    if not os.path.exists(prog):            # built by make test in the same tree
        prog = os.path.join(ROOT, "build", "tests", "fuzz_logstore_regress")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = subprocess.run([prog, os.path.join(ROOT, "tests/fuzz/corpus/logstore")],
                         env=dict(os.environ, TMPDIR=str(tmp)), capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert list(tmp.iterdir()) == []


def test_make_run_says_what_runs_where(tmp_path):
    """run.sh's first line names the port, the log and how to start a client;
    SIGTERM stops everything it started."""
    port, http = harness.fixed_port(), harness.fixed_port()
    proc = harness.Process(["sh", os.path.join(ROOT, "scripts/run.sh")], cwd=str(tmp_path),
                           env={"BIN": BIN, "PORT": str(port), "HTTP_PORT": str(http),
                                "LOG_PORT": str(harness.fixed_port())})
    try:
        proc.wait_line(r"^s> init server ")
        first = proc.lines[0]
        assert first.startswith("peerdex: index server on port %d " % port)
        assert "live view at http://127.0.0.1:%d/" % http in first
        assert "make client PORT=%d" % port in first
        assert "Ctrl-C" in first
        # The live view is on, on loopback.
        proc.wait_line(r"live view at http://127\.0\.0\.1:%d/" % http, stderr=True)
        with urllib.request.urlopen("http://127.0.0.1:%d/api/state" % http, timeout=10) as r:
            assert json.load(r)["totals"]["users"] == 0
    finally:
        proc.stop(signal.SIGTERM)
    assert proc.proc.returncode == 0
