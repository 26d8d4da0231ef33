"""The per-source cap counts by network: many addresses of one IPv6 /64
cannot take every slot (run in a network namespace of our own, where lo can
hold those addresses)."""
import os
import re
import shutil
import subprocess

import pytest

import harness

HELPER = os.path.join(os.path.dirname(__file__), "netns_cap.py")


def in_namespace(*args):
    """Run netns_cap.py in a new user and network namespace; its summary."""
    if shutil.which("unshare") is None or shutil.which("ip") is None or subprocess.run(
            ["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("no unprivileged network namespaces here")
    out = subprocess.run(["unshare", "-rn", harness.PYTHON, HELPER, *args],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PEERDEX_BIN=harness.BIN))
    assert out.returncode == 0, out.stderr
    m = re.search(r"served (\d+) of (\d+) held (\d+)", out.stdout)
    assert m, out.stdout
    return tuple(int(x) for x in m.groups())


def test_one_ipv6_network_holds_one_sources_share():
    """24 addresses of one /64 x 16 connections against -c 256 -i 16: the
    /64 keeps 16, and another /64, 127.0.0.1 and ::1 are all served."""
    served, total, held = in_namespace()
    assert (served, total) == (30, 30)
    assert held == 16


def test_prefix_length_is_an_option():
    """-P 128 counts each IPv6 address apart: the same attack then holds
    every one of the 256 slots (why the default is /64)."""
    served, total, held = in_namespace("-P", "128")
    assert held == 256 and served < total
