"""Stand-ins for the other side where the test is about how our client copes
with what another implementation does: an index server that answers ASCII
result codes (or never answers), and a peer that prepends bytes or stalls."""
import socket
import threading

# Fields per request, operation name and date-time included.
FIELDS = {"REGISTER": 3, "UNREGISTER": 3, "CONNECT": 4, "DISCONNECT": 3, "PUBLISH": 5,
          "DELETE": 4, "LIST_USERS": 3, "LIST_CONTENT": 4}


class StubServer:
    """Accepts connections on `host` and answers each whole request with
    answer(fields) (bytes; None: hold the connection open, unanswered)."""

    def __init__(self, answer, host="127.0.0.1", family=socket.AF_INET):
        self.answer = answer
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.held = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            data = b""
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
                fields = data.split(b"\0")
                if len(fields) > 1 and len(fields) - 1 >= FIELDS.get(fields[0].decode(), 2):
                    break
            fields = [f.decode() for f in data.split(b"\0")[:-1]]
            self.requests.append(fields)
            reply = self.answer(fields)
            if reply is None:
                self.held.append(conn)
                continue
            with conn:
                conn.sendall(reply)

    def close(self):
        self.sock.close()
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
