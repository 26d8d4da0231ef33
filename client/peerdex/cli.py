"""The c> command line: one index operation per command, result lines as in the protocol."""
import argparse
import os
import socket
import sys

from .download import DownloadError, fetch, peer_address
from .peer import PeerServer
from .published import Record, pin
from .term import shown
from .timeclient import TimeClient, TimeError, TimeService
from .wire import IO_TIMEOUT, ProtocolError, Reader, encode, read_content, read_users


# name: (minimum args, maximum args or None, usage)
COMMANDS = {
    "REGISTER": (1, 1, "REGISTER <user>"),
    "UNREGISTER": (1, 1, "UNREGISTER <user>"),
    "CONNECT": (1, 1, "CONNECT <user>"),
    "DISCONNECT": (1, 1, "DISCONNECT <user>"),
    "PUBLISH": (1, None, "PUBLISH <path> <description...>"),
    "DELETE": (1, 1, "DELETE <path>"),
    "LIST_USERS": (0, 0, "LIST_USERS"),
    "LIST_CONTENT": (1, 1, "LIST_CONTENT <user>"),
    "GET_FILE": (3, 3, "GET_FILE <user> <remote path> <local path>"),
    "QUIT": (0, 0, "QUIT"),
    "HELP": (0, 0, "HELP"),
}

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
    "GET_FILE": ["GET_FILE OK", "GET_FILE FAIL, FILE NOT EXIST"],
}


def message(op, code):
    """The console text for an operation's result code."""
    known = MESSAGES[op]
    return known[code] if code is not None and code < len(known) else op + " FAIL"


class Client:
    """The state of one client: the server, the connected user, the listener."""

    def __init__(self, host, port, time_client, out=sys.stdout, interactive=False):
        self.server = (host, port)
        self.server_name = "%s:%d" % (host, port)       # names our published-file records
        self.time = time_client
        self.out = out
        self.interactive = interactive
        self.user = None            # the user of the last successful CONNECT
        self.peer = None            # our PeerServer while connected

    def say(self, text):
        print("c> " + text, file=self.out, flush=True)

    def detail(self, text):
        """An indented line of data from the network, escaped (see term.py)."""
        print("\t" + shown(text), file=self.out, flush=True)

    @staticmethod
    def warn(text):
        """A diagnostic line on stderr."""
        print(text, file=sys.stderr, flush=True)

    # -- talking to the index server --

    def call(self, op, *fields, read_data=None):
        """Send one operation; return (code, data) or (None, None) on failure.

        read_data(reader) reads the data that follows a 0 result.
        """
        try:
            stamp = self.time.now()
        except TimeError as e:
            self.warn("%s: no date-time, operation not sent: %s" % (op, shown(e)))
            return None, None
        try:
            with socket.create_connection(self.server, timeout=IO_TIMEOUT) as s:
                s.sendall(encode(op, stamp, *fields))
                reader = Reader(s)
                code = reader.byte()
                data = read_data(reader) if code == 0 and read_data else None
                return code, data
        except (OSError, ProtocolError, UnicodeError):
            return None, None

    def simple(self, op, *fields):
        """An operation whose reply is just the code; prints its line."""
        code, _ = self.call(op, *fields)
        self.say(message(op, code))
        return code

    # -- commands --

    def cmd_register(self, user):
        self.simple("REGISTER", user)

    def cmd_unregister(self, user):
        if self.simple("UNREGISTER", user) == 0:
            # The index forgot the user's files: so do we.
            self._record(user).remove()
            if user == self.user:
                self._stop_peer()       # the server dropped our connection too

    def _record(self, user):
        return Record(self.server_name, user)

    def cmd_connect(self, user):
        if self.user is not None and user != self.user:
            self.cmd_disconnect(self.user)
        try:
            peer = PeerServer()
        except OSError as e:
            print("CONNECT: cannot listen: %s" % e, file=sys.stderr)
            self.say(message("CONNECT", None))
            return
        code, _ = self.call("CONNECT", user, peer.port)
        if code != 0:
            peer.stop()
            self.say(message("CONNECT", code))
            return
        self._stop_peer()
        self.user, self.peer = user, peer
        # Serve what this client published, from earlier sessions too; all in
        # place before the result line is printed.
        peer.replace_published(self._published_files(user))
        peer.start()
        self.say(message("CONNECT", code))

    def _published_files(self, user):
        """The files to serve for `user` after CONNECT: those this client
        recorded as published by it and that the index still lists.  What the
        index lists beyond that (anyone can PUBLISH in any name) is reported,
        never served."""
        record = self._record(user)
        try:
            files = record.load()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            self.warn("CONNECT: unreadable record of published files, serving none: %s"
                      % shown(e))
            return {}
        _, listed = self.call("LIST_CONTENT", user, user, read_data=read_content)
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

    def _save_record(self, record, files):
        try:
            record.save(files)
        except OSError as e:
            self.warn("cannot save the record of published files %s: %s"
                      % (shown(record.path), e.strerror or e))

    def cmd_disconnect(self, user):
        # Stop the listener (in every case, as the protocol says) before
        # printing, so whoever reads the result line sees it already closed.
        code, _ = self.call("DISCONNECT", user)
        self._stop_peer()
        self.say(message("DISCONNECT", code))

    def _stop_peer(self):
        if self.peer is not None:
            self.peer.stop()
        self.peer = None
        self.user = None

    def _acting_user(self, op):
        """The connected user, or print the NOT CONNECTED line and None."""
        if self.user is None:
            self.say(message(op, 2))
        return self.user

    def cmd_publish(self, path, *description):
        if self._acting_user("PUBLISH") is None:
            return
        path = os.path.abspath(os.path.expanduser(path))
        # Pin the file the path names now, before the result line: whatever
        # happens to the path after "PUBLISH OK" cannot change what is served.
        try:
            pinned = pin(path)
        except OSError as e:
            pinned, why = None, e.strerror or str(e)
        code, _ = self.call("PUBLISH", self.user, path, " ".join(description))
        if code == 0:
            if pinned is None:
                self.warn("PUBLISH: %s will not be served: %s" % (shown(path), why))
            else:
                self.peer.publish(path, pinned)
                self._save_record(self._record(self.user), self.peer.published_files())
        self.say(message("PUBLISH", code))

    def cmd_delete(self, path):
        if self._acting_user("DELETE") is None:
            return
        path = os.path.abspath(os.path.expanduser(path))
        code, _ = self.call("DELETE", self.user, path)
        # Withdrawn whatever the index answers, before the result line.
        if path in self.peer.published_files():
            self.peer.unpublish(path)
            self._save_record(self._record(self.user), self.peer.published_files())
        self.say(message("DELETE", code))

    def cmd_list_users(self):
        if self._acting_user("LIST_USERS") is None:
            return
        code, users = self.call("LIST_USERS", self.user, read_data=read_users)
        self.say(message("LIST_USERS", code))
        for name, ip, port in users or []:
            self.detail("%s %s %s" % (name, ip, port))

    def cmd_list_content(self, target):
        if self._acting_user("LIST_CONTENT") is None:
            return
        code, paths = self.call("LIST_CONTENT", self.user, target, read_data=read_content)
        self.say(message("LIST_CONTENT", code))
        for path in paths or []:
            self.detail(path)

    def cmd_get_file(self, owner, remote, local):
        try:
            code = self.get_file(owner, remote, local)
        except DownloadError as e:
            self.warn("GET_FILE: %s" % e)
            code = None
        self.say(message("GET_FILE", code))

    def get_file(self, owner, remote, local):
        """Download; returns 0 or 1 (no such file), or raises DownloadError
        with the reason."""
        if self.user is None:
            raise DownloadError("connect first (the owner's address comes from LIST_USERS)")
        code, users = self.call("LIST_USERS", self.user, read_data=read_users)
        if code != 0:
            raise DownloadError("LIST_USERS failed: %s" % message("LIST_USERS", code))
        entry = next(((ip, port) for name, ip, port in users if name == owner), None)
        if entry is None:
            raise DownloadError("%s is not connected" % shown(owner))
        return fetch(peer_address(*entry), remote, local, self.interactive)

    def cmd_help(self):
        print("commands (case does not matter):", file=self.out)
        for _, _, usage in COMMANDS.values():
            print("  " + usage, file=self.out)
        self.out.flush()

    def quit(self):
        """QUIT and end of input: disconnect our user first."""
        if self.user is not None:
            self.cmd_disconnect(self.user)

    def run_line(self, line):
        """Run one command line; returns False when the client should stop."""
        words = line.split()
        if not words:
            return True
        name = words[0].upper()
        if name not in COMMANDS:
            print("unknown command %r (type HELP for the list)" % words[0], file=self.out,
                  flush=True)
            return True
        lo, hi, usage = COMMANDS[name]
        args = words[1:]
        if name == "PUBLISH" and len(args) >= 1:
            # The description is the rest of the line, spaces kept.
            rest = line.split(None, 2)
            args = rest[1:2] + ([rest[2].strip()] if len(rest) > 2 else [])
        if len(args) < lo or (hi is not None and len(args) > hi):
            print("usage: " + usage, file=self.out, flush=True)
            return True
        if name == "QUIT":
            self.quit()
            return False
        getattr(self, "cmd_" + name.lower())(*args)
        return True


def setup_readline():
    """History in ~/.peerdex_history and completion of command names."""
    try:
        import readline
    except ImportError:
        return
    import atexit
    history = os.path.join(os.path.expanduser("~"), ".peerdex_history")
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)
    atexit.register(lambda: _save_history(readline, history))
    names = sorted(COMMANDS)

    def complete(text, state):
        matches = [n for n in names if n.startswith(text.upper())]
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


def _save_history(readline, path):
    try:
        readline.write_history_file(path)
    except OSError:
        pass


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="client.py", description="peerdex client: c> command line and peer file server")
    parser.add_argument("-s", "--server", required=True, help="index server host")
    parser.add_argument("-p", "--port", required=True, type=int, help="index server port")
    parser.add_argument("--time-url", help="use this time web service instead of our own, "
                        "e.g. http://host:8000/datetime")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="diagnostics on stderr (e.g. the time service's PID)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error("port must be 1..65535")
    return args


def main(argv=None):
    args = parse_args(argv)
    interactive = sys.stdin.isatty()
    if args.time_url:
        try:
            time_client = TimeClient(url=args.time_url)
        except TimeError as e:
            print("client.py: %s" % e, file=sys.stderr)
            return 2
    else:
        time_client = TimeClient(service=TimeService(verbose=args.verbose))
    client = Client(args.server, args.port, time_client, interactive=interactive)
    if interactive:
        setup_readline()
    try:
        while True:
            try:
                line = input("c> ") if interactive else sys.stdin.readline()
                if not interactive and line == "":
                    raise EOFError
            except EOFError:
                if interactive:
                    print()
                client.quit()
                break
            if not client.run_line(line):
                break
    except KeyboardInterrupt:
        print()
        client.quit()
    except BrokenPipeError:
        # Whoever read our output went away (`client.py | head -1`): stop as at
        # end of input, quietly, with status 1.
        silence_output()
        client.quit()
        return 1
    finally:
        time_client.close()
    return 0


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
