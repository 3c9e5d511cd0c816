"""
zwms.store.directory: domains, virtual addresses (§9), hosting addresses
(§23), representative addresses (.rep, §22), logins.  The resolution tests
run over the in-memory accounts and over the file accounts.
"""

import os

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.helpers import make_services
from zwms.account import Resolution
from zwms.errors import InvalidValue, NoSuchAlias
from zwms.fileio import atomic_write
from zwms.interfaces import IDirectory
from zwms.store import directory as directory_module
from zwms.store.directory import Directory


class DirectoryTestsMixin:
    """Every resolve / login case, over one kind of account store."""

    memory = True

    def setUp(self):
        self.services = make_services(self.mktemp(), memory=self.memory)
        self.addCleanup(self._stop)
        settings = self.services.settings
        settings.set("DOMAIN", "example.com")
        settings.set("MULTIDOMAINS", "Other.ORG, third.net")
        self.accounts = self.services.accounts
        for aid in ("alice", "bob", "carol"):
            self.accounts.add(aid, aid + "-pw")
        self.accounts.set("carol", "address", "webmaster@hosted.co.kr")
        self.directory = self.services.directory
        self.data = self.services.home.data

    def _stop(self):
        if not self.memory:
            return self.services.mail.stop()

    def write_rep(self, address, lines):
        atomic_write(os.path.join(self.data, address + ".rep"),
                     ("\n".join(lines) + "\n").encode())

    def test_interface(self):
        self.assertTrue(verifyObject(IDirectory, self.directory))

    def test_local_domains(self):
        self.assertEqual(self.directory.local_domains(),
                         {"example.com", "other.org", "third.net"})

    def test_local_domains_follow_settings(self):
        self.services.settings.set("MULTIDOMAINS", "")
        self.assertEqual(self.directory.local_domains(), {"example.com"})

    def test_domain_added_by_other_process_seen_at_once(self):
        from zwms.config import Settings
        self.assertEqual(self.directory.resolve("alice@new.example").kind, "foreign")
        Settings(self.services.home).set("MULTIDOMAINS", "other.org,third.net,new.example")
        self.assertEqual(self.directory.resolve("alice@new.example"),
                         Resolution("local", ("alice",)))

    def test_hosting_domain_is_not_a_local_domain(self):
        self.assertNotIn("hosted.co.kr", self.directory.local_domains())

    def test_account_in_each_local_domain(self):
        for address in ("alice@example.com", "alice@other.org", "ALICE@Third.Net"):
            self.assertEqual(self.directory.resolve(address),
                             Resolution("local", ("alice",)), address)

    def test_bare_local_part_means_default_domain(self):
        self.assertEqual(self.directory.resolve("bob"), Resolution("local", ("bob",)))

    def test_unknown_in_local_domain(self):
        self.assertEqual(self.directory.resolve("nobody@example.com").kind, "unknown")
        self.assertEqual(self.directory.resolve("nobody@other.org").kind, "unknown")

    def test_foreign(self):
        self.assertEqual(self.directory.resolve("alice@gmail.com"), Resolution("foreign"))
        # A subdomain of ours is not ours.
        self.assertEqual(self.directory.resolve("alice@mx.example.com").kind, "foreign")

    def test_hosting_address(self):
        self.assertEqual(self.directory.resolve("Webmaster@Hosted.co.kr"),
                         Resolution("local", ("carol",)))

    def test_hosting_domain_counts_as_ours(self):
        # Other addresses of a hosting domain are ours, and unknown: never relayed.
        self.assertEqual(self.directory.resolve("sales@hosted.co.kr").kind, "unknown")
        # ... but account IDs are not mailboxes there (only local domains).
        self.assertEqual(self.directory.resolve("alice@hosted.co.kr").kind, "unknown")

    def test_hosting_address_changes_at_once(self):
        self.accounts.set("carol", "address", "")
        self.assertEqual(self.directory.resolve("webmaster@hosted.co.kr").kind, "foreign")
        self.accounts.set("bob", "address", "info@bob.io")
        self.assertEqual(self.directory.resolve("info@bob.io"),
                         Resolution("local", ("bob",)))

    def test_virtual_to_account(self):
        self.directory.add_alias("sales@example.com", "alice")
        self.assertEqual(self.directory.resolve("SALES@example.com"),
                         Resolution("local", ("alice",)))

    def test_virtual_several_targets(self):
        self.directory.add_alias("team@example.com", "alice")
        self.directory.add_alias("team@example.com", "bob@other.org")
        self.directory.add_alias("team@example.com", "partner@remote.net")
        self.assertEqual(self.directory.resolve("team@example.com"),
                         Resolution("local", ("alice", "bob"), ("partner@remote.net",)))

    def test_virtual_to_remote_only(self):
        self.directory.add_alias("ext@example.com", "Someone@Remote.net")
        self.assertEqual(self.directory.resolve("ext@example.com"),
                         Resolution("remote", (), ("someone@remote.net",)))

    def test_virtual_before_account(self):
        # A virtual address wins over an account of the same local part.
        self.directory.add_alias("bob@example.com", "alice")
        self.assertEqual(self.directory.resolve("bob@example.com"),
                         Resolution("local", ("alice",)))
        self.assertEqual(self.directory.resolve("bob@other.org"),
                         Resolution("local", ("bob",)))

    def test_virtual_chain(self):
        self.directory.add_alias("a@example.com", "b@example.com")
        self.directory.add_alias("b@example.com", "c@other.org")
        self.directory.add_alias("c@other.org", "carol")
        self.assertEqual(self.directory.resolve("a@example.com"),
                         Resolution("local", ("carol",)))

    def test_virtual_chain_too_long(self):
        chain = ["v%d@example.com" % i for i in range(directory_module.MAX_DEPTH + 2)]
        for here, there in zip(chain, chain[1:]):
            self.directory.add_alias(here, there)
        self.directory.add_alias(chain[-1], "alice")
        self.assertEqual(self.directory.resolve(chain[-2]), Resolution("local", ("alice",)))
        self.assertEqual(self.directory.resolve(chain[0]).kind, "unknown")

    def test_alias_loop_ends(self):
        self.directory.add_alias("ping@example.com", "pong@example.com")
        self.directory.add_alias("pong@example.com", "ping@example.com")
        self.directory.add_alias("pong@example.com", "bob")
        self.assertEqual(self.directory.resolve("ping@example.com"),
                         Resolution("local", ("bob",)))
        self.directory.add_alias("self@example.com", "loop@example.com")
        self.directory.add_alias("loop@example.com", "self@example.com")
        self.assertEqual(self.directory.resolve("self@example.com").kind, "unknown")

    def test_duplicates_merged(self):
        self.directory.add_alias("dup@example.com", "alice")
        self.directory.add_alias("dup@example.com", "alice@other.org")
        self.assertEqual(self.directory.resolve("dup@example.com"),
                         Resolution("local", ("alice",)))

    def test_virtual_to_missing_account_is_unknown(self):
        self.directory.add_alias("gone@example.com", "ghost")
        self.assertEqual(self.directory.resolve("gone@example.com").kind, "unknown")

    def test_virtual_in_other_domain(self):
        # An exact virtual address outside our domains is still delivered.
        self.directory.add_alias("me@elsewhere.io", "alice")
        self.assertEqual(self.directory.resolve("me@elsewhere.io"),
                         Resolution("local", ("alice",)))
        self.assertEqual(self.directory.resolve("you@elsewhere.io").kind, "foreign")

    def test_rep_fan_out(self):
        self.write_rep("team@example.com", ["alice@example.com", "# a comment", "",
                                            "bob", "friend@remote.org", "carol@other.org"])
        self.assertEqual(self.directory.resolve("team@example.com"),
                         Resolution("local", ("alice", "bob", "carol"), ("friend@remote.org",)))

    def test_rep_through_alias(self):
        self.directory.add_alias("sales@example.com", "team@example.com")
        self.write_rep("team@example.com", ["bob@example.com"])
        self.assertEqual(self.directory.resolve("sales@example.com"),
                         Resolution("local", ("bob",)))

    def test_rep_changes_at_once(self):
        self.write_rep("team@example.com", ["alice"])
        self.assertEqual(self.directory.resolve("team@example.com").accounts, ("alice",))
        self.write_rep("team@example.com", ["bob"])
        self.assertEqual(self.directory.resolve("team@example.com").accounts, ("bob",))
        os.unlink(os.path.join(self.data, "team@example.com.rep"))
        self.assertEqual(self.directory.resolve("team@example.com").kind, "unknown")

    def test_rep_bad_lines_skipped(self):
        self.write_rep("team@example.com", ["not an address", "bob", "a@@b"])
        self.assertEqual(self.directory.resolve("team@example.com"),
                         Resolution("local", ("bob",)))

    def test_login_account(self):
        d = self.directory
        self.directory.add_alias("sales@example.com", "alice")
        self.directory.add_alias("team@example.com", "alice")
        self.directory.add_alias("team@example.com", "bob")
        self.directory.add_alias("ext@example.com", "x@remote.net")
        self.assertEqual(d.login_account("alice"), "alice")
        self.assertEqual(d.login_account("ALICE"), "alice")
        self.assertEqual(d.login_account("alice@example.com"), "alice")
        self.assertEqual(d.login_account("alice@other.org"), "alice")
        self.assertEqual(d.login_account("webmaster@hosted.co.kr"), "carol")
        self.assertEqual(d.login_account("sales@example.com"), "alice")
        self.assertIsNone(d.login_account("team@example.com"))
        self.assertIsNone(d.login_account("ext@example.com"))
        self.assertIsNone(d.login_account("ghost"))
        self.assertIsNone(d.login_account("alice@gmail.com"))
        self.assertIsNone(d.login_account(""))
        self.assertIsNone(d.login_account("../alice"))
        self.assertIsNone(d.login_account("alice@@example.com"))

    def test_aliases_file(self):
        d = self.directory
        d.add_alias("b@example.com", "bob")
        d.add_alias("a@example.com", "Alice")
        d.add_alias("a@example.com", "alice")  # already there: not repeated
        self.assertEqual(d.aliases(), [("a@example.com", "alice"), ("b@example.com", "bob")])
        with open(os.path.join(self.data, "virtual.dat")) as f:
            self.assertEqual(f.read(), "b@example.com bob\na@example.com alice\n")

    def test_add_alias_refuses_bad_values(self):
        d = self.directory
        for virtual, real in (("noat", "alice"), ("a@example.com", "../etc"),
                              ("a@example.com", "x@@y"), ("a b@example.com", "alice"),
                              ("a@example.com", "a@example.com"), ("a@example.com", "")):
            self.assertRaises(InvalidValue, d.add_alias, virtual, real)
        self.assertEqual(d.aliases(), [])

    def test_del_alias(self):
        d = self.directory
        d.add_alias("team@example.com", "alice")
        d.add_alias("team@example.com", "bob")
        d.add_alias("other@example.com", "bob")
        d.del_alias("team@example.com", "ALICE")
        self.assertEqual(d.resolve("team@example.com").accounts, ("bob",))
        d.del_alias("team@example.com")
        self.assertEqual(d.aliases(), [("other@example.com", "bob")])
        self.assertRaises(NoSuchAlias, d.del_alias, "team@example.com")
        self.assertRaises(NoSuchAlias, d.del_alias, "other@example.com", "alice")

    def test_hand_edited_file(self):
        path = os.path.join(self.data, "virtual.dat")
        atomic_write(path, b"# virtual addresses\n"
                           b"info@example.com   bob\n"
                           b"broken line here\n"
                           b"\n"
                           b"bad@@x alice\n")
        self.assertEqual(self.directory.resolve("info@example.com").accounts, ("bob",))
        self.assertEqual([e.line for e in self.directory.errors], [3, 5])
        self.directory.del_alias("info@example.com")
        with open(path) as f:
            # Comments and lines it does not understand are kept.
            self.assertEqual(f.read(), "# virtual addresses\nbroken line here\n\nbad@@x alice\n")

    def test_change_by_other_process_seen_at_once(self):
        other = Directory(self.services.settings, self.accounts, self.services.home)
        self.assertEqual(self.directory.resolve("new@example.com").kind, "unknown")
        other.add_alias("new@example.com", "alice")
        self.assertEqual(self.directory.resolve("new@example.com").accounts, ("alice",))
        other.add_alias("new@example.com", "bob")
        self.assertEqual(self.directory.resolve("new@example.com").accounts, ("alice", "bob"))


class MemoryDirectoryTests(DirectoryTestsMixin, SynchronousTestCase):
    memory = True


class FileDirectoryTests(DirectoryTestsMixin, SynchronousTestCase):
    memory = False

    def test_damaged_account_is_not_unknown(self):
        """Mail for an account whose file is damaged waits (error), never 550."""
        atomic_write(os.path.join(self.services.home.userd, "bob", "account.cfg"),
                     b"id=bob\nmaxmails=many\n")
        self.assertRaises(InvalidValue, self.directory.resolve, "bob@example.com")
        self.assertEqual(self.directory.resolve("alice@example.com").accounts, ("alice",))

    def test_hosting_address_set_by_other_process(self):
        from zwms.store.accounts import FileAccounts
        admin = FileAccounts(self.services.home, self.services.settings)
        # Fill the server's hosting map first, then change it from "outside".
        self.assertEqual(self.directory.resolve("boss@bob.io").kind, "foreign")
        admin.set("bob", "address", "boss@bob.io")
        self.assertEqual(self.directory.resolve("boss@bob.io"),
                         Resolution("local", ("bob",)))
