"""The local time web service: GET /datetime answers the current local time.

    GET /datetime             -> "DD/MM/YYYY HH:MM:SS"  (text/plain, local time)
    GET /datetime?format=iso  -> RFC 3339 with the UTC offset, e.g. 2014-12-17T13:20:35+01:00

Run standalone:  python3 client/timeservice.py [--host 127.0.0.1] [--port 8000]
With --port 0 it picks a free port.  It prints one line, "listening on http://HOST:PORT",
so whoever started it learns the address.  With --parent-pipe it also exits as soon
as its standard input closes (the client that started it went away).

With --key-stdin it first reads a secret key (hex, one line) from its standard
input, and answers every request that carries an `X-Peerdex-Nonce` header with
`X-Peerdex-Proof: HMAC-SHA256(key, nonce)` (hex): the client that started it
can so tell its own service from any other process on the same port.
"""
import argparse
import hashlib
import hmac
import logging
import signal
import sys
import threading
from datetime import datetime

try:
    from flask import Flask, Response, request
    from werkzeug.serving import make_server
except ImportError as _e:
    # The first line is what the client reads: say why there is no service.
    print("cannot import Flask (%s: %s); install python3-flask"
          % (type(_e).__name__, _e), flush=True)
    sys.exit(1)

DATETIME_FORMAT = "%d/%m/%Y %H:%M:%S"
NONCE_HEADER = "X-Peerdex-Nonce"
PROOF_HEADER = "X-Peerdex-Proof"


def proof(key, nonce):
    """The answer to a nonce that only the holder of `key` can give."""
    return hmac.new(key, nonce.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def create_app(key=None):
    """The Flask application with its one route; with `key`, answers carry
    the proof for the request's nonce."""
    app = Flask("peerdex-timeservice")

    @app.get("/datetime")
    def current_datetime():
        now = datetime.now().astimezone()
        if request.args.get("format") == "iso":
            text = now.isoformat(timespec="seconds")
        else:
            text = now.strftime(DATETIME_FORMAT)
        resp = Response(text, mimetype="text/plain")
        nonce = request.headers.get(NONCE_HEADER)
        if key is not None and nonce:
            resp.headers[PROOF_HEADER] = proof(key, nonce)
        return resp

    return app


def serve(host, port, announce=sys.stdout, key=None):
    """Create the HTTP server (threaded; it closes each connection after its
    answer) and announce its address."""
    server = make_server(host, port, create_app(key), threaded=True)
    print("listening on http://%s:%d" % (host, server.server_port), file=announce, flush=True)
    return server


def _exit_when_stdin_closes(server):
    """Stop serving once the parent's end of our stdin is gone."""
    sys.stdin.buffer.read()
    server.shutdown()


def main(argv=None):
    # The client may start us while it is leaving, with SIGTERM and SIGHUP
    # ignored (a disposition a child inherits): our parent stops us with
    # SIGTERM, so it must work whatever we inherited.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    parser = argparse.ArgumentParser(description="peerdex local time web service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--parent-pipe", action="store_true",
                        help="exit when standard input closes")
    parser.add_argument("--key-stdin", action="store_true",
                        help="read a hex key from the first line of standard input and "
                        "prove it on every request with a nonce")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("port must be 0..65535")
    key = None
    if args.key_stdin:
        try:
            key = bytes.fromhex(sys.stdin.buffer.readline().decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            key = b""
        if len(key) < 16:
            print("timeservice: --key-stdin: no key of at least 16 bytes on stdin",
                  file=sys.stderr)
            return 2
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        server = serve(args.host, args.port, key=key)
    except OSError as e:
        print("timeservice: cannot listen on %s:%d: %s" % (args.host, args.port, e),
              file=sys.stderr)
        return 1
    if args.parent_pipe:
        threading.Thread(target=_exit_when_stdin_closes, args=(server,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
