"""The time web service: our own child process, and the client that asks it.

Before every index operation the client needs the date-time as
DD/MM/YYYY HH:MM:SS from a local web service (client/timeservice.py).

Our own service gets a fresh secret key on its stdin at every start, and each
question carries a fresh nonce that only the holder of the key can answer (an
HMAC in a header): an answer from any other process, say one that took the
port of a service that died, is never believed.  After any failure the service
is restarted on a fresh port with a fresh key; the old port is never asked again.
"""
import hashlib
import hmac
import http.client
import importlib.util
import os
import re
import secrets
import subprocess
import sys
import urllib.parse

SERVICE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "timeservice.py")
DATETIME_RX = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$", re.ASCII)
NONCE_HEADER = "X-Peerdex-Nonce"    # as in timeservice.py
PROOF_HEADER = "X-Peerdex-Proof"


class TimeError(Exception):
    """The time web service could not give a date-time."""


def python_with_flask():
    """An interpreter that has Flask: this one, or Debian's (the `python3`
    first on PATH may be another interpreter without python3-flask)."""
    if importlib.util.find_spec("flask") is not None:
        return sys.executable
    if os.path.exists("/usr/bin/python3"):
        return "/usr/bin/python3"
    return sys.executable


class TimeService:
    """Our own time service, a child process on 127.0.0.1 and a free port."""

    def __init__(self, verbose=False):
        self.verbose = verbose
        self.proc = None
        self.url = None
        self.key = None

    def start(self):
        """Start the child with a fresh key and learn its address from its
        first line."""
        self.key = secrets.token_bytes(32)
        self.proc = subprocess.Popen(
            [python_with_flask(), SERVICE,
             "--host", "127.0.0.1", "--port", "0", "--parent-pipe", "--key-stdin"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C or hang-up meant for the client does
            # not kill it (it ends when our end of its stdin closes).
            start_new_session=True)
        try:
            self.proc.stdin.write(self.key.hex().encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass                        # it died already: no line below
        line = self.proc.stdout.readline().decode("utf-8", "replace").strip()
        m = re.match(r"^listening on (http://\S+)$", line)
        if not m:
            self.stop()
            raise TimeError("the time service did not start: %s"
                            % (line or "it printed nothing"))
        self.url = m.group(1)
        if self.verbose:
            print("time service pid %d at %s" % (self.proc.pid, self.url), file=sys.stderr,
                  flush=True)

    def stop(self):
        """Stop the child by its PID and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def proves(self, nonce, answer):
        """True when `answer` is our child's proof for `nonce`."""
        if self.key is None or answer is None:
            return False
        expected = hmac.new(self.key, nonce.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, answer)


class TimeClient:
    """Asks the time web service for the date-time over one kept-alive connection.

    With `service` (ours), every answer must carry the service's proof, and
    a failed call restarts the service on a fresh port once and retries; with
    only a URL (someone else's), a failure is final.
    """

    def __init__(self, url=None, service=None, timeout=1.0):
        self.service = service
        self.timeout = timeout
        self.conn = None
        self.url = None
        if url:
            self._set_url(url)

    def _set_url(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise TimeError("bad time service URL %r" % url)
        self.url = url
        self.host, self.port = parts.hostname, parts.port or 80
        base = parts.path.rstrip("/")
        self.path = (base if base.endswith("/datetime") else base + "/datetime")
        self._close()

    def _close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _ask(self):
        """One GET; raises on any failure or a malformed answer."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {}
        if self.service is not None:
            nonce = secrets.token_hex(16)
            headers[NONCE_HEADER] = nonce
        try:
            self.conn.request("GET", self.path, headers=headers)
            resp = self.conn.getresponse()
            body = resp.read().decode("ascii", "replace").strip()
        except BaseException:
            # Also a signal (Ctrl-C, SIGTERM) in the middle of the exchange:
            # the connection is then halfway through a request, so the next
            # question takes a fresh one instead of failing on this one and
            # restarting a service that is fine.
            self._close()
            raise
        if resp.status != 200 or not DATETIME_RX.match(body):
            raise TimeError("unexpected answer %d %r" % (resp.status, body[:60]))
        if self.service is not None and not self.service.proves(nonce,
                                                                resp.getheader(PROOF_HEADER)):
            raise TimeError("an answer on %s:%d that is not from our own time service"
                            % (self.host, self.port))
        return body

    def now(self):
        """The current date-time as DD/MM/YYYY HH:MM:SS, or TimeError."""
        if self.url is None and self.service is not None:
            try:
                self.service.start()
            except OSError as e:            # no interpreter, no processes left
                raise TimeError("cannot start the time service: %s" % e) from None
            self._set_url(self.service.url)
        try:
            return self._ask()
        except (OSError, http.client.HTTPException, TimeError) as first:
            self._close()
            if self.service is None:
                # Someone else's: a kept-alive connection it dropped gets one
                # fresh try.
                try:
                    return self._ask()
                except (OSError, http.client.HTTPException, TimeError):
                    self._close()
                raise TimeError("time service at %s: %s" % (self.url, first)) from None
        # Ours: never the same port again, whoever may hold it now.
        try:
            self.service.restart()
            self._set_url(self.service.url)
            return self._ask()
        except (OSError, http.client.HTTPException, TimeError) as e:
            self._close()
            raise TimeError("time service did not answer, even after a restart: %s" % e) \
                from None

    def close(self):
        self._close()
        if self.service is not None:
            self.service.stop()
