"""Helpers for the hostile-client tests (fixtures are in conftest.py).

The workload scale, receive loops and /proc readings are the harness's
(tests/lib/harness.py); PEERDEX_HOSTILE_SCALE scales connection counts.
"""
import os
import socket
import time

from harness import SCALE, open_fds, proc_stat, scaled, wait_replies  # noqa: F401


def connect(port, timeout=10):
    """A connected client socket to the local server."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


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
