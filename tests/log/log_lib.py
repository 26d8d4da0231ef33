"""Helpers for the operation-log tests: the real log server and its file."""
import hashlib
import hmac
import os
import socket
import struct

import harness
from harness import LogServer, cpu_seconds, open_fds, rss_kb  # noqa: F401  (one of each)


def wait_err(proc, pattern, timeout=10, start=0):
    """Wait for a stderr line of proc matching the regex."""
    return proc.wait_line(pattern, timeout=timeout, start=start, stderr=True)


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_lines(path, n, timeout=30):
    """Wait until the log file has at least n lines; return them (fewer
    after `timeout`: the caller's assertion says what is missing)."""
    try:
        return harness.wait_until(lambda: (lambda l: l if len(l) >= n else None)(
            read_lines(path)), timeout)
    except AssertionError:
        return read_lines(path)


def rpcbind_running():
    try:
        socket.create_connection(("127.0.0.1", 111), timeout=1).close()
        return True
    except OSError:
        return False


# --- ONC-RPC spoken directly (RFC 5531 record marking + XDR, with struct) ---

PROG, VERS = 0x2E0D1E05, 1          # the protocol's program number (LOG_RPC_PROG unset)
APPEND, NONCE, APPEND_SIGNED, APPEND_PROVEN = 1, 2, 3, 4
LAST_FRAGMENT = 0x80000000
LOG_OK, LOG_IO_ERROR, LOG_REFUSED = 0, 1, 2
GARBAGE_ARGS = 4


def xdr_string(s):
    """XDR string: length, bytes, zero padding to a multiple of 4."""
    b = s if isinstance(s, bytes) else s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * (-len(b) % 4)


def xdr_batch(entries):
    """log_batch: count, then (origin, seq, user, operation, path, datetime)."""
    out = [struct.pack(">I", len(entries))]
    for origin, seq, user, op, path, dt in entries:
        out += [struct.pack(">QQ", origin, seq),
                xdr_string(user), xdr_string(op), xdr_string(path), xdr_string(dt)]
    return b"".join(out)


def prog():
    """The program number the test's log servers serve: LOG_RPC_PROG
    (tests/conftest.py gives each test its own), else the protocol's."""
    return int(os.environ.get("LOG_RPC_PROG") or PROG)


def call_header(xid, proc):
    """An ONC-RPC call header with AUTH_NONE credential and verifier."""
    return struct.pack(">IIIIIIIIII", xid, 0, 2, prog(), VERS, proc, 0, 0, 0, 0)


def mark(record, fragment=None):
    """Record marking: the record in fragments of at most `fragment` bytes."""
    fragment = fragment or max(len(record), 1)
    out = b""
    for i in range(0, max(len(record), 1), fragment):
        piece = record[i:i + fragment]
        last = i + fragment >= len(record)
        out += struct.pack(">I", (LAST_FRAGMENT if last else 0) | len(piece)) + piece
    return out


class RpcConn:
    """One TCP connection to the log server, calls made one after another."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.xid = 0

    def close(self):
        self.sock.close()

    def recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "connection closed by the log server"
            data += chunk
        return data

    def reply(self):
        """The next reply: (accept_stat, result bytes)."""
        body = b""
        while True:
            (m,) = struct.unpack(">I", self.recv_exact(4))
            body += self.recv_exact(m & ~LAST_FRAGMENT)
            if m & LAST_FRAGMENT:
                break
        _xid, mtype, stat, _flavor, vlen = struct.unpack(">IIIII", body[:20])
        assert (mtype, stat) == (1, 0)                  # a REPLY, MSG_ACCEPTED
        (accept,) = struct.unpack(">I", body[20 + vlen:24 + vlen])
        return accept, body[24 + vlen:]

    def call(self, proc, args=b"", fragment=None):
        self.xid += 1
        self.sock.sendall(mark(call_header(self.xid, proc) + args, fragment))
        return self.reply()

    def append(self, entries, fragment=None):
        """LOGRPC_APPEND; the log_status."""
        accept, result = self.call(APPEND, xdr_batch(entries), fragment)
        assert accept == 0, accept
        return struct.unpack(">I", result)[0]

    def nonce(self):
        accept, result = self.call(NONCE)
        assert accept == 0
        return result[:16]

    def append_signed(self, entries, mac):
        accept, result = self.call(APPEND_SIGNED, mac + xdr_batch(entries))
        assert accept == 0, accept
        return struct.unpack(">I", result)[0]


    def append_proven(self, entries, mac):
        """LOGRPC_APPEND_PROVEN: (log_status, the reply's MAC)."""
        accept, result = self.call(APPEND_PROVEN, mac + xdr_batch(entries))
        assert accept == 0, accept
        return struct.unpack(">I", result[:4])[0], result[4:36]


def ack_mac(key, nonce, call_number, status, call_mac):
    """The log server's MAC of its answer (rpc/logmac.h): under a key derived
    from the shared one, over nonce, call number, status and the call's MAC."""
    ack_key = hmac.new(key, b"peerdex log acknowledgment", hashlib.sha256).digest()
    msg = nonce + struct.pack(">QI", call_number, status) + call_mac
    return hmac.new(ack_key, msg, hashlib.sha256).digest()


def sign(key, nonce, call_number, entries):
    """HMAC-SHA256(key, nonce || call number (8 bytes) || XDR(batch)): rpc/logmac.h."""
    msg = nonce + struct.pack(">Q", call_number) + xdr_batch(entries)
    return hmac.new(key, msg, hashlib.sha256).digest()
