"""The local time web service: GET /datetime answers the current local time.

    GET /datetime             -> "DD/MM/YYYY HH:MM:SS"  (text/plain, local time)
    GET /datetime?format=iso  -> RFC 3339 with the UTC offset, e.g. 2014-12-17T13:20:35+01:00

Run standalone:  python3 client/timeservice.py [--host 127.0.0.1] [--port 8000]
With --port 0 it picks a free port.  It prints one line, "listening on http://HOST:PORT",
so whoever started it learns the address.  With --parent-pipe it also exits as soon
as its standard input closes (the client that started it went away).
"""
import argparse
import logging
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


def create_app():
    """The Flask application with its one route."""
    app = Flask("peerdex-timeservice")

    @app.get("/datetime")
    def current_datetime():
        now = datetime.now().astimezone()
        if request.args.get("format") == "iso":
            text = now.isoformat(timespec="seconds")
        else:
            text = now.strftime(DATETIME_FORMAT)
        return Response(text, mimetype="text/plain")

    return app


def serve(host, port, announce=sys.stdout):
    """Create the HTTP server (threaded; it closes each connection after its answer)
    and announce its address."""
    server = make_server(host, port, create_app(), threaded=True)
    print("listening on http://%s:%d" % (host, server.server_port), file=announce, flush=True)
    return server


def _exit_when_stdin_closes(server):
    """Stop serving once the parent's end of our stdin is gone."""
    sys.stdin.buffer.read()
    server.shutdown()


def main(argv=None):
    parser = argparse.ArgumentParser(description="peerdex local time web service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--parent-pipe", action="store_true",
                        help="exit when standard input closes")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("port must be 0..65535")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        server = serve(args.host, args.port)
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
