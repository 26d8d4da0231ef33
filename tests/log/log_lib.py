"""Helpers for the operation-log tests: the real log server and its file."""
import os
import socket
import time

import harness


def wait_err(proc, pattern, timeout=10, start=0):
    """Wait for a stderr line of proc matching the regex."""
    return proc.wait_line(pattern, timeout=timeout, start=start, stderr=True)


class LogServer(harness.Process):
    """bin/log_server -f FILE [-p PORT]; .port is where it listens."""

    def __init__(self, path, port=None):
        args = [os.path.join(harness.BIN, "log_server"), "-f", str(path)]
        if port is not None:
            args += ["-p", str(port)]
        super().__init__(args)
        self.path = path
        self.port = int(wait_err(self, r"listening on port (\d+)").group(1))


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_lines(path, n, timeout=30):
    """Wait until the log file has at least n lines; return them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = read_lines(path)
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def rpcbind_running():
    try:
        socket.create_connection(("127.0.0.1", 111), timeout=1).close()
        return True
    except OSError:
        return False
