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

  1. writes each message to a temp file and fsyncs it (fileio.write_temp),
     then renames it to its NAME.eml;
  2. fsyncs each distinct folder ONCE (the renames become durable);
  3. runs ONE SQLite transaction (synchronous=FULL: the commit is durable)
     with a savepoint per job, so one job's failure spoils no other;
  4. removes the files of deleted messages (after the commit: a crash in
     between leaves a file without a row, which reindex brings back; it
     never leaves a row without its file) and fsyncs their folders;
  5. fires each job's Deferred in the reactor thread (callFromThread).

So a deliver() Deferred fires only once its own files are written, fsynced,
renamed, their folders fsynced and their rows committed: the SMTP server
answers 250 only after that (SPEC S3, the "250 rule").  A job that fails at
any step has its files removed and its Deferred fails; nothing is left.
Under load many deliveries share one folder fsync and one commit, which is
what makes the store fast (TWISTED-NOTES "Blocking work").

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
from zwms.fileio import TMP_PREFIX, fsync_dir, sweep_temp, write_temp
from zwms.home import safe_join
from zwms.interfaces import IMailStore

#: Most jobs handled in one batch (one folder fsync each, one commit).
MAX_BATCH = 256

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

UPSERT = ("INSERT INTO messages (account, folder, name, size, received, fetched, seen, bad) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, folder, name) "
          "DO UPDATE SET size = excluded.size")


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
        for statement in INDEXES:
            db.execute(statement)

    # -- paths and connections ---------------------------------------------

    def _user_dir(self, account_id):
        return safe_join(self.home.userd, check_id(account_id))

    def _folder_dir(self, account_id, folder):
        return safe_join(self._user_dir(account_id), "mail", check_folder(folder))

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
            with open(path, "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchMessage("%s/%s/%s" % (account_id, folder, name))

    def usage(self, account_id):
        """(message count, total bytes) over all folders, from the index."""
        count, size = self._db().execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages WHERE account = ?",
            (check_id(account_id),)).fetchone()
        return count, size

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
                    self.reactor.callFromThread(stop.deferred.callback, None)
                    return
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
        written = {}        # job index -> [(path, folder dir)], for undo
        sync = set()
        results = {}
        for i, job in enumerate(work):
            if job.kind == "deliver":
                try:
                    names, files, dirs = self._write_files(job.args)
                except BaseException:
                    results[i] = Failure()
                    continue
                written[i] = files
                sync.update(dirs)
                results[i] = names
        try:
            for folder in sorted(sync):
                fsync_dir(folder)
        except BaseException:
            failure = Failure()
            for i in list(written):
                self._unlink(written.pop(i))
                results[i] = failure
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

    def _write_files(self, deliveries):
        """
        Write, fsync and rename the files of one deliver job.

        @return: (names, [(path, folder)], folders to fsync).
        """
        names, files, dirs = [], [], set()
        try:
            for account_id, folder, data, _bad in deliveries:
                user_dir = self._user_dir(account_id)
                if not os.path.isdir(user_dir):
                    raise NoSuchAccount("no mailbox for account %r" % (account_id,))
                folder_dir = self._folder_dir(account_id, folder)
                if not os.path.isdir(folder_dir):
                    # New folders are entries of their parents: sync those too.
                    mail_dir = os.path.dirname(folder_dir)
                    if not os.path.isdir(mail_dir):
                        dirs.add(user_dir)
                    os.makedirs(folder_dir, exist_ok=True)
                    dirs.add(mail_dir)
                name = self._new_name()
                tmp = write_temp(folder_dir, data)
                path = os.path.join(folder_dir, name + ".eml")
                try:
                    os.rename(tmp, path)
                except BaseException:
                    os.unlink(tmp)
                    raise
                files.append((path, folder_dir))
                dirs.add(folder_dir)
                names.append(name)
        except BaseException:
            self._unlink(files)
            raise
        return names, files, dirs

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
            for (aid, folder, data, bad), name in zip(job.args, names):
                # The arrival time is the one in the name, as reindex reads it.
                received = int(name.partition(".")[0]) / 1e9
                db.execute(UPSERT, (aid, folder, name, len(data), received, 0, 0, int(bad)))
            return names
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
                flags = {(f, n): (fe, se, b) for f, n, fe, se, b in db.execute(
                    "SELECT folder, name, fetched, seen, bad FROM messages WHERE account = ?",
                    (aid,))}
                db.execute("DELETE FROM messages WHERE account = ?", (aid,))
                db.executemany(
                    "INSERT INTO messages (account, folder, name, size, received, fetched, "
                    "seen, bad) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(aid, folder, name, size, received) + flags.get((folder, name), (0, 0, 0))
                     for (folder, name), (size, received) in sorted(found.items())])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            total += len(found)
        return total


def _fire(outcomes):
    """Fire the Deferreds of one batch (in the reactor thread)."""
    for d, result in outcomes:
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)
