"""Addresses: the server listens on IPv6 and IPv4, lists IPv4 peers as dotted
IPv4, and lists a user connected from loopback with the address a remote
requester reached the server at."""
import socket

import pytest

import harness

DT = harness.DATETIME


def ipv6_loopback_works():
    """True when this host can listen and connect on ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def exchange_from(port, dest, data, family=socket.AF_INET, source=None):
    """Send one request to dest:port (from source, if given); return the reply."""
    with socket.socket(family) as s:
        s.settimeout(10)
        if source:
            s.bind((source, 0))
        s.connect((dest, port))
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def users_seen(port, dest, requester, source=None, family=socket.AF_INET):
    """LIST_USERS as `requester` over dest: {name: (ip, port)}."""
    raw = exchange_from(port, dest, harness.encode("LIST_USERS", DT, requester),
                        family, source)
    code, f = harness.parse_reply(raw)
    assert code == 0
    return {f[i]: (f[i + 1], f[i + 2]) for i in range(1, len(f), 3)}


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback on this host")
def test_ipv6_client_is_served_and_listed_as_such(server):
    """A client on ::1 is served; an IPv4 client still appears as dotted IPv4."""
    port = server.port
    reg = exchange_from(port, "::1", harness.encode("REGISTER", DT, "six"), socket.AF_INET6)
    assert reg == b"\0"
    assert exchange_from(port, "::1", harness.encode("CONNECT", DT, "six", "40006"),
                         socket.AF_INET6) == b"\0"
    assert harness.code(port, "REGISTER", "four") == 0
    assert harness.code(port, "CONNECT", "four", "40004") == 0
    seen = users_seen(port, "127.0.0.1", "four")
    assert seen == {"six": ("::1", "40006"), "four": ("127.0.0.1", "40004")}
    assert users_seen(port, "::1", "six", family=socket.AF_INET6) == seen


def test_loopback_user_is_listed_with_the_address_a_remote_requester_used(server):
    """A user connected from 127.0.0.1 is listed to a requester on another
    address with the server address that requester reached; requesters on
    loopback still see 127.0.0.1."""
    host = server.host_ip               # this host's first non-loopback IPv4 address
    if host.startswith("127."):
        pytest.skip("this host has no address but loopback")
    port = server.port
    assert harness.code(port, "REGISTER", "local") == 0
    assert harness.code(port, "CONNECT", "local", "40001") == 0
    assert exchange_from(port, host, harness.encode("REGISTER", DT, "remote"),
                         source=host) == b"\0"
    assert exchange_from(port, host, harness.encode("CONNECT", DT, "remote", "40002"),
                         source=host) == b"\0"

    remote_view = users_seen(port, host, "remote", source=host)
    assert remote_view == {"local": (host, "40001"), "remote": (host, "40002")}
    local_view = users_seen(port, "127.0.0.1", "local")
    assert local_view == {"local": ("127.0.0.1", "40001"), "remote": (host, "40002")}
    # Another loopback address is loopback too.
    assert users_seen(port, "127.0.0.1", "local", source="127.0.0.5") == local_view
