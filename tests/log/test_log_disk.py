"""A full disk, then kill -9: every acknowledged entry is still in the log,
nothing unacknowledged is, and a resend after the restart is written once.
The disk is a small tmpfs mounted for the test (needs root; skipped
otherwise) and unmounted afterwards."""
import collections
import os
import random
import subprocess

import pytest

from log_lib import LOG_IO_ERROR, LOG_OK, LogServer, RpcConn, read_lines

DT = "17/12/2014 13:20:35"
ORIGIN = 0x5EED


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.strip())
    started = []
    try:
        yield mnt, started
    finally:
        for proc in started:
            proc.stop()
        subprocess.run(["umount", str(mnt)], check=True)


def start_log(started, path):
    """A log server on `path`, stopped by the small_disk fixture afterwards."""
    log = LogServer(path, 0)
    started.append(log)
    return log


def fill_disk(mnt, room):
    """Fill the disk at mnt but for `room` bytes; returns the filler file."""
    st = os.statvfs(mnt)
    filler = mnt / "filler"
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - room))
    return filler


def batch(first, n):
    """n entries from seq `first`, ~600-byte lines."""
    return [(ORIGIN, first + i, "u%05d" % (first + i) + "x" * 250, "PUBLISH",
             "/" + "p" * 250, DT) for i in range(n)]


def line(entry):
    return " ".join(f for f in entry[2:] if f)


def test_full_disk_and_kill_9_keep_every_acknowledged_entry(small_disk):
    mnt, started = small_disk
    path = mnt / "operations.log"
    log = start_log(started, path)
    # Leave room for a few batches only.
    filler = fill_disk(mnt, 24 * 1024)
    conn = RpcConn(log.port)
    acked, seq, failed = [], 1, None
    for _ in range(100):
        entries = batch(seq, 5)
        status = conn.append(entries)
        if status == LOG_OK:
            acked += entries
            seq += 5
        else:
            assert status == LOG_IO_ERROR
            failed = entries
            break
    assert acked and failed, "the disk never filled"
    # The sender keeps resending while the disk stays full.
    for _ in range(3):
        assert conn.append(failed) == LOG_IO_ERROR
    assert read_lines(path) == [line(e) for e in acked]
    log.kill()
    filler.unlink()
    again = start_log(started, path)
    assert read_lines(path) == [line(e) for e in acked]
    # The unacknowledged batch, resent after the restart (with an acked one
    # before it, as after a lost reply): written once.
    conn = RpcConn(again.port)
    assert conn.append(acked[-5:] + failed) == LOG_OK
    assert read_lines(path) == [line(e) for e in acked + failed]


def test_full_disk_with_two_senders_loses_no_acknowledged_entry(small_disk):
    """Two senders, many origins per batch, so that commit records as well as
    lines run into the full disk (a torn record once hid the next one, glued
    to it); each sender resends its failed batch, as the index server does."""
    mnt, started = small_disk
    path = mnt / "operations.log"
    log = start_log(started, path)
    filler = fill_disk(mnt, 32 * 1024)
    rng = random.Random(5)
    conn = RpcConn(log.port)
    next_seq = collections.defaultdict(lambda: 1)
    pending = {}
    acked, failures = [], 0
    for i in range(400):
        if i % 20 == 19:            # a little room comes back now and then
            os.truncate(filler, max(0, os.path.getsize(filler) - 4096))
        sender = rng.randrange(2)
        if sender not in pending:
            entries = []
            for _ in range(rng.randrange(1, 60)):
                origin = 10000 * (sender + 1) + rng.randrange(2000)
                seq = next_seq[origin]
                next_seq[origin] += 1
                entries.append((origin, seq, "s%d-%d-%d" % (sender, origin, seq), "REGISTER",
                                "", DT))
            pending[sender] = entries
        status = conn.append(pending[sender])
        if status == LOG_OK:
            acked += pending.pop(sender)
        else:
            assert status == LOG_IO_ERROR
            failures += 1
    assert failures > 20 and len(acked) > 200
    log.kill()
    filler.unlink()
    start_log(started, path)                # recovers the log on start
    assert collections.Counter(read_lines(path)) == collections.Counter(line(e) for e in acked)


def test_no_room_even_for_the_idx_at_start(small_disk):
    """Restarting on a disk with no free space at all: the log server still
    starts (cutting needs no space) and keeps what was committed."""
    mnt, started = small_disk
    path = mnt / "operations.log"
    log = start_log(started, path)
    assert RpcConn(log.port).append(batch(1, 5)) == LOG_OK
    log.kill()
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    again = start_log(started, path)
    assert read_lines(path) == [line(e) for e in batch(1, 5)]
    assert RpcConn(again.port).append(batch(6, 5)) == LOG_IO_ERROR
    assert read_lines(path) == [line(e) for e in batch(1, 5)]
