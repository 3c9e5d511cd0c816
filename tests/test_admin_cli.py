"""
zwms-admin (SPEC §0): every subcommand run in-process through main()
against a temp home, checking output, exit codes and the files written;
bad inputs get one clear line and exit 1 or 2; one run as a subprocess.
"""

import contextlib
import glob
import io
import os
import subprocess
import sys
import zipfile

from twisted.trial.unittest import SynchronousTestCase

from zwms.admin import ops
from zwms.config import Settings, read_lines
from zwms.home import Home
from zwms.scripts.admin import main
from zwms.store import passwords
from zwms.store.accounts import FileAccounts
from zwms.store.directory import Directory
from zwms.store.mailstore import FileMailStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MESSAGE = (b"From: Bob <bob@example.net>\r\nTo: alice@example.com\r\n"
           b"Subject: hello\r\n\r\nHi Alice.\r\n")


class CLITestCase(SynchronousTestCase):
    """A temp home with DOMAIN=example.com, and a way to run the CLI."""

    def setUp(self):
        passwords.use_test_hasher()
        self.addCleanup(passwords.use_test_hasher, False)
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.home = Home(self.root)
        self.assertCLI(0, "config", "set", "DOMAIN", "example.com")

    def cli(self, *argv, stdin=""):
        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["--home", self.root] + list(argv))
        finally:
            sys.stdin = old_stdin
        return code, out.getvalue(), err.getvalue()

    def assertCLI(self, expected, *argv, stdin=""):
        """Run and check the exit code; errors are one line, never a traceback."""
        code, out, err = self.cli(*argv, stdin=stdin)
        self.assertEqual(code, expected, (argv, out, err))
        self.assertNotIn("Traceback", err)
        if expected != 0:
            self.assertTrue(err.strip(), "a failure must say why")
        return out, err

    def accounts(self):
        home = Home(self.root)
        return FileAccounts(home, Settings(home))

    def add_alice(self):
        self.assertCLI(0, "user", "add", "alice", "s3cret", "--name", "Alice Kim")


class UserTests(CLITestCase):
    def test_add_then_fetched_by_the_file_store(self):
        out, _ = self.assertCLI(0, "user", "add", "Alice", "s3cret", "--name", "Alice Kim",
                                "--address", "ceo@example.com")
        self.assertEqual(out, "account alice added\n")
        account = self.accounts().get("alice")
        self.assertIsNotNone(account)
        self.assertEqual(account.name, "Alice Kim")
        self.assertEqual(account.address, "ceo@example.com")
        self.assertTrue(self.accounts().check_password("alice", "s3cret"))
        self.assertFalse(self.accounts().check_password("alice", "wrong"))

    def test_password_from_stdin(self):
        self.assertCLI(0, "user", "add", "alice", "-", stdin="from stdin\n")
        self.assertTrue(self.accounts().check_password("alice", "from stdin"))

    def test_show_prints_key_value_lines(self):
        self.add_alice()
        out, _ = self.assertCLI(0, "user", "show", "alice")
        lines = out.splitlines()
        self.assertEqual(lines, self.accounts().get("alice").show_lines())
        self.assertIn("id: alice", lines)
        self.assertIn("name: Alice Kim", lines)
        self.assertIn("relay: 1", lines)

    def test_list(self):
        self.assertCLI(0, "user", "add", "bob", "pw")
        self.add_alice()
        out, _ = self.assertCLI(0, "user", "list")
        self.assertEqual(out, "alice\nbob\n")

    def test_list_empty(self):
        out, _ = self.assertCLI(0, "user", "list")
        self.assertEqual(out, "")

    def test_set_keys(self):
        self.add_alice()
        out, _ = self.assertCLI(0, "user", "set", "alice", "maxmails", "10")
        self.assertEqual(out, "maxmails: 10\n")
        out, _ = self.assertCLI(0, "user", "set", "alice", "capacity", "2M")
        self.assertEqual(out, "capacity: %d\n" % (2 * 1024 * 1024))
        self.assertCLI(0, "user", "set", "alice", "forwardmode", "copy")
        self.assertCLI(0, "user", "set", "alice", "locked", "1")
        account = self.accounts().get("alice")
        self.assertEqual(account.maxmails, 10)
        self.assertEqual(account.forwardmode, "copy")
        self.assertIs(account.locked, True)

    def test_set_password(self):
        self.add_alice()
        out, _ = self.assertCLI(0, "user", "set", "alice", "password", "n3w")
        self.assertEqual(out, "password of alice changed\n")
        self.assertTrue(self.accounts().check_password("alice", "n3w"))
        self.assertFalse(self.accounts().check_password("alice", "s3cret"))

    def test_set_unknown_key_or_bad_value_is_usage(self):
        self.add_alice()
        _, err = self.assertCLI(2, "user", "set", "alice", "colour", "blue")
        self.assertIn("colour", err)
        _, err = self.assertCLI(2, "user", "set", "alice", "maxmails", "lots")
        self.assertIn("lots", err)
        self.assertCLI(2, "user", "set", "alice", "forwardmode", "teleport")
        self.assertCLI(2, "user", "set", "alice", "forward", "not an address")
        self.assertEqual(self.accounts().get("alice").maxmails, 0)

    def test_set_on_missing_account_fails(self):
        _, err = self.assertCLI(1, "user", "set", "nobody", "maxmails", "1")
        self.assertIn("nobody", err)

    def test_existing_id_fails_and_keeps_the_password(self):
        self.add_alice()
        _, err = self.assertCLI(1, "user", "add", "ALICE", "other")
        self.assertIn("alice", err)
        self.assertTrue(self.accounts().check_password("alice", "s3cret"))

    def test_hostile_ids_refused(self):
        for bad in ("../etc", "..", "a/b", "/etc/passwd", ".hidden", "a b", "x" * 70):
            _, err = self.assertCLI(2, "user", "add", bad, "pw")
            self.assertIn("invalid account ID", err)
            self.assertCLI(2, "user", "show", bad)
            self.assertCLI(2, "backup", bad)
            self.assertCLI(2, "zip", bad)
            self.assertCLI(2, "import", bad)
        self.assertEqual(self.accounts().list(), [])
        self.assertFalse(os.path.exists(os.path.join(self.root, "data", "etc")))
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(self.root), "etc")))

    def test_bad_address_refused(self):
        _, err = self.assertCLI(2, "user", "add", "alice", "pw", "--address", "no-at-sign")
        self.assertIn("no-at-sign", err)
        self.assertIsNone(self.accounts().get("alice"))

    def test_address_of_another_account_refused(self):
        self.add_alice()
        _, err = self.assertCLI(1, "user", "add", "bob", "pw", "--address",
                                "alice@example.com")
        self.assertIn("alice", err)
        self.assertIsNone(self.accounts().get("bob"))

    def test_maxaccounts(self):
        self.add_alice()
        self.assertCLI(0, "config", "set", "MAXACCOUNTS", "1")
        _, err = self.assertCLI(1, "user", "add", "bob", "pw")
        self.assertIn("MAXACCOUNTS", err)
        self.assertEqual(self.accounts().list(), ["alice"])

    def test_empty_password_refused(self):
        self.assertCLI(2, "user", "add", "alice", "")
        self.assertIsNone(self.accounts().get("alice"))

    def test_del(self):
        self.add_alice()
        out, _ = self.assertCLI(0, "user", "del", "alice")
        self.assertEqual(out, "account alice deleted\n")
        self.assertIsNone(self.accounts().get("alice"))
        self.assertFalse(os.path.exists(self.home.user_dir("alice")))
        self.assertCLI(1, "user", "del", "alice")

    def test_del_keeps_mail_when_emldel_is_0(self):
        self.add_alice()
        self.assertCLI(0, "config", "set", "EMLDEL", "0")
        out, _ = self.assertCLI(0, "user", "del", "alice")
        self.assertIn("mail kept", out)
        self.assertIsNone(self.accounts().get("alice"))

    def test_show_missing(self):
        _, err = self.assertCLI(1, "user", "show", "ghost")
        self.assertIn("ghost", err)

    def test_actions_logged_to_webmail_without_passwords(self):
        self.add_alice()
        self.assertCLI(0, "user", "set", "alice", "password", "Hunter2")
        with open(os.path.join(self.root, "logs", "WebMail.log"), encoding="utf-8") as f:
            text = f.read()
        self.assertIn("zwms-admin: user add alice", text)
        self.assertIn("zwms-admin: user set alice password", text)
        self.assertNotIn("s3cret", text)
        self.assertNotIn("Hunter2", text)


class DomainTests(CLITestCase):
    def env(self):
        return read_lines(self.home.env_cfg)[0]

    def test_add_list_del(self):
        out, _ = self.assertCLI(0, "domain", "add", "Example.ORG")
        self.assertEqual(out, "domain example.org added\n")
        self.assertCLI(0, "domain", "add", "example.net")
        self.assertEqual(self.env()["MULTIDOMAINS"], "example.org,example.net")
        out, _ = self.assertCLI(0, "domain", "list")
        self.assertEqual(out, "example.com\nexample.org\nexample.net\n")
        self.assertCLI(0, "domain", "del", "example.org")
        self.assertEqual(self.env()["MULTIDOMAINS"], "example.net")
        out, _ = self.assertCLI(0, "domain", "list")
        self.assertEqual(out, "example.com\nexample.net\n")

    def test_served_by_the_directory(self):
        self.assertCLI(0, "domain", "add", "example.org")
        home = Home(self.root)
        settings = Settings(home)
        directory = Directory(settings, FileAccounts(home, settings), home)
        self.assertEqual(set(directory.local_domains()), {"example.com", "example.org"})

    def test_default_domain_cannot_be_deleted(self):
        _, err = self.assertCLI(1, "domain", "del", "example.com")
        self.assertIn("default domain", err)
        self.assertEqual(self.env()["DOMAIN"], "example.com")

    def test_twice_or_unknown(self):
        self.assertCLI(0, "domain", "add", "example.org")
        self.assertCLI(1, "domain", "add", "example.org")
        self.assertCLI(1, "domain", "add", "example.com")
        self.assertCLI(1, "domain", "del", "example.net")
        self.assertEqual(self.env()["MULTIDOMAINS"], "example.org")

    def test_bad_domain(self):
        for bad in ("bad domain", "-x.com", "a..b", "x_y.com", "a,b"):
            self.assertCLI(2, "domain", "add", bad)
        self.assertNotIn("MULTIDOMAINS", self.env())


class AliasTests(CLITestCase):
    def directory(self):
        home = Home(self.root)
        settings = Settings(home)
        return Directory(settings, FileAccounts(home, settings), home)

    def test_add_list_del(self):
        self.add_alice()
        out, _ = self.assertCLI(0, "alias", "add", "Sales@Example.com", "alice")
        self.assertEqual(out, "alias sales@example.com -> alice added\n")
        self.assertCLI(0, "alias", "add", "sales@example.com", "partner@example.net")
        out, _ = self.assertCLI(0, "alias", "list")
        self.assertEqual(sorted(out.splitlines()),
                         ["sales@example.com alice", "sales@example.com partner@example.net"])
        resolution = self.directory().resolve("sales@example.com")
        self.assertIn("alice", resolution.accounts)
        self.assertIn("partner@example.net", resolution.addresses)
        self.assertCLI(0, "alias", "del", "sales@example.com", "partner@example.net")
        out, _ = self.assertCLI(0, "alias", "list")
        self.assertEqual(out, "sales@example.com alice\n")
        self.assertCLI(0, "alias", "del", "sales@example.com")
        out, _ = self.assertCLI(0, "alias", "list")
        self.assertEqual(out, "")
        self.assertEqual(self.directory().resolve("sales@example.com").kind, "unknown")

    def test_bad_aliases(self):
        self.add_alice()
        _, err = self.assertCLI(2, "alias", "add", "sales", "alice")
        self.assertIn("full address", err)
        _, err = self.assertCLI(2, "alias", "add", "sales@elsewhere.net", "alice")
        self.assertIn("elsewhere.net", err)
        _, err = self.assertCLI(1, "alias", "add", "sales@example.com", "nobody")
        self.assertIn("nobody", err)
        self.assertCLI(2, "alias", "add", "sales@example.com", "bad@@x")
        self.assertCLI(2, "alias", "add", "sales@example.com", "../etc")
        self.assertEqual(self.directory().aliases(), [])

    def test_del_missing(self):
        self.assertCLI(1, "alias", "del", "ghost@example.com")


class ConfigTests(CLITestCase):
    def test_get_set_env_key(self):
        out, _ = self.assertCLI(0, "config", "get", "POP3COUNT")
        self.assertEqual(out, "100\n")
        out, _ = self.assertCLI(0, "config", "set", "pop3count", "50")
        self.assertEqual(out, "POP3COUNT=50\n")
        self.assertEqual(read_lines(self.home.env_cfg)[0]["POP3COUNT"], 50)
        out, _ = self.assertCLI(0, "config", "get", "POP3COUNT")
        self.assertEqual(out, "50\n")

    def test_zwms_cfg_key_says_restart(self):
        out, _ = self.assertCLI(0, "config", "set", "SMTPTTL", "9")
        self.assertEqual(out.splitlines()[0], "SMTPTTL=9")
        self.assertIn("restart", out)
        self.assertEqual(read_lines(self.home.zwms_cfg)[0]["SMTPTTL"], 9)
        self.assertNotIn("SMTPTTL", read_lines(self.home.env_cfg)[0])

    def test_unknown_key_or_bad_value(self):
        _, err = self.assertCLI(2, "config", "get", "NOSUCH")
        self.assertIn("NOSUCH", err)
        self.assertCLI(2, "config", "set", "NOSUCH", "1")
        _, err = self.assertCLI(2, "config", "set", "POP3COUNT", "many")
        self.assertIn("many", err)
        self.assertCLI(2, "config", "set", "BOMBREJECT", "3")
        self.assertCLI(2, "config", "set", "DNS1", "not-an-ip")
        self.assertNotIn("POP3COUNT", read_lines(self.home.env_cfg)[0])
        self.assertFalse(os.path.exists(self.home.zwms_cfg)
                         and "DNS1" in read_lines(self.home.zwms_cfg)[0])

    def test_list(self):
        out, _ = self.assertCLI(0, "config", "list")
        self.assertIn("POP3COUNT=100", out.splitlines())
        self.assertIn("DOMAIN=example.com", out.splitlines())
        self.assertIn("ZIPDIR=./zip/", out.splitlines())

    def test_bad_line_in_file_is_a_warning(self):
        with open(self.home.zwms_cfg, "w") as f:
            f.write("SMTPTTL=soon\n")
        out, err = self.assertCLI(0, "config", "get", "SMTPTTL")
        self.assertEqual(out, "5\n")
        self.assertIn("zwms.cfg:1", err)


class AdminPasswordTests(CLITestCase):
    def test_passwd(self):
        self.assertTrue(ops.admin_password_is_default(self.root))
        self.assertTrue(ops.check_admin_password(self.root, "root", "root"))
        out, _ = self.assertCLI(0, "admin", "passwd", "Adm1n!")
        self.assertIn("changed", out)
        with open(os.path.join(self.root, "data", "admin.cfg")) as f:
            text = f.read()
        self.assertIn("$argon2", text)
        self.assertNotIn("Adm1n!", text)
        self.assertFalse(ops.admin_password_is_default(self.root))
        self.assertTrue(ops.check_admin_password(self.root, "root", "Adm1n!"))
        self.assertFalse(ops.check_admin_password(self.root, "root", "root"))
        self.assertFalse(ops.check_admin_password(self.root, "admin", "Adm1n!"))

    def test_passwd_with_login(self):
        self.assertCLI(0, "admin", "passwd", "-", "--login", "boss", stdin="pw two\n")
        self.assertTrue(ops.check_admin_password(self.root, "boss", "pw two"))
        self.assertFalse(ops.check_admin_password(self.root, "root", "pw two"))

    def test_bad_passwords(self):
        self.assertCLI(2, "admin", "passwd", "")
        self.assertCLI(2, "admin", "passwd", "root")
        self.assertCLI(2, "admin", "passwd")
        self.assertTrue(ops.admin_password_is_default(self.root))


class MailTests(CLITestCase):
    def setUp(self):
        CLITestCase.setUp(self)
        self.add_alice()
        self.folder = os.path.join(self.root, "import", "userd", "alice")
        os.makedirs(self.folder)

    def put(self, name, data):
        with open(os.path.join(self.folder, name), "wb") as f:
            f.write(data)

    def inbox(self):
        mail = FileMailStore(Home(self.root))
        try:
            return [mail.read("alice", "Inbox", m.name)
                    for m in mail.messages("alice", "Inbox")]
        finally:
            mail.stop()

    def test_import_stores_and_deletes_and_reports_bad_files(self):
        second = MESSAGE.replace(b"hello", b"second")
        self.put("1.eml", MESSAGE)
        self.put("2.EML", second)
        self.put("empty.eml", b"")
        self.put("junk.eml", b"\x00\x01 this is not mail\n")
        self.put("notes.txt", b"Subject: not an eml\r\n\r\n")
        out, err = self.assertCLI(1, "import", "alice")
        self.assertIn("imported 2 messages", out)
        self.assertIn("empty.eml", err)
        self.assertIn("junk.eml", err)
        self.assertEqual(sorted(os.listdir(self.folder)),
                         ["empty.eml", "junk.eml", "notes.txt"])
        self.assertEqual(sorted(self.inbox()), sorted([MESSAGE, second]))

    def test_import_all_good(self):
        self.put("a.eml", MESSAGE)
        out, err = self.assertCLI(0, "import", "alice")
        self.assertIn("imported 1 messages", out)
        self.assertEqual(err, "")
        self.assertEqual(os.listdir(self.folder), [])
        self.assertEqual(self.inbox(), [MESSAGE])

    def test_import_nothing(self):
        os.rmdir(self.folder)
        out, _ = self.assertCLI(0, "import", "alice")
        self.assertIn("imported 0 messages", out)

    def test_import_missing_account(self):
        self.assertCLI(1, "import", "ghost")

    def test_reindex(self):
        self.put("a.eml", MESSAGE)
        self.put("b.eml", MESSAGE)
        self.assertCLI(0, "import", "alice")
        self.assertCLI(0, "user", "add", "bob", "pw")
        # The files are the truth: one dropped in by hand, one removed by hand.
        inbox = os.path.join(self.home.user_dir("alice"), "mail", "Inbox")
        os.unlink(os.path.join(inbox, sorted(os.listdir(inbox))[0]))
        with open(os.path.join(inbox, "handmade.eml"), "wb") as f:
            f.write(MESSAGE)
        with open(os.path.join(self.home.user_dir("bob"), "mail", "Sent", "x.eml"), "wb") as f:
            f.write(MESSAGE)
        out, _ = self.assertCLI(0, "reindex")
        self.assertEqual(out, "alice: 2 messages\nbob: 1 messages\nreindexed 3 messages\n")
        self.assertEqual(len(self.inbox()), 2)
        self.assertIn(MESSAGE, self.inbox())
        out, _ = self.assertCLI(0, "reindex", "ALL")
        self.assertEqual(out.splitlines()[-1], "reindexed 3 messages")
        out, _ = self.assertCLI(0, "reindex", "Alice")
        self.assertEqual(out, "alice: 2 messages\nreindexed 2 messages\n")
        self.assertCLI(1, "reindex", "ghost")
        self.assertCLI(2, "reindex", "../x")

    def test_zip(self):
        self.put("a.eml", MESSAGE)
        self.assertCLI(0, "import", "alice")
        out, _ = self.assertCLI(0, "zip", "alice")
        self.assertIn("(1 messages)", out)
        zips = glob.glob(os.path.join(self.root, "zip", "root", "alice-*.zip"))
        self.assertEqual(len(zips), 1)
        self.assertEqual(out, "%s (1 messages)\n" % zips[0])
        with zipfile.ZipFile(zips[0]) as zf:
            names = zf.namelist()
            self.assertEqual(len(names), 1)
            self.assertTrue(names[0].startswith("Inbox/"))
            self.assertTrue(names[0].endswith(".eml"))
            self.assertEqual(zf.read(names[0]), MESSAGE)
        # A second zip in the same second gets its own name.
        self.assertCLI(0, "zip", "alice")
        self.assertEqual(len(glob.glob(os.path.join(self.root, "zip", "root", "*.zip"))), 2)
        self.assertEqual([n for n in os.listdir(os.path.join(self.root, "zip", "root"))
                          if not n.endswith(".zip")], [])

    def test_zip_by_and_zipdir(self):
        self.assertCLI(0, "zip", "alice", "--by", "mid")
        self.assertEqual(len(glob.glob(os.path.join(self.root, "zip", "mid", "*.zip"))), 1)
        self.assertCLI(2, "zip", "alice", "--by", "god")
        self.assertCLI(0, "config", "set", "ZIPDIR", "archives")
        out, _ = self.assertCLI(0, "zip", "alice", "--by", "user")
        self.assertIn("(0 messages)", out)
        self.assertEqual(
            len(glob.glob(os.path.join(self.root, "archives", "user", "alice-*.zip"))), 1)

    def test_backup_copies_account_files_not_mail(self):
        self.put("a.eml", MESSAGE)
        self.assertCLI(0, "import", "alice")
        out, _ = self.assertCLI(0, "backup", "alice")
        target = os.path.join(self.root, "backup", "userd", "alice")
        self.assertIn(target, out)
        with open(os.path.join(target, "account.cfg"), "rb") as f:
            copy = f.read()
        with open(os.path.join(self.home.user_dir("alice"), "account.cfg"), "rb") as f:
            self.assertEqual(copy, f.read())
        copied = [os.path.join(d, n) for d, _, names in os.walk(target) for n in names]
        self.assertFalse([p for p in copied if p.endswith(".eml")], copied)
        self.assertCLI(1, "backup", "ghost")


class UsageTests(CLITestCase):
    def test_missing_args_give_usage(self):
        for argv in ([], ["user"], ["user", "add", "alice"], ["user", "set", "alice", "k"],
                     ["domain", "add"], ["alias", "add", "x@example.com"], ["config", "get"],
                     ["admin"], ["import"], ["zip"], ["backup"], ["frobnicate"],
                     ["user", "add", "a", "b", "--colour", "x"]):
            _, err = self.assertCLI(2, *argv)
            self.assertIn("usage:", err, argv)

    def test_help(self):
        out, _ = self.assertCLI(0, "--help")
        for word in ("user", "domain", "alias", "config", "admin", "reindex", "import",
                     "backup", "zip"):
            self.assertIn(word, out)

    def test_home_must_exist(self):
        code = None
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["--home", os.path.join(self.root, "nope"), "user", "list"])
        self.assertEqual(code, 1)
        self.assertIn("nope", err.getvalue())
        self.assertFalse(os.path.exists(os.path.join(self.root, "nope")))

    def test_home_from_environment(self):
        self.add_alice()
        old = os.environ.get("ZWMS_HOME")
        os.environ["ZWMS_HOME"] = self.root
        try:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(["user", "list"])
        finally:
            if old is None:
                del os.environ["ZWMS_HOME"]
            else:
                os.environ["ZWMS_HOME"] = old
        self.assertEqual((code, out.getvalue()), (0, "alice\n"))

    def test_python_dash_m(self):
        env = dict(os.environ, PYTHONPATH=REPO)
        done = subprocess.run(
            [sys.executable, "-m", "zwms.scripts.admin", "--home", self.root,
             "user", "add", "carol", "pw"],
            capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual((done.returncode, done.stdout, done.stderr),
                         (0, "account carol added\n", ""))
        done = subprocess.run(
            [sys.executable, "-m", "zwms.scripts.admin", "--home", self.root,
             "user", "add", "../x", "pw"],
            capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(done.returncode, 2)
        self.assertNotIn("Traceback", done.stderr)
        self.assertIsNotNone(self.accounts().get("carol"))
