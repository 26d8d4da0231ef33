"""Test harness: start the real peerdex programs and speak their protocol.

Every process started here is tracked and stopped by PID, also when a test
fails.  Binaries come from $PEERDEX_BIN (default: the repository's bin/), so
the sanitizer runs can point the same tests at their own builds.
"""
import os
import re
import signal
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PEERDEX_BIN", os.path.join(ROOT, "bin"))
PYTHON = "/usr/bin/python3"
DATETIME = "17/12/2014 13:20:35"


def free_port():
    """A TCP port that was free a moment ago (for programs that need one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process whose stdout lines are collected in the background."""

    def __init__(self, argv, env=None, stdin=subprocess.DEVNULL, cwd=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=full_env, cwd=cwd)
        self.pid = self.proc.pid
        self.lines = []
        self.err_lines = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err_lines), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream, into):
        for raw in iter(stream.readline, b""):
            with self._cond:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        stream.close()

    def wait_line(self, pattern, timeout=10, start=0, stderr=False):
        """Wait for a stdout line (stderr with stderr=True), from index
        `start`, matching the regex; return the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        lines = self.err_lines if stderr else self.lines
        with self._cond:
            while True:
                for line in lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self._alive_readers():
                    raise AssertionError(
                        "no line matching %r from %s; stdout=%r stderr=%r"
                        % (pattern, self.argv[0], self.lines[-20:], self.err_lines[-20:]))
                self._cond.wait(min(left, 0.1))

    def _alive_readers(self):
        return any(t.is_alive() for t in self._readers)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal the process by PID and wait; SIGKILL if it will not stop."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        for t in self._readers:
            t.join(2)
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)


class Server(Process):
    """The real index server on a free port: bin/server -p 0 [extra args]."""

    def __init__(self, *args, env=None, binary=None):
        super().__init__([binary or os.path.join(BIN, "server"), "-p", "0", *args], env=env)
        m = self.wait_line(r"^s> init server (\S+):(\d+)$")
        self.host_ip = m.group(1)
        self.port = int(m.group(2))
        self.addr = ("127.0.0.1", self.port)

    def request(self, *fields, **kw):
        return request(self.port, *fields, **kw)


def encode(*fields):
    """Frame request fields: each one followed by a NUL byte."""
    return b"".join((f if isinstance(f, bytes) else str(f).encode()) + b"\0" for f in fields)


def exchange(port, data, host="127.0.0.1", timeout=10, shut_wr=False):
    """Send raw bytes, read until the server closes; return what came back."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def parse_reply(raw):
    """Split a reply into (code, [fields]); code is None for no reply at all."""
    if not raw:
        return None, []
    body = raw[1:]
    fields = body.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    return raw[0], [f.decode("utf-8", "replace") for f in fields]


def request(port, *fields, datetime=DATETIME, **kw):
    """One operation: name, date-time, fields.  Returns (code, [fields])."""
    op, rest = fields[0], fields[1:]
    return parse_reply(exchange(port, encode(op, datetime, *rest), **kw))


def code(port, *fields, **kw):
    """Just the result code of one operation."""
    return request(port, *fields, **kw)[0]
