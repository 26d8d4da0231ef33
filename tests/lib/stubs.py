"""Stand-ins for the other side where the test is about how our client copes
with what another implementation does: an index server that answers ASCII
result codes (or never answers), and a peer that prepends bytes or stalls."""
import socket
import threading

import harness

# Fields per request, operation name and date-time included.
FIELDS = {"REGISTER": 3, "UNREGISTER": 3, "CONNECT": 4, "DISCONNECT": 3, "PUBLISH": 5,
          "DELETE": 4, "LIST_USERS": 3, "LIST_CONTENT": 4}


class Listener:
    """A listening TCP socket on a free port of `host`; its thread hands each
    accepted connection to serve(conn), one after another.  Subclasses set
    their own attributes before calling __init__, which starts the thread."""

    def __init__(self, host="127.0.0.1", family=socket.AF_INET, backlog=16):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.serve(conn)

    def serve(self, conn):
        """Handle one accepted connection (the subclass's job)."""
        raise NotImplementedError

    def close(self):
        """Stop listening; the thread ends (a shutdown wakes its accept(),
        which a close from another thread would not)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def read_request(conn, need):
    """The bytes of one NUL-separated request read from conn: up to EOF, or
    until need(op) fields have ended (op: the first field, decoded)."""
    data = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
        ends = data.count(b"\0")
        if ends >= 1 and ends >= need(data.split(b"\0")[0].decode("utf-8", "replace")):
            return data


class ScriptedPeer(Listener):
    """A peer that reads each GET_FILE request and then does `behave(conn)`."""

    def __init__(self, behave):
        self.behave = behave
        super().__init__(backlog=8)

    def serve(self, conn):
        with conn:
            read_request(conn, lambda op: 2)
            try:
                self.behave(conn)
            except OSError:
                pass


def registered_peer(server_port, user, behave):
    """A ScriptedPeer, REGISTERed and CONNECTed as user on the index server."""
    peer = ScriptedPeer(behave)
    assert harness.code(server_port, "REGISTER", user) == 0
    assert harness.code(server_port, "CONNECT", user, str(peer.port)) == 0
    return peer


class StubServer(Listener):
    """Accepts connections on `host` and answers each whole request with
    answer(fields) (bytes; None: hold the connection open, unanswered)."""

    def __init__(self, answer, host="127.0.0.1", family=socket.AF_INET):
        self.answer = answer
        self.requests = []
        self.held = []
        super().__init__(host, family)

    def serve(self, conn):
        data = read_request(conn, lambda op: FIELDS.get(op, 2))
        fields = [f.decode() for f in data.split(b"\0")[:-1]]
        self.requests.append(fields)
        reply = self.answer(fields)
        if reply is None:
            self.held.append(conn)
            return
        with conn:
            conn.sendall(reply)

    def close(self):
        super().close()
        for c in self.held:
            c.close()


def ascii_answers(nul):
    """Answers like an index server that sends ASCII digits: '0' (and a NUL
    after it when nul), lists in the protocol's fields."""
    end = b"\0" if nul else b""

    def answer(fields):
        op = fields[0]
        if op == "LIST_USERS":
            return b"0" + end + b"2\0alice\x00127.0.0.1\x005000\0bob\x00127.0.0.1\x005001\0"
        if op == "LIST_CONTENT":
            return b"0" + end + b"1\0/srv/a.txt\0"
        if op == "REGISTER" and fields[2] == "taken":
            return b"1" + end
        return b"0" + end
    return answer
