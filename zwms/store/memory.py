# -*- test-case-name: tests.test_store -*-
"""
In-memory implementations of IAccountStore and IMailStore, for protocol
tests.  They keep the same contract as the file store (tests/test_store.py
runs one suite against both).  C{MemoryMailStore.pending = True} makes
deliver() return Deferreds that fire only when C{release()} is called, to
test protocols against a slow store.
"""

import itertools
import time

from twisted.internet import defer
from zope.interface import implementer

from zwms.account import (Account, MessageInfo, FOLDERS, check_id,
                          default_fields, parse_field)
from zwms.errors import AccountExists, InvalidValue, NoSuchAccount, NoSuchMessage
from zwms.interfaces import IAccountStore, IMailStore
from zwms.store.mailstore import check_order, check_user_folder


@implementer(IAccountStore)
class MemoryAccounts:
    """Accounts in a dict; passwords kept as plain text (tests only)."""

    def __init__(self):
        self._accounts = {}

    def get(self, account_id):
        return self._accounts.get(str(account_id).lower())

    def list(self):
        return sorted(self._accounts)

    def add(self, account_id, password, **fields):
        aid = check_id(account_id)
        if aid in self._accounts:
            raise AccountExists("account %r exists already" % (aid,))
        values = default_fields()
        for k, v in fields.items():
            values[k] = parse_field(k, v) if isinstance(v, str) else v
        account = Account(aid, password_hash="plain:" + password,
                          created=time.time(), fields=values)
        self._accounts[aid] = account
        return account

    def delete(self, account_id, remove_mail=True):
        if self._accounts.pop(str(account_id).lower(), None) is None:
            raise NoSuchAccount("no account %r" % (account_id,))

    def set(self, account_id, key, value):
        account = self.get(account_id)
        if account is None:
            raise NoSuchAccount("no account %r" % (account_id,))
        if key == "password":
            if not value:
                raise InvalidValue("empty password")
            account.password_hash = "plain:" + value
        else:
            account.fields[key] = parse_field(key, value)
        return account

    def check_password(self, account_id, password):
        account = self.get(account_id)
        return account is not None and account.password_hash == "plain:" + password


@implementer(IMailStore)
class MemoryMailStore:
    """Messages in a dict of dicts: {account: {(folder, name): bytes}}."""

    pending = False

    def __init__(self):
        self._mail = {}
        self._made = {}     # account -> set of created user folders
        self._flags = {}
        self._times = {}
        self._counter = itertools.count(1)
        self._waiting = []
        self.fail_next = None

    def _store(self, deliveries):
        names = []
        for d in deliveries:
            if d.folder not in FOLDERS and not d.folder:
                raise InvalidValue("bad folder")
            name = "%012d.eml" % next(self._counter)
            self._mail.setdefault(d.account_id, {})[(d.folder, name)] = bytes(d.data)
            self._times[(d.account_id, name)] = time.time()
            if getattr(d, "bad", False):
                self._flags.setdefault((d.account_id, name), set()).add("bad")
            names.append(name)
        return names

    def deliver(self, deliveries):
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            return defer.fail(error)
        if self.pending:
            d = defer.Deferred()
            self._waiting.append((d, list(deliveries)))
            return d
        return defer.succeed(self._store(deliveries))

    def release(self):
        """Fire every pending deliver()."""
        waiting, self._waiting = self._waiting, []
        for d, deliveries in waiting:
            d.callback(self._store(deliveries))

    def messages(self, account_id, folder="Inbox"):
        box = self._mail.get(account_id, {})
        out = []
        for (f, name), data in sorted(box.items(), key=lambda kv: kv[0][1]):
            if f == folder:
                flags = self._flags.get((account_id, name), set())
                out.append(MessageInfo(name, f, len(data), self._times[(account_id, name)],
                                       fetched="fetched" in flags, seen="seen" in flags,
                                       bad="bad" in flags))
        return out

    def read(self, account_id, folder, name):
        try:
            return self._mail[account_id][(folder, name)]
        except KeyError:
            raise NoSuchMessage("%s/%s/%s" % (account_id, folder, name))

    def delete(self, account_id, folder, names):
        box = self._mail.get(account_id, {})
        for name in names:
            box.pop((folder, name), None)

    def page(self, account_id, folder="Inbox", offset=0, limit=100, order="date",
             descending=True, since=None, until=None):
        """One page and the total, ordered and filtered as the file store."""
        check_order(order)
        infos = [i for i in self.messages(account_id, folder)
                 if (since is None or i.received >= since)
                 and (until is None or i.received < until)]
        if order == "size":
            infos.sort(key=lambda i: (i.size, i.name))
        if descending:
            infos.reverse()
        offset, limit = max(0, int(offset)), max(0, int(limit))
        return len(infos), infos[offset:offset + limit]

    def head(self, account_id, folder, name, limit=65536):
        """The first bytes of one message."""
        return self.read(account_id, folder, name)[:max(0, int(limit))]

    def folders(self, account_id):
        """The five standard folders, then the account's own, sorted."""
        names = {f for f, _ in self._mail.get(account_id, {})} | self._made.get(account_id, set())
        return list(FOLDERS) + sorted(n for n in names if n not in FOLDERS)

    def _exists(self, account_id, folder):
        return folder in self.folders(account_id)

    def create_folder(self, account_id, folder):
        """Create an empty user folder."""
        try:
            check_user_folder(folder)
            if self._exists(account_id, folder):
                raise InvalidValue("folder %r exists already" % (folder,))
        except InvalidValue as e:
            return defer.fail(e)
        self._made.setdefault(account_id, set()).add(folder)
        return defer.succeed(0)

    def rename_folder(self, account_id, folder, new):
        """Rename a user folder; the number of messages in it."""
        try:
            check_user_folder(folder), check_user_folder(new)
            if not self._exists(account_id, folder):
                raise InvalidValue("no folder %r" % (folder,))
            if new != folder and self._exists(account_id, new):
                raise InvalidValue("folder %r exists already" % (new,))
        except InvalidValue as e:
            return defer.fail(e)
        box = self._mail.get(account_id, {})
        keys = [k for k in box if k[0] == folder]
        for key in keys:
            box[(new, key[1])] = box.pop(key)
        made = self._made.setdefault(account_id, set())
        made.discard(folder)
        made.add(new)
        return defer.succeed(len(keys))

    def delete_folder(self, account_id, folder):
        """Remove an empty user folder."""
        try:
            check_user_folder(folder)
            if not self._exists(account_id, folder):
                raise InvalidValue("no folder %r" % (folder,))
            if any(f == folder for f, _ in self._mail.get(account_id, {})):
                raise InvalidValue("folder %r is not empty" % (folder,))
        except InvalidValue as e:
            return defer.fail(e)
        self._made.get(account_id, set()).discard(folder)
        return defer.succeed(0)

    def counts(self, account_id):
        """{folder: (messages, unseen)} of every folder holding mail."""
        out = {}
        for (folder, name) in self._mail.get(account_id, {}):
            total, unseen = out.get(folder, (0, 0))
            seen = "seen" in self._flags.get((account_id, name), set())
            out[folder] = (total + 1, unseen + (0 if seen else 1))
        return out

    def mark_seen(self, account_id, folder, names, seen=True):
        """Set or clear the seen flag."""
        box = self._mail.get(account_id, {})
        for name in names:
            if (folder, name) in box:
                flags = self._flags.setdefault((account_id, name), set())
                flags.add("seen") if seen else flags.discard("seen")
        return defer.succeed(None)

    def move(self, account_id, folder, names, target):
        """Move messages between folders; the number moved."""
        if target not in FOLDERS and not target:
            return defer.fail(InvalidValue("bad folder"))
        box = self._mail.get(account_id, {})
        moved = 0
        for name in names:
            if folder != target and (folder, name) in box:
                box[(target, name)] = box.pop((folder, name))
                moved += 1
        return defer.succeed(moved)

    def mark_fetched(self, account_id, names):
        for name in names:
            self._flags.setdefault((account_id, name), set()).add("fetched")

    def usage(self, account_id):
        box = self._mail.get(account_id, {})
        return len(box), sum(len(v) for v in box.values())

    def reindex(self, account_id=None):
        if account_id is None:
            return sum(len(b) for b in self._mail.values())
        return len(self._mail.get(account_id, {}))

    def recover(self):
        return 0
