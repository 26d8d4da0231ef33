#!/usr/bin/env python3
"""`make conformance`: run the conformance kit against our programs, or others.

With none of --server, --peer, --client: starts our index server (bin/server on
a free port), a real client of ours that publishes a file (for the peer target)
and runs all three targets against ours.  With any of them: runs only those
targets, against what they name.  Everything started here is stopped by PID.
"""
import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KIT = os.path.join(HERE, "conform.py")
# Checks our own programs are known to fail today, with the reason; the kit
# reports them as XFAIL, and as a failure once they pass (then drop them here).
KNOWN_FAILURES = {
    "client": {},
}


def stop(proc):
    """SIGTERM by PID, then SIGKILL if it will not go."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_server(bin_dir):
    """bin/server -p 0; returns (process, port) once it prints its address."""
    proc = subprocess.Popen([os.path.join(bin_dir, "server"), "-p", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    m = re.match(r"^s> init server \S+:(\d+)$", line.strip())
    if not m:
        stop(proc)
        sys.exit("conformance: the server did not start (%r)" % line)
    # Keep draining the console so the server never blocks on a full pipe.
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return proc, int(m.group(1))


def request(port, *fields):
    """One operation against our server; the raw reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"".join(f.encode() + b"\0" for f in fields))
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def start_peer(python, port, workdir):
    """A client of ours, connected as a user with one published file.
    Returns (process, peer port, published path)."""
    path = os.path.join(workdir, "published.txt")
    with open(path, "wb") as f:
        f.write(b"conformance kit\n" + bytes(range(256)))
    home = os.path.join(workdir, "home")        # the client's records stay in workdir
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"))
    proc = subprocess.Popen([python, os.path.join(ROOT, "client", "client.py"),
                             "-s", "127.0.0.1", "-p", str(port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    for command, want in (("REGISTER conformance_owner", "c> REGISTER OK"),
                          ("CONNECT conformance_owner", "c> CONNECT OK"),
                          ("PUBLISH %s a file for the kit" % path, "c> PUBLISH OK")):
        proc.stdin.write((command + "\n").encode())
        proc.stdin.flush()
        line = proc.stdout.readline().decode().rstrip("\n")
        if line != want:
            stop(proc)
            sys.exit("conformance: our client said %r to %r" % (line, command))
    # The owner's listening port, as any downloader learns it: LIST_USERS.
    dt = "17/12/2014 13:20:35"
    request(port, "REGISTER", dt, "conformance_probe")
    request(port, "CONNECT", dt, "conformance_probe", "40000")
    fields = request(port, "LIST_USERS", dt, "conformance_probe")[1:].split(b"\0")
    i = fields.index(b"conformance_owner")
    return proc, int(fields[i + 2]), path


def kit(python, *args):
    """Run the kit; True when every check passed."""
    argv = [python, KIT, *args]
    print("== " + " ".join(shlex.quote(a) for a in argv[1:]), flush=True)
    return subprocess.call(argv) == 0


def main():
    """Run the selected targets; the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "bin"), help="our programs")
    p.add_argument("--python", default=sys.executable, help="interpreter for our client")
    p.add_argument("--server", help="HOST:PORT of another index server")
    p.add_argument("--peer", help="\"HOST:PORT PATH\" of another client's file server")
    p.add_argument("--client", help="command line of another client")
    p.add_argument("kit_args", nargs="*", help="passed to the kit (e.g. --json)")
    args = p.parse_args()
    ok = True
    if args.server or args.peer or args.client:
        if args.server:
            ok &= kit(args.python, "server", args.server, *args.kit_args)
        if args.peer:
            ok &= kit(args.python, "peer", *shlex.split(args.peer), *args.kit_args)
        if args.client:
            ok &= kit(args.python, "client", args.client, *args.kit_args)
        return 0 if ok else 1
    workdir = tempfile.mkdtemp(prefix="conformance-")
    server = peer = None
    try:
        server, port = start_server(args.bin)
        ok &= kit(args.python, "server", "127.0.0.1:%d" % port, *args.kit_args)
        peer, peer_port, path = start_peer(args.python, port, workdir)
        ok &= kit(args.python, "peer", "127.0.0.1:%d" % peer_port, path, *args.kit_args)
        known = []
        for cid, why in sorted(KNOWN_FAILURES["client"].items()):
            print("known failure of our client, %s: %s" % (cid, why))
            known += ["--xfail", cid]
        ok &= kit(args.python, "client", "%s %s" % (
            shlex.quote(args.python), shlex.quote(os.path.join(ROOT, "client", "client.py"))),
            *known, *args.kit_args)
    finally:
        if peer is not None:
            peer.stdin.close()
            try:
                peer.wait(10)
            except subprocess.TimeoutExpired:
                stop(peer)
        if server is not None:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
