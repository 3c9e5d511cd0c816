"""
L{zwms.policy.chain.ReceivePolicy} over a real service layer: the settings
snapshot, data/spam.dat and data/virus.dat read again when they change,
env.cfg changes applied to the next mail, account rules seen at once, and
the store's bad flag set by a Delivery (memory and file stores).
"""

import os

from twisted.internet import defer
from twisted.trial import unittest

from zwms import logs, replies
from zwms.account import Delivery
from zwms.policy import verdict as v
from zwms.policy.chain import ReceivePolicy
from zwms.policy.facts import Mail
from zwms.store.rules import RulesStore
from tests.helpers import make_services


def sync_thread(f, *args, **kw):
    return defer.maybeDeferred(f, *args, **kw)


class NoDNS:
    """A resolver that must not be asked (the outlaw check is off)."""

    def resolve(self, *args, **kw):
        raise AssertionError("DNS asked")


class ReceivePolicyTests(unittest.TestCase):

    def setUp(self):
        self.services = make_services(self.mktemp())
        self.services.settings.set("DOMAIN", "ours.test")
        self.services.accounts.add("bob", "pw")
        os.makedirs(self.services.home.user_dir("bob"), exist_ok=True)
        self.policy = ReceivePolicy(self.services, resolver=NoDNS(), run_in_thread=sync_thread)
        self.mail = Mail("192.0.2.7", "client.test", "x@far.test")

    def message(self, data, accounts=("bob",), mail=None):
        return self.successResultOf(self.policy.message(mail or self.mail, data, list(accounts)))

    def write(self, name, text):
        path = os.path.join(self.services.home.data, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        # a new size/mtime/inode stamp even within one clock tick
        os.utime(path, ns=(1, os.stat(path).st_mtime_ns + 1_000_000))

    def test_connect(self):
        self.assertEqual(self.policy.connect("192.0.2.7"), v.go())
        self.services.settings.set("BLOCKIPS", "192.0.2.0/24")
        verdict = self.policy.connect("192.0.2.7")
        self.assertEqual((verdict.code, verdict.text), v.BLOCKED_IP)

    def test_env_change_applies_to_next_mail(self):
        data = b"Subject: cheap viagra\r\n\r\nhi\r\n"
        self.assertIsNone(self.message(data).reply)
        self.services.settings.set("SPAMREJECT", "1")
        decision = self.message(data)
        self.assertEqual((decision.reply.code, decision.reply.text), replies.LOOKS_SPAM)
        self.services.settings.set("SPAMREJECT", "2")
        decision = self.message(data)
        self.assertEqual(decision.stored(), [("bob", "Spam", True)])
        self.assertEqual(decision.log_lines()[0][0], logs.MAILBLOCK)
        self.assertTrue(decision.log_lines()[0][1].startswith(replies.LOG_CLASSIFIED_SPAM))

    def test_spam_dat_reread(self):
        self.services.settings.set("SPAMREJECT", "1")
        data = "Subject: 특별 할인 행사\r\n\r\n".encode("utf-8")
        self.assertIsNone(self.message(data).reply)
        self.write("spam.dat", "viagra\n특별 할인\n")
        self.assertEqual(self.message(data).reply.text, replies.LOOKS_SPAM[1])
        self.write("spam.dat", "viagra\n")
        self.assertIsNone(self.message(data).reply)

    def test_virus_dat_reread(self):
        self.services.settings.set("VIRUSREJECT", "1")
        data = (b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
                b"Content-Type: application/x; name=\"a.docm\"\r\n\r\nx\r\n--q--\r\n")
        self.assertIsNone(self.message(data).reply)
        self.write("virus.dat", "exe\ndocm\n")
        self.assertEqual(self.message(data).reply.text, replies.LOOKS_VIRUS[1])

    def test_bomb_shared_memory_and_clock(self):
        self.services.settings.set("BOMBREJECT", "1")
        self.assertEqual(self.successResultOf(self.policy.mail_from(self.mail)), v.go())
        refused = self.successResultOf(self.policy.mail_from(self.mail))
        self.assertEqual(refused.text, replies.LOOKS_SPAM[1])
        self.services.clock.advance(5)
        self.assertEqual(self.successResultOf(self.policy.mail_from(self.mail)), v.go())
        local = Mail("127.0.0.1", "me", "root@ours.test")
        self.successResultOf(self.policy.mail_from(local))
        self.assertEqual(self.successResultOf(self.policy.mail_from(local)), v.go(),
                         "RELAYIPS skip the bomb check")

    def test_rules_seen_at_once(self):
        web = RulesStore(self.services.home)  # another instance, as the webmail has
        self.assertIsNone(self.message(b"Subject: x\r\n\r\n").reply)
        web.add("bob", "deny_ips", "192.0.2.7")
        decision = self.message(b"Subject: x\r\n\r\n")
        self.assertEqual(decision.reply.text, replies.LOOKS_JUNK_BY_USER[1])
        web.remove("bob", "deny_ips", "192.0.2.7")
        web.add_sort_rule("bob", "subject", "report", "Reports")
        self.assertEqual(self.message(b"Subject: Weekly REPORT\r\n\r\n").stored(),
                         [("bob", "Reports", False)])

    def test_account_setting_change(self):
        self.services.settings.set("SPAMREJECT", "2")
        data = b"Subject: viagra\r\n\r\n"
        self.assertEqual(self.message(data).stored(), [("bob", "Spam", True)])
        self.services.accounts.set("bob", "junkreject", "1")
        self.assertEqual(self.message(data).reply.text, replies.LOOKS_SPAM[1])

    def test_corrupt_rules_do_not_stop_mail(self):
        with open(RulesStore(self.services.home).path("bob"), "w") as f:
            f.write("{")
        decision = self.message(b"Subject: x\r\n\r\n")
        self.assertEqual(decision.stored(), [("bob", "Inbox", False)])
        self.assertEqual(decision.log_lines()[0][0], logs.SYSTEMERROR)

    def test_deleted_account(self):
        decision = self.message(b"Subject: x\r\n\r\n", accounts=("gone",))
        self.assertEqual(decision.stored(), [("gone", "Inbox", False)])


class BadFlagTests(unittest.TestCase):
    """Delivery(bad=True) reaches the index in both stores (SPEC P7, O2)."""

    @defer.inlineCallbacks
    def check(self, memory):
        services = make_services(self.mktemp(), memory=memory)
        if not memory:
            self.addCleanup(services.mail.stop)
        services.accounts.add("bob", "pw")
        yield services.mail.deliver([Delivery("bob", b"Subject: a\r\n\r\n", "Spam", bad=True),
                                     Delivery("bob", b"Subject: b\r\n\r\n", "Spam")])
        infos = services.mail.messages("bob", "Spam")
        self.assertEqual([i.bad for i in infos], [True, False])

    def test_memory(self):
        return self.check(True)

    def test_file(self):
        return self.check(False)
