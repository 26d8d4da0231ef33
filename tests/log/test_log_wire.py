"""The log server spoken to directly: a minimal ONC-RPC client (RFC 5531
record marking + XDR, written with struct) sends batches the way the index
server does, including the resend of an unacknowledged batch."""
import socket
import struct

from log_lib import APPEND, LAST_FRAGMENT, call_header, mark, read_lines, xdr_batch


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed by the log server"
        data += chunk
    return data


def append(port, entries, xid=1):
    """One LOGRPC_APPEND call; returns the log_status of the reply."""
    call = call_header(xid, APPEND) + xdr_batch(entries)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(mark(call))
        reply = b""
        while True:
            (marker,) = struct.unpack(">I", recv_exact(s, 4))
            reply += recv_exact(s, marker & ~LAST_FRAGMENT)
            if marker & LAST_FRAGMENT:
                break
    rxid, mtype, stat, _flavor, vlen = struct.unpack(">IIIII", reply[:20])
    assert (rxid, mtype, stat) == (xid, 1, 0)         # a REPLY, MSG_ACCEPTED
    accept, status = struct.unpack(">II", reply[20 + vlen:28 + vlen])
    assert accept == 0                                # SUCCESS
    return status


ORIGIN = 0x1234ABCD5678EF00
DT = "17/12/2014 13:20:35"


def test_resent_batch_is_written_once_even_across_a_restart(logs):
    log = logs(port=0)
    first = [(ORIGIN, 1, "alice", "PUBLISH", "/home/alice/a.txt", DT),
             (ORIGIN, 2, "bob", "LIST_USERS", "", DT)]
    assert append(log.port, first) == 0
    assert append(log.port, first, xid=2) == 0        # the resend after a lost reply
    assert log.stop() == 0
    again = logs(path=log.path, port=log.port)
    # Resent again after the restart, with one new entry behind it.
    assert append(again.port, first + [(ORIGIN, 3, "carol", "DELETE", "/x", DT)]) == 0
    assert read_lines(log.path) == ["alice PUBLISH /home/alice/a.txt " + DT,
                                    "bob LIST_USERS " + DT,
                                    "carol DELETE /x " + DT]


def test_origins_are_independent(logs):
    log = logs(port=0)
    assert append(log.port, [(1, 1, "a", "REGISTER", "", DT)]) == 0
    assert append(log.port, [(2, 1, "b", "REGISTER", "", DT)]) == 0
    assert append(log.port, [(1, 1, "a", "REGISTER", "", DT)]) == 0
    assert read_lines(log.path) == ["a REGISTER " + DT, "b REGISTER " + DT]
