"""Helpers for the durable-state tests: the index server with -d, the real
log server, unique date-times, a model of the registry, and --dump parsing."""
import datetime
import os
import subprocess

import harness

BASE = datetime.datetime(2000, 1, 1)


def stamp(k):
    """A date-time in the protocol's format, unique for each integer k."""
    return (BASE + datetime.timedelta(seconds=k)).strftime("%d/%m/%Y %H:%M:%S")


def unstamp(text):
    """The k of stamp(k)."""
    t = datetime.datetime.strptime(text, "%d/%m/%Y %H:%M:%S")
    return int((t - BASE).total_seconds())


class LogServer(harness.LogServer):
    """harness.LogServer as these tests call it: (path, port, key)."""

    def __init__(self, path, port=0, key=None):
        super().__init__(path, port, key=key)


def make_key(path):
    """A shared log key file (32 random bytes as hex, mode 0600) at path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    return path


def refusals(*procs):
    """Lines where a log server refused a batch or an index server heard so."""
    return [line for p in procs for line in p.err_lines
            if "refused" in line or "refuses" in line]


def log_env(port):
    return {"LOG_RPC_IP": "127.0.0.1", "LOG_RPC_PORT": str(port)}


def dump(state):
    """bin/server -d STATE --dump, parsed: {user: (ip or None, port, {path: desc})}."""
    out = subprocess.run([os.path.join(harness.BIN, "server"), "-d", str(state), "--dump"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    users, cur = {}, None
    for line in out.stdout.splitlines():
        if line.startswith("user "):
            f = line.split(" ")
            cur = f[1]
            users[cur] = (f[3], int(f[4]), {}) if f[2] == "connected" else (None, 0, {})
        elif line.startswith("  file "):
            path, _, desc = line[len("  file "):].partition(" ")
            users[cur][2][path] = desc
    return users


class Model:
    """The registry as the protocol defines it: what each operation answers."""

    def __init__(self):
        self.users = {}     # name -> [connected, port, {path: desc}]

    def copy(self):
        m = Model()
        m.users = {u: [c, p, dict(f)] for u, (c, p, f) in self.users.items()}
        return m

    def apply(self, op, *a):
        """Perform op on the model; return its result code."""
        u = self.users.get(a[0])
        if op == "REGISTER":
            if u is not None:
                return 1
            self.users[a[0]] = [False, 0, {}]
        elif op == "UNREGISTER":
            if u is None:
                return 1
            del self.users[a[0]]
        elif op == "CONNECT":
            if u is None:
                return 1
            if u[0]:
                return 2
            u[0], u[1] = True, int(a[1])
        elif op == "DISCONNECT":
            if u is None:
                return 1
            if not u[0]:
                return 2
            u[0], u[1] = False, 0
        elif op in ("PUBLISH", "DELETE", "LIST_USERS"):
            if u is None:
                return 1
            if not u[0]:
                return 2
            if op == "PUBLISH":
                if a[1] in u[2]:
                    return 3
                u[2][a[1]] = a[2]
            elif op == "DELETE":
                if a[1] not in u[2]:
                    return 3
                del u[2][a[1]]
        return 0

    def as_dump(self):
        return {n: ("127.0.0.1" if c else None, p if c else 0, f)
                for n, (c, p, f) in self.users.items()}
