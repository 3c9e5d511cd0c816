# -*- test-case-name: tests.test_store -*-
"""
The write path of the mail store: one writer thread, group commit
(L{GroupCommitWriter}, the base of L{zwms.store.mailstore.FileMailStore}).

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
"""

import collections
import concurrent.futures
import os
import queue
import threading

from twisted.internet import defer
from twisted.python.failure import Failure

from zwms.errors import NoSuchAccount, ZWMSError
from zwms.fileio import TMP_PREFIX, fsync_dir
from zwms.store.mailindex import connect

#: Most jobs handled in one batch (one folder fsync each, one commit).
MAX_BATCH = 256

#: Temp files of a batch written before their fsync round (bounds open fds).
MAX_OPEN = 128

#: Jobs whose batches are committed by the committer thread while the
#: writer goes on (new files only, or flags): see L{GroupCommitWriter._run_batch}.
PIPELINED = frozenset(["deliver", "fetched", "seen", "wire"])

#: Smallest batch (message bytes) handed to the committer: below it the
#: thread hand-over costs more CPU than the overlap saves (measured: 1 KB
#: messages went 15 % slower through the committer, 100 KB ones 1.7x faster).
PIPELINE_BYTES = 256 * 1024

#: Batches waiting for the committer before the writer waits too.
COMMIT_QUEUE = 1

#: Threads of one fsync round (they only wait for the disk).
FSYNC_THREADS = 16


class StoreStopped(ZWMSError):
    """The mail store was stopped; it takes no more changes."""


#: One job of the writer: C{kind} ("deliver", "delete", ..., "reindex",
#: "stop"), its checked arguments, and the Deferred (reactor callers) or
#: the Future (a thread waiting: reindex) its result goes to.
Job = collections.namedtuple("Job", "kind args deferred future")


class GroupCommitWriter:
    """
    The writer and committer threads of the mail store (see the module
    docstring).  The subclass provides C{layout}
    (L{zwms.store.mailfiles.MailLayout}), C{_names}
    (L{zwms.store.mailfiles.MessageNames}), C{_apply(db, job, names,
    removed)} (the SQL of one job, in its savepoint) and
    C{_reindex(db, account_id)}.

    @param index_path: the SQLite index (each thread opens its own connection).
    @param reactor: anything with C{callFromThread}: the Deferreds fire there.
    """

    def __init__(self, index_path, reactor):
        self.reactor = reactor
        self._index_path = index_path
        self._queue = queue.Queue()
        self._thread = None
        self._start_lock = threading.Lock()
        self._stopped = False
        self._stopping = None
        self._new_dirs = []
        self._fsync_pool = None
        self._committer = None
        self._commits = None
        # Tests clear this to hold the writer and see one batch form.
        self._gate = threading.Event()
        self._gate.set()

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
            self._queue.put(Job("stop", (), self._stopping, None))
            self._stopping.addCallback(lambda _: (thread.join(), self._close_local()))
        done = defer.Deferred()
        self._stopping.addBoth(lambda result: (done.callback(None), result)[1])
        return done

    def _close_local(self):
        """Release what the stopped writer leaves (the subclass adds its own)."""
        pool, self._fsync_pool = self._fsync_pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def _submit(self, kind, args):
        """Queue one job; @return: its Deferred."""
        d = defer.Deferred()
        try:
            self._put(Job(kind, args, d, None))
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
        db = connect(self._index_path)
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
        db = connect(self._index_path)
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

    # -- the files of a batch --------------------------------------------------

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
        folder_dir = self.layout.folder_dir(account_id, folder)
        name = self._names.new()
        tmp = os.path.join(folder_dir, TMP_PREFIX + name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileNotFoundError:
            user_dir = self.layout.user_dir(account_id)
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


def _fsync(fd):
    """fsync one fd: None, or the exception (os.fsync looked up per call)."""
    try:
        os.fsync(fd)
    except Exception as e:
        return e
    return None


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
