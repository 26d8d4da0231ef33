"""`make valgrind`: the index server and the log server under valgrind, through
a full workload (every operation, bad and partial requests, stalls, resets,
concurrency, logging), then a clean SIGTERM.  Exits non-zero if valgrind
reports any error or leak, or a process does not exit 0."""
import os
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

VALGRIND = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
            "--track-fds=no"]


def workload(port):
    """Everything a day in the lab sends to the server."""
    code = harness.code
    for u in ("alice", "bob"):
        assert code(port, "REGISTER", u, timeout=30) == 0
        assert code(port, "CONNECT", u, "40001", timeout=30) == 0
    for i in range(200):
        assert code(port, "PUBLISH", "alice", "/f/%d" % i, "d" * 100, timeout=30) == 0
    for i in range(0, 200, 2):
        assert code(port, "DELETE", "alice", "/f/%d" % i, timeout=30) == 0
    assert code(port, "LIST_USERS", "bob", timeout=30) == 0
    assert code(port, "LIST_CONTENT", "bob", "alice", timeout=30) == 0
    assert code(port, "REGISTER", "x" * 300, timeout=30) == 2
    assert code(port, "CONNECT", "bob", "70000", timeout=30) == 3
    harness.exchange(port, b"NOT_AN_OP\x00junk\x00", timeout=30)
    harness.exchange(port, b"REGISTER\x00half", shut_wr=True, timeout=30)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: code(port, "REGISTER", "t%d" % i, timeout=60), range(200)))
    # A stalled client and a client that resets mid-reply.
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"LIST_USERS\x00")
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.sendall(harness.encode("LIST_CONTENT", harness.DATETIME, "bob", "alice"))
    s.close()
    assert code(port, "UNREGISTER", "alice", timeout=30) == 0
    assert code(port, "DISCONNECT", "bob", timeout=30) == 0
    # The stalled client is answered and closed at its deadline.
    assert harness.wait_replies([stalled], 60)[stalled] is not None
    stalled.close()


def main():
    tmp = "/tmp/peerdex-valgrind-%d" % os.getpid()
    os.makedirs(tmp, exist_ok=True)
    log = harness.Process(VALGRIND + [os.path.join(harness.BIN, "log_server"),
                                      "-f", tmp + "/ops.log", "-p", "0"])
    log_port = int(log.wait_line(r"listening on port (\d+)", timeout=60, stderr=True).group(1))
    srv = harness.Process(VALGRIND + [os.path.join(harness.BIN, "server"), "-p", "0", "-t", "2"],
                          env={"LOG_RPC_IP": "127.0.0.1", "LOG_RPC_PORT": str(log_port)})
    failed = False
    try:
        port = int(srv.wait_line(r"^s> init server \S+:(\d+)$", timeout=60).group(1))
        workload(port)
    finally:
        for name, proc in (("server", srv), ("log_server", log)):
            rc = proc.stop(signal.SIGTERM, timeout=60)
            summary = [l for l in proc.err_lines if "ERROR SUMMARY" in l or "definitely" in l]
            print("%s: exit %s; %s" % (name, rc, " | ".join(summary)))
            if rc != 0:
                failed = True
                print("\n".join(proc.err_lines[-60:]))
    with open(tmp + "/ops.log") as f:
        print("log lines written: %d" % len(f.read().splitlines()))
    os.system("rm -rf '%s'" % tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
