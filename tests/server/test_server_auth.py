"""Authenticated users (the AUTH extension, docs/protocol.md): REGISTER_AUTH,
the AUTH wrapper, and the refusal of classic requests acting as such a user.

Every request here is built by hand (the MAC computed independently of the
client's code), sent to the real server, and the state checked through the
wire; with -d also after a kill -9 and after a clean stop (the snapshot).
"""
import hashlib
import hmac
import os

import pytest

import harness

SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))


def auth(secret, counter, *inner, datetime=harness.DATETIME):
    """The bytes of an AUTH request wrapping the classic request `inner`."""
    body = harness.encode(inner[0], datetime, *inner[1:])
    text = str(counter).encode()
    mac = hmac.new(secret, text + b"\0" + body, hashlib.sha256).hexdigest()
    return harness.encode("AUTH", text, mac) + body


class Bob:
    """Requests acting as the authenticated user bob, with a growing counter."""

    def __init__(self, port, secret=SECRET):
        self.port, self.secret, self.counter = port, secret, 1000

    def raw(self, *inner):
        self.counter += 1
        return auth(self.secret, self.counter, *inner)

    def send(self, data):
        return harness.parse_reply(harness.exchange(self.port, data))

    def __call__(self, *inner):
        return self.send(self.raw(*inner))


def register(port, user="bob", secret=SECRET):
    return harness.code(port, "REGISTER_AUTH", user, secret.hex())


def state(bob):
    """bob's session and files as bob sees them: (users listing, bob's files)."""
    users = bob("LIST_USERS", "bob")
    files = bob("LIST_CONTENT", "bob", "bob")
    assert users[0] == 0 and files[0] == 0, (users, files)
    return users[1], files[1]


# The classic requests that act as bob, and their "other error" codes.
FORGED = [
    (("CONNECT", "bob", "50000"), 3),
    (("DISCONNECT", "bob"), 3),
    (("PUBLISH", "bob", "/forged", "x"), 4),
    (("DELETE", "bob", "/mine"), 4),
    (("LIST_USERS", "bob"), 3),
    (("LIST_CONTENT", "bob", "bob"), 4),
    (("UNREGISTER", "bob"), 2),
]


def forge_all(srv):
    """Every classic request naming bob, from another connection: refused."""
    for fields, other in FORGED:
        assert harness.code(srv.port, *fields) == other, fields
        srv.wait_line(r"^s> REFUSED %s FROM 127\.0\.0\.1: bob is an authenticated user"
                      % fields[0], stderr=True)


def test_register_auth_codes(server):
    """0 new, 1 name in use (either way round), 2 a secret that is not 64 hex digits."""
    assert register(server.port) == 0
    assert register(server.port) == 1
    assert harness.code(server.port, "REGISTER", "bob") == 1
    assert harness.code(server.port, "REGISTER", "carol") == 0
    assert register(server.port, "carol") == 1
    assert register(server.port, "dave", b"\x01" * 31) == 2
    assert harness.code(server.port, "REGISTER_AUTH", "dave", "g" * 64) == 2


@pytest.mark.parametrize("durable", [False, True])
def test_forged_classic_requests_refused(make_server, tmp_path, durable):
    """carol's typo and the attacker's forgeries change nothing of bob's, and
    the console says why; with -d also after kill -9 and after a stop."""
    args = ["-d", str(tmp_path / "state")] if durable else []
    srv = make_server(*args)
    assert register(srv.port) == 0
    bob = Bob(srv.port)
    assert bob("CONNECT", "bob", "40001")[0] == 0
    assert bob("PUBLISH", "bob", "/mine", "my file")[0] == 0
    before = state(bob)
    assert before == (["1", "bob", "127.0.0.1", "40001"], ["1", "/mine"])
    forge_all(srv)
    assert state(bob) == before
    if not durable:
        return
    for stop in ("kill", "stop"):       # journal replay, then the snapshot
        getattr(srv, stop)()
        srv = make_server(*args)
        bob.port = srv.port
        assert state(bob) == before
        forge_all(srv)
        assert state(bob) == before


@pytest.mark.parametrize("durable", [False, True])
def test_replayed_request_refused(make_server, tmp_path, durable):
    """A captured AUTH request sent again is refused (its counter is not
    above the last one), also after a kill -9 and restart."""
    args = ["-d", str(tmp_path / "state")] if durable else []
    srv = make_server(*args)
    assert register(srv.port) == 0
    bob = Bob(srv.port)
    connect = bob.raw("CONNECT", "bob", "40001")
    disconnect = bob.raw("DISCONNECT", "bob")
    assert bob.send(connect)[0] == 0
    assert bob.send(disconnect)[0] == 0
    assert bob("CONNECT", "bob", "40002")[0] == 0
    assert bob.send(disconnect)[0] == 3
    srv.wait_line(r"^s> REFUSED AUTH DISCONNECT FROM 127\.0\.0\.1: AUTH counter not "
                  r"above the last one \(a replayed request\) \(user bob\)$", stderr=True)
    assert bob.send(connect)[0] == 3
    assert state(bob)[0] == ["1", "bob", "127.0.0.1", "40002"]
    if durable:
        srv.kill()
        srv = make_server(*args)
        bob.port = srv.port
        assert bob.send(disconnect)[0] == 3
        assert state(bob)[0] == ["1", "bob", "127.0.0.1", "40002"]


def test_bad_proofs_refused(server):
    """A wrong secret, AUTH for a classic user, AUTH around a registration,
    a malformed counter or MAC: each the inner operation's other error."""
    assert register(server.port) == 0
    assert harness.code(server.port, "REGISTER", "carol") == 0
    wrong = Bob(server.port, OTHER)
    assert wrong("CONNECT", "bob", "40001")[0] == 3
    server.wait_line(r"AUTH proof does not match", stderr=True)
    assert Bob(server.port)("CONNECT", "carol", "40001")[0] == 3
    server.wait_line(r"AUTH for a user registered without a secret", stderr=True)
    assert Bob(server.port)("REGISTER", "eve")[0] == 2
    assert Bob(server.port)("REGISTER_AUTH", "eve", SECRET.hex())[0] == 2
    good = auth(SECRET, 5, "CONNECT", "bob", "40001")
    body = good[good.index(b"CONNECT"):]
    for counter, mac in ((b"0", b"0" * 64), (b"x", b"0" * 64), (b"5", b"0" * 63)):
        assert harness.parse_reply(harness.exchange(
            server.port, harness.encode("AUTH", counter, mac) + body))[0] == 3
    # None of it changed anything: bob is not connected, carol neither.
    me = Bob(server.port)
    me.counter = 2000
    assert me("LIST_USERS", "bob")[0] == 2
    assert me("CONNECT", "bob", "40001")[0] == 0
    assert me("LIST_USERS", "bob") == (0, ["1", "bob", "127.0.0.1", "40001"])


def test_classic_users_stay_classic(server):
    """A classic user acts with classic requests exactly as before, and an
    authenticated one sees it in the listings."""
    assert harness.code(server.port, "REGISTER", "carol") == 0
    assert harness.code(server.port, "CONNECT", "carol", "40003") == 0
    assert harness.code(server.port, "PUBLISH", "carol", "/c", "d") == 0
    assert register(server.port) == 0
    bob = Bob(server.port)
    assert bob("CONNECT", "bob", "40001")[0] == 0
    assert bob("LIST_CONTENT", "bob", "carol") == (0, ["1", "/c"])
    assert harness.request(server.port, "LIST_CONTENT", "carol", "bob") == (0, ["0"])
    assert harness.code(server.port, "DISCONNECT", "carol") == 0
    assert harness.code(server.port, "UNREGISTER", "carol") == 0


def test_forget_key(make_server, tmp_path):
    """--forget-key is refused while the server runs (the directory lock);
    once stopped it makes the user classic, and says so."""
    state_dir = str(tmp_path / "state")
    srv = make_server("-d", state_dir)
    assert register(srv.port) == 0
    cmd = [os.path.join(harness.BIN, "server"), "-d", state_dir, "--forget-key", "bob"]
    running = harness.Process(cmd)
    assert running.proc.wait(30) == 1
    running.wait_line(r"another server uses this directory", stderr=True)
    srv.stop()
    done = harness.Process(cmd)
    assert done.proc.wait(30) == 0
    done.wait_line(r"the secret of bob is forgotten", stderr=True)
    srv = make_server("-d", state_dir)
    assert harness.code(srv.port, "CONNECT", "bob", "40001") == 0
    assert Bob(srv.port)("DISCONNECT", "bob")[0] == 3
    assert oct(os.stat(state_dir).st_mode & 0o777) == "0o700"
