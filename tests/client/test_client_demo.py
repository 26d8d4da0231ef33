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

    # docs/lab-demo.md says `make demo` plays its session: alice's DELETE,
    # bob's failed second download and a third client that sees neither.
    alice = out.split("== alice")[1].split("== bob")[0]
    bob = out.split("== bob")[1].split("== carol")[0]
    carol = out.split("== carol")[1].split("== index server")[0]
    assert "c> DELETE OK" in alice
    # bob finds alice's file with SEARCH and downloads match #1.
    assert "c> SEARCH OK" in bob and "lecture.bin" in bob.split("c> SEARCH OK")[1]
    results = [l.strip() for l in bob.splitlines() if l.strip().startswith("c> GET_FILE")]
    assert results == ["c> GET_FILE OK", "c> GET_FILE FAIL, FILE NOT EXIST",
                       "c> GET_FILE FAIL, FILE NOT EXIST"], bob
    listed = [l.split()[0] for l in carol.splitlines() if l.startswith("   \t")]
    assert listed == ["carol"], carol
