"""The downloader: GET_FILE from another peer into a local file, atomically."""
import os
import socket
import sys
import tempfile

from .wire import IO_TIMEOUT, ProtocolError, Reader, encode

CHUNK = 1 << 20                 # download buffer


def fetch(addr, remote, local, progress):
    """Ask the peer at `addr` for `remote` and write it to `local`.

    Returns 0, 1 (no such file) or None (any other failure).
    """
    try:
        with socket.create_connection(addr, timeout=IO_TIMEOUT) as s:
            s.sendall(encode("GET_FILE", remote))
            reader = Reader(s)
            code = reader.byte()
            if code != 0:
                return 1 if code == 1 else None
            size = reader.number()
            return 0 if receive_file(reader, size, local, progress) else None
    except (OSError, ProtocolError):
        return None


def receive_file(reader, size, local, progress):
    """Write exactly `size` bytes into `local`, atomically; True on success.

    The bytes go to a temporary file beside the target, renamed into place only
    when all of them arrived, so a failed download leaves nothing behind.
    """
    local = os.path.abspath(local)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(local) + ".",
                               suffix=".part", dir=os.path.dirname(local))
    show = progress and sys.stderr.isatty() and size >= (8 << 20)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(reader.buf[:size])
            got = min(len(reader.buf), size)
            view = memoryview(bytearray(CHUNK))
            while got < size:
                n = reader.sock.recv_into(view, min(CHUNK, size - got))
                if n == 0:
                    raise ProtocolError("short file: %d of %d bytes" % (got, size))
                f.write(view[:n])
                got += n
                if show:
                    print("\r%5.1f%%  %d / %d bytes" % (100.0 * got / size, got, size),
                          end="", file=sys.stderr, flush=True)
        os.replace(tmp, local)
        return True
    except (OSError, ProtocolError):
        return False
    finally:
        if show:
            print(file=sys.stderr)
        if os.path.exists(tmp):
            os.unlink(tmp)
