"""Every console line of every command, from a real client against the real server."""
import subprocess

import pytest

import harness
from client_lib import CLIENT, run_script


def test_every_result_line(server, tmp_path):
    # A second user, connected by the protocol directly, for "already connected".
    assert harness.code(server.port, "REGISTER", "busy") == 0
    assert harness.code(server.port, "CONNECT", "busy", "40009") == 0
    f = tmp_path / "notes.txt"
    f.write_text("x")
    script = [
        "LIST_USERS",                       # nobody connected here yet
        "PUBLISH %s d" % f,
        "DELETE %s" % f,
        "LIST_CONTENT busy",
        "REGISTER alice",
        "REGISTER alice",
        "CONNECT ghost",
        "CONNECT busy",
        "CONNECT alice",
        "PUBLISH %s lecture notes" % f,
        "PUBLISH %s again" % f,
        "LIST_CONTENT alice",
        "LIST_CONTENT ghost",
        "DELETE %s" % f,
        "DELETE %s" % f,
        "DISCONNECT ghost",
        "DISCONNECT busy",
        "UNREGISTER ghost",
        "UNREGISTER alice",
        "UNREGISTER alice",
    ]
    status, out, err = run_script(server.port, script)
    assert status == 1, err             # a scripted run with failures exits 1
    assert out == [
        "c> LIST_USERS FAIL, USER NOT CONNECTED",
        "c> PUBLISH FAIL, USER NOT CONNECTED",
        "c> DELETE FAIL, USER NOT CONNECTED",
        "c> LIST_CONTENT FAIL, USER NOT CONNECTED",
        "c> REGISTER OK",
        "c> USERNAME IN USE",
        "c> CONNECT FAIL, USER DOES NOT EXIST",
        "c> USER ALREADY CONNECTED",
        "c> CONNECT OK",
        "c> PUBLISH OK",
        "c> PUBLISH FAIL, CONTENT ALREADY PUBLISHED",
        "c> LIST_CONTENT OK",
        "\t%s" % f,
        "c> LIST_CONTENT FAIL, REMOTE USER DOES NOT EXIST",
        "c> DELETE OK",
        "c> DELETE FAIL, CONTENT NOT PUBLISHED",
        "c> DISCONNECT FAIL, USER DOES NOT EXIST",
        "c> DISCONNECT OK",             # busy was connected; alice's listener stops too
        "c> USER DOES NOT EXIST",
        "c> UNREGISTER OK",
        "c> USER DOES NOT EXIST",
    ]


def test_server_side_not_connected_lines(server):
    """The server's own "not connected" answers, for a user this client
    connected and then the server disconnected behind its back."""
    status, out, _ = run_script(server.port, ["REGISTER carol", "CONNECT carol",
                                              "DISCONNECT carol", "DISCONNECT carol"])
    assert out[-2:] == ["c> DISCONNECT OK", "c> DISCONNECT FAIL, USER NOT CONNECTED"]


def test_list_users_lines(server):
    assert harness.code(server.port, "REGISTER", "bob") == 0
    assert harness.code(server.port, "CONNECT", "bob", "40002") == 0
    status, out, _ = run_script(server.port, ["REGISTER alice", "CONNECT alice", "LIST_USERS"])
    assert out[:3] == ["c> REGISTER OK", "c> CONNECT OK", "c> LIST_USERS OK"]
    rows = sorted(out[3:5])
    assert rows[0].startswith("\talice 127.0.0.1 ") and rows[0].split()[2].isdigit()
    assert rows[1] == "\tbob 127.0.0.1 40002"
    assert out[5:] == ["c> DISCONNECT OK"]          # end of input disconnects alice


def test_commands_are_case_insensitive_and_checked(server):
    status, out, err = run_script(server.port, [
        "register Dave", "Register Dave", "rEgIsTeR", "REGISTER a b", "frobnicate x", "",
        "help", "GET_FILE a b"])
    assert status == 1
    assert out[0:2] == ["c> REGISTER OK", "c> USERNAME IN USE"]
    assert any(line.startswith("  GET_FILE <user> <remote path> <local path> ")
               for line in out)
    # Usage errors go to stderr, stdout keeps result lines and HELP's text.
    err = err.splitlines()
    assert err[0] == err[1] == "usage: REGISTER <user>"
    assert err[2].startswith("unknown command 'frobnicate'")
    assert err[-1] == "usage: GET_FILE <user> <remote path> <local path>"


def test_quit_disconnects_and_stops(server):
    status, out, _ = run_script(server.port, ["REGISTER erin", "CONNECT erin", "QUIT",
                                              "REGISTER never"])
    assert status == 0
    assert out == ["c> REGISTER OK", "c> CONNECT OK", "c> DISCONNECT OK"]
    assert harness.code(server.port, "REGISTER", "never") == 0      # QUIT stopped reading
    assert harness.code(server.port, "REGISTER", "x") == 0
    assert harness.code(server.port, "CONNECT", "x", "40000") == 0
    code, fields = harness.request(server.port, "LIST_USERS", "x")
    assert "erin" not in fields


def test_connect_as_another_user_disconnects_the_first(server):
    status, out, _ = run_script(server.port, ["REGISTER a1", "REGISTER a2", "CONNECT a1",
                                              "CONNECT a2", "LIST_USERS"])
    assert out[:6] == ["c> REGISTER OK", "c> REGISTER OK", "c> CONNECT OK",
                       "c> DISCONNECT OK", "c> CONNECT OK", "c> LIST_USERS OK"]
    assert len(out) == 8 and out[6].startswith("\ta2 ") and out[7] == "c> DISCONNECT OK"


def test_publish_relative_path_is_made_absolute(server, tmp_path):
    (tmp_path / "rel.txt").write_text("r")
    r = subprocess.run([harness.PYTHON, CLIENT, "-s", "127.0.0.1", "-p", str(server.port)],
                       input=b"REGISTER f\nCONNECT f\nPUBLISH rel.txt relative\nLIST_CONTENT f\n",
                       capture_output=True, cwd=str(tmp_path), timeout=30)
    out = r.stdout.decode().splitlines()
    assert out[2:5] == ["c> PUBLISH OK", "c> LIST_CONTENT OK", "\t%s" % (tmp_path / "rel.txt")]


@pytest.mark.python_only
def test_unreachable_server_prints_fail_lines():
    with harness.dead_port() as dead:
        status, out, _ = run_script(dead.port, ["REGISTER a", "UNREGISTER a", "CONNECT a",
                                                "DISCONNECT a"])
    assert status == 1
    assert out == ["c> REGISTER FAIL", "c> UNREGISTER FAIL", "c> CONNECT FAIL",
                   "c> DISCONNECT FAIL"]


@pytest.mark.python_only
def test_bad_command_line_exits_2():
    for args in (["-s", "127.0.0.1"], ["-p", "1"], ["-s", "h", "-p", "x"],
                 ["-s", "h", "-p", "70000"], ["-s", "h", "-p", "1", "--nope"]):
        r = subprocess.run([harness.PYTHON, CLIENT, *args], capture_output=True, timeout=30)
        assert r.returncode == 2, args
        assert b"usage:" in r.stderr
