"""The wire format: NUL-terminated fields, one-byte result codes, decimal numbers.

See /work/shared/spec/protocol.md (framing) and docs/client.md.
"""

FIELD_MAX = 256                 # longest field, without its NUL
IO_TIMEOUT = 10.0               # seconds for any one network exchange


class ProtocolError(Exception):
    """The other side broke the protocol or went away."""


def encode(*fields):
    """Frame fields: each one as UTF-8 followed by a NUL byte."""
    return b"".join((f if isinstance(f, bytes) else str(f).encode()) + b"\0" for f in fields)


class Reader:
    """Buffered reading of raw bytes and NUL-terminated fields from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ProtocolError("connection closed early")
        self.buf += data

    def byte(self):
        """One raw byte (a result code)."""
        while not self.buf:
            self._fill()
        b = self.buf[0]
        del self.buf[0]
        return b

    def field(self, limit=FIELD_MAX):
        """One NUL-terminated field, at most `limit` bytes."""
        while True:
            i = self.buf.find(b"\0", 0, limit + 1)
            if i >= 0:
                text = bytes(self.buf[:i]).decode("utf-8", "replace")
                del self.buf[:i + 1]
                return text
            if len(self.buf) > limit:
                raise ProtocolError("field too long")
            self._fill()

    def number(self, limit=20):
        """A decimal-text field."""
        text = self.field(limit)
        if not text.isdigit():
            raise ProtocolError("not a number: %r" % text)
        return int(text)


def read_users(reader):
    """LIST_USERS data: a count, then name, IP and port per user."""
    return [(reader.field(), reader.field(), reader.field()) for _ in range(reader.number())]


def read_content(reader):
    """LIST_CONTENT data: a count, then one path per file."""
    return [reader.field() for _ in range(reader.number())]
