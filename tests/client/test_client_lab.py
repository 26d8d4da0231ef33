"""What a newcomer to the lab trips over, on real clients and a real index
server: a published file saved by an editor, a fixed peer port, local paths
with spaces, SIGTERM at the prompt, GET_FILE with the index down, a download
trickled just fast enough, and the operations each command sends."""
import os
import signal
import socket
import threading
import time

import pytest

import harness
from client_lib import CLIENT, peer_addr, start_connected
from tty_lib import TtyClient

from peerdex import download
from peerdex.download import DownloadError, fetch


def get(addr, path):
    return harness.exchange(addr[1], harness.encode("GET_FILE", str(path)), host=addr[0])


def served(data):
    return b"\x00" + str(len(data)).encode() + b"\x00" + data


def err_count(c, text):
    return sum(text in l for l in c.err_lines)


# --- 1. a published file replaced -----------------------------------------------

@pytest.fixture
def owner(server, clients, tmp_path):
    d = tmp_path / "x"
    d.mkdir()
    (d / "edit2.txt").write_text("v1\n")
    c = start_connected(clients, server.port, "alice")
    c.do("PUBLISH %s notes" % (d / "edit2.txt"), "c> PUBLISH OK")
    c.path = d / "edit2.txt"
    c.addr = peer_addr(server, "alice")
    return c


def test_editor_save_keeps_the_file_served(server, clients, owner, config_home):
    path = owner.path
    assert get(owner.addr, path) == served(b"v1\n")
    (path.parent / ".tmp").write_text("v2, saved\n")       # an editor's save
    os.rename(path.parent / ".tmp", path)
    assert get(owner.addr, path) == served(b"v2, saved\n")
    assert get(owner.addr, path) == served(b"v2, saved\n")
    owner.wait_line(r"peer server: %s was replaced" % path, stderr=True)
    assert err_count(owner, "was replaced") == 1              # said once
    # A download onto the published path (another inode again) is served too.
    (path.parent / "v3.txt").write_text("v3 from bob\n")
    bob = start_connected(clients, server.port, "bob")
    bob.do("PUBLISH %s v3" % (path.parent / "v3.txt"), "c> PUBLISH OK")
    owner.do("GET_FILE bob %s %s" % (path.parent / "v3.txt", path), "c> GET_FILE OK")
    assert get(owner.addr, path) == served(b"v3 from bob\n")
    # The record keeps the new identity: served after QUIT and CONNECT again.
    assert owner.finish() == 0
    c = clients(server.port)
    c.do("CONNECT alice", "c> CONNECT OK")
    assert get(peer_addr(server, "alice"), path) == served(b"v3 from bob\n")
    assert not [l for l in c.err_lines if "not serving" in l], c.err_lines


def replace_with(kind, path, tmp_path):
    """Put something other than the owner's regular file at `path`."""
    if kind == "directory swapped":
        os.rename(path.parent, tmp_path / "x.old")
        os.mkdir(path.parent)
        path.write_text("SECRET\n")
        return
    os.unlink(path)
    if kind == "symlink":
        (tmp_path / "secret.txt").write_text("SECRET\n")
        os.symlink(tmp_path / "secret.txt", path)
    elif kind == "directory":
        os.mkdir(path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "another owner":
        path.write_text("SECRET\n")
        os.chown(path, 65534, 65534)


@pytest.mark.parametrize("kind,why", [
    ("symlink", "it is now a symlink"),
    ("directory", "it is now a directory"),
    ("fifo", "it is now not a regular file"),
    ("another owner", "it is now owned by another user"),
    ("directory swapped", "its directory was replaced by another one"),
])
def test_anything_else_stays_refused_and_the_owner_is_told(owner, tmp_path, kind, why):
    if kind == "another owner" and os.geteuid() != 0:
        pytest.skip("chown needs root")
    replace_with(kind, owner.path, tmp_path)
    assert get(owner.addr, owner.path) == b"\x01"
    assert get(owner.addr, owner.path) == b"\x01"
    m = owner.wait_line(r"^peer server: not serving (\S+): (.*); to serve what is there now: "
                        r"DELETE (\S+), then PUBLISH it again$", stderr=True)
    assert m.group(1) == m.group(3) == str(owner.path)
    assert why in m.group(2)
    assert err_count(owner, "not serving") == 1                # said once


# --- 5. a fixed peer port ---------------------------------------------------------

def test_peer_port(server, clients):
    port = harness.fixed_port()
    # Classic, so that another connection may DISCONNECT alice behind its back.
    c = clients(server.port, "--peer-port", str(port), "--classic")
    c.do("REGISTER alice", "c> REGISTER OK")
    c.do("CONNECT alice", "c> CONNECT OK")
    assert peer_addr(server, "alice") == ("127.0.0.1", port)
    # CONNECT again after being dropped behind its back: the same listener.
    assert harness.code(server.port, "DISCONNECT", "alice") == 0
    c.do("CONNECT alice", "c> CONNECT OK")
    assert peer_addr(server, "alice") == ("127.0.0.1", port)
    c.do("DISCONNECT alice", "c> DISCONNECT OK")
    with socket.socket() as busy:               # taken between start and CONNECT
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("0.0.0.0", port))
        busy.listen()
        c.do("CONNECT alice", "c> CONNECT FAIL")
        c.wait_line(r"^CONNECT: cannot listen for peers on port %d \(--peer-port\): it is "
                    r"taken" % port, stderr=True)
        # Taken at start: the client says so and does not start.
        status, out, err = run(server.port, "--peer-port", str(port))
        assert status == 2 and "--peer-port %d: it is taken" % port in err, err


def run(port, *args):
    import subprocess
    r = subprocess.run([harness.PYTHON, CLIENT, "-s", "127.0.0.1", "-p", str(port), *args],
                       input=b"", capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


# --- 6. local paths with spaces ---------------------------------------------------

def test_local_paths_with_spaces_are_quoted_as_in_a_shell(server, clients, tmp_path):
    shared = tmp_path / "shared.txt"
    shared.write_text("hello\n")
    carol = start_connected(clients, server.port, "carol")
    carol.do("PUBLISH %s s" % shared, "c> PUBLISH OK")
    bob = start_connected(clients, server.port, "bob")
    spaced = tmp_path / "dir with space"
    spaced.mkdir()
    bob.do('GET_FILE carol %s "%s/"' % (shared, spaced), "c> GET_FILE OK")
    assert (spaced / "shared.txt").read_text() == "hello\n"
    bob.do("GET_FILE carol %s '%s/it is.txt'" % (shared, spaced), "c> GET_FILE OK")
    assert (spaced / "it is.txt").read_text() == "hello\n"
    bob.do("GET_FILE carol %s %s" % (shared, str(spaced / "b s.txt").replace(" ", "\\ ")),
           "c> GET_FILE OK")
    assert (spaced / "b s.txt").read_text() == "hello\n"
    # A path that goes on the wire cannot have whitespace: said why.
    start = len(bob.err_lines)
    bob.do('GET_FILE carol "/tmp/a b" %s' % tmp_path, "c> GET_FILE FAIL")
    bob.wait_line(r"^GET_FILE: the remote path '/tmp/a b' has whitespace, which the protocol "
                  r"cannot carry", stderr=True, start=start)
    bob.do('DELETE "/tmp/a b"', "c> DELETE FAIL")
    bob.wait_line(r"^DELETE: the path '/tmp/a b' has whitespace", stderr=True)


# --- 9. SIGTERM at the prompt, GET_FILE with the index down ---------------------

def test_sigterm_at_the_prompt_prints_the_result_on_its_own_line(server, tmp_path):
    c = TtyClient(server.port, tmp_path)
    try:
        c.line("REGISTER alice", r"c> REGISTER OK")
        c.line("CONNECT alice", r"c> CONNECT OK")
        since = c.mark()
        # A signal that lands just as readline starts waiting is seen only at
        # the next one (the interpreter's race, not ours): send until it shows.
        for _ in range(20):
            try:
                os.kill(c.pid, signal.SIGTERM)
            except ProcessLookupError:
                break
            try:
                c.expect(r"c> \n", timeout=1, since=since - 3)
                break
            except AssertionError:
                continue
        c.expect(r"\nc> DISCONNECT OK\n", since=since - 3)
        assert c.proc.wait(10) == 128 + signal.SIGTERM
        assert "c> c> " not in c.text()
    finally:
        c.stop()


def test_get_file_with_the_index_down_names_get_file(clients, tmp_path):
    srv = harness.Server("-t", "2")
    try:
        c = start_connected(clients, srv.port, "bob")
    finally:
        srv.stop()
    c.do("GET_FILE carol /x %s" % (tmp_path / "got"), "c> GET_FILE FAIL")
    c.wait_line(r"^GET_FILE: looking up the address of carol \(LIST_USERS\): cannot reach "
                r"the index server at 127\.0\.0\.1:\d+: Connection refused$", stderr=True)


# --- 9. a download trickled just fast enough to dodge the 10 s rule ------------

class TricklingPeer:
    """Announces `size` bytes and sends `chunk` bytes every `every` seconds."""

    def __init__(self, size, chunk, every):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.addr = self.sock.getsockname()
        self.stop = threading.Event()
        threading.Thread(target=self._serve, args=(size, chunk, every), daemon=True).start()

    def _serve(self, size, chunk, every):
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(4096)
            try:
                conn.sendall(b"\x00%d\x00" % size)
                sent = 0
                while sent < size and not self.stop.wait(every):
                    conn.sendall(b"x" * min(chunk, size - sent))
                    sent += chunk
            except OSError:
                pass
        self.sock.close()


@pytest.mark.python_only
def test_a_download_needs_a_minimum_rate(tmp_path, monkeypatch):
    """The issue's peer sends 64 KiB every 10 s (under the old rule, 64 KiB
    per 10 s, for ever): the minimum rate asks for more.  Scaled down: a
    0.5 s window and 1 MiB/s; 64 KiB every 0.4 s fails in the first window."""
    assert download.MIN_RATE * download.NO_PROGRESS > 64 << 10
    monkeypatch.setattr(download, "NO_PROGRESS", 0.5)
    monkeypatch.setattr(download, "MIN_RATE", 1 << 20)
    peer = TricklingPeer(1 << 20, 64 << 10, 0.4)
    start = time.monotonic()
    try:
        with pytest.raises(DownloadError) as e:
            fetch(peer.addr, "/r", str(tmp_path / "got"))
    finally:
        peer.stop.set()
    assert "too slow" in str(e.value) and "bytes/s needed" in str(e.value)
    assert time.monotonic() - start < 3
    assert os.listdir(tmp_path) == []


# --- 10. the operations each command sends -----------------------------------------

def test_operations_sent_per_command(server, clients, tmp_path):
    """On the real server's console: a first CONNECT sends CONNECT alone; a
    CONNECT with files recorded in an earlier session also LIST_CONTENT (to
    serve only those the index still lists); GET_FILE also LIST_USERS (the
    owner's address)."""
    f = tmp_path / "f.txt"
    f.write_text("f\n")

    c = clients(server.port)
    c.do("REGISTER alice", "c> REGISTER OK")
    c.do("CONNECT alice", "c> CONNECT OK")
    c.do("PUBLISH %s f" % f, "c> PUBLISH OK")
    c.do("DISCONNECT alice", "c> DISCONNECT OK")
    c.do("CONNECT alice", "c> CONNECT OK")
    c.do("GET_FILE alice %s %s" % (f, tmp_path / "g.txt"), "c> GET_FILE OK")
    server.wait_line(r"^s> OPERATION LIST_USERS FROM alice$")
    ops = [l.split()[2] for l in server.lines if l.startswith("s> OPERATION")]
    assert ops == ["REGISTER_AUTH", "CONNECT", "PUBLISH", "DISCONNECT",
                   "CONNECT", "LIST_CONTENT", "LIST_USERS"], ops
