"""The c> command line: one index operation per command, result lines as in the protocol.

stdout carries exactly the protocol's result lines (and what HELP prints);
every note around them (why something failed, what a long wait waits for,
usage errors) goes to stderr.  See docs/client.md.
"""
import argparse
import errno
import hashlib
import hmac
import os
import shlex
import signal
import socket
import stat
import sys
import threading
import time
import traceback

from .download import DownloadError, fetch, peer_address
from .peer import PeerServer, listen_any
from .published import Record, Secret, UnsafeConfig, pin
from .term import shown
from .terminal import setup_readline
from .timeclient import TimeClient, TimeError, TimeService
from .wire import (FIELD_MAX, IO_TIMEOUT, ProtocolError, Reader, encode, read_content,
                   read_matches, read_result, read_users, server_extensions)

EXIT_TIMEOUT = 2.0      # seconds for the DISCONNECT sent on the way out
SLOW_NOTE_AFTER = 2.0   # an interactive wait past this says what it waits for
UPLOAD_GRACE = 5.0      # QUIT waits this long for uploads in progress
DOUBLE_INTERRUPT = 1.0  # a second Ctrl-C within this many seconds quits

# name: (minimum args, maximum args or None, usage, what it does)
COMMANDS = {
    "REGISTER": (1, 1, "REGISTER <user>", "create a user on the index server"),
    "UNREGISTER": (1, 1, "UNREGISTER <user>",
                   "delete a user and its files from the index"),
    "CONNECT": (1, 1, "CONNECT <user>",
                "act as <user>: serve its files to peers"),
    "DISCONNECT": (1, 1, "DISCONNECT <user>",
                   "stop serving; the index no longer lists <user>"),
    "PUBLISH": (1, None, "PUBLISH <path> [description...]",
                "offer a local file (no whitespace in the path)"),
    "DELETE": (1, 1, "DELETE <path>", "withdraw a published file"),
    "LIST_USERS": (0, 0, "LIST_USERS", "the connected users, with address and port"),
    "LIST_CONTENT": (1, 1, "LIST_CONTENT <user>", "the paths a user published"),
    "SEARCH": (1, None, "SEARCH <words...>",
               "files of connected users whose path or description has every word"),
    "GET_FILE": (1, 3, "GET_FILE <user> <remote path> <local path>",
                 "download from the owner (into a directory: same name); "
                 "GET_FILE #<n> [<local path>]: match n of the last SEARCH"),
    "QUIT": (0, 1, "QUIT [now]",
             "disconnect and leave (now: without waiting for uploads)"),
    "HELP": (0, 1, "HELP [command]", "this list, or a command's usage and result lines"),
}
ALIASES = {"EXIT": "QUIT"}

# The console line for each result code; None is the generic failure.
MESSAGES = {
    "REGISTER": ["REGISTER OK", "USERNAME IN USE"],
    "UNREGISTER": ["UNREGISTER OK", "USER DOES NOT EXIST"],
    "CONNECT": ["CONNECT OK", "CONNECT FAIL, USER DOES NOT EXIST", "USER ALREADY CONNECTED"],
    "DISCONNECT": ["DISCONNECT OK", "DISCONNECT FAIL, USER DOES NOT EXIST",
                   "DISCONNECT FAIL, USER NOT CONNECTED"],
    "PUBLISH": ["PUBLISH OK", "PUBLISH FAIL, USER DOES NOT EXIST",
                "PUBLISH FAIL, USER NOT CONNECTED", "PUBLISH FAIL, CONTENT ALREADY PUBLISHED"],
    "DELETE": ["DELETE OK", "DELETE FAIL, USER DOES NOT EXIST",
               "DELETE FAIL, USER NOT CONNECTED", "DELETE FAIL, CONTENT NOT PUBLISHED"],
    "LIST_USERS": ["LIST_USERS OK", "LIST_USERS FAIL, USER DOES NOT EXIST",
                   "LIST_USERS FAIL, USER NOT CONNECTED"],
    "LIST_CONTENT": ["LIST_CONTENT OK", "LIST_CONTENT FAIL, USER DOES NOT EXIST",
                     "LIST_CONTENT FAIL, USER NOT CONNECTED",
                     "LIST_CONTENT FAIL, REMOTE USER DOES NOT EXIST"],
    "SEARCH": ["SEARCH OK", "SEARCH FAIL, USER DOES NOT EXIST",
               "SEARCH FAIL, USER NOT CONNECTED"],
    "GET_FILE": ["GET_FILE OK", "GET_FILE FAIL, FILE NOT EXIST"],
}

# Said instead of asking a server that does not list SEARCH among its extensions.
NO_SEARCH = ("SEARCH FAIL, NOT OFFERED BY THIS SERVER (find files with LIST_USERS, "
             "then LIST_CONTENT <user>)")

class Leave(BaseException):
    """Raised in the main thread by SIGTERM and SIGHUP: disconnect and exit."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class LocalFail(Exception):
    """A command refused before anything was sent; the text says why."""


def message(op, code):
    """The console text for an operation's result code."""
    known = MESSAGES[op]
    return known[code] if code is not None and code < len(known) else op + " FAIL"


def note(text):
    """One line on stderr; a stderr that is gone (a closed terminal) is ignored."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def show_addr(host, port):
    """host:port, with brackets around an IPv6 address."""
    return "[%s]:%s" % (host, port) if ":" in str(host) else "%s:%s" % (host, port)


def field_bytes(text):
    return len(text.encode("utf-8", "surrogateescape"))


def check_field(op, what, text):
    """A field the protocol cannot carry: over 256 bytes."""
    n = field_bytes(text)
    if n > FIELD_MAX:
        raise LocalFail("%s: %s is %d bytes; the protocol allows at most %d"
                        % (op, what, n, FIELD_MAX))


def peer_port_trouble(e):
    """Why a --peer-port cannot be had, in words, with what to do."""
    if e.errno == errno.EADDRINUSE:
        return ("it is taken (another program, or another client, listens there); "
                "pick another port, or leave --peer-port out for any free one")
    if e.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges); pick a port above 1023"
    return e.strerror or str(e)


def split_line(line):
    """The words of a command line whose arguments include local paths:
    quoted the way a shell does ("...", '...', a backslash before a space),
    when the line has any quote or backslash; a line that cannot be split so
    (an unmatched quote) is split at whitespace alone."""
    if not any(c in line for c in "'\"\\"):
        return line.split()
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


# Commands with a local path among their arguments (PUBLISH reads its own line).
QUOTED_COMMANDS = ("GET_FILE", "DELETE")


def check_no_space(op, what, text):
    """A wire field with whitespace (possible only through quotes): the
    protocol's paths and names are single words, so it names nothing there."""
    if any(c.isspace() for c in text):
        raise LocalFail("%s: %s %r has whitespace, which the protocol cannot carry "
                        "(paths and names travel as single words); only the local path may"
                        % (op, what, text))


def local_path(path):
    """A local path as the user typed it: ~ expanded, made absolute."""
    return os.path.abspath(os.path.expanduser(path))


# Signals the main thread handles (KeyboardInterrupt, Leave).
MAIN_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class MainThreadSignals:
    """Threads started inside this block never take SIGINT, SIGTERM or
    SIGHUP: the kernel hands a process signal to any thread that does not
    block it, and one taken by another thread would not interrupt the main
    thread's wait (a Ctrl-C seemingly ignored until the next key)."""

    def __enter__(self):
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_SIGNALS)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


class SlowNote:
    """While active, says once on stderr what is being waited for once the
    wait passes SLOW_NOTE_AFTER seconds (interactive use only)."""

    def __init__(self, enabled, text):
        self.timer = threading.Timer(SLOW_NOTE_AFTER, note, [text]) if enabled else None

    def __enter__(self):
        if self.timer is not None:
            self.timer.daemon = True
            with MainThreadSignals():
                self.timer.start()
        return self

    def __exit__(self, *exc):
        if self.timer is not None:
            self.timer.cancel()


class Client:
    """The state of one client: the server, the connected user, the listener."""

    def __init__(self, host, port, time_client, out=sys.stdout, interactive=False,
                 peer_port=0, classic=False):
        self.server = (host, port)
        self.peer_port = peer_port  # --peer-port, or 0: any free port
        self.server_name = "%s:%d" % (host, port)       # names our published-file records
        self.time = time_client
        self.out = out
        self.interactive = interactive
        self.user = None            # the user of the last successful CONNECT
        self.peer = None            # our PeerServer while connected
        self.failed = False         # a result line other than OK, or a usage error
        self.known_users = []       # names from the last LIST_USERS (completion)
        self.ascii_noted = False
        self.last_interrupt = 0.0   # when Ctrl-C last cancelled something
        self.at_prompt = False      # the c> prompt is on the screen, waiting
        self.record_lock = threading.Lock()     # one save of the record at a time
        self._extensions = None     # what the server speaks beyond the classic ops, once known
        self.matches = None         # (owner, path, description) of the last SEARCH OK
        self.classic = classic      # --classic: never the AUTH extension
        self.auth_noted = False     # said once that the server has no AUTH
        self.counter = 0            # the last AUTH counter this client sent
        self.unproven = None        # (op, user) of the last classic request acting as a user

    def say(self, text):
        """A result line on stdout; any line that is not an OK counts as a failure."""
        if not text.endswith(" OK"):
            self.failed = True
        try:
            print("c> " + text, file=self.out, flush=True)
        except BrokenPipeError:
            raise                   # nobody reads our output any more: main() stops
        except (OSError, ValueError):
            pass                    # stdout gone (a closed terminal): go on

    def detail(self, text):
        """An indented line of data from the network, escaped (see term.py)."""
        try:
            print("\t" + shown(text), file=self.out, flush=True)
        except BrokenPipeError:
            raise                   # nobody reads our output any more: main() stops
        except (OSError, ValueError):
            pass

    @staticmethod
    def warn(text):
        """A diagnostic line on stderr."""
        note(text)

    def where(self):
        return "the index server at " + show_addr(*self.server)

    # -- talking to the index server --

    def call(self, op, *fields, read_data=None, timeout=IO_TIMEOUT, label=None, acting=None):
        """Send one operation; return (code, data) or (None, None) on failure,
        saying on stderr why.

        read_data(reader) reads the data that follows a 0 result.  `label`
        starts those notes when `op` is sent for another command (say which
        and what for); by default the operation's name.  `acting` names the
        user the operation acts as: when the index speaks AUTH and this
        machine holds that user's secret, the request carries its proof.
        """
        what = label or op
        self.unproven = None
        secret = None
        auth = self.auth_spoken(op) if acting is not None else False
        if auth is None:
            return None, None           # the server cannot be asked: said why
        if auth:
            try:
                secret = Secret(self._record(acting)).load()
            except (OSError, UnsafeConfig) as e:
                note("%s: cannot use the secret of %s, operation not sent: %s"
                     % (what, shown(acting), shown(str(e))))
                return None, None
            if secret is None:
                self.unproven = (op, acting)
        try:
            stamp = self.time.now()
        except TimeError as e:
            note("%s: no date-time, operation not sent: %s" % (what, shown(e)))
            return None, None
        request = encode(op, stamp, *fields)
        if secret is not None:
            request = self.prove(secret, request)
        wait = "%s: waiting for %s (up to %d s; Ctrl-C cancels)" % (what, self.where(), timeout)
        try:
            with SlowNote(self.interactive, wait), \
                    socket.create_connection(self.server, timeout=timeout) as s:
                s.sendall(request)
                reader = Reader(s, deadline=time.monotonic() + timeout)
                code = self._read_code(reader, read_data is not None)
                data = read_data(reader) if code == 0 and read_data else None
                return code, data
        except socket.gaierror as e:
            note("%s: cannot resolve the index server's name %r: %s"
                 % (what, self.server[0], e.strerror))
        except socket.timeout:
            note("%s: no answer from %s within %d s" % (what, self.where(), timeout))
        except OSError as e:
            note("%s: cannot reach %s: %s" % (what, self.where(), e.strerror or e))
        except (ProtocolError, UnicodeError) as e:
            note("%s: bad reply from %s: %s" % (what, self.where(), e))
        return None, None

    def extensions(self, op):
        """The extension operations the index server speaks (an empty set for a
        classic server), asked once per client; None, with the reason on
        stderr, when the server cannot be asked now (then `op` fails as any
        operation does when the server is unreachable)."""
        if self._extensions is None:
            try:
                stamp = self.time.now()
            except TimeError as e:
                note("%s: no date-time, operation not sent: %s" % (op, shown(e)))
                return None
            wait = "%s: waiting for %s (up to %d s; Ctrl-C cancels)" % (op, self.where(),
                                                                        IO_TIMEOUT)
            try:
                with SlowNote(self.interactive, wait):
                    self._extensions = server_extensions(self.server, stamp) or frozenset()
            except socket.gaierror as e:
                note("%s: cannot resolve the index server's name %r: %s"
                     % (op, self.server[0], e.strerror))
            except OSError as e:
                note("%s: cannot reach %s: %s" % (op, self.where(), e.strerror or e))
        return self._extensions

    def auth_spoken(self, op):
        """True when requests acting as a user use the AUTH extension: the
        index speaks it and --classic was not given.  A server without it is
        noted once on stderr; None when the server cannot be asked now."""
        if self.classic:
            return False
        names = self.extensions(op)
        if names is None:
            return None                 # unreachable now: said on stderr
        if "AUTH" in names:
            return True
        if not self.auth_noted:
            self.auth_noted = True
            note("the index server at %s does not speak the AUTH extension: users are "
                 "registered and act with the classic operations, which anyone can send "
                 "in any user's name" % show_addr(*self.server))
        return False

    def prove(self, secret, request):
        """The AUTH request wrapping `request`: a counter that only grows (the
        time in microseconds, so that a copied secret needs no shared counter)
        and HMAC-SHA256 under the secret of the counter and every byte of the
        request (docs/protocol.md)."""
        self.counter = max(self.counter + 1, time.time_ns() // 1000)
        text = str(self.counter).encode()
        mac = hmac.new(secret, text + b"\0" + request, hashlib.sha256).hexdigest()
        return encode("AUTH", text, mac) + request

    def _read_code(self, reader, data_follows):
        """The result code (wire.read_result: the raw byte, or a tolerated
        ASCII digit, noted once)."""
        code, ascii_code = read_result(reader, data_follows)
        if ascii_code and not self.ascii_noted:
            self.ascii_noted = True
            note("the index server at %s answers ASCII result codes; accepted"
                 % show_addr(*self.server))
        return code

    def result(self, op, code):
        """Print the result line; a generic failure from the server says why."""
        if code is not None and message(op, code) == op + " FAIL":
            note("%s: %s answered code %d (other error: a field it refused, or its own "
                 "failure)" % (op, self.where(), code))
            if self.unproven is not None:
                self.secret_elsewhere(*self.unproven)
        if code == 2 and op in ("PUBLISH", "DELETE", "LIST_USERS", "LIST_CONTENT", "SEARCH"):
            self.session_lost(op)
        self.say(message(op, code))

    def secret_elsewhere(self, op, user):
        """A classic request acting as `user` was refused by an index that
        speaks AUTH: say where the user's secret would have to be."""
        path = Secret(self._record(user)).path
        note("%s: if %s was registered with a secret from another machine, this client "
             "needs it: copy the file of the same name from that machine's configuration "
             "directory to %s (mode 0600); if it is lost, the index server's operator can "
             "run `server -d DIR --forget-key %s` (README, troubleshooting)"
             % (op, shown(user), path, shown(user)))

    def session_lost(self, op):
        """The index answered USER NOT CONNECTED for the user this client
        connected: say how that can be, and how to get it back."""
        if self.user is None:
            return
        user = shown(self.user)
        note("%s: the index server no longer lists %s as connected: its liveness check "
             "may have found this client's listener unreachable, or a DISCONNECT of %s "
             "came from elsewhere; CONNECT %s gets the session back" % (op, user, user, user))

    def simple(self, op, *fields):
        """An operation whose reply is just the code; prints its line."""
        code, _ = self.call(op, *fields)
        self.result(op, code)
        return code

    # -- commands --

    def cmd_register(self, user):
        auth = self.auth_spoken("REGISTER")
        if auth is None:
            self.say(message("REGISTER", None))     # the server cannot be asked: said why
            return
        if not auth:
            self.simple("REGISTER", user)
            return
        # An authenticated user: its new secret is on disk (beside, then in
        # place) before the index hears of it, so a lost reply loses nothing.
        secret = Secret(self._record(user))
        try:
            value, tmp = secret.create()
        except (OSError, UnsafeConfig) as e:
            note("REGISTER: cannot keep a secret for %s, not registered: %s (or use "
                 "--classic)" % (shown(user), shown(str(e))))
            self.say(message("REGISTER", None))
            return
        code, _ = self.call("REGISTER_AUTH", user, value.hex())
        if code in (0, None):
            secret.keep(tmp)            # None: the index may have registered it
        else:
            secret.discard(tmp)
        self.result("REGISTER", code)

    def cmd_unregister(self, user):
        code, _ = self.call("UNREGISTER", user, acting=user)
        if code == 0:
            # The index forgot the user's files and secret: so do we.
            self._record(user).remove()
            Secret(self._record(user)).remove()
            if user == self.user:
                self._stop_peer()       # the server dropped our connection too
        self.result("UNREGISTER", code)

    def _record(self, user):
        return Record(self.server_name, user)

    def cmd_connect(self, user):
        if self.user is not None and user != self.user:
            self.cmd_disconnect(self.user)
        if self.peer_port and self.peer is not None:
            # Connected already, on the one port we may use: CONNECT again
            # with the listener we have (the index says whether it takes it).
            code, _ = self.call("CONNECT", user, self.peer.port)
            if code == 0:
                self.peer.replace_published(self._published_files(user))
            self.result("CONNECT", code)
            return
        try:
            peer = PeerServer(port=self.peer_port)
        except OSError as e:
            if self.peer_port:
                note("CONNECT: cannot listen for peers on port %d (--peer-port): %s"
                     % (self.peer_port, peer_port_trouble(e)))
            else:
                note("CONNECT: cannot listen for peers: %s" % e)
            self.say(message("CONNECT", None))
            return
        try:
            code, _ = self.call("CONNECT", user, peer.port, acting=user)
            if code != 0:
                peer.stop()
                self.result("CONNECT", code)
                return
            self._stop_peer()
            self.user, self.peer = user, peer
            # Serve what this client published, from earlier sessions too; all
            # in place before the result line is printed.
            peer.replace_published(self._published_files(user))
            peer.on_repin = lambda: self._save_published(user, peer)
            with MainThreadSignals():       # its threads inherit the mask
                peer.start()
        except BaseException:
            if self.peer is not peer:
                peer.stop()
            raise
        self.say(message("CONNECT", code))

    def _published_files(self, user):
        """The files to serve for `user` after CONNECT: those this client
        recorded as published by it and that the index still lists (asked
        with LIST_CONTENT only when there is such a record).  What the index
        lists beyond that (anyone can PUBLISH in any name) is reported,
        never served."""
        record = self._record(user)
        try:
            files = record.load()
        except (OSError, ValueError, KeyError, TypeError, AttributeError, UnsafeConfig) as e:
            self.warn("CONNECT: unreadable record of published files, serving none: %s"
                      % shown(e))
            return {}
        if not files:
            return {}
        _, listed = self.call("LIST_CONTENT", user, user, read_data=read_content,
                              label="CONNECT: asking which of the files published earlier "
                                    "the index still lists (LIST_CONTENT)", acting=user)
        if listed is None:
            return files                # cannot compare: the record alone
        for path in listed:
            if path not in files:
                self.warn("CONNECT: not serving %s: the index lists it for %s, but this "
                          "client did not publish it" % (shown(path), shown(user)))
        gone = [path for path in files if path not in listed]
        for path in gone:
            self.warn("CONNECT: no longer serving %s: the index does not list it any more"
                      % shown(path))
            del files[path]
        if gone:
            self._save_record(record, files)
        return files

    def _save_published(self, user, peer):
        """Record what `peer` serves for `user` now (also from the peer
        server's threads, after a re-pin)."""
        with self.record_lock:
            self._save_record(self._record(user), peer.published_files())

    def _save_record(self, record, files):
        try:
            record.save(files)
        except OSError as e:
            self.warn("cannot save the record of published files %s: %s"
                      % (shown(record.path), e.strerror or e))
        except UnsafeConfig as e:
            self.warn("not saving the record of published files: %s" % shown(str(e)))

    def cmd_disconnect(self, user, timeout=IO_TIMEOUT):
        # Stop the listener (in every case, as the protocol says) before
        # printing, so whoever reads the result line sees it already closed.
        code, _ = self.call("DISCONNECT", user, timeout=timeout, acting=user)
        unproven = self.unproven
        ours = self.user
        self._stop_peer()
        if ours is not None and ours != user:
            # Another user named (a typo?): our listener stopped all the
            # same, so the index must not keep listing ours as reachable.
            extra, _ = self.call("DISCONNECT", ours, timeout=timeout, acting=ours)
            note("DISCONNECT: this client's listener stopped, so its user %s was "
                 "disconnected on the index too (%s)" % (ours, message("DISCONNECT", extra)))
        self.unproven = unproven
        self.result("DISCONNECT", code)

    def _stop_peer(self):
        if self.peer is not None:
            self.peer.stop()
        self.peer = None
        self.user = None

    def _acting_user(self, op):
        """The connected user, or print the NOT CONNECTED line and None."""
        if self.user is None:
            note("%s: no user connected on this client (CONNECT <user> first)" % op)
            self.say(message(op, 2))
        return self.user

    def publish_checks(self, path, description, words):
        """Refuse locally what the index cannot carry or peers could not get."""
        if any(c.isspace() for c in path):
            raise LocalFail("PUBLISH: the path %r has whitespace, which the protocol cannot "
                            "carry; rename the file or a directory" % path)
        check_field("PUBLISH", "the path", path)
        check_field("PUBLISH", "the description", description)
        try:
            st = os.stat(path)
        except OSError as e:
            # `PUBLISH /dir with space/a b.txt d`: say what the words meant.
            for k in range(2, len(words) + 1):
                if os.path.exists(local_path(" ".join(words[:k]))):
                    raise LocalFail("PUBLISH: %r has whitespace, which the protocol cannot "
                                    "carry; rename it" % local_path(" ".join(words[:k])))
            raise LocalFail("PUBLISH: cannot publish %s: %s" % (path, e.strerror))
        if stat.S_ISDIR(st.st_mode):
            raise LocalFail("PUBLISH: %s is a directory; only regular files can be "
                            "published" % path)
        if not stat.S_ISREG(st.st_mode):
            raise LocalFail("PUBLISH: %s is not a regular file" % path)
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise LocalFail("PUBLISH: cannot read %s: %s" % (path, e.strerror))

    def cmd_publish(self, raw_path, *description):
        if self._acting_user("PUBLISH") is None:
            return
        description = " ".join(description)
        words = [raw_path] + description.split()
        if raw_path[:1] in "'\"" or raw_path.endswith("\\"):
            # A quoted path: the quotes are not part of it, and a path with
            # whitespace cannot travel in the protocol anyway.
            try:
                parts = shlex.split(raw_path + " " + description)
                raw_path, description = parts[0], " ".join(parts[1:])
            except ValueError:
                pass
        path = local_path(raw_path)
        try:
            self.publish_checks(path, description, words)
        except LocalFail as e:
            note(str(e))
            self.say(message("PUBLISH", None))
            return
        # Pin the file the path names now, before the result line: whatever
        # happens to the path after "PUBLISH OK" cannot change what is served.
        try:
            pinned = pin(path)
        except OSError as e:
            pinned, why = None, e.strerror or str(e)
        code, _ = self.call("PUBLISH", self.user, path, description, acting=self.user)
        if code == 0:
            if pinned is None:
                self.warn("PUBLISH: %s will not be served: %s" % (shown(path), why))
            else:
                self.peer.publish(path, pinned)
                self._save_published(self.user, self.peer)
        self.result("PUBLISH", code)

    def cmd_delete(self, path):
        if self._acting_user("DELETE") is None:
            return
        path = local_path(path)
        try:
            check_field("DELETE", "the path", path)
        except LocalFail as e:
            note(str(e))
            self.say(message("DELETE", None))
            return
        code, _ = self.call("DELETE", self.user, path, acting=self.user)
        # Withdrawn whatever the index answers, before the result line.
        if path in self.peer.published_files():
            self.peer.unpublish(path)
            self._save_published(self.user, self.peer)
        self.result("DELETE", code)

    def cmd_list_users(self):
        if self._acting_user("LIST_USERS") is None:
            return
        code, users = self.call("LIST_USERS", self.user, read_data=read_users,
                                acting=self.user)
        self.result("LIST_USERS", code)
        for name, ip, port in users or []:
            self.detail("%s %s %s" % (name, ip, port))
        if code == 0:
            self.known_users = [name for name, _, _ in users]

    def cmd_list_content(self, target):
        if self._acting_user("LIST_CONTENT") is None:
            return
        code, paths = self.call("LIST_CONTENT", self.user, target, read_data=read_content,
                                acting=self.user)
        self.result("LIST_CONTENT", code)
        for path in paths or []:
            self.detail(path)

    def cmd_search(self, *words):
        if self._acting_user("SEARCH") is None:
            return
        extensions = self.extensions("SEARCH")
        if extensions is None:
            self.say(message("SEARCH", None))
            return
        if "SEARCH" not in extensions:
            self.say(NO_SEARCH)
            return
        # An empty maximum: the server's default (100) results.
        code, found = self.call("SEARCH", self.user, " ".join(words), "", read_data=read_matches,
                                acting=self.user)
        self.result("SEARCH", code)
        if code == 0:
            self.matches = found
            for n, (owner, path, description) in enumerate(found, 1):
                self.detail("%d %s %s %s" % (n, owner, path, description))

    def match(self, ref):
        """The (owner, path) of "#n", match n of the last SEARCH; LocalFail if none."""
        try:
            n = int(ref[1:])
        except ValueError:
            n = 0
        if self.matches is None:
            raise LocalFail("GET_FILE: no match %s (no SEARCH yet)" % ref)
        if not 1 <= n <= len(self.matches):
            raise LocalFail("GET_FILE: no match %s (the last SEARCH found %d; #1..#%d)"
                            % (ref, len(self.matches), len(self.matches))
                            if self.matches else
                            "GET_FILE: no match %s (the last SEARCH found nothing)" % ref)
        owner, path, _ = self.matches[n - 1]
        return owner, path

    def cmd_get_file(self, owner, remote=None, local=None):
        try:
            if owner.startswith("#"):
                # GET_FILE #n [dest]: the file's base name there, or here.
                local = remote if remote is not None else "."
                owner, remote = self.match(owner)
            code = self.get_file(owner, remote, local)
        except (LocalFail, DownloadError) as e:
            note(str(e) if isinstance(e, LocalFail) else "GET_FILE: %s" % e)
            code = None
        except KeyboardInterrupt:
            if not self.interactive:
                raise               # in a script, Ctrl-C quits
            self.last_interrupt = time.monotonic()
            note("GET_FILE: cancelled (Ctrl-C); no file written")
            code = None
        self.say(message("GET_FILE", code))

    def destination(self, remote, local):
        """The local file a download goes to, checked before anyone is asked:
        ~ expanded; a directory (or a name ending in /) means inside it under
        the remote file's name."""
        target = local_path(local)
        if os.path.isdir(target) or local.endswith("/"):
            target = os.path.join(target, os.path.basename(remote.rstrip("/")))
        folder = os.path.dirname(target)
        if not os.path.isdir(folder):
            raise LocalFail("GET_FILE: cannot write %s: %s" % (
                target, "No such directory" if not os.path.exists(folder) else
                "%s is not a directory" % folder))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise LocalFail("GET_FILE: cannot write %s: Permission denied" % target)
        if os.path.isdir(target):
            raise LocalFail("GET_FILE: cannot write %s: it is a directory" % target)
        check_field("GET_FILE", "the remote path", remote)
        return target

    def get_file(self, owner, remote, local):
        """Download; returns 0 or 1 (no such file), or raises DownloadError
        with the reason."""
        if self.user is None:
            raise LocalFail("GET_FILE: connect first (the owner's address comes from "
                            "LIST_USERS)")
        target = self.destination(remote, local)
        code, users = self.call("LIST_USERS", self.user, read_data=read_users,
                                label="GET_FILE: looking up the address of %s (LIST_USERS)"
                                      % shown(owner), acting=self.user)
        if code != 0:
            if code is not None:
                note("GET_FILE: looking up the address of %s: LIST_USERS answered %s"
                     % (shown(owner), message("LIST_USERS", code)))
            if code == 2:
                self.session_lost("GET_FILE")
            return None
        entry = next(((ip, port) for name, ip, port in users if name == owner), None)
        if entry is None:
            raise LocalFail("GET_FILE: %s is not connected (not in LIST_USERS)" % shown(owner))
        addr = peer_address(*entry)
        where = "%s at %s" % (shown(owner), show_addr(*addr))
        replacing = os.path.lexists(target)
        with SlowNote(self.interactive, "GET_FILE: waiting for %s (Ctrl-C cancels)" % where):
            try:
                result = fetch(addr, remote, target, self.interactive)
            except DownloadError as e:
                reason = str(e)
                for prefix in ("%s:%d: " % addr, "[%s]:%d: " % addr):
                    if reason.startswith(prefix):
                        reason = reason[len(prefix):]
                raise LocalFail("GET_FILE: from %s: %s; nothing written" % (where, reason)) \
                    from None
        if result == 0:
            umask = os.umask(0)
            os.umask(umask)
            try:
                os.chmod(target, 0o666 & ~umask)    # as cp would create it
            except OSError:
                pass
            if replacing:
                note("GET_FILE: replaced the existing %s" % target)
        elif result == 1:
            note("GET_FILE: %s does not serve %s" % (where, shown(remote)))
        return result

    def cmd_help(self, name=None):
        lines = []
        if name is None:
            lines.append("commands (case does not matter; `exit` = QUIT; # starts a comment):")
            for _, _, usage, what in COMMANDS.values():
                lines.append("  %-44s %s" % (usage, what))
            lines.append("HELP <command> shows its result lines.")
        else:
            key = ALIASES.get(name.upper(), name.upper())
            if key not in COMMANDS:
                self.usage_error("HELP: no command %r (HELP lists them)" % name)
                return
            _, _, usage, what = COMMANDS[key]
            lines += ["usage: " + usage, "  " + what]
            if key in MESSAGES:
                lines.append("result lines:")
                lines += ["  c> " + m for m in MESSAGES[key] + [key + " FAIL"]]
                if key == "SEARCH":
                    lines.append("  c> " + NO_SEARCH)
                    lines.append("after SEARCH OK, one tab-indented line per match: "
                                 "<n> <user> <path> <description>")
        try:
            print("\n".join(lines), file=self.out, flush=True)
        except (OSError, ValueError):
            pass

    def usage_error(self, text):
        self.failed = True
        note(text)

    def quit(self, now=False, timeout=IO_TIMEOUT):
        """QUIT and every other way out: disconnect our user first, then (unless
        `now`) give uploads in progress a few seconds to finish."""
        peer = self.peer
        if self.user is not None:
            self.cmd_disconnect(self.user, timeout=timeout)
        busy = peer.active_uploads() if peer is not None else 0
        if busy and not now:
            note("QUIT: %d upload%s to other peers in progress; waiting up to %d s for them "
                 "(Ctrl-C stops waiting; `QUIT now` does not wait)"
                 % (busy, "" if busy == 1 else "s", UPLOAD_GRACE))
            deadline = time.monotonic() + UPLOAD_GRACE
            try:
                while peer.active_uploads() and time.monotonic() < deadline:
                    time.sleep(0.05)
            except KeyboardInterrupt:
                pass
            left = peer.active_uploads()
            if left:
                note("QUIT: leaving; %d upload%s cut short" % (left, "" if left == 1 else "s"))

    def run_line(self, line):
        """Run one command line; returns False when the client should stop."""
        words = line.split()
        if not words or words[0].startswith("#"):
            return True             # blank lines and comments
        name = ALIASES.get(words[0].upper(), words[0].upper())
        if name not in COMMANDS:
            self.usage_error("unknown command %r (type HELP for the list)" % words[0])
            return True
        lo, hi, usage, _ = COMMANDS[name]
        args = words[1:]
        if name in QUOTED_COMMANDS:
            args = split_line(line)[1:]
        if name == "PUBLISH" and len(args) >= 1:
            # The description is the rest of the line, spaces kept.
            rest = line.split(None, 2)
            args = rest[1:2] + ([rest[2].strip()] if len(rest) > 2 else [])
        if name == "GET_FILE" and args:
            lo, hi = (1, 2) if args[0].startswith("#") else (3, 3)
        if len(args) < lo or (hi is not None and len(args) > hi) or \
                (name == "QUIT" and args and args[0].lower() != "now"):
            self.usage_error("usage: " + usage)
            return True
        if name == "QUIT":
            self.quit(now=bool(args))
            return False
        try:
            for what, value in self.field_args(name, args):
                check_field(name, what, value)
            if name in QUOTED_COMMANDS:
                for what, value in zip(("the user name", "the remote path")
                                       if name == "GET_FILE" else ("the path",), args):
                    check_no_space(name, what, value)
        except LocalFail as e:
            note(str(e))
            self.say(message(name, None))
            return True
        try:
            getattr(self, "cmd_" + name.lower())(*args)
        except KeyboardInterrupt:
            if self.interactive and name in MESSAGES:
                self.last_interrupt = time.monotonic()
                note("%s: cancelled (Ctrl-C); the index server may have done it already"
                     % name)
                self.say(message(name, None))
            else:
                raise
        return True

    @staticmethod
    def field_args(name, args):
        """The user-name arguments of a command, checked before sending."""
        if name == "GET_FILE" and args[0].startswith("#"):
            return []
        if name in ("REGISTER", "UNREGISTER", "CONNECT", "LIST_CONTENT", "GET_FILE"):
            return [("the user name", args[0])]
        if name == "SEARCH":
            return [("the query", " ".join(args))]
        return []


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="client.py", description="peerdex client: c> command line and peer file server",
        epilog="Exit status: 0, or 1 when a run whose input is not a terminal printed a "
               "result line other than OK (or a usage error); 2 for bad arguments.")
    parser.add_argument("-s", "--server", required=True,
                        help="index server: a host name, an IPv4 or an IPv6 address")
    parser.add_argument("-p", "--port", required=True, type=int, help="index server port")
    parser.add_argument("--time-url", help="use this time web service instead of our own, "
                        "e.g. http://host:8000/datetime")
    parser.add_argument("--peer-port", type=int, default=0, metavar="N",
                        help="serve other peers on TCP port N (for a firewall that lets one "
                        "port in); default: any free port")
    parser.add_argument("--classic", action="store_true",
                        help="never use the AUTH extension: register and act with the classic "
                        "operations only")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="say on stderr where the time service listens, and its PID")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error("port must be 1..65535")
    if not 0 <= args.peer_port <= 65535:
        parser.error("--peer-port must be 1..65535")
    if args.peer_port:
        try:
            listen_any(args.peer_port).close()
        except OSError as e:
            parser.error("--peer-port %d: %s" % (args.peer_port, peer_port_trouble(e)))
    if args.server.startswith("[") and args.server.endswith("]"):
        args.server = args.server[1:-1]         # [::1] as in a URL
    return args


def _raise_leave(signum, frame):
    raise Leave(signum)


def read_line(interactive):
    """The next command line; EOFError at the end of input."""
    if interactive:
        return input("c> ")
    line = sys.stdin.readline()
    if line == "":
        raise EOFError
    return line


def main(argv=None):
    args = parse_args(argv)
    interactive = sys.stdin.isatty()
    if args.time_url:
        try:
            time_client = TimeClient(url=args.time_url)
        except TimeError as e:
            print("client.py: %s" % e, file=sys.stderr)
            return 2
        if args.verbose:
            note("time service: %s (--time-url)" % args.time_url)
    else:
        time_client = TimeClient(service=TimeService(verbose=args.verbose))
        if args.verbose:
            try:
                time_client.now()           # start it now, so -v says where it listens
            except TimeError as e:
                note("time service: %s" % e)
    if args.verbose:
        note("index server: %s" % show_addr(args.server, args.port))
    client = Client(args.server, args.port, time_client, interactive=interactive,
                    peer_port=args.peer_port, classic=args.classic)
    if interactive:
        setup_readline(lambda: client.known_users, sorted(COMMANDS), ALIASES)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_leave)
    status = 0
    try:
        while True:
            try:
                client.at_prompt = True
                try:
                    line = read_line(interactive)
                except EOFError:
                    client.at_prompt = False
                    if interactive:
                        print()
                    client.quit()
                    break
                client.at_prompt = False
                if not client.run_line(line):
                    break
            except KeyboardInterrupt:
                # Ctrl-C cancels the line (or what the command left to do);
                # a second one within a second, or any in a script, quits.
                now = time.monotonic()
                if not interactive or now - client.last_interrupt < DOUBLE_INTERRUPT:
                    note("")
                    client.quit(now=True, timeout=EXIT_TIMEOUT)
                    status = 130
                    break
                client.last_interrupt = now
                note("\n(Ctrl-C again within a second, Ctrl-D or QUIT to leave)")
    except BrokenPipeError:
        # Whoever read our output went away (`client.py | head -1`): stop as at
        # end of input, quietly, with status 1.
        silence_output()
        client.quit(now=True, timeout=EXIT_TIMEOUT)
        status = 1
    except Leave as e:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        if interactive and client.at_prompt:
            try:
                print(flush=True)           # end the c> line: results start on their own
            except (OSError, ValueError):
                pass
        client.quit(now=True, timeout=EXIT_TIMEOUT)
        status = 128 + e.signum
    except Exception:
        note("client.py: unexpected error, disconnecting and leaving:\n"
             + traceback.format_exc().rstrip())
        try:
            client.quit(now=True, timeout=EXIT_TIMEOUT)
        except Exception:
            pass
        status = 1
    finally:
        time_client.close()
    if status == 0 and not interactive and client.failed:
        status = 1
    return status


def silence_output():
    """Point stdout and stderr at /dev/null, so that nothing (not even the
    flush at exit) writes to a pipe whose reader is gone."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    os.close(devnull)
