"""The wire format: NUL-terminated fields, one-byte result codes, decimal numbers.

See docs/protocol.md (framing, extensions) and docs/client.md.
"""
import re
import socket
import time

FIELD_MAX = 256                 # longest field, without its NUL
IO_TIMEOUT = 10.0               # seconds for any one network exchange (the whole reply)
LIST_MAX = 1000000              # entries a LIST_USERS or LIST_CONTENT reply may count
REPLY_MAX = 64 << 20            # bytes any one reply may bring


DECIMAL_RX = re.compile(rb"[0-9]{1,20}")


class ProtocolError(Exception):
    """The other side broke the protocol or went away."""


def parse_decimal(raw, lo=0, hi=None):
    """A number sent as decimal text: ASCII digits only (no sign, blank,
    superscript or other Unicode digit), within lo..hi; ProtocolError otherwise."""
    if isinstance(raw, str):
        try:
            raw = raw.encode("ascii")
        except UnicodeEncodeError:
            raise ProtocolError("not a number: %r" % raw) from None
    if not DECIMAL_RX.fullmatch(raw):
        raise ProtocolError("not a number: %r" % raw)
    n = int(raw)
    if n < lo or (hi is not None and n > hi):
        raise ProtocolError("number out of range: %d" % n)
    return n


def encode(*fields):
    """Frame fields: each one as UTF-8 followed by a NUL byte."""
    return b"".join((f if isinstance(f, bytes) else str(f).encode()) + b"\0" for f in fields)


class Reader:
    """Buffered reading of raw bytes and NUL-terminated fields from a socket.

    With a `deadline` (a time.monotonic() value) the whole reading must be
    done by then, however the bytes trickle in.
    """

    def __init__(self, sock, deadline=None, max_bytes=REPLY_MAX):
        self.sock = sock
        self.buf = bytearray()
        self.deadline = deadline
        self.left = max_bytes       # bytes this reply may still bring

    def _fill(self):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError("no whole reply within the deadline")
            self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise ProtocolError("no whole reply within the deadline") from None
        if not data:
            raise ProtocolError("connection closed early")
        self.left -= len(data)
        if self.left < 0:
            raise ProtocolError("reply over %d bytes" % REPLY_MAX)
        self.buf += data

    def at_end(self):
        """True when the other side closed with nothing more to read."""
        if self.buf:
            return False
        try:
            self._fill()
        except ProtocolError as e:
            if str(e) == "connection closed early":
                return True
            raise
        return False

    def byte(self):
        """One raw byte (a result code)."""
        while not self.buf:
            self._fill()
        b = self.buf[0]
        del self.buf[0]
        return b

    def raw_field(self, limit=FIELD_MAX):
        """One NUL-terminated field as bytes, at most `limit` bytes."""
        while True:
            i = self.buf.find(b"\0", 0, limit + 1)
            if i >= 0:
                raw = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return raw
            if len(self.buf) > limit:
                raise ProtocolError("field too long")
            self._fill()

    def field(self, limit=FIELD_MAX):
        """One NUL-terminated field as text, at most `limit` bytes."""
        return self.raw_field(limit).decode("utf-8", "replace")

    def number(self, lo=0, hi=None):
        """A decimal-text field (strict: see parse_decimal)."""
        return parse_decimal(self.raw_field(20), lo, hi)


EXTENSION_NAME_RX = re.compile(rb"[A-Z][A-Z0-9_]{0,31}")
EXTENSIONS_MAX = 64             # names a well-formed EXTENSIONS reply may list


def server_extensions(address, stamp, timeout=IO_TIMEOUT):
    """The extension operations the index server at `address` speaks
    (docs/protocol.md, "Extensions"), as a frozenset of names, or None when
    it is a classic server: one that closes the connection on the unknown
    operation, or answers anything but a well-formed list.

    `stamp` is the date-time field.  OSError (the server cannot be reached)
    is left to the caller: it says nothing about what the server speaks.
    """
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(encode("EXTENSIONS", stamp))
        # Nothing more comes: a classic server that would wait for more
        # fields of the operation it does not know sees the end at once.
        s.shutdown(socket.SHUT_WR)
        reader = Reader(s, time.monotonic() + timeout)
        try:
            if reader.byte() != 0:
                return None
            names = set()
            for _ in range(reader.number(0, EXTENSIONS_MAX)):
                name = reader.raw_field(32)
                if not EXTENSION_NAME_RX.fullmatch(name):
                    return None
                names.add(name.decode("ascii"))
            return frozenset(names)
        except (ProtocolError, ConnectionError):
            return None


def read_result(reader, data_follows):
    """The result code that starts a reply, and whether it came as ASCII.

    The statement's shape is one raw byte 0..4.  Tolerated: the ASCII digit
    '0'..'4' followed by a NUL or by the end of the reply (some servers and
    peers send that); then a reply with data (data_follows and code 0) goes
    on after the NUL.  Anything else raises ProtocolError showing the first
    bytes, so that a text answer such as "1 Invalid operation." is never
    read as a code.
    """
    code = reader.byte()
    if code <= 4:
        return code, False
    if 0x30 <= code <= 0x34:
        if reader.at_end():
            if code == 0x30 and data_follows:
                raise ProtocolError("reply %s ends after its code" % first_bytes(b"0"))
            return code - 0x30, True
        if reader.buf[:1] == b"\0":
            del reader.buf[0]
            return code - 0x30, True
    raise ProtocolError("unexpected reply %s" % first_bytes(bytes([code]) + reader.buf))


def first_bytes(data, limit=16):
    """The first bytes of a reply, shown as a Python bytes literal."""
    return repr(bytes(data[:limit])) + ("..." if len(data) > limit else "")


def read_users(reader):
    """LIST_USERS data: a count (at most LIST_MAX), then name, IP and port per user."""
    return [(reader.field(), reader.field(), reader.field())
            for _ in range(reader.number(0, LIST_MAX))]


def read_matches(reader):
    """SEARCH data: a count, then owner, path and description per match."""
    return [(reader.field(), reader.field(), reader.field())
            for _ in range(reader.number(0, 1000))]


def read_content(reader):
    """LIST_CONTENT data: a count (at most LIST_MAX), then one path per file."""
    return [reader.field() for _ in range(reader.number(0, LIST_MAX))]
