"""A real client on a pseudo-terminal, for what is about a terminal: the
prompt, Ctrl-C, Ctrl-D, tab completion, notes about long waits."""
import fcntl
import os
import pty
import re
import subprocess
import termios
import threading
import time

import harness
from client_lib import CLIENT


def _controlling_tty():
    """In the child: a session of its own with the pty as its terminal, so
    that ^C typed there sends SIGINT to it."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class TtyClient:
    """client.py with stdin, stdout and stderr on one pseudo-terminal."""

    def __init__(self, port, home, host="127.0.0.1"):
        master, slave = pty.openpty()
        env = dict(os.environ, HOME=str(home), TERM="dumb", INPUTRC="/dev/null")
        self.proc = subprocess.Popen(
            [harness.PYTHON, CLIENT, "-s", host, "-p", str(port)],
            stdin=slave, stdout=slave, stderr=slave, env=env,
            preexec_fn=_controlling_tty, close_fds=True)
        os.close(slave)
        self.master = master
        self.pid = self.proc.pid
        self.buf = b""
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.expect(r"c> ")

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.buf += data
                self.cond.notify_all()

    def text(self):
        with self.cond:
            return self.buf.decode("utf-8", "replace").replace("\r", "")

    def expect(self, pattern, timeout=10, since=0):
        """Wait until the output from offset `since` matches; return the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = rx.search(self.buf.decode("utf-8", "replace").replace("\r", ""), since)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or getattr(self, "closed", False):
                    raise AssertionError("no %r after offset %d of %r"
                                         % (pattern, since, self.text()[-800:]))
                self.cond.wait(min(left, 0.1))

    def mark(self):
        return len(self.text())

    def type(self, text):
        os.write(self.master, text.encode())

    def waiting(self):
        """Wait until the client's main thread blocks in poll() or select():
        reading the terminal at its prompt, or waiting for a peer or the
        index.  CPython runs a signal's Python handler between bytecodes, and
        readline's select() or a socket's poll() entered just after the
        signal came waits on regardless (until a key, or its timeout), so a
        Ctrl-C typed in that microsecond goes unseen for a while.  A person
        never types into it; the tests type once the client waits."""
        def blocked():
            try:
                with open("/proc/%d/wchan" % self.pid) as f:
                    where = f.read()
            except OSError:
                return True                     # gone: the caller will see
            return "poll" in where or "select" in where
        harness.wait_until(blocked, what="the client blocked in poll() or select()")

    def ctrl_c(self):
        """Type Ctrl-C once the client waits (see waiting())."""
        self.waiting()
        self.type("\x03")

    def line(self, text, expect, timeout=10):
        """Type a line and wait for `expect` after it, then for the next prompt."""
        since = self.mark()
        self.type(text + "\r")
        m = self.expect(expect, timeout, since)
        self.expect(r"c> ", timeout, m.end())
        return m

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass
