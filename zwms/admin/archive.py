# -*- test-case-name: tests.test_admin_ops -*-
"""
Moving an account's data in and out of the home (SPEC X2):

- eml import (§27): import/userd/ID/*.eml into the account's Inbox;
- backup (§25): the account's files, not its mail, into backup/userd/ID/;
- mailbox zip (§26): the .eml files into ZIPDIR/root|mid|user/ID-<stamp>.zip.

Mail goes in only through the mail store (C{ctx.deliver}) and comes out
only through it (C{ctx.mail.messages}/C{read}), so the index stays right.
"""

import os
import re
import secrets
import stat
import time
import zipfile
from dataclasses import dataclass, field

from zwms.account import FOLDER_RE, FOLDERS, Delivery, check_id
from zwms.errors import InvalidValue, ZWMSError
from zwms.fileio import TMP_PREFIX, atomic_write, fsync_dir

#: Who made a zip (§26): the folder under ZIPDIR.
ZIP_BY = ("root", "mid", "user")

#: A header field line (RFC 5322 §2.2: printable ASCII but ':', then ':').
HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")


@dataclass
class ImportResult:
    """
    What an import did.

    @ivar folder: the import folder.
    @ivar imported: (file name, stored name) for each message stored.
    @ivar refused: (file name, reason) for each file left in place.
    """
    folder: str
    imported: list = field(default_factory=list)
    refused: list = field(default_factory=list)


def import_folder(home, aid):
    """
    import/userd/ID under the home.  C{aid} is a checked ID (no path
    tricks), so a plain join is safe, and import/ (like backup/) may be a
    link to another disk.
    """
    return os.path.join(home.root, "import", "userd", check_id(aid))


def check_message(data, max_bytes):
    """
    Refuse what is not a message: empty, too big, or not starting with a
    header line.  A leading mbox "From " line is dropped (it is no header).

    @return: the bytes to store.
    @raise InvalidValue: with the reason.
    """
    if data.startswith(b"From "):
        data = data.partition(b"\n")[2]
    if not data.strip():
        raise InvalidValue("empty file")
    if max_bytes and len(data) > max_bytes:
        raise InvalidValue("larger than MAXMAILSIZE (%d KB)" % (max_bytes // 1024))
    if not HEADER_LINE.match(data):
        raise InvalidValue("not a mail message (it does not start with a header line)")
    return data


def _regular_files(folder, suffix=None):
    """Sorted names of the regular files (no links, no temp files) in C{folder}."""
    names = []
    for entry in os.scandir(folder):
        if entry.name.startswith(TMP_PREFIX):
            continue
        if suffix and not entry.name.lower().endswith(suffix):
            continue
        if entry.is_file(follow_symlinks=False):
            names.append(entry.name)
    return sorted(names)


def import_eml(ctx, aid):
    """
    Store each import/userd/ID/*.eml in the Inbox of account C{aid} (§27),
    one message at a time, deleting each file only after C{ctx.deliver} has
    returned (the message is then fsynced in the mailbox).  A bad file is
    refused and left in place; a storage failure stops the import and
    leaves the rest untouched.  Quotas are not applied: the administrator
    moves existing mail.  A crash between storing and deleting may store a
    message twice on the next import; it never loses one.
    """
    result = ImportResult(import_folder(ctx.home, aid))
    if not os.path.isdir(result.folder):
        return result
    max_bytes = ctx.settings["MAXMAILSIZE"] * 1024
    deleted = False
    try:
        for filename in _regular_files(result.folder, ".eml"):
            path = os.path.join(result.folder, filename)
            try:
                with open(path, "rb") as f:
                    data = check_message(f.read(max_bytes + 1 if max_bytes else -1),
                                         max_bytes)
            except InvalidValue as e:
                result.refused.append((filename, str(e)))
                continue
            except OSError as e:
                result.refused.append((filename, "cannot read: %s" % (e.strerror or e,)))
                continue
            try:
                names = ctx.deliver([Delivery(aid, data, "Inbox")])
            except ZWMSError as e:
                result.refused.append((filename, str(e)))
                continue
            except Exception as e:
                result.refused.append((filename, "storage failed, import stopped: %s" % (e,)))
                break
            try:
                os.unlink(path)
                deleted = True
            except OSError as e:
                result.refused.append((filename, "stored as %s but not deleted (%s): "
                                       "delete it before importing again"
                                       % (names[0], e.strerror or e)))
                continue
            result.imported.append((filename, names[0]))
    finally:
        if deleted:
            fsync_dir(result.folder)
    return result


def backup_account(ctx, aid):
    """
    Copy the account's own files (account.cfg, settings, address book,
    calendar …) but not its mail into backup/userd/ID/ (§25), each copy
    written atomically.  Files of the previous backup are overwritten.

    @return: (backup folder, sorted relative paths copied).
    """
    source = ctx.home.user_dir(aid)
    # A checked ID: a plain join is safe, and backup/ may link to another disk.
    target = os.path.join(ctx.home.root, "backup", "userd", check_id(aid))
    if not os.path.isdir(source):
        raise ZWMSError("account %r has no folder %s" % (aid, source))
    copied = []
    for folder, dirs, files in os.walk(source):
        rel = os.path.relpath(folder, source)
        # The mail is not backed up (§25 backs up the account file).
        dirs[:] = sorted(d for d in dirs
                         if not (rel == "." and d in MAIL_DIRS)
                         and not os.path.islink(os.path.join(folder, d)))
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name.startswith(TMP_PREFIX) or not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            relpath = os.path.normpath(os.path.join(rel, name))
            with open(path, "rb") as f:
                data = f.read()
            atomic_write(os.path.join(target, relpath), data)
            copied.append(relpath)
    return target, sorted(copied)


#: Folders under data/userd/ID that hold mail (not backed up).
MAIL_DIRS = ("mail",)


def zip_dir(ctx, by):
    """ZIPDIR (zwms.cfg; relative to the home) / root|mid|user."""
    if by not in ZIP_BY:
        raise InvalidValue("zip by must be one of %s, got %r" % ("|".join(ZIP_BY), by))
    base = os.path.join(ctx.home.root, ctx.settings["ZIPDIR"])
    return os.path.join(os.path.normpath(base), by)


def account_folders(ctx, aid):
    """
    The account's mail folders: the standard ones, then its own.  The mail
    store names them when it can (C{folders(aid)}); else the folder names
    under data/userd/ID/mail/ are listed (names only: the messages are
    still read through the store, so the index decides what is in them).
    """
    listing = getattr(ctx.mail, "folders", None)
    if listing is not None:
        names = list(listing(aid))
    else:
        mail_dir = os.path.join(ctx.home.user_dir(aid), "mail")
        try:
            names = [e.name for e in os.scandir(mail_dir)
                     if FOLDER_RE.match(e.name) and e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            names = []
    return ([f for f in FOLDERS if f in names or listing is None]
            + sorted(f for f in names if f not in FOLDERS))


def write_zip(folder, stem, fill):
    """
    Write a new zip FOLDER/STEM-YYYYmmdd-HHMMSS.zip with the stdlib zipfile
    module: C{fill(add)} calls C{add(arcname, data, mtime)} for each entry;
    the zip is a temp file, fsynced, then linked under a name no earlier zip
    holds (never overwriting one).

    @return: (zip path, number of entries added).
    """
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, "%s%s-%s.zip" % (TMP_PREFIX, stem, secrets.token_hex(8)))
    count = 0
    try:
        with open(tmp, "xb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
                def add(arcname, data, mtime):
                    nonlocal count
                    entry = zipfile.ZipInfo(arcname, _zip_time(mtime))
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(entry, data)
                    count += 1
                fill(add)
            f.flush()
            os.fsync(f.fileno())
        path = _link_new(tmp, folder, "%s-%s" % (stem, time.strftime("%Y%m%d-%H%M%S")))
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    fsync_dir(folder)
    return path, count


def zip_mailbox(ctx, aid, by="root"):
    """
    Write the account's messages, as FOLDER/NAME.eml entries, into a new
    ZIPDIR/BY/ID-YYYYmmdd-HHMMSS.zip (§26; L{write_zip}).

    @return: (zip path, number of messages).
    """
    def fill(add):
        for mailfolder in account_folders(ctx, aid):
            for info in ctx.mail.messages(aid, mailfolder):
                add("%s/%s.eml" % (mailfolder, info.name),
                    ctx.mail.read(aid, mailfolder, info.name), info.received)

    return write_zip(zip_dir(ctx, by), aid, fill)


def _zip_time(received):
    """A zip entry's date (zip cannot hold dates before 1980)."""
    stamp = time.localtime(received or time.time())
    if stamp.tm_year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return stamp[:6]


def _link_new(tmp, folder, stem):
    """Give C{tmp} a new name STEM.zip, STEM-2.zip … without overwriting."""
    for n in range(1, 1000):
        path = os.path.join(folder, "%s.zip" % stem if n == 1 else "%s-%d.zip" % (stem, n))
        try:
            os.link(tmp, path)
            return path
        except FileExistsError:
            continue
    raise ZWMSError("too many zips named %s in %s" % (stem, folder))
