"""Terminal comforts for the c> prompt: readline history and tab completion.

Only used when stdin is a terminal; scripts never see any of it.
"""
import os

# Which argument (1-based) of a command is a local path / a user name.
PATH_ARG = {"PUBLISH": 1, "DELETE": 1, "GET_FILE": 3}
USER_ARG = {"REGISTER": 1, "UNREGISTER": 1, "CONNECT": 1, "DISCONNECT": 1,
            "LIST_CONTENT": 1, "GET_FILE": 1}


def path_completions(text):
    """Local paths starting with text (~ understood), directories with a /."""
    expanded = os.path.expanduser(text)
    folder, base = os.path.split(expanded)
    try:
        names = sorted(os.listdir(folder or "."))
    except OSError:
        return []
    shown_folder = text[:len(text) - len(base)]
    out = []
    for n in names:
        if n.startswith(base) and (base.startswith(".") or not n.startswith(".")):
            full = shown_folder + n
            if os.path.isdir(os.path.join(folder or ".", n)):
                full += "/"
            out.append(full)
    return out


def setup_readline(known_users, names, aliases):
    """History in ~/.peerdex_history; completion of the command `names`, of
    local paths where a command takes one, and of the user names
    known_users() returns (those of the last LIST_USERS) where it takes a user."""
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
    cache = {}

    def candidates(text):
        before = readline.get_line_buffer()[:readline.get_begidx()].split()
        if not before:
            return [n + " " for n in names if n.startswith(text.upper())] + \
                [n.lower() + " " for n in aliases if n.lower().startswith(text)]
        cmd = aliases.get(before[0].upper(), before[0].upper())
        position = len(before)
        if PATH_ARG.get(cmd) == position:
            return path_completions(text)
        if USER_ARG.get(cmd) == position:
            return [u + " " for u in known_users() if u.startswith(text)]
        return []

    def complete(text, state):
        if state == 0:
            cache["list"] = candidates(text)
        found = cache.get("list", [])
        return found[state] if state < len(found) else None

    readline.set_completer_delims(" \t\n")
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


def _save_history(readline, path):
    """At exit: keep the history; a home that cannot be written loses it only."""
    try:
        readline.write_history_file(path)
    except OSError:
        pass
