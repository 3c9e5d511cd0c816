# -*- test-case-name: tests.test_store -*-
"""
Mailboxes as files (IMailStore): data/userd/ID/mail/FOLDER/NAME.eml, plus
an index in SQLite (home.index_db) that can always be rebuilt from the
files (SPEC §0, DESIGN rule 2: the .eml files are the truth).

NAME is C{"<time_ns>.<6 hex>"}: sortable by arrival, unique, and the POP3
UIDL of the message.

The store is four modules: this one (L{FileMailStore}, the IMailStore API
and what each write job does), L{zwms.store.mailwriter} (the writer and
committer threads, group commit), L{zwms.store.mailindex} (the SQLite
schema and its upgrades) and L{zwms.store.mailfiles} (paths, names, checks
of folder and message names).  The names other code imports from here
(C{connect}, C{check_folder}, C{forget_account}, C{StoreStopped}, ...) are
re-exported below.

Writes
------
Every change is a job for one writer thread that handles the jobs queued
together as one batch: one fsync round for their files, one fsync per
folder, one SQLite commit (L{zwms.store.mailwriter}).  A deliver() Deferred
fires only once its own files are written, fsynced, renamed, their folders
fsynced and their rows committed: the SMTP server answers 250 only after
that (SPEC S3, the "250 rule").  A job that fails at any step has its
files removed and its Deferred fails; nothing is left.

Each row also keeps the message's POP3 size (C{wire}: its length with CRLF
line ends, RFC 1939 §11) and whether RETR may send the bytes as they are
(C{plain}: CRLF-clean, no line starting with a dot), counted at delivery, so that POP3 LIST and STAT
never read the messages (L{FileMailStore.pop3_rows}).  Rows made by
reindex, and messages over WIRE_AT_DELIVERY bytes, leave it empty (NULL)
until POP3 measures the file once and records it
(L{FileMailStore.record_pop3}).

Reads
-----
messages(), read() and usage() are one indexed SQLite query or one file
read: they run synchronously in the calling thread (the reactor thread
too), each thread with its own SQLite connection (WAL mode: readers never
wait for the writer).  reindex() is heavy and synchronous: call it from a
thread (zwms-admin, the web's deferToThread), never from the reactor.
"""

import concurrent.futures
import os
import shutil
import threading

from twisted.internet import defer
from zope.interface import implementer

from zwms.account import FOLDER_RE, FOLDERS, MessageInfo, check_id
from zwms.errors import InvalidValue, NoSuchAccount, NoSuchMessage
from zwms.fileio import TMP_PREFIX, fsync_dir, sweep_temp
from zwms.interfaces import IMailStore
from zwms.pop3.wire import pop3_facts
from zwms.store.mailfiles import (NAME_RE, OWN_NAME_RE, MailLayout, MessageNames,
                                  check_folder, check_name, check_user_folder,
                                  read_file as _read_file, received_of, scan_account)
from zwms.store.mailindex import (COUNTS, INDEXES, ORDERS, SCHEMA, UPSERT, Pop3Row,
                                  add_wire_column, check_order, connect, forget_account,
                                  new_pop3_row, prepare, replace_account)
from zwms.store.mailwriter import GroupCommitWriter, Job, StoreStopped

#: The names this module has always offered (most now live in the modules
#: above; other modules and tests import them from here).  The writer's
#: tunables (MAX_BATCH, MAX_OPEN, PIPELINE_BYTES, ...) are deliberately NOT
#: re-exported: the writer reads them from L{zwms.store.mailwriter}, so a
#: copy here could be patched to no effect.
__all__ = [
    "FileMailStore", "StoreStopped", "Pop3Row", "WIRE_AT_DELIVERY",
    "check_folder", "check_user_folder", "check_order", "check_name", "received_of",
    "connect", "forget_account", "add_wire_column",
    "SCHEMA", "INDEXES", "ORDERS", "UPSERT", "NAME_RE", "OWN_NAME_RE",
]

#: Largest message whose POP3 size is counted at delivery (about 1.6 us per
#: KB, in the reactor thread; profiled: 13 % of receiving 100 KB messages).
#: Larger ones get theirs at their first POP3 listing (read in a thread,
#: then kept: L{record_pop3}); they are few, and their reading is cheap
#: next to their transfer.
WIRE_AT_DELIVERY = 32 * 1024


@implementer(IMailStore)
class FileMailStore(GroupCommitWriter):
    """
    IMailStore over .eml files and a SQLite index; the writes go through
    the writer thread of L{GroupCommitWriter}.

    @param reactor: anything with C{callFromThread} (the reactor; zwms-admin
        passes a pump); the global reactor when None.
    """

    def __init__(self, home, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        GroupCommitWriter.__init__(self, home.index_db, reactor)
        self.home = home
        self.layout = MailLayout(home)
        self._names = MessageNames()
        self._local = threading.local()
        os.makedirs(self.home.data, exist_ok=True)
        self.new_index = not os.path.exists(self.home.index_db)
        if self.new_index:
            # A journal left beside a deleted index belongs to no database.
            for suffix in ("-wal", "-shm"):
                try:
                    os.unlink(self.home.index_db + suffix)
                except FileNotFoundError:
                    pass
        prepare(self._db())

    def _db(self):
        """This thread's connection to the index."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.home.index_db)
        return db

    def _close_local(self):
        GroupCommitWriter._close_local(self)
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- reads (synchronous, any thread) -----------------------------------

    def messages(self, account_id, folder="Inbox"):
        """The index rows of one folder, oldest first."""
        rows = self._db().execute(
            "SELECT name, folder, size, received, fetched, seen, bad FROM messages "
            "WHERE account = ? AND folder = ? ORDER BY name",
            (check_id(account_id), check_folder(folder))).fetchall()
        return [MessageInfo(n, f, s, r, bool(fe), bool(se), bool(b))
                for n, f, s, r, fe, se, b in rows]

    def read(self, account_id, folder, name):
        """The bytes of one message, read from its file."""
        try:
            path = os.path.join(self.layout.folder_dir(account_id, folder),
                                check_name(name) + ".eml")
        except InvalidValue as e:
            raise NoSuchMessage(str(e))
        try:
            return _read_file(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchMessage("%s/%s/%s" % (account_id, folder, name))

    def usage(self, account_id):
        """(message count, total bytes) over all folders, from the index."""
        count, size = self._db().execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages WHERE account = ?",
            (check_id(account_id),)).fetchone()
        return count, size

    def wire_sizes(self, account_id, folder="Inbox"):
        """
        C{{name: POP3 size}} of the messages of one folder whose size is
        known (delivered by this store, or recorded by L{record_pop3}):
        the message's length with CRLF line ends (L{zwms.pop3.wire.wire_size}).
        Not part of L{IMailStore}: POP3 uses it when the store has it.
        """
        return dict(self._db().execute(
            "SELECT name, wire FROM messages WHERE account = ? AND folder = ? "
            "AND wire IS NOT NULL", (check_id(account_id), check_folder(folder))))

    def pop3_rows(self, account_id, folder="Inbox"):
        """
        The rows of one folder for a POP3 session, oldest first, in one
        query: L{Pop3Row}s (the fields of L{MessageInfo} plus C{wire}, the
        POP3 size, and C{plain}, 1 when RETR may send the bytes as stored;
        both None when unknown).  Plain tuples, not MessageInfo objects: a POP3
        login over a 1,000-mail Inbox spent a fifth of its time building
        those (profiled).  Not part of L{IMailStore}.
        """
        cursor = self._db().execute(
            "SELECT name, folder, size, received, fetched, seen, bad, wire, plain "
            "FROM messages "
            "WHERE account = ? AND folder = ? ORDER BY name",
            (check_id(account_id), check_folder(folder)))
        return list(map(new_pop3_row, cursor))

    def record_pop3(self, account_id, folder, facts):
        """
        Keep POP3 facts measured from the files (rows made by reindex,
        large messages).

        @param facts: C{{name: (wire size, plain)}} (L{zwms.pop3.wire.pop3_facts}).
        @return: a Deferred (a cache: nobody needs to wait for it).
        """
        try:
            args = (check_id(account_id), check_folder(folder),
                    [(int(w), int(bool(p)), check_name(n)) for n, (w, p) in facts.items()])
        except (InvalidValue, NoSuchMessage, TypeError, ValueError) as e:
            return defer.fail(e)
        return self._submit("wire", args)

    def page(self, account_id, folder="Inbox", offset=0, limit=100, order="date",
             descending=True, since=None, until=None):
        """
        One page of a folder, paged in the index (SPEC W2):
        C{(total, [MessageInfo])}.  C{order} is "date" (arrival; the
        primary key's order) or "size" (an index); newest / largest first
        unless C{descending} is false.  C{since} / C{until} (seconds) keep
        the messages received in [since, until) (an index).
        """
        key = (check_id(account_id), check_folder(folder))
        where, args = "account = ? AND folder = ?", key
        if since is not None:
            where, args = where + " AND received >= ?", args + (float(since),)
        if until is not None:
            where, args = where + " AND received < ?", args + (float(until),)
        direction = " DESC" if descending else ""
        order_by = ", ".join(c + direction for c in ORDERS[check_order(order)].split(", "))
        db = self._db()
        total = db.execute("SELECT COUNT(*) FROM messages WHERE " + where, args).fetchone()[0]
        rows = db.execute(
            "SELECT name, folder, size, received, fetched, seen, bad FROM messages "
            "WHERE " + where + " ORDER BY " + order_by + " LIMIT ? OFFSET ?",
            args + (max(0, int(limit)), max(0, int(offset)))).fetchall()
        return total, [MessageInfo(n, f, s, r, bool(fe), bool(se), bool(b))
                       for n, f, s, r, fe, se, b in rows]

    def head(self, account_id, folder, name, limit=65536):
        """
        The first C{limit} bytes of one message (its header block, for a
        list or a header search, without reading a large body).
        """
        try:
            path = os.path.join(self.layout.folder_dir(account_id, folder),
                                check_name(name) + ".eml")
        except InvalidValue as e:
            raise NoSuchMessage(str(e))
        try:
            with open(path, "rb") as f:
                return f.read(max(0, int(limit)))
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchMessage("%s/%s/%s" % (account_id, folder, name))

    def folders(self, account_id):
        """
        The account's folders: the five standard ones, then its own
        (those with a folder on disk or rows in the index), sorted.
        """
        aid = check_id(account_id)
        names = {r[0] for r in self._db().execute(
            "SELECT DISTINCT folder FROM messages WHERE account = ?", (aid,))}
        mail_dir = os.path.join(self.layout.user_dir(aid), "mail")
        try:
            names.update(e.name for e in os.scandir(mail_dir)
                         if FOLDER_RE.match(e.name) and e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            pass
        return list(FOLDERS) + sorted(n for n in names if n not in FOLDERS)

    def counts(self, account_id):
        """C{{folder: (messages, unseen)}} of every folder holding mail."""
        # One pass over the account's entries of the messages_seen index
        # (it holds every column read): no table row is fetched.
        rows = self._db().execute(COUNTS, (check_id(account_id),)).fetchall()
        return {f: (n, u or 0) for f, n, u in rows}

    # -- writes (through the writer thread) ----------------------------------

    def mark_seen(self, account_id, folder, names, seen=True):
        """Set or clear the seen flag (webmail read/unread), durably."""
        try:
            args = (check_id(account_id), check_folder(folder),
                    [check_name(n) for n in names], int(bool(seen)))
        except (InvalidValue, NoSuchMessage) as e:
            return defer.fail(e)
        return self._submit("seen", args)

    def move(self, account_id, folder, names, target):
        """
        Move messages to another folder of the same account (file rename,
        both folders fsynced, then the rows; a crash in between leaves the
        file in its new folder, which reindex follows).  Unknown names are
        ignored.  @return: a Deferred firing with the number moved.
        """
        try:
            args = (check_id(account_id), check_folder(folder),
                    [check_name(n) for n in names], check_folder(target))
        except (InvalidValue, NoSuchMessage) as e:
            return defer.fail(e)
        return self._submit("move", args)

    def create_folder(self, account_id, folder):
        """
        Create an empty user folder (its directory, fsynced).

        @return: a Deferred; it fails with InvalidValue for a bad or
            existing name.
        """
        try:
            args = (check_id(account_id), check_user_folder(folder))
        except InvalidValue as e:
            return defer.fail(e)
        return self._submit("mkfolder", args)

    def rename_folder(self, account_id, folder, new):
        """
        Rename a user folder (directory rename, fsynced, then its rows).

        @return: a Deferred firing with the number of messages in it.
        """
        try:
            args = (check_id(account_id), check_user_folder(folder), check_user_folder(new))
        except InvalidValue as e:
            return defer.fail(e)
        return self._submit("rnfolder", args)

    def delete_folder(self, account_id, folder):
        """
        Remove an EMPTY user folder (move or delete its messages first).

        @return: a Deferred; it fails with InvalidValue when the folder
            holds messages or does not exist.
        """
        try:
            args = (check_id(account_id), check_user_folder(folder))
        except InvalidValue as e:
            return defer.fail(e)
        return self._submit("rmfolder", args)

    def deliver(self, deliveries):
        """
        Store each delivery durably (see the module docstring).

        @return: a Deferred firing with the names, in order.
        """
        try:
            jobs = [(check_id(d.account_id), check_folder(d.folder), bytes(d.data),
                     bool(getattr(d, "bad", False))) for d in deliveries]
            # The POP3 size (here rather than in the busy writer thread);
            # over WIRE_AT_DELIVERY bytes POP3 measures it once instead.
            jobs = [job + (pop3_facts(job[2]) if len(job[2]) <= WIRE_AT_DELIVERY
                           else (None, None),) for job in jobs]
        except (InvalidValue, TypeError, AttributeError) as e:
            return defer.fail(e if isinstance(e, InvalidValue) else InvalidValue(str(e)))
        if not jobs:
            return defer.succeed([])
        return self._submit("deliver", jobs)

    def delete(self, account_id, folder, names):
        """Remove messages (rows, then files); unknown names are ignored.

        @return: a Deferred firing with the number of rows removed.
        """
        try:
            args = (check_id(account_id), check_folder(folder),
                    [check_name(n) for n in names])
        except (InvalidValue, NoSuchMessage) as e:
            return defer.fail(e)
        return self._submit("delete", args)

    def mark_fetched(self, account_id, names):
        """Flag Inbox messages as fetched by POP3 (SPEC O2), durably."""
        try:
            args = (check_id(account_id), [check_name(n) for n in names])
        except (InvalidValue, NoSuchMessage) as e:
            return defer.fail(e)
        return self._submit("fetched", args)

    def reindex(self, account_id=None):
        """
        Rebuild the index from the .eml files of one account or all,
        keeping the flags of rows whose file is still there.  Blocks until
        done (run it in a thread).

        @return: the number of messages indexed.
        """
        aid = None if account_id is None else check_id(account_id)
        future = concurrent.futures.Future()
        self._put(Job("reindex", (aid,), None, future))
        return future.result()

    def recover(self):
        """
        Start-up "auto recovery" (§2): remove temp files and half-deleted
        account folders left by a crash; rebuild the index when it was
        missing.  Run it before the server accepts mail.

        @return: the number of leftovers removed.
        """
        removed = sweep_temp(self.home.userd) if os.path.isdir(self.home.userd) else 0
        for name in os.listdir(self.home.userd) if os.path.isdir(self.home.userd) else ():
            path = os.path.join(self.home.userd, name)
            if name.startswith(TMP_PREFIX) and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        if self.new_index:
            self.new_index = False
            self.reindex()
        return removed

    # -- what each job does (writer thread, in its savepoint) ------------------

    def _apply(self, db, job, names, removed):
        """The SQL of one job, inside its savepoint."""
        if job.kind == "deliver":
            for (aid, folder, data, bad, (wire, plain)), name in zip(job.args, names):
                # The arrival time is the one in the name, as reindex reads it.
                received = int(name.partition(".")[0]) / 1e9
                db.execute(UPSERT, (aid, folder, name, len(data), received, 0, 0, int(bad),
                                    wire, plain))
            return names
        if job.kind == "wire":
            aid, folder, rows = job.args
            db.executemany("UPDATE messages SET wire = ?, plain = ? WHERE account = ? "
                           "AND folder = ? AND name = ?",
                           [(w, p, aid, folder, n) for w, p, n in rows])
            return None
        if job.kind == "delete":
            aid, folder, names = job.args
            count = 0
            folder_dir = self.layout.folder_dir(aid, folder)
            for name in names:
                cur = db.execute("DELETE FROM messages WHERE account = ? AND folder = ? "
                                 "AND name = ?", (aid, folder, name))
                count += cur.rowcount
                removed.append((os.path.join(folder_dir, name + ".eml"), folder_dir))
            return count
        if job.kind == "fetched":
            aid, names = job.args
            db.executemany("UPDATE messages SET fetched = 1 WHERE account = ? "
                           "AND folder = 'Inbox' AND name = ?", [(aid, n) for n in names])
            return None
        if job.kind == "seen":
            aid, folder, names, seen = job.args
            db.executemany("UPDATE messages SET seen = ? WHERE account = ? AND folder = ? "
                           "AND name = ?", [(seen, aid, folder, n) for n in names])
            return None
        if job.kind == "move":
            return self._move(db, *job.args)
        if job.kind in ("mkfolder", "rnfolder", "rmfolder"):
            return self._folder_job(db, job.kind, *job.args)
        raise AssertionError("unknown job %r" % (job.kind,))

    def _move(self, db, aid, folder, names, target):
        """Rename the files, fsync both folders, then move the rows."""
        if folder == target:
            return 0
        src_dir = self.layout.folder_dir(aid, folder)
        dst_dir = self.layout.folder_dir(aid, target)
        os.makedirs(dst_dir, exist_ok=True)
        done = []
        try:
            for name in names:
                src = os.path.join(src_dir, name + ".eml")
                dst = os.path.join(dst_dir, name + ".eml")
                if not os.path.exists(src):
                    continue
                if os.path.exists(dst):
                    raise InvalidValue("%s exists in %s already" % (name, target))
                os.rename(src, dst)
                done.append((src, dst, name))
            fsync_dir(dst_dir)
            fsync_dir(os.path.dirname(dst_dir))
            fsync_dir(src_dir)
        except BaseException:
            for src, dst, _ in done:
                os.rename(dst, src)
            raise
        db.executemany("UPDATE messages SET folder = ? WHERE account = ? AND folder = ? "
                       "AND name = ?", [(target, aid, folder, n) for _, _, n in done])
        return len(done)

    def _rows_in(self, db, aid, folder):
        return db.execute("SELECT COUNT(*) FROM messages WHERE account = ? AND folder = ?",
                          (aid, folder)).fetchone()[0]

    def _folder_job(self, db, kind, aid, folder, new=None):
        """Create, rename or remove a user folder (writer thread, in a savepoint)."""
        user_dir = self.layout.user_dir(aid)
        if not os.path.isdir(user_dir):
            raise NoSuchAccount("no mailbox for account %r" % (aid,))
        mail_dir = os.path.join(user_dir, "mail")
        path = self.layout.folder_dir(aid, folder)
        exists = os.path.isdir(path) or self._rows_in(db, aid, folder) > 0
        if kind == "mkfolder":
            if exists:
                raise InvalidValue("folder %r exists already" % (folder,))
            new_mail_dir = not os.path.isdir(mail_dir)
            os.makedirs(path)
            fsync_dir(mail_dir)
            if new_mail_dir:
                fsync_dir(user_dir)
            return 0
        if not exists:
            raise InvalidValue("no folder %r" % (folder,))
        if kind == "rmfolder":
            if self._rows_in(db, aid, folder) or any(
                    n.endswith(".eml") for n in os.listdir(path)):
                raise InvalidValue("folder %r is not empty" % (folder,))
            shutil.rmtree(path)
            fsync_dir(mail_dir)
            return 0
        target = self.layout.folder_dir(aid, new)
        if new == folder:
            return self._rows_in(db, aid, folder)
        if os.path.isdir(target) or self._rows_in(db, aid, new) > 0:
            raise InvalidValue("folder %r exists already" % (new,))
        os.makedirs(path, exist_ok=True)
        os.rename(path, target)
        try:
            fsync_dir(mail_dir)
            return db.execute("UPDATE messages SET folder = ? WHERE account = ? AND folder = ?",
                              (new, aid, folder)).rowcount
        except BaseException:
            os.rename(target, path)
            raise


    # -- reindex (writer thread) ---------------------------------------------

    def _reindex(self, db, account_id):
        if account_id is None:
            try:
                ids = sorted(n for n in os.listdir(self.home.userd)
                             if not n.startswith(".") and
                             os.path.isdir(os.path.join(self.home.userd, n)))
            except FileNotFoundError:
                ids = []
            known = [r[0] for r in db.execute("SELECT DISTINCT account FROM messages")]
            ids = sorted(set(ids) | set(known))
        else:
            ids = [account_id]
        total = 0
        for aid in ids:
            found = scan_account(self.home.userd, aid)
            replace_account(db, aid, found)
            total += len(found)
        return total
