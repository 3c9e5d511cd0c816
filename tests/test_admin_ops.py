"""
zwms.admin.ops and zwms.admin.archive, called directly: the call pump that
lets the CLI use the mail store without a reactor, the web's context over
running services, import/backup/zip edge cases, the /admin password and
the WebMail log lines.
"""

import os
import threading
import zipfile

from twisted.internet import defer, threads
from twisted.trial.unittest import SynchronousTestCase, TestCase

from zwms.account import Delivery
from zwms.admin import archive, ops
from zwms.errors import (AccountExists, InvalidValue, NoSuchAccount, NoSuchAlias,
                         ZWMSError)
from zwms.logs import WEBMAIL, MemoryLogs
from zwms.store import passwords

from tests.helpers import make_services

MESSAGE = b"From: a@example.net\r\nSubject: hi\r\n\r\nbody\r\n"


class CallPumpTests(SynchronousTestCase):
    def test_runs_calls_from_another_thread_in_the_waiting_one(self):
        pump = ops._CallPump()
        d = defer.Deferred()
        fired_in = []

        def fire():
            fired_in.append(threading.current_thread())
            d.callback("done")

        threading.Thread(target=pump.callFromThread, args=(fire,)).start()
        self.assertEqual(pump.wait(d), "done")
        self.assertEqual(fired_in, [threading.current_thread()])

    def test_failure_is_raised(self):
        pump = ops._CallPump()
        d = defer.Deferred()
        threading.Thread(target=pump.callFromThread,
                         args=(d.errback, NoSuchAccount("x"))).start()
        self.assertRaises(NoSuchAccount, pump.wait, d)

    def test_already_fired(self):
        self.assertEqual(ops._CallPump().wait(defer.succeed(3)), 3)

    def test_timeout(self):
        e = self.assertRaises(ops.OperationFailed, ops._CallPump().wait,
                              defer.Deferred(), 0.05)
        self.assertIn("did not answer", str(e))


class ContextTestCase(SynchronousTestCase):
    """An opened temp home (file stores, pump) with logs kept in memory."""

    def setUp(self):
        passwords.use_test_hasher()
        self.addCleanup(passwords.use_test_hasher, False)
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.ctx = ops.open_home(self.root, actor="tester")
        self.addCleanup(self.ctx.close)
        self.ctx.logs = self.logs = MemoryLogs()
        ops.config_set(self.ctx, "DOMAIN", "example.com")
        ops.user_add(self.ctx, "alice", "pw", name="Alice")

    def logged(self):
        return self.logs.lines[WEBMAIL]


class AccountOpsTests(ContextTestCase):
    def test_log_lines(self):
        ops.user_set(self.ctx, "alice", "password", "secret!")
        ops.user_set(self.ctx, "alice", "maxmails", "5")
        ops.domain_add(self.ctx, "example.org")
        ops.alias_add(self.ctx, "info@example.org", "alice")
        ops.user_del(self.ctx, "alice")
        self.assertEqual(self.logged(), [
            "tester: config set DOMAIN example.com",
            "tester: user add alice",
            "tester: user set alice password",
            "tester: user set alice maxmails 5",
            "tester: domain add example.org",
            "tester: alias add info@example.org alice",
            "tester: user del alice",
        ])

    def test_open_home_needs_a_folder(self):
        e = self.assertRaises(ops.OperationFailed, ops.open_home,
                              os.path.join(self.root, "missing"))
        self.assertIn("missing", str(e))

    def test_hosting_address_conflicts(self):
        ops.alias_add(self.ctx, "sales@example.com", "alice")
        self.assertRaises(AccountExists, ops.user_add, self.ctx, "bob", "pw",
                          address="sales@example.com")
        ops.user_add(self.ctx, "bob", "pw", address="bob.k@hosted.example")
        self.assertRaises(AccountExists, ops.user_set, self.ctx, "alice", "address",
                          "bob.k@hosted.example")
        # Its own address, set again, is fine.
        ops.user_set(self.ctx, "bob", "address", "bob.k@hosted.example")
        self.assertEqual(self.ctx.directory.login_account("bob.k@hosted.example"), "bob")

    def test_damaged_account_file_is_a_failure_not_a_usage_error(self):
        path = os.path.join(self.ctx.home.user_dir("alice"), "account.cfg")
        with open(path, "ab") as f:
            f.write(b"nonsense line\n")
        e = self.assertRaises(ops.OperationFailed, ops.user_show, self.ctx, "alice")
        self.assertIn("account.cfg", str(e))

    def test_user_set_unknown_key(self):
        e = self.assertRaises(InvalidValue, ops.user_set, self.ctx, "alice", "id", "bob")
        self.assertIn("known:", str(e))

    def test_domains(self):
        self.assertEqual(ops.domain_list(self.ctx), ["example.com"])
        self.assertEqual(ops.domain_add(self.ctx, "Example.ORG."), "example.org")
        self.assertEqual(self.ctx.directory.local_domains(), {"example.com", "example.org"})
        e = self.assertRaises(ops.OperationFailed, ops.domain_del, self.ctx, "EXAMPLE.com")
        self.assertIn("default domain", str(e))
        self.assertRaises(InvalidValue, ops.domain_add, self.ctx, "")
        ops.domain_del(self.ctx, "example.org")
        self.assertEqual(ops.domain_list(self.ctx), ["example.com"])

    def test_alias_errors(self):
        self.assertRaises(InvalidValue, ops.alias_add, self.ctx, "x@other.example", "alice")
        self.assertRaises(NoSuchAccount, ops.alias_add, self.ctx, "x@example.com", "ghost")
        self.assertRaises(NoSuchAlias, ops.alias_del, self.ctx, "x@example.com")
        self.assertEqual(ops.alias_list(self.ctx), [])

    def test_config(self):
        k, text = ops.config_set(self.ctx, "perpage", "20")
        self.assertEqual((k.name, k.restart, text), ("PERPAGE", True, "20"))
        k, text = ops.config_set(self.ctx, "POP3SHARE", "yes")
        self.assertEqual((k.name, k.restart, text), ("POP3SHARE", False, "1"))
        self.assertEqual(ops.config_get(self.ctx, "pop3share")[1], "1")
        self.assertRaises(InvalidValue, ops.config_set, self.ctx, "PERPAGE", "-1")


class AdminPasswordTests(SynchronousTestCase):
    def setUp(self):
        passwords.use_test_hasher()
        self.addCleanup(passwords.use_test_hasher, False)
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.root, "data"))

    def test_default_until_changed(self):
        self.assertTrue(ops.admin_password_is_default(self.root))
        self.assertEqual(ops.admin_login(self.root), "root")
        self.assertTrue(ops.check_admin_password(self.root, "root", "root"))
        self.assertFalse(ops.check_admin_password(self.root, "root", "Root"))
        self.assertFalse(ops.check_admin_password(self.root, "admin", "root"))
        ops.set_admin_password(self.root, "n3w", login="chief")
        self.assertFalse(ops.admin_password_is_default(self.root))
        self.assertEqual(ops.admin_login(self.root), "chief")
        self.assertTrue(ops.check_admin_password(self.root, "chief", "n3w"))
        self.assertFalse(ops.check_admin_password(self.root, "root", "root"))
        # The login stays when only the password changes.
        ops.set_admin_password(self.root, "n4w")
        self.assertTrue(ops.check_admin_password(self.root, "chief", "n4w"))

    def test_refused_values(self):
        for login, password in (("root", "root"), ("root", ""), ("root", "a\nb"),
                                ("two words", "pw"), ("a=b", "pw"), ("", "pw")):
            self.assertRaises(InvalidValue, ops.set_admin_password, self.root, password,
                              login)
        self.assertFalse(os.path.exists(os.path.join(self.root, "data", "admin.cfg")))

    def test_damaged_file_refuses_every_login(self):
        with open(os.path.join(self.root, "data", "admin.cfg"), "w") as f:
            f.write("LOGIN=root\nPASSWORD=garbage\n")
        self.assertFalse(ops.admin_password_is_default(self.root))
        self.assertFalse(ops.check_admin_password(self.root, "root", "root"))
        self.assertFalse(ops.check_admin_password(self.root, "root", "garbage"))


class CheckMessageTests(SynchronousTestCase):
    def test_good_and_mbox_line(self):
        self.assertEqual(archive.check_message(MESSAGE, 0), MESSAGE)
        self.assertEqual(archive.check_message(b"From a@b Mon Jan 1\n" + MESSAGE, 0), MESSAGE)

    def test_bad(self):
        for data, reason in ((b"", "empty"), (b"  \r\n", "empty"),
                             (b"hello world\r\n\r\n", "header"),
                             (b": no name\r\n", "header"),
                             (MESSAGE * 100, "MAXMAILSIZE")):
            e = self.assertRaises(InvalidValue, archive.check_message, data, 1024)
            self.assertIn(reason, str(e))


class ImportTests(ContextTestCase):
    def setUp(self):
        ContextTestCase.setUp(self)
        self.folder = archive.import_folder(self.ctx.home, "alice")
        os.makedirs(self.folder)

    def put(self, name, data=MESSAGE):
        with open(os.path.join(self.folder, name), "wb") as f:
            f.write(data)

    def test_links_folders_and_temp_files_are_not_imported(self):
        outside = os.path.join(self.root, "secret.eml")
        with open(outside, "wb") as f:
            f.write(MESSAGE)
        os.symlink(outside, os.path.join(self.folder, "link.eml"))
        os.mkdir(os.path.join(self.folder, "dir.eml"))
        self.put(".tmp-x.eml")
        self.put("ok.eml")
        result = ops.import_eml(self.ctx, "alice")
        self.assertEqual([f for f, _ in result.imported], ["ok.eml"])
        self.assertEqual(sorted(os.listdir(self.folder)), [".tmp-x.eml", "dir.eml", "link.eml"])
        self.assertTrue(os.path.exists(outside))
        self.assertEqual(len(self.ctx.mail.messages("alice")), 1)
        self.assertEqual(self.logged()[-1], "tester: import alice: 1 imported, 0 refused")

    def test_storage_failure_stops_and_keeps_the_files(self):
        self.put("a.eml")
        self.put("b.eml")
        calls = []

        def broken(deliveries):
            calls.append(deliveries)
            raise OSError(28, "No space left on device")

        self.ctx.deliver = broken
        result = ops.import_eml(self.ctx, "alice")
        self.assertEqual(len(calls), 1)
        self.assertEqual(result.imported, [])
        self.assertEqual(len(result.refused), 1)
        self.assertIn("import stopped", result.refused[0][1])
        self.assertEqual(sorted(os.listdir(self.folder)), ["a.eml", "b.eml"])

    def test_refused_by_the_store_goes_on(self):
        self.put("a.eml")
        self.put("b.eml")
        real = self.ctx.deliver

        def picky(deliveries):
            if b"refuse me" in deliveries[0].data:
                raise InvalidValue("refused by the store")
            return real(deliveries)

        self.ctx.deliver = picky
        self.put("a.eml", MESSAGE + b"refuse me")
        result = ops.import_eml(self.ctx, "alice")
        self.assertEqual(result.refused, [("a.eml", "refused by the store")])
        self.assertEqual([f for f, _ in result.imported], ["b.eml"])
        self.assertEqual(os.listdir(self.folder), ["a.eml"])

    def test_stored_bytes_and_names(self):
        self.put("a.eml")
        result = ops.import_eml(self.ctx, "alice")
        (filename, name), = result.imported
        self.assertEqual(self.ctx.mail.read("alice", "Inbox", name), MESSAGE)


class BackupZipTests(ContextTestCase):
    def test_backup_skips_mail_and_temp_files_keeps_other_settings(self):
        user_dir = self.ctx.home.user_dir("alice")
        os.makedirs(os.path.join(user_dir, "cal"))
        with open(os.path.join(user_dir, "cal", "2025.txt"), "w") as f:
            f.write("memo")
        with open(os.path.join(user_dir, ".tmp-half"), "w") as f:
            f.write("x")
        self.ctx.deliver([Delivery("alice", MESSAGE)])
        folder, copied = ops.backup(self.ctx, "alice")
        self.assertEqual(folder, os.path.join(self.root, "backup", "userd", "alice"))
        self.assertEqual(copied, ["account.cfg", os.path.join("cal", "2025.txt")])
        self.assertFalse(os.path.exists(os.path.join(folder, "mail")))
        with open(os.path.join(folder, "cal", "2025.txt")) as f:
            self.assertEqual(f.read(), "memo")
        # A second backup overwrites the first with the current state.
        ops.user_set(self.ctx, "alice", "name", "Alice Two")
        ops.backup(self.ctx, "alice")
        with open(os.path.join(folder, "account.cfg")) as f:
            self.assertIn("name=Alice Two", f.read())

    def test_zip_includes_every_folder(self):
        self.ctx.deliver([Delivery("alice", MESSAGE),
                          Delivery("alice", MESSAGE + b"sent", "Sent"),
                          Delivery("alice", MESSAGE + b"work", "Work")])
        path, count = ops.zip_mailbox(self.ctx, "alice", "user")
        self.assertEqual(count, 3)
        self.assertEqual(os.path.dirname(path), os.path.join(self.root, "zip", "user"))
        with zipfile.ZipFile(path) as zf:
            by_folder = {n.split("/")[0]: zf.read(n) for n in zf.namelist()}
        self.assertEqual(by_folder, {"Inbox": MESSAGE, "Sent": MESSAGE + b"sent",
                                     "Work": MESSAGE + b"work"})
        self.assertEqual(self.logged()[-1], "tester: zip alice by user: 3 messages")

    def test_zip_bad_by(self):
        self.assertRaises(InvalidValue, ops.zip_mailbox, self.ctx, "alice", "../root")

    def test_zip_names_never_overwrite(self):
        folder = os.path.join(self.root, "z")
        os.makedirs(folder)
        tmp = os.path.join(folder, "t")
        with open(tmp, "w") as f:
            f.write("one")
        first = archive._link_new(tmp, folder, "alice-1")
        second = archive._link_new(tmp, folder, "alice-1")
        self.assertEqual([os.path.basename(first), os.path.basename(second)],
                         ["alice-1.zip", "alice-1-2.zip"])

    def test_zip_time_before_1980(self):
        self.assertEqual(archive._zip_time(1.0), (1980, 1, 1, 0, 0, 0))


class ServicesContextTests(TestCase):
    """The web's way: ops in a worker thread, deliveries back in the reactor."""

    def test_import_through_running_services(self):
        from twisted.internet import reactor

        passwords.use_test_hasher()
        self.addCleanup(passwords.use_test_hasher, False)
        services = make_services(os.path.abspath(self.mktemp()), memory=False)
        self.addCleanup(services.mail.stop)
        services.accounts.add("alice", "pw")
        folder = archive.import_folder(services.home, "alice")
        os.makedirs(folder)
        with open(os.path.join(folder, "a.eml"), "wb") as f:
            f.write(MESSAGE)
        ctx = ops.context_from_services(services, reactor, actor="admin root",
                                        peer="127.0.0.1")
        d = threads.deferToThread(ops.import_eml, ctx, "alice")

        def check(result):
            self.assertEqual(len(result.imported), 1)
            self.assertEqual(os.listdir(folder), [])
            (info,) = services.mail.messages("alice")
            self.assertEqual(services.mail.read("alice", "Inbox", info.name), MESSAGE)
            self.assertEqual(services.logs.lines[WEBMAIL],
                             ["admin root: import alice: 1 imported, 0 refused"])

        return d.addCallback(check)

    def test_errors_come_back_typed(self):
        from twisted.internet import reactor

        services = make_services(os.path.abspath(self.mktemp()), memory=True)
        ctx = ops.context_from_services(services, reactor, actor="admin root")
        d = threads.deferToThread(ops.user_show, ctx, "ghost")
        return self.assertFailure(d, NoSuchAccount)


class ErrorsTests(SynchronousTestCase):
    def test_operation_failed_is_a_zwms_error(self):
        self.assertTrue(issubclass(ops.OperationFailed, ZWMSError))
        self.assertFalse(issubclass(ops.OperationFailed, InvalidValue))
