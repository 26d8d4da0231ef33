"""Run inside a fresh network namespace (unshare -rn): 24 addresses of one
IPv6 /64 on lo each hold 16 connections against `server -c 256 -i 16`, and
other sources (another /64, 127.0.0.1, ::1 counted with it) are still
served.  Prints one line, "served N of M held K", and exits 0.

Every process started here is stopped by PID (the namespace ends with it).
"""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

NET, OTHER, N_ADDR, PER = "2001:db8:1:2::", "2001:db8:9:9::1", 24, 16


def sh(*argv):
    subprocess.run(argv, check=True)


def answered(src, dst, port, name):
    """True when a REGISTER from src is served (code 0)."""
    try:
        with socket.create_connection((dst, port), timeout=5, source_address=(src, 0)) as s:
            s.sendall(harness.encode("REGISTER", harness.DATETIME, name))
            return s.recv(16) == b"\0"
    except OSError:
        return False


def main():
    sh("ip", "link", "set", "lo", "up")
    for i in range(1, N_ADDR + 1):
        sh("ip", "addr", "add", "%s%x/64" % (NET, i), "dev", "lo", "nodad")
    sh("ip", "addr", "add", OTHER + "/64", "dev", "lo", "nodad")
    srv = harness.Server("-c", "256", "-i", str(PER), "-t", "20", *sys.argv[1:])
    held = []
    try:
        for i in range(1, N_ADDR + 1):
            for _ in range(PER):
                s = socket.create_connection(("::1", srv.port), timeout=5,
                                             source_address=("%s%x" % (NET, i), 0))
                held.append(s)
        served = total = 0
        for src, dst in ((OTHER, "::1"), ("127.0.0.1", "127.0.0.1"), ("::1", "::1")):
            for k in range(10):
                total += 1
                name = "u%d%s" % (k, src.replace(":", "").replace(".", ""))
                served += answered(src, dst, srv.port, name)
        # The connections the server admitted answer; the others were closed.
        open_ = 0
        for k, s in enumerate(held):
            try:
                s.sendall(harness.encode("REGISTER", harness.DATETIME, "h%d" % k))
                open_ += s.recv(16) == b"\0"
            except OSError:
                pass
        print("served %d of %d held %d" % (served, total, open_))
    finally:
        for s in held:
            s.close()
        srv.stop()


if __name__ == "__main__":
    main()
