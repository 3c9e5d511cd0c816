"""
The stores: one suite of mail-store tests and one of account tests, each run
against the in-memory fake and the file implementation; then what only the
files have (durability, crash leftovers, reindex, group commit, locking,
another process's changes); passwords; POP-before-SMTP memory.
"""

import errno
import os
import re
import sqlite3

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from tests.helpers import make_services
from zwms import fileio
from zwms.account import Delivery, FOLDERS
from zwms.config import Settings
from zwms.errors import (AccountExists, InvalidValue, LicenseOver, NoSuchAccount,
                         NoSuchMessage)
from zwms.fileio import TMP_PREFIX, atomic_write
from zwms.home import Home
from zwms.interfaces import IAccountStore, IMailStore, IRelayMemory
from zwms.store import mailstore as mailstore_module
from zwms.store import mailindex, mailwriter
from zwms.store import passwords
from zwms.store.accounts import CorruptAccount, FileAccounts
from zwms.store.mailstore import FileMailStore, StoreStopped
from zwms.store.memory import MemoryAccounts, MemoryMailStore
from zwms.store.relay_memory import RelayMemory
from zwms.pop3 import wire


def call(f, *args):
    """Call a store method that may answer now or with a Deferred."""
    return defer.maybeDeferred(f, *args)


# -- the mail store suite ------------------------------------------------------


class MailStoreTestsMixin:
    """What every IMailStore does; C{self.store} is set by the subclass."""

    def test_interface(self):
        self.assertTrue(verifyObject(IMailStore, self.store))

    @defer.inlineCallbacks
    def test_deliver_read_list(self):
        names = yield call(self.store.deliver, [Delivery("alice", b"first\r\n")])
        more = yield call(self.store.deliver, [Delivery("alice", b"second message\r\n")])
        self.assertEqual(len(names), 1)
        infos = self.store.messages("alice")
        self.assertEqual([i.name for i in infos], names + more)
        self.assertEqual([i.size for i in infos], [7, 16])
        self.assertEqual([i.folder for i in infos], ["Inbox", "Inbox"])
        self.assertFalse(any(i.fetched or i.seen for i in infos))
        self.assertLessEqual(infos[0].received, infos[1].received)
        self.assertEqual(self.store.read("alice", "Inbox", names[0]), b"first\r\n")
        self.assertEqual(self.store.read("alice", "Inbox", more[0]), b"second message\r\n")

    @defer.inlineCallbacks
    def test_one_message_several_mailboxes(self):
        data = bytes(range(256)) * 40
        names = yield call(self.store.deliver, [Delivery("alice", data), Delivery("bob", data),
                                                Delivery("alice", data, "Spam")])
        self.assertEqual(len(names), 3)
        self.assertEqual(len(set(names)), 3)
        self.assertEqual(self.store.read("bob", "Inbox", names[1]), data)
        self.assertEqual(self.store.read("alice", "Spam", names[2]), data)
        self.assertEqual([i.name for i in self.store.messages("alice", "Spam")], [names[2]])
        self.assertEqual([i.name for i in self.store.messages("alice")], [names[0]])

    @defer.inlineCallbacks
    def test_names_are_uidl_safe_and_sorted(self):
        names = []
        for i in range(20):
            names += (yield call(self.store.deliver, [Delivery("alice", b"m%d" % i)]))
        self.assertEqual(sorted(names), names)
        for name in names:
            self.assertTrue(re.match(r"^[\x21-\x7e]{1,70}$", name), name)

    def test_empty_mailbox(self):
        self.assertEqual(self.store.messages("alice"), [])
        self.assertEqual(self.store.messages("alice", "Trash"), [])
        self.assertEqual(tuple(self.store.usage("alice")), (0, 0))

    @defer.inlineCallbacks
    def test_usage_counts_every_folder(self):
        yield call(self.store.deliver, [Delivery("alice", b"12345"),
                                        Delivery("alice", b"123", "Sent"),
                                        Delivery("bob", b"1")])
        self.assertEqual(tuple(self.store.usage("alice")), (2, 8))
        self.assertEqual(tuple(self.store.usage("bob")), (1, 1))

    @defer.inlineCallbacks
    def test_delete(self):
        names = yield call(self.store.deliver, [Delivery("alice", b"a"), Delivery("alice", b"b"),
                                                Delivery("alice", b"c")])
        yield call(self.store.delete, "alice", "Inbox", [names[0], names[2]])
        self.assertEqual([i.name for i in self.store.messages("alice")], [names[1]])
        self.assertRaises(NoSuchMessage, self.store.read, "alice", "Inbox", names[0])
        self.assertEqual(tuple(self.store.usage("alice")), (1, 1))
        # Deleting what is gone is no error.
        yield call(self.store.delete, "alice", "Inbox", [names[0]])

    @defer.inlineCallbacks
    def test_mark_fetched(self):
        names = yield call(self.store.deliver, [Delivery("alice", b"a"), Delivery("alice", b"b")])
        yield call(self.store.mark_fetched, "alice", [names[1]])
        self.assertEqual([(i.name, i.fetched) for i in self.store.messages("alice")],
                         [(names[0], False), (names[1], True)])

    def test_read_missing(self):
        self.assertRaises(NoSuchMessage, self.store.read, "alice", "Inbox", "1234.abcdef")

    def test_bad_folder_refused(self):
        return self.assertFailure(call(self.store.deliver, [Delivery("alice", b"x", "")]),
                                  InvalidValue)

    @defer.inlineCallbacks
    def test_reindex_counts(self):
        yield call(self.store.deliver, [Delivery("alice", b"a"), Delivery("alice", b"b", "Sent"),
                                        Delivery("bob", b"c")])
        self.assertEqual(self.store.reindex("alice"), 2)
        self.assertEqual(self.store.reindex(), 3)
        self.assertEqual(len(self.store.messages("alice")), 1)


    # -- webmail additions: paging, counts, seen, move (issue 6) ------------

    @defer.inlineCallbacks
    def test_page_newest_first_with_total(self):
        names = []
        for i in range(7):
            names += (yield call(self.store.deliver, [Delivery("alice", b"m%d" % i)]))
        yield call(self.store.deliver, [Delivery("alice", b"s", "Sent")])
        total, infos = self.store.page("alice", "Inbox", 0, 3)
        self.assertEqual(total, 7)
        self.assertEqual([i.name for i in infos], names[::-1][:3])
        total, infos = self.store.page("alice", "Inbox", 6, 3)
        self.assertEqual([i.name for i in infos], [names[0]])
        self.assertEqual(self.store.page("alice", "Inbox", 9, 3), (7, []))
        self.assertEqual(self.store.page("alice", "Trash", 0, 3), (0, []))

    @defer.inlineCallbacks
    def test_mark_seen_and_counts(self):
        names = yield call(self.store.deliver, [Delivery("alice", b"a"), Delivery("alice", b"b"),
                                                Delivery("alice", b"c", "Spam")])
        self.assertEqual(self.store.counts("alice"), {"Inbox": (2, 2), "Spam": (1, 1)})
        yield call(self.store.mark_seen, "alice", "Inbox", [names[0]])
        self.assertEqual(self.store.counts("alice")["Inbox"], (2, 1))
        self.assertEqual([i.seen for i in self.store.messages("alice")], [True, False])
        yield call(self.store.mark_seen, "alice", "Inbox", [names[0]], False)
        self.assertEqual(self.store.counts("alice")["Inbox"], (2, 2))
        self.assertEqual(self.store.counts("bob"), {})

    @defer.inlineCallbacks
    def test_move_keeps_bytes_and_flags(self):
        names = yield call(self.store.deliver, [Delivery("alice", b"one"),
                                                Delivery("alice", b"two")])
        yield call(self.store.mark_seen, "alice", "Inbox", [names[0]])
        moved = yield call(self.store.move, "alice", "Inbox", [names[0], "1.abcdef"], "Trash")
        self.assertEqual(moved, 1)
        self.assertEqual([i.name for i in self.store.messages("alice")], [names[1]])
        trash = self.store.messages("alice", "Trash")
        self.assertEqual([(i.name, i.seen) for i in trash], [(names[0], True)])
        self.assertEqual(self.store.read("alice", "Trash", names[0]), b"one")
        self.assertRaises(NoSuchMessage, self.store.read, "alice", "Inbox", names[0])
        self.assertEqual(tuple(self.store.usage("alice")), (2, 6))

    def test_move_bad_folder_refused(self):
        return self.assertFailure(call(self.store.move, "alice", "Inbox", [], ""), InvalidValue)


    # -- webmail additions: order, date range, head, user folders (issue 6) --

    @defer.inlineCallbacks
    def test_page_by_size_and_date_range(self):
        names = []
        for body in (b"mm", b"l" * 9, b"s", b"xxxxx"):
            names += (yield call(self.store.deliver, [Delivery("alice", body)]))
        total, infos = self.store.page("alice", "Inbox", 0, 10, order="size")
        self.assertEqual([i.size for i in infos], [9, 5, 2, 1])
        total, infos = self.store.page("alice", "Inbox", 1, 2, order="size", descending=False)
        self.assertEqual((total, [i.size for i in infos]), (4, [2, 5]))
        total, infos = self.store.page("alice", "Inbox", 0, 10, descending=False)
        self.assertEqual([i.name for i in infos], names)
        received = [i.received for i in self.store.messages("alice")]
        total, infos = self.store.page("alice", "Inbox", 0, 10, since=received[1],
                                       until=received[3])
        self.assertEqual((total, [i.name for i in infos]), (2, [names[2], names[1]]))
        self.assertEqual(self.store.page("alice", "Inbox", 0, 10, since=received[3] + 1),
                         (0, []))
        self.assertRaises(InvalidValue, self.store.page, "alice", "Inbox", 0, 10, "subject")

    @defer.inlineCallbacks
    def test_head(self):
        names = yield call(self.store.deliver, [Delivery("alice", b"Subject: a\r\n\r\nbody")])
        self.assertEqual(self.store.head("alice", "Inbox", names[0], 9), b"Subject: ")
        self.assertRaises(NoSuchMessage, self.store.head, "alice", "Inbox", "1.abcdef")

    @defer.inlineCallbacks
    def test_user_folders(self):
        self.assertEqual(self.store.folders("alice"), list(FOLDERS))
        yield call(self.store.create_folder, "alice", "회사 일")
        yield call(self.store.create_folder, "alice", "Archive")
        self.assertEqual(self.store.folders("alice"), list(FOLDERS) + ["Archive", "회사 일"])
        yield self.assertFailure(call(self.store.create_folder, "alice", "Archive"),
                                 InvalidValue)
        for bad in ("inbox", "Trash", "", ".hidden", "a/b", "..", " pad", "x\x7f",
                    "a" * 65, "new\nline"):
            yield self.assertFailure(call(self.store.create_folder, "alice", bad), InvalidValue)
        names = yield call(self.store.deliver, [Delivery("alice", b"one")])
        moved = yield call(self.store.move, "alice", "Inbox", names, "Archive")
        self.assertEqual(moved, 1)
        yield self.assertFailure(call(self.store.delete_folder, "alice", "Archive"),
                                 InvalidValue)
        yield self.assertFailure(call(self.store.rename_folder, "alice", "Archive", "회사 일"),
                                 InvalidValue)
        count = yield call(self.store.rename_folder, "alice", "Archive", "Old")
        self.assertEqual(count, 1)
        self.assertEqual(self.store.read("alice", "Old", names[0]), b"one")
        self.assertRaises(NoSuchMessage, self.store.read, "alice", "Archive", names[0])
        self.assertEqual(self.store.folders("alice"), list(FOLDERS) + ["Old", "회사 일"])
        yield call(self.store.move, "alice", "Old", names, "Trash")
        yield call(self.store.delete_folder, "alice", "Old")
        yield call(self.store.delete_folder, "alice", "회사 일")
        self.assertEqual(self.store.folders("alice"), list(FOLDERS))
        yield self.assertFailure(call(self.store.delete_folder, "alice", "Old"), InvalidValue)
        yield self.assertFailure(call(self.store.delete_folder, "alice", "Inbox"), InvalidValue)
        yield self.assertFailure(call(self.store.rename_folder, "alice", "Nope", "Other"),
                                 InvalidValue)
        self.assertEqual(self.store.folders("bob"), list(FOLDERS))


class MemoryMailStoreTests(MailStoreTestsMixin, TestCase):
    def setUp(self):
        self.store = MemoryMailStore()


class FileMailStoreTestsBase(TestCase):
    """A file store over a scratch home with accounts alice and bob."""

    def setUp(self):
        self.services = make_services(self.mktemp(), memory=False)
        self.services.settings.set("DOMAIN", "example.com")
        self.home = self.services.home
        for aid in ("alice", "bob"):
            self.services.accounts.add(aid, "pw")
        self.store = self.services.mail
        self.addCleanup(self.store.stop)

    def folder(self, aid="alice", folder="Inbox"):
        return os.path.join(self.home.userd, aid, "mail", folder)

    def files(self, aid="alice", folder="Inbox"):
        return sorted(os.listdir(self.folder(aid, folder)))

    def index_rows(self, aid="alice"):
        db = sqlite3.connect(self.home.index_db)
        try:
            return db.execute("SELECT folder, name, size FROM messages WHERE account = ? "
                              "ORDER BY name", (aid,)).fetchall()
        finally:
            db.close()


class FileMailStoreTests(MailStoreTestsMixin, FileMailStoreTestsBase):
    """The shared suite, then what only the file store does."""

    @defer.inlineCallbacks
    def test_layout_and_names(self):
        names = yield self.store.deliver([Delivery("alice", b"hello")])
        self.assertEqual(self.files(), [names[0] + ".eml"])
        self.assertTrue(re.match(r"^\d{19}\.[0-9a-f]{6}$", names[0]))
        with open(os.path.join(self.folder(), names[0] + ".eml"), "rb") as f:
            self.assertEqual(f.read(), b"hello")

    def test_durable_when_fired(self):
        """The Deferred fires only once the file and its index row are there."""
        def check(names):
            self.assertTrue(os.path.exists(os.path.join(self.folder(), names[0] + ".eml")))
            self.assertEqual(self.index_rows(), [("Inbox", names[0], 3)])
            self.assertFalse([n for n in self.files() if n.startswith(TMP_PREFIX)])
        return self.store.deliver([Delivery("alice", b"abc")]).addCallback(check)

    @defer.inlineCallbacks
    def test_user_folder_created(self):
        names = yield self.store.deliver([Delivery("alice", b"x", "Projects 2024")])
        self.assertEqual(self.files(folder="Projects 2024"), [names[0] + ".eml"])

    @defer.inlineCallbacks
    def test_hostile_names_refused(self):
        for folder in ("../bob", "a/b", ".hidden", "x\x00"):
            yield self.assertFailure(self.store.deliver([Delivery("alice", b"x", folder)]),
                                     InvalidValue)
        yield self.assertFailure(self.store.deliver([Delivery("../bob", b"x")]), InvalidValue)
        self.assertRaises(NoSuchMessage, self.store.read, "alice", "Inbox", "../../account.cfg")
        self.assertRaises(NoSuchMessage, self.store.read, "alice", "Inbox", "..")
        self.assertRaises(InvalidValue, self.store.messages, "alice", "../bob")
        yield self.assertFailure(self.store.delete("alice", "Inbox", ["../x"]), NoSuchMessage)

    @defer.inlineCallbacks
    def test_delete_removes_file(self):
        names = yield self.store.deliver([Delivery("alice", b"a"), Delivery("alice", b"b")])
        count = yield self.store.delete("alice", "Inbox", [names[0], "1.abcdef"])
        self.assertEqual(count, 1)
        self.assertEqual(self.files(), [names[1] + ".eml"])

    @defer.inlineCallbacks
    def test_no_mailbox_fails(self):
        yield self.assertFailure(self.store.deliver([Delivery("ghost", b"x")]), NoSuchAccount)
        self.assertFalse(os.path.exists(os.path.join(self.home.userd, "ghost")))

    @defer.inlineCallbacks
    def test_failing_write_leaves_nothing(self):
        real_write, calls = os.write, []

        def write(fd, data):
            calls.append(fd)
            if len(calls) == 2:  # the second message of the job
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        self.patch(fileio.os, "write", write)
        yield self.assertFailure(
            self.store.deliver([Delivery("alice", b"one"), Delivery("bob", b"two")]), OSError)
        self.assertEqual(self.files("alice"), [])
        self.assertEqual(self.files("bob"), [])
        self.assertEqual(self.index_rows("alice"), [])
        self.assertEqual(self.store.messages("alice"), [])

    @defer.inlineCallbacks
    def test_failing_rename_leaves_nothing(self):
        def rename(src, dst):
            raise OSError(errno.EIO, "I/O error")

        self.patch(mailstore_module.os, "rename", rename)
        yield self.assertFailure(self.store.deliver([Delivery("alice", b"one")]), OSError)
        self.assertEqual(self.files(), [])

    @defer.inlineCallbacks
    def test_failing_index_leaves_nothing(self):
        real_apply = FileMailStore._apply

        def apply(store, db, job, names, removed):
            if job.kind == "deliver" and job.args[0][2] == b"poison":
                raise sqlite3.OperationalError("disk I/O error")
            return real_apply(store, db, job, names, removed)

        self.patch(FileMailStore, "_apply", apply)
        self.store._gate.clear()
        good = self.store.deliver([Delivery("alice", b"good")])
        bad = self.store.deliver([Delivery("alice", b"poison")])
        self.store._gate.set()
        names = yield good
        yield self.assertFailure(bad, sqlite3.OperationalError)
        # The failed job took only its own file with it.
        self.assertEqual(self.files(), [names[0] + ".eml"])
        self.assertEqual([i.name for i in self.store.messages("alice")], names)

    @defer.inlineCallbacks
    def test_failing_commit_fails_the_batch(self):
        real_connect = mailstore_module.connect

        class FailingCommit:
            def __init__(self, db):
                self.db = db

            def execute(self, sql, *args):
                if sql == "COMMIT":
                    raise sqlite3.OperationalError("database is locked")
                return self.db.execute(sql, *args)

            def __getattr__(self, name):
                return getattr(self.db, name)

        yield self.store.stop()
        self.patch(mailwriter, "connect", lambda path: FailingCommit(real_connect(path)))
        store = FileMailStore(self.home, reactor=reactor)
        self.addCleanup(store.stop)
        yield self.assertFailure(store.deliver([Delivery("alice", b"x")]),
                                 sqlite3.OperationalError)
        self.assertEqual(self.files(), [])

    @defer.inlineCallbacks
    def test_writer_survives_a_bug(self):
        names = yield self.store.deliver([Delivery("alice", b"a")])

        def broken(store, files):
            raise RuntimeError("a bug")

        self.patch(FileMailStore, "_unlink", broken)
        yield self.assertFailure(self.store.delete("alice", "Inbox", names), RuntimeError)
        self.flushLoggedErrors(RuntimeError)
        self.patch(FileMailStore, "_unlink", lambda store, files: None)
        more = yield self.store.deliver([Delivery("alice", b"b")])
        self.assertEqual([i.name for i in self.store.messages("alice")], more)

    @defer.inlineCallbacks
    def test_group_commit(self):
        """Deliveries queued together share one folder fsync and one commit."""
        fsyncs, dir_syncs, batches = [], [], []
        real_fsync, real_fsync_dir = os.fsync, mailstore_module.fsync_dir
        real_batch = FileMailStore._run_batch

        def fsync(fd):
            fsyncs.append(fd)
            return real_fsync(fd)

        def fsync_dir(path):
            dir_syncs.append(path)
            return real_fsync_dir(path)

        def run_batch(store, db, batch):
            batches.append(len(batch))
            return real_batch(store, db, batch)

        self.patch(os, "fsync", fsync)
        self.patch(mailwriter, "fsync_dir", fsync_dir)
        self.patch(FileMailStore, "_run_batch", run_batch)
        self.store._gate.clear()  # hold the writer while 50 jobs queue up
        ds = [self.store.deliver([Delivery("alice", b"message %d" % i)]) for i in range(50)]
        self.store._gate.set()
        results = yield defer.gatherResults(ds)
        self.assertEqual(batches, [50])
        self.assertEqual(dir_syncs, [self.folder()])
        self.assertEqual(len(fsyncs), 51)  # 50 files + the folder once
        self.assertEqual(len(self.store.messages("alice")), 50)
        self.assertEqual(len({r[0] for r in results}), 50)

    @defer.inlineCallbacks
    def test_stop_finishes_queued_jobs(self):
        self.store._gate.clear()
        ds = [self.store.deliver([Delivery("bob", b"%d" % i)]) for i in range(10)]
        stopped = self.store.stop()
        self.store._gate.set()
        names = yield defer.gatherResults(ds)
        yield stopped
        self.assertEqual(len(self.files("bob")), 10)
        self.assertEqual(len(names), 10)
        yield self.assertFailure(self.store.deliver([Delivery("bob", b"late")]), StoreStopped)

    def test_stop_without_writes(self):
        store = FileMailStore(self.home, reactor=reactor)
        d = store.stop()
        self.assertEqual(self.successResultOf(d), None)

    @defer.inlineCallbacks
    def test_mark_fetched_only_inbox(self):
        names = yield self.store.deliver([Delivery("alice", b"x", "Sent")])
        yield self.store.mark_fetched("alice", names)
        self.assertFalse(self.store.messages("alice", "Sent")[0].fetched)

    @defer.inlineCallbacks
    def test_crash_leftovers_swept(self):
        yield self.store.deliver([Delivery("alice", b"kept")])
        for folder in (self.folder(), self.folder("bob", "Spam")):
            with open(os.path.join(folder, TMP_PREFIX + "0123456789abcdef"), "wb") as f:
                f.write(b"half a messa")
        doomed = os.path.join(self.home.userd, TMP_PREFIX + "del-carol-1")
        os.makedirs(os.path.join(doomed, "mail", "Inbox"))
        self.assertEqual(self.store.recover(), 3)
        self.assertEqual(len(self.files()), 1)
        self.assertEqual(self.files("bob", "Spam"), [])
        self.assertFalse(os.path.exists(doomed))
        self.assertEqual(self.store.recover(), 0)

    @defer.inlineCallbacks
    def test_index_rebuilt_when_deleted(self):
        names = yield self.store.deliver([Delivery("alice", b"one"), Delivery("alice", b"two"),
                                          Delivery("bob", b"three", "Drafts")])
        yield self.store.stop()
        os.unlink(self.home.index_db)  # the -wal and -shm files may stay
        store = FileMailStore(self.home, reactor=reactor)
        self.addCleanup(store.stop)
        self.assertEqual(store.messages("alice"), [])
        store.recover()  # at start: a missing index is rebuilt
        self.assertEqual([i.name for i in store.messages("alice")], names[:2])
        self.assertEqual([i.size for i in store.messages("bob", "Drafts")], [5])
        self.assertEqual(store.read("bob", "Drafts", names[2]), b"three")

    @defer.inlineCallbacks
    def test_reindex_keeps_flags_and_follows_files(self):
        names = yield self.store.deliver([Delivery("alice", b"one"), Delivery("alice", b"two")])
        yield self.store.mark_fetched("alice", [names[0]])
        os.unlink(os.path.join(self.folder(), names[1] + ".eml"))
        atomic_write(os.path.join(self.folder(), "imported-1.eml"), b"from the old server")
        atomic_write(os.path.join(self.folder(), "notes.txt"), b"not a message")
        self.assertEqual(self.store.reindex("alice"), 2)
        infos = {i.name: i for i in self.store.messages("alice")}
        self.assertEqual(sorted(infos), sorted([names[0], "imported-1"]))
        self.assertTrue(infos[names[0]].fetched)
        self.assertFalse(infos["imported-1"].fetched)
        self.assertEqual(infos["imported-1"].size, 19)
        self.assertEqual(self.store.read("alice", "Inbox", "imported-1"), b"from the old server")

    @defer.inlineCallbacks
    def test_reindex_all_drops_gone_accounts(self):
        yield self.store.deliver([Delivery("alice", b"a"), Delivery("bob", b"b")])
        self.services.accounts.delete("bob", remove_mail=True)
        self.assertEqual(self.store.messages("bob"), [])  # forgotten with the folder
        self.assertEqual(self.store.reindex(), 1)

    @defer.inlineCallbacks
    def test_deleted_account_mail_does_not_come_back(self):
        yield self.store.deliver([Delivery("bob", b"old mail")])
        self.services.accounts.delete("bob", remove_mail=True)
        self.services.accounts.add("bob", "new-pw")
        self.assertEqual(self.store.messages("bob"), [])
        self.assertEqual(tuple(self.store.usage("bob")), (0, 0))

    @defer.inlineCallbacks
    def test_mail_kept_without_emldel(self):
        names = yield self.store.deliver([Delivery("bob", b"kept mail")])
        self.services.accounts.delete("bob", remove_mail=False)
        self.assertEqual(self.files("bob"), [names[0] + ".eml"])
        self.services.accounts.add("bob", "new-pw")
        self.assertEqual([i.name for i in self.store.messages("bob")], names)

    @defer.inlineCallbacks
    def test_two_processes_share_the_index(self):
        """zwms-admin's store and the server's store see each other's mail."""
        other = FileMailStore(self.home, reactor=reactor)
        self.addCleanup(other.stop)
        a = yield self.store.deliver([Delivery("alice", b"from server")])
        b = yield other.deliver([Delivery("alice", b"from admin")])
        self.assertEqual([i.name for i in self.store.messages("alice")], a + b)
        self.assertEqual([i.name for i in other.messages("alice")], a + b)

    def test_reads_from_other_threads(self):
        from twisted.internet.threads import deferToThread
        d = self.store.deliver([Delivery("alice", b"threaded")])
        d.addCallback(lambda names: deferToThread(
            lambda: (self.store.messages("alice")[0].name == names[0],
                     self.store.read("alice", "Inbox", names[0]))))
        d.addCallback(self.assertEqual, (True, b"threaded"))
        return d


# -- the account store suite ---------------------------------------------------


class WriteRoundAndWireTests(FileMailStoreTestsBase):
    """
    Issue 8: one fsync round per batch (files written first, fsynced
    together, then renamed), a failing file fails only its own job, and
    the POP3 size kept in the index.
    """

    @defer.inlineCallbacks
    def test_files_written_before_any_fsync_then_renamed(self):
        events = []
        real_fsync, real_rename = os.fsync, os.rename

        def fsync(fd):
            events.append(("fsync", sorted(n for n in os.listdir(self.folder())
                                           if n.startswith(TMP_PREFIX))))
            return real_fsync(fd)

        def rename(src, dst):
            events.append(("rename", None))
            return real_rename(src, dst)

        self.patch(os, "fsync", fsync)
        self.patch(os, "rename", rename)
        self.store._gate.clear()
        ds = [self.store.deliver([Delivery("alice", b"m%d" % i)]) for i in range(3)]
        self.store._gate.set()
        yield defer.gatherResults(ds)
        kinds = [k for k, _ in events]
        # Three file fsyncs (all three temp files already there), then the
        # renames, then the folder's fsync.
        self.assertEqual(kinds, ["fsync"] * 3 + ["rename"] * 3 + ["fsync"])
        self.assertEqual([len(t) for k, t in events[:3]], [3, 3, 3])
        self.assertEqual(len(self.files()), 3)
        self.assertFalse([n for n in self.files() if n.startswith(TMP_PREFIX)])

    @defer.inlineCallbacks
    def test_failing_fsync_fails_only_its_job(self):
        real_fsync = os.fsync
        poisoned = []

        def fsync(fd):
            if os.fstat(fd).st_size == len(b"poison"):
                poisoned.append(fd)
                raise OSError(errno.EIO, "I/O error")
            return real_fsync(fd)

        self.patch(os, "fsync", fsync)
        self.store._gate.clear()
        good = [self.store.deliver([Delivery("alice", b"good")]) for _ in range(3)]
        bad = self.store.deliver([Delivery("alice", b"ok"), Delivery("bob", b"poison")])
        self.store._gate.set()
        names = yield defer.gatherResults(good)
        yield self.assertFailure(bad, OSError)
        self.assertEqual(len(poisoned), 1)
        self.assertEqual(len(self.files()), 3)
        self.assertEqual(self.files("bob"), [])
        self.assertEqual(len(self.store.messages("alice")), 3)
        self.assertIn(names[0][0] + ".eml", self.files())

    @defer.inlineCallbacks
    def test_many_files_in_one_batch_bound_open_files(self):
        self.patch(mailwriter, "MAX_OPEN", 4)
        rounds, real_round = [], FileMailStore._sync_round

        def sync_round(store, round_, staged, fail):
            rounds.append(len(round_))
            return real_round(store, round_, staged, fail)

        self.patch(FileMailStore, "_sync_round", sync_round)
        names = yield self.store.deliver([Delivery("alice", b"%d" % i) for i in range(10)])
        self.assertEqual(len(set(names)), 10)
        self.assertEqual(self.files(), sorted(n + ".eml" for n in names))
        # The bound is checked between jobs: ten jobs of one batch are
        # fsynced in rounds of at most MAX_OPEN open temp files.
        del rounds[:]
        self.store._gate.clear()
        ds = [self.store.deliver([Delivery("bob", b"%d" % i)]) for i in range(10)]
        self.store._gate.set()
        more = yield defer.gatherResults(ds)
        self.assertEqual(rounds, [4, 4, 2])
        self.assertEqual(self.files("bob"), sorted(n[0] + ".eml" for n in more))

    @defer.inlineCallbacks
    def test_wire_size_kept_at_delivery(self):
        names = yield self.store.deliver([
            Delivery("alice", b"a\r\nb\r\n"), Delivery("alice", b"bare\nlf\nend"),
            Delivery("alice", b"")])
        self.assertEqual(self.store.wire_sizes("alice"),
                         {names[0]: 6, names[1]: 15, names[2]: 0})
        self.assertEqual(self.store.wire_sizes("bob"), {})

    @defer.inlineCallbacks
    def test_wire_size_of_large_messages_left_to_pop3(self):
        limit = mailstore_module.WIRE_AT_DELIVERY
        names = yield self.store.deliver([Delivery("alice", b"x" * (limit - 2) + b"\r\n"),
                                          Delivery("alice", b"y" * (limit - 1) + b"\r\n")])
        self.assertEqual(self.store.wire_sizes("alice"), {names[0]: limit})
        self.assertEqual([m.size for m in self.store.messages("alice")], [limit, limit + 1])

    @defer.inlineCallbacks
    def test_reindex_keeps_wire_of_unchanged_files_only(self):
        names = yield self.store.deliver([Delivery("alice", b"x\n"), Delivery("alice", b"y")])
        with open(os.path.join(self.folder(), names[1] + ".eml"), "wb") as f:
            f.write(b"changed\n")
        with open(os.path.join(self.folder(), "imported.eml"), "wb") as f:
            f.write(b"new\n")
        self.assertEqual(self.store.reindex("alice"), 3)
        self.assertEqual(self.store.wire_sizes("alice"), {names[0]: 3})
        yield self.store.record_pop3("alice", "Inbox", {names[1]: (9, 0), "imported": (5, 1)})
        self.assertEqual(self.store.wire_sizes("alice"),
                         {names[0]: 3, names[1]: 9, "imported": 5})

    @defer.inlineCallbacks
    def test_next_files_are_written_while_a_batch_commits(self):
        import threading
        import time
        self.patch(mailwriter, "PIPELINE_BYTES", 1)
        held, release = threading.Event(), threading.Event()
        real_commit = FileMailStore._commit

        def commit(store, db, work, results, written):
            if work[0].kind == "deliver" and work[0].args[0][2] == b"first":
                held.set()
                release.wait(10)
            return real_commit(store, db, work, results, written)

        self.patch(FileMailStore, "_commit", commit)
        fired = []
        first = self.store.deliver([Delivery("alice", b"first")])
        first.addCallback(lambda names: fired.append("first") or names)
        self.assertTrue(held.wait(10))
        second = self.store.deliver([Delivery("alice", b"second")])
        second.addCallback(lambda names: fired.append("second") or names)
        deadline = time.monotonic() + 10
        while len([n for n in self.files() if n.endswith(".eml")]) < 2:
            self.assertLess(time.monotonic(), deadline, "second file not written")
            time.sleep(0.01)
        # A delete waits for both deliveries' commits (it removes files).
        gone = self.store.delete("alice", "Inbox", ["nothing"])
        gone.addCallback(lambda n: fired.append("delete") or n)
        time.sleep(0.1)
        self.assertEqual(fired, [])
        self.assertEqual(self.store.messages("alice"), [])
        release.set()
        names = yield defer.gatherResults([first, second, gone])
        self.assertEqual(fired, ["first", "second", "delete"])
        self.assertEqual([m.name for m in self.store.messages("alice")],
                         names[0] + names[1])

    def test_read_file_reads_to_the_end(self):
        path = os.path.join(self.mktemp())
        data = os.urandom(200000)
        with open(path, "wb") as f:
            f.write(data)
        self.assertEqual(mailstore_module._read_file(path), data)
        real_fstat = os.fstat

        class Small:
            st_size = 10

        # The file grew after fstat: read on to its end.
        self.patch(os, "fstat", lambda fd: Small())
        self.assertEqual(mailstore_module._read_file(path), data)
        self.patch(os, "fstat", real_fstat)
        with open(path, "wb") as f:
            pass
        self.assertEqual(mailstore_module._read_file(path), b"")

    @defer.inlineCallbacks
    def test_pop3_rows(self):
        names = yield self.store.deliver([Delivery("alice", b"a\n"), Delivery("alice", b"bc")])
        yield self.store.mark_fetched("alice", [names[1]])
        rows = self.store.pop3_rows("alice")
        infos = self.store.messages("alice")
        self.assertEqual([(r.name, r.folder, r.size, r.received, bool(r.fetched), bool(r.seen),
                           bool(r.bad)) for r in rows],
                         [(m.name, m.folder, m.size, m.received, m.fetched, m.seen, m.bad)
                          for m in infos])
        self.assertEqual([r.wire for r in rows], [3, 4])
        self.assertEqual([r.plain for r in rows], [0, 0])
        self.assertEqual([r.fetched for r in rows], [0, 1])
        self.assertEqual(self.store.pop3_rows("bob"), [])

    @defer.inlineCallbacks
    def test_plain_flag(self):
        cases = [(b"a\r\nb\r\n", 1), (b"", 1), (b"a\r\n.b\r\n", 0), (b".a\r\n", 0),
                 (b"a\nb\r\n", 0), (b"a\r\nb", 0), (b"a.\r\n.", 0), (b"x.y\r\n", 1)]
        names = yield self.store.deliver([Delivery("alice", d) for d, _ in cases])
        plain = {r.name: r.plain for r in self.store.pop3_rows("alice")}
        self.assertEqual([plain[n] for n in names], [p for _, p in cases])
        for data, _ in cases:
            self.assertEqual(wire.pop3_facts(data)[0], len(wire.normalise(data)))

    def test_record_pop3_checks_its_input(self):
        self.failureResultOf(self.store.record_pop3("alice", "Inbox", {"../x": (1, 0)}),
                             NoSuchMessage)
        self.failureResultOf(self.store.record_pop3("alice", "Inbox", {"a": ("many", 0)}),
                             ValueError)

    @defer.inlineCallbacks
    def test_old_index_gets_the_wire_column(self):
        names = yield self.store.deliver([Delivery("alice", b"old\n")])
        yield self.store.stop()
        db = sqlite3.connect(self.home.index_db)
        # The schema before issue 8, without the wire column.
        db.execute(mailstore_module.SCHEMA.replace("messages (", "old (")
                   .replace("    wire     INTEGER,\n", "").replace("    plain    INTEGER,\n", ""))
        db.execute("INSERT INTO old SELECT account, folder, name, size, received, fetched, "
                   "seen, bad FROM messages")
        db.execute("DROP TABLE messages")
        db.execute("ALTER TABLE old RENAME TO messages")
        db.commit()
        db.close()
        store = FileMailStore(self.home, reactor=reactor)
        self.addCleanup(store.stop)
        self.assertEqual(store.wire_sizes("alice"), {})
        self.assertEqual([m.name for m in store.messages("alice")], names)
        more = yield store.deliver([Delivery("alice", b"new\n")])
        self.assertEqual(store.wire_sizes("alice"), {more[0]: 5})
        # A second store (another process) finds the column there.
        other = FileMailStore(self.home, reactor=reactor)
        self.addCleanup(other.stop)
        self.assertEqual(other.wire_sizes("alice"), {more[0]: 5})

    @defer.inlineCallbacks
    def test_old_index_gets_the_counts_index(self):
        names = yield self.store.deliver([Delivery("alice", b"a"), Delivery("alice", b"b")])
        yield self.store.mark_seen("alice", "Inbox", names[:1])
        yield self.store.stop()
        db = sqlite3.connect(self.home.index_db)
        db.execute("DROP INDEX messages_seen")   # an index.db from before it
        db.commit()
        db.close()
        store = FileMailStore(self.home, reactor=reactor)
        self.addCleanup(store.stop)
        # counts() reads the index alone, no table row.
        plan = " ".join(row[-1] for row in store._db().execute(
            "EXPLAIN QUERY PLAN " + mailindex.COUNTS, ("alice",)))
        self.assertIn("COVERING INDEX messages_seen", plan)
        self.assertEqual(store.counts("alice"), {"Inbox": (2, 1)})

    @defer.inlineCallbacks
    def test_deleted_account_is_refused_after_its_path_was_cached(self):
        yield self.store.deliver([Delivery("bob", b"one")])
        import shutil
        shutil.rmtree(os.path.join(self.home.userd, "bob"))
        yield self.assertFailure(self.store.deliver([Delivery("bob", b"two")]), NoSuchAccount)
        self.assertFalse(os.path.exists(os.path.join(self.home.userd, "bob")))


class AccountStoreTestsMixin:
    """What every IAccountStore does; C{self.accounts} is set by the subclass."""

    def test_interface(self):
        self.assertTrue(verifyObject(IAccountStore, self.accounts))

    def test_add_get(self):
        account = self.accounts.add("Alice", "secret", name="Alice Kim", maxmails="100",
                                    capacity="20M", locked=True)
        self.assertEqual(account.id, "alice")
        got = self.accounts.get("ALICE")
        self.assertEqual(got.id, "alice")
        self.assertEqual(got.name, "Alice Kim")
        self.assertEqual(got.maxmails, 100)
        self.assertEqual(got.capacity, 20 * 1024 * 1024)
        self.assertTrue(got.locked)
        self.assertTrue(got.active)  # a default
        self.assertEqual(got.forwardmode, "notice")
        self.assertNotEqual(got.password_hash, "secret")
        self.assertIsNone(self.accounts.get("nobody"))

    def test_list_sorted(self):
        for aid in ("carol", "alice", "bob"):
            self.accounts.add(aid, "pw")
        self.assertEqual(self.accounts.list(), ["alice", "bob", "carol"])

    def test_duplicate(self):
        self.accounts.add("alice", "pw")
        self.assertRaises(AccountExists, self.accounts.add, "ALICE", "other")

    def test_bad_id(self):
        for aid in ("", "../x", "a b", ".hidden", "a/b", "x" * 65):
            self.assertRaises(InvalidValue, self.accounts.add, aid, "pw")
        self.assertEqual(self.accounts.list(), [])

    def test_bad_field(self):
        self.assertRaises(InvalidValue, self.accounts.add, "alice", "pw", maxmails="lots")
        self.assertRaises(InvalidValue, self.accounts.add, "alice", "pw", colour="red")

    def test_set(self):
        self.accounts.add("alice", "pw")
        updated = self.accounts.set("alice", "capacity", "1G")
        self.assertEqual(updated.capacity, 1024 ** 3)
        self.accounts.set("alice", "forward", "Boss@Example.com")
        self.assertEqual(self.accounts.get("alice").forward, "boss@example.com")
        self.assertRaises(InvalidValue, self.accounts.set, "alice", "active", "maybe")
        self.assertRaises(InvalidValue, self.accounts.set, "alice", "nosuchkey", "1")
        self.assertRaises(NoSuchAccount, self.accounts.set, "bob", "name", "Bob")
        self.assertEqual(self.accounts.get("alice").capacity, 1024 ** 3)

    def test_passwords(self):
        self.accounts.add("alice", "old-pw")
        self.assertTrue(self.accounts.check_password("alice", "old-pw"))
        self.assertFalse(self.accounts.check_password("alice", "Old-pw"))
        self.assertFalse(self.accounts.check_password("nobody", "old-pw"))
        self.accounts.set("alice", "password", "new-pw")
        self.assertTrue(self.accounts.check_password("alice", "new-pw"))
        self.assertFalse(self.accounts.check_password("alice", "old-pw"))

    def test_delete(self):
        self.accounts.add("alice", "pw")
        self.accounts.add("bob", "pw")
        self.accounts.delete("ALICE")
        self.assertIsNone(self.accounts.get("alice"))
        self.assertEqual(self.accounts.list(), ["bob"])
        self.assertRaises(NoSuchAccount, self.accounts.delete, "alice")


class MemoryAccountTests(AccountStoreTestsMixin, SynchronousTestCase):
    def setUp(self):
        self.accounts = MemoryAccounts()


class FileAccountTests(AccountStoreTestsMixin, SynchronousTestCase):
    """The shared suite, then what only the files have."""

    def setUp(self):
        self.home = Home(self.mktemp())
        self.home.create()
        self.settings = Settings(self.home)
        self.accounts = FileAccounts(self.home, self.settings)

    def cfg(self, aid="alice"):
        return os.path.join(self.home.userd, aid, "account.cfg")

    def test_layout(self):
        self.accounts.add("alice", "secret", name="Alice")
        for folder in FOLDERS:
            self.assertTrue(os.path.isdir(os.path.join(self.home.userd, "alice", "mail", folder)))
        with open(self.cfg()) as f:
            text = f.read()
        self.assertIn("\nid=alice\n", text)
        self.assertIn("\nname=Alice\n", text)
        self.assertIn("\nmaxmails=0\n", text)
        self.assertIn("\nactive=1\n", text)
        self.assertRegex(text, r"\npassword=\$argon2id\$")
        self.assertNotIn("secret", text)

    def test_empty_password_refused(self):
        self.assertRaises(InvalidValue, self.accounts.add, "alice", "")
        self.assertRaises(InvalidValue, self.accounts.add, "alice", "a\nb")
        self.accounts.add("alice", "pw")
        self.assertRaises(InvalidValue, self.accounts.set, "alice", "password", "")
        self.assertTrue(self.accounts.check_password("alice", "pw"))

    def test_maxaccounts(self):
        self.settings.set("MAXACCOUNTS", "2")
        self.accounts.add("alice", "pw")
        self.accounts.add("bob", "pw")
        self.assertRaises(LicenseOver, self.accounts.add, "carol", "pw")
        self.assertEqual(self.accounts.list(), ["alice", "bob"])
        self.accounts.delete("bob")
        self.accounts.add("carol", "pw")
        self.settings.set("MAXACCOUNTS", "0")
        self.accounts.add("dave", "pw")
        self.assertEqual(len(self.accounts.list()), 3)

    def test_corrupt_account_file(self):
        self.accounts.add("alice", "pw")
        with open(self.cfg()) as f:
            lines = f.read().splitlines()
        number = next(i for i, line in enumerate(lines, 1) if line.startswith("maxmails="))
        lines[number - 1] = "maxmails=lots"
        atomic_write(self.cfg(), ("\n".join(lines) + "\n").encode())
        error = self.assertRaises(CorruptAccount, self.accounts.get, "alice")
        self.assertIsInstance(error, InvalidValue)
        self.assertIn("%s:%d:" % (self.cfg(), number), str(error))
        self.assertIn("lots", str(error))
        self.assertEqual(error.line, number)
        # The rest keeps working.
        self.assertEqual(self.accounts.list(), ["alice"])
        self.assertFalse(self.accounts.check_password("alice", "pw"))
        self.assertEqual(self.accounts.hosting_addresses(), {})
        self.assertRaises(InvalidValue, self.accounts.set, "alice", "name", "x")

    def test_corrupt_lines(self):
        self.accounts.add("alice", "pw")
        for text, line in ((b"id=alice\njunk without equals\n", 2),
                           (b"id=alice\ncolour=red\n", 2),
                           (b"id=mallory\n", 0),
                           (b"id=alice\nname=\xff\xfe\n", 2),
                           (b"created=yesterday\n", 1)):
            atomic_write(self.cfg(), text)
            error = self.assertRaises(CorruptAccount, self.accounts.get, "alice")
            self.assertEqual(error.line, line, text)
            self.assertTrue(str(error).startswith(self.cfg()))

    def test_missing_fields_take_defaults(self):
        self.accounts.add("alice", "pw")
        atomic_write(self.cfg(), b"# by hand\nid=alice\nmaxmails=5\n")
        account = self.accounts.get("alice")
        self.assertEqual(account.maxmails, 5)
        self.assertTrue(account.relay)

    def test_change_by_other_process_seen_at_once(self):
        self.accounts.add("alice", "pw")
        self.assertFalse(self.accounts.get("alice").locked)  # now cached
        admin = FileAccounts(self.home, self.settings)
        admin.set("alice", "locked", "1")
        self.assertTrue(self.accounts.get("alice").locked)
        admin.set("alice", "password", "changed")
        self.assertTrue(self.accounts.check_password("alice", "changed"))
        admin.add("bob", "pw")
        self.assertEqual(self.accounts.list(), ["alice", "bob"])
        admin.delete("bob")
        self.assertIsNone(self.accounts.get("bob"))

    def test_hand_edit_seen_at_once(self):
        self.accounts.add("alice", "pw")
        self.assertEqual(self.accounts.get("alice").name, "")
        with open(self.cfg()) as f:
            text = f.read().replace("\nname=\n", "\nname=Edited By Hand\n")
        atomic_write(self.cfg(), text.encode())
        self.assertEqual(self.accounts.get("alice").name, "Edited By Hand")

    def test_cached_account_not_shared(self):
        self.accounts.add("alice", "pw")
        self.accounts.get("alice").fields["maxmails"] = 99
        self.assertEqual(self.accounts.get("alice").maxmails, 0)

    def test_delete_keeps_mail_without_emldel(self):
        self.accounts.add("alice", "pw")
        self.accounts.delete("alice", remove_mail=False)
        self.assertTrue(os.path.isdir(os.path.join(self.home.userd, "alice", "mail", "Inbox")))
        self.assertIsNone(self.accounts.get("alice"))
        self.assertEqual(self.accounts.list(), [])
        self.accounts.add("alice", "pw2")
        self.assertTrue(self.accounts.check_password("alice", "pw2"))

    def test_delete_removes_folder(self):
        self.accounts.add("alice", "pw")
        self.accounts.delete("alice", remove_mail=True)
        self.assertEqual(os.listdir(self.home.userd),
                         [n for n in os.listdir(self.home.userd) if n.startswith(".")])

    def test_hosting_addresses(self):
        self.accounts.add("alice", "pw", address="Webmaster@Shop.com")
        self.accounts.add("bob", "pw")
        self.assertEqual(self.accounts.hosting_addresses(), {"webmaster@shop.com": "alice"})
        FileAccounts(self.home, self.settings).set("bob", "address", "info@bob.io")
        self.assertEqual(self.accounts.hosting_addresses(),
                         {"webmaster@shop.com": "alice", "info@bob.io": "bob"})

    def test_hosting_addresses_hand_edit_seen_after_recheck(self):
        now = [0.0]
        accounts = FileAccounts(self.home, self.settings, monotonic=lambda: now[0])
        accounts.add("alice", "pw")
        self.assertEqual(accounts.hosting_addresses(), {})
        with open(self.cfg()) as f:
            text = f.read().replace("\naddress=\n", "\naddress=me@alice.net\n")
        atomic_write(self.cfg(), text.encode())
        now[0] += 2.5
        self.assertEqual(accounts.hosting_addresses(), {"me@alice.net": "alice"})


# -- passwords ------------------------------------------------------------------


class PasswordTests(SynchronousTestCase):
    def test_hash_and_verify(self):
        hashed = passwords.hash_password("s3cret 비밀")
        self.assertTrue(hashed.startswith("$argon2id$"))
        self.assertTrue(passwords.verify_password(hashed, "s3cret 비밀"))
        self.assertFalse(passwords.verify_password(hashed, "s3cret"))
        self.assertNotEqual(passwords.hash_password("x"), passwords.hash_password("x"))

    def test_garbage_never_raises(self):
        good = passwords.hash_password("pw")
        for garbage in ("", "plain:pw", "$argon2id$", "$argon2id$v=19$m=x,t=1,p=1$abc$def",
                        good[:-5], good.replace("$v=19", "$v=99"), None, 42):
            self.assertFalse(passwords.verify_password(garbage, "pw"), garbage)
        self.assertFalse(passwords.verify_password(good, None))

    def test_default_parameters_still_verify(self):
        passwords.use_test_hasher(False)
        self.addCleanup(passwords.use_test_hasher)
        strong = passwords.DEFAULT_HASHER.hash("pw")
        cheap = passwords.FAST_FOR_TESTS.hash("pw")
        self.assertTrue(passwords.verify_password(strong, "pw"))
        self.assertTrue(passwords.verify_password(cheap, "pw"))
        self.assertTrue(passwords.needs_rehash(cheap))
        self.assertFalse(passwords.needs_rehash(strong))


# -- POP-before-SMTP memory -----------------------------------------------------


class RelayMemoryTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.services = make_services(self.mktemp(), clock=self.clock)
        self.settings = self.services.settings
        self.memory = self.services.relay_memory

    def test_interface(self):
        self.assertTrue(verifyObject(IRelayMemory, self.memory))

    def test_remember_and_expire(self):
        self.settings.set("RELAYIPAUTHTTL", "60")
        self.memory.remember("10.0.0.1", "alice")
        self.assertEqual(self.memory.recent("10.0.0.1"), "alice")
        self.assertIsNone(self.memory.recent("10.0.0.2"))
        self.clock.advance(60)
        self.assertEqual(self.memory.recent("10.0.0.1"), "alice")
        self.clock.advance(1)
        self.assertIsNone(self.memory.recent("10.0.0.1"))

    def test_login_again_renews(self):
        self.settings.set("RELAYIPAUTHTTL", "60")
        self.memory.remember("10.0.0.1", "alice")
        self.clock.advance(50)
        self.memory.remember("10.0.0.1", "bob")
        self.clock.advance(50)
        self.assertEqual(self.memory.recent("10.0.0.1"), "bob")

    def test_ttl_change_applies(self):
        self.memory.remember("10.0.0.1", "alice")
        self.clock.advance(120)
        self.assertEqual(self.memory.recent("10.0.0.1"), "alice")  # default 1800 s
        self.settings.set("RELAYIPAUTHTTL", "100")
        self.assertIsNone(self.memory.recent("10.0.0.1"))

    def test_bounded(self):
        memory = RelayMemory(self.settings, self.clock, max_entries=3)
        for i in range(5):
            memory.remember("10.0.0.%d" % i, "u%d" % i)
        self.assertEqual(len(memory), 3)
        self.assertIsNone(memory.recent("10.0.0.0"))
        self.assertIsNone(memory.recent("10.0.0.1"))
        self.assertEqual(memory.recent("10.0.0.4"), "u4")

    def test_expired_entries_dropped(self):
        self.settings.set("RELAYIPAUTHTTL", "10")
        for i in range(100):
            self.memory.remember("10.0.%d.1" % i, "alice")
        self.clock.advance(11)
        self.memory.remember("10.9.9.9", "bob")
        self.assertEqual(len(self.memory), 1)
