"""A log server that lost committed entries but still knows the index's
origin (its files restored from an older copy) refuses the index's outbox as
a sequence jump for ever.  The operator step (issue 25.7): restart it with
-g ORIGIN, which records the gap as one marked line and lets that origin go
on; nothing else changes."""
import re
import shutil

import harness
from log_lib import read_lines, wait_err, wait_lines

DT = harness.DATETIME


def reg(srv, names):
    for name in names:
        assert harness.code(srv.port, "REGISTER", name) == 0


def test_a_lost_stretch_is_recorded_as_one_gap_line(logs, logged_server, tmp_path):
    log = logs(port=0)
    port = log.port
    srv = logged_server(port, "-d", str(tmp_path / "state"))
    reg(srv, ["a%d" % i for i in range(5)])
    wait_lines(log.path, 5)
    assert log.stop() == 0
    for suffix in ("", ".idx"):                      # the operator's backup
        shutil.copy(str(log.path) + suffix, str(tmp_path / "backup") + suffix)
    log = logs(port=port)
    reg(srv, ["a%d" % i for i in range(5, 10)])
    wait_lines(log.path, 10)
    assert log.stop() == 0
    for suffix in ("", ".idx"):                      # entries 6-10 lost
        shutil.copy(str(tmp_path / "backup") + suffix, str(log.path) + suffix)
    reg(srv, ["a10"])

    # Refused for ever as a jump; the refusal names the step.  Another
    # origin given to -g changes nothing.
    log = logs(port=port, args=("-g", "1"))
    m = wait_err(log, r"origin ([0-9a-f]{16}) jumps from seq 5 to 11.*-g \1")
    origin = m.group(1)
    assert log.stop() == 0
    assert len(read_lines(log.path)) == 5

    log = logs(port=port, args=("-g", origin))
    lines = wait_lines(log.path, 7)
    assert lines[:5] == ["a%d REGISTER %s" % (i, DT) for i in range(5)]
    assert re.fullmatch(r"- LOG_GAP %s:6-10 \d\d/\d\d/\d{4} \d\d:\d\d:\d\d" % origin,
                        lines[5]), lines[5]
    assert lines[6] == "a10 REGISTER " + DT
    wait_err(log, "recorded the gap of origin %s: seq 6 to 10" % origin)
    reg(srv, ["a11"])                                # and it goes on as before
    assert wait_lines(log.path, 8)[7] == "a11 REGISTER " + DT
    assert srv.stop() == 0
    assert len(read_lines(log.path)) == 8


def test_g_needs_a_hex_origin(tmp_path):
    import subprocess, os
    binary = os.path.join(harness.BIN, "log_server")
    for bad in ("xyz", "0", "", "12345678901234567"):
        r = subprocess.run([binary, "-f", str(tmp_path / "l"), "-p", "0", "-g", bad],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "usage:" in r.stderr
