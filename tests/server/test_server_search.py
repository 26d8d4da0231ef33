"""SEARCH, the extension operation (docs/protocol.md, "SEARCH"): matching
rules, the files of connected owners only, every change that removes or
restores a match, caps, bad queries, restarts and concurrent use, against
the real server."""
import socket
import threading

import pytest

import harness


def online(srv, user, port=40000):
    assert srv.request("REGISTER", user)[0] == 0
    assert srv.request("CONNECT", user, port)[0] == 0


def publish(srv, user, path, description=""):
    assert srv.request("PUBLISH", user, path, description)[0] == 0


def search(srv, user, query, limit=""):
    """(code, [(owner, path, description)...]), checking the reply's shape."""
    code, fields = srv.request("SEARCH", user, query, limit)
    if code != 0:
        assert fields == [], fields
        return code, None
    count, rest = int(fields[0]), fields[1:]
    assert len(rest) == 3 * count, fields
    return code, [tuple(rest[i:i + 3]) for i in range(0, len(rest), 3)]


def paths(srv, user, query, limit=""):
    code, found = search(srv, user, query, limit)
    assert code == 0, code
    return [p for _, p, _ in found]


@pytest.fixture
def lab(server):
    """alice and bob connected; alice has three files."""
    online(server, "alice", 40001)
    online(server, "bob", 40002)
    publish(server, "alice", "/home/alice/Lecture-Notes.pdf", "Week 3: routing in Networks")
    publish(server, "alice", "/home/alice/lab2.txt", "lab sheet for the lecture")
    publish(server, "alice", "/srv/music/song.ogg", "")
    return server


def test_every_word_must_match(lab):
    assert paths(lab, "bob", "lecture") == ["/home/alice/Lecture-Notes.pdf",
                                            "/home/alice/lab2.txt"]
    assert paths(lab, "bob", "lecture routing") == ["/home/alice/Lecture-Notes.pdf"]
    assert paths(lab, "bob", "lecture song") == []


def test_prefix_of_a_word_matches_but_not_its_middle(lab):
    assert paths(lab, "bob", "lect") == ["/home/alice/Lecture-Notes.pdf",
                                         "/home/alice/lab2.txt"]
    assert paths(lab, "bob", "ecture") == []
    assert paths(lab, "bob", "otes") == []
    assert paths(lab, "bob", "lab") == ["/home/alice/lab2.txt"]     # lab2 starts with lab
    assert paths(lab, "bob", "lab2") == ["/home/alice/lab2.txt"]


def test_ascii_case_folds(lab):
    assert paths(lab, "bob", "LECTURE NOTES") == ["/home/alice/Lecture-Notes.pdf"]
    assert paths(lab, "bob", "nEtWoRkS") == ["/home/alice/Lecture-Notes.pdf"]


def test_path_and_description_both_count(lab):
    assert paths(lab, "bob", "srv ogg") == ["/srv/music/song.ogg"]          # path only
    assert paths(lab, "bob", "sheet") == ["/home/alice/lab2.txt"]           # description only
    assert paths(lab, "bob", "notes routing") == ["/home/alice/Lecture-Notes.pdf"]  # one of each


def test_punctuation_separates_query_words(lab):
    """A query is split like paths and descriptions: "notes.pdf" is notes and pdf."""
    assert paths(lab, "bob", "Lecture-Notes.pdf") == ["/home/alice/Lecture-Notes.pdf"]
    assert paths(lab, "bob", "week-3") == ["/home/alice/Lecture-Notes.pdf"]


def test_reply_carries_owner_path_description(lab):
    code, found = search(lab, "bob", "sheet")
    assert found == [("alice", "/home/alice/lab2.txt", "lab sheet for the lecture")]
    raw = harness.exchange(lab.port, harness.encode("SEARCH", harness.DATETIME, "bob",
                                                    "sheet", ""))
    assert raw == (b"\0" b"1\0" b"alice\0" b"/home/alice/lab2.txt\0"
                   b"lab sheet for the lecture\0")


def test_utf8_words_and_ascii_folding_only(server):
    online(server, "ana")
    publish(server, "ana", "/m/canci\u00f3n.mp3", "M\u00daSICA de Espa\u00f1a")
    assert paths(server, "ana", "canci\u00f3n") == ["/m/canci\u00f3n.mp3"]
    assert paths(server, "ana", "espa\u00f1a m\u00da") == ["/m/canci\u00f3n.mp3"]
    assert paths(server, "ana", "m\u00fasica") == []       # no Unicode case folding


def test_order_is_index_order_and_stable(server):
    """Oldest first, across owners; the same query answers the same way."""
    online(server, "a")
    online(server, "b")
    publish(server, "b", "/x/one.txt", "report")
    publish(server, "a", "/x/two.txt", "report")
    publish(server, "b", "/x/three.txt", "report")
    first = search(server, "a", "report")
    assert [(o, p) for o, p, _ in first[1]] == [("b", "/x/one.txt"), ("a", "/x/two.txt"),
                                               ("b", "/x/three.txt")]
    assert search(server, "a", "report") == first


def test_a_file_under_two_words_of_one_prefix_comes_once(server):
    online(server, "a")
    publish(server, "a", "/x/lecture-lectures-lecturer.txt", "lect lecturing")
    assert paths(server, "a", "lect") == ["/x/lecture-lectures-lecturer.txt"]


def test_disconnected_owner_files_absent_and_back_on_connect(lab):
    assert lab.request("DISCONNECT", "alice")[0] == 0
    assert paths(lab, "bob", "lecture") == []
    assert lab.request("CONNECT", "alice", 40001)[0] == 0
    assert paths(lab, "bob", "lecture") == ["/home/alice/Lecture-Notes.pdf",
                                            "/home/alice/lab2.txt"]


def test_delete_and_unregister_remove_matches_at_once(lab):
    assert lab.request("DELETE", "alice", "/home/alice/lab2.txt")[0] == 0
    assert paths(lab, "bob", "lecture") == ["/home/alice/Lecture-Notes.pdf"]
    assert paths(lab, "bob", "sheet") == []
    assert lab.request("DISCONNECT", "alice")[0] == 0
    assert lab.request("UNREGISTER", "alice")[0] == 0
    assert paths(lab, "bob", "lecture") == []
    # A new alice with the same file name is a new file.
    online(lab, "alice", 40001)
    publish(lab, "alice", "/home/alice/lab2.txt", "new")
    assert search(lab, "bob", "lab2")[1] == [("alice", "/home/alice/lab2.txt", "new")]


def test_unregister_of_a_connected_owner(lab):
    assert lab.request("UNREGISTER", "alice")[0] == 0
    assert paths(lab, "bob", "lect") == []


def test_result_codes_follow_list_content(lab):
    assert search(lab, "nobody", "lect")[0] == 1
    assert lab.request("REGISTER", "carol")[0] == 0
    assert search(lab, "carol", "lect")[0] == 2
    assert search(lab, "bob", "nothing")[1] == []


@pytest.mark.parametrize("query", ["", "   ", "-- / ..", "\t"])
def test_query_without_words_is_other_error(lab, query):
    assert search(lab, "bob", query)[0] == 4


def test_over_long_query_is_other_error(lab):
    assert search(lab, "bob", "lect " * 51 + "ab")[0] == 4      # 257 bytes
    assert search(lab, "bob", ("lect " * 52)[:256])[0] == 0     # 256 bytes


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "x", " 5", "1e3"])
def test_bad_maximum_is_other_error(lab, limit):
    assert search(lab, "bob", "lect", limit)[0] == 4


def test_caps_default_explicit_and_ceiling(server):
    online(server, "a")
    for i in range(1005):
        publish(server, "a", "/d/f%04d" % i, "common")
    code, found = search(server, "a", "common")
    assert len(found) == 100
    assert [p for _, p, _ in found] == ["/d/f%04d" % i for i in range(100)]
    assert len(search(server, "a", "common", "7")[1]) == 7
    assert len(search(server, "a", "common", "1000")[1]) == 1000
    assert paths(server, "a", "common f1004", "1000") == ["/d/f1004"]


def test_restart_with_state_directory_keeps_matches(make_server, tmp_path):
    """A clean stop (snapshot) and a kill -9 (journal replay) both keep them."""
    state = tmp_path / "state"
    srv = make_server("-d", str(state))
    online(srv, "alice")
    online(srv, "bob")
    publish(srv, "alice", "/n/lecture1.pdf", "Networks")
    publish(srv, "bob", "/n/lecture2.pdf", "networks again")
    assert srv.request("DISCONNECT", "bob")[0] == 0
    srv.stop()
    srv = make_server("-d", str(state))
    assert paths(srv, "alice", "lect net") == ["/n/lecture1.pdf"]
    assert srv.request("CONNECT", "bob", 40003)[0] == 0
    publish(srv, "alice", "/n/lecture3.pdf", "networks")
    assert srv.request("DELETE", "alice", "/n/lecture1.pdf")[0] == 0
    srv.kill()
    srv = make_server("-d", str(state))
    assert sorted(paths(srv, "alice", "lect net")) == ["/n/lecture2.pdf", "/n/lecture3.pdf"]


def test_expiry_removes_matches_at_once(make_server):
    """-L 1 -N 1: a user whose endpoint refuses is expired; its files go with it."""
    import socket
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))         # bound, not listening: connections refused
    try:
        srv = make_server("-L", "1", "-N", "1")
        online(srv, "ghost", dead.getsockname()[1])
        publish(srv, "ghost", "/g/lecture.pdf", "")
        peer = socket.socket()
        peer.bind(("127.0.0.1", 0))
        peer.listen(16)
        try:
            online(srv, "bob", peer.getsockname()[1])
            srv.wait_line(r"^s> EXPIRED ghost ")
            assert paths(srv, "bob", "lecture") == []
        finally:
            peer.close()
    finally:
        dead.close()


def test_concurrent_publish_delete_search_leave_no_stale_match(server):
    """Threads publish, delete and search at once; afterwards each query
    finds exactly the files that remain."""
    threads, per = 6, 40
    for t in range(threads):
        online(server, "u%d" % t)
    errors = []

    def work(t):
        try:
            user = "u%d" % t
            for i in range(per):
                publish(server, user, "/c/%s/item%d.bin" % (user, i), "shared stuff t%d" % t)
                if i % 3 == 0:
                    assert server.request("DELETE", user, "/c/%s/item%d.bin" % (user, i))[0] == 0
                code, found = search(server, user, "shared stuff", "1000")
                assert code == 0 and len(found) <= threads * per
        except AssertionError as e:
            errors.append(e)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert errors == []
    want = sorted("/c/u%d/item%d.bin" % (t, i) for t in range(threads)
                  for i in range(per) if i % 3)
    assert sorted(paths(server, "u0", "shared stuff", "1000")) == want
    for t in range(threads):
        assert sorted(paths(server, "u0", "t%d item" % t, "1000")) == \
            sorted(p for p in want if "/u%d/" % t in p)


def test_extensions_lists_search(server):
    raw = harness.exchange(server.port, harness.encode("EXTENSIONS", harness.DATETIME))
    assert b"\0SEARCH\0" in raw


def test_console_line_like_every_operation(lab):
    search(lab, "bob", "lect")
    lab.wait_line(r"^s> OPERATION SEARCH FROM bob$")

