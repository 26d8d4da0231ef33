"""The time web service, and the date-time the client puts on every operation."""
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest

import harness
from client_lib import run_script
from stubs import StubServer

SERVICE = os.path.join(harness.ROOT, "client", "timeservice.py")
DT_RX = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")


@pytest.fixture
def service():
    """The time service run standalone on a free port."""
    p = harness.Process([harness.PYTHON, SERVICE, "--host", "127.0.0.1", "--port", "0"])
    try:
        p.url = p.wait_line(r"^listening on (http://\S+)$").group(1)
        yield p
    finally:
        p.stop()


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers.get_content_type(), r.read().decode()


@pytest.mark.python_only
def test_datetime_format_and_clock(service):
    status, ctype, body = get(service.url + "/datetime")
    assert status == 200 and ctype == "text/plain"
    assert DT_RX.match(body), body
    when = datetime.strptime(body, "%d/%m/%Y %H:%M:%S")
    assert abs((when - datetime.now()).total_seconds()) < 2


@pytest.mark.python_only
def test_datetime_iso(service):
    status, ctype, body = get(service.url + "/datetime?format=iso")
    assert status == 200 and ctype == "text/plain"
    when = datetime.fromisoformat(body)
    assert when.utcoffset() is not None
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$", body)
    assert abs((when - datetime.now().astimezone()).total_seconds()) < 2


@pytest.mark.python_only
def test_unknown_path_is_404(service):
    with pytest.raises(urllib.error.HTTPError) as e:
        get(service.url + "/nothing")
    assert e.value.code == 404


def RecordingServer():
    """A stand-in index server that records each request and answers 0."""
    return StubServer(lambda fields: b"\x000\x00" if fields[0].startswith("LIST") else b"\x00")


@pytest.mark.python_only
def test_every_operation_carries_a_well_formed_datetime(tmp_path):
    rec = RecordingServer()
    shared = tmp_path / "y.txt"             # PUBLISH checks the file before sending
    shared.write_text("y")
    status, out, err = run_script(rec.port, [
        "REGISTER a", "CONNECT a", "PUBLISH %s d e" % shared, "DELETE %s" % shared,
        "LIST_USERS", "LIST_CONTENT a", "DISCONNECT a", "UNREGISTER a"])
    rec.sock.close()
    assert status == 0, err
    ops = [r[0] for r in rec.requests]
    # EXTENSIONS first: the client finds out once whether the server speaks
    # AUTH.  Then one operation per command: a first CONNECT (no files
    # recorded from an earlier session) sends no LIST_CONTENT (docs/client.md).
    assert ops == ["EXTENSIONS", "REGISTER", "CONNECT", "PUBLISH", "DELETE", "LIST_USERS",
                   "LIST_CONTENT", "DISCONNECT", "UNREGISTER"]
    for r in rec.requests:
        assert DT_RX.match(r[1]), r
        when = datetime.strptime(r[1], "%d/%m/%Y %H:%M:%S")
        assert abs((when - datetime.now()).total_seconds()) < 60
    assert rec.requests[3][2:] == ["a", str(shared), "d e"]


def test_killed_service_is_restarted(server, clients):
    c = clients(server.port, "-v")
    c.do("REGISTER t1", "c> REGISTER OK")
    first = int(re.search(r"time service pid (\d+)", "\n".join(c.err_lines)).group(1))
    os.kill(first, signal.SIGKILL)
    c.do("REGISTER t2", "c> REGISTER OK")
    pids = [int(p) for p in re.findall(r"time service pid (\d+)", "\n".join(c.err_lines))]
    assert len(pids) == 2 and pids[1] != first
    assert c.finish() == 0


def test_broken_time_url_gives_fail_lines_not_a_crash(server, clients):
    port = harness.dead_port()
    dead = "http://127.0.0.1:%d/datetime" % port.port
    c = clients(server.port, "--time-url", dead)
    c.do("REGISTER nope", "c> REGISTER FAIL")
    c.do("CONNECT nope", "c> CONNECT FAIL")
    c.do("LIST_USERS", "c> LIST_USERS FAIL, USER NOT CONNECTED")
    assert c.finish() == 1                  # a scripted run with failures
    assert any("no date-time" in l for l in c.err_lines)
    # Nothing was sent: the name is still free.
    assert harness.code(server.port, "REGISTER", "nope") == 0
    port.close()


def test_time_url_of_a_standalone_service(server, service, clients):
    c = clients(server.port, "--time-url", service.url + "/datetime")
    c.do("REGISTER remote_time", "c> REGISTER OK")
    assert c.finish() == 0


def test_bad_time_url_is_a_usage_error(server):
    status, _, err = run_script(server.port, [], "--time-url", "ftp://x")
    assert status == 2 and "bad time service URL" in err


@pytest.mark.python_only
def test_time_client_overhead_function_exists():
    """The benchmark calls TimeClient.now() (through client/client.py); keep it
    importable from both."""
    import importlib.util
    from peerdex.timeclient import TimeClient, TimeService
    spec = importlib.util.spec_from_file_location(
        "peerdex_client", os.path.join(harness.ROOT, "client", "client.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.TimeClient is TimeClient and mod.TimeService is TimeService
    tc = TimeClient(service=TimeService())
    try:
        assert DT_RX.match(tc.now())
        assert DT_RX.match(tc.now())
    finally:
        tc.close()


class Impostor:
    """Whoever takes a port after our time service died: answers every GET
    with a date-time of its choosing and a made-up proof header."""

    def __init__(self, port):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = b"31/12/1999 23:59:59"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Peerdex-Proof", "0" * 64)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        deadline = time.monotonic() + 5
        while True:                 # until the killed service's socket is gone
            try:
                self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.python_only
def test_time_impostor_on_the_old_port_is_never_believed():
    rec = RecordingServer()
    from client_lib import ClientProc
    c = ClientProc(rec.port, "-v")
    impostor = None
    try:
        c.do("REGISTER a", "c> REGISTER OK")
        m = re.search(r"time service pid (\d+) at http://127.0.0.1:(\d+)", "\n".join(c.err_lines))
        os.kill(int(m.group(1)), signal.SIGKILL)
        impostor = Impostor(int(m.group(2)))        # takes the port at once
        c.do("REGISTER b", "c> REGISTER OK")
        c.do("REGISTER c", "c> REGISTER OK")
        assert c.finish() == 0
    finally:
        c.stop()
        rec.sock.close()
        if impostor is not None:
            impostor.close()
    stamps = [r[1] for r in rec.requests if r[0] == "REGISTER"]
    assert len(stamps) == 3 and not any(s.startswith("31/12/1999") for s in stamps), stamps
    pids = re.findall(r"time service pid (\d+)", "\n".join(c.err_lines))
    assert len(pids) == 2


@pytest.mark.python_only
def test_an_answer_without_our_proof_is_refused():
    """In-process: a TimeClient for our own service refuses a service that
    cannot prove our key (here: a standalone one, started without it)."""
    from peerdex.timeclient import TimeClient, TimeError, TimeService

    class Stranger(TimeService):
        def start(self):
            super().start()
            self.key = b"another key, not the child's one"

    tc = TimeClient(service=Stranger())
    try:
        with pytest.raises(TimeError) as e:
            tc.now()
        assert "not from our own time service" in str(e.value)
    finally:
        tc.close()


@pytest.mark.python_only
def test_service_started_with_sigterm_ignored_still_stops_on_sigterm():
    """A client leaving on SIGTERM ignores it from then on, and a service it
    (re)starts then inherits that: the service must still end on the
    parent's SIGTERM at once, not after the parent's wait and a SIGKILL."""
    from peerdex.timeclient import TimeService
    svc = TimeService()
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        svc.start()
    finally:
        signal.signal(signal.SIGTERM, old)
    proc = svc.proc
    svc.stop()
    assert proc.returncode == -signal.SIGTERM


@pytest.mark.python_only
def test_a_question_cut_short_by_a_signal_keeps_the_service(monkeypatch):
    """A signal in the middle of a question (SIGTERM or Ctrl-C while the
    client asks the time) leaves the service as it is: the next question
    takes a fresh connection to the same service, no restart."""
    from peerdex.timeclient import TimeClient, TimeService
    tc = TimeClient(service=TimeService())
    try:
        assert DT_RX.match(tc.now())
        pid = tc.service.proc.pid

        def interrupted():
            raise KeyboardInterrupt

        monkeypatch.setattr(tc.conn, "getresponse", interrupted)
        with pytest.raises(KeyboardInterrupt):
            tc.now()
        assert DT_RX.match(tc.now())
        assert tc.service.proc.pid == pid
    finally:
        tc.close()
