# -*- test-case-name: tests.test_webfolder -*-
"""
Web folders (SPEC W3, §30): a personal folder webdir/ID and a shared one
webdir/common<N> for the accounts of board group N.  WEBDIR (zwms.cfg) is
relative to the home.

Paths come from the browser as "a/b/c" text and are checked component by
component before anything touches the disk (L{check_name}): no "..", no
absolute paths, no NUL or control or invisible (bidi, zero-width)
characters, no backslash or Unicode look-alikes of "/" and "\\", no hidden
names (our temp files start with "."), at most 255 UTF-8 bytes a name;
names are stored in NFC so that one name has one file.  Symbolic links are
never followed, inside or out: a path through one is refused and listings
skip them.

Uploads are streamed (L{WebFolders.open_upload}): chunks go to a temp file
in the target folder, the quota is checked as they arrive and again at
commit, and close() fsyncs and renames.  With WFCAPA=1 the personal
folder's quota is the account's capacity minus its mail usage; shared
folders have no per-account quota.  Downloads (L{WebFolders.open_download})
hand an open file (O_NOFOLLOW, checked regular after opening) to the
page's producer; L{WebFolders.tree} lists the folders a move may target.
Blocking: call from a thread.
"""

import os
import shutil
import stat
import threading
import unicodedata
from dataclasses import dataclass

from zwms.account import check_id
from zwms.errors import InvalidValue
from zwms.fileio import TMP_PREFIX, fsync_dir
from zwms.home import safe_join

MAX_NAME_BYTES = 255
MAX_PATH_CHARS = 1024
MAX_DEPTH = 32
#: Characters that look like a path separator (or are one elsewhere).
LOOKALIKES = set("\\\u2215\u2044\u29f8\u29f9\uff0f\uff3c\ufe68\u2216\u244a\u1735\u2cf9\u3033")


class QuotaExceeded(InvalidValue):
    """The upload would pass the account's web-folder quota."""


@dataclass
class Entry:
    """One listed file or folder."""
    name: str
    is_dir: bool
    size: int
    mtime: float


def check_name(name):
    """
    One path component, normalised to NFC.

    @raise InvalidValue: empty, ".", "..", hidden, too long, a separator or
        look-alike, a control or invisible character.
    """
    if not isinstance(name, str):
        raise InvalidValue("a name must be text")
    name = unicodedata.normalize("NFC", name)
    if name in ("", ".", ".."):
        raise InvalidValue("invalid name %r" % (name,))
    if name.startswith("."):
        raise InvalidValue("names may not start with '.': %r" % (name,))
    if name != name.strip() or name.endswith("."):
        raise InvalidValue("names may not start or end with a space or end with '.'")
    for ch in name:
        if ch == "/" or ch in LOOKALIKES:
            raise InvalidValue("names may not contain %r" % (ch,))
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise InvalidValue("names may not contain the character U+%04X" % ord(ch))
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidValue("the name is too long (most %d bytes)" % MAX_NAME_BYTES)
    return name


def split_path(path):
    """
    A browser path ("a/b", "/a/b/", "") into checked components; "" is the
    folder's root.
    """
    if not isinstance(path, str):
        raise InvalidValue("a path must be text")
    if "\x00" in path or "\\" in path:
        raise InvalidValue("invalid path %r" % (path,))
    if len(path) > MAX_PATH_CHARS:
        raise InvalidValue("the path is too long")
    parts = [p for p in path.split("/") if p not in ("",)]
    if len(parts) > MAX_DEPTH:
        raise InvalidValue("the path is too deep")
    return [check_name(p) for p in parts]


class WebFolders:
    """
    The web folders of one home.

    @param mail: the mail store (its usage(ID) gives the mail bytes for the
        WFCAPA quota); None counts no mail.
    """

    def __init__(self, home, settings, mail=None):
        self.home = home
        self.settings = settings
        self.mail = mail
        self._locks = {}
        self._guard = threading.Lock()

    # ---- where ------------------------------------------------------------

    @property
    def root(self):
        return os.path.join(self.home.root, self.settings["WEBDIR"])

    def folder(self, account, shared=False):
        """The folder's root for C{account} (created when missing)."""
        root = self.root
        if shared:
            name = "common%d" % int(account.boardgroup or 0)
        else:
            name = check_id(account.id)
        os.makedirs(root, exist_ok=True)
        base = safe_join(root, name)
        if os.path.islink(base):
            raise InvalidValue("the web folder is a link")
        os.makedirs(base, exist_ok=True)
        return base

    def _resolve(self, account, path, shared, must_exist=True):
        """(folder root, absolute path) for a checked path; refuse links on the way."""
        base = self.folder(account, shared)
        parts = split_path(path)
        current = base
        for i, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                if must_exist or i < len(parts) - 1:
                    raise InvalidValue("no such file or folder: %s" % "/".join(parts[:i + 1]))
                break
            if stat.S_ISLNK(st.st_mode):
                raise InvalidValue("links are not followed: %s" % "/".join(parts[:i + 1]))
            if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
                raise InvalidValue("not a folder: %s" % "/".join(parts[:i + 1]))
        # Belt and braces: the real path stays under the root.
        safe_join(base, *parts) if parts else base
        return base, current

    def _lock(self, base):
        with self._guard:
            return self._locks.setdefault(base, threading.Lock())

    # ---- reading ----------------------------------------------------------

    def list(self, account, path="", shared=False):
        """The entries of a folder, folders first, by name; links and hidden names skipped."""
        _, target = self._resolve(account, path, shared)
        if not os.path.isdir(target):
            raise InvalidValue("not a folder: %s" % path)
        out = []
        with os.scandir(target) as it:
            for e in it:
                if e.name.startswith(".") or e.is_symlink():
                    continue
                st = e.stat(follow_symlinks=False)
                out.append(Entry(e.name, stat.S_ISDIR(st.st_mode),
                                 0 if stat.S_ISDIR(st.st_mode) else st.st_size, st.st_mtime))
        out.sort(key=lambda e: (not e.is_dir, e.name.lower()))
        return out

    def download(self, account, path, shared=False):
        """
        (absolute path, size, name) of a file for a producer to stream.
        @raise InvalidValue: missing, a folder, a link.
        """
        _, target = self._resolve(account, path, shared)
        st = os.lstat(target)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidValue("not a file: %s" % path)
        return target, st.st_size, os.path.basename(target)

    def open_download(self, account, path, shared=False):
        """
        (open binary file, size, name) of a file, opened without following
        a link (O_NOFOLLOW) and checked to be a regular file after opening,
        for a producer to stream; the caller closes it.
        @raise InvalidValue: missing, a folder, a link.
        """
        _, target = self._resolve(account, path, shared)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            raise InvalidValue("not a file: %s" % path)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise InvalidValue("not a file: %s" % path)
        return os.fdopen(fd, "rb"), st.st_size, os.path.basename(target)

    def tree(self, account, shared=False, limit=1000):
        """Every folder of a web folder as "a/b" paths ("" the root), links skipped."""
        base = self.folder(account, shared)
        out = [""]
        for folder, dirs, _files in os.walk(base):     # os.walk does not follow links
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and not os.path.islink(os.path.join(folder, d)))
            for d in dirs:
                out.append(os.path.relpath(os.path.join(folder, d), base).replace(os.sep, "/"))
            if len(out) >= limit:
                break
        return sorted(out[:limit])

    def usage(self, account):
        """Bytes of the files in the personal folder (no links, no uploads in progress)."""
        return _tree_size(self.folder(account))

    def quota(self, account):
        """
        Bytes the personal folder may still take, or None for no limit:
        capacity - mail usage - web-folder usage when WFCAPA=1.
        """
        free = self._free(account)
        return None if free is None else max(0, free)

    def _free(self, account):
        """capacity - mail - web folder (may be negative), or None for no limit."""
        capacity = int(account.capacity or 0)
        if not self.settings["WFCAPA"] or capacity <= 0:
            return None
        mail_bytes = self.mail.usage(account.id)[1] if self.mail is not None else 0
        return capacity - mail_bytes - self.usage(account)

    # ---- changing ---------------------------------------------------------

    def mkdir(self, account, path, shared=False):
        """Create a folder (its parent must exist)."""
        _, target = self._resolve(account, path, shared, must_exist=False)
        if os.path.lexists(target):
            raise InvalidValue("already exists: %s" % path)
        os.mkdir(target, 0o750)
        fsync_dir(os.path.dirname(target))

    def rename(self, account, path, new_name, shared=False):
        """Rename a file or folder within its folder."""
        base, target = self._resolve(account, path, shared)
        if target == base:
            raise InvalidValue("the root folder cannot be renamed")
        dest = os.path.join(os.path.dirname(target), check_name(new_name))
        if os.path.lexists(dest):
            raise InvalidValue("already exists: %s" % new_name)
        os.rename(target, dest)
        fsync_dir(os.path.dirname(target))

    def move(self, account, path, dest_folder, shared=False):
        """Move a file or folder into another folder of the same web folder."""
        base, target = self._resolve(account, path, shared)
        _, dest_dir = self._resolve(account, dest_folder, shared)
        if target == base:
            raise InvalidValue("the root folder cannot be moved")
        if not os.path.isdir(dest_dir):
            raise InvalidValue("not a folder: %s" % dest_folder)
        if dest_dir == target or dest_dir.startswith(target + os.sep):
            raise InvalidValue("a folder cannot be moved into itself")
        dest = os.path.join(dest_dir, os.path.basename(target))
        if os.path.lexists(dest):
            raise InvalidValue("already exists there: %s" % os.path.basename(target))
        os.rename(target, dest)
        fsync_dir(os.path.dirname(target))
        fsync_dir(dest_dir)

    def delete(self, account, paths, shared=False):
        """Delete files and folders (with their contents); return how many."""
        checked = []
        for path in paths:
            base, target = self._resolve(account, path, shared)
            if target == base:
                raise InvalidValue("the root folder cannot be deleted")
            checked.append(target)
        for target in checked:
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)   # rmtree never follows links
            else:
                os.unlink(target)
            fsync_dir(os.path.dirname(target))
        return len(checked)

    def open_upload(self, account, folder, filename, shared=False):
        """
        A writer for one uploaded file: write(chunk) as the data arrives,
        close() to commit (replacing a file of that name), abort() to drop.

        @raise InvalidValue: bad folder or name, a folder of that name.
        @raise QuotaExceeded: from write() or close() when over the quota.
        """
        base, dest_dir = self._resolve(account, folder, shared)
        if not os.path.isdir(dest_dir):
            raise InvalidValue("not a folder: %s" % folder)
        # Browsers may send "C:\\dir\\file.txt": keep the last part only.
        name = check_name(str(filename).replace("\\", "/").rsplit("/", 1)[-1])
        dest = os.path.join(dest_dir, name)
        if os.path.lexists(dest) and not stat.S_ISREG(os.lstat(dest).st_mode):
            raise InvalidValue("a folder or link of that name exists: %s" % name)
        limit = None if shared else self.quota(account)
        return Upload(self, account, base, dest, limit, shared)


class Upload:
    """A streamed upload into a temp file; see L{WebFolders.open_upload}."""

    def __init__(self, folders, account, base, dest, limit, shared):
        self._folders, self._account, self._base = folders, account, base
        self.dest, self.limit, self.shared = dest, limit, shared
        self.replaced = os.lstat(dest).st_size if os.path.exists(dest) else 0
        self.tmp = os.path.join(os.path.dirname(dest), "%s%s" % (
            TMP_PREFIX, os.urandom(8).hex()))
        self._fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                           0o640)
        self.size = 0
        self.done = False

    def _allowed(self):
        return None if self.limit is None else self.limit + self.replaced

    def write(self, chunk):
        """Append a chunk. @raise QuotaExceeded (the upload is then aborted)."""
        if self.done:
            raise InvalidValue("the upload is finished")
        allowed = self._allowed()
        if allowed is not None and self.size + len(chunk) > allowed:
            self.abort()
            raise QuotaExceeded("the web folder quota is full (%d bytes free)" % allowed)
        view = memoryview(chunk)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.size += len(chunk)

    def close(self):
        """fsync and put the file in place; return its size."""
        if self.done:
            raise InvalidValue("the upload is finished")
        try:
            os.fsync(self._fd)
        except BaseException:
            self.abort()
            raise
        os.close(self._fd)
        self._fd = None
        with self._folders._lock(self._base):
            if not self.shared and self.limit is not None:
                # Re-check: another upload may have committed meanwhile (temp
                # files are not counted); the file this one replaces goes.
                free = self._folders._free(self._account)
                current = os.lstat(self.dest).st_size if os.path.exists(self.dest) else 0
                if free is not None and free + current - self.size < 0:
                    self.abort()
                    raise QuotaExceeded("the web folder quota is full")
            os.replace(self.tmp, self.dest)
        self.done = True
        fsync_dir(os.path.dirname(self.dest))
        return self.size

    def abort(self):
        """Drop the upload (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass
        self.done = True


def _tree_size(top):
    total = 0
    for folder, dirs, files in os.walk(top):   # os.walk does not follow links
        for name in files:
            if name.startswith(TMP_PREFIX):
                continue  # an upload in progress: counted when it commits
            try:
                st = os.lstat(os.path.join(folder, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
