# -*- test-case-name: tests.test_store -*-
"""
Accounts as files (IAccountStore): data/userd/ID/account.cfg, one
C{key=value} line per setting (id, password, created and every field of
L{zwms.account.ACCOUNT_FIELDS} in its text form), written atomically.

The server and zwms-admin both write through this class; a change made by
one process is seen by the other at its next C{get()}: parsed accounts are
cached by the file's stat stamp (mtime_ns, size, inode), and every write
replaces the file (a new inode), so one stat() tells whether it changed.

Writes (add, set, delete) take an exclusive C{flock} on
data/userd/.accounts.lock, so that the server and zwms-admin never lose each
other's update and MAXACCOUNTS holds across processes.  They fsync, and
C{check_password} runs argon2: all are blocking, so callers in the reactor
thread run them in a thread.  C{get} and C{list} are a stat() or a
listdir() and may run anywhere.
"""

import contextlib
import fcntl
import os
import shutil
import time

from zope.interface import implementer

from zwms.account import (ACCOUNT_FIELDS, FIELDS_BY_KEY, FOLDERS, Account, check_id,
                          default_fields, format_value, parse_field)
from zwms.errors import AccountExists, InvalidValue, LicenseOver, NoSuchAccount
from zwms.fileio import TMP_PREFIX, atomic_write
from zwms.home import safe_join
from zwms.interfaces import IAccountStore
from zwms.store import passwords
from zwms.store.mailstore import forget_account
from zwms.store.directory import stat_stamp

ACCOUNT_FILE = "account.cfg"
LOCK_FILE = ".accounts.lock"
#: Rewritten (not fsynced: it is only a cache hint) after every change, so
#: that other processes rebuild their hosting-address map at once.
CHANGED_FILE = ".accounts.changed"
#: Seconds after which the hosting-address map is rebuilt anyway, to catch
#: account.cfg files edited by hand.
HOSTING_RECHECK = 2.0


class CorruptAccount(InvalidValue):
    """An account.cfg has a bad line; C{path} and C{line} say where."""

    def __init__(self, path, line, message):
        InvalidValue.__init__(self, "%s:%s: %s" % (path, line, message))
        self.path = path
        self.line = line


def format_account(account):
    """The text of an account.cfg."""
    lines = ["# zWMS account: edit with `zwms-admin user set %s KEY VALUE`" % account.id,
             "id=%s" % account.id,
             "password=%s" % account.password_hash,
             "created=%.6f" % account.created]
    for f in ACCOUNT_FIELDS:
        lines.append("%s=%s" % (f.key, format_value(account.fields.get(f.key, f.default))))
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_account(data, path, expected_id):
    """
    Parse the bytes of an account.cfg.  Missing fields take their default.

    @raise CorruptAccount: a bad line, an unknown key, a wrong id.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorruptAccount(path, data[:e.start].count(b"\n") + 1, "not UTF-8 text")
    values = {}
    password_hash, created, seen_id = "", 0.0, None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise CorruptAccount(path, number, "expected key=value, got %r" % (line,))
        key, _, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        try:
            if key == "id":
                seen_id = value
            elif key == "password":
                password_hash = value
            elif key == "created":
                created = float(value)
            elif key in FIELDS_BY_KEY:
                values[key] = parse_field(key, value)
            else:
                raise InvalidValue("unknown key %r" % (key,))
        except (InvalidValue, ValueError) as e:
            raise CorruptAccount(path, number, str(e))
    if seen_id is not None and seen_id.lower() != expected_id:
        raise CorruptAccount(path, 0, "id=%s does not match the folder %s"
                             % (seen_id, expected_id))
    fields = default_fields()
    fields.update(values)
    return Account(expected_id, password_hash=password_hash, created=created, fields=fields)


def _copy(account):
    # Callers get their own copy: a caller changing it cannot spoil the cache.
    return Account(account.id, account.password_hash, account.created, dict(account.fields))


def _field_value(key, value):
    """A field value given as text or as its type, checked by its parser."""
    if key not in FIELDS_BY_KEY:
        return parse_field(key, value)  # raises InvalidValue naming the keys
    text = value if isinstance(value, str) else format_value(value)
    return parse_field(key, text)


def _check_password_text(password):
    if not isinstance(password, str) or not password:
        raise InvalidValue("the password may not be empty")
    if any(c in password for c in "\r\n\x00"):
        raise InvalidValue("the password may not contain line breaks")


@implementer(IAccountStore)
class FileAccounts:
    """IAccountStore over data/userd/ID/account.cfg files."""

    def __init__(self, home, settings, now=time.time, monotonic=time.monotonic):
        self.home = home
        self.settings = settings
        self._now = now
        self._monotonic = monotonic
        self._cache = {}          # id -> (stamp, Account)
        self._dirs = {}           # id -> resolved data/userd/ID (issue 8)
        self._hosting = None      # (key, built at, {address: id})
        self._dummy_hash = None

    # -- paths ---------------------------------------------------------------

    def _dir(self, aid):
        # Resolved once per ID (checked IDs only reach here): safe_join's
        # realpath was 7 % of receiving a 1 KB message (issue 8 profile).
        path = self._dirs.get(aid)
        if path is None:
            if len(self._dirs) >= 4096:
                self._dirs.clear()
            path = self._dirs[aid] = safe_join(self.home.userd, aid)
        return path

    def _file(self, aid):
        return os.path.join(self._dir(aid), ACCOUNT_FILE)

    @contextlib.contextmanager
    def _locked(self):
        """An exclusive lock shared with every other process of this home."""
        os.makedirs(self.home.userd, exist_ok=True)
        fd = os.open(os.path.join(self.home.userd, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _changed(self):
        """Tell every process (this one included) that accounts changed."""
        self._hosting = None
        tmp = os.path.join(self.home.userd, "%s%d" % (TMP_PREFIX, os.getpid()))
        try:
            with open(tmp, "w") as f:
                f.write("%d\n" % time.time_ns())
            os.replace(tmp, os.path.join(self.home.userd, CHANGED_FILE))
        except OSError:
            pass  # a hint only: the periodic recheck catches up

    # -- reading -------------------------------------------------------------

    def get(self, account_id):
        """
        The account, or None.  A damaged account.cfg raises L{CorruptAccount}
        (an L{InvalidValue}) naming the file and line.
        """
        try:
            aid = check_id(account_id)
        except InvalidValue:
            return None
        path = self._file(aid)
        stamp = stat_stamp(path)
        if stamp is None:
            self._cache.pop(aid, None)
            return None
        cached = self._cache.get(aid)
        if cached is not None and cached[0] == stamp:
            return _copy(cached[1])
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            self._cache.pop(aid, None)
            return None
        account = parse_account(data, path, aid)
        self._cache[aid] = (stamp, account)
        return _copy(account)

    def list(self):
        """The sorted IDs of the folders of data/userd that hold an account.cfg."""
        try:
            names = os.listdir(self.home.userd)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if name.startswith(".") or name != name.lower():
                continue
            if os.path.isfile(os.path.join(self.home.userd, name, ACCOUNT_FILE)):
                out.append(name)
        return sorted(out)

    def hosting_addresses(self):
        """
        {hosting address: account ID} over every account (seed §23), for the
        directory.  Rebuilt when any account changes (the CHANGED_FILE and
        the data/userd folder stamps) and at least every HOSTING_RECHECK
        seconds; a damaged account.cfg is left out.
        """
        key = (stat_stamp(os.path.join(self.home.userd, CHANGED_FILE)),
               stat_stamp(self.home.userd))
        now = self._monotonic()
        cached = self._hosting
        if cached is not None and cached[0] == key and now - cached[1] < HOSTING_RECHECK:
            return cached[2]
        mapping = {}
        for aid in self.list():
            try:
                account = self.get(aid)
            except InvalidValue:
                continue
            if account is not None and account.address:
                mapping.setdefault(account.address.lower(), aid)
        self._hosting = (key, now, mapping)
        return mapping

    # -- writing -------------------------------------------------------------

    def _write(self, account):
        path = self._file(account.id)
        atomic_write(path, format_account(account))
        self._cache.pop(account.id, None)

    def add(self, account_id, password, **fields):
        """
        Create data/userd/ID/ with account.cfg and the mail folders.

        @raise InvalidValue: bad ID, empty password, bad field.
        @raise AccountExists: the ID is taken.
        @raise LicenseOver: MAXACCOUNTS accounts exist.
        """
        aid = check_id(account_id)
        _check_password_text(password)
        values = default_fields()
        for key, value in fields.items():
            values[key] = _field_value(key, value)
        password_hash = passwords.hash_password(password)
        with self._locked():
            if os.path.exists(self._file(aid)):
                raise AccountExists("account %r exists already" % (aid,))
            limit = self.settings["MAXACCOUNTS"]
            if limit and len(self.list()) >= limit:
                raise LicenseOver("MAXACCOUNTS (%d) accounts exist already" % (limit,))
            user_dir = self._dir(aid)
            if not os.path.isdir(user_dir):
                # A new mailbox: index rows of an earlier account of this ID
                # (deleted with its mail) must not come back.
                forget_account(self.home, aid)
            for folder in FOLDERS:
                os.makedirs(os.path.join(user_dir, "mail", folder), exist_ok=True)
            account = Account(aid, password_hash=password_hash, created=self._now(),
                              fields=values)
            # account.cfg comes last: a crash before it leaves no account.
            self._write(account)
            self._changed()
        return _copy(account)

    def delete(self, account_id, remove_mail=True):
        """
        Delete the account: the whole data/userd/ID folder when
        C{remove_mail} (EMLDEL=1), else only its account.cfg (the mail
        stays on disk, and comes back with an account of the same ID).

        @raise NoSuchAccount
        """
        try:
            aid = check_id(account_id)
        except InvalidValue:
            raise NoSuchAccount("no account %r" % (account_id,))
        with self._locked():
            path = self._file(aid)
            if not os.path.exists(path):
                raise NoSuchAccount("no account %r" % (aid,))
            if remove_mail:
                # Rename first (atomic): the account disappears at once,
                # whatever happens to the removal of its files.
                user_dir = self._dir(aid)
                doomed = os.path.join(self.home.userd, "%sdel-%s-%d"
                                      % (TMP_PREFIX, aid, time.time_ns()))
                os.rename(user_dir, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
                forget_account(self.home, aid)
            else:
                os.unlink(path)
            self._cache.pop(aid, None)
            self._changed()

    def set(self, account_id, key, value):
        """
        Set one field from its text; C{password} is hashed.

        @raise NoSuchAccount / InvalidValue
        @return: the updated account.
        """
        key = str(key).strip().lower()
        if key == "password":
            _check_password_text(value)
            new_hash = passwords.hash_password(value)
        else:
            parsed = _field_value(key, value)
        with self._locked():
            account = self.get(account_id)
            if account is None:
                raise NoSuchAccount("no account %r" % (account_id,))
            if key == "password":
                account.password_hash = new_hash
            else:
                account.fields[key] = parsed
            self._write(account)
            self._changed()
        return _copy(account)

    def check_password(self, account_id, password):
        """
        Verify a password (argon2, slow: call it from a thread).  A missing
        account costs the same time as a wrong password.

        @return: True if it matches.
        """
        try:
            account = self.get(account_id)
        except InvalidValue:
            account = None
        if account is None or not account.password_hash:
            if self._dummy_hash is None:
                self._dummy_hash = passwords.hash_password("no such account")
            passwords.verify_password(self._dummy_hash, str(password))
            return False
        return passwords.verify_password(account.password_hash, str(password))
