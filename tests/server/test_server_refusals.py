"""A refused request leaves a line on the server's stderr (source IP and
why), stdout keeps only the protocol's lines, and a request that can no
longer be valid is answered once its sender pauses, not at the deadline."""
import socket
import time

import pytest

import harness

DT = harness.DATETIME


@pytest.fixture
def srv(make_server):
    return make_server("-t", "5")


def timed_reply(srv, data):
    """Send data, keep the connection open, return (reply, seconds)."""
    with socket.create_connection(srv.addr, timeout=10) as s:
        s.sendall(data)
        start = time.monotonic()
        reply = s.recv(16)
        return reply, time.monotonic() - start


@pytest.mark.parametrize("data, expect, why", [
    (harness.encode("register", DT, "carol"), b"",
     r'request FROM 127\.0\.0\.1: unknown operation "register"'),
    (harness.encode("REGISTER", "x" * 300), b"\x02",
     r"REGISTER FROM 127\.0\.0\.1: field over 256 bytes"),
])
def test_refusals_are_reported_on_stderr(srv, data, expect, why):
    assert harness.exchange(srv.port, data) == expect
    srv.wait_line(r"^s> REFUSED " + why, timeout=5, stderr=True)
    assert not any("REFUSED" in line for line in srv.lines)


def test_no_datetime_is_answered_at_once_and_reported(srv):
    """REGISTER alice without a date-time: other error after the 0.5 s pause,
    not after the 5 s deadline; nothing registered."""
    reply, took = timed_reply(srv, harness.encode("REGISTER", "alice"))
    assert reply == b"\x02"
    assert 0.4 < took < 3.0
    srv.wait_line(r'^s> REFUSED REGISTER FROM 127\.0\.0\.1: no date-time '
                  r'\(second field "alice"\)', timeout=5, stderr=True)
    assert harness.code(srv.port, "UNREGISTER", "alice") == 1


def test_refused_field_is_answered_at_once(srv):
    reply, took = timed_reply(srv, harness.encode("CONNECT", DT, "two words"))
    assert reply == b"\x03"
    assert took < 3.0
    srv.wait_line(r"^s> REFUSED CONNECT FROM 127\.0\.0\.1: user name", timeout=5,
                  stderr=True)


def test_a_whole_request_with_an_odd_datetime_is_still_served(srv):
    """The classic replies do not change: only the waiting does."""
    assert harness.code(srv.port, "REGISTER", "carol", datetime="2014-12-17T13:20:35") == 0
    assert harness.code(srv.port, "UNREGISTER", "carol", datetime="") == 0


def test_odd_datetime_sent_in_pieces_is_still_served(srv):
    """A sender that pauses less than 0.5 s between pieces is waited for."""
    with socket.create_connection(srv.addr, timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(harness.encode("REGISTER", "noon"))
        time.sleep(0.1)
        s.sendall(harness.encode("dave"))
        assert s.recv(16) == b"\x00"


def test_stall_is_reported_at_the_deadline(make_server):
    srv = make_server("-t", "1")
    reply, took = timed_reply(srv, harness.encode("REGISTER", DT) + b"car")
    assert reply == b"\x02" and took >= 0.9
    srv.wait_line(r"^s> REFUSED REGISTER FROM 127\.0\.0\.1: no whole request within "
                  r"the deadline", timeout=5, stderr=True)


def test_a_bare_connect_and_close_is_not_reported(srv):
    socket.create_connection(srv.addr).close()
    harness.exchange(srv.port, harness.encode("bad"))
    srv.wait_line(r"unknown operation", timeout=5, stderr=True)
    assert sum("REFUSED" in line for line in srv.err_lines) == 1
