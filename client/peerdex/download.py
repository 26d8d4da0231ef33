"""The downloader: GET_FILE from another peer into a local file, atomically.

Nothing the peer says is trusted: the size must be ASCII decimal and fit in the
free space of the target's filesystem; the bytes must keep coming at
MIN_RATE at least (MIN_RATE * NO_PROGRESS bytes, or the rest of the file, in
every NO_PROGRESS seconds: a peer that sends a little now and then cannot
keep a download going for ever); the
peer must close right after the announced size.  The bytes go to a temporary
file beside the target, renamed into place only when all of it arrived and
nothing more; on any failure the temporary file is removed.  A failure raises
DownloadError with a one-line reason for the user.
"""
import ipaddress
import os
import socket
import sys
import tempfile
import time

from .term import shown
from .wire import IO_TIMEOUT, ProtocolError, Reader, encode, parse_decimal, read_result

CHUNK = 1 << 20                 # download buffer
NO_PROGRESS = 10.0              # seconds in which ...
MIN_RATE = 32 << 10             # ... this many bytes a second must arrive on average


class DownloadError(Exception):
    """A download failed; str() is a one-line reason for the user."""


def peer_address(ip, port):
    """The (ip, port) of an owner as LIST_USERS gave them, checked: an IP
    address literal (never a name to look up) and a port in 1..65535."""
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        raise DownloadError("the index gave the owner a bad IP address: %s" % shown(ip)) \
            from None
    try:
        return ip, parse_decimal(port, 1, 65535)
    except ProtocolError:
        raise DownloadError("the index gave the owner a bad port: %s" % shown(port)) from None


_ascii_noted = set()            # peers already said to answer ASCII codes


def note_ascii_peer(addr):
    """Say once per peer that it answers GET_FILE with an ASCII code (tolerated)."""
    if addr not in _ascii_noted:
        _ascii_noted.add(addr)
        print("the peer at %s:%d answers ASCII result codes; accepted" % addr,
              file=sys.stderr, flush=True)


def fetch(addr, remote, local, progress=False):
    """Ask the peer at `addr` for `remote` and write it to `local`.

    Returns 0 when the file arrived whole, 1 when the peer says it has no
    such file; raises DownloadError for anything else.
    """
    try:
        with socket.create_connection(addr, timeout=IO_TIMEOUT) as s:
            s.sendall(encode("GET_FILE", remote))
            reader = Reader(s, deadline=time.monotonic() + IO_TIMEOUT)
            code, ascii_code = read_result(reader, True)
            if ascii_code:
                note_ascii_peer(addr)
            if code == 1:
                return 1
            if code != 0:
                raise DownloadError("the peer answered code %d" % code)
            try:
                size = reader.number()
            except ProtocolError as e:
                raise DownloadError("the peer sent a bad size (%s)" % shown(e)) from None
            receive_file(reader, size, local, progress)
            return 0
    except ProtocolError as e:
        raise DownloadError("the peer broke the protocol: %s" % shown(e)) from None
    except OSError as e:
        raise DownloadError("%s:%d: %s" % (addr[0], addr[1], e.strerror or e)) from None


def check_space(directory, size):
    """DownloadError unless `size` bytes fit in the filesystem of `directory`."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    if size > free:
        raise DownloadError("the peer announced %d bytes; %s has only %d bytes free"
                            % (size, directory, free))


def _recv(sock, view, want, window_end, window_got=0):
    """recv_into with the time left in the current progress window, in which
    `window_got` bytes came so far."""
    left = window_end - time.monotonic()
    try:
        if left <= 0:
            raise socket.timeout
        sock.settimeout(left)
        return sock.recv_into(view, want)
    except socket.timeout:
        if window_got:
            raise DownloadError("the peer is too slow: %d bytes in %g s (at least %d "
                                "bytes/s needed)" % (window_got, NO_PROGRESS, MIN_RATE)) \
                from None
        raise DownloadError("nothing received from the peer for %g s" % NO_PROGRESS) \
            from None
    except OSError as e:
        raise DownloadError("the connection to the peer failed: %s" % (e.strerror or e)) \
            from None


def receive_file(reader, size, local, progress=False):
    """Write exactly `size` bytes from the peer into `local`, atomically.

    Raises DownloadError on failure, leaving no file behind.
    """
    local = os.path.abspath(local)
    try:
        _receive(reader, size, local, progress)
    except OSError as e:
        raise DownloadError("cannot write %s: %s" % (shown(local), e.strerror or e)) from None


def _receive(reader, size, local, progress):
    directory = os.path.dirname(local)
    check_space(directory, size)
    if len(reader.buf) > size:
        raise DownloadError("the peer sent more bytes than the %d it announced" % size)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(local) + ".",
                               suffix=".part", dir=directory)
    show = progress and sys.stderr.isatty() and size >= (8 << 20)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(reader.buf)
            got = len(reader.buf)
            view = memoryview(bytearray(CHUNK))
            window_end, window_got = time.monotonic() + NO_PROGRESS, 0
            window_bytes = int(MIN_RATE * NO_PROGRESS)
            while got < size:
                n = _recv(reader.sock, view, min(CHUNK, size - got), window_end, window_got)
                if n == 0:
                    raise DownloadError("the peer closed after %d of %d bytes" % (got, size))
                f.write(view[:n])
                got += n
                window_got += n
                if window_got >= window_bytes:
                    window_end, window_got = time.monotonic() + NO_PROGRESS, 0
                if show:
                    print("\r%5.1f%%  %d / %d bytes" % (100.0 * got / size, got, size),
                          end="", file=sys.stderr, flush=True)
            # The peer must close now: one more byte is a corrupt file.
            try:
                extra = _recv(reader.sock, view, 1, time.monotonic() + NO_PROGRESS)
            except DownloadError:
                raise DownloadError("the peer did not close after the %d bytes" % size) \
                    from None
            if extra:
                raise DownloadError("the peer sent more bytes than the %d it announced" % size)
        os.replace(tmp, local)
    finally:
        if show:
            print(file=sys.stderr)
        if os.path.exists(tmp):
            os.unlink(tmp)
