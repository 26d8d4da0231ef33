"""The HTTP endpoint (-H): /api/state and /metrics against a real server,
off in the bare server, read-only, and every string from the network
escaped.  No browser here (make test-web drives the page itself)."""
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

import harness


def http_port(srv):
    """The port of srv's live view, from its stderr line."""
    m = srv.wait_line(r"live view at http://127\.0\.0\.1:(\d+)/", stderr=True)
    return int(m.group(1))


def get(port, path, method="GET"):
    """(status, headers, body bytes) of one HTTP request to the live view."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def state(port):
    status, headers, body = get(port, "/api/state")
    assert status == 200 and headers["Content-Type"] == "application/json"
    return json.loads(body.decode("utf-8"))


SAMPLE = re.compile(r'^(peerdex_[a-z_]+)(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? '
                    r'(-?[0-9.]+(e[+-]?[0-9]+)?)$')


def metrics(port):
    """The /metrics samples as {'name{labels}': value}, each line checked
    against the Prometheus text format."""
    status, headers, body = get(port, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for line in body.decode("ascii").splitlines():
        if line.startswith("# HELP peerdex_") or line.startswith("# TYPE peerdex_"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample: %r" % line
        out[m.group(1) + (m.group(2) or "")] = float(m.group(4))
    return out


def wait_for(fn, timeout=10):
    """Poll fn() until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            assert v, "condition not met within %s s" % timeout
            return v
        time.sleep(0.05)


def listening_ports(pid):
    """TCP ports process pid listens on, from /proc."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_bare_server_serves_no_http(server):
    """Without -H the server listens on its protocol port only."""
    assert listening_ports(server.pid) == {server.port}
    assert not any("live view" in line for line in server.err_lines)


def test_with_h_it_listens_on_a_second_port(make_server):
    srv = make_server("-H", "127.0.0.1:0")
    port = http_port(srv)
    assert listening_ports(srv.pid) == {srv.port, port}


@pytest.mark.parametrize("bad", ["", "x", "127.0.0.1:", "127.0.0.1:65536", ":80", "[]:80"])
def test_bad_h_is_refused(bad):
    p = harness.Process([os.path.join(harness.BIN, "server"), "-p", "0", "-H", bad])
    assert p.proc.wait(10) == 2
    p.stop()
    assert any("bad HTTP address" in line for line in p.err_lines)


def test_state_shows_users_files_and_last_operations(make_server):
    srv = make_server("-H", "0")
    port = http_port(srv)
    s = state(port)
    assert s["totals"] == {"users": 0, "connected": 0, "files": 0, "operations": 0,
                           "connections_open": 0, "expiries": 0}
    assert s["users"] == [] and s["recent"] == []

    before = time.time()
    assert harness.code(srv.port, "REGISTER", "alice") == 0
    assert harness.code(srv.port, "REGISTER", "alice") == 1
    assert harness.code(srv.port, "CONNECT", "alice", "40001") == 0
    assert harness.code(srv.port, "PUBLISH", "alice", "/a.txt", "one") == 0
    assert harness.code(srv.port, "PUBLISH", "alice", "/b.txt", "two") == 0
    assert harness.code(srv.port, "LIST_CONTENT", "alice", "alice") == 0
    s = state(port)
    assert s["totals"] == {"users": 1, "connected": 1, "files": 2, "operations": 6,
                           "connections_open": 0, "expiries": 0}
    [u] = s["users"]
    assert (u["name"], u["address"], u["port"], u["files"]) == ("alice", "127.0.0.1", 40001, 2)
    assert before - 1 <= u["since"] <= time.time() + 1
    ops = [(r["user"], r["operation"], r["path"], r["result"]) for r in s["recent"]]
    assert ops == [("alice", "LIST_CONTENT", "alice", 0), ("alice", "PUBLISH", "/b.txt", 0),
                   ("alice", "PUBLISH", "/a.txt", 0), ("alice", "CONNECT", "", 0),
                   ("alice", "REGISTER", "", 1), ("alice", "REGISTER", "", 0)]
    seqs = [r["seq"] for r in s["recent"]]
    assert seqs == sorted(seqs, reverse=True)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", s["recent"][0]["time"])
    assert s["operations"]["REGISTER"] == {"0": 1, "1": 1}
    assert s["operations"]["DELETE"] == {}


def test_the_last_operations_are_a_bounded_ring(make_server):
    srv = make_server("-H", "0")
    port = http_port(srv)
    for i in range(80):
        assert harness.code(srv.port, "REGISTER", "u%d" % i) == 0
    s = state(port)
    assert len(s["recent"]) == 64
    assert s["recent"][0]["user"] == "u79" and s["recent"][-1]["user"] == "u16"
    assert s["totals"]["users"] == 80 and s["totals"]["operations"] == 80


NAMES = [b'<img/src=x/onerror=alert(1)>', b'q"uo\\te', b'zo\xc3\xab', b'bad\xff\xfeutf8',
         b'sur\xed\xa0\x80rogate', b'over\xc0\xaflong', b'\xe2\x80\xa8sep']


def test_json_strings_are_escaped(make_server):
    """Quotes, backslashes, markup and bytes that are not UTF-8 come out as
    valid JSON: the text as sent, each bad byte as U+FFFD, no raw '<'."""
    srv = make_server("-H", "0")
    port = http_port(srv)
    for name in NAMES:
        assert harness.code(srv.port, "REGISTER", name) == 0
        assert harness.code(srv.port, "CONNECT", name, "40002") == 0
    assert harness.code(srv.port, "PUBLISH", NAMES[0], b'/"<b>&x', "d") == 0
    status, _, body = get(port, "/api/state")
    assert b"<" not in body and b">" not in body
    s = json.loads(body.decode("utf-8"))    # strict: valid UTF-8 and JSON
    expected = {n.decode("utf-8", "replace") for n in NAMES}
    assert {u["name"] for u in s["users"]} == expected
    assert "bad\ufffd\ufffdutf8" in expected
    assert s["recent"][0]["path"] == '/"<b>&x'


def test_metrics_count_operations_and_gauges(make_server, tmp_path):
    srv = make_server("-H", "0", "-d", str(tmp_path / "state"))
    port = http_port(srv)
    m = metrics(port)
    assert m['peerdex_operations_total{op="REGISTER",result="0"}'] == 0
    assert harness.code(srv.port, "REGISTER", "bob") == 0
    assert harness.code(srv.port, "REGISTER", "bob") == 1
    assert harness.code(srv.port, "CONNECT", "bob", "40003") == 0
    assert harness.code(srv.port, "PUBLISH", "bob", "/f", "d") == 0
    assert harness.code(srv.port, "DELETE", "bob", "/nope") == 3
    m = metrics(port)
    assert m['peerdex_operations_total{op="REGISTER",result="0"}'] == 1
    assert m['peerdex_operations_total{op="REGISTER",result="1"}'] == 1
    assert m['peerdex_operations_total{op="DELETE",result="3"}'] == 1
    assert m["peerdex_users_registered"] == 1
    assert m["peerdex_users_connected"] == 1
    assert m["peerdex_files"] == 1
    assert m["peerdex_connections_total"] >= 5
    assert m["peerdex_journal_bytes"] > 0
    assert m["peerdex_snapshot_bytes"] >= 0
    assert m["peerdex_log_outbox_entries"] == 0
    assert m["peerdex_log_outbox_oldest_seconds"] == 0
    assert m["peerdex_uptime_seconds"] > 0
    for name in ("liveness_probes_total{outcome=\"alive\"}", "liveness_expiries_total",
                 "connections_open"):
        assert "peerdex_" + name in m


def refused(port, reason):
    return metrics(port)['peerdex_connections_refused_total{reason="%s"}' % reason]


def test_refusals_by_reason(make_server):
    """Over the cap, a request past its deadline, a malformed request; and
    over the per-source cap on a second server."""
    srv = make_server("-H", "0", "-c", "1", "-t", "1")
    port = http_port(srv)
    with socket.create_connection(srv.addr) as held:
        held.sendall(b"REGISTER\0")                 # stalls: the deadline
        wait_for(lambda: metrics(port)["peerdex_connections_open"] == 1)
        assert harness.exchange(srv.port, harness.encode("REGISTER", "x", "y")) == b""
        assert refused(port, "cap") == 1
        wait_for(lambda: refused(port, "deadline") == 1)
    assert harness.exchange(srv.port, harness.encode("NOSUCHOP", harness.DATETIME)) == b""
    assert refused(port, "malformed") == 1

    srv2 = make_server("-H", "0", "-i", "1", "-t", "5")
    port2 = http_port(srv2)
    with socket.create_connection(srv2.addr) as held:
        held.sendall(b"REGISTER\0")
        wait_for(lambda: metrics(port2)["peerdex_connections_open"] == 1)
        assert harness.exchange(srv2.port, harness.encode("REGISTER", "x", "y")) == b""
        assert refused(port2, "per_source") == 1
        assert refused(port2, "cap") == 0


def test_an_expiry_is_counted_and_listed(make_server):
    srv = make_server("-H", "0", "-L", "1", "-N", "1")
    port = http_port(srv)
    dead = harness.fixed_port()                      # nobody listens there
    assert harness.code(srv.port, "REGISTER", "carol") == 0
    assert harness.code(srv.port, "CONNECT", "carol", str(dead)) == 0
    srv.wait_line(r"^s> EXPIRED carol ", timeout=10)
    m = metrics(port)
    assert m["peerdex_liveness_expiries_total"] == 1
    assert m['peerdex_liveness_probes_total{outcome="dead"}'] >= 1
    s = state(port)
    assert s["totals"]["expiries"] == 1 and s["users"] == []
    assert (s["recent"][0]["operation"], s["recent"][0]["user"]) == ("EXPIRED", "carol")


def test_read_only_and_strict_headers(make_server):
    srv = make_server("-H", "0")
    port = http_port(srv)
    status, headers, page = get(port, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Self-contained: its script and style come from here, none inline.
    assert b'<script src="/page.js"' in page and b'href="/page.css"' in page
    assert not re.search(rb"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert b"<style" not in page and b" style=" not in page
    assert not re.search(rb"(src|href)=\"(https?:)?//", page)
    for path, kind in (("/page.js", "text/javascript"), ("/page.css", "text/css")):
        status, headers, _ = get(port, path)
        assert status == 200 and headers["Content-Type"].startswith(kind)
    assert get(port, "/nothing")[0] == 404
    for method in ("POST", "PUT", "DELETE"):
        assert get(port, "/api/state", method)[0] == 405
    assert get(port, "/api/state", "HEAD")[0] == 200


def test_polling_while_operations_run(make_server):
    """Operations from 8 threads while another polls both endpoints: every
    answer is whole and valid, the counts only grow, and the final totals
    are exact (no increment lost without a lock)."""
    import threading
    srv = make_server("-H", "0")
    port = http_port(srv)
    seen, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            s = state(port)
            m = metrics(port)
            seen.append((s["totals"]["operations"], m["peerdex_users_registered"]))

    def work(t):
        for i in range(40):
            assert harness.code(srv.port, "REGISTER", "w%d_%d" % (t, i)) == 0

    poller = threading.Thread(target=poll)
    poller.start()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    poller.join()
    assert seen and [s[0] for s in seen] == sorted(s[0] for s in seen)
    s = state(port)
    assert s["totals"]["operations"] == 320 and s["totals"]["users"] == 320
    assert s["operations"]["REGISTER"] == {"0": 320}
    assert len(s["recent"]) == 64 and len({r["seq"] for r in s["recent"]}) == 64
    assert metrics(port)['peerdex_operations_total{op="REGISTER",result="0"}'] == 320


@pytest.mark.parametrize("durable", [False, True])
def test_log_backlog_while_the_log_server_is_down(make_server, tmp_path, durable):
    """Entries the log server has not acknowledged are counted, with the
    age of the oldest, from the queue and from the journal outbox alike."""
    dead = harness.fixed_port()                      # no log server there
    args = ["-H", "0"] + (["-d", str(tmp_path / "state")] if durable else [])
    srv = make_server(*args, env={"LOG_RPC_IP": "127.0.0.1", "LOG_RPC_PORT": str(dead)})
    port = http_port(srv)
    assert metrics(port)["peerdex_log_outbox_entries"] == 0
    for name in ("l1", "l2", "l3"):
        assert harness.code(srv.port, "REGISTER", name) == 0
    m = wait_for(lambda: (lambda m: m if m["peerdex_log_outbox_oldest_seconds"] > 0 else None)(
        metrics(port)))
    assert m["peerdex_log_outbox_entries"] == 3
    srv.kill()              # not SIGTERM: it would wait 5 s for the log server
