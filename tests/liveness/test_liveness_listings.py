"""The shared listings with a state directory and with liveness: what
LIST_CONTENT and LIST_USERS send after a restart, a quota refusal and an
expiry is the index as it is, never a listing built before the change."""
import harness
from liveness_lib import dead_endpoint, listed, online


def content(srv, user):
    """LIST_CONTENT of `user` asked by `user`: the count, then the paths."""
    code, fields = srv.request("LIST_CONTENT", user, user)
    assert code == 0, (code, fields)
    return fields


def test_restored_files_are_listed(make_server, peers, tmp_path):
    """-d and -f 2: files published, one refused past the quota, one deleted
    (each after a listing was built); the server is killed with -9 (the
    journal replays) and stopped with SIGTERM (the snapshot restores): the
    listing shows the files as they were; a lower quota at restart keeps
    what was accepted and refuses a new PUBLISH."""
    state = str(tmp_path / "state")
    srv = make_server("-d", state, "-f", "2")
    online(srv, "alice", peers().port)
    for path in ("/a", "/b"):
        assert srv.request("PUBLISH", "alice", path, "d")[0] == 0
    assert content(srv, "alice") == ["2", "/a", "/b"]
    assert srv.request("PUBLISH", "alice", "/c", "d")[0] == 4
    srv.wait_line(r"^s> PUBLISH FROM alice REFUSED: quota of 2 files per user reached$")
    assert srv.request("DELETE", "alice", "/a")[0] == 0
    assert content(srv, "alice") == ["1", "/b"]
    assert srv.request("PUBLISH", "alice", "/d", "d")[0] == 0
    assert content(srv, "alice") == ["2", "/b", "/d"]
    srv.kill()

    srv = make_server("-d", state, "-f", "2")
    srv.wait_line(r"1 users, 2 files", stderr=True)
    assert content(srv, "alice") == ["2", "/b", "/d"]
    assert srv.request("DELETE", "alice", "/b")[0] == 0
    assert content(srv, "alice") == ["1", "/d"]
    assert srv.stop() == 0

    srv = make_server("-d", state, "-f", "1")
    srv.wait_line(r"1 users, 1 files \(snapshot up to [1-9]", stderr=True)
    assert content(srv, "alice") == ["1", "/d"]
    assert srv.request("PUBLISH", "alice", "/e", "d")[0] == 4
    assert content(srv, "alice") == ["1", "/d"]


def test_expired_user_leaves_the_users_listing(make_server, peers):
    """-L 1 -N 1: LIST_USERS is asked (the shared listing built) while a
    dead user is still connected; once its expiry is printed, LIST_USERS
    no longer gives it."""
    srv = make_server("-L", "1", "-N", "1")
    online(srv, "watcher", peers().port)
    sock, dead_port = dead_endpoint()
    try:
        assert srv.request("REGISTER", "ghost")[0] == 0
        assert srv.request("CONNECT", "ghost", dead_port)[0] == 0
        assert sorted(listed(srv, "watcher")) == ["ghost", "watcher"]
        srv.wait_line(r"^s> EXPIRED ghost 127\.0\.0\.1 \d+ \(1 probes failed\)$")
        assert listed(srv, "watcher") == ["watcher"]
        assert harness.request(srv.port, "LIST_CONTENT", "watcher", "ghost") == (0, ["0"])
    finally:
        sock.close()
