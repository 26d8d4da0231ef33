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
  in an earlier session are served again after the next CONNECT.  Next to it
  lies the user's secret when the index speaks the AUTH extension.
- That directory is used only when it is safe, as ssh does with ~/.ssh: it
  and every file read from it owned by this user and not writable by group
  or others, every directory above it owned by this user or root and not
  writable by others unless sticky (/tmp), files regular (no symlink, FIFO or
  device), records no larger than RECORD_MAX and nested at most DEPTH_MAX
  deep (so reading one can neither hang, nor exhaust memory, nor recurse
  without bound).  Otherwise UnsafeConfig says exactly what to fix.
"""
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from collections import namedtuple

# The identity of a published file, as pinned at PUBLISH: its resolved path,
# the file's (device, inode), its owner's uid and its directory's (device,
# inode).  A record from before uid and the directory were kept has None there
# (such a file is never re-pinned).
Pinned = namedtuple("Pinned", "real dev ino uid pdev pino", defaults=(None, None, None))

RECORD_MAX = 64 << 20           # bytes of one record at most
SECRET_MAX = 256                # bytes of a secret file at most
DEPTH_MAX = 8                   # nesting of a record's JSON at most (it needs 3)
SECRET_SIZE = 32                # bytes of a user's secret (256 bits)


class UnsafeConfig(Exception):
    """The configuration directory or a file in it cannot be trusted; the
    text says which and what to do."""


def _mode(st):
    return "%04o" % stat.S_IMODE(st.st_mode)


def _check_owner(path, st, what, root_ok=False):
    """Refuse what another user owns, or what group or others may write."""
    uid = os.getuid()
    if st.st_uid != uid and not (root_ok and st.st_uid == 0):
        raise UnsafeConfig(
            "%s %s is owned by uid %d, not by you (uid %d): anyone who owns it can replace "
            "what the client keeps there; remove it, or set XDG_CONFIG_HOME to a directory "
            "of your own" % (what, path, st.st_uid, uid))
    if st.st_mode & 0o022 and not (stat.S_ISDIR(st.st_mode) and root_ok and
                                   st.st_mode & stat.S_ISVTX):
        raise UnsafeConfig("%s %s is writable by group or others (mode %s): run "
                           "chmod go-w %s" % (what, path, _mode(st), path))


def check_config_dir(directory, create=False):
    """Refuse (UnsafeConfig) a configuration directory someone else could
    change: it, or any directory above it.  With create, a missing one is
    made (0700) first; else a missing one is fine (nothing to read)."""
    if create:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        if create:
            raise
        return
    if stat.S_ISLNK(st.st_mode):
        st = os.stat(directory)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeConfig("the configuration directory %s is not a directory: remove it"
                           % directory)
    _check_owner(directory, st, "the configuration directory")
    above = os.path.dirname(os.path.realpath(directory))
    while True:
        _check_owner(above, os.stat(above), "the directory", root_ok=True)
        parent = os.path.dirname(above)
        if parent == above:
            break
        above = parent


def read_private(path, limit, secret=False):
    """The bytes of a file of the configuration directory, read only when it
    is a regular file of ours that group and others cannot write (nor read,
    for a secret), and at most `limit` bytes.  FileNotFoundError when there
    is none; UnsafeConfig otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafeConfig("%s is a symbolic link: remove it" % path) from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeConfig("%s is not a regular file (a FIFO, device or directory): "
                               "remove it" % path)
        _check_owner(path, st, "the file")
        if secret and st.st_mode & 0o077:
            raise UnsafeConfig("the secret %s is readable by group or others (mode %s): run "
                               "chmod 600 %s" % (path, _mode(st), path))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnsafeConfig("%s is larger than %d bytes: not a file this client wrote; "
                           "remove it" % (path, limit))
    return data


STRING_RX = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
BRACKET_RX = re.compile(r"[\[\]{}]")


def json_depth(text):
    """How deep arrays and objects nest in JSON text (strings skipped), in
    one pass without recursion."""
    depth = deepest = 0
    for c in BRACKET_RX.findall(STRING_RX.sub("", text)):
        depth += 1 if c in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


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
        Raises ValueError, OSError or UnsafeConfig for a record that cannot
        be read or trusted."""
        check_config_dir(self.dir)
        try:
            text = read_private(self.path, RECORD_MAX).decode("utf-8")
        except FileNotFoundError:
            return {}
        if json_depth(text) > DEPTH_MAX:
            raise ValueError("%s nests deeper than a record does" % self.path)
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise ValueError("%s is not a record of published files" % self.path)
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
        check_config_dir(self.dir, create=True)
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


class Secret:
    """The secret of one user on one index server (the AUTH extension): 256
    random bits as 64 hex digits, mode 0600, next to the user's record."""

    def __init__(self, record):
        self.dir = record.dir
        self.path = record.path[:-len(".json")].replace("published-", "secret-") + ".key"

    def load(self):
        """The secret's bytes, or None when this machine has none.  Raises
        UnsafeConfig for one that cannot be trusted or read."""
        check_config_dir(self.dir)
        try:
            text = read_private(self.path, SECRET_MAX, secret=True)
        except FileNotFoundError:
            return None
        try:
            value = bytes.fromhex(text.decode("ascii").strip())
        except (UnicodeError, ValueError):
            value = b""
        if len(value) != SECRET_SIZE:
            raise UnsafeConfig("%s holds no secret (64 hex digits)" % self.path)
        return value

    def create(self):
        """A new random secret written to a temporary file beside this one
        (0600); (secret, temporary path): keep() or discard() it after REGISTER."""
        check_config_dir(self.dir, create=True)
        value = os.urandom(SECRET_SIZE)
        fd, tmp = tempfile.mkstemp(prefix=".secret-", suffix=".tmp", dir=self.dir)
        with os.fdopen(fd, "w") as f:
            f.write(value.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        return value, tmp

    def keep(self, tmp):
        """Put a created secret in place (the index registered it)."""
        os.replace(tmp, self.path)
        dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @staticmethod
    def discard(tmp):
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass

    def remove(self):
        """Forget the secret (the user was unregistered)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
