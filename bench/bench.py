"""`make bench`: measure peerdex against yardsticks run on the same machine in
the same run, and write docs/benchmarks.md.

Every figure is taken several times (--runs, default 5); the report gives the
median and the min-max.  Throughput figures are ratios to a yardstick measured
alternately with them, so a noisy shared machine moves both sides alike.
"""
import argparse
import importlib.util
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

DT = harness.DATETIME


class Bench:
    def __init__(self, tools, runs, seconds):
        self.tools = tools
        self.runs = runs
        self.seconds = seconds
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="peerdex-bench-")
        self.sections = []
        self.commands = []              # every distinct command run, for the report

    # -- processes -----------------------------------------------------------

    def record(self, argv, env=None):
        """Keep a command for the report, with its paths, ports and user-name
        prefixes made generic, once."""
        text = " ".join(["%s=%s" % kv for kv in sorted((env or {}).items())] + list(argv))
        for path, name in ((self.tmp, "$TMP"), (os.path.abspath(self.tools), "build/bench"),
                           (self.tools, "build/bench"), (harness.BIN, "bin")):
            text = text.replace(path, name)
        text = re.sub(r"(-p |LOG_RPC_PORT=|recv )[1-9]\d*", r"\1PORT", text)
        text = re.sub(r"-x \S+", "-x PREFIX", text)
        if text not in self.commands:
            self.commands.append(text)

    def run(self, argv, **kw):
        """subprocess.run, recorded for the report."""
        self.record(argv)
        return subprocess.run(argv, **kw)

    def spawn(self, argv, pattern, env=None, wait=15):
        """Start a program with stdout and stderr going to files (as to a
        terminal: nothing in this process reads them as they come), wait
        for a line matching `pattern` in either, and return the process
        with .match set.  Stopped by PID in stop_all()."""
        self.record(argv, env)
        n = len(self.procs)
        out = open(os.path.join(self.tmp, "p%d.out" % n), "wb")
        err = open(os.path.join(self.tmp, "p%d.err" % n), "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=dict(os.environ, **(env or {})))
        out.close()
        err.close()
        self.procs.append(p)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for name in ("p%d.out" % n, "p%d.err" % n):
                with open(os.path.join(self.tmp, name), errors="replace") as f:
                    m = re.search(pattern, f.read(), re.M)
                if m:
                    p.match = m
                    p.port = int(m.group(1))
                    return p
            if p.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("%s did not start" % argv[0])

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []

    def index_server(self, log=True, *args, binary=None):
        """bin/server (or binary) on a free port, logging to its own log server
        or not; with logging, both hold a shared key (-k), as under `make run`."""
        env = {}
        if log:
            key = os.path.join(self.tmp, "log.key")
            if not os.path.exists(key):
                with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                    f.write(os.urandom(32).hex())
            lp = self.spawn([os.path.join(harness.BIN, "log_server"), "-f",
                             os.path.join(self.tmp, "ops-%d.log" % len(self.procs)), "-p", "0",
                             "-k", key], r"listening on port (\d+)")
            env = {"LOG_RPC_IP": "127.0.0.1", "LOG_RPC_PORT": str(lp.port)}
            args = ("-k", key) + args
        return self.spawn([binary or os.path.join(harness.BIN, "server"), "-p", "0", "-c",
                           "4096", "-i", "4096", *args], r"^s> init server \S+:(\d+)$", env)

    def baseline(self):
        return self.spawn([os.path.join(self.tools, "baseline_server"), "-p", "0"],
                          r"port (\d+)")

    def loadgen(self, port, threads, mode, prefix="lg", seconds=None, extra=()):
        out = self.run([os.path.join(self.tools, "loadgen"), "-p", str(port), "-t",
                        str(threads), "-d", str(seconds or self.seconds), "-m", mode,
                        "-x", prefix, *extra], capture_output=True, text=True, check=True,
                       timeout=600).stdout
        line = out.strip().splitlines()[-1]
        return {k: float(v) if re.match(r"^[\d.]+$", v) else v
                for k, v in (kv.split("=", 1) for kv in line.split())}

    # -- figures -------------------------------------------------------------

    def throughput(self):
        """The index server (logging on) against the baseline server."""
        srv = self.index_server(log=True)
        base = self.baseline()
        self.run([os.path.join(self.tools, "loadgen"), "-p", str(srv.port), "-m", "setup",
                  "-n", "1000"], check=True, capture_output=True)
        self.run([os.path.join(self.tools, "loadgen"), "-p", str(base.port), "-m", "setup",
                  "-n", "1"], check=True, capture_output=True)
        rows = []
        for mode, label, target in (("register", "write path: REGISTER of new users", 0.9),
                                    ("list", "read path: LIST_CONTENT of 1,000 files", 0.6),
                                    ("mixed", "mixed (4 list, 3 register, 2 publish, 1 list users)",
                                     None)):
            for threads in (1, 4, 32):
                ratios, ours, theirs = [], [], []
                for run in range(self.runs):
                    b = self.loadgen(base.port, threads, mode, "b%d%d" % (threads, run))
                    o = self.loadgen(srv.port, threads, mode, "%s%d_%d" % (mode[0], threads, run))
                    assert o["errors"] == 0, o
                    ratios.append(o["ops_s"] / b["ops_s"])
                    ours.append(o)
                    theirs.append(b)
                rows.append((label, threads, ratios, ours, theirs, target))
        self.stop_all()
        lines = ["| workload | client threads | index ops/s (p50 / p99 us) | baseline ops/s | "
                 "ratio, median (min-max) | target |", "| --- | --- | --- | --- | --- | --- |"]
        for label, threads, ratios, ours, theirs, target in rows:
            lines.append("| %s | %d | %s (%s / %s) | %s | **%s** | %s |" % (
                label, threads, med(o["ops_s"] for o in ours), med(o["p50_us"] for o in ours),
                med(o["p99_us"] for o in ours), med(b["ops_s"] for b in theirs),
                ratio_text(ratios), ">= %.1fx" % target if target else "-"))
        self.sections.append(("Throughput against a minimal server", [
            "The index server with the operation log on (log server on the same machine, "
            "`fdatasync` per batch) against `bench/baseline_server` (accept, thread, read one "
            "request, answer one byte, close), each loaded by `bench/loadgen` with the same "
            "requests, alternately, %d runs of %g s each." % (self.runs, self.seconds), ""] + lines))
        self.throughput_rows = rows

    def ceiling(self):
        """The index server (logging off) against bench/ceiling_server: one
        SO_REUSEPORT listener and thread per core, a pre-built reply of the
        real reply's size, no registry."""
        srv = self.index_server(False)
        self.run([os.path.join(self.tools, "loadgen"), "-p", str(srv.port), "-m", "setup",
                  "-n", "1000"], check=True, capture_output=True)
        listing = harness.exchange(srv.port, harness.encode("LIST_CONTENT", DT, "bench_owner",
                                                            "bench_owner"))
        cores = os.cpu_count()
        ceilings = {
            "register": self.spawn([os.path.join(self.tools, "ceiling_server"), "-p", "0",
                                    "-n", str(cores), "-b", "1"], r"port (\d+)"),
            "list": self.spawn([os.path.join(self.tools, "ceiling_server"), "-p", "0",
                                "-n", str(cores), "-b", str(len(listing))], r"port (\d+)")}
        rows = []
        for mode, label in (("register", "REGISTER of new users"),
                            ("list", "LIST_CONTENT of 1,000 files (%d-byte reply)" % len(listing))):
            for threads in (1, 4, 16, 64):
                ratios, ours, theirs = [], [], []
                for run in range(self.runs):
                    c = self.loadgen(ceilings[mode].port, threads, mode, "c%d%d" % (threads, run))
                    o = self.loadgen(srv.port, threads, mode, "x%s%d_%d" % (mode[0], threads, run))
                    assert o["errors"] == 0, o
                    ratios.append(o["ops_s"] / c["ops_s"])
                    ours.append(o)
                    theirs.append(c)
                rows.append((label, threads, ratios, ours, theirs))
        self.stop_all()
        lines = ["| workload | client threads | index ops/s (p50 / p99 us) | ceiling ops/s | "
                 "index / ceiling, median (min-max) |", "| --- | --- | --- | --- | --- |"]
        for label, threads, ratios, ours, theirs in rows:
            lines.append("| %s | %d | %s (%s / %s) | %s | **%s** |" % (
                label, threads, med(o["ops_s"] for o in ours), med(o["p50_us"] for o in ours),
                med(o["p99_us"] for o in ours), med(c["ops_s"] for c in theirs),
                ratio_text(ratios)))
        self.sections.append(("Against the ceiling", [
            "The index server (operation log off) against `bench/ceiling_server`: %d threads "
            "(one per core of this machine) made once, each blocking in `accept4()` on its own "
            "`SO_REUSEPORT` listener, reading the request and writing a reply built at start "
            "(1 byte, or as many bytes as the index server's LIST_CONTENT reply of 1,000 "
            "files), no registry; alternately, %d runs of %g s each. The load generator "
            "shares the %d cores." % (cores, self.runs, self.seconds, cores), ""] + lines))

    def lock_hold(self):
        """How long each operation holds the registry lock, from the server
        with bench/lockstats.c under the read and write loads (the live view polled)."""
        srv = self.index_server(False, "-H", "127.0.0.1:0",
                                binary=os.path.join(self.tools, "server_lockstats"))
        self.run([os.path.join(self.tools, "loadgen"), "-p", str(srv.port), "-m", "setup",
                  "-n", "1000"], check=True, capture_output=True)
        with Poller(self.http_port(srv)):
            for mode in ("list", "register", "mixed"):
                self.loadgen(srv.port, 4, mode, "lh%s" % mode[0])
        err_path = os.path.join(self.tmp, "p%d.err" % self.procs.index(srv))
        self.stop_all()
        with open(err_path) as f:
            holds = re.findall(r"registry lock held by (\S+): (\d+) times, mean (\d+) ns, "
                               r"max (\d+) ns", f.read())
        lines = ["| operation | holds | mean ns | max ns |", "| --- | --- | --- | --- |"]
        for op, n, mean, mx in holds:
            if op != "count":
                lines.append("| %s | %s | %s | %s |" % (op, n, mean, mx))
        self.sections.append(("Time under the registry lock", [
            "`build/bench/server_lockstats` (the index server linked with "
            "`bench/lockstats.c` wrapped around the registry's calls and the mutex calls: "
            "each hold of the registry lock timed with "
            "`clock_gettime(CLOCK_MONOTONIC)` from just after the lock is taken to just before "
            "it is released, a wait for a listing build not counted) under `loadgen` at 4 "
            "client threads, %g s each of LIST_CONTENT of the 1,000-file user, REGISTER, and "
            "the mixed load, with the live view on (`-H`) and polled as its page does (`view`: "
            "the HTTP thread's copy of the totals and the connected users). The max includes "
            "holds during which the holder was preempted (%d cores, more threads)." % (
                self.seconds, os.cpu_count()), ""] + lines +
            ["", "Target: LIST_CONTENT of 1,000 files <= 1 us under the lock (mean); the "
             "live view's hold no longer than LIST_USERS'."]))

    def logging(self):
        on = self.index_server(log=True)
        off = self.index_server(log=False)
        ratios, a, b = [], [], []
        for run in range(self.runs):
            x = self.loadgen(off.port, 4, "register", "off%d" % run)
            y = self.loadgen(on.port, 4, "register", "on%d" % run)
            ratios.append(y["ops_s"] / x["ops_s"])
            a.append(y)
            b.append(x)
        self.stop_all()
        self.sections.append(("Operation log on against off", [
            "REGISTER of new users, 4 client threads; the same server binary with and without "
            "`LOG_RPC_IP` (with it, both servers hold a shared key and every batch is signed).",
            "",
            "| logging | ops/s | p50 us | p99 us |", "| --- | --- | --- | --- |",
            "| off | %s | %s | %s |" % (spread((r["ops_s"] for r in b), "%.0f"),
                                       med(r["p50_us"] for r in b), med(r["p99_us"] for r in b)),
            "| on | %s | %s | %s |" % (spread((r["ops_s"] for r in a), "%.0f"),
                                      med(r["p50_us"] for r in a), med(r["p99_us"] for r in a)),
            "", "Ratio on/off: **%s** (target >= 0.9x)." % ratio_text(ratios)]))

    def auth(self):
        """Authenticated users (AUTH: REGISTER_AUTH, each LIST_CONTENT with its
        HMAC) against classic ones, on the same server, interleaved."""
        srv = self.index_server(log=True)
        self.run([os.path.join(self.tools, "loadgen"), "-p", str(srv.port), "-m", "setup",
                  "-n", "1000"], check=True, capture_output=True)
        rows = []
        for mode, label in (("register", "REGISTER of new users"),
                            ("list", "LIST_CONTENT of 1,000 files")):
            ratios, a, c = [], [], []
            for run in range(self.runs):
                x = self.loadgen(srv.port, 4, mode, "ac%s%d" % (mode[0], run))
                y = self.loadgen(srv.port, 4, mode, "aa%s%d" % (mode[0], run), extra=("-a",))
                assert x["errors"] == 0 and y["errors"] == 0, (x, y)
                ratios.append(y["ops_s"] / x["ops_s"])
                a.append(y)
                c.append(x)
            rows.append("| %s | %s | %s | **%s** |" % (
                label, spread((r["ops_s"] for r in c), "%.0f"),
                spread((r["ops_s"] for r in a), "%.0f"), ratio_text(ratios)))
        self.stop_all()
        self.sections.append(("Authenticated users against classic", [
            "4 client threads, the same server (logging on); authenticated: REGISTER_AUTH with a "
            "secret, and LIST_CONTENT wrapped in AUTH (a counter and HMAC-SHA256, checked under "
            "the registry lock with the user's precomputed key) by each thread's own "
            "authenticated requester.",
            "", "| workload | classic ops/s | authenticated ops/s | ratio |",
            "| --- | --- | --- | --- |"] + rows + ["", "Target: >= 0.9x."]))

    def http_port(self, srv):
        """The live view's port of srv, a server started with -H."""
        with open(os.path.join(self.tmp, "p%d.err" % self.procs.index(srv))) as f:
            return int(re.search(r"live view at http://[^:]+:(\d+)/", f.read()).group(1))

    def live_view(self):
        """REGISTER and LIST_CONTENT with the live view on (-H) and polled as
        its page polls, against the same server without -H."""
        load = os.getloadavg()[0]
        off = self.index_server(False)
        on = self.index_server(False, "-H", "127.0.0.1:0")
        for srv in (off, on):
            self.run([os.path.join(self.tools, "loadgen"), "-p", str(srv.port), "-m", "setup",
                      "-n", "1000"], check=True, capture_output=True)
        rows = []
        with Poller(self.http_port(on)) as poller:
            for mode, label in (("register", "REGISTER of new users"),
                                ("list", "LIST_CONTENT of 1,000 files")):
                for threads in (4, 32):
                    a, b = [], []
                    for run in range(self.runs):
                        # Alternate which goes first, so neither always follows the other.
                        order = ((off, a), (on, b)) if run % 2 == 0 else ((on, b), (off, a))
                        for srv, into in order:
                            r = self.loadgen(srv.port, threads, mode, "hv%s%s%d_%d" % (
                                "n" if srv is on else "f", mode[0], threads, run))
                            assert r["errors"] == 0, r
                            into.append(r)
                    rows.append((label, threads, a, b))
        self.stop_all()
        assert poller.errors == 0 and poller.polls > 0, (poller.polls, poller.errors)
        lines = ["| workload | client threads | without -H: ops/s | -H, polled: ops/s | "
                 "p99 us without / with | ratio with / without |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for label, threads, a, b in rows:
            lines.append("| %s | %d | %s | %s | %s / %s | **%s** |" % (
                label, threads, spread((r["ops_s"] for r in a), "%.0f"),
                spread((r["ops_s"] for r in b), "%.0f"), med(r["p99_us"] for r in a),
                med(r["p99_us"] for r in b),
                ratio_text([y["ops_s"] / x["ops_s"] for x, y in zip(a, b)])))
        self.sections.append(("Live view on against off", [
            "Two servers (operation log off), the same binary, one with `-H 127.0.0.1:0` whose "
            "live view is polled throughout as its page polls it (`/api/state` every 0.5 s) "
            "and scraped (`/metrics` every 1 s) by the driver: %d polls, no error. `loadgen` "
            "runs alternate between the servers, %d runs of %g s each. Load average (1 min) "
            "at the start of this step: %.2f." % (poller.polls, self.runs, self.seconds, load),
            ""] + lines + ["", "Target: ratio >= 0.97x at 4 and 32 client threads."]))

    def time_service(self):
        """The client's per-operation cost of asking its time service."""
        spec = importlib.util.spec_from_file_location("peerdex_client",
                                                      os.path.join(ROOT, "client", "client.py"))
        client = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(client)
        srv = self.index_server(log=False)
        tc = client.TimeClient(service=client.TimeService())
        n = 1000
        self.record(["(in the driver: client/client.py's TimeClient.now(), %d calls a run, "
                     "then %d REGISTER round trips to the server above)" % (n, n)])
        calls, ops = [], []             # per run: (p50, p99) in microseconds
        try:
            tc.now()
            for run in range(self.runs):
                c, o = [], []
                for i in range(n):
                    t0 = time.perf_counter()
                    tc.now()
                    c.append(time.perf_counter() - t0)
                for i in range(n):
                    t0 = time.perf_counter()
                    with socket.create_connection(("127.0.0.1", srv.port)) as s:
                        s.sendall(harness.encode("REGISTER", DT, "ts%d_%d" % (run, i)))
                        while s.recv(64):
                            pass
                    o.append(time.perf_counter() - t0)
                calls.append((pct(c, 50), pct(c, 99)))
                ops.append((pct(o, 50), pct(o, 99)))
        finally:
            tc.close()
            self.stop_all()
        ratio50 = [c[0] / o[0] for c, o in zip(calls, ops)]
        ratio99 = [c[1] / o[1] for c, o in zip(calls, ops)]
        self.sections.append(("Time service overhead per operation", [
            "`TimeClient.now()` (client/client.py: one kept-alive HTTP/1.1 connection to the "
            "client's own Flask service) called %d times in a row, then the same client "
            "process doing %d raw REGISTER round trips to the index server; %d such runs, "
            "each run's p50 and p99, median (min-max) over the runs." % (n, n, self.runs), "",
            "| call | p50 us | p99 us |", "| --- | --- | --- |",
            "| time service `GET /datetime` | %s | %s |" % (
                spread([c[0] for c in calls], "%.0f"), spread([c[1] for c in calls], "%.0f")),
            "| index REGISTER round trip (yardstick) | %s | %s |" % (
                spread([o[0] for o in ops], "%.0f"), spread([o[1] for o in ops], "%.0f")),
            "", "The time call costs **%s** (p50) / %s (p99) of an index round trip: what each "
            "client operation pays for its date-time." % (ratio_text(ratio50),
                                                          ratio_text(ratio99))]))

    def scale(self):
        """100,000 users and 1,000,000 files: memory and speed against a small registry."""
        srv = self.index_server(False)
        loadgen = os.path.join(self.tools, "loadgen")
        self.run([loadgen, "-p", str(srv.port), "-m", "setup", "-n", "1000"], check=True,
                 capture_output=True)
        small_runs = {m: [self.loadgen(srv.port, 4, m, "s%d" % r) for r in range(self.runs)]
                      for m in ("register", "list")}
        small = {m: [r["ops_s"] for r in runs] for m, runs in small_runs.items()}
        # The REGISTER runs add users of their own: the "small" registry holds them too.
        small_users = 2 + sum(int(r["ops"]) for r in small_runs["register"])
        rss_small = rss_kb(srv.pid)
        t0 = time.monotonic()
        self.run([loadgen, "-p", str(srv.port), "-t", "8", "-m", "fill", "-n", "100000",
                  "-x", "fill"], check=True, capture_output=True, timeout=900)
        fill_s = time.monotonic() - t0
        big = {m: [self.loadgen(srv.port, 4, m, "g%d" % r)["ops_s"] for r in range(self.runs)]
               for m in ("register", "list")}
        rss_big = rss_kb(srv.pid)
        self.stop_all()

        # 1,000 stalled connections on a fresh server.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
        srv = self.index_server(False, "-t", "30")
        time.sleep(0.2)
        idle = rss_kb(srv.pid)
        socks = []
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"REGISTER\x00" + DT.encode())
            socks.append(s)
        time.sleep(1.0)
        stalled = rss_kb(srv.pid)
        threads = thread_count(srv.pid)
        for s in socks:
            s.close()
        self.stop_all()
        reg_ratio = [b / s for b, s in zip(big["register"], small["register"])]
        list_ratio = [b / s for b, s in zip(big["list"], small["list"])]
        self.sections.append(("Scale", [
            "One server (log off) filled through the protocol by `loadgen -m fill` (8 threads: "
            "REGISTER, CONNECT and 10 PUBLISH per user) to 100,000 users and 1,000,000 files "
            "in %.0f s; REGISTER and LIST_CONTENT (of a user with 1,000 files) at 4 client "
            "threads measured before and after the fill. The small registry is the 1,000-file "
            "owner plus the %d users its own REGISTER runs added; the big one adds the fill's "
            "100,000 users and 1,000,000 files to it." % (fill_s, small_users), "",
            "| figure | small registry | after the fill (+100,000 users, +1,000,000 files) "
            "| ratio big/small |",
            "| --- | --- | --- | --- |",
            "| server RSS | %d MB | %d MB | - |" % (rss_small // 1024, rss_big // 1024),
            "| REGISTER ops/s | %s | %s | **%s** |" % (med(small["register"]), med(big["register"]),
                                                       ratio_text(reg_ratio)),
            "| LIST_CONTENT ops/s | %s | %s | **%s** |" % (med(small["list"]), med(big["list"]),
                                                          ratio_text(list_ratio)),
            "", "Target: no operation slower than its small-registry figure by more than 2x "
            "(ratio >= 0.5x).", "",
            "1,000 connections that each sent half a request and stall: server RSS %d MB idle, "
            "%d MB with them (%.1f KB per stalled connection, %d threads)." % (
                idle // 1024, stalled // 1024, (stalled - idle) / 1000.0, threads)]))

    # -- the state directory (-d) -------------------------------------------

    def state_server(self, state, *args, kill=False):
        """bin/server -d STATE (log off) and the seconds from its start to its
        banner: loading the snapshot and replaying the journal come first."""
        t0 = time.monotonic()
        p = self.spawn([os.path.join(harness.BIN, "server"), "-p", "0", "-c", "4096",
                        "-d", state, *args], r"^s> init server \S+:(\d+)$")
        return p, time.monotonic() - t0

    def durable_throughput(self):
        """REGISTER at 4 client threads: in memory against -d (batch, always)."""
        mem = self.index_server(False)
        batch, _ = self.state_server(os.path.join(self.tmp, "tp-batch"))
        always, _ = self.state_server(os.path.join(self.tmp, "tp-always"), "-S", "always")
        rows = {"in memory": [], "-d (-S batch)": [], "-d -S always": []}
        for run in range(self.runs):
            for label, srv in (("in memory", mem), ("-d (-S batch)", batch),
                               ("-d -S always", always)):
                r = self.loadgen(srv.port, 4, "register", "d%s%d" % (label[:2].strip("-"), run))
                assert r["errors"] == 0, r
                rows[label].append(r)
        self.stop_all()
        ratio = {k: [r["ops_s"] / m["ops_s"] for r, m in zip(v, rows["in memory"])]
                 for k, v in rows.items()}
        lines = ["| index | ops/s | p50 us | p99 us | ratio to in memory |",
                 "| --- | --- | --- | --- | --- |"]
        for label, runs in rows.items():
            lines.append("| %s | %s | %s | %s | **%s** |" % (
                label, spread((r["ops_s"] for r in runs), "%.0f"), med(r["p50_us"] for r in runs),
                med(r["p99_us"] for r in runs), ratio_text(ratio[label])))
        self.sections.append(("Durable index: throughput", [
            "REGISTER of new users at 4 client threads (log off), the three servers loaded "
            "alternately, %d runs of %g s: in memory (no `-d`), with a state directory and the "
            "default group commit (`-S batch`: `fdatasync` at most 1 s behind), and with "
            "`-S always` (each reply waits for the `fdatasync` of its group)." % (
                self.runs, self.seconds), ""] + lines +
            ["", "Target: `-d` with the default sync >= 0.85x of in memory."]))

    def durable_restart(self):
        """Restart with 100,000 users and 1,000,000 files in the state directory."""
        state = os.path.join(self.tmp, "big-state")
        srv, _ = self.state_server(state)
        t0 = time.monotonic()
        self.run([os.path.join(self.tools, "loadgen"), "-p", str(srv.port), "-t", "8", "-m",
                  "fill", "-n", "100000", "-x", "fill"], check=True, capture_output=True,
                 timeout=1800)
        fill_s = time.monotonic() - t0
        self.stop_all()                 # SIGTERM: a final snapshot, an empty journal

        def sizes():
            names = os.listdir(state)
            snap = os.path.getsize(os.path.join(state, "snapshot"))
            journal = sum(os.path.getsize(os.path.join(state, n)) for n in names
                          if n.startswith("journal."))
            return snap, journal

        rows = []
        clean = []
        for run in range(self.runs):
            srv, ready = self.state_server(state)
            clean.append(ready)
            self.stop_all()
        snap, journal = sizes()
        rows.append(("after a clean stop (snapshot only)", clean, snap, journal))
        # Then 200,000 more journaled operations and a kill -9: snapshot + journal.
        srv, _ = self.state_server(state)
        self.loadgen(srv.port, 4, "register", "rj", seconds=4)
        srv.kill()
        srv.wait()
        self.procs = []
        snap, journal = sizes()
        crash = []
        for run in range(self.runs):
            # Copy the directory so that each start replays the same journal.
            copy = os.path.join(self.tmp, "crash-%d" % run)
            subprocess.run(["cp", "-a", state, copy], check=True)
            srv, ready = self.state_server(copy)
            crash.append(ready)
            srv.kill()
            srv.wait()
            self.procs = []
            subprocess.run(["rm", "-rf", copy])
        rows.append(("after kill -9 (snapshot + journal replay)", crash, snap, journal))
        lines = ["| start | ready in s | snapshot MB | journal MB |", "| --- | --- | --- | --- |"]
        for label, times, snap, journal in rows:
            lines.append("| %s | **%s** | %.1f | %.1f |" % (
                label, spread(times, "%.2f"), snap / 1e6, journal / 1e6))
        self.sections.append(("Durable index: restart", [
            "A server with `-d` filled through the protocol by `loadgen -m fill` (8 threads) to "
            "100,000 users and 1,000,000 files in %.0f s, stopped with SIGTERM, then started "
            "%d times (time from exec to its `s> init server` line); then loaded with "
            "REGISTER for 4 s (4 threads), killed with SIGKILL, and started %d times from "
            "copies of that directory." % (fill_s, self.runs, self.runs), ""] + lines +
            ["", "Target: ready in <= 3 s."]))

    # -- SEARCH and its index ---------------------------------------------

    def search(self):
        """SEARCH after a 100,000-user, 1,000,000-file vocabulary fill; what the
        index costs REGISTER, PUBLISH, memory and a restart, against the same
        server built without it (server_nosearch)."""
        loadgen = os.path.join(self.tools, "loadgen")
        builds = (("with the index", os.path.join(harness.BIN, "server")),
                  ("without (-DREGISTRY_NO_SEARCH)", os.path.join(self.tools, "server_nosearch")))
        fig, srvs, states = {}, {}, {}
        for i, (label, binary) in enumerate(builds):
            states[label] = os.path.join(self.tmp, "search-%d" % i)
            srv = self.spawn([binary, "-p", "0", "-c", "4096", "-d", states[label]],
                             r"^s> init server \S+:(\d+)$")
            self.run([loadgen, "-p", str(srv.port), "-m", "setup", "-n", "1000"], check=True,
                     capture_output=True)
            t0 = time.monotonic()
            self.run([loadgen, "-p", str(srv.port), "-t", "8", "-m", "fill", "-w", "-n",
                      "100000", "-x", "fill"], check=True, capture_output=True, timeout=1800)
            fig[label] = {"fill_s": time.monotonic() - t0, "rss": rss_kb(srv.pid),
                          "register": [], "publish": [], "restart": []}
            srvs[label] = srv
        # Both filled servers run side by side and take turns, first one then
        # the other, the order swapped each run: what the machine does
        # meanwhile (the disk's flushes, other load) falls on both alike.
        for run in range(self.runs):
            for mode in ("register", "publish"):
                for i in ((0, 1) if run % 2 == 0 else (1, 0)):
                    label = builds[i][0]
                    r = self.loadgen(srvs[label].port, 4, mode, "%s%d%d" % (mode[:2], i, run))
                    assert r["errors"] == 0, (label, mode, r)
                    fig[label][mode].append(r)
        ours = fig[builds[0][0]]
        for mode in ("list", "search"):
            ours[mode] = [self.loadgen(srvs[builds[0][0]].port, 4, mode, "%s0%d" % (mode[:2], r))
                          for r in range(self.runs)]
            assert all(r["errors"] == 0 for r in ours[mode]), (mode, ours[mode])
        self.stop_all()             # SIGTERM: a final snapshot
        for run in range(self.runs):
            for label, binary in builds[::1 if run % 2 == 0 else -1]:
                t0 = time.monotonic()
                srv = self.spawn([binary, "-p", "0", "-c", "4096", "-d", states[label]],
                                 r"^s> init server \S+:(\d+)$", wait=300)
                fig[label]["restart"].append(time.monotonic() - t0)
                if label == builds[0][0]:   # the index answers at once
                    f = self.loadgen(srv.port, 4, "search", "rs%d" % run, seconds=0.5)
                    assert f["errors"] == 0 and f["ops"] > 0, f
                self.stop_all()
        ours, plain = (fig[label] for label, _ in builds)
        ops = {m: [r["ops_s"] for r in ours[m]]
               for m in ("register", "publish", "list", "search")}
        search_list = [s / l for s, l in zip(ops["search"], ops["list"])]
        reg = [a["ops_s"] / b["ops_s"] for a, b in zip(ours["register"], plain["register"])]
        pub = [a["ops_s"] / b["ops_s"] for a, b in zip(ours["publish"], plain["publish"])]
        self.sections.append(("Search", [
            "Two servers, each with `-d` and no log: `bin/server` and the same code built "
            "without the search index (`build/bench/server_nosearch`). Each is filled through "
            "the protocol by `loadgen -m fill -w` (8 threads: REGISTER, CONNECT and 10 PUBLISH "
            "per user) to 100,000 users and 1,000,000 files whose paths "
            "(`/home/<user>/<word>-<word>-NN.<ext>`) and descriptions (three words) are drawn "
            "from a fixed vocabulary of 1,000 words, so one word matches about 5,000 files and "
            "two words about 20 (fill: %.0f s with the index, %.0f s without). Then, at 4 "
            "client threads, %d runs of %g s each, the two servers running side by side and taking "
            "turns (the order swapped each run): REGISTER, PUBLISH (new files of one user), "
            "LIST_CONTENT of a user with 1,000 files, and SEARCH for two vocabulary words drawn "
            "at random (`loadgen -m search`: default maximum, 100). Restart: the filled "
            "server stopped with SIGTERM and started %d times (exec to its `s> init server` "
            "line: snapshot loaded, index rebuilt), each answering SEARCH right after; the same for "
            "the server without the index." % (
                ours["fill_s"], plain["fill_s"], self.runs, self.seconds, self.runs), "",
            "| figure | with the index | without | ratio | target |",
            "| --- | --- | --- | --- | --- |",
            "| two-word SEARCH ops/s (p50 / p99 us) | %s (%s / **%s**) | - | - | p99 <= 2,000 us |"
            % (spread(ops["search"], "%.0f"), med(r["p50_us"] for r in ours["search"]),
               med(r["p99_us"] for r in ours["search"])),
            "| LIST_CONTENT of 1,000 files ops/s | %s | - | SEARCH / LIST_CONTENT **%s** | "
            ">= 0.5x |" % (spread(ops["list"], "%.0f"), ratio_text(search_list)),
            "| REGISTER ops/s | %s | %s | **%s** | >= 0.9x |" % (
                spread(ops["register"], "%.0f"),
                spread((r["ops_s"] for r in plain["register"]), "%.0f"), ratio_text(reg)),
            "| PUBLISH ops/s | %s | %s | **%s** | >= 0.9x |" % (
                spread(ops["publish"], "%.0f"),
                spread((r["ops_s"] for r in plain["publish"]), "%.0f"), ratio_text(pub)),
            "| server RSS after the fill | %d MB | %d MB | **%.2fx** | <= 1.6x |" % (
                ours["rss"] // 1024, plain["rss"] // 1024, ours["rss"] / plain["rss"]),
            "| restart of the filled state, s | **%s** | %s | %s | <= 3 s |" % (
                spread(ours["restart"], "%.2f"), spread(plain["restart"], "%.2f"),
                ratio_text([a / b for a, b in zip(ours["restart"], plain["restart"])]))]))

    # -- liveness probing (-L) ---------------------------------------------

    def liveness(self):
        """Request latency while the prober probes 10,000 dead endpoints every
        second (-L 1, failures never enough to expire them), against the same
        server state without -L."""
        dead = socket.socket()              # bound, not listening: connects refused
        dead.bind(("127.0.0.1", 0))
        dead_port = dead.getsockname()[1]
        users = 10000
        on = self.index_server(False, "-L", "1", "-N", "1000000")
        off = self.index_server(False)
        loadgen = os.path.join(self.tools, "loadgen")
        try:
            for srv in (on, off):
                fill_connected(srv.port, users, dead_port)
                self.run([loadgen, "-p", str(srv.port), "-m", "setup", "-n", "1000"],
                         check=True, capture_output=True)
            time.sleep(1.5)                 # the prober's rounds are under way
            rows = []
            for mode in ("register", "list"):
                a, b = [], []
                for run in range(self.runs):
                    a.append(self.loadgen(off.port, 4, mode, "loff%s%d" % (mode[0], run)))
                    b.append(self.loadgen(on.port, 4, mode, "lon%s%d" % (mode[0], run)))
                    assert a[-1]["errors"] == 0 and b[-1]["errors"] == 0, (a[-1], b[-1])
                rows.append((mode, a, b))
            assert listed_count(on.port) == users + 2, "the prober expired a session"
        finally:
            self.stop_all()
            dead.close()
        lines = ["| workload, 4 client threads | -L | ops/s | p50 us | p99 us |",
                 "| --- | --- | --- | --- | --- |"]
        ratios = []
        for mode, a, b in rows:
            label = {"register": "REGISTER of new users",
                     "list": "LIST_CONTENT of 1,000 files"}[mode]
            for name, runs in (("off", a), ("1 (10,000 dead)", b)):
                lines.append("| %s | %s | %s | %s | %s |" % (
                    label, name, spread((r["ops_s"] for r in runs), "%.0f"),
                    med(r["p50_us"] for r in runs), spread((r["p99_us"] for r in runs), "%.0f")))
            ratios.append((label, [y["p99_us"] / x["p99_us"] for x, y in zip(a, b)]))
        self.sections.append(("Liveness probing: request latency", [
            "Two servers, each with %d users connected with an endpoint nobody listens on "
            "(plus the `setup` users): one with `-L 1 -N 1000000`, so that its prober tries "
            "all %d endpoints every second and never expires them, one without `-L`. "
            "`loadgen` runs alternate between them, %d runs of %g s each."
            % (users, users, self.runs, self.seconds), ""] + lines + [""] + [
            "p99 with probing / without, %s: **%s** (target <= 1.5x)." % (label, ratio_text(r))
            for label, r in ratios]))

    def transfer(self):
        """GET_FILE of 1 GiB between two real clients against plain C sender/reader."""
        path = os.path.join(self.tmp, "big.bin")
        size = 1 << 30
        with open(path, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
        # Write the source out now, so its writeback does not run during a transfer.
        os.sync()
        out = os.path.join(self.tmp, "out.bin")
        plain, ours = [], []
        srv = self.index_server(False)
        owner = client_proc(srv.port)
        owner.do("REGISTER owner", "c> REGISTER OK")
        owner.do("CONNECT owner", "c> CONNECT OK")
        owner.do("PUBLISH %s big" % path, "c> PUBLISH OK")
        dl = client_proc(srv.port)
        dl.do("REGISTER dl", "c> REGISTER OK")
        dl.do("CONNECT dl", "c> CONNECT OK")
        self.record(["(two clients:", "python3", "client/client.py", "-s", "127.0.0.1", "-p",
                     str(srv.port) + ";", "typed: REGISTER owner, CONNECT owner, PUBLISH",
                     path, "big; REGISTER dl, CONNECT dl, then each timed: GET_FILE owner",
                     path, out + ")"])
        try:
            def plain_once():
                argv = [os.path.join(self.tools, "plain_xfer"), "send", "0", path]
                self.record(argv)
                sender = harness.Process(argv)
                port = sender.wait_line(r"port (\d+)").group(1)
                os.sync()               # nothing of the last run still being written
                t0 = time.perf_counter()
                self.run([os.path.join(self.tools, "plain_xfer"), "recv", port, out],
                         check=True)
                gbs = size / (time.perf_counter() - t0) / 1e9
                sender.stop()
                os.unlink(out)
                return gbs

            def ours_once():
                os.sync()
                t0 = time.perf_counter()
                dl.do("GET_FILE owner %s %s" % (path, out), "c> GET_FILE OK", timeout=120)
                gbs = size / (time.perf_counter() - t0) / 1e9
                assert os.path.getsize(out) == size
                os.unlink(out)
                return gbs

            # Run 0 warms up both sides (the guest's first touch of the pages a 1 GiB
            # file needs is slow on a virtual machine) and is not counted; the order
            # within a pair alternates, so neither side always follows the other.
            for run in range(self.runs + 1):
                if run % 2:
                    p, o = plain_once(), ours_once()
                else:
                    o, p = ours_once(), plain_once()
                if run > 0:
                    plain.append(p)
                    ours.append(o)
        finally:
            for c in (owner, dl):
                c.stop()
            self.stop_all()
            os.unlink(path)
        ratios = [o / p for o, p in zip(ours, plain)]
        self.sections.append(("Peer transfer", [
            "GET_FILE of a 1 GiB file (random bytes) between two real clients on loopback: from "
            "the command typed into the downloading client to its `c> GET_FILE OK` (so "
            "including its LIST_USERS lookup and the rename into place), against "
            "`bench/plain_xfer` (sendfile to a socket, a reader writing 1 MiB chunks to a file); "
            "one untimed transfer of each first, then %d timed pairs, in alternating order."
            % self.runs,
            "", "| transfer | GB/s, median (min-max) |", "| --- | --- |",
            "| plain C sender -> plain C reader | %s |" % spread(plain, "%.2f"),
            "| peerdex GET_FILE, client to client | %s |" % spread(ours, "%.2f"),
            "", "Ratio: **%s** (target >= 0.7x)." % ratio_text(ratios)]))

    # -- report ----------------------------------------------------------------

    def report(self, path, started, argv, load_before):
        cpu = "unknown"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
        except (OSError, AttributeError):
            pass
        lines = ["# Benchmarks", "",
                 "Written by `make bench` (`bench/bench.py`); rerun it to refresh. Each figure "
                 "is the median of %d runs with the min-max beside it; ratios compare against a "
                 "yardstick measured in the same run on the same machine." % self.runs, "",
                 "- machine: %d cores (%s), %s %s, %d GiB RAM" % (
                     os.cpu_count(), cpu, platform.system(), platform.release(),
                     os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 30),
                 "- run: %s, %.0f s in all" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                time.monotonic() - started),
                 "- load average (1 min) before / after: %.2f / %.2f (above ~0.5, other work "
                 "shared the 2 cores and the figures are noisier)" % (load_before,
                                                                       os.getloadavg()[0]),
                 "- command: `make bench` (= `%s`)" % " ".join(argv), "",
                 "The main curves, drawn from the tables below by `bench/plots.py` on each run: "
                 "ops/s against client threads for the index, the baseline and the ceiling "
                 "([img/bench-throughput.svg](img/bench-throughput.svg)), and the index's "
                 "latency ([img/bench-latency.svg](img/bench-latency.svg)).", "",
                 "![ops/s against client threads](img/bench-throughput.svg)", "",
                 "![p50 and p99 latency against client threads](img/bench-latency.svg)", ""]
        for title, body in self.sections:
            lines += ["## " + title, ""] + body + [""]
        lines += ["## Commands", "",
                  "What the driver ran, in order of first use (PORT: a free port the program "
                  "reported; PREFIX: a user-name prefix unique to each run; $TMP: the run's "
                  "temporary directory):", ""]
        lines += ["    " + c for c in self.commands] + [""]
        lines += open(os.path.join(HERE, "notes.md")).read().splitlines()
        with open(path, "w") as f:
            f.write("\n".join(lines).rstrip() + "\n")


class Poller:
    """A thread that polls a live view as its page does (GET /api/state every
    0.5 s, after loading the page once) and as a scraper does (GET /metrics
    every 1 s), counting polls and errors; a context manager."""

    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.polls = self.errors = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def get(self, path):
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as r:
                r.read()
            self.polls += 1
        except OSError:
            self.errors += 1

    def loop(self):
        for path in ("/", "/page.css", "/page.js"):
            self.get(path)
        tick = 0
        while not self.done.wait(0.5):
            self.get("/api/state")
            if tick % 2 == 0:
                self.get("/metrics")
            tick += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def client_proc(port):
    sys.path.insert(0, os.path.join(ROOT, "tests", "client"))
    from client_lib import ClientProc
    return ClientProc(port)


def fill_connected(port, n, endpoint_port, threads=8):
    """REGISTER and CONNECT users dead0..dead{n-1}, each with endpoint_port."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i):
        name = "dead%d" % i
        return (harness.code(port, "REGISTER", name),
                harness.code(port, "CONNECT", name, endpoint_port))

    with ThreadPoolExecutor(threads) as pool:
        bad = [r for r in pool.map(one, range(n), chunksize=64) if r != (0, 0)]
    assert not bad, bad[:5]


def listed_count(port):
    """How many users LIST_USERS lists (asked as dead0)."""
    code, fields = harness.request(port, "LIST_USERS", "dead0")
    assert code == 0, code
    return int(fields[0])


def med(values, fmt="%.0f"):
    return fmt % statistics.median(list(values))


def spread(values, fmt="%.2f"):
    values = list(values)
    return "%s (%s-%s)" % (fmt % statistics.median(values), fmt % min(values), fmt % max(values))


def ratio_text(ratios):
    return "%.2fx (%.2f-%.2f)" % (statistics.median(ratios), min(ratios), max(ratios))


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p / 100))] * 1e6


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def thread_count(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"Threads:\s+(\d+)", f.read()).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", required=True, help="directory of loadgen, baseline_server...")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--only", help="comma-separated: throughput,ceiling,locks,logging,auth,time,"
                                   "scale,transfer,durable,restart,liveness,live,search")
    args = ap.parse_args()
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    b = Bench(args.tools, args.runs, args.seconds)
    steps = {"throughput": b.throughput, "ceiling": b.ceiling, "locks": b.lock_hold,
             "logging": b.logging, "auth": b.auth, "time": b.time_service, "scale": b.scale,
             "transfer": b.transfer, "durable": b.durable_throughput,
             "restart": b.durable_restart, "liveness": b.liveness, "live": b.live_view,
             "search": b.search}
    chosen = args.only.split(",") if args.only else list(steps)
    try:
        for name in chosen:
            t0 = time.monotonic()
            print("bench: %s..." % name, flush=True)
            steps[name]()
            print("bench: %s done in %.0f s" % (name, time.monotonic() - t0), flush=True)
    finally:
        b.stop_all()
        subprocess.run(["rm", "-rf", b.tmp])
    b.report(args.out, started, sys.argv, load_before)
    print("bench: wrote %s" % args.out)
    if {"throughput", "ceiling"} & set(chosen):
        # The curves, drawn from the tables just written (docs/img/ beside the report).
        sys.path.insert(0, HERE)
        import plots
        plots.main(args.out, os.path.join(os.path.dirname(os.path.abspath(args.out)), "img"))
    for title, body in b.sections:
        print("\n## " + title)
        print("\n".join(l for l in body if l.startswith("|") or "**" in l))


if __name__ == "__main__":
    main()
