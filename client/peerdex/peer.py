"""The peer file server: GET_FILE for the files our user has published.

One thread (the loop) accepts connections and reads every request, non-blocking,
each within one deadline counted from accept: a request that is not whole by
then is dropped, however slowly it trickles.  A connection costs a descriptor
and a small buffer until its request is whole, never a thread, so a flood of
stalled connections holds no transfer slot.  A whole request becomes a transfer
on a thread of its own, within two caps (all transfers, transfers per peer IP);
past either the request is answered code 2 and closed.  A transfer whose reader
stops taking bytes is dropped after the no-progress timeout.  The loop logs any
exception on stderr and goes on: nothing a peer does can end it.
"""
import errno
import os
import selectors
import socket
import sys
import threading
import time

from .published import open_pinned, repin
from .term import shown
from .wire import FIELD_MAX, encode

REQUEST_DEADLINE = 10.0         # seconds from accept to a whole request
NO_PROGRESS = 10.0              # seconds a transfer may wait for its reader
MAX_TRANSFERS = 64              # transfers at once
MAX_PER_IP = 8                  # transfers at once from one peer IP
PENDING_MAX = 4096              # connections still sending their request
OP = b"GET_FILE\0"


def log(text):
    """One diagnostic line on stderr (the console's result lines stay exact)."""
    try:
        print("peer server: " + text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class Pending:
    """A connection whose request is still arriving."""

    __slots__ = ("ip", "deadline", "buf")

    def __init__(self, ip, deadline):
        self.ip, self.deadline, self.buf = ip, deadline, b""


def parse_request(buf):
    """What a request's bytes so far amount to: ("more",), ("close",) for
    anything but GET_FILE, ("too long",) or ("path", bytes)."""
    head = buf[:len(OP)]
    if not OP.startswith(head):
        return ("close",)
    if len(buf) <= len(OP):
        return ("more",)
    end = buf.find(b"\0", len(OP), len(OP) + FIELD_MAX + 1)
    if end >= 0:
        return ("path", buf[len(OP):end])
    if len(buf) - len(OP) > FIELD_MAX:
        return ("too long",)
    return ("more",)


def listen_any(port=0):
    """A listening socket on every address, IPv6 and IPv4 (the index lists
    whichever address our CONNECT came from), or IPv4 only where the host
    has no IPv6; on `port`, or any free one for 0.  OSError when the port
    cannot be had (EADDRINUSE: another program listens there)."""
    if socket.has_ipv6:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        except OSError:
            sock = None
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("::", port))
                sock.listen(1024)
                return sock
            except OSError as e:
                sock.close()
                if e.errno != errno.EAFNOSUPPORT and e.errno != errno.EADDRNOTAVAIL:
                    raise
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("0.0.0.0", port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


class PeerServer:
    """Serves GET_FILE for the files our user has published, while connected.

    `published` maps each published path to its Pinned identity; a request is
    served only for such a path, through open_pinned(), or repin() when the
    file was replaced (then `on_repin()` is called, to keep the record).
    `lock` guards `published`, `refused`, `transfers` and `per_ip`; the loop
    thread alone uses the selector and the pending connections.
    """

    def __init__(self, max_transfers=MAX_TRANSFERS, max_per_ip=MAX_PER_IP, port=0):
        self.sock = listen_any(port)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.max_transfers, self.max_per_ip = max_transfers, max_per_ip
        self.lock = threading.Lock()
        self.published = {}
        self.refused = {}           # path -> why it is refused, once told
        self.on_repin = None        # called (no arguments) after a re-pin
        self.transfers = 0
        self.per_ip = {}
        self.stopping = False
        self.wake_r, self.wake_w = socket.socketpair()
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self._loop, name="peer-server", daemon=True)
        self.thread.start()

    def stop(self):
        """Stop listening and drop requests still arriving; transfers in
        progress finish on their own."""
        self.stopping = True
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass
        if self.thread is not None:
            self.thread.join(5)
        self.sock.close()
        self.wake_r.close()
        self.wake_w.close()

    def publish(self, path, pinned):
        with self.lock:
            self.published[path] = pinned
            self.refused.pop(path, None)

    def active_uploads(self):
        """How many transfers to other peers are running right now."""
        with self.lock:
            return self.transfers

    def unpublish(self, path):
        with self.lock:
            self.published.pop(path, None)
            self.refused.pop(path, None)

    def replace_published(self, files):
        with self.lock:
            self.published = dict(files)

    def published_files(self):
        """A copy of {path: Pinned} of what is served now."""
        with self.lock:
            return dict(self.published)

    # -- the loop: accept, read requests, start transfers --

    def _loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        sel.register(self.wake_r, selectors.EVENT_READ)
        pending = {}                # socket -> Pending, oldest first
        while not self.stopping:
            try:
                self._round(sel, pending)
            except Exception as e:  # noqa: BLE001 - log it and keep serving
                log("error in the loop, going on: %s: %s" % (type(e).__name__, shown(e)))
                time.sleep(0.05)
        for conn in list(pending):
            self._drop(sel, pending, conn)
        sel.close()

    def _round(self, sel, pending):
        """One wait for events, then what they call for, then expiry."""
        timeout = None
        if pending:
            timeout = max(0.0, next(iter(pending.values())).deadline - time.monotonic())
        for key, _ in sel.select(timeout):
            if key.fileobj is self.sock:
                self._accept(sel, pending)
            elif key.fileobj is self.wake_r:
                self.wake_r.recv(64)
            else:
                self._read(sel, pending, key.fileobj)
        now = time.monotonic()
        while pending:
            conn, p = next(iter(pending.items()))
            if p.deadline > now:
                break
            # Too slow: "other error" once the operation name is in, as the
            # index server does; garbage is just closed.
            self._drop(sel, pending, conn, b"\x02" if p.buf.startswith(OP) else b"")

    def _accept(self, sel, pending):
        """Accept what is waiting; the oldest pending request makes room when
        there are too many, or when descriptors run out."""
        for _ in range(256):
            try:
                conn, addr = self.sock.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if pending:
                        self._drop(sel, pending, next(iter(pending)))
                        continue
                    time.sleep(0.05)     # nothing of ours to close: do not spin
                    return
                if e.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                    continue
                raise
            if len(pending) >= PENDING_MAX:
                self._drop(sel, pending, next(iter(pending)))
            conn.setblocking(False)
            pending[conn] = Pending(addr[0], time.monotonic() + REQUEST_DEADLINE)
            sel.register(conn, selectors.EVENT_READ)

    def _drop(self, sel, pending, conn, answer=b""):
        """Forget a pending connection, answering `answer` first if any."""
        pending.pop(conn, None)
        try:
            sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        if answer:
            try:
                conn.send(answer)
            except OSError:
                pass
        conn.close()

    def _read(self, sel, pending, conn):
        """Read what a pending connection sent; start its transfer once whole."""
        p = pending.get(conn)
        if p is None:
            return
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sel, pending, conn)      # vanished mid-request
            return
        p.buf += data
        verdict = parse_request(p.buf)
        if verdict[0] == "more":
            return
        if verdict[0] == "close":
            self._drop(sel, pending, conn)      # not our protocol
        elif verdict[0] == "too long":
            self._drop(sel, pending, conn, b"\x02")
        else:
            pending.pop(conn)
            sel.unregister(conn)
            self._dispatch(conn, p.ip, verdict[1])

    def _dispatch(self, conn, ip, path):
        """Start the transfer of a whole request on its own thread, within
        the caps; answer code 2 past a cap or when no thread can start."""
        with self.lock:
            full = (self.transfers >= self.max_transfers
                    or self.per_ip.get(ip, 0) >= self.max_per_ip)
            if not full:
                self.transfers += 1
                self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        if full:
            self._refuse(conn)
            return
        try:
            threading.Thread(target=self._transfer, args=(conn, ip, path), daemon=True).start()
        except BaseException as e:
            self._release(ip)
            self._refuse(conn)
            if not isinstance(e, Exception):
                raise
            log("cannot start a transfer: %s: %s" % (type(e).__name__, shown(e)))

    @staticmethod
    def _refuse(conn):
        try:
            conn.send(b"\x02")
        except OSError:
            pass
        conn.close()

    def _release(self, ip):
        with self.lock:
            self.transfers -= 1
            left = self.per_ip[ip] - 1
            if left:
                self.per_ip[ip] = left
            else:
                del self.per_ip[ip]

    # -- a transfer, on its own thread --

    def _open_published(self, raw_path):
        """An open file object for a published path, or None (code 1)."""
        try:
            path = raw_path.decode("utf-8")
        except UnicodeDecodeError:
            return None
        with self.lock:
            pinned = self.published.get(path)
        if pinned is None:
            return None
        f = open_pinned(pinned)
        if f is None:
            f = self._repin(path, pinned)
        return f

    def _repin(self, path, pinned):
        """The published file at `path` was replaced: serve the new one if
        repin() accepts it (said once on stderr), else tell the user once
        which file is refused, why, and how to mend it."""
        f, result = repin(pinned)
        with self.lock:
            now = self.published.get(path)
            if now == pinned:
                if f is not None:
                    self.published[path] = result
                    self.refused.pop(path, None)
                elif path in self.refused:
                    return None             # already told
                else:
                    self.refused[path] = result
        if now != pinned:                   # unpublished, or re-pinned by another transfer
            if f is not None:
                f.close()
            return None if now is None else open_pinned(now)
        if f is None:
            log("not serving %s: %s; to serve what is there now: DELETE %s, then "
                "PUBLISH it again" % (shown(path), result, shown(path)))
            return None
        log("%s was replaced (an editor's save, a copy or a download onto it); serving "
            "the new file, same owner and directory" % shown(path))
        if self.on_repin is not None:
            self.on_repin()
        return f

    def _transfer(self, conn, ip, path):
        """Code, size, bytes, close; a reader that takes nothing for
        NO_PROGRESS seconds is dropped."""
        try:
            with conn:
                conn.settimeout(NO_PROGRESS)
                f = self._open_published(path)
                if f is None:
                    conn.sendall(b"\x01")
                    return
                with f:
                    size = os.fstat(f.fileno()).st_size
                    conn.sendall(b"\x00" + encode(size))
                    if size:
                        conn.sendfile(f, 0, size)
        except OSError:
            pass                            # the downloader went away or stalled
        except Exception as e:  # noqa: BLE001
            log("transfer failed: %s: %s" % (type(e).__name__, shown(e)))
        finally:
            self._release(ip)
