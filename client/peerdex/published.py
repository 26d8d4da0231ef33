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
- An editor's save, a `cp` or a download onto the path replaces the file (a
  new inode).  `repin()` accepts the new one when it is a regular file owned
  by the same user in the very directory pinned at PUBLISH (same directory
  inode, reached with no symlink); anything else stays refused (`refusal()`
  says why).
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

# The identity of a published file, as pinned at PUBLISH: its resolved path,
# the file's (device, inode), its owner's uid and its directory's (device,
# inode).  A record from before uid and the directory were kept has None there
# (such a file is never re-pinned).
Pinned = namedtuple("Pinned", "real dev ino uid pdev pino", defaults=(None, None, None))


def open_dir_nofollow(path):
    """An O_PATH descriptor of the directory holding the last component of
    the absolute `path`, reached without following a symlink; OSError else."""
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
    except BaseException:
        os.close(dfd)
        raise
    return dfd


def open_nofollow(path, dir_fd=None):
    """Open an absolute path read-only without following a symlink in any
    component; returns the descriptor or raises OSError.

    Each directory is opened relative to the one before (O_PATH, O_DIRECTORY,
    O_NOFOLLOW), so no step can be redirected by a symlink; the last component
    is opened with O_NOFOLLOW and O_NONBLOCK (a FIFO cannot block us).  With
    `dir_fd` (from open_dir_nofollow) the last component is opened in it.
    """
    dfd = open_dir_nofollow(path) if dir_fd is None else dir_fd
    try:
        return os.open(path.rsplit("/", 1)[1],
                       os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    finally:
        if dir_fd is None:
            os.close(dfd)


def pin(path):
    """Pin the file a path names now (symlinks in the path resolved once,
    here); returns a Pinned or raises OSError (not there, not a regular file)."""
    real = os.path.realpath(path, strict=True)
    dfd = open_dir_nofollow(real)
    try:
        dst = os.fstat(dfd)
        fd = open_nofollow(real, dfd)
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", path)
    return Pinned(real, st.st_dev, st.st_ino, st.st_uid, dst.st_dev, dst.st_ino)


def repin(pinned):
    """After open_pinned() gave nothing: (file object, new Pinned) when the
    path now holds a regular file owned by the same user in the same
    directory as pinned (an editor's save, a cp, a download onto it), else
    (None, why) with why in words."""
    if pinned.pino is None:
        return None, "it was replaced, and its record predates re-pinning"
    try:
        dfd = open_dir_nofollow(pinned.real)
    except OSError as e:
        return None, "its directory cannot be reached without a symlink (%s)" % (
            e.strerror or e)
    try:
        dst = os.fstat(dfd)
        if (dst.st_dev, dst.st_ino) != (pinned.pdev, pinned.pino):
            return None, "its directory was replaced by another one"
        try:
            fd = open_nofollow(pinned.real, dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                return None, "it is now a symlink"
            return None, e.strerror or str(e)
    finally:
        os.close(dfd)
    st = os.fstat(fd)
    why = None
    if stat.S_ISDIR(st.st_mode):
        why = "it is now a directory"
    elif not stat.S_ISREG(st.st_mode):
        why = "it is now not a regular file"
    elif st.st_uid != pinned.uid:
        why = "it is now owned by another user (uid %d, not %d)" % (st.st_uid, pinned.uid)
    if why:
        os.close(fd)
        return None, why
    return os.fdopen(fd, "rb"), pinned._replace(dev=st.st_dev, ino=st.st_ino)


def open_pinned(pinned):
    """An open file object for a pinned file, or None when the path now
    leads anywhere else (a symlink on the way, another file, a directory)."""
    try:
        dfd = open_dir_nofollow(pinned.real)
    except OSError:
        return None
    try:
        # The directory and the owner too: a file or directory made after the
        # published one was deleted may get its inode number.
        dst = os.fstat(dfd)
        if pinned.pino is not None and (dst.st_dev, dst.st_ino) != (pinned.pdev, pinned.pino):
            return None
        fd = open_nofollow(pinned.real, dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (pinned.dev, pinned.ino) \
            or pinned.uid is not None and st.st_uid != pinned.uid:
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
            extra = [entry.get(k) for k in ("uid", "pdev", "pino")]
            files[path] = Pinned(str(entry["real"]), int(entry["dev"]), int(entry["ino"]),
                                 *[None if v is None else int(v) for v in extra])
        return files

    def save(self, files):
        """Replace the record with `files` atomically (mode 0600, fsync'd)."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        data = {"server": self.server, "user": self.user,
                "files": {p: f._asdict() for p, f in sorted(files.items())}}
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
