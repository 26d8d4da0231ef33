"""`make run` (scripts/run.sh) keeps the system up: a server that dies is
started again, saying why, and nothing acknowledged is lost; it gives up
after too many deaths; Ctrl-C ends it quietly."""
import fcntl
import os
import pty
import signal
import socket
import subprocess
import termios
import threading
import time

import pytest

import harness

ROOT = harness.ROOT
RUN_SH = os.path.join(ROOT, "scripts", "run.sh")


def children(pid):
    """{program name: pid} of the processes run.sh started and that still run."""
    out = {}
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return out
    for kid in kids:
        try:
            with open("/proc/%d/cmdline" % kid, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode()
        except OSError:
            continue
        out[os.path.basename(argv0)] = kid
    return out


def proc_state(pid):
    """run.sh's state and its children's, for a failure message: what each
    waits in, its blocked and ignored signals."""
    out = []
    kids = []
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        pass
    for p in [pid] + kids:
        try:
            with open("/proc/%d/status" % p) as f:
                st = {k: v.strip() for k, v in (l.split(":", 1) for l in f if ":" in l)}
            with open("/proc/%d/wchan" % p) as f:
                wchan = f.read()
            out.append("%d %s %s wchan=%s SigBlk=%s SigIgn=%s SigCgt=%s" % (
                p, st.get("Name"), st.get("State"), wchan, st.get("SigBlk"),
                st.get("SigIgn"), st.get("SigCgt")))
        except OSError as e:
            out.append("%d: %s" % (p, e))
    return "; ".join(out)


def wait_for(cond, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def start_run(tmp_path, **env):
    port, log_port = harness.free_port(), harness.free_port()
    full = {"BIN": harness.BIN, "PORT": str(port), "LOG_PORT": str(log_port),
            "HTTP_PORT": str(harness.free_port()), "PYTHON": harness.PYTHON}
    full.update(env)
    proc = harness.Process(["sh", RUN_SH], cwd=str(tmp_path), env=full)
    proc.port = port
    proc.wait_line(r"^s> init server ")
    wait_for(lambda: {"server", "log_server"} <= set(children(proc.pid)), what="both servers")
    return proc


class Load:
    """REGISTERs unique users in a loop; `acked` holds every name the index
    server answered 0 for (acknowledged)."""

    def __init__(self, port):
        self.port, self.acked, self.stopping = port, [], False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        while not self.stopping:
            name = "load%d" % i
            i += 1
            try:
                if harness.code(self.port, "REGISTER", name, timeout=5) == 0:
                    self.acked.append(name)
            except OSError:
                time.sleep(0.02)        # the server is down: not acknowledged

    def more(self, n):
        """Wait until n more operations were acknowledged."""
        goal = len(self.acked) + n
        wait_for(lambda: len(self.acked) >= goal, what="%d acknowledged operations" % goal)

    def stop(self):
        self.stopping = True
        self.thread.join(10)


def test_kill9_of_each_server_loses_nothing_acknowledged(tmp_path):
    run = start_run(tmp_path)
    load = Load(run.port)
    try:
        for name in ("log_server", "server"):
            load.more(30)
            victim = children(run.pid)[name]
            start = len(run.err_lines)
            os.kill(victim, signal.SIGKILL)
            what = "log server" if name == "log_server" else "index server"
            try:
                run.wait_line(r"^run\.sh: the %s \(pid %d\) died: killed by signal 9 "
                              r"\(KILL\); starting it again in \d+ s \(\d of 5 deaths "
                              r"allowed in 30 s\)$" % (what, victim), stderr=True, start=start)
            except AssertionError as e:
                raise AssertionError("%s; run.sh and its children: %s"
                                     % (e, proc_state(run.pid))) from None
            wait_for(lambda: children(run.pid).get(name, victim) != victim,
                     what="a new " + name)
            load.more(30)
        load.stop()
        acked = set(load.acked)
        log = tmp_path / "operations.log"

        def logged():
            text = log.read_text() if log.exists() else ""
            users = {l.split()[0] for l in text.splitlines() if " REGISTER " in l}
            return acked <= users

        wait_for(logged, what="every acknowledged REGISTER in operations.log")
        # And in the index: each name is taken (USERNAME IN USE).
        assert {harness.code(run.port, "REGISTER", name) for name in acked} == {1}
    finally:
        load.stop()
        assert run.stop(signal.SIGTERM) == 0
    assert children(run.pid) == {}


def test_gives_up_after_too_many_deaths(tmp_path):
    """MAX_DEATHS=3 (5 by default, as the test above shows) keeps the pauses
    (1 s, 2 s) short here."""
    run = start_run(tmp_path, MAX_DEATHS="3")
    try:
        for n in range(1, 4):
            victim = wait_for(lambda: children(run.pid).get("log_server"),
                              what="log server %d" % n)
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: children(run.pid).get("log_server") != victim,
                     what="log server %d gone" % n)
        run.proc.wait(30)
    finally:
        run.stop()
    assert run.proc.returncode == 1
    err = "\n".join(run.err_lines)
    assert "killed by signal 9 (KILL); starting it again in 1 s (1 of 3" in err
    assert "starting it again in 2 s (2 of 3" in err
    assert "killed by signal 9 (KILL); 3 deaths in 30 s, giving up; stopping" in err
    assert children(run.pid) == {}


def _controlling_tty():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_ctrl_c_on_make_run_is_quiet(tmp_path):
    """Ctrl-C in the terminal of `make run`: both servers stop, no make error
    line, and make ends by SIGINT (the shell's status 130)."""
    master, slave = pty.openpty()
    port, log_port = harness.free_port(), harness.free_port()
    env = dict(os.environ, PORT=str(port), LOG_PORT=str(log_port),
               HTTP_PORT=str(harness.free_port()),
               STATE_DIR=str(tmp_path / "var"), LOG_FILE=str(tmp_path / "operations.log"),
               LOG_KEY=str(tmp_path / "operations.key"))
    proc = subprocess.Popen(["make", "-s", "--no-print-directory", "-C", ROOT, "run",
                             "BIN=" + harness.BIN], stdin=slave, stdout=slave, stderr=slave,
                            env=env, preexec_fn=_controlling_tty)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 60
        while b"s> init server" not in out and time.monotonic() < deadline:
            out += os.read(master, 4096)
        assert b"s> init server" in out, out
        os.write(master, b"\x03")
        proc.wait(20)
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == -signal.SIGINT, text
    assert "***" not in text and "Interrupt" not in text, text
    for p in (port, log_port):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", p), 1).close()
