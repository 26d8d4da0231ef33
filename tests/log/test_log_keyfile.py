"""Key files (-k on both servers): only a regular file is read, with a size
limit; anything else stops the start at once with the reason (a FIFO used to
hang both servers)."""
import os
import subprocess

import pytest

import harness


def start_both(key, tmp_path):
    """Run each server with -k key; (returncode, stderr) of each."""
    runs = [
        ([os.path.join(harness.BIN, "log_server"), "-f", str(tmp_path / "l"), "-p", "0",
          "-k", str(key)], None),
        ([os.path.join(harness.BIN, "server"), "-p", "0", "-k", str(key)],
         dict(os.environ, LOG_RPC_IP="127.0.0.1", LOG_RPC_PORT="1")),
    ]
    out = []
    for argv, env in runs:
        try:
            r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("%s hung on the key file %s" % (os.path.basename(argv[0]), key))
        out.append((r.returncode, r.stderr))
    return out


def test_a_fifo_key_is_refused_at_once(tmp_path):
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo, 0o600)
    for rc, err in start_both(fifo, tmp_path):
        assert rc != 0 and "not a regular file" in err, err
    assert not (tmp_path / "l").exists()


def test_a_directory_or_device_key_is_refused(tmp_path):
    d = tmp_path / "keydir"
    d.mkdir(mode=0o700)
    for path in (d, "/dev/null"):
        for rc, err in start_both(path, tmp_path):
            assert rc != 0 and "not a regular file" in err, err


def test_a_key_file_over_the_size_limit_is_refused(tmp_path):
    big = tmp_path / "big.key"
    big.write_bytes(b"k" * (1 << 20))
    big.chmod(0o600)
    for rc, err in start_both(big, tmp_path):
        assert rc != 0 and "longer than 1024 bytes" in err, err
    ok = tmp_path / "ok.key"
    ok.write_bytes(b"k" * 1024 + b"\n")        # the limit, plus its newline
    ok.chmod(0o600)
    log = harness.Process([os.path.join(harness.BIN, "log_server"), "-f",
                           str(tmp_path / "l2"), "-p", "0", "-k", str(ok)])
    try:
        log.wait_line("listening on port", stderr=True)
    finally:
        log.stop()
