"""`make demo` (scripts/demo.sh) runs end to end and verifies its download."""
import os
import subprocess

import harness


def test_demo_script_runs_and_checksums_match():
    env = dict(os.environ, BIN=harness.BIN, PYTHON=harness.PYTHON)
    r = subprocess.run(["sh", os.path.join(harness.ROOT, "scripts", "demo.sh")],
                       cwd=harness.ROOT, env=env, capture_output=True, timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "demo: the file arrived byte-identical" in out
    assert "c> GET_FILE OK" in out and "c> GET_FILE FAIL, FILE NOT EXIST" in out
