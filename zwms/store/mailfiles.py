# -*- test-case-name: tests.test_store -*-
"""
The files of the mail store: data/userd/ID/mail/FOLDER/NAME.eml.  Folder
and message name checks, the resolved folder paths (L{MailLayout}), new
message names (L{MessageNames}), reading a message file, and the scan of
one account's files that reindex builds the index from.
"""

import os
import re
import secrets
import time

from zwms.account import FOLDER_RE, FOLDERS, check_id
from zwms.errors import InvalidValue, NoSuchMessage
from zwms.home import safe_join

#: Resolved folder paths kept (L{MailLayout.folder_dir}).
MAX_PATHS = 4096

#: Names of message files the store accepts (its own and hand-imported ones).
NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
OWN_NAME_RE = re.compile(r"^(\d{10,20})\.[0-9a-f]{6}$")


def check_folder(folder):
    """A folder name, checked (the five of SPEC W2 or a user folder)."""
    if folder in FOLDERS or (isinstance(folder, str) and FOLDER_RE.match(folder)):
        return folder
    raise InvalidValue("invalid folder name %r" % (folder,))


def check_user_folder(folder):
    """
    A name for a folder the user creates or renames (issue 6): a valid
    folder name, none of the five standard ones (in any case), no spaces
    at either end, no control characters.  @raise InvalidValue.
    """
    if not isinstance(folder, str) or not FOLDER_RE.match(folder) or folder != folder.strip() \
            or "\x7f" in folder or folder.lower() in {f.lower() for f in FOLDERS}:
        raise InvalidValue("invalid folder name %r: 1 to 64 characters, no / or \\, "
                           "not starting with a dot, not a standard folder" % (folder,))
    return folder


def check_name(name):
    """A message name, checked (no path tricks)."""
    if isinstance(name, str) and NAME_RE.match(name) and ".." not in name:
        return name
    raise NoSuchMessage("invalid message name %r" % (name,))


def received_of(name, path):
    """Arrival time: from an own name, else the file's mtime."""
    m = OWN_NAME_RE.match(name)
    if m:
        return int(m.group(1)) / 1e9
    return os.stat(path).st_mtime


class MailLayout:
    """
    Where the mail of an account lives under C{home.userd}, with every
    name checked before it becomes a path.
    """

    def __init__(self, home):
        self.home = home
        self._paths = {}

    def user_dir(self, account_id):
        """data/userd/ID, checked."""
        return safe_join(self.home.userd, check_id(account_id))

    def folder_dir(self, account_id, folder):
        """
        data/userd/ID/mail/FOLDER, checked and resolved; cached, because
        every delivery and every POP3 read needs it and resolving costs an
        lstat per path component (profiled: a third of the POP3 time).  Only
        checked names get in the cache; the folders are the server's own.
        """
        key = (account_id, folder)
        try:
            return self._paths[key]
        except (KeyError, TypeError):
            pass
        path = safe_join(self.user_dir(account_id), "mail", check_folder(folder))
        if len(self._paths) >= MAX_PATHS:
            self._paths.clear()
        self._paths[key] = path
        return path


class MessageNames:
    """
    New message names C{"<time_ns>.<6 hex>"}: sortable by arrival, unique,
    and the POP3 UIDL of the message.
    """

    def __init__(self):
        self._last_ns = 0

    def new(self):
        """The next name (writer thread only: not locked)."""
        # Strictly increasing in this process; the random part keeps two
        # processes (server, zwms-admin) apart.
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        return "%d.%s" % (now, secrets.token_hex(3))


def scan_account(userd, account_id):
    """{(folder, name): (size, received)} of the .eml files of one account."""
    found = {}
    mail_dir = os.path.join(userd, account_id, "mail")
    try:
        folders = os.listdir(mail_dir)
    except (FileNotFoundError, NotADirectoryError):
        return found
    for folder in folders:
        folder_dir = os.path.join(mail_dir, folder)
        if not FOLDER_RE.match(folder) or not os.path.isdir(folder_dir):
            continue
        for entry in os.scandir(folder_dir):
            if not entry.name.endswith(".eml") or not entry.is_file():
                continue
            name = entry.name[:-4]
            if not NAME_RE.match(name) or ".." in name:
                continue
            try:
                found[(folder, name)] = (entry.stat().st_size,
                                         received_of(name, entry.path))
            except FileNotFoundError:
                continue
    return found


def read_file(path):
    """
    A whole file's bytes: os.open/os.read with the size from fstat (no
    buffered file object: POP3 reads one file per RETR, and that object
    was a seventh of its time, profiled).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) <= size:
            return data         # short read of a regular file: its end
        chunks = [data]
        while True:             # the file grew meanwhile: read on to its end
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)
