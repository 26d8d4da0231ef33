"""The console never holds up serving: with stdout a pipe nobody reads, every
request is answered; the lines that found the console's buffer full are
dropped and counted in one line once stdout drains (docs/architecture.md,
"Console")."""
import fcntl
import os
import re
import signal
import subprocess
import threading

import harness

F_SETPIPE_SZ = 1031
REQUESTS = 6000     # about 1.7 MB of console lines: past the default 1 MiB buffer too
NAME = "u%05d" + "x" * 240


def test_unread_stdout_never_blocks_serving(tmp_path):
    env = dict(os.environ, CONSOLE_BUFFER="4096")
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen([os.path.join(harness.BIN, "server"), "-p", "0"],
                                stdout=subprocess.PIPE, stderr=err, env=env)
    try:
        fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, 4096)
        m = re.match(rb"^s> init server \S+:(\d+)$", proc.stdout.readline().strip())
        assert m, "no banner"
        port = int(m.group(1))

        # From now on nobody reads stdout until every request is answered.
        codes = {}

        def worker(k):
            for i in range(k, REQUESTS, 8):
                codes[i] = harness.code(port, "REGISTER", NAME % i, timeout=10)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(codes) == REQUESTS
        assert set(codes.values()) == {0}

        os.kill(proc.pid, signal.SIGTERM)
        out = proc.stdout.read().decode()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    kept = len(re.findall(r"^s> OPERATION REGISTER FROM u\d{5}x+$", out, re.M))
    dropped = sum(int(n) for n in re.findall(r"^console: (\d+) lines dropped", out, re.M))
    assert dropped > 0
    assert kept + dropped == REQUESTS
