#!/usr/bin/env python3
"""Conformance kit for the classic peer-to-peer index protocol.

Checks any implementation, not only peerdex, against the normative protocol
(shared/spec/protocol.md).  Standard library only, Python 3.8 or later:

    conform.py server HOST:PORT          an index server
    conform.py peer HOST:PORT PATH       a connected client's file server; PATH is
                                         a file its user has published
    conform.py client "COMMAND" [--pty]  a client program, driven through a pipe
                                         (or a terminal) against a scripted server

COMMAND may contain {host} and {port}; otherwise `-s HOST -p PORT` is appended.
Options: --list, --only ID (glob, repeatable), --json, --timeout SECONDS,
--jobs N, --xfail ID (a known failure, counted apart).
Each check prints its id, PASS or FAIL and the rule it checks; a failure says
what was sent and what came back (bytes in hex).  Exit status 1 on any failure.
See docs/conformance.md.
"""
import argparse
import fnmatch
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

DT_RX = re.compile(rb"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")
# Request fields per operation, the operation name and the date-time included.
FIELDS = {"REGISTER": 3, "UNREGISTER": 3, "CONNECT": 4, "DISCONNECT": 3, "PUBLISH": 5,
          "DELETE": 4, "LIST_USERS": 3, "LIST_CONTENT": 4}
FIELD_NAMES = {"CONNECT": "operation, date-time, user, port",
               "PUBLISH": "operation, date-time, user, path, description",
               "DELETE": "operation, date-time, user, path",
               "LIST_CONTENT": "operation, date-time, requester, target"}
TIMEOUT = 10.0                  # seconds for any one exchange (--timeout)
CHECK_SECONDS = 30.0            # seconds for one whole check (--check-seconds)
BUDGET = 100.0                  # seconds for a whole run of one target (--budget)
REPLY_MAX = 16 << 20            # bytes read of any one reply
CLOSE_GRACE = 0.3               # seconds to wait for the close after a whole reply
USER_PREFIX = "conform_"        # every user the kit creates on a server starts so
LEVELS = ("statement", "recommended")


def now_dt(offset=0):
    """The local date-time as the protocol writes it, `offset` seconds from now:
    what a client's time service would send."""
    return time.strftime("%d/%m/%Y %H:%M:%S", time.localtime(time.time() + offset))


# --- checks and their results ------------------------------------------------------

class Failure(Exception):
    """A check failed: why, and the bytes sent and received that show it."""

    def __init__(self, why, sent=None, received=None, hint=None):
        super().__init__(why)
        self.why, self.sent, self.received, self.hint = why, sent, received, hint


class Check:
    """One rule, tested by one function of a target's context.  A *statement*
    check quotes what the protocol statement requires; a *recommended* one is
    our reading where the statement is silent, or robustness beyond it."""

    def __init__(self, target, cid, rule, func, level, group="classic"):
        self.target, self.id, self.rule, self.func = target, cid, rule, func
        self.level = level
        self.group = group      # "classic", or the extension operation checked


CHECKS = []


def check(target, cid, rule, level="statement", group="classic"):
    """Register a check function under its id, the rule it quotes and its level;
    `group`: the extension operation it checks (run only when the server lists
    it in its EXTENSIONS reply, else SKIP), or "classic"."""
    assert level in LEVELS

    def register(func):
        CHECKS.append(Check(target, cid, rule, func, level, group))
        return func
    return register


def hexdump(data, limit=96):
    """Bytes as space-separated hex, cut after `limit` bytes with the total."""
    if data is None:
        return "(nothing)"
    if not data:
        return "(no bytes: the connection was closed)"
    text = " ".join("%02x" % b for b in data[:limit])
    if len(data) > limit:
        text += " ... (%d bytes in all)" % len(data)
    return text


def readable(data, limit=96):
    """Bytes as a Python literal, with NUL shown as \\0, cut like hexdump."""
    text = repr(bytes(data[:limit]))[2:-1].replace("\\x00", "\\0")
    return text + ("..." if len(data) > limit else "")


def diagnose(expected, received):
    """A hint for the usual reasons a reply differs from what the spec wants."""
    if received is None:
        return None
    if received == b"":
        return ("the connection was closed without a reply: is the request framed as "
                "NUL-terminated fields, with the date-time as the second field?")
    if 0x30 <= received[0] <= 0x34 and expected and expected[0] < 5:
        return ("result code sent as an ASCII digit (%r is 0x%02x); the spec wants the raw "
                "byte value %d" % (chr(received[0]), received[0], received[0] - 0x30))
    if expected is not None and len(received) > len(expected) and \
            received.startswith(expected):
        return "extra bytes after the expected reply"
    if expected is not None and len(received) < len(expected) and \
            expected.startswith(received):
        return "the reply stops early: a list cut short, or a missing NUL at the end"
    return None


class Skip(Exception):
    """A check that does not apply to this target (an extension it does not offer)."""


def run_check(chk, ctx, until=None):
    """Run one check, within the monotonic deadline `until` where the target
    keeps one; a result dict with id, level, rule, status and failure details."""
    result = {"id": chk.id, "target": chk.target, "level": chk.level, "rule": chk.rule,
              "group": chk.group}
    start = time.monotonic()
    if hasattr(ctx, "until"):
        ctx.until = until
    if hasattr(ctx, "current"):
        ctx.current = chk.id
    try:
        if chk.group != "classic" and chk.group not in ctx.extensions():
            raise Skip("the server does not offer %s (not in its EXTENSIONS reply)" % chk.group)
        chk.func(ctx)
        result["status"] = "PASS"
    except Skip as e:
        result.update(status="SKIP", why=str(e))
    except Failure as f:
        result.update(status="FAIL", why=f.why)
        if getattr(ctx, "user_is_datetime", False) and chk.id != "server.framing.datetime-second":
            result["why"] = ("not judged: the server reads the date-time (the second field) as "
                             "the user, so every user of the kit is one (see "
                             "server.framing.datetime-second); here: " + f.why)
        if f.sent is not None:
            result["sent"] = hexdump(f.sent) if isinstance(f.sent, bytes) else str(f.sent)
            if isinstance(f.sent, bytes):
                result["sent_text"] = readable(f.sent)
        if f.received is not None:
            result["received"] = hexdump(f.received) if isinstance(f.received, bytes) \
                else str(f.received)
            if isinstance(f.received, bytes):
                result["received_text"] = readable(f.received)
        if f.hint:
            result["hint"] = f.hint
    except Exception as e:          # a check that breaks is a failure, said plainly
        result.update(status="FAIL", why="%s: %s" % (type(e).__name__, e))
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


def print_result(r, out=sys.stdout):
    """One result in human form: the id line, then on failure the evidence."""
    print("%-5s %-38s %s" % (r["status"], r["id"], r["rule"]), file=out)
    if r["status"] == "SKIP":
        print("      why:      %s" % r["why"], file=out)
    elif r["status"] != "PASS":
        print("      why:      %s" % r["why"], file=out)
        for key, label in (("sent", "sent"), ("received", "received")):
            if key in r:
                print("      %-9s %s" % (label + ":", r[key]), file=out)
                if key + "_text" in r:
                    print("      %-9s %s" % ("", r[key + "_text"]), file=out)
        if "hint" in r:
            print("      hint:     %s" % r["hint"], file=out)
    out.flush()


# --- wire helpers ------------------------------------------------------------------

def encode(*fields):
    """Request fields, each one followed by a NUL byte."""
    return b"".join((f if isinstance(f, bytes) else str(f).encode()) + b"\0" for f in fields)


def recv_all(sock, timeout, complete=None, on_open=None, grace=CLOSE_GRACE):
    """What the peer sends until it closes, at most REPLY_MAX bytes; Failure if
    it does not close within `timeout`.

    With `complete` (a function of the bytes so far), reading stops `grace`
    seconds after the bytes make a whole reply, closed or not, so
    that a server that never closes costs a moment, not the timeout; then
    on_open(raw) is told when the connection was still open.
    """
    chunks, size = [], 0
    deadline = time.monotonic() + timeout
    whole_at = None
    while True:
        now = time.monotonic()
        if whole_at is None and complete is not None and complete(b"".join(chunks)):
            whole_at = now
        end = deadline if whole_at is None else min(deadline, whole_at + grace)
        if now >= end:
            raw = b"".join(chunks)
            if whole_at is not None:
                if on_open is not None:
                    on_open(raw)
                return raw
            raise Failure("no whole reply and no close within %.0f s (the spec: one "
                          "connection per operation, closed after the reply)" % timeout,
                          received=raw)
        sock.settimeout(end - now)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > REPLY_MAX:
            raise Failure("the reply goes on past %d bytes" % REPLY_MAX,
                          received=b"".join(chunks)[:256])
    return b"".join(chunks)


def parse_list(raw, per_item):
    """A LIST reply body (after the code): (count, items, rest) or None if it is
    not (yet) whole: a decimal count, then count * per_item NUL-terminated
    strings; `rest` is whatever follows them (nothing, in a faithful reply)."""
    fields = raw.split(b"\0")
    if len(fields) < 2 or not fields[0].isdigit():
        return None
    n = int(fields[0])
    if len(fields) - 1 < 1 + n * per_item:
        return None
    items = [tuple(fields[1 + i * per_item:1 + (i + 1) * per_item]) for i in range(n)]
    consumed = sum(len(f) + 1 for f in fields[:1 + n * per_item])
    return n, items, raw[consumed:]


# --- result encodings ----------------------------------------------------------------
# The statement wants one raw byte.  Some servers send the ASCII digit, the digit
# and a NUL, or a 4-byte integer.  The kit finds which once (server.reply.raw-code
# reports it) and judges every other check through the matching decoder, so one
# encoding deviation is one failure, not one per check.

def decode_raw(raw):
    return (raw[0], raw[1:]) if raw else (None, b"")


def decode_ascii(raw):
    if not raw or not 0x30 <= raw[0] <= 0x39:
        return None, raw
    rest = raw[1:]
    return raw[0] - 0x30, rest[1:] if rest[:1] == b"\0" else rest


def decode_int32(order):
    def decode(raw):
        if len(raw) < 4:
            return None, raw
        return int.from_bytes(raw[:4], order), raw[4:]
    return decode


DECODERS = {"raw byte": decode_raw, "ASCII digit": decode_ascii,
            "32-bit little-endian integer": decode_int32("little"),
            "32-bit big-endian integer": decode_int32("big")}


def classify(first, second):
    """The encoding of two replies known to be codes 0 and 1 (see
    ServerTarget.encoding), or None when they fit none of the readings."""
    for exact in (True, False):         # replies that are just the code, first
        for name, decode in DECODERS.items():
            (a, rest_a), (b, rest_b) = decode(first), decode(second)
            if a == 0 and b == 1 and (not exact or rest_a == rest_b == b""):
                return name
    return None


# --- target: server ----------------------------------------------------------------

class ServerTarget:
    """An index server at host:port.  Users are named under a recognisable prefix
    (USER_PREFIX and a random tag) and unregistered at the end; every CONNECT
    gives the port of a real listener of the kit's (endpoint()), so a server
    that probes its users' ports finds them alive."""

    def __init__(self, host, port, timeout):
        self.addr = (host, port)
        self.timeout = timeout
        self.prefix = "%s%06x" % (USER_PREFIX, random.randrange(1 << 24))
        self.users = set()
        self.lock = threading.Lock()    # guards users, findings, listeners
        self.until = None               # the current check's deadline (monotonic)
        self.current = None             # the id of the check that runs
        self.gone = None                # the check during which the server stopped
        self.user_is_datetime = False   # the server reads the date-time as the user
        self.stuck = {}                 # operation -> why its requests go unanswered
        self.findings = {}              # framing finding -> (why, sent, received)
        self.listeners = []
        self._encoding = None
        self._decode = decode_raw
        self.encoding_lock = threading.Lock()   # guards _encoding and _decode
        self._extensions = None     # what EXTENSIONS lists, asked once

    # -- names, endpoints, time --

    def user(self, label):
        """A fresh user name for this run (remembered for the final UNREGISTER)."""
        name = "%s_%s" % (self.prefix, label)
        with self.lock:
            assert name not in self.users, "label %r used twice" % label
            self.users.add(name)
        return name

    def long_user(self, length, fill="n"):
        """A user name of exactly `length` bytes, under this run's prefix."""
        name = (self.prefix + "_L%d_" % length).ljust(length, fill)[:length]
        with self.lock:
            self.users.update((name, name[:256], name[:255]))
        return name

    def path(self, label):
        """A file path unique to this run (nothing is read from disk)."""
        return "/conformance/%s/%s" % (self.prefix, label)

    def endpoint(self):
        """The port (text) of a fresh listener of the kit's on every address, which
        accepts and closes whatever connects (a liveness probe, say)."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET)
        sock.bind(("", 0))
        sock.listen(64)
        with self.lock:
            self.listeners.append(sock)
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()
        return str(sock.getsockname()[1])

    @staticmethod
    def _accept(sock):
        """Accept and close, until the listener is closed."""
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    def left(self):
        """Seconds one exchange may take: the timeout, within the check's deadline."""
        if self.until is None:
            return self.timeout
        left = self.until - time.monotonic()
        if left <= 0:
            raise Failure("the check ran out of its time (--check-seconds, or the run's "
                          "--budget)")
        return min(self.timeout, left)

    # -- exchanges --

    def connect(self):
        """A connection to the server.  A server that answered before and now
        refuses connections has stopped (crashed?): said once, with the check
        that was running, and every later check names it instead of a traceback.
        A reset during the connect is the same end seen a moment earlier: the
        handshake done in the backlog of a listener that then closed."""
        try:
            return socket.create_connection(self.addr, timeout=self.left())
        except (ConnectionRefusedError, ConnectionResetError):
            with self.lock:
                if self.gone is None:
                    self.gone = self.current
            raise Failure("the server stopped accepting connections during %s (it refuses "
                          "them since): did it crash?" % self.gone,
                          hint="the check named is the one whose requests the server met "
                          "last; read its requests")

    def exchange(self, data, shut_wr=False, kind=None):
        """Send raw bytes; the reply.  With `kind` ("code", or ("list", n) for a
        list of n strings per item) reading stops once the reply is whole (see
        recv_all); without, it goes on until the server closes."""
        if isinstance(self._encoding, Failure):
            raise self._encoding        # a silent server: said once, not waited for again
        complete = None if kind is None else (lambda raw: self.whole(raw, kind))
        op = data.split(b"\0", 1)[0].decode("latin-1") if data else ""
        with self.lock:
            stuck = self.stuck.get(op) if kind not in (None, "any") else None
        if stuck:
            raise Failure(stuck, data, b"")
        try:
            return self._exchange(data, shut_wr, complete)
        except Failure as f:
            if f.received != b"" or shut_wr or kind in (None, "any") or op not in FIELDS:
                raise
            why = self.unanswered(op, data)
            with self.lock:
                self.stuck.setdefault(op, "%s (first seen in %s; such requests are not "
                                      "waited for again)" % (why, self.current))
            raise Failure(why, data, b"")

    def unanswered(self, op, data):
        """Why a request of `op` got no byte within the timeout: sent again with the
        write side closed (a short wait), a server that then answers or closes was
        waiting for more than the statement's fields."""
        try:
            self.until, until = time.monotonic() + min(3.0, self.left()), self.until
            self._exchange(data, True, None)
            return ("%s got no reply within %.0f s, and one once the kit closed its side: "
                    "the server waits for more than the statement's %d fields (%s)"
                    % (op, self.timeout, FIELDS[op], FIELD_NAMES.get(op, "operation, date-time, user")))
        except (Failure, OSError):
            return "%s got no reply and no close within %.0f s" % (op, self.timeout)
        finally:
            self.until = until

    def _exchange(self, data, shut_wr, complete):
        """One connection: send, then read (see exchange)."""
        with self.connect() as s:
            if data:
                try:
                    s.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass                # it answered early and closed: read that
            if shut_wr:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass                # it closed already: read what it sent
            # Once the server is known to keep connections open, a shorter wait.
            grace = CLOSE_GRACE if "no-close" not in self.findings else CLOSE_GRACE / 6
            return recv_all(s, self.left(), complete,
                            lambda raw: self.finding("no-close", "the server keeps the "
                                                     "connection open after its reply",
                                                     data, raw), grace)

    def whole(self, raw, kind):
        """True when `raw` holds a whole reply of this kind (in the found encoding;
        kind "any": some bytes, while the encoding is not known yet)."""
        if kind == "any":
            return bool(raw)
        code, rest = self.read_code(raw)
        if code is None:
            return False
        if kind == "code" or code != 0:
            return True
        return parse_list(rest, kind[1]) is not None

    def finding(self, key, why, sent, received):
        """Note a framing deviation once (server.framing.exact-replies reports it)."""
        with self.lock:
            self.findings.setdefault(key, (why, sent, received))

    def send(self, op, *fields, dt=None, kind="code"):
        """One operation; (request bytes, reply bytes)."""
        data = encode(op, dt or now_dt(), *fields)
        return data, self.exchange(data, kind=kind)

    @property
    def encoding(self):
        """How this server sends result codes, found once from a REGISTER of a
        fresh name (code 0) and of the same name again (code 1): (name or None,
        the two replies)."""
        with self.encoding_lock:
            if self._encoding is None:
                name, dt = self.user("encoding"), now_dt()
                try:
                    first = self.exchange(encode("REGISTER", dt, name), kind="any")
                    second = self.exchange(encode("REGISTER", dt, name), kind="any")
                except (Failure, OSError) as e:
                    # Every check would meet the same silence: say it once each,
                    # without waiting for it again.
                    self._encoding = Failure("the server did not answer REGISTER, the "
                                             "first request of the run: %s" % e,
                                             encode("REGISTER", dt, name),
                                             getattr(e, "received", None))
                else:
                    found = classify(first, second)
                    self._decode = DECODERS.get(found, decode_raw)
                    self._encoding = (found, first, second)
                    if found is not None:
                        self.probe_user_field(dt)
            if isinstance(self._encoding, Failure):
                raise self._encoding
            return self._encoding

    def probe_user_field(self, dt):
        """Another fresh name, with the date-time of the encoding probe: a server
        that reads the date-time as the user answers "in use".  Then no check
        can tell the kit's users apart; each failure says so (run_check)."""
        try:
            raw = self.exchange(encode("REGISTER", dt, self.user("encoding2")), kind="any")
        except (Failure, OSError):
            return
        self.user_is_datetime = self._decode(raw)[0] == 1

    def decode(self, raw):
        """(code, rest) of a reply, read in the encoding this server uses."""
        self.encoding           # found first, once
        return self.read_code(raw)

    def read_code(self, raw):
        """(code, rest) in the encoding found; a reply that does not fit it but
        starts with a raw code byte is read so (some servers send integers for
        the replies that are only a code and the raw byte before a list): the
        encoding is reported once, by server.reply.raw-code."""
        code, rest = self._decode(raw)
        if (code is None or not 0 <= code <= 4) and self._decode is not decode_raw \
                and raw and raw[0] <= 4:
            return raw[0], raw[1:]
        return code, rest

    def expect(self, code, op, *fields, dt=None, why=None):
        """The reply must carry this result code and nothing else."""
        data, raw = self.send(op, *fields, dt=dt)
        got, rest = self.decode(raw)
        if got != code:
            raise Failure(why or "%s answered %s, the spec wants the code %d"
                          % (op, hexdump(raw) if got is None else "code %d" % got, code),
                          data, raw, diagnose_code(self, raw))
        if rest:
            self.finding("extra-bytes", "bytes after the result code of a reply that is "
                         "only a code", data, raw)

    def listing(self, op, per_item, *fields):
        """A LIST reply that must answer 0: (items, request, reply)."""
        data, raw = self.send(op, *fields, kind=("list", per_item))
        code, rest = self.decode(raw)
        if code != 0:
            raise Failure("%s of a connected user%s did not answer 0" %
                          (op, " of an existing user" if op == "LIST_CONTENT" else ""),
                          data, raw, diagnose_code(self, raw))
        parsed = parse_list(rest, per_item)
        if parsed is None:
            raise Failure("%s reply is not: code 0, a decimal count, then %s, each "
                          "NUL-terminated" % (op, "name, IP and port per user" if per_item == 3
                                              else "one path per file"), data, raw,
                          "a list cut short, a count that does not match, or a missing NUL")
        if parsed[2]:
            self.finding("list-extra-bytes", "bytes after the last string of a list", data,
                         raw)
        return parsed[1], data, raw

    def connected(self, label):
        """A registered and connected fresh user (at a live endpoint of the kit's)."""
        name = self.user(label)
        self.expect(0, "REGISTER", name)
        self.expect(0, "CONNECT", name, self.endpoint())
        return name

    def owner(self, label):
        """A connected fresh user with one published file (a marker), so that what
        it lists is never the empty list (a reply some servers get wrong, judged by
        its own check only)."""
        name = self.connected(label)
        self.expect(0, "PUBLISH", name, self.path(label + "-marker"), "marker")
        return name

    def list_users(self, requester):
        """LIST_USERS that must succeed: {name: (ip, port)} of the listed users."""
        items, data, raw = self.listing("LIST_USERS", 3, requester)
        return {n.decode("utf-8", "replace"): (ip.decode("utf-8", "replace"),
                                               port.decode("utf-8", "replace"))
                for n, ip, port in items}, data, raw

    def list_content(self, requester, target):
        """LIST_CONTENT that must succeed: the list of paths."""
        items, data, raw = self.listing("LIST_CONTENT", 1, requester, target)
        return [p[0].decode("utf-8", "replace") for p in items], data, raw

    def distinct(self):
        """The server tells the kit's users apart: a name this run never
        registered is unknown (DISCONNECT answers 1).  A server that reads
        another field as the user (the date-time, say) would put all of them
        under one name and pass a check it should fail."""
        name = self.user("never%06x" % random.randrange(1 << 24))
        data, raw = self.send("DISCONNECT", name)
        got, _ = self.decode(raw)
        require(got == 1, "a user name this run never registered is known to the server "
                "(DISCONNECT answered %s, not 1): it does not tell the kit's users apart; "
                "which field does it read as the user (the date-time?)" % (got if got is not None else
                                                          hexdump(raw)), data, raw)

    def extensions(self):
        """The extension operations the server lists in reply to EXTENSIONS
        (docs/protocol.md); none when it closes, or answers anything but a
        well-formed list, as a classic server does."""
        if self._extensions is None:
            names = set()
            try:
                raw = self.exchange(encode("EXTENSIONS", now_dt()))
                parsed = parse_list(raw[1:], 1) if raw[:1] == b"\0" else None
                if parsed is not None:
                    names = {n[0].decode("ascii", "replace") for n in parsed[1]}
            except (OSError, Failure):
                pass
            self._extensions = frozenset(names)
        return self._extensions

    def search(self, requester, query, maximum=""):
        """SEARCH that must succeed: [(owner, path, description)], request, reply."""
        data, raw = self.send("SEARCH", requester, query, maximum, kind=("list", 3))
        code, rest = self.decode(raw)
        if code != 0:
            raise Failure("SEARCH by a connected user did not answer 0", data, raw,
                          diagnose_code(self, raw))
        parsed = parse_list(rest, 3)
        if parsed is None:
            raise Failure("SEARCH reply is not: code 0, a decimal count, then owner, path "
                          "and description per match, each NUL-terminated, nothing more",
                          data, raw, "a list cut short, a count that does not match, or a "
                          "missing NUL")
        return [tuple(f.decode("utf-8", "replace") for f in m) for m in parsed[1]], data, raw

    def cleanup(self):
        """UNREGISTER every user this run created (the answers do not matter), and
        close the kit's listeners."""
        self.until = time.monotonic() + max(self.timeout, 10.0)
        for name in sorted(self.users):
            try:
                self.send("UNREGISTER", name)
            except (OSError, Failure):
                pass
        with self.lock:
            for sock in self.listeners:
                sock.close()


def diagnose_code(t, raw):
    """A hint for a reply whose code is not the one expected."""
    found = t.encoding[0]
    if raw == b"" and found is not None:
        return ("the server closed the connection without a reply to this request, though "
                "it answers others: a refusal is the operation's \"other error\" code, not "
                "a close (which input is it that the server rejects so?)")
    if raw == b"":
        return ("the connection was closed without a reply: is the request framed as "
                "NUL-terminated fields, with the date-time as the second field?")
    if found is None:
        return "the replies fit no known encoding of the result code (see server.reply.raw-code)"
    return None


def require(cond, why, sent=None, received=None, hint=None):
    """Failure unless cond."""
    if not cond:
        raise Failure(why, sent, received, hint)


@check("server", "server.reply.raw-code",
       "The reply starts with one raw byte holding the result code: the value 0, 1, 2, 3 "
       "or 4 (not the ASCII digit '0')")
def s_raw_code(t):
    found, first, second = t.encoding
    sent = encode("REGISTER", "DD/MM/YYYY HH:MM:SS", t.prefix + "_encoding")
    if found is None:
        raise Failure("REGISTER of a fresh name answered %s and REGISTER of the same name "
                      "again %s: no reading of the result code (raw byte, ASCII digit, 32-bit "
                      "integer) gives 0 then 1" % (hexdump(first), hexdump(second)), sent,
                      first + b" | " + second,
                      "is the request framed as NUL-terminated fields, with the date-time "
                      "second and the user third?")
    require(found == "raw byte", "result codes come as a %s: REGISTER of a fresh name answered "
            "%s, and of the same name again %s; the spec wants the raw byte values 00 and 01. "
            "The other checks read the codes as the server sends them and judge the rest"
            % (found, hexdump(first), hexdump(second)), sent, first)
    if len(first) != 1:
        t.finding("extra-bytes", "bytes after the result code of a reply that is only a code",
                  sent, first)


@check("server", "server.framing.datetime-second",
       "The second field of every request to the index server is the client's date-time")
def s_datetime_second(t):
    name, other, dt = t.user("dt"), t.user("dt2"), now_dt()
    t.expect(0, "REGISTER", name, dt=dt,
             why="REGISTER of a fresh user name was not answered 0: does the server read "
                 "the user from the third field (the second is the date-time)?")
    t.expect(0, "REGISTER", other, dt=dt,
             why="a second fresh user name, sent with the same date-time, was refused: does "
                 "the server read the date-time (second field) as the user?")
    t.expect(1, "REGISTER", name, dt=now_dt(-1),
             why="the same user name registered twice with two different date-times was "
                 "accepted twice: the server does not read the user from the third field")
    t.expect(0, "CONNECT", name, t.endpoint())
    users, data, raw = t.list_users(name)
    require(name in users, "LIST_USERS does not list the user under its name %r" % name,
            data, raw)


@check("server", "server.register.codes",
       "REGISTER: 0 ok · 1 user name in use · 2 other error")
def s_register(t):
    name = t.user("Alice_UPPER")
    t.expect(0, "REGISTER", name)
    t.expect(1, "REGISTER", name)
    t.expect(0, "REGISTER", t.user("alice_upper"),
             why="a name differing only in case is another name: REGISTER must answer 0")
    t.expect(2, "REGISTER", "", why="an empty user name must get 2 (other error)")
    t.distinct()


@check("server", "server.unregister.codes",
       "UNREGISTER: 0 ok · 1 user does not exist · 2 other error")
def s_unregister(t):
    name = t.user("unreg")
    t.expect(1, "UNREGISTER", name)
    t.expect(0, "REGISTER", name)
    t.expect(0, "UNREGISTER", name)
    t.expect(1, "UNREGISTER", name)
    t.distinct()


@check("server", "server.connect.codes",
       "CONNECT: 0 ok · 1 user does not exist · 2 user already connected · 3 other error")
def s_connect(t):
    name = t.user("conn")
    t.expect(1, "CONNECT", name, t.endpoint())
    t.expect(0, "REGISTER", name)
    t.expect(0, "CONNECT", name, t.endpoint())
    t.expect(2, "CONNECT", name, t.endpoint())
    t.distinct()


@check("server", "server.connect.bad-port",
       "a port that is not a number in 1..65535: the server answers the operation's "
       "\"other error\" code ... and changes no state")
def s_bad_port(t):
    name = t.user("badport")
    t.expect(0, "REGISTER", name)
    for port in ("abc", "0", "65536", "-1", "99999999999"):
        t.expect(3, "CONNECT", name, port,
                 why="CONNECT with port %r must answer 3 (other error)" % port)
    t.expect(2, "LIST_USERS", name,
             why="after refused CONNECTs the user must still be not connected (LIST_USERS 2)")


@check("server", "server.connect.port-range",
       "a port that is a number in 1..65535 is accepted: low ports, 65535 and the "
       "ephemeral range included (real clients get ports from the whole range)",
       level="recommended")
def s_port_range(t):
    name = t.user("portrange")
    t.expect(0, "REGISTER", name)
    refused = []
    for port in ("1", "1023", "1024", "40000", "49152", "60999", "65535"):
        data, raw = t.send("CONNECT", name, port)
        if t.decode(raw)[0] == 0:
            t.expect(0, "DISCONNECT", name)
        else:
            refused.append(port)
    require(not refused, "CONNECT refused the valid port(s) %s" % ", ".join(refused),
            hint="a client whose system gives it one of these ports cannot connect")


@check("server", "server.disconnect.codes",
       "DISCONNECT: 0 ok · 1 user does not exist · 2 user not connected · 3 other error")
def s_disconnect(t):
    name = t.user("disc")
    t.expect(1, "DISCONNECT", name)
    t.expect(0, "REGISTER", name)
    t.expect(2, "DISCONNECT", name)
    t.expect(0, "CONNECT", name, t.endpoint())
    t.expect(0, "DISCONNECT", name)
    t.expect(2, "DISCONNECT", name)
    t.distinct()


@check("server", "server.publish.codes",
       "PUBLISH: 0 ok · 1 user does not exist · 2 user not connected · 3 content already "
       "published · 4 other error")
def s_publish(t):
    name, path = t.user("pub"), t.path("pub.txt")
    t.expect(1, "PUBLISH", name, path, "d")
    t.expect(0, "REGISTER", name)
    t.expect(2, "PUBLISH", name, path, "d")
    t.expect(0, "CONNECT", name, t.endpoint())
    t.expect(0, "PUBLISH", name, path, "a description with spaces")
    t.expect(3, "PUBLISH", name, path, "again")
    t.expect(0, "PUBLISH", name, t.path("other.txt"), "d2")
    t.expect(4, "PUBLISH", name, "relative/path.txt", "d",
             why="a relative path (the spec: a file path is absolute) must get 4")
    t.distinct()


@check("server", "server.delete.codes",
       "DELETE: 0 ok · 1 user does not exist · 2 user not connected · 3 content not "
       "published · 4 other error")
def s_delete(t):
    name, path = t.user("del"), t.path("del.txt")
    t.expect(1, "DELETE", name, path)
    t.expect(0, "REGISTER", name)
    t.expect(2, "DELETE", name, path)
    t.expect(0, "CONNECT", name, t.endpoint())
    t.expect(3, "DELETE", name, path)
    t.expect(0, "PUBLISH", name, path, "d")
    t.expect(0, "DELETE", name, path)
    t.expect(3, "DELETE", name, path)
    t.expect(0, "PUBLISH", name, path, "again",
             why="after DELETE the same path can be published again (PUBLISH 0)")
    t.distinct()


@check("server", "server.list-users.codes",
       "LIST_USERS: 0 ok · 1 user does not exist · 2 user not connected · 3 other error")
def s_list_users_codes(t):
    name = t.user("lu")
    t.expect(1, "LIST_USERS", name)
    t.expect(0, "REGISTER", name)
    t.expect(2, "LIST_USERS", name)
    t.expect(0, "CONNECT", name, t.endpoint())
    t.list_users(name)
    t.distinct()


@check("server", "server.list-users.format",
       "LIST_USERS on 0: a count, then for each connected user three strings: name, IP, "
       "port; the server takes the peer's IP address from the accepted connection")
def s_list_users_format(t):
    a = t.user("lfa")
    b = t.user("lfb")
    t.expect(0, "REGISTER", a)
    t.expect(0, "REGISTER", b)
    ips, ports = {}, {a: t.endpoint(), b: t.endpoint()}
    for name in (a, b):
        with t.connect() as s:
            ips[name] = s.getsockname()[0]
            data = encode("CONNECT", now_dt(), name, ports[name])
            s.sendall(data)
            raw = recv_all(s, t.left(), lambda r: t.whole(r, "code"))
        require(t.decode(raw)[0] == 0, "CONNECT did not answer 0", data, raw,
                diagnose_code(t, raw))
    users, data, raw = t.list_users(a)
    for name in (a, b):
        require(users.get(name) == (ips[name], ports[name]),
                "LIST_USERS lists %s as %r, expected (%r, %r): the IP the connection came "
                "from and the port sent" % (name, users.get(name), ips[name], ports[name]),
                data, raw)


@check("server", "server.list-users.only-connected",
       "LIST_USERS on 0: ... for each connected user; a user is connected from CONNECT "
       "until DISCONNECT (or UNREGISTER)")
def s_list_users_connected(t):
    viewer = t.connected("viewer")
    never = t.user("never")
    t.expect(0, "REGISTER", never)
    gone = t.connected("gone")
    t.expect(0, "DISCONNECT", gone)
    dropped = t.connected("dropped")
    t.expect(0, "UNREGISTER", dropped)
    users, data, raw = t.list_users(viewer)
    require(viewer in users, "the connected requester is not listed", data, raw)
    for name, why in ((never, "never connected"), (gone, "disconnected"),
                      (dropped, "unregistered")):
        require(name not in users, "a %s user is listed: %s" % (why, name), data, raw)


@check("server", "server.list-content.codes",
       "LIST_CONTENT: 0 ok · 1 requester does not exist · 2 requester not connected · 3 "
       "target user does not exist · 4 other error")
def s_list_content_codes(t):
    name, ghost = t.user("lc"), t.user("lcghost")
    t.expect(1, "LIST_CONTENT", name, ghost)
    t.expect(0, "REGISTER", name)
    t.expect(2, "LIST_CONTENT", name, ghost,
             why="a requester that is not connected gets 2, before the target is looked at")
    t.expect(0, "CONNECT", name, t.endpoint())
    t.expect(3, "LIST_CONTENT", name, ghost)
    t.expect(0, "PUBLISH", name, t.path("lc-marker"), "marker")
    t.list_content(name, name)
    t.distinct()


@check("server", "server.list-content.format",
       "LIST_CONTENT on 0: a count, then one string per file of the target user: its path. "
       "The target need not be connected")
def s_list_content_format(t):
    owner, viewer = t.connected("lcfo"), t.connected("lcfv")
    one = t.path("one.txt")
    t.expect(0, "PUBLISH", owner, one, "first file")
    got, data, raw = t.list_content(viewer, owner)
    require(got == [one], "LIST_CONTENT of one file must list just its path %r, got %r"
            % (one, got), data, raw)
    paths = [one, t.path("two.txt"), t.path("three.txt")]
    for p in paths[1:]:
        t.expect(0, "PUBLISH", owner, p, "more")
    t.expect(0, "DISCONNECT", owner)
    got, data, raw = t.list_content(viewer, owner)
    require(sorted(got) == sorted(paths),
            "LIST_CONTENT of a disconnected owner must list its 3 paths, got %r" % got,
            data, raw)
    fresh = t.user("lcfresh")
    t.expect(0, "REGISTER", fresh)
    data, raw = t.send("LIST_CONTENT", viewer, fresh, kind=("list", 1))
    code, rest = t.decode(raw)
    require(code == 0 and rest[:2] == b"0\0", "LIST_CONTENT of a user with no files must "
            "answer 0 and the count 0", data, raw,
            "an empty list is a list: code 0, then the count \"0\"" if code else None)


@check("server", "server.publish.per-user",
       "\"Already published\" and \"not published\" are per user: two users may publish "
       "the same path")
def s_per_user(t):
    a, b = t.connected("perusera"), t.connected("peruserb")
    path = t.path("same/path.txt")
    t.expect(0, "PUBLISH", a, path, "a's")
    t.expect(0, "PUBLISH", b, path, "b's",
             why="a second user publishing a path the first one published must get 0: "
                 "\"already published\" is per user, not global")
    t.expect(3, "DELETE", b, t.path("same/none.txt"))
    t.expect(0, "DELETE", a, path)
    got, data, raw = t.list_content(a, b)
    require(got == [path], "after the first user's DELETE, the second still has the path",
            data, raw)
    t.expect(3, "DELETE", a, path,
             why="the path is no longer published by this user: DELETE must answer 3")


@check("server", "server.files.survive-disconnect",
       "Published files stay registered while their owner is disconnected; they go away "
       "with DELETE or UNREGISTER")
def s_files_stay(t):
    owner, viewer = t.connected("fso"), t.connected("fsv")
    path = t.path("stays.txt")
    t.expect(0, "PUBLISH", owner, path, "d")
    t.expect(0, "DISCONNECT", owner)
    got, data, raw = t.list_content(viewer, owner)
    require(got == [path], "the file must still be listed after DISCONNECT", data, raw)
    t.expect(0, "CONNECT", owner, t.endpoint())
    t.expect(3, "PUBLISH", owner, path, "d",
             why="after reconnecting the path is still published: PUBLISH must answer 3")


@check("server", "server.unregister.effects",
       "A user is connected from CONNECT until DISCONNECT (or UNREGISTER); published files "
       "... go away with DELETE or UNREGISTER")
def s_unregister_effects(t):
    name, viewer = t.connected("ue"), t.connected("uev")
    path = t.path("ue.txt")
    t.expect(0, "PUBLISH", name, path, "d")
    t.expect(0, "UNREGISTER", name)
    users, data, raw = t.list_users(viewer)
    require(name not in users, "an unregistered user is still listed", data, raw)
    t.expect(3, "LIST_CONTENT", viewer, name)
    for op, fields in (("CONNECT", (name, t.endpoint())), ("DISCONNECT", (name,)),
                       ("PUBLISH", (name, t.path("x"), "d")), ("DELETE", (name, t.path("x"))),
                       ("LIST_USERS", (name,)), ("LIST_CONTENT", (name, viewer))):
        t.expect(1, op, *fields, why="after UNREGISTER, %s must answer 1" % op)
    t.expect(0, "REGISTER", name)
    t.expect(2, "LIST_USERS", name,
             why="a re-registered user starts not connected (LIST_USERS 2)")
    t.expect(0, "CONNECT", name, t.endpoint())
    t.expect(0, "PUBLISH", name, path, "d",
             why="a re-registered user starts with no files: its old path must be "
                 "publishable again (PUBLISH 0, not 3)")


@check("server", "server.connect.reconnect",
       "A user is connected from CONNECT until DISCONNECT; CONNECT sends only its port")
def s_reconnect(t):
    name = t.connected("rc")
    t.expect(0, "DISCONNECT", name)
    t.expect(2, "PUBLISH", name, t.path("rc"), "d")
    port = t.endpoint()
    t.expect(0, "CONNECT", name, port)
    users, data, raw = t.list_users(name)
    require(users.get(name, (None, None))[1] == port,
            "after DISCONNECT and CONNECT with a new port, LIST_USERS must show the new port",
            data, raw)


@check("server", "server.fields.256-bytes",
       "User names, file paths and descriptions are at most 256 bytes each (our reading: "
       "256 without the \\0 is accepted and kept whole)", level="recommended")
def s_fields_256(t):
    name = t.long_user(256)
    path = ("/" + t.prefix + "/").ljust(256, "p")
    t.expect(0, "REGISTER", name)
    t.expect(0, "CONNECT", name, t.endpoint())
    t.expect(0, "PUBLISH", name, path, "d" * 256)
    users, data, raw = t.list_users(name)
    require(name in users, "the 256-byte user name is not listed whole by LIST_USERS "
            "(truncated?)", data, raw)
    got, data, raw = t.list_content(name, name)
    require(got == [path], "LIST_CONTENT must give back the 256-byte path whole", data, raw,
            "a path cut short: is the buffer 256 bytes including the NUL?")


@check("server", "server.fields.1-byte",
       "Every request field is a byte string terminated by one \\0 byte (fields of one byte: "
       "a user name, the path \"/\", a description, travel whole; one-digit ports are "
       "server.connect.port-range's)")
def s_fields_1(t):
    name = None
    for ch in random.sample("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 20):
        data, raw = t.send("REGISTER", ch)
        code = t.decode(raw)[0]
        if code == 0:
            name = ch
            with t.lock:
                t.users.add(ch)
            break
        require(code == 1, "REGISTER of the one-byte name %r must answer 0 (or 1 if it "
                "is taken)" % ch, data, raw, diagnose_code(t, raw))
    require(name is not None, "twenty one-byte user names are all taken on this server")
    port = t.endpoint()
    t.expect(0, "CONNECT", name, port)
    t.expect(0, "PUBLISH", name, "/", "d")
    users, data, raw = t.list_users(name)
    require(users.get(name, (None, None))[1] == port,
            "LIST_USERS must list the one-byte name with its port", data, raw)
    got, data, raw = t.list_content(name, name)
    require(got == ["/"], "LIST_CONTENT must give back the one-byte path \"/\"", data, raw)


@check("server", "server.fields.257-refused",
       "a field over 256 bytes: answered with the operation's \"other error\" code, nothing "
       "stored, nothing truncated (our reading: the statement sets the limit, not the answer)",
       level="recommended")
def s_fields_257(t):
    name = t.long_user(257)
    t.expect(2, "REGISTER", name)
    t.expect(1, "UNREGISTER", name[:256],
             why="after a refused 257-byte REGISTER, its 256-byte prefix must not exist "
                 "(silent truncation)")
    owner = t.owner("f257")
    long_path = ("/" + t.prefix + "/").ljust(257, "p")
    for code, op, fields in (
            (2, "UNREGISTER", (name,)), (3, "CONNECT", (t.long_user(257, "c"), t.endpoint())),
            (3, "DISCONNECT", (name,)), (4, "PUBLISH", (owner, long_path, "d")),
            (4, "PUBLISH", (owner, t.path("desc"), "d" * 257)),
            (4, "DELETE", (owner, long_path)), (3, "LIST_USERS", (name,)),
            (4, "LIST_CONTENT", (owner, name))):
        t.expect(code, op, *fields, why="%s with a 257-byte field must answer %d (other "
                 "error)" % (op, code))
    got, data, raw = t.list_content(owner, owner)
    require(got == [t.path("f257-marker")], "refused PUBLISHes must store nothing", data, raw)


@check("server", "server.fields.empty-description",
       "a description may contain spaces (our reading: an empty description is a "
       "description: PUBLISH answers 0 and the file is listed)", level="recommended")
def s_empty_description(t):
    owner = t.owner("emptydesc")
    path = t.path("emptydesc.txt")
    t.expect(0, "PUBLISH", owner, path, "",
             why="PUBLISH with an empty description must answer 0 (a description may be "
                 "empty: the statement sets no lower limit)")
    got, data, raw = t.list_content(owner, owner)
    require(sorted(got) == sorted([t.path("emptydesc-marker"), path]),
            "the file published with an empty description is not listed", data, raw)


def snapshot(t, viewer, owner):
    """What the protocol shows of a user with a marker file: its files and whether
    it is listed."""
    files, _, _ = t.list_content(viewer, owner)
    users, _, _ = t.list_users(viewer)
    return sorted(files), owner in users


@check("server", "server.request.missing-field",
       "a missing field: the server answers the operation's \"other error\" code, keeps "
       "running, and changes no state")
def s_missing_field(t):
    owner = t.owner("mf")
    other = t.user("mfnew")
    before = snapshot(t, owner, owner)
    for fields, code in ((("REGISTER", now_dt()), 2), (("CONNECT", now_dt(), other), 3),
                         (("PUBLISH", now_dt(), owner, t.path("mf")), 4),
                         (("DELETE", now_dt(), owner), 4),
                         (("LIST_CONTENT", now_dt(), owner), 4)):
        data = encode(*fields)
        raw = t.exchange(data, shut_wr=True, kind="code")
        require(t.decode(raw)[0] == code,
                "%s with a field missing (then the write side closed) must answer %d"
                % (fields[0], code), data, raw, diagnose_code(t, raw))
    data = encode("REGISTER", now_dt()) + other.encode()
    raw = t.exchange(data, shut_wr=True, kind="code")
    require(t.decode(raw)[0] == 2, "a last field without its NUL is missing: REGISTER must "
            "answer 2", data, raw, diagnose_code(t, raw))
    t.expect(1, "UNREGISTER", other, why="the unterminated name must not be registered")
    require(snapshot(t, owner, owner) == before, "the refused requests changed the state")


@check("server", "server.request.unknown-operation",
       "Any operation name the server does not know: ... keeps running")
def s_unknown_op(t):
    for data in (encode("HELLO", now_dt(), "x"), encode("REGISTERX", now_dt(), t.user("unk")),
                 b"\xff\xfe\x00garbage\x00"):
        # Whatever it answers, or if it holds the connection (that is
        # server.request.unknown-closed's to judge): a short wait, then on.
        until = t.until
        t.until = time.monotonic() + min(2.0, t.left())
        try:
            t.exchange(data, shut_wr=True)
        except Failure:
            pass
        finally:
            t.until = until
    t.expect(0, "REGISTER", t.user("afterunk"),
             why="after unknown operations the server must keep serving")


@check("server", "server.request.unknown-closed",
       "Any operation name the server does not know: ... (or closes the connection for an "
       "unknown operation): our reading, closed without a reply", level="recommended")
def s_unknown_closed(t):
    for data in (encode("HELLO", now_dt(), "x"), b"\xff\xfe\x00garbage\x00"):
        raw = t.exchange(data, shut_wr=True)
        require(raw == b"", "an unknown operation is best closed without a reply (a "
                "classic client's extension probe then knows where it stands)", data, raw)


@check("server", "server.request.byte-at-a-time",
       "TCP ... Every request field is a byte string terminated by one \\0 byte (a request "
       "may arrive in any number of pieces)")
def s_byte_at_a_time(t):
    name = t.user("bytes")
    data = encode("REGISTER", now_dt(), name)
    with t.connect() as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for n, b in enumerate(data):
            try:
                s.sendall(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                early = recv_all(s, t.left())
                raise Failure("the server answered %s and closed after %d of the %d bytes "
                              "of a REGISTER sent one byte at a time" % (hexdump(early), n,
                                                                         len(data)),
                              data[:n], early, "does the server parse after a single recv()?")
            time.sleep(0.002)
        raw = recv_all(s, t.left(), lambda r: t.whole(r, "code"))
    require(t.decode(raw)[0] == 0, "a REGISTER sent one byte at a time must answer 0", data,
            raw, diagnose_code(t, raw) or "does the server parse after a single recv()?")
    t.expect(1, "REGISTER", name, why="the byte-at-a-time REGISTER did not register the user")


@check("server", "server.request.half-sent",
       "a connection that closes ... mid-request: the server ... keeps running, and changes "
       "no state")
def s_half_sent(t):
    owner = t.owner("half")
    before = snapshot(t, owner, owner)
    data = encode("PUBLISH", now_dt(), owner, t.path("half.txt"), "d")
    for cut in (3, 9, 12, len(data) - len(t.path("half.txt")) - 5, len(data) - 1):
        with t.connect() as s:
            s.sendall(data[:cut])
    after = snapshot(t, owner, owner)
    require(after == before, "connections closed mid-PUBLISH changed the file list: %r -> %r"
            % (before, after), data)
    t.expect(0, "PUBLISH", owner, t.path("half.txt"), "d",
             why="the path must still be publishable (none of the cut requests stored it)")


@check("server", "server.request.stall-others-served",
       "a connection that ... stalls mid-request: the server ... keeps running (other "
       "clients are served meanwhile)")
def s_stall(t):
    owner = t.owner("stall")
    stalled = []
    try:
        for cut in (b"REG", b"REGISTER\0", encode("PUBLISH", now_dt(), owner) + b"/sta"):
            s = t.connect()
            s.sendall(cut)
            stalled.append(s)
        time.sleep(0.1)
        start = time.monotonic()
        name = t.user("prompt")
        t.expect(0, "REGISTER", name)
        waited = time.monotonic() - start
        require(waited < 5.0, "a REGISTER took %.1f s while 3 clients stalled mid-request"
                % waited, hint="one connection served at a time, or a lock held while "
                "reading a request")
    finally:
        for s in stalled:
            s.close()
    files, data, raw = t.list_content(owner, owner)
    require(files == [t.path("stall-marker")], "the stalled PUBLISH stored a file", data, raw)


@check("server", "server.concurrency.same-name",
       "REGISTER: 0 ok · 1 user name in use (16 clients at once, one name: exactly one 0)")
def s_concurrent_same(t):
    name = t.user("race")
    t.encoding                  # found before the clients start
    data = encode("REGISTER", now_dt(), name)
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda _: t.exchange(data, kind="code"), range(16)))
    codes = [t.decode(r)[0] for r in replies]
    require(codes.count(0) == 1 and codes.count(1) == 15,
            "16 simultaneous REGISTERs of one name gave %d x 0 and %d x 1 (others: %r)"
            % (codes.count(0), codes.count(1), [r for r, c in zip(replies, codes)
                                                if c not in (0, 1)]), data)


@check("server", "server.concurrency.many-users",
       "A user is connected from CONNECT until DISCONNECT (16 clients at once, each "
       "registering, connecting and publishing; all are listed)")
def s_concurrent_many(t):
    t.encoding                  # found before the clients start
    ports = [t.endpoint() for _ in range(16)]

    def life(i):
        """One user's registration, connection and publication."""
        name = t.user("many%02d" % i)
        t.expect(0, "REGISTER", name)
        t.expect(0, "CONNECT", name, ports[i])
        t.expect(0, "PUBLISH", name, t.path("shared.txt"), "same path for all")
        return name
    with ThreadPoolExecutor(16) as pool:
        names = list(pool.map(life, range(16)))
    users, data, raw = t.list_users(names[0])
    for i, name in enumerate(names):
        require(users.get(name, (None, None))[1] == ports[i],
                "%s is not listed with its port %s after concurrent CONNECTs"
                % (name, ports[i]), data, raw)
    for name in names:
        got, data, raw = t.list_content(names[0], name)
        require(got == [t.path("shared.txt")], "%s's file is not listed" % name, data, raw)


@check("server", "server.framing.exact-replies",
       "One connection per operation: the reply (the code, then exactly the strings it "
       "announces) and then the close; nothing more (what the other checks saw, and one "
       "round of each reply read to the close)", level="recommended")
def s_exact_replies(t):
    owner = t.owner("exact")
    for op, fields, kind in (("REGISTER", (t.user("exactnew"),), "code"),
                             ("LIST_USERS", (owner,), ("list", 3)),
                             ("LIST_CONTENT", (owner, owner), ("list", 1))):
        data = encode(op, now_dt(), *fields)
        raw = t.exchange(data, kind=kind)
        code, rest = t.decode(raw)
        if code == 0 and kind != "code":
            parsed = parse_list(rest, kind[1])
            if parsed is None:
                t.finding("list-short", "a list reply that stops before the strings it "
                          "announces, or a missing NUL", data, raw)
            elif parsed[2]:
                t.finding("list-extra-bytes", "bytes after the last string of a list", data,
                          raw)
        elif rest:
            t.finding("extra-bytes", "bytes after the result code of a reply that is only a "
                      "code", data, raw)
    with t.lock:
        findings = sorted(t.findings.items())
    if findings:
        key, (why, sent, received) = findings[0]
        raise Failure("%d framing deviation(s): %s" % (len(findings), "; ".join(
            f[1][0] for f in findings)), sent, received,
            "each is one finding here; the other checks read past it and judged the rest")


# --- target: peer ------------------------------------------------------------------

# --- extension group: SEARCH (skipped when EXTENSIONS does not list it) ---------------

def search_lab(t, label):
    """An owner with two files under words unique to this run, and a requester."""
    owner, viewer = t.connected(label + "_own"), t.connected(label + "_see")
    notes = t.path(label + "/Lecture-Notes.pdf")
    lab = t.path(label + "/lab2.txt")
    t.expect(0, "PUBLISH", owner, notes, "Week 3: routing")
    t.expect(0, "PUBLISH", owner, lab, "lecture sheet")
    return owner, viewer, notes, lab


@check("server", "server.search.codes",
       "SEARCH: 0 ok · 1 requester does not exist · 2 requester not connected · 4 other "
       "error (a query with no word or over 256 bytes, a maximum not empty or 1..1000)",
       level="recommended", group="SEARCH")
def s_search_codes(t):
    viewer = t.connected("sc_see")
    t.expect(1, "SEARCH", t.user("sc_ghost"), "x", "")
    idle = t.user("sc_idle")
    t.expect(0, "REGISTER", idle)
    t.expect(2, "SEARCH", idle, "x", "")
    for query, maximum in (("", ""), (" -./ ", ""), ("x" * 257, ""), ("x", "0"),
                           ("x", "1001"), ("x", "abc")):
        t.expect(4, "SEARCH", viewer, query, maximum)
    t.search(viewer, "x", "1000")


@check("server", "server.search.match",
       "SEARCH: a file matches when every query word starts a word of its path or "
       "description, ASCII case aside; oldest first; owner, path and description per match",
       level="recommended", group="SEARCH")
def s_search_match(t):
    owner, viewer, notes, lab = search_lab(t, "sm")
    run = t.prefix
    cases = [("%s lect" % run, [notes, lab]), ("%s LECTURE notes" % run, [notes]),
             ("%s routing week" % run, [notes]), ("%s sheet" % run, [lab]),
             ("%s ecture" % run, []), ("%s lab2 txt" % run, [lab])]
    for query, want in cases:
        found, data, raw = t.search(viewer, query)
        got = [p for o, p, d in found if p.startswith(t.path("sm/"))]
        require(got == want, "SEARCH %r found %r; the spec wants %r" % (query, got, want),
                data, raw)
    found, data, raw = t.search(viewer, "%s sheet" % run)
    require(found == [(owner, lab, "lecture sheet")], "a match must carry the owner's name, "
            "the path and the description", data, raw)


@check("server", "server.search.connected-only",
       "SEARCH lists only files of connected owners; DELETE and DISCONNECT remove a match at "
       "once, CONNECT brings the owner's files back",
       level="recommended", group="SEARCH")
def s_search_connected(t):
    owner, viewer, notes, lab = search_lab(t, "so")
    query = "%s so lect" % t.prefix

    def paths():
        found, data, raw = t.search(viewer, query)
        return [p for _, p, _ in found], data, raw
    t.expect(0, "DISCONNECT", owner)
    got, data, raw = paths()
    require(got == [], "files of a disconnected owner were listed", data, raw)
    t.expect(0, "CONNECT", owner, t.endpoint())
    got, data, raw = paths()
    require(sorted(got) == sorted([notes, lab]), "after CONNECT the owner's files must be "
            "found again", data, raw)
    t.expect(0, "DELETE", owner, lab)
    got, data, raw = paths()
    require(got == [notes], "a deleted file was still found", data, raw)


@check("server", "server.search.maximum",
       "SEARCH: at most `maximum` matches (empty: 100), the first ones in the stated order",
       level="recommended", group="SEARCH")
def s_search_maximum(t):
    owner, viewer = t.connected("sx_own"), t.connected("sx_see")
    for i in range(3):
        t.expect(0, "PUBLISH", owner, t.path("sx/f%d" % i), "capped")
    query = "%s capped" % t.prefix
    found, data, raw = t.search(viewer, query, "2")
    require([p for _, p, _ in found] == [t.path("sx/f0"), t.path("sx/f1")],
            "maximum 2 must give the two oldest matches", data, raw)
    found, data, raw = t.search(viewer, query, "")
    require(len(found) == 3, "an empty maximum must allow 100 matches", data, raw)


class PeerTarget:
    """A connected client's file server, and the path of a file its user published."""

    def __init__(self, host, port, path, timeout):
        self.addr = (host, port)
        self.path = path
        self.timeout = timeout
        self.serves = None          # True, or the Failure of GET_FILE of self.path

    def get(self, remote, pieces=False):
        """(request, reply) of GET_FILE for `remote` (bytes or str)."""
        data = encode("GET_FILE", remote)
        with socket.create_connection(self.addr, timeout=self.timeout) as s:
            if pieces:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for b in data:
                    s.sendall(bytes([b]))
                    time.sleep(0.002)
            else:
                s.sendall(data)
            return data, recv_all(s, self.timeout)

    def expect_file(self, pieces=False):
        """GET_FILE of the published path must send 0, the size, those bytes, close."""
        data, raw = self.get(self.path, pieces)
        require(raw[:1] == b"\x00", "GET_FILE of the published file must answer 0", data,
                raw, diagnose(b"\x00", raw))
        end = raw.find(b"\0", 1)
        require(end > 1 and raw[1:end].isdigit(),
                "after the 0, the size must come as decimal text and a NUL", data, raw)
        size = int(raw[1:end])
        body = raw[end + 1:]
        require(len(body) == size, "the size says %d bytes but %d arrived before the close"
                % (size, len(body)), data, raw)
        if os.path.isfile(self.path):
            try:
                with open(self.path, "rb") as f:
                    local = f.read()
            except OSError:
                local = None
            require(local is None or local == body,
                    "the bytes served differ from the file at %s on this machine" % self.path,
                    data, raw)
        return body

    def expect_refused(self, remote, allowed, why):
        """A single code byte from `allowed`, then the close.  A refusal proves
        something only from a peer that serves its published file: checked
        first (once), so that a peer refusing everything fails here too."""
        if self.serves is None:
            try:
                self.expect_file()
                self.serves = True
            except Failure as f:
                self.serves = f
        if self.serves is not True:
            raise Failure("the peer does not serve its published file %s either (%s), so its "
                          "refusal here proves nothing" % (self.path, self.serves.why),
                          self.serves.sent, self.serves.received)
        data, raw = self.get(remote)
        require(len(raw) == 1 and raw[0] in allowed, why, data, raw,
                diagnose(bytes([allowed[0]]), raw))


@check("peer", "peer.get-file.published",
       "GET_FILE: one byte 0 file follows; on 0, the size in bytes as decimal text \\0, then "
       "exactly that many raw bytes, then the connection is closed")
def p_published(t):
    t.expect_file()


@check("peer", "peer.get-file.in-pieces",
       "Every request field is a byte string terminated by one \\0 byte (a GET_FILE sent "
       "one byte at a time is served the same)")
def p_pieces(t):
    t.expect_file(pieces=True)


@check("peer", "peer.get-file.not-exist",
       "GET_FILE: 1 file does not exist")
def p_not_exist(t):
    t.expect_refused(t.path + ".conformance-no-such-file", (1,),
                     "GET_FILE of a path that does not exist must answer the single byte 1")


@check("peer", "peer.get-file.unpublished",
       "Each connected client ... serves the files that its user has published (our "
       "reading: an existing file that was not published, or a directory, is refused with 1 "
       "or 2, never served)", level="recommended")
def p_unpublished(t):
    candidates = ["/etc/passwd", "/etc/hostname", os.path.dirname(t.path) or "/"]
    for remote in candidates:
        t.expect_refused(remote, (1, 2), "GET_FILE of %s, which was not published, must be "
                         "refused (1 or 2), not served" % remote)


@check("peer", "peer.get-file.relative-path",
       "A file path is absolute: a relative path is not a published file (1 or 2, never 0)")
def p_relative(t):
    base = os.path.basename(t.path)
    for remote in (base, "./" + base, "../" + base, base.encode() + b"/.."):
        t.expect_refused(remote, (1, 2), "GET_FILE of the relative path %r must be refused "
                         "with 1 (or 2)" % remote)


@check("peer", "peer.get-file.long-path",
       "file paths ... are at most 256 bytes: a longer one is refused (1 or 2) and the peer "
       "keeps serving")
def p_long(t):
    t.expect_refused("/" + "a" * 300, (1, 2),
                     "GET_FILE of a 301-byte path must be refused with 2 (or 1)")
    t.expect_file()


# --- target: client ----------------------------------------------------------------

DEFAULT_REPLY = {"LIST_USERS": b"\x000\x00", "LIST_CONTENT": b"\x000\x00"}


class Request:
    """A request the client sent to the scripted server (or the built-in peer);
    for CONNECT, whether its port accepted connections when the request came."""

    def __init__(self, step, raw):
        self.step, self.raw = step, raw
        self.listening = None
        self.fields = raw.split(b"\0")[:-1] if raw.endswith(b"\0") else raw.split(b"\0")
        self.op = self.fields[0].decode("ascii", "replace") if self.fields else ""


def port_open(port):
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def read_request(conn, timeout, count_of):
    """Read one request: fields until the operation's count, a close, or the timeout."""
    data = b""
    conn.settimeout(timeout)
    while True:
        fields = data.split(b"\0")
        if len(fields) > 1:
            need = count_of(fields[0].decode("ascii", "replace"))
            if need is not None and len(fields) - 1 >= need:
                return data
        try:
            chunk = conn.recv(4096)
        except (socket.timeout, OSError):
            return data
        if not chunk:
            return data
        data += chunk


class ScriptedServer:
    """An index server stand-in: answers each operation with the bytes the check set
    for it, and records every request with the step it came in."""

    def __init__(self, timeout):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.timeout = timeout
        self.lock = threading.Lock()    # guards requests, replies and step
        self.requests = []
        self.replies = {}
        self.step = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        """Accept connections; each is served in its own thread."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        """Read one request, record it with the current step, send the scripted reply."""
        with conn:
            raw = read_request(conn, self.timeout, FIELDS.get)
            req = Request(0, raw)
            if req.op == "CONNECT" and len(req.fields) >= 4 and req.fields[3].isdigit():
                req.listening = port_open(int(req.fields[3]))
            with self.lock:
                req.step = self.step
                self.requests.append(req)
                reply = self.replies.get(req.op, DEFAULT_REPLY.get(req.op, b"\x00"))
            if req.op not in FIELDS:
                return
            try:
                conn.sendall(reply)
            except OSError:
                pass

    def set(self, step, replies):
        """Begin a step: the replies (by operation) that its requests get."""
        with self.lock:
            self.step = step
            self.replies = dict(replies)

    def close(self):
        """Stop listening."""
        self.sock.close()


class ScriptedPeer(ScriptedServer):
    """A peer stand-in: answers GET_FILE with the bytes the check set."""

    def _serve(self, conn):
        """Read one GET_FILE request, record it, send the scripted bytes, close."""
        with conn:
            raw = read_request(conn, self.timeout, lambda op: 2 if op == "GET_FILE" else None)
            req = Request(0, raw)
            with self.lock:
                req.step = self.step
                self.requests.append(req)
                reply = self.replies.get("GET_FILE", b"\x02")
            try:
                conn.sendall(reply)
                time.sleep(0.05)
            except OSError:
                pass


ANSI_RX = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[=>])")


class ClientRun:
    """One client process against a scripted server (and a scripted peer)."""

    def __init__(self, target):
        self.t = target
        self.server = ScriptedServer(target.timeout)
        self.peer = ScriptedPeer(target.timeout)
        self.dir = tempfile.mkdtemp(prefix="conform-")
        self.lines = []
        self.sent = []
        self.cond = threading.Condition()
        self.step_no = 0
        self.reader_done = False
        self.master = None
        try:
            self._start(target)
        except BaseException:
            self.server.close()
            self.peer.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _start(self, target):
        """Start the client on a pipe or a terminal, and the threads reading its output."""
        argv = target.argv("127.0.0.1", self.server.port)
        # A home of its own: what the client keeps (history, records of what it
        # published to this scripted server) goes away with the run.
        env = dict(os.environ, HOME=self.dir, XDG_CONFIG_HOME=os.path.join(self.dir, ".config"))
        if target.pty:
            import pty
            import termios
            self.master, slave = pty.openpty()
            self.master_file = os.fdopen(self.master, "rb", buffering=0)
            try:
                attrs = termios.tcgetattr(slave)
                attrs[3] &= ~termios.ECHO
                termios.tcsetattr(slave, termios.TCSANOW, attrs)
                env.update(TERM="dumb")
                self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave,
                                             stderr=subprocess.PIPE, env=env,
                                             start_new_session=True)
            except BaseException:
                self.master_file.close()
                raise
            finally:
                os.close(slave)
            out = self.master_file
        else:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env)
            out = self.proc.stdout
        self.err = []
        self.readers = [threading.Thread(target=self._read, args=(out,), daemon=True),
                        threading.Thread(target=self._read_err, daemon=True)]
        for r in self.readers:
            r.start()

    def _read(self, stream):
        """Collect the client's output lines until it closes its side."""
        buf = b""
        while True:
            try:
                chunk = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
            except OSError:             # pty closed by the child's exit
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self._add(line)
        if buf:
            self._add(buf)              # a last line without its newline (a prompt)
        with self.cond:
            self.reader_done = True
            self.cond.notify_all()

    def _add(self, line):
        """One output line, without terminal escapes and carriage returns."""
        text = ANSI_RX.sub("", line.decode("utf-8", "replace")).replace("\r", "")
        with self.cond:
            self.lines.append(text)
            self.cond.notify_all()

    def _read_err(self):
        """Keep the client's stderr, for the failure reports."""
        for line in iter(self.proc.stderr.readline, b""):
            self.err.append(line.decode("utf-8", "replace").rstrip("\n"))

    def relevant(self):
        """Output lines that carry results: prompts stripped, blank and echoed lines left
        out, and so are the lines before the first result line (a banner, a greeting:
        chatter, noted once in the report and not judged)."""
        out = []
        lines = self.lines
        first = next((i for i, l in enumerate(lines) if is_result_line(l)), len(lines))
        if first and self.t.chatter is None and first < len(lines):
            self.t.chatter = lines[:first]
        for line in lines[first:]:
            body = strip_prompt(line)
            if not body.strip():
                continue
            if self.t.pty and body.strip() in self.sent:
                continue                # the terminal's echo of a command
            out.append(line)
        return out

    def send(self, command):
        """Type one command line into the client."""
        self.sent.append(command)
        data = (command + "\n").encode()
        try:
            if self.master is not None:
                os.write(self.master, data)
            else:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
        except OSError as e:
            raise Failure("cannot send `%s` to the client (%s): it exited with status %s%s"
                          % (command, e, self.proc.poll(), self.stderr_note()))

    def step(self, command, expect, replies=None, peer=None, skip=()):
        """Send one command with the scripted answers; its output lines must be
        `expect` (result lines as the spec prints them; detail lines start with a tab).
        Lines matching one of `skip` are allowed in between and not counted."""
        self.step_no += 1
        self.server.set(self.step_no, replies or {})
        self.peer.set(self.step_no, {"GET_FILE": peer} if peer is not None else {})
        before = len(self.relevant())

        def new_lines():
            """Output lines since the command was sent, `skip` lines left out."""
            return [l for l in self.relevant()[before:]
                    if not any(line_matches(s, l) for s in skip)]
        self.send(command)
        deadline = time.monotonic() + self.t.timeout
        with self.cond:
            while len(new_lines()) < len(expect):
                left = deadline - time.monotonic()
                if left <= 0 or self.reader_done:
                    raise Failure("`%s`: expected %d line(s) %r, got %r %s%s"
                                  % (command, len(expect), expect, new_lines(),
                                     "before the client's output ended" if self.reader_done
                                     else "within %.0f s" % self.t.timeout,
                                     self.stderr_note()),
                                  sent=self.answer_note(replies, peer),
                                  received="output lines %r" % new_lines())
                self.cond.wait(min(left, 0.1))
            got = new_lines()[:len(expect)]
        for want, line in zip(expect, got):
            if not line_matches(want, line):
                raise Failure("`%s`: expected the line %r, got %r%s"
                              % (command, want, line, self.stderr_note()),
                              sent=self.answer_note(replies, peer),
                              received="output lines %r" % got,
                              hint=line_hint(want, line))
        return got

    def answer_note(self, replies, peer):
        """What the client sent in this step and what the scripted server (and peer)
        answered, for the report."""
        with self.server.lock:
            sent = [readable(r.raw) for r in self.server.requests if r.step == self.step_no]
        with self.peer.lock:
            sent += ["to the peer: " + readable(r.raw) for r in self.peer.requests
                     if r.step == self.step_no]
        notes = ["%s -> %s" % (op, hexdump(raw)) for op, raw in sorted((replies or {}).items())]
        if peer is not None:
            notes.append("peer GET_FILE -> %s" % hexdump(peer, 32))
        return "the client sent %s; scripted answers: %s" % (
            " | ".join(sent) if sent else "nothing", "; ".join(notes) if notes else "defaults")

    def stderr_note(self):
        """The client's last stderr lines, for a failure report."""
        return (" (client stderr: %r)" % self.err[-3:]) if self.err else ""

    def requests(self, op, step=None, peer=False):
        """The requests of this operation sent in this step (default: the last)."""
        step = self.step_no if step is None else step
        src = self.peer if peer else self.server
        with src.lock:
            return [r for r in src.requests if r.step == step and r.op == op]

    def expect_request(self, op, *fields, step=None):
        """Exactly one `op` request in the step, framed as op, date-time, fields."""
        reqs = self.requests(op, step)
        if len(reqs) != 1:
            others = [r.raw for r in self.server.requests if r.step == (step or self.step_no)]
            raise Failure("expected one %s request for this command, the server got %d"
                          % (op, len(reqs)),
                          received=b" | ".join(others) if others else None)
        req = reqs[0]
        require_datetime(req, fields)
        want = encode(op, req.fields[1], *fields)
        if req.raw != want:
            raise Failure("%s request bytes differ; expected %s" % (op, hexdump(want)),
                          sent=want, received=req.raw)
        return req

    def listening(self, port):
        """True when something accepts TCP connections on 127.0.0.1:port."""
        return port_open(port)

    def close(self):
        """End of input, then wait; stop the client by PID if it will not exit."""
        try:
            self._end_input()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            for r in self.readers:
                r.join(2)
        finally:
            if self.master is not None:
                self.master_file.close()    # the one owner of the descriptor: closed once
            self.server.close()
            self.peer.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _end_input(self):
        """Close the pipe, or type ^D (then QUIT, as ^D can be lost) on the terminal."""
        try:
            if self.master is None:
                self.proc.stdin.close()
                return
            os.write(self.master, b"\x04")
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                os.write(self.master, b"QUIT\n")
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


RESULT_WORDS = ("REGISTER", "UNREGISTER", "USERNAME", "USER", "CONNECT", "DISCONNECT",
                "PUBLISH", "DELETE", "LIST_USERS", "LIST_CONTENT", "GET_FILE")


def is_result_line(line):
    """A line that starts with the prompt, or with a word of the spec's result lines
    (a result printed without its prompt is judged, not taken for chatter)."""
    return line.startswith("c>") or line.split(" ", 1)[0].rstrip(",") in RESULT_WORDS


def strip_prompt(line):
    """A line without its leading `c> ` prompts (a client may print its prompt before
    each result when its input is a pipe)."""
    body = line
    while body.startswith("c> ") or body.startswith("c>\t"):
        body = body[3:]
    return body


def line_matches(want, line):
    """A result line: `c> ` then the message exactly (extra prompts allowed); a detail
    line: indented, then the same words."""
    if want.startswith("\t"):
        return line[:1] in (" ", "\t") and line.split() == want.split()
    return line.startswith("c> ") and strip_prompt(line).rstrip() == want[3:]


def line_hint(want, line):
    """The usual reason a console line differs."""
    body = strip_prompt(line).rstrip()
    if want.startswith("\t"):
        if line[:1] not in (" ", "\t"):
            return "the lines of a listing are indented (a tab or spaces)"
        return "a listing line holds the fields separated by blanks"
    if not line.startswith("c>"):
        return "result lines start with the prompt `c> `"
    if body.replace(" ,", ",") == want[3:] or body.replace(",", "") == want[3:].replace(",", ""):
        return "punctuation differs: the spec writes `FAIL, REASON` (comma right after FAIL)"
    if body.upper() == want[3:]:
        return "the spec's lines are upper case"
    return None


class ClientTarget:
    """A client program started as COMMAND (with {host} and {port}, or -s/-p appended)."""

    def __init__(self, command, pty, timeout):
        self.command = command
        self.pty = pty
        self.timeout = timeout
        self.file = None
        self.chatter = None         # lines a client printed before its first result

    def argv(self, host, port):
        """The client's command line for a server at host:port."""
        if "{port}" in self.command:
            return shlex.split(self.command.replace("{host}", host).replace("{port}", str(port)))
        return shlex.split(self.command) + ["-s", host, "-p", str(port)]

    def run(self):
        """A client run for one check (use it in a with statement)."""
        return ClientRun(self)


def require_datetime(req, fields):
    """The request's second field must be a date-time (Failure showing the framing)."""
    if len(req.fields) < 2 or not DT_RX.match(req.fields[1]):
        want = encode(req.op, "DD/MM/YYYY HH:MM:SS", *fields)
        raise Failure("the second field of %s must be the date-time DD/MM/YYYY HH:MM:SS; "
                      "expected like %s" % (req.op, readable(want)), received=req.raw,
                      hint="date-time sent last or in another format?")


def connect(c, user="alice"):
    """CONNECT the client's user; returns the listening port it sent."""
    c.step("CONNECT %s" % user, ["c> CONNECT OK"], {"CONNECT": b"\x00"})
    req = c.requests("CONNECT")
    require(len(req) == 1, "expected one CONNECT request, the server got %d" % len(req))
    require_datetime(req[0], (user, "PORT"))
    require(len(req[0].fields) == 4, "CONNECT must have 4 fields: CONNECT, date-time, user, "
            "port", received=req[0].raw)
    port = req[0].fields[3]
    require(port.isdigit() and 1 <= int(port) <= 65535,
            "CONNECT's port field must be decimal text 1..65535", received=req[0].raw)
    return int(port)


@check("client", "client.register",
       "REGISTER, date-time, user · `c> REGISTER OK` · `c> USERNAME IN USE` · "
       "`c> REGISTER FAIL`")
def c_register(t):
    with t.run() as c:
        c.step("REGISTER alice", ["c> REGISTER OK"], {"REGISTER": b"\x00"})
        c.expect_request("REGISTER", "alice")
        c.step("REGISTER alice", ["c> USERNAME IN USE"], {"REGISTER": b"\x01"})
        c.step("REGISTER Bob_Upper", ["c> REGISTER FAIL"], {"REGISTER": b"\x02"})
        c.expect_request("REGISTER", "Bob_Upper")


@check("client", "client.unregister",
       "UNREGISTER, date-time, user · `c> UNREGISTER OK` · `c> USER DOES NOT EXIST` · "
       "`c> UNREGISTER FAIL`")
def c_unregister(t):
    with t.run() as c:
        c.step("UNREGISTER alice", ["c> UNREGISTER OK"], {"UNREGISTER": b"\x00"})
        c.expect_request("UNREGISTER", "alice")
        c.step("UNREGISTER alice", ["c> USER DOES NOT EXIST"], {"UNREGISTER": b"\x01"})
        c.step("UNREGISTER alice", ["c> UNREGISTER FAIL"], {"UNREGISTER": b"\x02"})


@check("client", "client.connect",
       "the client opens a listening socket first and sends only its port: CONNECT, "
       "date-time, user, listening port · `c> CONNECT OK` · `c> CONNECT FAIL, USER "
       "DOES NOT EXIST` · `c> USER ALREADY CONNECTED` · `c> CONNECT FAIL`")
def c_connect(t):
    with t.run() as c:
        for code, line in ((1, "c> CONNECT FAIL, USER DOES NOT EXIST"),
                           (2, "c> USER ALREADY CONNECTED"), (3, "c> CONNECT FAIL")):
            c.step("CONNECT alice", [line], {"CONNECT": bytes([code])})
        port = connect(c)
        req = c.expect_request("CONNECT", "alice", str(port))
        require(req.listening, "when the CONNECT request arrived nothing listened on port %d: "
                "the client opens a listening socket first and sends only its port" % port,
                received=req.raw)
        require(c.listening(port), "after `c> CONNECT OK` nothing listens on the port %d the "
                "client sent (the client opens a listening socket first)" % port)


@check("client", "client.disconnect",
       "DISCONNECT, date-time, user · `c> DISCONNECT OK` · `c> DISCONNECT FAIL, USER DOES NOT "
       "EXIST` · `c> DISCONNECT FAIL, USER NOT CONNECTED` · `c> DISCONNECT FAIL`")
def c_disconnect(t):
    with t.run() as c:
        for code, line in ((1, "c> DISCONNECT FAIL, USER DOES NOT EXIST"),
                           (2, "c> DISCONNECT FAIL, USER NOT CONNECTED"),
                           (3, "c> DISCONNECT FAIL"), (0, "c> DISCONNECT OK")):
            connect(c)
            c.step("DISCONNECT alice", [line], {"DISCONNECT": bytes([code])})
            c.expect_request("DISCONNECT", "alice")


@check("client", "client.disconnect.listener",
       "DISCONNECT: ... (the client stops its listener in every case)")
def c_listener(t):
    with t.run() as c:
        for code, line in ((0, "c> DISCONNECT OK"), (3, "c> DISCONNECT FAIL"),
                           (2, "c> DISCONNECT FAIL, USER NOT CONNECTED")):
            port = connect(c)
            require(c.listening(port), "after `c> CONNECT OK` nothing listens on port %d"
                    % port)
            c.step("DISCONNECT alice", [line], {"DISCONNECT": bytes([code])})
            deadline = time.monotonic() + 2
            while c.listening(port) and time.monotonic() < deadline:
                time.sleep(0.05)
            require(not c.listening(port), "after DISCONNECT answered %d the client still "
                    "accepts connections on port %d" % (code, port))


@check("client", "client.publish",
       "PUBLISH, date-time, user, file path, description · `c> PUBLISH OK` · `c> PUBLISH "
       "FAIL, USER DOES NOT EXIST` · `... USER NOT CONNECTED` · `... CONTENT ALREADY "
       "PUBLISHED` · `c> PUBLISH FAIL`")
def c_publish(t):
    with t.run() as c:
        path = os.path.join(c.dir, "notes.txt")
        with open(path, "w") as f:
            f.write("notes\n")
        connect(c)
        c.step("PUBLISH %s lecture notes  2" % path, ["c> PUBLISH OK"], {"PUBLISH": b"\x00"})
        req = c.requests("PUBLISH")
        require(len(req) == 1 and req[0].fields[2:4] == [b"alice", path.encode()],
                "PUBLISH must send the connected user and the absolute path",
                received=req[0].raw if req else None)
        require(req[0].fields[4:5] in ([b"lecture notes  2"], [b"lecture notes 2"]),
                "the description is the rest of the line, spaces included",
                received=req[0].raw)
        for code, line in ((1, "c> PUBLISH FAIL, USER DOES NOT EXIST"),
                           (2, "c> PUBLISH FAIL, USER NOT CONNECTED"),
                           (3, "c> PUBLISH FAIL, CONTENT ALREADY PUBLISHED"),
                           (4, "c> PUBLISH FAIL")):
            c.step("PUBLISH %s d" % path, [line], {"PUBLISH": bytes([code])})
        c.expect_request("PUBLISH", "alice", path, "d")


@check("client", "client.delete",
       "DELETE, date-time, user, file path · `c> DELETE OK` · `c> DELETE FAIL, USER DOES NOT "
       "EXIST` · `... USER NOT CONNECTED` · `... CONTENT NOT PUBLISHED` · `c> DELETE FAIL`")
def c_delete(t):
    with t.run() as c:
        connect(c)
        path = os.path.join(c.dir, "gone.txt")
        for code, line in ((0, "c> DELETE OK"), (1, "c> DELETE FAIL, USER DOES NOT EXIST"),
                           (2, "c> DELETE FAIL, USER NOT CONNECTED"),
                           (3, "c> DELETE FAIL, CONTENT NOT PUBLISHED"),
                           (4, "c> DELETE FAIL")):
            c.step("DELETE %s" % path, [line], {"DELETE": bytes([code])})
            c.expect_request("DELETE", "alice", path)


@check("client", "client.list-users",
       "LIST_USERS, date-time, requesting user · `c> LIST_USERS OK` then one line per user, "
       "`name ip port`, indented · `... FAIL, USER DOES NOT EXIST` · `... FAIL, USER NOT "
       "CONNECTED` · `c> LIST_USERS FAIL`")
def c_list_users(t):
    with t.run() as c:
        connect(c)
        listing = b"\x00" + encode("2", "alice", "10.0.0.5", "40001", "bob", "10.0.0.7",
                                   "40002")
        c.step("LIST_USERS", ["c> LIST_USERS OK", "\talice 10.0.0.5 40001",
                              "\tbob 10.0.0.7 40002"], {"LIST_USERS": listing})
        c.expect_request("LIST_USERS", "alice")
        for code, line in ((1, "c> LIST_USERS FAIL, USER DOES NOT EXIST"),
                           (2, "c> LIST_USERS FAIL, USER NOT CONNECTED"),
                           (3, "c> LIST_USERS FAIL")):
            c.step("LIST_USERS", [line], {"LIST_USERS": bytes([code])})


@check("client", "client.list-content",
       "LIST_CONTENT, date-time, requesting user, target user · `c> LIST_CONTENT OK` then one "
       "indented path per line · `... FAIL, USER DOES NOT EXIST` · `... USER NOT CONNECTED` · "
       "`... REMOTE USER DOES NOT EXIST` · `c> LIST_CONTENT FAIL`")
def c_list_content(t):
    with t.run() as c:
        connect(c)
        listing = b"\x00" + encode("2", "/home/bob/a.txt", "/home/bob/b c.txt")
        c.step("LIST_CONTENT bob", ["c> LIST_CONTENT OK", "\t/home/bob/a.txt",
                                    "\t/home/bob/b c.txt"], {"LIST_CONTENT": listing})
        c.expect_request("LIST_CONTENT", "alice", "bob")
        for code, line in ((1, "c> LIST_CONTENT FAIL, USER DOES NOT EXIST"),
                           (2, "c> LIST_CONTENT FAIL, USER NOT CONNECTED"),
                           (3, "c> LIST_CONTENT FAIL, REMOTE USER DOES NOT EXIST"),
                           (4, "c> LIST_CONTENT FAIL")):
            c.step("LIST_CONTENT bob", [line], {"LIST_CONTENT": bytes([code])})


def owner_listing(c):
    """LIST_USERS reply naming `bob` at the built-in peer's address."""
    return {"LIST_USERS": b"\x00" + encode("2", "alice", "127.0.0.1", "40001", "bob",
                                           "127.0.0.1", str(c.peer.port))}


def expect_no_file(c, local, what):
    """The failed download left no local file (partial or not) behind."""
    left = sorted(n for n in os.listdir(c.dir) if n != "notes.txt")
    require(not os.path.exists(local) and not left,
            "after %s the download directory holds %r: a failed GET_FILE leaves no partial "
            "local file behind" % (what, left))


def get_file_fails(c, remote, name, reply, what, line="c> GET_FILE FAIL"):
    """GET_FILE of bob's `remote` into c.dir/name, bob's peer answering `reply`:
    the client prints `line` and leaves no local file (`what` names the case)."""
    local = os.path.join(c.dir, name)
    c.step("GET_FILE bob %s %s" % (remote, local), [line], owner_listing(c), peer=reply)
    expect_no_file(c, local, what)


@check("client", "client.get-file",
       "GET_FILE, remote file path · on 0, the size in bytes as decimal text \\0, then "
       "exactly that many raw bytes · `c> GET_FILE OK`")
def c_get_file(t):
    with t.run() as c:
        connect(c)
        body = bytes(range(256)) * 40 + b"\0end"
        local = os.path.join(c.dir, "copy.bin")
        c.step("GET_FILE bob /home/bob/data.bin %s" % local, ["c> GET_FILE OK"],
               owner_listing(c), peer=b"\x00" + encode(len(body)) + body)
        reqs = c.requests("GET_FILE", peer=True)
        want = encode("GET_FILE", "/home/bob/data.bin")
        require(len(reqs) == 1 and reqs[0].raw == want,
                "the peer must receive exactly GET_FILE and the remote path, each NUL-"
                "terminated, no date-time", sent=want,
                received=b" | ".join(r.raw for r in reqs) if reqs else None)
        try:
            with open(local, "rb") as f:
                got = f.read()
        except OSError as e:
            raise Failure("after `c> GET_FILE OK` the local file cannot be read: %s" % e)
        require(got == body, "the local file differs from the %d bytes the peer sent"
                % len(body), sent=body, received=got)


@check("client", "client.get-file.refused",
       "GET_FILE: 1 file does not exist · 2 other error · `c> GET_FILE FAIL, FILE NOT EXIST` "
       "· `c> GET_FILE FAIL`")
def c_get_file_refused(t):
    with t.run() as c:
        connect(c)
        get_file_fails(c, "/home/bob/none", "x.bin", b"\x01", "a reply of 1",
                       "c> GET_FILE FAIL, FILE NOT EXIST")
        get_file_fails(c, "/home/bob/err", "x.bin", b"\x02", "a reply of 2")


@check("client", "client.get-file.short",
       "The downloader writes the bytes to its local file name; if fewer bytes than "
       "announced arrive, it leaves no partial local file behind")
def c_get_file_short(t):
    with t.run() as c:
        connect(c)
        get_file_fails(c, "/home/bob/big", "short.bin", b"\x00" + encode("1000") + b"z" * 300,
                       "a transfer cut short (1000 announced, 300 sent)")


@check("client", "client.get-file.too-much",
       "on 0, the size in bytes as decimal text \\0, then exactly that many raw bytes, then "
       "the connection is closed (our reading: more bytes is a corrupt transfer, `c> "
       "GET_FILE FAIL`)", level="recommended")
def c_get_file_too_much(t):
    with t.run() as c:
        connect(c)
        get_file_fails(c, "/home/bob/much", "much.bin",
                       b"\x00" + encode("10") + b"0123456789" + b"EXTRA" * 4,
                       "a peer that sent 30 bytes after announcing 10")


@check("client", "client.quit",
       "QUIT disconnects a connected user first; CONNECT as another user disconnects the "
       "current one first")
def c_quit(t):
    with t.run() as c:
        first = connect(c, "alice")
        c.step("CONNECT bob", ["c> CONNECT OK"], {"CONNECT": b"\x00"}, skip=("c> DISCONNECT OK",))
        c.expect_request("DISCONNECT", "alice")
        require(not c.listening(first), "after CONNECT as another user, the first user's "
                "listener (port %d) still accepts connections" % first)
        c.step_no += 1
        c.server.set(c.step_no, {})
        c.send("QUIT")
        try:
            c.proc.wait(t.timeout)
        except subprocess.TimeoutExpired:
            raise Failure("the client did not exit within %.0f s of QUIT" % t.timeout)
        reqs = c.requests("DISCONNECT")
        require([r.fields[2:3] for r in reqs] == [[b"bob"]],
                "QUIT must send one DISCONNECT for the connected user bob",
                received=b" | ".join(r.raw for r in reqs) if reqs else None)


# --- running -----------------------------------------------------------------------

def host_port(text):
    """HOST:PORT (IPv6 literals in brackets) into (host, port)."""
    m = re.match(r"^\[?([^\]]+?)\]?:(\d+)$", text)
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return m.group(1), int(m.group(2))


def parse_args(argv):
    """The parser and the parsed command line."""
    p = argparse.ArgumentParser(
        prog="conform.py", description="Check an implementation of the classic peer-to-peer "
        "index protocol (docs/conformance.md).")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("--only", action="append", default=[], metavar="ID",
                   help="run only checks whose id matches (glob; repeatable)")
    p.add_argument("--json", action="store_true", help="results as one JSON document")
    p.add_argument("--timeout", type=float, default=TIMEOUT,
                   help="seconds for any one exchange (default %(default)s)")
    p.add_argument("--check-seconds", type=float, default=CHECK_SECONDS,
                   help="seconds for one whole check (default %(default)s)")
    p.add_argument("--budget", type=float, default=BUDGET,
                   help="seconds for the whole run; checks not started by then fail as not "
                   "run (default %(default)s)")
    p.add_argument("--level", choices=("statement", "recommended", "all"), default="all",
                   help="statement: only what the protocol statement requires; recommended: "
                   "only our readings and robustness checks; all (default): both, reported "
                   "apart")
    p.add_argument("--jobs", type=int, default=4, help="client checks run at once")
    p.add_argument("--xfail", action="append", default=[], metavar="ID",
                   help="a check known to fail (glob; repeatable): its failure is reported "
                   "as XFAIL and not counted; if it passes, that counts as a failure")
    p.add_argument("target", nargs="?", choices=("server", "peer", "client"))
    p.add_argument("args", nargs="*")
    p.add_argument("--pty", action="store_true",
                   help="client: run it on a terminal instead of a pipe")
    return p, p.parse_args(argv)


def selected(target, only, level="all"):
    """The checks of a target (all targets when None) that --only and --level select."""
    return [c for c in CHECKS if (target is None or c.target == target) and
            (level == "all" or c.level == level) and
            (not only or any(fnmatch.fnmatchcase(c.id, pat) for pat in only))]


def main(argv=None):
    """Run the selected checks of one target; the exit status."""
    parser, args = parse_args(argv)
    if args.list:
        for c in selected(args.target, args.only, args.level):
            print("%-38s %-11s %s" % (c.id, c.level, c.rule))
        return 0
    if args.target is None:
        parser.error("name a target: server HOST:PORT, peer HOST:PORT PATH or "
                     "client \"COMMAND\"")
    need = {"server": 1, "peer": 2, "client": 1}[args.target]
    if len(args.args) != need:
        parser.error("%s takes %s" % (args.target, {"server": "HOST:PORT",
                                                     "peer": "HOST:PORT PATH",
                                                     "client": "\"COMMAND\""}[args.target]))
    try:
        if args.target == "server":
            ctx = ServerTarget(*host_port(args.args[0]), timeout=args.timeout)
        elif args.target == "peer":
            ctx = PeerTarget(*host_port(args.args[0]), args.args[1], args.timeout)
        else:
            ctx = ClientTarget(args.args[0], args.pty, args.timeout)
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    checks = selected(args.target, args.only, args.level)
    if not checks:
        parser.error("no check matches %s" % " ".join(args.only))
    # Statement checks first, then the recommended ones (each group in its order).
    checks.sort(key=lambda c: LEVELS.index(c.level))
    results = []
    run_end = time.monotonic() + args.budget

    def run(chk):
        """One check, within its time and the run's budget, with --xfail applied."""
        now = time.monotonic()
        if now >= run_end:
            r = {"id": chk.id, "target": chk.target, "level": chk.level, "rule": chk.rule,
                 "status": "FAIL", "seconds": 0.0,
                 "why": "not run: the run's budget of %.0f s was spent (--budget)"
                 % args.budget}
        else:
            r = run_check(chk, ctx, min(run_end, now + args.check_seconds))
        if any(fnmatch.fnmatchcase(chk.id, pat) for pat in args.xfail):
            if r["status"] == "FAIL":
                r["status"] = "XFAIL"
            else:
                r.update(status="FAIL", why="passes, but was named with --xfail: take it "
                         "off the list of known failures")
        return r
    try:
        heading = None
        if args.target == "client":
            with ThreadPoolExecutor(max(1, args.jobs)) as pool:
                results = list(pool.map(run, checks))
        else:
            for c in checks:
                results.append(run(c))
                if not args.json:
                    heading = print_heading(results[-1], heading)
                    print_result(results[-1])
        if args.target == "client" and not args.json:
            for r in results:
                heading = print_heading(r, heading)
                print_result(r)
    finally:
        if args.target == "server":
            ctx.cleanup()
    counts = {level: tally([r for r in results if r["level"] == level]) for level in LEVELS}
    total = tally(results)
    notes = []
    if getattr(ctx, "chatter", None):
        notes.append("the client prints %d line(s) before its first result line, not judged: "
                     "%r" % (len(ctx.chatter), ctx.chatter[:3]))
    if args.target == "server" and getattr(ctx, "_encoding", None) and \
            not isinstance(ctx._encoding, Failure):
        notes.append("result codes read as: %s" % (ctx._encoding[0] or "unknown (raw byte)"))
    if args.json:
        json.dump({"target": args.target, "args": args.args, "passed": total["passed"],
                   "failed": total["failed"], "known_failures": total["known"],
                   "skipped": total["skipped"], "levels": counts, "notes": notes,
                   "results": results}, sys.stdout, indent=1)
        print()
    else:
        for note in notes:
            print("note: " + note)
        for level in LEVELS:
            c = counts[level]
            if sum(c.values()):
                print("%-11s %d passed, %d failed%s%s" % (
                    level + ":", c["passed"], c["failed"],
                    ", %d known failure(s)" % c["known"] if c["known"] else "",
                    ", %d skipped" % c["skipped"] if c["skipped"] else ""))
    return 1 if total["failed"] else 0


def tally(results):
    """Counts of a list of results by outcome."""
    return {"passed": sum(r["status"] == "PASS" for r in results),
            "failed": sum(r["status"] == "FAIL" for r in results),
            "known": sum(r["status"] == "XFAIL" for r in results),
            "skipped": sum(r["status"] == "SKIP" for r in results)}


def print_heading(r, heading):
    """A heading line when the results pass from one level to the next."""
    if r["level"] != heading:
        print("== %s checks%s" % (r["level"], " (what the protocol statement requires)"
                                  if r["level"] == "statement" else
                                  " (our readings where the statement is silent, and "
                                  "robustness)"))
    return r["level"]


if __name__ == "__main__":
    sys.exit(main())
