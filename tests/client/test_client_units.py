"""In-process unit tests of the client's package (no Flask, no index server):
the path checks, the record of published files, strict numbers, escaping, the
request parser of the peer server, and the downloader against scripted peers."""
import os
import socket
import stat
import threading
import time

import pytest

import client_lib  # noqa: F401  (puts client/ on sys.path)
from peerdex import download
from peerdex.download import DownloadError, fetch, peer_address
from peerdex.peer import parse_request
from peerdex.published import Record, open_nofollow, open_pinned, pin
from peerdex.term import shown
from peerdex.wire import ProtocolError, parse_decimal

pytestmark = pytest.mark.python_only       # in-process: no program of ours runs


# --- path checks ----------------------------------------------------------------

@pytest.fixture
def tree(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("public\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "f.txt").write_text("SECRET\n")
    return tmp_path


def read_fd(fd):
    with os.fdopen(fd, "rb") as f:
        return f.read()


def test_open_nofollow_opens_a_plain_path(tree):
    assert read_fd(open_nofollow(str(tree / "d" / "f.txt"))) == b"public\n"


@pytest.mark.parametrize("bad", ["relative/f.txt", "/", "", "/tmp/../etc/passwd",
                                 "/tmp/./x", "/tmp//x"])
def test_open_nofollow_wants_a_resolved_absolute_path(bad):
    with pytest.raises(OSError):
        open_nofollow(bad)


def test_open_nofollow_refuses_a_symlink_in_any_component(tree):
    os.symlink(tree / "other", tree / "link")
    os.symlink(tree / "other" / "f.txt", tree / "d" / "flink")
    with pytest.raises(OSError):
        open_nofollow(str(tree / "link" / "f.txt"))        # in the middle
    with pytest.raises(OSError):
        open_nofollow(str(tree / "d" / "flink"))            # at the end


def test_pin_resolves_symlinks_once_and_wants_a_regular_file(tree):
    os.symlink(tree / "d", tree / "via")
    p = pin(str(tree / "via" / "f.txt"))
    assert p.real == str(tree / "d" / "f.txt")
    st = os.stat(tree / "d" / "f.txt")
    assert (p.dev, p.ino) == (st.st_dev, st.st_ino)
    with pytest.raises(OSError):
        pin(str(tree / "d"))
    with pytest.raises(OSError):
        pin(str(tree / "missing"))


def test_open_pinned_refuses_anything_but_the_pinned_file(tree):
    p = pin(str(tree / "d" / "f.txt"))
    with open_pinned(p) as f:
        assert f.read() == b"public\n"
    # The same file rewritten in place is still the published file.
    (tree / "d" / "f.txt").write_text("public, v2\n")
    with open_pinned(p) as f:
        assert f.read() == b"public, v2\n"
    # A directory swapped for a symlink on the way.
    os.rename(tree / "d", tree / "d.real")
    os.symlink(tree / "d.real", tree / "d")
    assert open_pinned(p) is None
    # Another directory (another file) at the same path.
    os.unlink(tree / "d")
    os.rename(tree / "other", tree / "d")
    assert open_pinned(p) is None
    # The file replaced by another one under the same name (made while the
    # published one still exists, so it cannot get its inode number).
    os.rename(tree / "d", tree / "other")
    os.rename(tree / "d.real", tree / "d")
    (tree / "d" / "f.new").write_text("new file\n")
    os.replace(tree / "d" / "f.new", tree / "d" / "f.txt")
    assert open_pinned(p) is None


# --- the record -------------------------------------------------------------------

def test_record_round_trip_mode_and_no_leftovers(tmp_path, tree):
    rec = Record("127.0.0.1:8888", "alice", directory=str(tmp_path / "cfg"))
    assert rec.load() == {}
    files = {str(tree / "d" / "f.txt"): pin(str(tree / "d" / "f.txt"))}
    rec.save(files)
    assert rec.load() == files
    assert stat.S_IMODE(os.stat(rec.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "cfg").st_mode) == 0o700
    assert os.listdir(tmp_path / "cfg") == [os.path.basename(rec.path)]
    # Another user, or another server, has a record of its own.
    assert Record("127.0.0.1:8888", "bob", directory=str(tmp_path / "cfg")).load() == {}
    assert Record("127.0.0.1:9999", "alice", directory=str(tmp_path / "cfg")).load() == {}
    rec.remove()
    assert rec.load() == {}


def test_record_that_is_not_ours_is_refused(tmp_path):
    rec = Record("s:1", "alice", directory=str(tmp_path))
    rec.save({})
    os.replace(rec.path, Record("s:1", "bob", directory=str(tmp_path)).path)
    with pytest.raises(ValueError):
        Record("s:1", "bob", directory=str(tmp_path)).load()
    with open(rec.path, "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError):
        rec.load()


def test_record_lives_in_the_users_config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert Record("s:1", "a").dir == str(tmp_path / "xdg" / "peerdex")
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Record("s:1", "a").dir == str(tmp_path / "home" / ".config" / "peerdex")


# --- numbers, addresses, escaping, requests -----------------------------------------

def test_parse_decimal_is_strict():
    assert parse_decimal(b"0") == 0
    assert parse_decimal("65535", 1, 65535) == 65535
    assert parse_decimal(b"00042") == 42
    for bad in ["\u00b2", "\u0661", "\uff11", " 1", "1 ", "+1", "-1", "", "1e3", "0x10",
                "1_000", "1" * 21, b"\xff"]:
        with pytest.raises(ProtocolError):
            parse_decimal(bad)
    with pytest.raises(ProtocolError):
        parse_decimal("0", 1, 65535)
    with pytest.raises(ProtocolError):
        parse_decimal("65536", 1, 65535)


def test_peer_address_checks_ip_and_port():
    assert peer_address("127.0.0.1", "40001") == ("127.0.0.1", 40001)
    assert peer_address("::1", "1") == ("::1", 1)
    for ip, port in [("localhost", "1"), ("evil.example", "80"), ("127.0.0.1", "x"),
                     ("127.0.0.1", "\u00b2"), ("127.0.0.1", "0"), ("1.2.3.4", "70000")]:
        with pytest.raises(DownloadError):
            peer_address(ip, port)


def test_shown_escapes_only_what_can_spoof():
    assert shown("/home/alice/notes.txt") == "/home/alice/notes.txt"
    assert shown("caf\u00e9 \u65e5\u672c") == "caf\u00e9 \u65e5\u672c"
    assert shown("/home/evil/\u202efdp.exe") == "/home/evil/\\u202efdp.exe"
    assert shown("a\u009bb\x1b[2J\nc") == "a\\u009bb\\u001b[2J\\u000ac"
    assert shown("x\u200by\u2066z\u2028") == "x\\u200by\\u2066z\\u2028"


def test_parse_request_verdicts():
    assert parse_request(b"GET_") == ("more",)
    assert parse_request(b"GET_FILE\0") == ("more",)
    assert parse_request(b"GET_FILE\0/a/b\0") == ("path", b"/a/b")
    assert parse_request(b"PUT_FILE\0/a\0") == ("close",)
    assert parse_request(b"GET_FILEX") == ("close",)
    assert parse_request(b"GET_FILE\0/" + b"a" * 255 + b"\0") == ("path", b"/" + b"a" * 255)
    assert parse_request(b"GET_FILE\0/" + b"a" * 256) == ("too long",)
    assert parse_request(b"GET_FILE\0/" + b"a" * 255) == ("more",)


# --- the downloader against scripted peers --------------------------------------------

class ScriptedPeer:
    """A peer on 127.0.0.1 that reads the request and then sends `reply`
    (bytes), then waits `linger` seconds before closing."""

    def __init__(self, reply, linger=0.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.addr = self.sock.getsockname()
        self.request = b""
        self.thread = threading.Thread(target=self._serve, args=(reply, linger), daemon=True)
        self.thread.start()

    def _serve(self, reply, linger):
        conn, _ = self.sock.accept()
        with conn:
            while self.request.count(b"\0") < 2:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                self.request += chunk
            try:
                conn.sendall(reply)
            except OSError:
                pass
            time.sleep(linger)
        self.sock.close()


def leftovers(directory):
    return sorted(os.listdir(directory))


def test_download_exact(tmp_path):
    peer = ScriptedPeer(b"\x0011\x00hello peer\n")
    assert fetch(peer.addr, "/r/x", str(tmp_path / "got")) == 0
    assert (tmp_path / "got").read_bytes() == b"hello peer\n"
    assert peer.request == b"GET_FILE\0/r/x\0"
    assert leftovers(tmp_path) == ["got"]


def test_download_empty_and_not_exist(tmp_path):
    assert fetch(ScriptedPeer(b"\x000\x00").addr, "/e", str(tmp_path / "e")) == 0
    assert (tmp_path / "e").read_bytes() == b""
    assert fetch(ScriptedPeer(b"\x01").addr, "/n", str(tmp_path / "n")) == 1
    assert leftovers(tmp_path) == ["e"]


@pytest.mark.parametrize("reply,reason", [
    (b"\x0011\x00hello peer\nX", "more bytes than the 11"),
    (b"\x005\x0017/12/2014 13:20:35 hello", "more bytes than the 5"),
    (b"\x0011\x00hello", "closed after 5 of 11"),
    ("\x00\u00b2\x00ab".encode(), "bad size"),
    (b"\x00 5\x00", "bad size"),
    (b"\x00" + b"1" * 25 + b"\x00", "bad size"),
    (b"\x0010000000000000000\x00", "bytes free"),
    (b"\x02", "code 2"),
    (b"", "connection closed early"),
])
def test_download_failures_leave_nothing(tmp_path, reply, reason):
    with pytest.raises(DownloadError) as e:
        fetch(ScriptedPeer(reply).addr, "/r", str(tmp_path / "got"))
    assert reason in str(e.value) and "\n" not in str(e.value)
    assert leftovers(tmp_path) == []


def test_download_no_progress_deadline(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "NO_PROGRESS", 0.5)
    start = time.monotonic()
    with pytest.raises(DownloadError) as e:
        fetch(ScriptedPeer(b"\x00100\x00abc", linger=5).addr, "/r", str(tmp_path / "got"))
    assert "nothing received" in str(e.value)
    assert time.monotonic() - start < 2
    # All the bytes, but the peer does not close.
    with pytest.raises(DownloadError) as e:
        fetch(ScriptedPeer(b"\x003\x00abc", linger=5).addr, "/r", str(tmp_path / "got"))
    assert "did not close" in str(e.value)
    assert leftovers(tmp_path) == []


def test_download_into_a_missing_directory(tmp_path):
    with pytest.raises(DownloadError) as e:
        fetch(ScriptedPeer(b"\x001\x00a").addr, "/r", str(tmp_path / "no" / "got"))
    assert "cannot write" in str(e.value)


# --- finding out what the index server speaks ------------------------------------

@pytest.mark.parametrize("reply", [
    b"",                                    # a classic server closes on the unknown op
    b"\x02",                                # ... or answers an error code
    b"\x00",                                # no count
    b"\x003\0SEARCH\0",                     # fewer names than counted
    b"\x001\0search me\0",                  # not an operation name
    b"0\x001\0SEARCH\0",                    # ASCII code: not our extension reply
])
def test_server_extensions_says_classic_unless_well_formed(reply):
    from stubs import StubServer
    from peerdex.wire import server_extensions
    stub = StubServer(lambda fields: reply)
    try:
        assert server_extensions(("127.0.0.1", stub.port), "01/01/2026 00:00:00") is None
        assert stub.requests == [["EXTENSIONS", "01/01/2026 00:00:00"]]
    finally:
        stub.close()


def test_server_extensions_reads_the_list():
    from stubs import StubServer
    from peerdex.wire import server_extensions
    stub = StubServer(lambda fields: b"\x002\0SEARCH\0AUTH\0")
    try:
        assert server_extensions(("127.0.0.1", stub.port), "x") == {"SEARCH", "AUTH"}
    finally:
        stub.close()


# --- reading replies ----------------------------------------------------------

def reader_for(data, **kw):
    """A Reader over a socket pair whose other end sent `data` and closed."""
    from peerdex.wire import Reader
    a, b = socket.socketpair()
    a.sendall(data)
    a.close()
    return Reader(b, **kw)


@pytest.mark.parametrize("data, follows, expected", [
    (b"\x03", False, (3, False)),
    (b"\x00\x001\0", True, (0, False)),
    (b"1", False, (1, True)),
    (b"2\0", False, (2, True)),
    (b"0\x002\0", True, (0, True)),
])
def test_read_result_shapes(data, follows, expected):
    from peerdex.wire import read_result
    assert read_result(reader_for(data), follows) == expected


@pytest.mark.parametrize("data, follows", [
    (b"1 Invalid operation.", False),
    (b"12", False),
    (b"0", True),                   # a list announced, then nothing
    (b"\x05", False),
    (b"", False),
])
def test_read_result_refuses_other_shapes(data, follows):
    from peerdex.wire import read_result
    with pytest.raises(ProtocolError):
        read_result(reader_for(data), follows)


def test_reader_caps_the_bytes_of_a_reply():
    with pytest.raises(ProtocolError, match="reply over"):
        reader_for(b"\x00" + b"a\0" * 1000, max_bytes=100).raw_field() and None
        raise AssertionError("not reached")


def test_reader_deadline_covers_the_whole_reply():
    """A reply trickled a byte at a time fails at the deadline, however often
    bytes arrive."""
    from peerdex.wire import Reader
    a, b = socket.socketpair()
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            try:
                a.send(b"a")
            except OSError:
                return
            stop.wait(0.05)

    t = threading.Thread(target=trickle)
    t.start()
    try:
        start = time.monotonic()
        with pytest.raises(ProtocolError, match="deadline"):
            Reader(b, deadline=start + 0.5).raw_field(10 ** 6)
        assert time.monotonic() - start < 5
    finally:
        stop.set()
        t.join()
        a.close()
        b.close()
