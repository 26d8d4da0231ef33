"""The command line around the result lines (pipes, no terminal): reasons on
stderr, PUBLISH's local checks, ~, downloads into directories and modes,
HELP, comments, exit status, -v, interop with ASCII result codes, IPv6."""
import os
import socket
import stat
import subprocess

import pytest

import harness
from client_lib import CLIENT
from stubs import StubServer, ascii_answers, registered_peer


def run(port, lines, *args, env=None, cwd=None, host="127.0.0.1", timeout=30):
    """Like run_script, with an environment and a directory of our choice."""
    r = subprocess.run([harness.PYTHON, CLIENT, "-s", host, "-p", str(port), *args],
                       input="".join(l + "\n" for l in lines).encode(), capture_output=True,
                       env=dict(os.environ, **(env or {})), cwd=cwd, timeout=timeout)
    return r.returncode, r.stdout.decode().splitlines(), r.stderr.decode().splitlines()


def published(server, user):
    """What the index says user published."""
    assert harness.code(server.port, "REGISTER", "checker") in (0, 1)
    assert harness.code(server.port, "CONNECT", "checker", "40000") in (0, 2)
    code, fields = harness.request(server.port, "LIST_CONTENT", "checker", user)
    assert code == 0
    return fields[1:]


@pytest.mark.python_only
def test_unreachable_server_says_where():
    with harness.dead_port() as dead:
        port = dead.port
        status, out, err = run(port, ["REGISTER a"])
    assert out == ["c> REGISTER FAIL"] and status == 1
    assert "REGISTER: cannot reach the index server at 127.0.0.1:%d: Connection refused" \
        % port in err


def test_other_error_from_the_server_is_explained(server):
    status, out, err = run(server.port, ["REGISTER %s" % ("n" * 300)])
    assert out == ["c> REGISTER FAIL"]
    assert "REGISTER: the user name is 300 bytes; the protocol allows at most 256" in err


def test_publish_checks_the_file_before_sending(server, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("g")
    spaced = tmp_path / "dir with space"
    spaced.mkdir()
    (spaced / "a b.txt").write_text("s")
    long_path = tmp_path / ("l" * 250)
    long_path.write_text("l")
    status, out, err = run(server.port, [
        "REGISTER pub", "CONNECT pub",
        "PUBLISH %s/missing.txt d" % tmp_path,
        "PUBLISH %s d" % tmp_path,
        "PUBLISH %s/a b.txt d" % spaced,
        'PUBLISH "%s/a b.txt" d' % spaced,
        "PUBLISH %s d" % long_path,
        "PUBLISH %s %s" % (good, "x" * 300),
        "PUBLISH /dev/null d",
        "PUBLISH %s fine" % good,
    ])
    assert out == ["c> REGISTER OK", "c> CONNECT OK"] + ["c> PUBLISH FAIL"] * 7 + [
        "c> PUBLISH OK", "c> DISCONNECT OK"]
    assert status == 1
    assert err[0] == "PUBLISH: cannot publish %s/missing.txt: No such file or directory" \
        % tmp_path
    assert err[1] == "PUBLISH: %s is a directory; only regular files can be published" \
        % tmp_path
    assert "whitespace" in err[2] and "dir with space" in err[2]
    assert "whitespace" in err[3] and "protocol cannot carry" in err[3]
    assert "the path is %d bytes; the protocol allows at most 256" \
        % len(str(long_path).encode()) in err[4]
    assert "the description is 300 bytes" in err[5]
    assert "/dev/null is not a regular file" in err[6]
    assert published(server, "pub") == [str(good)]       # nothing else was sent


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_publish_of_an_unreadable_file(server, tmp_path):
    f = tmp_path / "secret.txt"
    f.write_text("s")
    f.chmod(0)
    _, out, err = run(server.port, ["REGISTER r", "CONNECT r", "PUBLISH %s d" % f])
    assert out[2] == "c> PUBLISH FAIL" and "cannot read %s: Permission denied" % f in err[0]


def test_tilde_downloads_into_directories_modes_and_replacing(server, clients, tmp_path):
    home = tmp_path / "home"
    (home / "in").mkdir(parents=True)
    (home / "share.txt").write_text("shared bytes")
    owner = clients(server.port)
    owner.do("REGISTER own", "c> REGISTER OK")
    owner.do("CONNECT own", "c> CONNECT OK")
    # ~ in PUBLISH, under the owner's own HOME (the same process environment).
    owner.do("PUBLISH %s/share.txt s" % home, "c> PUBLISH OK")
    (home / "old.txt").write_text("old")
    (home / "old.txt").chmod(0o600)
    status, out, err = run(server.port, [
        "REGISTER dl", "CONNECT dl",
        "GET_FILE own %s/share.txt ~/in" % home,            # a directory: inside it
        "GET_FILE own %s/share.txt ~/in/" % home,           # again: replaces
        "GET_FILE own %s/share.txt ~/old.txt" % home,       # replaces a file
        "GET_FILE own %s/share.txt ~/missing/x.txt" % home,
        "GET_FILE nobody %s/share.txt ~/y.txt" % home,
    ], env={"HOME": str(home)}, cwd=str(tmp_path))
    assert out == ["c> REGISTER OK", "c> CONNECT OK", "c> GET_FILE OK", "c> GET_FILE OK",
                   "c> GET_FILE OK", "c> GET_FILE FAIL", "c> GET_FILE FAIL",
                   "c> DISCONNECT OK"]
    got = home / "in" / "share.txt"
    assert got.read_text() == "shared bytes"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(got.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((home / "old.txt").stat().st_mode) == 0o666 & ~umask
    assert (home / "old.txt").read_text() == "shared bytes"
    assert "GET_FILE: replaced the existing %s" % got in err
    assert "GET_FILE: replaced the existing %s/old.txt" % home in err
    assert "GET_FILE: cannot write %s/missing/x.txt: No such directory" % home in err
    assert "GET_FILE: nobody is not connected (not in LIST_USERS)" in err
    assert sorted(os.listdir(home / "in")) == ["share.txt"]
    owner.finish()


def test_help_comments_blank_lines_and_exit(server):
    status, out, err = run(server.port, [
        "# a comment", "", "   ", "HELP", "HELP publish", "help nosuch", "exit",
        "REGISTER never"])
    assert status == 1                              # the HELP usage error
    listing = out[:out.index("usage: PUBLISH <path> [description...]")]
    assert any(l.startswith("  PUBLISH <path> [description...] ") for l in listing)
    assert any(l.startswith("  QUIT [now] ") for l in listing)
    assert len([l for l in listing if l.startswith("  ")]) == 12     # one line per command
    assert "  c> PUBLISH FAIL, CONTENT ALREADY PUBLISHED" in out
    assert err == ["HELP: no command 'nosuch' (HELP lists them)"]
    assert harness.code(server.port, "REGISTER", "never") == 0       # exit stopped it


def test_a_clean_script_exits_0(server):
    status, out, err = run(server.port, ["REGISTER ok1", "UNREGISTER ok1"])
    assert (status, out) == (0, ["c> REGISTER OK", "c> UNREGISTER OK"])


def test_verbose_names_the_time_service_at_start(server):
    status, out, err = run(server.port, [], "-v")
    assert status == 0 and out == []
    assert any(l.startswith("time service pid ") and " at http://127.0.0.1:" in l for l in err)
    assert "index server: 127.0.0.1:%d" % server.port in err


def test_flask_import_failure_shows_its_cause(server, tmp_path):
    fake = tmp_path / "flask"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('broken flask for the test')\n")
    status, out, err = run(server.port, ["REGISTER f"], env={"PYTHONPATH": str(tmp_path)})
    assert out == ["c> REGISTER FAIL"]
    assert any("cannot import Flask (ImportError: broken flask for the test)" in l
               for l in err), err


@pytest.mark.python_only
@pytest.mark.parametrize("nul", [False, True])
def test_ascii_result_codes_are_accepted(nul):
    """An ASCII digit followed by a NUL or by the end of the reply is read as
    the code it spells (noted once); a list after a bare '0' with no NUL is
    not the statement's shape and fails, showing the reply's first bytes."""
    stub = StubServer(ascii_answers(nul))
    try:
        status, out, err = run(stub.port, [
            "REGISTER taken", "REGISTER alice", "CONNECT alice", "LIST_USERS",
            "LIST_CONTENT bob"])
    finally:
        stub.close()
    if nul:
        assert out == ["c> USERNAME IN USE", "c> REGISTER OK", "c> CONNECT OK",
                       "c> LIST_USERS OK", "\talice 127.0.0.1 5000", "\tbob 127.0.0.1 5001",
                       "c> LIST_CONTENT OK", "\t/srv/a.txt", "c> DISCONNECT OK"]
    else:
        assert out == ["c> USERNAME IN USE", "c> REGISTER OK", "c> CONNECT OK",
                       "c> LIST_USERS FAIL", "c> LIST_CONTENT FAIL", "c> DISCONNECT OK"]
        assert any(l.startswith("LIST_USERS: bad reply from") and "b'02\\x00alice" in l
                   for l in err), err
    notes = [l for l in err if "ASCII" in l]
    assert notes == ["the index server at 127.0.0.1:%d answers ASCII result codes; accepted"
                     % stub.port]


@pytest.mark.python_only
@pytest.mark.parametrize("reply", [b"1 Invalid operation.", b"\x07", b"OK\n"])
def test_text_replies_are_no_codes(reply):
    """A reply that is neither a raw code nor an ASCII digit ending there is
    a FAIL with its first bytes on stderr, never USERNAME IN USE."""
    stub = StubServer(lambda fields: reply)
    try:
        status, out, err = run(stub.port, ["REGISTER alice"])
    finally:
        stub.close()
    assert out == ["c> REGISTER FAIL"]
    assert any(l.startswith("REGISTER: bad reply from") and repr(reply[:16]) in l
               for l in err), err


@pytest.mark.python_only
def test_hostile_listing_count_fails_at_once():
    """A 20-digit count is refused before anything is read for it."""
    stub = StubServer(lambda fields: b"\x00" + b"9" * 20 + b"\0" + b"/x\0" * 1000
                      if fields[0] == "LIST_CONTENT" else b"\x00")
    try:
        status, out, err = run(stub.port, ["CONNECT alice", "LIST_CONTENT bob"])
    finally:
        stub.close()
    assert out[1] == "c> LIST_CONTENT FAIL"
    assert any("number out of range" in l for l in err), err


def test_peer_answering_ascii_codes_is_tolerated(server, tmp_path):
    """A peer that answers GET_FILE with '0' NUL size NUL bytes: the file
    arrives, and the client says once that it accepted ASCII codes."""
    peer = registered_peer(server.port, "asc",
                           lambda conn: conn.sendall(b"0\x005\x00hello"))
    status, out, err = run(server.port, ["REGISTER dl3", "CONNECT dl3",
                                         "GET_FILE asc /f.txt %s/f.txt" % tmp_path])
    peer.close()
    assert out[2] == "c> GET_FILE OK", err
    assert (tmp_path / "f.txt").read_bytes() == b"hello"
    assert [l for l in err if "ASCII" in l] == [
        "the peer at 127.0.0.1:%d answers ASCII result codes; accepted" % peer.port]


@pytest.mark.python_only
def test_ipv6_literal_server():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        stub = StubServer(lambda fields: b"\x00", host="::1", family=socket.AF_INET6)
    except OSError:
        pytest.skip("no ::1 on this host")
    try:
        for host in ("::1", "[::1]"):
            status, out, err = run(stub.port, ["REGISTER six"], host=host)
            assert out == ["c> REGISTER OK"], err
    finally:
        stub.close()


def test_host_name_server(server):
    status, out, err = run(server.port, ["REGISTER named"], host="localhost")
    assert out == ["c> REGISTER OK"], err


def test_peer_that_prepends_bytes_gives_fail_and_no_file(server, tmp_path):
    """A peer whose reply starts with stray bytes: FAIL with a reason, no file."""
    peer = registered_peer(server.port, "odd",
                           lambda conn: conn.sendall(b"HTTP/1.0 200 OK\r\n\x005\x00hello"))
    status, out, err = run(server.port, ["REGISTER dl2", "CONNECT dl2",
                                         "GET_FILE odd /f.txt %s/f.txt" % tmp_path])
    peer.close()
    assert out[2] == "c> GET_FILE FAIL"
    assert any(l.startswith("GET_FILE: ") and "odd at 127.0.0.1:" in l for l in err), err
    assert os.listdir(tmp_path) == []
