# -*- test-case-name: tests.test_store -*-
"""
Mailboxes as files (IMailStore): data/userd/ID/mail/FOLDER/NAME.eml, plus
an index in SQLite (home.index_db) that can always be rebuilt from the
files (SPEC §0, DESIGN rule 2: the .eml files are the truth).

NAME is C{"<time_ns>.<6 hex>"}: sortable by arrival, unique, and the POP3
UIDL of the message.

Writes: one writer thread, group commit
---------------------------------------
Every change (deliver, delete, mark_fetched, mark_seen, move, reindex) is a job on one
queue served by one writer thread.  The thread takes the first job, then
ALL jobs queued at that moment (up to MAX_BATCH), and for the batch:

  1. writes every message of the batch to a temp file (no fsync yet), then
     fsyncs all those files in one round (from parallel threads: the file
     system folds concurrent fsyncs into one journal commit), then renames
     each to its NAME.eml;
  2. fsyncs each distinct folder ONCE (the renames become durable);
  3. runs ONE SQLite transaction (synchronous=FULL: the commit is durable)
     with a savepoint per job, so one job's failure spoils no other;
  4. removes the files of deleted messages (after the commit: a crash in
     between leaves a file without a row, which reindex brings back; it
     never leaves a row without its file) and fsyncs their folders;
  5. fires each job's Deferred in the reactor thread (callFromThread).

Steps 3-5 of a large batch (PIPELINE_BYTES) holding only deliveries and
flag changes run in a second thread (the committer) while the writer goes
on with the next batch's files, so the disk waits of two batches overlap;
any other job (delete, move, folders, reindex) first waits until the
committer is idle.
Per message the order is unchanged.

So a deliver() Deferred fires only once its own files are written, fsynced,
renamed, their folders fsynced and their rows committed: the SMTP server
answers 250 only after that (SPEC S3, the "250 rule").  A job that fails at
any step has its files removed and its Deferred fails; nothing is left.
Under load many deliveries share one fsync round, one folder fsync and one
commit, which is what makes the store fast (TWISTED-NOTES "Blocking work").

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

import collections
import concurrent.futures
import functools
import os
import queue
import re
import secrets
import shutil
import sqlite3
import threading
import time

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer

from zwms.account import FOLDER_RE, FOLDERS, MessageInfo, check_id
from zwms.errors import InvalidValue, NoSuchAccount, NoSuchMessage, ZWMSError
from zwms.fileio import TMP_PREFIX, fsync_dir, sweep_temp
from zwms.home import safe_join
from zwms.interfaces import IMailStore
from zwms.pop3.wire import pop3_facts

#: Most jobs handled in one batch (one folder fsync each, one commit).
MAX_BATCH = 256

#: Temp files of a batch written before their fsync round (bounds open fds).
MAX_OPEN = 128

#: Jobs whose batches are committed by the committer thread while the
#: writer goes on (new files only, or flags): see L{FileMailStore._run_batch}.
PIPELINED = frozenset(["deliver", "fetched", "seen", "wire"])

#: Smallest batch (message bytes) handed to the committer: below it the
#: thread hand-over costs more CPU than the overlap saves (measured: 1 KB
#: messages went 15 % slower through the committer, 100 KB ones 1.7x faster).
PIPELINE_BYTES = 256 * 1024

#: Batches waiting for the committer before the writer waits too.
COMMIT_QUEUE = 1

#: Threads of one fsync round (they only wait for the disk).
FSYNC_THREADS = 16

#: Largest message whose POP3 size is counted at delivery (about 1.6 us per
#: KB, in the reactor thread; profiled: 13 % of receiving 100 KB messages).
#: Larger ones get theirs at their first POP3 listing (read in a thread,
#: then kept: L{record_pop3}); they are few, and their reading is cheap
#: next to their transfer.
WIRE_AT_DELIVERY = 32 * 1024

#: Resolved folder paths kept (L{FileMailStore._folder_dir}).
MAX_PATHS = 4096

#: Names of message files the store accepts (its own and hand-imported ones).
NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
OWN_NAME_RE = re.compile(r"^(\d{10,20})\.[0-9a-f]{6}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    account  TEXT    NOT NULL,
    folder   TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    size     INTEGER NOT NULL,
    received REAL    NOT NULL,
    fetched  INTEGER NOT NULL DEFAULT 0,
    seen     INTEGER NOT NULL DEFAULT 0,
    bad      INTEGER NOT NULL DEFAULT 0,
    wire     INTEGER,
    plain    INTEGER,
    PRIMARY KEY (account, folder, name)
);
"""

#: Orders of a folder page other than arrival (the primary key), and the
#: date-range filter of the webmail search (issue 6).
INDEXES = (
    "CREATE INDEX IF NOT EXISTS messages_size ON messages (account, folder, size)",
    "CREATE INDEX IF NOT EXISTS messages_received ON messages (account, folder, received)",
)

#: Orders L{FileMailStore.page} knows (the columns of the index).
ORDERS = {"date": "name", "size": "size, name"}

UPSERT = ("INSERT INTO messages (account, folder, name, size, received, fetched, seen, bad, "
          "wire, plain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (account, folder, name) "
          "DO UPDATE SET size = excluded.size, wire = excluded.wire, plain = excluded.plain")


def add_wire_column(db):
    """
    Give an index made before issue 8 the C{wire} and C{plain} columns
    (NULL: unknown).
    """
    columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    for column in ("wire", "plain"):
        if column not in columns:
            try:
                db.execute("ALTER TABLE messages ADD COLUMN %s INTEGER" % column)
            except sqlite3.OperationalError as e:
                # Another process (zwms-admin, the server) added it meanwhile.
                if "duplicate column" not in str(e):
                    raise


class StoreStopped(ZWMSError):
    """The mail store was stopped; it takes no more changes."""


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


def check_order(order):
    if order not in ORDERS:
        raise InvalidValue("unknown order %r (known: %s)" % (order, ", ".join(sorted(ORDERS))))
    return order


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


def connect(path):
    """A SQLite connection to the index, WAL mode, waiting for locks."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA synchronous = FULL")
    return db


def forget_account(home, account_id):
    """
    Drop every index row of C{account_id} (its folder was removed or is new:
    rows of an earlier account of the same ID must not come back).
    """
    if not os.path.exists(home.index_db):
        return
    db = connect(home.index_db)
    try:
        db.execute(SCHEMA)
        db.execute("DELETE FROM messages WHERE account = ?", (account_id,))
    finally:
        db.close()


_Job = collections.namedtuple("_Job", "kind args deferred future")

#: A row of L{FileMailStore.pop3_rows}: MessageInfo's fields (flags as 0/1),
#: the POP3 size and the "plain" flag.
Pop3Row = collections.namedtuple("Pop3Row",
                                 "name folder size received fetched seen bad wire plain")


@implementer(IMailStore)
class FileMailStore:
    """
    IMailStore over .eml files and a SQLite index.

    @param reactor: anything with C{callFromThread} (the reactor; zwms-admin
        passes a pump); the global reactor when None.
    """

    def __init__(self, home, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self.home = home
        self.reactor = reactor
        self._local = threading.local()
        self._queue = queue.Queue()
        self._thread = None
        self._start_lock = threading.Lock()
        self._stopped = False
        self._stopping = None
        self._last_ns = 0
        self._paths = {}
        self._new_dirs = []
        self._fsync_pool = None
        self._committer = None
        self._commits = None
        # Tests clear this to hold the writer and see one batch form.
        self._gate = threading.Event()
        self._gate.set()
        os.makedirs(self.home.data, exist_ok=True)
        self.new_index = not os.path.exists(self.home.index_db)
        if self.new_index:
            # A journal left beside a deleted index belongs to no database.
            for suffix in ("-wal", "-shm"):
                try:
                    os.unlink(self.home.index_db + suffix)
                except FileNotFoundError:
                    pass
        db = self._db()
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(SCHEMA)
        add_wire_column(db)
        for statement in INDEXES:
            db.execute(statement)

    # -- paths and connections ---------------------------------------------

    def _user_dir(self, account_id):
        return safe_join(self.home.userd, check_id(account_id))

    def _folder_dir(self, account_id, folder):
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
        path = safe_join(self._user_dir(account_id), "mail", check_folder(folder))
        if len(self._paths) >= MAX_PATHS:
            self._paths.clear()
        self._paths[key] = path
        return path

    def _db(self):
        """This thread's connection to the index."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.home.index_db)
        return db

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
            path = os.path.join(self._folder_dir(account_id, folder), check_name(name) + ".eml")
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
        return list(map(_new_pop3_row, cursor))

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
            path = os.path.join(self._folder_dir(account_id, folder), check_name(name) + ".eml")
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
        mail_dir = os.path.join(self._user_dir(aid), "mail")
        try:
            names.update(e.name for e in os.scandir(mail_dir)
                         if FOLDER_RE.match(e.name) and e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            pass
        return list(FOLDERS) + sorted(n for n in names if n not in FOLDERS)

    def counts(self, account_id):
        """C{{folder: (messages, unseen)}} of every folder holding mail."""
        rows = self._db().execute(
            "SELECT folder, COUNT(*), SUM(seen = 0) FROM messages WHERE account = ? "
            "GROUP BY folder", (check_id(account_id),)).fetchall()
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
        self._put(_Job("reindex", (aid,), None, future))
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

    def stop(self):
        """
        Finish the queued jobs and stop the writer thread (again: harmless).

        @return: a Deferred firing once the thread has ended.
        """
        with self._start_lock:
            self._stopped = True
            thread = self._thread
        if thread is None:
            self._close_local()
            return defer.succeed(None)
        if self._stopping is None:
            self._stopping = defer.Deferred()
            self._queue.put(_Job("stop", (), self._stopping, None))
            self._stopping.addCallback(lambda _: (thread.join(), self._close_local()))
        done = defer.Deferred()
        self._stopping.addBoth(lambda result: (done.callback(None), result)[1])
        return done

    def _close_local(self):
        pool, self._fsync_pool = self._fsync_pool, None
        if pool is not None:
            pool.shutdown(wait=False)
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _submit(self, kind, args):
        d = defer.Deferred()
        try:
            self._put(_Job(kind, args, d, None))
        except StoreStopped as e:
            return defer.fail(e)
        return d

    def _put(self, job):
        with self._start_lock:
            if self._stopped:
                raise StoreStopped("the mail store is stopped")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="zwms-mail-writer",
                                                daemon=True)
                self._thread.start()
            self._queue.put(job)

    # -- the writer thread ---------------------------------------------------

    def _run(self):
        db = connect(self.home.index_db)
        try:
            while True:
                batch = [self._queue.get()]
                self._gate.wait()
                while len(batch) < MAX_BATCH and batch[-1].kind != "stop":
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = batch[-1] if batch[-1].kind == "stop" else None
                if stop is not None:
                    batch.pop()
                if batch:
                    try:
                        self._run_batch(db, batch)
                    except BaseException:
                        # A bug must not kill the thread and leave every
                        # later Deferred waiting: fail this batch, go on.
                        self._fail_batch(batch, Failure())
                if stop is not None:
                    self._stop_committer()
                    self.reactor.callFromThread(stop.deferred.callback, None)
                    return
        finally:
            db.close()

    # -- the committer thread (pipelined batches) ------------------------------

    def _hand_over(self, item):
        """Give a batch whose files are durable to the committer thread."""
        if self._committer is None:
            self._commits = queue.Queue(maxsize=COMMIT_QUEUE)
            self._committer = threading.Thread(target=self._run_commits,
                                               name="zwms-mail-commit", daemon=True)
            self._committer.start()
        self._commits.put(item)

    def _drain_committer(self):
        """Wait until the committer has committed (and fired) every batch handed over."""
        if self._committer is not None:
            self._commits.join()

    def _stop_committer(self):
        if self._committer is not None:
            self._commits.put(None)
            self._committer.join()
            self._committer = None

    def _run_commits(self):
        db = connect(self.home.index_db)
        try:
            while True:
                item = self._commits.get()
                try:
                    if item is None:
                        return
                    work, results, written = item
                    try:
                        self._commit(db, work, results, written)
                    except BaseException:
                        # A bug: fail the batch (nothing of it has fired).
                        for files in written.values():
                            self._unlink(files)
                        self._fail_batch(work, Failure())
                finally:
                    self._commits.task_done()
        finally:
            db.close()

    def _fail_batch(self, batch, failure):
        for job in batch:
            if job.future is not None and not job.future.done():
                job.future.set_exception(failure.value)
        # _run_batch fires its Deferreds last, all at once: none has fired.
        outcomes = [(job.deferred, failure) for job in batch if job.deferred is not None]
        try:
            self.reactor.callFromThread(_fire, outcomes)
        except Exception:
            pass

    def _run_batch(self, db, batch):
        """
        One batch: its files (written, fsynced, renamed, folders fsynced),
        then its SQL in one transaction, then its Deferreds.  A batch of
        deliveries and flag changes only is handed to the committer thread
        once its files are durable, so that the next batch's files are
        written while this one commits (two disk waits overlap instead of
        adding up); any other job (delete, move, folders, reindex) first
        waits for the committer to be idle and runs here, start to end.
        """
        if any(job.kind not in PIPELINED for job in batch):
            self._drain_committer()
        for job in batch:
            if job.kind == "reindex":
                # Alone in its own transactions; its waiter is a thread.
                try:
                    job.future.set_result(self._reindex(db, *job.args))
                except BaseException as e:
                    job.future.set_exception(e)
        work = [job for job in batch if job.kind != "reindex"]
        if not work:
            return
        results = {}
        written = self._write_batch(work, results)   # job index -> [(path, folder)]
        sync = {folder for files in written.values() for _, folder in files}
        sync.update(d for i, d in self._new_dirs if i in written)
        try:
            self._sync_folders(sorted(sync))
        except BaseException:
            failure = Failure()
            for i in list(written):
                self._unlink(written.pop(i))
                results[i] = failure
        if all(job.kind in PIPELINED for job in work) and _bytes(work) >= PIPELINE_BYTES:
            self._hand_over((work, results, written))
        else:
            self._commit(db, work, results, written)

    def _commit(self, db, work, results, written):
        """The SQL of a batch whose files are durable, then its Deferreds."""
        removed = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for i, job in enumerate(work):
                if isinstance(results.get(i), Failure):
                    continue
                db.execute("SAVEPOINT job")
                try:
                    job_removed = []
                    results[i] = self._apply(db, job, results.get(i), job_removed)
                    db.execute("RELEASE job")
                    removed.extend(job_removed)
                except BaseException:
                    results[i] = Failure()
                    db.execute("ROLLBACK TO job")
                    db.execute("RELEASE job")
                    self._unlink(written.pop(i, []))
            db.execute("COMMIT")
        except BaseException:
            failure = Failure()
            if db.in_transaction:
                db.execute("ROLLBACK")
            for i in range(len(work)):
                if not isinstance(results.get(i), Failure):
                    results[i] = failure
                self._unlink(written.pop(i, []))
            removed = []
        self._unlink(removed)
        outcomes = [(job.deferred, results[i]) for i, job in enumerate(work)]
        self.reactor.callFromThread(_fire, outcomes)

    def _new_name(self):
        # Strictly increasing in this process; the random part keeps two
        # processes (server, zwms-admin) apart.
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        return "%d.%s" % (now, secrets.token_hex(3))

    def _write_batch(self, work, results):
        """
        The files of every deliver job of a batch: write them all to temp
        files, fsync them in rounds (L{_sync_round}), rename them to their
        names.  A job whose file fails at any step has all its files
        removed and its result set to the failure; the others go on.

        @return: C{{job index: [(path, folder dir)]}} of the jobs written;
            C{results} gets each job's names.
        """
        self._new_dirs = []    # (job index, folder dir) of folders made
        staged = {}            # job index -> [[tmp, path, folder dir, fd]]
        round_ = []            # records whose fsync is still to come

        def fail(i, failure):
            results[i] = failure
            for record in staged.pop(i, ()):
                self._discard(record)

        for i, job in enumerate(work):
            if job.kind != "deliver":
                continue
            records = staged[i] = []
            try:
                for account_id, folder, data, _bad, _wire in job.args:
                    record = self._stage(i, account_id, folder, data)
                    records.append(record)
                    round_.append((i, record))
                results[i] = [os.path.basename(r[1])[:-4] for r in records]
            except BaseException:
                fail(i, Failure())
            if len(round_) >= MAX_OPEN:
                self._sync_round(round_, staged, fail)
                round_ = []
        self._sync_round(round_, staged, fail)
        written = {}
        for i, records in list(staged.items()):
            files = []
            try:
                for record in records:
                    os.rename(record[0], record[1])
                    record[0] = None
                    files.append((record[1], record[2]))
            except BaseException:
                failure = Failure()
                self._unlink(files)
                fail(i, failure)
                continue
            written[i] = files
        return written

    def _stage(self, i, account_id, folder, data):
        """
        Write one message to a temp file in its folder, without fsync.

        @return: C{[temp path, final path, folder dir, open fd]}.
        """
        folder_dir = self._folder_dir(account_id, folder)
        name = self._new_name()
        tmp = os.path.join(folder_dir, TMP_PREFIX + name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileNotFoundError:
            user_dir = self._user_dir(account_id)
            if not os.path.isdir(user_dir):
                raise NoSuchAccount("no mailbox for account %r" % (account_id,))
            # New folders are entries of their parents: sync those too.
            mail_dir = os.path.dirname(folder_dir)
            if not os.path.isdir(mail_dir):
                self._new_dirs.append((i, user_dir))
            os.makedirs(folder_dir, exist_ok=True)
            self._new_dirs.append((i, mail_dir))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        record = [tmp, os.path.join(folder_dir, name + ".eml"), folder_dir, fd]
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            self._discard(record)
            raise
        return record

    def _sync_round(self, round_, staged, fail):
        """
        fsync the temp files of C{round_} (C{[(job index, record)]}) and
        close them; a file that fails fails its job.
        """
        pending = [(i, r) for i, r in round_ if r[3] is not None and i in staged]
        outcomes = self._fsync_all([r[3] for _, r in pending])
        for (i, record), error in zip(pending, outcomes):
            if record[3] is not None:   # (a failed job's files are closed already)
                try:
                    os.close(record[3])
                except OSError:
                    pass
                record[3] = None
            if error is not None and i in staged:
                fail(i, Failure(error))

    def _sync_folders(self, folders):
        """fsync_dir each folder; several at once, like the files."""
        if len(folders) < 2:
            for folder in folders:
                fsync_dir(folder)
            return
        if self._fsync_pool is None:
            self._fsync_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=FSYNC_THREADS, thread_name_prefix="zwms-fsync")
        for _ in self._fsync_pool.map(fsync_dir, folders):
            pass

    def _fsync_all(self, fds):
        """
        fsync every fd at once, from parallel threads: the file system
        folds concurrent fsyncs into one journal commit (measured on this
        ext4 under load: 10 files fsynced one after the other 235/s, from 6
        threads at once 3,440/s).

        @return: one exception or None per fd, in order.
        """
        if len(fds) < 2:
            return [_fsync(fd) for fd in fds]
        if self._fsync_pool is None:
            self._fsync_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=FSYNC_THREADS, thread_name_prefix="zwms-fsync")
        return list(self._fsync_pool.map(_fsync, fds))

    def _discard(self, record):
        """Close and remove one staged temp file (best effort)."""
        tmp, _path, _folder, fd = record
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
            record[3] = None
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def _unlink(self, files):
        """
        Remove files (failed deliveries, deleted messages) and fsync their
        folders, best effort: a file left behind is seen again by reindex.
        """
        folders = set()
        for path, folder in files:
            try:
                os.unlink(path)
                folders.add(folder)
            except OSError:
                pass
        for folder in folders:
            try:
                fsync_dir(folder)
            except OSError:
                pass

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
            folder_dir = self._folder_dir(aid, folder)
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
        src_dir, dst_dir = self._folder_dir(aid, folder), self._folder_dir(aid, target)
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
        user_dir = self._user_dir(aid)
        if not os.path.isdir(user_dir):
            raise NoSuchAccount("no mailbox for account %r" % (aid,))
        mail_dir = os.path.join(user_dir, "mail")
        path = self._folder_dir(aid, folder)
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
        target = self._folder_dir(aid, new)
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

    def _scan(self, account_id):
        """{(folder, name): (size, received)} of the .eml files of one account."""
        found = {}
        mail_dir = os.path.join(self.home.userd, account_id, "mail")
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
            found = self._scan(aid)
            db.execute("BEGIN IMMEDIATE")
            try:
                # Flags are kept; the POP3 size too while the file's size is
                # unchanged (otherwise POP3 measures it again).
                flags = {(f, n): (fe, se, b) + ((w, p) if s == z else (None, None))
                         for f, n, fe, se, b, s, w, p in db.execute(
                             "SELECT folder, name, fetched, seen, bad, size, wire, plain "
                             "FROM messages WHERE account = ?", (aid,))
                         for z in [found.get((f, n), (None,))[0]]}
                db.execute("DELETE FROM messages WHERE account = ?", (aid,))
                db.executemany(
                    "INSERT INTO messages (account, folder, name, size, received, fetched, "
                    "seen, bad, wire, plain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(aid, folder, name, size, received)
                     + flags.get((folder, name), (0, 0, 0, None, None))
                     for (folder, name), (size, received) in sorted(found.items())])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            total += len(found)
        return total


def _fsync(fd):
    """fsync one fd: None, or the exception (os.fsync looked up per call)."""
    try:
        os.fsync(fd)
    except Exception as e:
        return e
    return None


#: Row tuple -> Pop3Row without Python code per row (namedtuple._make is).
_new_pop3_row = functools.partial(tuple.__new__, Pop3Row)


def _read_file(path):
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


def _bytes(work):
    """The message bytes of a batch's deliveries."""
    return sum(len(d[2]) for job in work if job.kind == "deliver" for d in job.args)


def _fire(outcomes):
    """Fire the Deferreds of one batch (in the reactor thread)."""
    for d, result in outcomes:
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)
