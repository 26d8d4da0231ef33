"""peerdex client: the c> command line, the peer file server and the downloader.

    python3 client/client.py -s SERVER -p PORT [--time-url URL] [-v]

Every index operation opens one TCP connection to the index server, sends the
operation name, the date-time from the time web service and its fields (each
NUL-terminated), and reads the one-byte result (plus, for the lists, the
NUL-terminated data).  While a user is connected, a listener serves that user's
published files to other peers (GET_FILE).  See docs/client.md.
"""
import argparse
import http.client
import importlib.util
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
FIELD_MAX = 256                 # longest field, without its NUL
IO_TIMEOUT = 10.0               # seconds for any one network exchange
CHUNK = 1 << 20                 # download buffer
DATETIME_RX = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")


class ProtocolError(Exception):
    """The other side broke the protocol or went away."""


class TimeError(Exception):
    """The time web service could not give a date-time."""


# --- wire helpers -------------------------------------------------------------

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


# --- the time web service -----------------------------------------------------

def python_with_flask():
    """An interpreter that has Flask: this one, or Debian's (the `python3`
    first on PATH may be another interpreter without python3-flask)."""
    if importlib.util.find_spec("flask") is not None:
        return sys.executable
    if os.path.exists("/usr/bin/python3"):
        return "/usr/bin/python3"
    return sys.executable


class TimeService:
    """Our own time service, a child process on 127.0.0.1 and a free port."""

    def __init__(self, verbose=False):
        self.verbose = verbose
        self.proc = None
        self.url = None

    def start(self):
        """Start the child and learn its address from its first line."""
        self.proc = subprocess.Popen(
            [python_with_flask(), os.path.join(HERE, "timeservice.py"),
             "--host", "127.0.0.1", "--port", "0", "--parent-pipe"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().strip()
        m = re.match(r"^listening on (http://\S+)$", line)
        if not m:
            self.stop()
            raise TimeError("the time service did not start")
        self.url = m.group(1)
        if self.verbose:
            print("time service pid %d at %s" % (self.proc.pid, self.url), file=sys.stderr,
                  flush=True)

    def stop(self):
        """Stop the child by its PID and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc = None

    def restart(self):
        self.stop()
        self.start()


class TimeClient:
    """Asks the time web service for the date-time over one kept-alive connection.

    With `service` (ours), a failed call restarts the service once and retries;
    with only a URL (someone else's), a failure is final.
    """

    def __init__(self, url=None, service=None, timeout=1.0):
        self.service = service
        self.timeout = timeout
        self.conn = None
        self.url = None
        if url:
            self._set_url(url)

    def _set_url(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise TimeError("bad time service URL %r" % url)
        self.url = url
        self.host, self.port = parts.hostname, parts.port or 80
        base = parts.path.rstrip("/")
        self.path = (base if base.endswith("/datetime") else base + "/datetime")
        self._close()

    def _close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _ask(self):
        """One GET; raises on any failure or a malformed answer."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.request("GET", self.path)
        resp = self.conn.getresponse()
        body = resp.read().decode("ascii", "replace").strip()
        if resp.status != 200 or not DATETIME_RX.match(body):
            raise TimeError("unexpected answer %d %r" % (resp.status, body[:60]))
        return body

    def now(self):
        """The current date-time as DD/MM/YYYY HH:MM:SS, or TimeError."""
        if self.url is None and self.service is not None:
            try:
                self.service.start()
            except OSError as e:            # no interpreter, no processes left
                raise TimeError("cannot start the time service: %s" % e) from None
            self._set_url(self.service.url)
        try:
            return self._ask()
        except (OSError, http.client.HTTPException, TimeError) as first:
            self._close()
            # A kept-alive connection the server dropped: one fresh try.
            try:
                return self._ask()
            except (OSError, http.client.HTTPException, TimeError):
                self._close()
            if self.service is None:
                raise TimeError("time service at %s: %s" % (self.url, first)) from None
        try:
            self.service.restart()
            self._set_url(self.service.url)
            return self._ask()
        except (OSError, http.client.HTTPException, TimeError) as e:
            self._close()
            raise TimeError("time service did not answer, even after a restart: %s" % e) \
                from None

    def close(self):
        self._close()
        if self.service is not None:
            self.service.stop()


# --- the peer file server -----------------------------------------------------

class PeerServer:
    """Serves GET_FILE for the files our user has published, while connected.

    `published` maps each published path to the real path it had when it was
    published; a request is served only if the path is published and still
    resolves to that same real path, is a regular file, and can be opened.
    The lock guards `published`; nothing else is shared between threads.
    """

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.published = {}
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


# --- the command line ---------------------------------------------------------

# name: (minimum args, maximum args or None, usage)
COMMANDS = {
    "REGISTER": (1, 1, "REGISTER <user>"),
    "UNREGISTER": (1, 1, "UNREGISTER <user>"),
    "CONNECT": (1, 1, "CONNECT <user>"),
    "DISCONNECT": (1, 1, "DISCONNECT <user>"),
    "PUBLISH": (1, None, "PUBLISH <path> <description...>"),
    "DELETE": (1, 1, "DELETE <path>"),
    "LIST_USERS": (0, 0, "LIST_USERS"),
    "LIST_CONTENT": (1, 1, "LIST_CONTENT <user>"),
    "GET_FILE": (3, 3, "GET_FILE <user> <remote path> <local path>"),
    "QUIT": (0, 0, "QUIT"),
    "HELP": (0, 0, "HELP"),
}

# The console line for each result code; None is the generic failure.
MESSAGES = {
    "REGISTER": ["REGISTER OK", "USERNAME IN USE"],
    "UNREGISTER": ["UNREGISTER OK", "USER DOES NOT EXIST"],
    "CONNECT": ["CONNECT OK", "CONNECT FAIL, USER DOES NOT EXIST", "USER ALREADY CONNECTED"],
    "DISCONNECT": ["DISCONNECT OK", "DISCONNECT FAIL, USER DOES NOT EXIST",
                   "DISCONNECT FAIL, USER NOT CONNECTED"],
    "PUBLISH": ["PUBLISH OK", "PUBLISH FAIL, USER DOES NOT EXIST",
                "PUBLISH FAIL, USER NOT CONNECTED", "PUBLISH FAIL, CONTENT ALREADY PUBLISHED"],
    "DELETE": ["DELETE OK", "DELETE FAIL, USER DOES NOT EXIST",
               "DELETE FAIL, USER NOT CONNECTED", "DELETE FAIL, CONTENT NOT PUBLISHED"],
    "LIST_USERS": ["LIST_USERS OK", "LIST_USERS FAIL, USER DOES NOT EXIST",
                   "LIST_USERS FAIL, USER NOT CONNECTED"],
    "LIST_CONTENT": ["LIST_CONTENT OK", "LIST_CONTENT FAIL, USER DOES NOT EXIST",
                     "LIST_CONTENT FAIL, USER NOT CONNECTED",
                     "LIST_CONTENT FAIL, REMOTE USER DOES NOT EXIST"],
    "GET_FILE": ["GET_FILE OK", "GET_FILE FAIL, FILE NOT EXIST"],
}


def message(op, code):
    """The console text for an operation's result code."""
    known = MESSAGES[op]
    return known[code] if code is not None and code < len(known) else op + " FAIL"


class Client:
    """The state of one client: the server, the connected user, the listener."""

    def __init__(self, host, port, time_client, out=sys.stdout, interactive=False):
        self.server = (host, port)
        self.time = time_client
        self.out = out
        self.interactive = interactive
        self.user = None            # the user of the last successful CONNECT
        self.peer = None            # our PeerServer while connected

    def say(self, text):
        print("c> " + text, file=self.out, flush=True)

    def detail(self, text):
        print("\t" + text, file=self.out, flush=True)

    # -- talking to the index server --

    def call(self, op, *fields, read_data=None):
        """Send one operation; return (code, data) or (None, None) on failure.

        read_data(reader) reads the data that follows a 0 result.
        """
        try:
            stamp = self.time.now()
        except TimeError as e:
            print("%s: no date-time, operation not sent: %s" % (op, e), file=sys.stderr,
                  flush=True)
            return None, None
        try:
            with socket.create_connection(self.server, timeout=IO_TIMEOUT) as s:
                s.sendall(encode(op, stamp, *fields))
                reader = Reader(s)
                code = reader.byte()
                data = read_data(reader) if code == 0 and read_data else None
                return code, data
        except (OSError, ProtocolError, UnicodeError):
            return None, None

    def simple(self, op, *fields):
        """An operation whose reply is just the code; prints its line."""
        code, _ = self.call(op, *fields)
        self.say(message(op, code))
        return code

    # -- commands --

    def cmd_register(self, user):
        self.simple("REGISTER", user)

    def cmd_unregister(self, user):
        if self.simple("UNREGISTER", user) == 0 and user == self.user:
            self._stop_peer()       # the server dropped our connection too

    def cmd_connect(self, user):
        if self.user is not None and user != self.user:
            self.cmd_disconnect(self.user)
        try:
            peer = PeerServer()
        except OSError as e:
            print("CONNECT: cannot listen: %s" % e, file=sys.stderr)
            self.say(message("CONNECT", None))
            return
        code, _ = self.call("CONNECT", user, peer.port)
        if code != 0:
            peer.stop()
            self.say(message("CONNECT", code))
            return
        self._stop_peer()
        self.user, self.peer = user, peer
        # Serve what the index says we published, from earlier sessions too;
        # all in place before the result line is printed.
        _, paths = self.call("LIST_CONTENT", user, user, read_data=read_content)
        for path in paths or []:
            peer.publish(path)
        peer.start()
        self.say(message("CONNECT", code))

    def cmd_disconnect(self, user):
        # Stop the listener (in every case, as the protocol says) before
        # printing, so whoever reads the result line sees it already closed.
        code, _ = self.call("DISCONNECT", user)
        self._stop_peer()
        self.say(message("DISCONNECT", code))

    def _stop_peer(self):
        if self.peer is not None:
            self.peer.stop()
        self.peer = None
        self.user = None

    def _acting_user(self, op):
        """The connected user, or print the NOT CONNECTED line and None."""
        if self.user is None:
            self.say(message(op, 2))
        return self.user

    def cmd_publish(self, path, *description):
        if self._acting_user("PUBLISH") is None:
            return
        path = os.path.abspath(os.path.expanduser(path))
        code, _ = self.call("PUBLISH", self.user, path, " ".join(description))
        if code == 0:
            # Record what the path resolves to now, before the result line:
            # whatever happens to the path after "PUBLISH OK" cannot change it.
            self.peer.publish(path)
        self.say(message("PUBLISH", code))

    def cmd_delete(self, path):
        if self._acting_user("DELETE") is None:
            return
        path = os.path.abspath(os.path.expanduser(path))
        code, _ = self.call("DELETE", self.user, path)
        if code == 0:
            self.peer.unpublish(path)       # no longer served once "DELETE OK" shows
        self.say(message("DELETE", code))

    def cmd_list_users(self):
        if self._acting_user("LIST_USERS") is None:
            return
        code, users = self.call("LIST_USERS", self.user, read_data=read_users)
        self.say(message("LIST_USERS", code))
        for name, ip, port in users or []:
            self.detail("%s %s %s" % (name, ip, port))

    def cmd_list_content(self, target):
        if self._acting_user("LIST_CONTENT") is None:
            return
        code, paths = self.call("LIST_CONTENT", self.user, target, read_data=read_content)
        self.say(message("LIST_CONTENT", code))
        for path in paths or []:
            self.detail(path)

    def cmd_get_file(self, owner, remote, local):
        code = self.get_file(owner, remote, local)
        self.say(message("GET_FILE", code))

    def get_file(self, owner, remote, local):
        """Download; returns 0, 1 (no such file) or None (any other failure)."""
        if self.user is None:
            print("GET_FILE: connect first (the owner's address comes from LIST_USERS)",
                  file=sys.stderr)
            return None
        code, users = self.call("LIST_USERS", self.user, read_data=read_users)
        addr = next(((ip, int(port)) for name, ip, port in users or [] if name == owner), None)
        if code != 0 or addr is None:
            return None
        try:
            with socket.create_connection(addr, timeout=IO_TIMEOUT) as s:
                s.sendall(encode("GET_FILE", remote))
                reader = Reader(s)
                code = reader.byte()
                if code != 0:
                    return 1 if code == 1 else None
                size = reader.number()
                return 0 if receive_file(reader, size, local, self.interactive) else None
        except (OSError, ProtocolError):
            return None

    def cmd_help(self):
        print("commands (case does not matter):", file=self.out)
        for _, _, usage in COMMANDS.values():
            print("  " + usage, file=self.out)
        self.out.flush()

    def quit(self):
        """QUIT and end of input: disconnect our user first."""
        if self.user is not None:
            self.cmd_disconnect(self.user)

    def run_line(self, line):
        """Run one command line; returns False when the client should stop."""
        words = line.split()
        if not words:
            return True
        name = words[0].upper()
        if name not in COMMANDS:
            print("unknown command %r (type HELP for the list)" % words[0], file=self.out,
                  flush=True)
            return True
        lo, hi, usage = COMMANDS[name]
        args = words[1:]
        if name == "PUBLISH" and len(args) >= 1:
            # The description is the rest of the line, spaces kept.
            rest = line.split(None, 2)
            args = rest[1:2] + ([rest[2].strip()] if len(rest) > 2 else [])
        if len(args) < lo or (hi is not None and len(args) > hi):
            print("usage: " + usage, file=self.out, flush=True)
            return True
        if name == "QUIT":
            self.quit()
            return False
        getattr(self, "cmd_" + name.lower())(*args)
        return True


def read_users(reader):
    """LIST_USERS data: a count, then name, IP and port per user."""
    return [(reader.field(), reader.field(), reader.field()) for _ in range(reader.number())]


def read_content(reader):
    """LIST_CONTENT data: a count, then one path per file."""
    return [reader.field() for _ in range(reader.number())]


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


def setup_readline():
    """History in ~/.peerdex_history and completion of command names."""
    try:
        import readline
    except ImportError:
        return
    import atexit
    history = os.path.join(os.path.expanduser("~"), ".peerdex_history")
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)
    atexit.register(lambda: _save_history(readline, history))
    names = sorted(COMMANDS)

    def complete(text, state):
        matches = [n for n in names if n.startswith(text.upper())]
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


def _save_history(readline, path):
    try:
        readline.write_history_file(path)
    except OSError:
        pass


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="client.py", description="peerdex client: c> command line and peer file server")
    parser.add_argument("-s", "--server", required=True, help="index server host")
    parser.add_argument("-p", "--port", required=True, type=int, help="index server port")
    parser.add_argument("--time-url", help="use this time web service instead of our own, "
                        "e.g. http://host:8000/datetime")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="diagnostics on stderr (e.g. the time service's PID)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error("port must be 1..65535")
    return args


def main(argv=None):
    args = parse_args(argv)
    interactive = sys.stdin.isatty()
    if args.time_url:
        try:
            time_client = TimeClient(url=args.time_url)
        except TimeError as e:
            print("client.py: %s" % e, file=sys.stderr)
            return 2
    else:
        time_client = TimeClient(service=TimeService(verbose=args.verbose))
    client = Client(args.server, args.port, time_client, interactive=interactive)
    if interactive:
        setup_readline()
    try:
        while True:
            try:
                line = input("c> ") if interactive else sys.stdin.readline()
                if not interactive and line == "":
                    raise EOFError
            except EOFError:
                if interactive:
                    print()
                client.quit()
                break
            if not client.run_line(line):
                break
    except KeyboardInterrupt:
        print()
        client.quit()
    finally:
        time_client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
