"""What this client's user published: the files the peer server may serve.

The index server cannot tell us what our user published: the protocol has no
credentials, so anyone may PUBLISH in our user's name, and a hostile index may
list anything.  So the client keeps its own list:

- A file is pinned when its user publishes it: its resolved path (no symlink
  left in it) and the identity (device, inode) of the regular file found there.
- It is served only through `open_pinned()`: every component of the resolved
  path opened with O_NOFOLLOW, one directory at a time (openat), and the
  identity checked again on the open descriptor.  A symlink or a different
  file swapped in anywhere along the path, at any moment, gives no file.
- The pinned files of each (index server, user) are kept in a record under the
  user's own configuration directory ($XDG_CONFIG_HOME/peerdex, else
  ~/.config/peerdex), mode 0600, replaced atomically, so that files published
  in an earlier session are served again after the next CONNECT.
"""
import errno
import hashlib
import json
import os
import stat
import tempfile
from collections import namedtuple

# The identity of a published file, as pinned at PUBLISH.
Pinned = namedtuple("Pinned", "real dev ino")


def open_nofollow(path):
    """Open an absolute path read-only without following a symlink in any
    component; returns the descriptor or raises OSError.

    Each directory is opened relative to the one before (O_PATH, O_DIRECTORY,
    O_NOFOLLOW), so no step can be redirected by a symlink; the last component
    is opened with O_NOFOLLOW and O_NONBLOCK (a FIFO cannot block us).
    """
    parts = path.split("/")[1:]
    if not path.startswith("/") or not parts or any(p in ("", ".", "..") for p in parts):
        raise OSError(errno.EINVAL, "not a resolved absolute path", path)
    dir_flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    dfd = os.open("/", dir_flags)
    try:
        for part in parts[:-1]:
            nfd = os.open(part, dir_flags, dir_fd=dfd)
            os.close(dfd)
            dfd = nfd
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                       dir_fd=dfd)
    finally:
        os.close(dfd)


def pin(path):
    """Pin the file a path names now (symlinks in the path resolved once,
    here); returns a Pinned or raises OSError (not there, not a regular file)."""
    real = os.path.realpath(path, strict=True)
    fd = open_nofollow(real)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", path)
    return Pinned(real, st.st_dev, st.st_ino)


def open_pinned(pinned):
    """An open file object for a pinned file, or None when the path now
    leads anywhere else (a symlink on the way, another file, a directory)."""
    try:
        fd = open_nofollow(pinned.real)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (pinned.dev, pinned.ino):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def config_dir():
    """The user's peerdex configuration directory."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "peerdex")


class Record:
    """The pinned files of one user on one index server, kept on disk.

    One JSON file per (server, user), named by a hash of the two so that any
    user name makes a valid file name.  Only the client connected as that user
    writes it (the index refuses a second CONNECT of the same user).
    """

    def __init__(self, server, user, directory=None):
        self.server, self.user = server, user
        self.dir = directory or config_dir()
        key = hashlib.sha256(("%s\0%s" % (server, user)).encode("utf-8", "surrogateescape"))
        self.path = os.path.join(self.dir, "published-%s.json" % key.hexdigest()[:32])

    def load(self):
        """The recorded files, {path: Pinned}; {} when there is no record.
        Raises ValueError or OSError for a record that cannot be read."""
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        if data.get("server") != self.server or data.get("user") != self.user:
            raise ValueError("%s belongs to another user or server" % self.path)
        files = {}
        for path, entry in data["files"].items():
            files[path] = Pinned(str(entry["real"]), int(entry["dev"]), int(entry["ino"]))
        return files

    def save(self, files):
        """Replace the record with `files` atomically (mode 0600, fsync'd)."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        data = {"server": self.server, "user": self.user,
                "files": {p: {"real": f.real, "dev": f.dev, "ino": f.ino}
                          for p, f in sorted(files.items())}}
        fd, tmp = tempfile.mkstemp(prefix=".published-", suffix=".tmp", dir=self.dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise
        dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def remove(self):
        """Forget the record (the user was unregistered)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
