"""Test harness: start the real peerdex programs and speak their protocol.

The one place for what every suite needs: processes stopped by PID (also
when a test fails) whose output lines are waited for, the index server and
the log server on port 0 with the port read from their banners, ports for
programs that cannot take 0, waits on a condition, receive loops, /proc
readings, and the workload scale.  Stand-in servers are in stubs.py.
Binaries come from $PEERDEX_BIN (default: the repository's bin/), so the
sanitizer runs can point the same tests at their own builds.
"""
import os
import random
import re
import select
import signal
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PEERDEX_BIN", os.path.join(ROOT, "bin"))
PYTHON = "/usr/bin/python3"
DATETIME = "17/12/2014 13:20:35"


# PEERDEX_HOSTILE_SCALE (default 1) scales workloads down for slow builds:
# `make test-tsan` sets it below 1.
SCALE = float(os.environ.get("PEERDEX_HOSTILE_SCALE", "1"))


def scaled(n, least=1):
    """n (connections, users...), scaled by PEERDEX_HOSTILE_SCALE, at least `least`."""
    return max(least, int(n * SCALE))


# --- waiting -----------------------------------------------------------------

def wait_until(cond, timeout=10, what=None, every=0.02):
    """Poll cond() until it returns something true, and return that; an
    AssertionError naming `what` (or cond) after `timeout` seconds.  The
    one place where a test sleeps: between two looks at a condition."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("still not true after %.1f s: %s"
                                 % (timeout, what or getattr(cond, "__name__", cond)))
        time.sleep(every)


# --- ports for programs that cannot listen on port 0 ------------------------
# Every server of ours takes -p 0 and says its port in its banner: use that.
# A port is chosen beforehand only where a test needs it before the program
# runs (a log server started after the index server that sends to it, the
# same port again after a restart, scripts/run.sh).  Such ports come from
# below the kernel's ephemeral range, so no program binding port 0 (every
# other server in a test run, in this run or another one) ever gets one.

def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bind_unused():
    """A socket bound (not listening) on every address, to a random port
    between 20000 and the ephemeral range."""
    high = _ephemeral_low() - 1
    rng = random.Random()
    for _ in range(200):
        s = socket.socket()
        try:
            s.bind(("", rng.randrange(20000, high)))
            return s
        except OSError:
            s.close()
    raise AssertionError("no port free between 20000 and %d" % high)


_handed_out = set()         # fixed ports this process gave already


def fixed_port():
    """A port for a program that must be told its port (see above); never
    one this process gave before (a test asking for two gets two)."""
    while True:
        with _bind_unused() as s:
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


free_port = fixed_port      # the older name


class DeadPort:
    """A port nothing listens on, held bound (not listening) until close():
    connections to it are refused and no other program can listen there."""

    def __init__(self):
        self.sock = _bind_unused()
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def dead_port():
    """A DeadPort (close it at the end of the test, or use `with`)."""
    return DeadPort()


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


def stop_all(*procs, sig=signal.SIGTERM):
    """Signal every process first, then wait for each: processes that take
    a while to stop (an index server's drain of its log queue) do it at the
    same time.  Their exit statuses, in order."""
    for p in procs:
        if p.proc.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
    return [p.stop(sig) for p in procs]


class LogServer(Process):
    """bin/log_server -f FILE [-p PORT] [-k KEY] [args]; .port is where it
    listens, read from its banner.  port=0 (the default): a free port;
    None: no -p (rpcbind only); a number: that port (a restart on the port
    an index server already sends to).  `prefix` goes before the program
    (e.g. prlimit)."""

    def __init__(self, path, port=0, args=(), prefix=(), key=None, env=None):
        argv = list(prefix) + [os.path.join(BIN, "log_server"), "-f", str(path)]
        if port is not None:
            argv += ["-p", str(port)]
        if key is not None:
            argv += ["-k", str(key)]
        argv += list(args)
        super().__init__(argv, env=env)
        self.path = path
        self.port = int(self.wait_line(r"listening on port (\d+)", stderr=True).group(1))


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


# --- receive loops -------------------------------------------------------------

def wait_replies(socks, timeout, done=None):
    """Read each socket until it closes, until done(got, still_open) is true
    (checked after each read) or `timeout` passes.

    Returns {socket: bytes received, or None if still open at the end}.
    A reset counts as closed."""
    got = {s: b"" for s in socks}
    open_ = set(socks)
    deadline = time.monotonic() + timeout
    while open_ and not (done is not None and done(got, open_)):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        poller = select.poll()
        by_fd = {}
        for s in open_:
            poller.register(s, select.POLLIN)
            by_fd[s.fileno()] = s
        # With a condition, look again at least every 0.1 s (it may hold
        # without any socket moving).
        wait = left if done is None else min(left, 0.1)
        for fd, _ in poller.poll(wait * 1000):
            s = by_fd[fd]
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[s] += chunk
            else:
                open_.discard(s)
    for s in open_:
        got[s] = None
    return got


# --- /proc ---------------------------------------------------------------------

def proc_stat(pid):
    """(CPU seconds used, thread count) of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # After the ")": state is field 3, utime 14, stime 15, num_threads 20.
    return (int(fields[11]) + int(fields[12])) / ticks, int(fields[17])


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    return proc_stat(pid)[0]


def threads_of(pid):
    """The number of threads the process has."""
    return proc_stat(pid)[1]


def threads_waiting_in(pid, word):
    """The ids of the process's threads blocked in a kernel function whose
    name contains `word` (/proc/PID/task/TID/wchan): "accept" (waiting for
    a connection), "poll" (waiting for a socket to be ready)."""
    tids = set()
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/wchan" % (pid, tid)) as f:
                if word in f.read():
                    tids.add(tid)
        except OSError:
            pass                        # it ended meanwhile
    return tids


def threads_in_accept(pid):
    """The ids of the process's threads blocked in accept()."""
    return threads_waiting_in(pid, "accept")


def open_fds(pid):
    """How many descriptors the process has open."""
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    """The process's resident set size in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
