"""
Receive mode "addressbook" (SPEC W3, P6; seed §32): an account in that mode
takes mail only from senders in its address book (or its allowed list);
the book is read in a thread before the checks, never in the reactor; a
damaged book does not stop mail.
"""

import os

from twisted.internet import defer
from twisted.trial import unittest

from zwms import logs, replies
from zwms.policy import account_rules, verdict as v
from zwms.policy.chain import ReceivePolicy
from zwms.policy.content import Content
from zwms.policy.facts import AccountFacts, Config, Facts, Mail
from zwms.store.addressbook import AddressBook
from zwms.store.rules import EMPTY, Rules
from tests.helpers import make_services
from tests.test_policy_chain import NoDNS
from tests.test_smtp_policy import JUNK_BY_USER, OK, Base as SMTPBase
from tests.test_smtp_support import stored


class Acct:
    def __init__(self, id="bob", receivemode="addressbook"):
        self.id, self.receivemode = id, receivemode
        self.outlawreject = self.junkreject = False


def decide(sender="x@far.test", book=frozenset(), rules=EMPTY, data=b"Subject: hi\r\n\r\nhi\r\n",
           mode="addressbook"):
    facts = Facts(Config(local_domains=("ours.test",)), Mail("192.0.2.1", "h.test", sender),
                  content=Content(data))
    return account_rules.decide(facts, AccountFacts(Acct(receivemode=mode), rules, book))


class DecideTests(unittest.SynchronousTestCase):
    """The pure decision, with the book given as a fact."""

    def test_sender_in_book_accepted(self):
        verdict = decide(book=frozenset({"x@far.test"}))
        self.assertEqual((verdict.action, verdict.folder), (v.FOLDER, "Inbox"))

    def test_sender_not_in_book_refused(self):
        verdict = decide(sender="y@far.test", book=frozenset({"x@far.test"}))
        self.assertEqual((verdict.code, verdict.text), replies.LOOKS_JUNK_BY_USER)
        self.assertTrue(verdict.log.startswith(replies.LOG_NOT_IN_ALLOW))
        self.assertIn("receive mode addressbook", verdict.log)

    def test_case_and_from_header(self):
        self.assertEqual(decide(sender="X@Far.Test", book=frozenset({"x@far.test"})).action,
                         v.FOLDER)
        # MAIL FROM unknown, the From header's address in the book: taken (as "allow" does).
        data = b"From: Friend <x@far.test>\r\nSubject: hi\r\n\r\nhi\r\n"
        self.assertEqual(decide(sender="bounce-123@list.test", book=frozenset({"x@far.test"}),
                                data=data).action, v.FOLDER)

    def test_own_domain_is_not_enough(self):
        """Unlike mode "domain", a sender of the server's own domain needs a book entry."""
        self.assertTrue(decide(sender="me@ours.test").refused)
        self.assertEqual(decide(sender="me@ours.test", mode="domain").action, v.FOLDER)

    def test_allowed_list_still_counts(self):
        self.assertEqual(decide(rules=Rules(allow_addresses=("far.test",))).action, v.FOLDER)
        self.assertEqual(decide(rules=Rules(allow_ips=("192.0.2.1",))).action, v.FOLDER)

    def test_empty_book_refuses_all(self):
        self.assertTrue(decide().refused)

    def test_unreadable_book_takes_mail(self):
        self.assertEqual(decide(book=None).action, v.FOLDER)

    def test_other_modes_ignore_the_book(self):
        self.assertTrue(decide(mode="allow", book=frozenset({"x@far.test"})).refused)


class ThreadCheck:
    """A run_in_thread that records when 'thread' work runs."""

    def __init__(self):
        self.inside = False

    def __call__(self, f, *args, **kw):
        self.inside = True
        try:
            return defer.maybeDeferred(f, *args, **kw)
        finally:
            self.inside = False


class ReceivePolicyTests(unittest.TestCase):
    """The mode over the real service layer and address-book files."""

    def setUp(self):
        self.services = make_services(self.mktemp())
        self.services.settings.set("DOMAIN", "ours.test")
        for name in ("bob", "carol"):
            self.services.accounts.add(name, "pw")
            os.makedirs(self.services.home.user_dir(name), exist_ok=True)
        self.services.accounts.set("bob", "receivemode", "addressbook")
        self.thread = ThreadCheck()
        self.policy = ReceivePolicy(self.services, resolver=NoDNS(), run_in_thread=self.thread)
        self.book = AddressBook(self.services.home)
        self.reads = []
        original = AddressBook.addresses

        def addresses(book, account_id):
            self.reads.append((account_id, self.thread.inside))
            return original(book, account_id)
        self.patch(AddressBook, "addresses", addresses)

    def message(self, sender="x@far.test", accounts=("bob",)):
        return self.successResultOf(self.policy.message(
            Mail("192.0.2.7", "client.test", sender), b"Subject: hi\r\n\r\nhi\r\n",
            list(accounts)))

    def test_book_decides(self):
        decision = self.message()
        self.assertEqual((decision.reply.code, decision.reply.text), replies.LOOKS_JUNK_BY_USER)
        self.book.add("bob", "Friend", "X@far.test")
        self.assertIsNone(self.message().reply)
        self.assertEqual(self.message().stored(), [("bob", "Inbox", False)])
        # Removed again: the next mail sees it (no stale cache).
        self.book.delete("bob", [c.id for c in self.book.contacts("bob")])
        self.assertIsNotNone(self.message().reply)

    def test_read_in_the_thread_only_for_that_mode(self):
        self.message(accounts=("bob", "carol"))
        self.assertEqual(self.reads, [("bob", True)])

    def test_one_account_refuses_another_takes(self):
        decision = self.message(accounts=("bob", "carol"))
        self.assertIsNone(decision.reply)
        self.assertEqual(decision.stored(), [("carol", "Inbox", False)])

    def test_damaged_book_does_not_stop_mail(self):
        with open(os.path.join(self.services.home.user_dir("bob"), "addressbook.json"),
                  "wb") as f:
            f.write(b"{not json")
        decision = self.message()
        self.assertIsNone(decision.reply)
        self.assertEqual(decision.stored(), [("bob", "Inbox", False)])
        channel, text = decision.notes[0]
        self.assertEqual(channel, logs.SYSTEMERROR)
        self.assertIn("Receive mode addressbook not applied to bob", text)


class SMTPTests(SMTPBase):
    """Through a real SMTP dialogue: the §36 reply and MailBlock line, then acceptance."""

    def setUp(self):
        SMTPBase.setUp(self)
        self.services.accounts.set("alice", "receivemode", "addressbook")

    def test_refused_until_in_the_book(self):
        client, _, data = self.send()
        self.assertEqual(data[-1], JUNK_BY_USER[0])
        self.assertTrue(client.closed)
        self.assertEqual(self.block_log, [
            "Mail receive but not in user allow <bob@remote.example> -> alice "
            "(receive mode addressbook)"])
        AddressBook(self.services.home).add("alice", "Bob", "Bob@Remote.example")
        _, _, data = self.send()
        self.assertEqual(data, OK)
        self.assertEqual(len(stored(self.services, "alice", "Inbox")), 1)
