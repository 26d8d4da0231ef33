"""The client's SEARCH and GET_FILE #n between real clients and the real
server; SEARCH against a server that does not offer it."""
import os
import re
import subprocess

import pytest

import harness
from client_lib import CLIENT, start_connected
from stubs import StubServer


def test_search_lines_and_get_file_by_number(server, clients, tmp_path):
    notes = tmp_path / "Lecture-Notes.pdf"
    notes.write_bytes(b"%PDF week 3\n" * 100)
    lab = tmp_path / "lab.txt"
    lab.write_text("lab sheet\n")
    alice = start_connected(clients, server.port, "alice")
    alice.do("PUBLISH %s Week 3: routing" % notes, "c> PUBLISH OK")
    alice.do("PUBLISH %s lecture lab" % lab, "c> PUBLISH OK")
    bob = start_connected(clients, server.port, "bob")
    bob.do("GET_FILE #1", "c> GET_FILE FAIL")
    bob.wait_line(r"no match #1 \(no SEARCH yet\)", stderr=True)

    start = len(bob.lines)
    bob.do("SEARCH LECT", "c> SEARCH OK")
    bob.wait_line(r"^\t2 alice ", start=start)
    assert bob.lines[start:] == ["c> SEARCH OK",
                                 "\t1 alice %s Week 3: routing" % notes,
                                 "\t2 alice %s lecture lab" % lab]

    into = tmp_path / "into"
    into.mkdir()
    bob.do("GET_FILE #1 %s" % into, "c> GET_FILE OK")
    assert (into / "Lecture-Notes.pdf").read_bytes() == notes.read_bytes()
    bob.do("GET_FILE #2 %s" % (into / "renamed.txt"), "c> GET_FILE OK")
    assert (into / "renamed.txt").read_text() == "lab sheet\n"
    bob.do("GET_FILE #3 %s" % into, "c> GET_FILE FAIL")
    bob.wait_line(r"no match #3 \(the last SEARCH found 2", stderr=True)

    # A search with no match keeps the numbering of nothing.
    start = len(bob.lines)
    bob.do("SEARCH nothing-like-it", "c> SEARCH OK")
    bob.do("GET_FILE #1", "c> GET_FILE FAIL")
    assert bob.lines[start:] == ["c> SEARCH OK", "c> GET_FILE FAIL"]
    bob.wait_line(r"no match #1 \(the last SEARCH found nothing\)", stderr=True)


def test_get_file_by_number_into_current_directory(server, clients, tmp_path):
    song = tmp_path / "song.ogg"
    song.write_bytes(b"OggS" + os.urandom(1000))
    alice = start_connected(clients, server.port, "alice")
    alice.do("PUBLISH %s" % song, "c> PUBLISH OK")
    here = tmp_path / "here"
    here.mkdir()
    script = "REGISTER carol\nCONNECT carol\nSEARCH ogg\nGET_FILE #1\nQUIT\n"
    r = subprocess.run([harness.PYTHON, CLIENT, "-s", "127.0.0.1", "-p", str(server.port)],
                       input=script.encode(), capture_output=True, timeout=60, cwd=here)
    out = r.stdout.decode().splitlines()
    assert "c> GET_FILE OK" in out, (out, r.stderr)
    assert (here / "song.ogg").read_bytes() == song.read_bytes()


def test_search_failure_lines(server, clients):
    bob = clients(server.port, "--classic")     # so that UNREGISTER may come from elsewhere
    bob.do("SEARCH x", "c> SEARCH FAIL, USER NOT CONNECTED")          # no CONNECT yet
    bob.do("REGISTER bob", "c> REGISTER OK")
    bob.do("CONNECT bob", "c> CONNECT OK")
    bob.do("SEARCH ---", "c> SEARCH FAIL")                            # no word: other error
    bob.do("SEARCH " + "w" * 257, "c> SEARCH FAIL")                   # over 256 bytes
    assert server.request("UNREGISTER", "bob")[0] == 0
    bob.do("SEARCH x", "c> SEARCH FAIL, USER DOES NOT EXIST")


def test_help_search(server, clients):
    c = clients(server.port)
    start = len(c.lines)
    c.send("HELP SEARCH")
    c.wait_line(r"<n> <user> <path> <description>", start=start)
    text = "\n".join(c.lines[start:])
    for line in ("usage: SEARCH <words...>", "c> SEARCH OK", "c> SEARCH FAIL, USER DOES NOT EXIST",
                 "c> SEARCH FAIL, USER NOT CONNECTED", "c> SEARCH FAIL",
                 "NOT OFFERED BY THIS SERVER"):
        assert line in text, text
    start = len(c.lines)
    c.send("HELP GET_FILE")
    c.wait_line(r"GET_FILE #<n>", start=start)


@pytest.mark.python_only
def test_search_against_a_server_without_it(clients):
    """A classic server closes the connection on EXTENSIONS: one line says
    search is not offered, and SEARCH is never sent."""
    def answer(fields):
        if fields[0] == "EXTENSIONS":
            return b""              # closes unanswered, as a classic server does
        if fields[0] == "LIST_CONTENT":
            return b"\x000\x00"
        return b"\x00"

    stub = StubServer(answer)
    try:
        c = clients(stub.port)
        c.do("REGISTER bob", "c> REGISTER OK")
        c.do("CONNECT bob", "c> CONNECT OK")
        start = len(c.lines)
        c.do("SEARCH lecture", re.escape("c> SEARCH FAIL, NOT OFFERED BY THIS SERVER (find files "
                                         "with LIST_USERS, then LIST_CONTENT <user>)"))
        c.do("SEARCH again", "c> SEARCH FAIL, NOT OFFERED.*")
        assert len(c.lines) - start == 2
        ops = [f[0] for f in stub.requests]
        assert "SEARCH" not in ops and ops.count("EXTENSIONS") == 1, ops
    finally:
        stub.close()
