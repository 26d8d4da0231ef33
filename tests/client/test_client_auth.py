"""The client and authenticated users (the AUTH extension), and its
configuration directory: used only when it is safe, read without hanging,
exhausting memory or recursing without bound."""
import json
import os
import re
import shutil
import stat

import pytest

import harness
from client_lib import ClientProc, run_script
from peerdex.published import Record, Secret, UnsafeConfig
from stubs import StubServer


def test_our_client_registers_with_a_secret(server, clients, config_home):
    """REGISTER becomes REGISTER_AUTH; the secret is 64 hex digits, 0600,
    beside the record; UNREGISTER removes it."""
    c = clients(server.port)
    c.do("REGISTER alice", "c> REGISTER OK")
    server.wait_line(r"^s> OPERATION REGISTER_AUTH FROM alice$")
    secret = Secret(Record("127.0.0.1:%d" % server.port, "alice"))
    assert re.fullmatch(r"[0-9a-f]{64}\n", open(secret.path).read())
    assert stat.S_IMODE(os.stat(secret.path).st_mode) == 0o600
    c.do("CONNECT alice", "c> CONNECT OK")
    c.do("UNREGISTER alice", "c> UNREGISTER OK")
    assert not os.path.exists(secret.path)
    assert c.finish() == 0
    assert c.err_lines == []


@pytest.mark.python_only
def test_classic_server_gets_classic_requests_and_one_note(tmp_path):
    """Against a classic server (a stub that knows no EXTENSIONS) the client
    sends the classic operations only, and says so once on stderr; with
    --classic it does not even ask."""
    stub = StubServer(lambda fields: b"\x000\x00" if fields[0].startswith("LIST") else b"\x00")
    try:
        status, out, err = run_script(stub.port, ["REGISTER a", "CONNECT a", "LIST_USERS",
                                                  "DISCONNECT a", "UNREGISTER a"])
        assert status == 0, err
        ops = [r[0] for r in stub.requests]
        assert ops[0] == "EXTENSIONS" and "AUTH" not in ops and "REGISTER_AUTH" not in ops
        assert ops.count("EXTENSIONS") == 1
        assert err.count("does not speak the AUTH extension") == 1, err
        del stub.requests[:]
        status, out, err = run_script(stub.port, ["REGISTER b", "CONNECT b"], "--classic")
        assert status == 0 and err == "", err
        assert [r[0] for r in stub.requests] == ["REGISTER", "CONNECT", "DISCONNECT"]
    finally:
        stub.close()


def test_classic_flag_against_our_server(server, clients):
    """--classic registers a classic user, whom classic requests may act as."""
    c = clients(server.port, "--classic")
    c.do("REGISTER carol", "c> REGISTER OK")
    server.wait_line(r"^s> OPERATION REGISTER FROM carol$")
    c.do("CONNECT carol", "c> CONNECT OK")
    assert harness.request(server.port, "LIST_USERS", "carol")[0] == 0
    assert c.finish() == 0


def test_secret_on_another_machine(server, clients, tmp_path, monkeypatch):
    """A client without alice's secret is refused, and says which file to
    copy; once copied there, it CONNECTs alice."""
    first = clients(server.port)
    first.do("REGISTER alice", "c> REGISTER OK")
    assert first.finish() == 0
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "other-machine"))
    other = clients(server.port)
    other.do("CONNECT alice", "c> CONNECT FAIL")
    m = other.wait_line(r"^CONNECT: if alice was registered with a secret from another "
                        r"machine, this client needs it: copy the file of the same name "
                        r"from that machine's configuration directory to (\S+) \(mode 0600\)",
                        stderr=True)
    mine = Secret(Record("127.0.0.1:%d" % server.port, "alice",
                         os.path.join(os.environ["HOME"], ".config", "peerdex")))
    assert m.group(1) == str(tmp_path / "other-machine" / "peerdex" /
                             os.path.basename(mine.path))
    os.makedirs(os.path.dirname(m.group(1)), mode=0o700)
    shutil.copy(mine.path, m.group(1))
    other.do("CONNECT alice", "c> CONNECT OK")
    assert other.finish() == 1          # the first CONNECT failed


def test_session_loss_is_explained(server, clients):
    """alice's session ends from elsewhere (another client holding her
    secret): her client's next operation prints the exact result line on
    stdout and says why on stderr; CONNECT alice gets it back."""
    a = clients(server.port)
    a.do("REGISTER alice", "c> REGISTER OK")
    a.do("CONNECT alice", "c> CONNECT OK")
    b = clients(server.port)                # the same configuration: the same secret
    b.do("DISCONNECT alice", "c> DISCONNECT OK")
    a.do("LIST_USERS", "c> LIST_USERS FAIL, USER NOT CONNECTED")
    a.wait_line(r"^LIST_USERS: the index server no longer lists alice as connected: its "
                r"liveness check may have found this client's listener unreachable, or a "
                r"DISCONNECT of alice came from elsewhere; CONNECT alice gets the session "
                r"back$", stderr=True)
    a.do("CONNECT alice", "c> CONNECT OK")
    a.do("LIST_USERS", "c> LIST_USERS OK")
    assert a.finish() == 1              # one line was a FAIL


# --- the configuration directory ---------------------------------------------

def record_in(directory):
    return Record("127.0.0.1:1", "alice", str(directory))


def refused(directory, fix, secret=False):
    """Reading the record (or the secret) in directory is refused, naming the fix."""
    rec = record_in(directory)
    with pytest.raises(UnsafeConfig) as e:
        Secret(rec).load() if secret else rec.load()
    assert fix in str(e.value), str(e.value)
    return str(e.value)


@pytest.mark.python_only
def test_directory_writable_by_others(tmp_path):
    d = tmp_path / "peerdex"
    record_in(d).save({})
    os.chmod(d, 0o777)
    why = refused(d, "chmod go-w %s" % d)
    assert "writable by group or others (mode 0777)" in why
    with pytest.raises(UnsafeConfig):
        record_in(d).save({})


@pytest.mark.python_only
def test_directory_or_parent_owned_by_another_user(tmp_path):
    """As with XDG_CONFIG_HOME under a directory another user made first."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    d = theirs / "peerdex"
    record_in(d).save({})
    os.chown(theirs, 65534, 65534)
    refused(d, "the directory %s is owned by uid 65534" % theirs)
    os.chown(theirs, os.getuid(), os.getgid())
    os.chown(d, 65534, 65534)
    refused(d, "the configuration directory %s is owned by uid 65534" % d)


@pytest.mark.python_only
def test_files_that_are_not_ours_or_not_regular(tmp_path):
    d = tmp_path / "peerdex"
    rec = record_in(d)
    rec.save({})
    os.chmod(rec.path, 0o666)
    refused(d, "chmod go-w %s" % rec.path)
    os.unlink(rec.path)
    os.mkfifo(rec.path, 0o600)
    refused(d, "not a regular file")
    os.unlink(rec.path)
    os.symlink("/etc/passwd", rec.path)
    refused(d, "is a symbolic link")
    os.unlink(rec.path)
    with open(rec.path, "w") as f:
        f.truncate(65 << 20)
    os.chmod(rec.path, 0o600)
    refused(d, "larger than")
    secret = Secret(rec)
    with open(secret.path, "w") as f:
        f.write("00" * 32 + "\n")
    os.chmod(secret.path, 0o640)
    refused(d, "chmod 600 %s" % secret.path, secret=True)


@pytest.mark.python_only
def test_deeply_nested_record_is_refused(tmp_path):
    rec = record_in(tmp_path / "peerdex")
    rec.save({})
    with open(rec.path, "w") as f:
        f.write("[" * 200000 + "]" * 200000)
    with pytest.raises(ValueError, match="nests deeper"):
        rec.load()


@pytest.mark.parametrize("kind", ["fifo", "nested"])
def test_hostile_record_neither_hangs_nor_crashes_connect(server, clients, config_home, kind):
    """The issue's cases against the real client: a FIFO in place of the
    record hung CONNECT, a deeply nested one crashed the client."""
    c = clients(server.port)
    c.do("REGISTER alice", "c> REGISTER OK")
    rec = Record("127.0.0.1:%d" % server.port, "alice")
    if kind == "fifo":
        os.mkfifo(rec.path, 0o600)
    else:
        with open(rec.path, "w") as f:
            f.write("{\"files\": " + "[" * 100000 + "]" * 100000 + "}")
        os.chmod(rec.path, 0o600)
    c.do("CONNECT alice", "c> CONNECT OK")
    c.wait_line(r"^CONNECT: unreadable record of published files, serving none: ",
                stderr=True)
    assert c.finish() == 0
    assert not any("Traceback" in l for l in c.err_lines)


def test_client_refuses_to_register_into_an_unsafe_directory(server, clients, config_home):
    config_home.mkdir(parents=True, exist_ok=True)
    (config_home / "peerdex").mkdir(mode=0o700)
    os.chmod(config_home / "peerdex", 0o757)
    c = clients(server.port)
    c.do("REGISTER alice", "c> REGISTER FAIL")
    c.wait_line(r"^REGISTER: cannot keep a secret for alice, not registered: the "
                r"configuration directory \S+ is writable by group or others \(mode 0757\): "
                r"run chmod go-w \S+", stderr=True)
    assert harness.code(server.port, "REGISTER", "alice") == 0     # nothing was registered
    assert c.finish() == 1
