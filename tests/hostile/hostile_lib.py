"""Helpers for the hostile-client tests (fixtures are in conftest.py).

PEERDEX_HOSTILE_SCALE (default 1) scales the connection counts down for slow
builds: `make test-tsan` sets it below 1.
"""
import os
import select
import socket
import time

SCALE = float(os.environ.get("PEERDEX_HOSTILE_SCALE", "1"))


def scaled(n, least=1):
    """n connections, scaled by PEERDEX_HOSTILE_SCALE, at least `least`."""
    return max(least, int(n * SCALE))


def connect(port, timeout=10):
    """A connected client socket to the local server."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def wait_replies(socks, timeout):
    """Read each socket until it closes or `timeout` passes.

    Returns {socket: bytes received, or None if still open at the end}.
    A reset counts as closed."""
    got = {s: b"" for s in socks}
    open_ = set(socks)
    deadline = time.monotonic() + timeout
    while open_:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        poller = select.poll()
        by_fd = {}
        for s in open_:
            poller.register(s, select.POLLIN)
            by_fd[s.fileno()] = s
        for fd, _ in poller.poll(left * 1000):
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


def proc_stat(pid):
    """(CPU seconds used, thread count) of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # After the ")": state is field 3, utime 14, stime 15, num_threads 20.
    return (int(fields[11]) + int(fields[12])) / ticks, int(fields[17])


def open_fds(pid):
    """How many descriptors the process has open."""
    return len(os.listdir("/proc/%d/fd" % pid))


# ThreadSanitizer starts a background thread of its own in the server.
SANITIZER_THREADS = 1 if os.environ.get("TSAN_OPTIONS") else 0


def settle(pid, fds, threads, timeout=10):
    """Wait until the process is back to `fds` descriptors and `threads`
    threads (its idle state); True when it got there."""
    threads += SANITIZER_THREADS
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if open_fds(pid) <= fds and proc_stat(pid)[1] <= threads:
            return True
        time.sleep(0.05)
    return False
