#!/usr/bin/env python3
"""Small stand-in implementations of the protocol, each with one chosen defect,
for the conformance kit's own tests (test_conformance_kit.py).

    stubs.py server [--defect D]               prints "port N", serves until killed
    stubs.py peer --file PATH [--defect D]     prints "port N", serves PATH
    stubs.py client -s HOST -p PORT [--defect D]   a c> client on stdin/stdout

Without --defect each one follows the protocol, so every failure the kit
reports against a stub comes from its defect.  The server also answers one
extension, STUB_USERS, with the registered user names (to check the kit's
cleanup).
"""
import argparse
import os
import socket
import sys
import tempfile
import threading
import time

FIELDS = {"REGISTER": 3, "UNREGISTER": 3, "CONNECT": 4, "DISCONNECT": 3, "PUBLISH": 5,
          "DELETE": 4, "LIST_USERS": 3, "LIST_CONTENT": 4, "STUB_USERS": 1}
OTHER = {"REGISTER": 2, "UNREGISTER": 2, "CONNECT": 3, "DISCONNECT": 3, "PUBLISH": 4,
         "DELETE": 4, "LIST_USERS": 3, "LIST_CONTENT": 4}
SERVER_DEFECTS = ("ascii-codes", "datetime-last", "global-publish", "truncate-255",
                  "list-cut-short", "int32-codes", "datetime-as-user", "trailing-byte",
                  "empty-list-4", "never-close", "silent", "stream", "mixed-codes",
                  "close-on-empty", "low-ports-refused", "crash-on-unknown",
                  "connect-extra-field", "unknown-held")


def encode(*fields):
    """Fields, each followed by a NUL byte."""
    return b"".join((f if isinstance(f, bytes) else str(f).encode()) + b"\0" for f in fields)


def listen():
    """A listening socket on 127.0.0.1 and a free port."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def serve_forever(sock, handler):
    """Accept connections; each one is handled in its own thread."""
    while True:
        try:
            conn, addr = sock.accept()
        except OSError:
            return
        threading.Thread(target=handler, args=(conn, addr), daemon=True).start()


def recv_all(sock):
    """Every byte the other side sends until it closes the connection."""
    raw = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return raw
        raw += chunk


def read_fields(conn, count_of, limit=256):
    """(fields, status): status "ok", "unknown", "long" (a field over `limit`) or
    "short" (closed or stalled before the last field)."""
    data = b""
    conn.settimeout(5)
    while True:
        parts = data.split(b"\0")
        done, tail = parts[:-1], parts[-1]
        if done:
            need = count_of(done[0].decode("latin-1"))
            if need is None:
                return done, "unknown"
            if any(len(f) > limit for f in done[1:]) or len(tail) > limit:
                return done, "long"
            if len(done) >= need:
                return done[:need], "ok"
        elif len(tail) > 32:
            return done, "unknown"
        try:
            chunk = conn.recv(4096)
        except OSError:
            return done, "short"
        if not chunk:
            return done, "short"
        data += chunk


class IndexStub:
    """An in-memory index server; the lock guards users, connected and files."""

    def __init__(self, defect):
        self.defect = defect
        self.lock = threading.Lock()
        self.users = set()
        self.connected = {}         # user -> (ip, port), in connecting order
        self.files = {}             # user -> [paths]

    def handle(self, conn, addr):
        """One connection: read the request, apply it, reply."""
        with conn:
            limit = 10 ** 6 if self.defect == "truncate-255" else 256
            count_of = FIELDS.get
            if self.defect == "connect-extra-field":    # CONNECT waits for an IP field too
                count_of = dict(FIELDS, CONNECT=5).get
            fields, status = read_fields(conn, count_of, limit)
            if status == "unknown" and self.defect == "crash-on-unknown":
                os._exit(3)                 # an unknown operation ends the server
            if status == "unknown" and self.defect == "unknown-held":
                time.sleep(3600)            # an unknown operation: held open, no answer
            if status == "unknown" or not fields:
                return
            op = fields[0].decode()
            if self.defect == "truncate-255":
                fields = [f[:255] for f in fields]
            if op == "STUB_USERS":
                with self.lock:
                    conn.sendall(encode(*sorted(self.users)))
                return
            if self.defect == "silent":
                time.sleep(3600)            # reads the request, never answers
            if self.defect == "stream":     # answers with bytes that never end
                try:
                    while True:
                        conn.sendall(b"\x00" * 65536)
                except OSError:
                    return
            if status != "ok":
                return self.reply(conn, OTHER[op], op=op)
            if self.defect == "close-on-empty" and not all(fields[2:]):
                return                      # an empty field: closed, no answer
            args = [f.decode("utf-8", "replace") for f in fields[2:]]
            if self.defect == "connect-extra-field" and op == "CONNECT":
                args = [args[0], args[2]]           # user, (ip,) port
            if self.defect == "datetime-last":     # takes the last field as the date-time
                args = [f.decode("utf-8", "replace") for f in fields[1:-1]]
            if self.defect == "datetime-as-user":  # reads the date-time as the user
                args = [f.decode("utf-8", "replace") for f in fields[1:2] + fields[3:]]
            with self.lock:
                code, data = self.operate(op, args, addr[0])
            if self.defect == "empty-list-4" and data == ["0"] and op == "LIST_CONTENT":
                code, data = 4, None
            self.reply(conn, code, data, op)
            if self.defect == "trailing-byte" and op == "LIST_CONTENT":
                conn.sendall(b"\n")
            if self.defect == "never-close":
                time.sleep(3600)

    def reply(self, conn, code, data=None, op=None):
        """The result code (as an ASCII digit, or a 4-byte integer, with those
        defects) and the data."""
        first = bytes([code])
        if self.defect == "ascii-codes":
            first = str(code).encode()
        elif self.defect == "int32-codes" or self.defect == "mixed-codes" and data is None \
                and op not in ("LIST_USERS", "LIST_CONTENT"):
            first = code.to_bytes(4, "little")   # mixed: lists keep the raw byte
        body = b""
        if data is not None:
            if self.defect == "list-cut-short" and len(data) > 1:
                data = data[:-1]
            body = encode(*data)
        try:
            conn.sendall(first + body)
        except OSError:
            pass

    def operate(self, op, args, ip):
        """The operation on the registry (lock held): (code, data or None)."""
        other = OTHER[op]
        if any(not a for a in args[:1]) or op == "LIST_CONTENT" and not args[1]:
            return other, None
        user = args[0]
        if op == "REGISTER":
            if user in self.users:
                return 1, None
            self.users.add(user)
            self.files[user] = []
            return 0, None
        if user not in self.users:
            return 1, None
        if op == "UNREGISTER":
            self.users.discard(user)
            self.connected.pop(user, None)
            self.files.pop(user, None)
            return 0, None
        if op == "CONNECT":
            port = args[1]
            if not port.isdigit() or not 1 <= int(port) <= 65535 or port != str(int(port)):
                return other, None
            if self.defect == "low-ports-refused" and int(port) < 1024:
                return other, None
            if user in self.connected:
                return 2, None
            self.connected[user] = (ip, port)
            return 0, None
        if user not in self.connected:
            return 2, None
        if op == "DISCONNECT":
            del self.connected[user]
            return 0, None
        if op == "PUBLISH":
            path = args[1]
            if not path.startswith("/") or " " in path:
                return other, None
            owners = self.files.values() if self.defect == "global-publish" \
                else [self.files[user]]
            if any(path in paths for paths in owners):
                return 3, None
            self.files[user].append(path)
            return 0, None
        if op == "DELETE":
            if args[1] not in self.files[user]:
                return 3, None
            self.files[user].remove(args[1])
            return 0, None
        if op == "LIST_USERS":
            data = [str(len(self.connected))]
            for name, (ip_, port) in self.connected.items():
                data += [name, ip_, port]
            return 0, data
        if op == "LIST_CONTENT":
            if args[1] not in self.users:
                return 3, None
            return 0, [str(len(self.files[args[1]]))] + self.files[args[1]]
        return other, None


def peer_handler(published, defect):
    """GET_FILE of `published` (any existing file with the defect)."""
    def handle(conn, addr):
        """One GET_FILE request."""
        with conn:
            fields, status = read_fields(conn, lambda op: 2 if op == "GET_FILE" else None)
            if status == "unknown" or not fields:
                return
            if status != "ok":
                conn.sendall(b"\x02")
                return
            path = fields[1].decode("utf-8", "replace")
            if defect == "refuse-all":
                conn.sendall(b"\x02")
                return
            ok = path == published or defect == "serve-unpublished" and os.path.isfile(path)
            if not ok:
                conn.sendall(b"\x01")
                return
            with open(path, "rb") as f:
                data = f.read()
            conn.sendall(b"\x00" + encode(len(data)) + data)
    return handle


# --- the client stub ------------------------------------------------------------

MESSAGES = {
    "REGISTER": ["REGISTER OK", "USERNAME IN USE", "REGISTER FAIL"],
    "UNREGISTER": ["UNREGISTER OK", "USER DOES NOT EXIST", "UNREGISTER FAIL"],
    "CONNECT": ["CONNECT OK", "CONNECT FAIL, USER DOES NOT EXIST", "USER ALREADY CONNECTED",
                "CONNECT FAIL"],
    "DISCONNECT": ["DISCONNECT OK", "DISCONNECT FAIL, USER DOES NOT EXIST",
                   "DISCONNECT FAIL, USER NOT CONNECTED", "DISCONNECT FAIL"],
    "PUBLISH": ["PUBLISH OK", "PUBLISH FAIL, USER DOES NOT EXIST",
                "PUBLISH FAIL, USER NOT CONNECTED", "PUBLISH FAIL, CONTENT ALREADY PUBLISHED",
                "PUBLISH FAIL"],
    "DELETE": ["DELETE OK", "DELETE FAIL, USER DOES NOT EXIST", "DELETE FAIL, USER NOT CONNECTED",
               "DELETE FAIL, CONTENT NOT PUBLISHED", "DELETE FAIL"],
    "LIST_USERS": ["LIST_USERS OK", "LIST_USERS FAIL, USER DOES NOT EXIST",
                   "LIST_USERS FAIL, USER NOT CONNECTED", "LIST_USERS FAIL"],
    "LIST_CONTENT": ["LIST_CONTENT OK", "LIST_CONTENT FAIL, USER DOES NOT EXIST",
                     "LIST_CONTENT FAIL, USER NOT CONNECTED",
                     "LIST_CONTENT FAIL, REMOTE USER DOES NOT EXIST", "LIST_CONTENT FAIL"],
    "GET_FILE": ["GET_FILE OK", "GET_FILE FAIL, FILE NOT EXIST", "GET_FILE FAIL"],
}


class StubClient:
    """A pipe client: one command per line, one result line per command."""

    def __init__(self, server, defect):
        self.server = server
        self.defect = defect
        self.user = None
        self.listener = None

    def say(self, op, code):
        """The console line of a result code."""
        known = MESSAGES[op]
        text = known[code] if code is not None and code < len(known) else known[-1]
        if self.defect == "fail-comma":
            text = text.replace("FAIL,", "FAIL ,")
        print("c> " + text, flush=True)

    def call(self, op, *fields):
        """(code, data fields) or (None, None)."""
        stamp = time.strftime("%d/%m/%Y %H:%M:%S")
        request = encode(op, *fields, stamp) if self.defect == "datetime-last" \
            else encode(op, stamp, *fields)
        try:
            with socket.create_connection(self.server, timeout=10) as s:
                s.sendall(request)
                raw = recv_all(s)
        except OSError:
            return None, None
        if not raw:
            return None, None
        return raw[0], [f.decode() for f in raw[1:].split(b"\0")[:-1]]

    def stop_listener(self):
        """Stop serving files and forget the user."""
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)    # wakes the accepting thread
            except OSError:
                pass
            self.listener.close()
        self.listener, self.user = None, None

    def run(self, line):
        """One command line; False when the client should stop."""
        words = line.split()
        if not words:
            return True
        op, args = words[0].upper(), words[1:]
        if op == "QUIT":
            if self.user:
                self.run("DISCONNECT " + self.user)
            return False
        if op in ("REGISTER", "UNREGISTER"):
            self.say(op, self.call(op, args[0])[0])
        elif op == "CONNECT":
            if self.user and self.user != args[0]:
                self.run("DISCONNECT " + self.user)
            sock = listen()
            code = self.call(op, args[0], sock.getsockname()[1])[0]
            if code == 0:
                self.stop_listener()
                self.listener, self.user = sock, args[0]
                threading.Thread(target=serve_forever, args=(sock, lambda c, a: c.close()),
                                 daemon=True).start()
            else:
                sock.close()
            self.say(op, code)
        elif op == "DISCONNECT":
            code = self.call(op, args[0])[0]
            if code == 0 or self.defect != "keep-listener":
                self.stop_listener()
            self.say(op, code)
        elif op in ("PUBLISH", "DELETE", "LIST_USERS", "LIST_CONTENT") and self.user is None:
            self.say(op, 2)
        elif op == "PUBLISH":
            rest = line.split(None, 2)
            self.say(op, self.call(op, self.user, os.path.abspath(rest[1]),
                                   rest[2].strip() if len(rest) > 2 else "")[0])
        elif op == "DELETE":
            self.say(op, self.call(op, self.user, os.path.abspath(args[0]))[0])
        elif op in ("LIST_USERS", "LIST_CONTENT"):
            code, data = self.call(op, self.user, *args)
            self.say(op, code)
            per = 3 if op == "LIST_USERS" else 1
            if code == 0:
                for i in range(1, len(data), per):
                    print("\t" + " ".join(data[i:i + per]), flush=True)
        elif op == "GET_FILE":
            self.say(op, self.get_file(*args))
        return True

    def get_file(self, owner, remote, local):
        """Download from the owner's peer; 0, 1 or None (other failure)."""
        code, data = self.call("LIST_USERS", self.user)
        if code != 0:
            return None
        addr = [(data[i + 1], int(data[i + 2])) for i in range(1, len(data), 3)
                if data[i] == owner]
        if not addr:
            return None
        try:
            with socket.create_connection(addr[0], timeout=10) as s:
                s.sendall(encode("GET_FILE", remote))
                raw = recv_all(s)
        except OSError:
            return None
        if raw[:1] != b"\x00":
            return raw[0] if raw[:1] == b"\x01" else None
        end = raw.find(b"\0", 1)
        if end < 0 or not raw[1:end].isdigit() or len(raw) - end - 1 < int(raw[1:end]):
            return None
        if len(raw) - end - 1 > int(raw[1:end]):
            if self.defect != "accept-too-much":
                return None
            raw = raw[:end + 1 + int(raw[1:end])]
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(local)))
        with os.fdopen(fd, "wb") as f:
            f.write(raw[end + 1:])
        os.replace(tmp, local)
        return 0


def main():
    """Start the chosen stub."""
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=("server", "peer", "client"))
    p.add_argument("--defect")
    p.add_argument("--file")
    p.add_argument("-s")
    p.add_argument("-p", type=int)
    args = p.parse_args()
    if args.role == "client":
        client = StubClient((args.s, args.p), args.defect)
        if args.defect == "banner":
            print("stub client 1.0, type HELP for help", flush=True)
        for line in sys.stdin:
            if not client.run(line):
                break
        else:
            client.run("QUIT")
        return 0
    sock = listen()
    print("port %d" % sock.getsockname()[1], flush=True)
    if args.role == "server":
        serve_forever(sock, IndexStub(args.defect).handle)
    else:
        serve_forever(sock, peer_handler(args.file, args.defect))
    return 0


if __name__ == "__main__":
    sys.exit(main())
