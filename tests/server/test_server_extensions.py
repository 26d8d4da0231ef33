"""EXTENSIONS: how a client finds out what a server speaks beyond the
classic operations (docs/protocol.md, "Extensions")."""
import harness


def read_extensions(port):
    """The names an EXTENSIONS reply lists, checking its shape byte by byte."""
    raw = harness.exchange(port, harness.encode("EXTENSIONS", harness.DATETIME))
    assert raw[:1] == b"\0", raw
    fields = raw[1:].split(b"\0")
    assert fields[-1] == b"", raw          # every string NUL-terminated, nothing after
    count, names = int(fields[0]), fields[1:-1]
    assert count == len(names), raw
    return [n.decode("ascii") for n in names]


def test_extensions_lists_known_operations(server):
    """Each name listed is an operation the server parses (never closes on)."""
    for name in read_extensions(server.port):
        assert name.isupper()


def test_extensions_is_no_users_operation(server):
    """No console line, no registry change: the classic lines stay as they were."""
    read_extensions(server.port)
    assert harness.code(server.port, "REGISTER", "alice") == 0
    server.wait_line(r"s> OPERATION REGISTER FROM alice")
    assert not any("EXTENSIONS" in line for line in server.lines)


def test_bad_extensions_request_gets_other_error(server):
    """A missing date-time is a half-sent request: "other error" (2), nothing else."""
    raw = harness.exchange(server.port, b"EXTENSIONS\0", shut_wr=True)
    assert raw == b"\x02"
