"""The peer file server: GET_FILE for the files our user has published."""
import os
import socket
import stat
import threading
import time

from .wire import IO_TIMEOUT, ProtocolError, Reader, encode


def listen_any():
    """A listening socket on every address, IPv6 and IPv4 (the index lists
    whichever address our CONNECT came from), or IPv4 only where the host
    has no IPv6."""
    if socket.has_ipv6:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        except OSError:
            sock = None
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("::", 0))
                sock.listen(64)
                return sock
            except OSError:
                sock.close()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", 0))
    sock.listen(64)
    return sock


class PeerServer:
    """Serves GET_FILE for the files our user has published, while connected.

    `published` maps each published path to the real path it had when it was
    published; a request is served only if the path is published and still
    resolves to that same real path, is a regular file, and can be opened.
    The lock guards `published` and `uploads`; nothing else is shared between
    threads.
    """

    def __init__(self):
        self.sock = listen_any()
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.published = {}
        self.uploads = 0                # GET_FILE requests being served; under lock
        self.stopping = False
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def stop(self):
        """Stop listening; downloads in progress finish on their own."""
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.thread is not None:
            self.thread.join(2)

    def publish(self, path):
        with self.lock:
            self.published[path] = os.path.realpath(path)

    def active_uploads(self):
        """How many GET_FILE requests are being served right now."""
        with self.lock:
            return self.uploads

    def unpublish(self, path):
        with self.lock:
            self.published.pop(path, None)

    def _accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                if self.stopping:
                    return
                time.sleep(0.05)        # out of descriptors: do not spin
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _open_published(self, path):
        """An open file object for a published path, or None (code 1)."""
        with self.lock:
            real = self.published.get(path)
        if real is None or os.path.realpath(path) != real:
            return None
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return os.fdopen(fd, "rb")

    def _serve(self, conn):
        """One GET_FILE request, counted in `uploads` while it runs."""
        with self.lock:
            self.uploads += 1
        try:
            self._serve_one(conn)
        finally:
            with self.lock:
                self.uploads -= 1

    def _serve_one(self, conn):
        """One GET_FILE request: code, size, bytes, close."""
        with conn:
            conn.settimeout(IO_TIMEOUT)
            try:
                reader = Reader(conn)
                if reader.field(16) != "GET_FILE":
                    return                      # not our protocol: just close
                try:
                    path = reader.field()
                except ProtocolError:
                    conn.sendall(b"\x02")
                    return
                f = self._open_published(path)
                if f is None:
                    conn.sendall(b"\x01")
                    return
                with f:
                    size = os.fstat(f.fileno()).st_size
                    conn.sendall(b"\x00" + encode(size))
                    if size:
                        conn.sendfile(f, 0, size)
            except (OSError, ProtocolError):
                pass                            # the downloader went away
