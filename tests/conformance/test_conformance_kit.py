"""The conformance kit's own tests: it must catch deliberately broken
implementations (stubs.py) with the right check ids and a useful message.

That our own server, peer and client pass every check is `make conformance`,
which `make test` runs after this suite.
"""
import json
import os
import subprocess
import sys

import pytest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = os.path.join(HERE, "conform.py")
STUBS = os.path.join(HERE, "stubs.py")
sys.path.insert(0, HERE)
import conform  # noqa: E402


def kit(*args, isolated=False):
    """Run the kit with --json; (exit status, {id: result})."""
    flags = ["-I", "-S"] if isolated else []
    r = subprocess.run([sys.executable, *flags, KIT, *args, "--json"],
                       capture_output=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr.decode()
    doc = json.loads(r.stdout.decode())
    assert doc["passed"] + doc["failed"] + doc["known_failures"] + doc["skipped"] == \
        len(doc["results"])
    assert r.returncode == (1 if doc["failed"] else 0)
    return r.returncode, {res["id"]: res for res in doc["results"]}


def failed(results):
    """The ids of the checks that failed."""
    return {cid for cid, res in results.items() if res["status"] == "FAIL"}


@pytest.fixture
def stub():
    """Start stubs.py in a role; every one is stopped by PID afterwards."""
    started = []

    def start(role, *args):
        """Start one stub; its HOST:PORT."""
        p = harness.Process([sys.executable, STUBS, role, *args])
        started.append(p)
        return "127.0.0.1:%s" % p.wait_line(r"^port (\d+)$").group(1)

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def published(tmp_path):
    """A file for the stub peer to serve."""
    path = tmp_path / "published.bin"
    path.write_bytes(b"stub file\n" + bytes(range(256)))
    return str(path)


STUB_CLIENT = "%s %s client" % (sys.executable, STUBS)


@pytest.mark.python_only
def test_faithful_stubs_pass_every_check(stub, published):
    """Without a defect each stub passes all: a failure below is its defect's.
    The server run is in isolated mode (-I -S): the kit needs only the stdlib."""
    status, results = kit("server", stub("server"), isolated=True)
    assert status == 0 and failed(results) == set()
    assert len(results) == len(conform.selected("server", []))
    status, results = kit("peer", stub("peer", "--file", published), published)
    assert status == 0 and failed(results) == set()
    status, results = kit("client", STUB_CLIENT)
    assert status == 0 and failed(results) == set()


def test_search_group_runs_against_ours_and_is_skipped_by_a_classic_server(stub, server):
    """The SEARCH checks pass against our server, which lists SEARCH; a classic
    server (the stub closes on EXTENSIONS) gets them as SKIP, not FAIL."""
    search_ids = {c.id for c in conform.CHECKS if c.group == "SEARCH"}
    assert search_ids
    status, results = kit("server", "127.0.0.1:%d" % server.port, "--only", "server.search.*")
    assert status == 0 and set(results) == search_ids
    assert {r["status"] for r in results.values()} == {"PASS"}, results
    status, results = kit("server", stub("server"), "--only", "server.search.*")
    assert status == 0
    assert {r["status"] for r in results.values()} == {"SKIP"}, results
    assert "does not offer SEARCH" in results["server.search.codes"]["why"]


@pytest.mark.parametrize("defect, ids, words", [
    ("datetime-last", {"server.framing.datetime-second"}, "date-time"),
    ("global-publish", {"server.publish.per-user"}, "per user, not global"),
    ("truncate-255", {"server.fields.256-bytes", "server.fields.257-refused"}, "truncat"),
    ("list-cut-short", {"server.list-users.format", "server.list-content.format"},
     "cut short"),
    ("datetime-as-user", {"server.framing.datetime-second", "server.connect.codes",
                          "server.register.codes"}, "date-time"),
])
@pytest.mark.python_only
def test_broken_servers_fail_the_right_checks(stub, defect, ids, words):
    """Each broken server fails the checks of its defect, with evidence."""
    status, results = kit("server", stub("server", "--defect", defect))
    assert status == 1
    assert ids <= failed(results), failed(results)
    first = results[sorted(ids)[0]]
    assert words in first["why"] + first.get("hint", ""), first
    # The evidence: the request sent and the reply received, in hex.
    assert first["sent"].startswith(("52 45 47", "50 55 42", "4c 49 53", "43 4f 4e", "44 49 53")), first
    assert "received" in first


@pytest.mark.parametrize("defect, encoding, seen", [
    ("ascii-codes", "ASCII digit", "30"),
    ("int32-codes", "32-bit little-endian integer", "00 00 00 00"),
])
@pytest.mark.python_only
def test_one_encoding_deviation_is_one_failure(stub, defect, encoding, seen):
    """Codes sent as ASCII digits or 4-byte integers fail the one check of the
    encoding, which names what was seen; every other check judges the rest."""
    status, results = kit("server", stub("server", "--defect", defect))
    assert failed(results) == {"server.reply.raw-code"}
    why = results["server.reply.raw-code"]["why"]
    assert encoding in why and seen in why, why


@pytest.mark.parametrize("defect, only", [
    ("trailing-byte", "server.framing.exact-replies"),    # one byte after LIST_CONTENT
    ("empty-list-4", "server.list-content.format"),       # 4 for a list with no files
])
@pytest.mark.python_only
def test_a_narrow_deviation_fails_one_check(stub, defect, only):
    """One deviation is one failure, in the check of its rule, not in every
    check that happens to read such a reply."""
    _, results = kit("server", stub("server", "--defect", defect))
    assert failed(results) == {only}


@pytest.mark.python_only
def test_server_that_never_closes_is_judged_quickly(stub):
    """A server that answers and keeps the connection open: one framing finding,
    the rest judged, the whole target in well under the 2 minutes promised."""
    _, results = kit("server", stub("server", "--defect", "never-close"))
    assert failed(results) == {"server.framing.exact-replies"}
    assert "keeps the connection open" in results["server.framing.exact-replies"]["why"]
    assert sum(r["seconds"] for r in results.values()) < 60


@pytest.mark.python_only
def test_silent_server_costs_one_timeout(stub):
    """A server that never answers fails every check, waiting out the silence once."""
    _, results = kit("server", stub("server", "--defect", "silent"), "--timeout", "1",
                     "--level", "statement")
    assert set(results) == failed(results)
    assert sum(r["seconds"] for r in results.values()) < 15
    assert "did not answer REGISTER" in results["server.register.codes"]["why"]


@pytest.mark.python_only
def test_streaming_server_is_cut_off(stub):
    """A server whose reply never ends: every reply is read up to a cap, so the
    kit neither grows without limit nor runs for ever."""
    _, results = kit("server", stub("server", "--defect", "stream"), "--only",
                     "server.reply.*", "--only", "server.register.codes")
    assert failed(results) == set(results)
    why = results["server.reply.raw-code"]["why"]
    # Cut at the cap, or at the end of the wait for the close (what arrived
    # in it, shown): bounded either way.
    if "goes on past %d bytes" % conform.REPLY_MAX not in why:
        assert "no reading of the result code" in why, why
        assert int(why.split("(")[1].split(" bytes in all")[0]) <= conform.REPLY_MAX
    assert sum(r["seconds"] for r in results.values()) < 20


def test_our_server_with_liveness_passes_every_check():
    """A server that probes the ports its users CONNECT with (ours with -L) finds
    the kit's listeners alive: no check fails for it."""
    srv = harness.Server("-L", "1", "-N", "1", "-t", "5")
    try:
        status, results = kit("server", "127.0.0.1:%d" % srv.port)
    finally:
        srv.stop()
    assert status == 0 and failed(results) == set()


@pytest.mark.python_only
def test_levels_are_reported_apart(stub):
    """--level statement runs only the statement's checks; the JSON counts each
    level apart."""
    addr = stub("server", "--defect", "truncate-255")
    status, results = kit("server", addr, "--level", "statement")
    assert status == 0 and {r["level"] for r in results.values()} == {"statement"}
    r = subprocess.run([sys.executable, KIT, "server", addr, "--json"], capture_output=True,
                       timeout=120)
    doc = json.loads(r.stdout)
    assert doc["levels"]["statement"]["failed"] == 0
    assert doc["levels"]["recommended"]["failed"] == 2


@pytest.mark.python_only
def test_global_publish_fails_only_where_two_users_share_a_path(stub):
    """A narrow defect fails only the checks it touches."""
    _, results = kit("server", stub("server", "--defect", "global-publish"))
    assert failed(results) == {"server.publish.per-user", "server.concurrency.many-users"}


@pytest.mark.python_only
def test_peer_refusing_everything_passes_no_refusal_check(stub, published):
    """A peer answering 2 to every request, its published file included, fails
    the checks that expect a refusal too: its refusals prove nothing."""
    _, results = kit("peer", stub("peer", "--file", published, "--defect", "refuse-all"),
                     published)
    assert {"peer.get-file.published", "peer.get-file.relative-path",
            "peer.get-file.not-exist"} <= failed(results)
    assert "refusal here proves nothing" in results["peer.get-file.relative-path"]["why"]


@pytest.mark.python_only
def test_client_banner_is_chatter_not_a_failure():
    """Lines a client prints before its first result line are noted, not judged."""
    r = subprocess.run([sys.executable, KIT, "client", STUB_CLIENT + " --defect banner",
                        "--json"], capture_output=True, timeout=120)
    doc = json.loads(r.stdout)
    assert doc["failed"] == 0, [x for x in doc["results"] if x["status"] == "FAIL"]
    assert any("stub client 1.0" in n for n in doc["notes"]), doc["notes"]


@pytest.mark.python_only
def test_peer_serving_unpublished_files(stub, published):
    """A peer serving /etc/passwd fails the unpublished-file check."""
    _, results = kit("peer", stub("peer", "--file", published, "--defect",
                                  "serve-unpublished"), published)
    assert failed(results) == {"peer.get-file.unpublished"}
    res = results["peer.get-file.unpublished"]
    assert "which was not published" in res["why"] and res["received"].startswith("00 ")


@pytest.mark.python_only
def test_client_printing_fail_space_comma(stub):
    """A client printing `FAIL ,` fails every check with a FAIL, REASON line."""
    _, results = kit("client", STUB_CLIENT + " --defect fail-comma")
    assert {"client.connect", "client.disconnect", "client.publish", "client.delete",
            "client.list-users", "client.list-content",
            "client.get-file.refused"} <= failed(results)
    assert {"client.register", "client.get-file", "client.quit"} <= set(results) - \
        failed(results)
    res = results["client.connect"]
    assert "CONNECT FAIL , USER DOES NOT EXIST" in res["why"]
    assert "comma right after FAIL" in res["hint"]


@pytest.mark.python_only
def test_xfail_counts_known_failures_apart(stub):
    """--xfail: a known failure is XFAIL and not counted; a pass under it is a failure."""
    addr = stub("server", "--defect", "global-publish")
    status, results = kit("server", addr, "--only", "server.publish.*",
                          "--xfail", "server.publish.per-user")
    assert status == 0
    assert results["server.publish.per-user"]["status"] == "XFAIL"
    assert results["server.publish.codes"]["status"] == "PASS"
    status, results = kit("server", addr, "--only", "server.publish.codes",
                          "--xfail", "server.publish.codes")
    assert status == 1 and "take it off" in results["server.publish.codes"]["why"]


@pytest.mark.parametrize("defect, ids, words", [
    ("datetime-last", {"client.register", "client.connect", "client.publish"},
     "must be the date-time DD/MM/YYYY HH:MM:SS"),
    ("keep-listener", {"client.disconnect.listener"}, "still accepts connections"),
    ("accept-too-much", {"client.get-file.too-much"}, "expected the line 'c> GET_FILE FAIL'"),
])
@pytest.mark.python_only
def test_broken_clients_fail_the_right_checks(defect, ids, words):
    """Each broken client fails the checks of its defect, and only those."""
    _, results = kit("client", STUB_CLIENT + " --defect " + defect)
    assert ids <= failed(results), failed(results)
    if defect != "datetime-last":
        assert failed(results) == ids
    for cid in ids:
        assert words in results[cid]["why"], results[cid]


@pytest.mark.python_only
def test_cleanup_leaves_no_user_behind(stub):
    """After a run the kit's users are gone (the stub's STUB_USERS lists them)."""
    addr = stub("server")
    kit("server", addr)
    host, port = addr.split(":")
    assert harness.exchange(int(port), b"STUB_USERS\0") == b""


@pytest.mark.python_only
def test_human_output_list_only_and_exit_status(stub):
    """The human output, --list, --only, and the exit statuses 0, 1 and 2."""
    addr = stub("server", "--defect", "ascii-codes")
    r = subprocess.run([sys.executable, KIT, "server", addr, "--only", "server.reply.*",
                        "--only", "server.register.codes"], capture_output=True, timeout=60)
    out = r.stdout.decode().splitlines()
    assert r.returncode == 1
    assert out[0].startswith("== statement checks")
    assert out[1].startswith("FAIL  server.reply.raw-code ")
    assert any(l.strip().startswith("sent:") and "52 45 47 49 53 54 45 52 00" in l for l in out)
    assert any(l.strip().startswith("received:") and "30" in l for l in out)
    # One encoding deviation, one failure: REGISTER's codes are judged as read.
    assert any(l.startswith("PASS  server.register.codes") for l in out)
    assert out[-2:] == ["note: result codes read as: ASCII digit", "statement:  1 passed, 1 failed"]
    r = subprocess.run([sys.executable, KIT, "--list"], capture_output=True, timeout=60)
    listed = [l.split()[0] for l in r.stdout.decode().splitlines()]
    assert r.returncode == 0 and listed == [c.id for c in conform.CHECKS]
    assert len(set(listed)) == len(listed)
    r = subprocess.run([sys.executable, KIT, "server", "nowhere"], capture_output=True,
                       timeout=60)
    assert r.returncode == 2 and b"HOST:PORT" in r.stderr


@pytest.mark.python_only
def test_every_check_quotes_a_rule():
    """Each check has a unique id under its target and a one-line rule."""
    for c in conform.CHECKS:
        assert c.id.startswith(c.target + ".") and c.rule and "\n" not in c.rule


@pytest.mark.python_only
def test_our_client_on_a_terminal():
    """--pty: our client on a terminal (readline, prompts, echo) passes too."""
    command = "%s %s" % (harness.PYTHON, os.path.join(harness.ROOT, "client", "client.py"))
    _, results = kit("client", command, "--pty", "--only", "client.register",
                     "--only", "client.list-users", "--only", "client.get-file")
    assert set(results) == {"client.register", "client.list-users", "client.get-file"}
    assert failed(results) == set(), results


@pytest.mark.python_only
def test_docs_table_lists_every_check():
    """docs/conformance.md has a row for each check id, and no row for a check that is gone."""
    with open(os.path.join(harness.ROOT, "docs", "conformance.md")) as f:
        table = f.read().split("## The checks", 1)[1]
    rows = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert rows == {c.id for c in conform.CHECKS}


# Behaviours seen in public implementations of the protocol, each once
# misjudged by the kit (docs/conformance.md, "What the kit found in the wild").

@pytest.mark.python_only
def test_codes_as_integers_but_lists_as_a_raw_byte_is_one_failure(stub):
    """A server that sends 4-byte integers for replies that are only a code and
    the raw byte before a list: one encoding failure, the lists judged too."""
    _, results = kit("server", stub("server", "--defect", "mixed-codes"))
    assert failed(results) == {"server.reply.raw-code"}


@pytest.mark.python_only
def test_a_close_instead_of_other_error_is_blamed_on_the_input(stub):
    """A server that closes without a reply on an empty field: the empty user
    name fails its code check with the input named, not a framing hint, and an
    empty description (allowed by the statement's silence) is judged apart."""
    _, results = kit("server", stub("server", "--defect", "close-on-empty"))
    assert failed(results) == {"server.register.codes", "server.fields.empty-description"}
    res = results["server.register.codes"]
    assert "framed" not in res.get("hint", "") and "closed" in res["why"] + res["hint"], res
    assert results["server.fields.empty-description"]["level"] == "recommended"


@pytest.mark.python_only
def test_refusing_low_ports_fails_only_the_port_range(stub):
    """A server that refuses ports below 1024: the recommended port-range check
    names them; no statement check fails for it."""
    _, results = kit("server", stub("server", "--defect", "low-ports-refused"))
    assert failed(results) == {"server.connect.port-range"}
    assert "1, 1023" in results["server.connect.port-range"]["why"]


@pytest.mark.python_only
def test_a_server_that_crashes_is_named_once(stub):
    """A server that dies on an unknown operation: that check says it stopped
    answering, the later ones say where it stopped, without a traceback."""
    _, results = kit("server", stub("server", "--defect", "crash-on-unknown"))
    why = results["server.request.unknown-operation"]["why"]
    assert "stopped" in why and "Error" not in why, why
    later = [r for r in results.values() if r["status"] == "FAIL" and
             r["id"] != "server.request.unknown-operation"]
    assert later and all("server.request.unknown-operation" in r["why"] for r in later), later


@pytest.mark.python_only
def test_datetime_read_as_user_is_blamed_once(stub):
    """A server that takes the date-time for the user name (a protocol without
    the date-time field): every other failure says it was not judged, and why."""
    _, results = kit("server", stub("server", "--defect", "datetime-as-user"))
    others = [r for r in results.values() if r["status"] == "FAIL" and
              r["id"] != "server.framing.datetime-second"]
    assert others and all(r["why"].startswith("not judged: the server reads the date-time")
                          for r in others), others


@pytest.mark.python_only
def test_an_operation_waiting_for_more_fields_is_named_once(stub):
    """A server whose CONNECT waits for a field the statement does not have:
    the first CONNECT says so (it answers once the kit closes its side), the
    later ones fail at once instead of each waiting out the timeout."""
    _, results = kit("server", stub("server", "--defect", "connect-extra-field"),
                     "--timeout", "2")
    why = results["server.connect.codes"]["why"]
    assert "waits for more than the statement's 4 fields" in why, why
    later = results["server.disconnect.codes"]["why"]
    assert "not waited for again" in later, later
    assert sum(r["seconds"] for r in results.values()) < 30


@pytest.mark.python_only
def test_unknown_operation_held_open_fails_only_the_recommended_check(stub):
    """A server that neither answers nor closes an unknown operation, and keeps
    serving: the statement check (it keeps running) passes; the recommended
    one (closed without a reply) fails."""
    _, results = kit("server", stub("server", "--defect", "unknown-held"), "--timeout", "2")
    assert failed(results) == {"server.request.unknown-closed"}
