"""
The receive policy carried out by the SMTP server (SPEC P1–P7, seed §36
[수신]), through real SMTP dialogues over a StringTransport: each check
turned on, off and to "delegate" by the administrator changes what the
next mail gets, refusals answer the exact §36 text, log their §36 line to
MailBlock and (421) close the connection, and each account's own rules put
its copy where they say.

The outlaw tests ask a DNS world served on 127.0.0.1 (tests/dnsworld.py)
from a thread, never the system resolver.
"""

import base64
import email
import os

from twisted.internet import defer, reactor, task, threads
from twisted.trial import unittest
from twisted.trial.unittest import SynchronousTestCase

from tests.dnsworld import DNSWorld
from tests.test_smtp_support import REMOTE_IP, Client, make_factory, services_for, stored
from zwms import replies
from zwms.policy.chain import ReceivePolicy
from zwms.policy.verdict import BLOCKED_IP, OUTLAW_TRY_LATER
from zwms.pop3.mailbox import select_offered
from zwms.queue.mx import build_resolver
from zwms.store.rules import RulesStore

SPAM = ["421 Error. This mail looks like a spam"]
VIRUS = ["421 Error. This mail looks like a virus"]
JUNK_BY_USER = ["421 Error. This mail looks like a junk by user"]
SPAM_BY_USER = ["421 Error. This mail looks like a spam by user"]
OK = ["354 Start mail input; end with <CRLF>.<CRLF>", "250 OK. Mail received"]

#: "[광고] 대출 안내" as an RFC 2047 EUC-KR subject, and the phrase "광고".
KOREAN_SUBJECT = b"Subject: =?EUC-KR?B?" + base64.b64encode(
    "[광고] 대출 안내".encode("euc-kr")) + b"?=\r\n"
KOREAN_PHRASE = "광고"


def virus_message(name=b"filename*=UTF-8''%EC%B2%AD%EA%B5%AC%EC%84%9C.exe"):
    """A multipart with the .exe attachment inside a nested multipart (RFC 2231 name)."""
    return (b"Subject: invoice\r\n"
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
            b"--outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b'--outer\r\nContent-Type: multipart/mixed; boundary="inner"\r\n\r\n'
            b"--inner\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; " + name + b"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n"
            b"--inner--\r\n--outer--\r\n")


def write_data(services, name, text):
    path = os.path.join(services.home.data, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    # A new stat stamp even within one clock tick (WatchedList rereads on change).
    os.utime(path, ns=(1, os.stat(path).st_mtime_ns + 1_000_000))


class Base(SynchronousTestCase):
    #: zwms.cfg keys (SMTPTTL, PREOUTLAW, OUTLAWLOG) apply at restart only.
    zwms_cfg = "SMTPTTL=60\n"

    def setUp(self):
        self.services = services_for(self, self.zwms_cfg)
        self.services.settings.set("ADMINID", "boss")
        self.factory = make_factory(self.services)
        self.rules = self.services.policy.rules
        for account_id in ("alice", "bob"):
            os.makedirs(self.services.home.user_dir(account_id), exist_ok=True)

    def set(self, key, value):
        self.services.settings.set(key, value)

    @property
    def block_log(self):
        return self.services.logs.lines["MailBlock"]

    @property
    def server_log(self):
        return self.services.logs.lines["MailServer"]

    def send(self, body=b"Subject: hello\r\n\r\nhi\r\n", sender=b"<bob@remote.example>",
             recipients=(b"<alice@example.com>",), peer=REMOTE_IP):
        """One whole session; returns (client, replies of MAIL, of DATA)."""
        client = Client(self.factory, peer=peer)
        client.ehlo()
        mail = client.cmd(b"MAIL FROM:" + sender)
        if mail != ["250 Sender address accepted"]:
            return client, mail, None
        for rcpt in recipients:
            self.assertEqual(client.cmd(b"RCPT TO:" + rcpt), ["250 Recipient address accepted"])
        return client, mail, client.data(body)


class ConnectTests(Base):
    def test_blockips_refused_at_connect(self):
        self.set("BLOCKIPS", "203.0.113.0/24")
        client = Client(self.factory)
        self.assertEqual(client.greeting, ["%d %s" % BLOCKED_IP])
        self.assertTrue(client.closed)
        self.assertEqual(self.block_log, ["Connection refused from blocked IP (BLOCKIPS)"])
        # Nothing the client sends afterwards is answered.
        self.assertEqual(client.cmd(b"EHLO client.example"), [])

    def test_other_ips_and_change_at_once(self):
        self.set("BLOCKIPS", "198.51.100.")
        self.assertEqual(Client(self.factory).greeting, ["220 example.com ESMTP zWMS ready"])
        self.assertFalse(Client(self.factory, peer="198.51.100.9").greeting[0].startswith("220"))
        self.set("BLOCKIPS", "")
        client = Client(self.factory, peer="198.51.100.9")
        self.assertEqual(client.greeting, ["220 example.com ESMTP zWMS ready"])
        self.assertFalse(client.closed)


class BombTests(Base):
    def test_refused_then_allowed_after_smtpttl(self):
        self.set("BOMBREJECT", "1")
        _, _, data = self.send()
        self.assertEqual(data, OK)
        self.services.clock.advance(30)
        client, mail, _ = self.send()
        self.assertEqual(mail, SPAM)
        self.assertTrue(client.closed)
        self.assertEqual(len(self.block_log), 1)
        self.assertTrue(self.block_log[0].startswith(
            "Mail receive but spam <bob@remote.example> (bomb mail: 30.0 s after"),
            self.block_log[0])
        # Another IP is not affected; the same one is after SMTPTTL.
        self.assertEqual(self.send(peer="198.51.100.1")[2], OK)
        self.services.clock.advance(30)
        self.assertEqual(self.send()[2], OK)
        self.assertEqual(len(stored(self.services)), 3)

    def test_off_and_delegated(self):
        self.assertEqual(self.send()[2], OK)
        self.assertEqual(self.send()[2], OK)  # BOMBREJECT=0: off
        self.set("BOMBREJECT", "2")
        self.assertEqual(self.send()[2], OK)  # the first one the check sees
        self.assertEqual(self.send()[2], OK)  # a bomb, left to alice
        self.assertEqual(len(stored(self.services)), 3)
        spam = self.services.mail.messages("alice", "Spam")
        self.assertEqual(len(spam), 1)
        self.assertTrue(spam[0].bad)
        self.assertEqual(self.block_log, ["Mail classified as spam <bob@remote.example> -> alice"])


class SpamTests(Base):
    def setUp(self):
        Base.setUp(self)
        write_data(self.services, "spam.dat", "viagra\n%s\n" % KOREAN_PHRASE)
        self.body = KOREAN_SUBJECT + b"From: Bob <bob@remote.example>\r\n\r\nhi\r\n"

    def test_korean_phrase_in_euc_kr_subject_refused(self):
        self.set("SPAMREJECT", "1")
        client, _, data = self.send(self.body)
        self.assertEqual(data, ["354 Start mail input; end with <CRLF>.<CRLF>"] + SPAM)
        self.assertTrue(client.closed)
        self.assertEqual(stored(self.services), [])
        self.assertEqual(self.block_log, [
            "Mail receive but spam <bob@remote.example> (subject has %r)" % KOREAN_PHRASE])
        self.assertNotIn("Mail receive success", " ".join(self.server_log))

    def test_admin_turns_it_off_on_and_to_delegate(self):
        """Each change of SPAMREJECT applies to the next mail (SPEC "Done means")."""
        self.assertEqual(self.send(self.body)[2], OK)  # 0: off
        self.set("SPAMREJECT", "1")
        self.assertEqual(self.send(self.body)[2][-1], SPAM[0])
        self.set("SPAMREJECT", "2")
        self.assertEqual(self.send(self.body)[2], OK)
        self.assertEqual(len(stored(self.services, folder="Inbox")), 1)
        self.assertEqual(len(stored(self.services, folder="Spam")), 1)
        self.assertEqual(self.block_log[-1],
                         "Mail classified as spam <bob@remote.example> -> alice")
        self.assertEqual(self.server_log[-1][:43],
                         "Mail receive success <alice@example.com> (a")
        # spam.dat edited: the phrase is gone, the mail is clean again.
        write_data(self.services, "spam.dat", "viagra\n")
        self.assertEqual(self.send(self.body)[2], OK)
        self.assertEqual(len(stored(self.services, folder="Inbox")), 2)

    def test_relayips_and_allowdomains_skip_the_checks(self):
        self.set("SPAMREJECT", "1")
        self.set("RELAYIPS", "127.0.0.1,203.0.113.0/24")
        self.assertEqual(self.send(self.body)[2], OK)
        self.set("RELAYIPS", "127.0.0.1")
        self.assertEqual(self.send(self.body)[2][-1], SPAM[0])
        self.set("ALLOWDOMAINS", "remote.example")
        self.assertEqual(self.send(self.body)[2], OK)
        self.assertEqual(len(stored(self.services)), 2)

    def test_authenticated_sender_skips_the_checks(self):
        self.set("SPAMREJECT", "1")
        self.set("RELAYIPS", "127.0.0.1")
        client = Client(self.factory, peer="127.0.0.2")  # loopback: AUTH allowed
        client.ehlo()
        self.assertEqual(client.cmd(b"AUTH PLAIN " + base64.b64encode(b"\0bob\0bob-pw")),
                         ["235 Authentication successful"])
        client.cmd(b"MAIL FROM:<bob@example.com>")
        client.cmd(b"RCPT TO:<alice@example.com>")
        self.assertEqual(client.data(self.body), OK)
        # The same mail from the same IP without AUTH is refused.
        self.assertEqual(self.send(self.body, peer="127.0.0.2")[2][-1], SPAM[0])


    def test_pop_before_smtp_skips_the_checks(self):
        """
        A recent POP3 login with relay IP auth is the product's other way of
        authenticating (seed §16): its sender is one of ours, as with AUTH.
        """
        self.set("SPAMREJECT", "1")
        self.services.relay_memory.remember(REMOTE_IP, "bob")
        self.assertEqual(self.send(self.body)[2], OK)
        self.set("RELAYIPAUTH", "0")
        self.assertEqual(self.send(self.body)[2][-1], SPAM[0])


class VirusTests(Base):
    def test_nested_rfc2231_attachment_refused(self):
        write_data(self.services, "virus.dat", "exe\nscr\n")
        self.set("VIRUSREJECT", "1")
        client, _, data = self.send(virus_message())
        self.assertEqual(data[-1], VIRUS[0])
        self.assertTrue(client.closed)
        self.assertEqual(stored(self.services), [])
        self.assertEqual(self.block_log,
                         ["Mail receive but virus <bob@remote.example> (attachment '청구서.exe')"])

    def test_delegated_to_the_spam_folder(self):
        write_data(self.services, "virus.dat", "exe\n")
        self.set("VIRUSREJECT", "2")
        self.assertEqual(self.send(virus_message())[2], OK)
        self.assertEqual(stored(self.services), [])
        self.assertEqual(len(stored(self.services, folder="Spam")), 1)
        self.assertEqual(self.block_log,
                         ["Mail classified as virus <bob@remote.example> -> alice"])


class AccountRuleTests(Base):
    def test_junkreject_refuses_delegated_spam(self):
        write_data(self.services, "spam.dat", "viagra\n")
        self.set("SPAMREJECT", "2")
        self.services.accounts.set("alice", "junkreject", "1")
        client, _, data = self.send(b"Subject: cheap viagra\r\n\r\nx\r\n")
        self.assertEqual(data[-1], SPAM[0])
        self.assertTrue(client.closed)
        self.assertEqual(self.block_log, [
            "Mail receive but spam <bob@remote.example> -> alice (delegated)"])
        self.assertEqual(stored(self.services, folder="Spam"), [])

    def test_one_account_refuses_another_takes(self):
        """250 when one account takes it; the other gets nothing and is logged."""
        write_data(self.services, "spam.dat", "viagra\n")
        self.set("SPAMREJECT", "2")
        self.services.accounts.set("alice", "junkreject", "1")
        _, _, data = self.send(b"Subject: cheap viagra\r\n\r\nx\r\n",
                               recipients=(b"<alice@example.com>", b"<bob@example.com>"))
        self.assertEqual(data, OK)
        self.assertEqual(stored(self.services, "alice", "Spam"), [])
        bob_spam = self.services.mail.messages("bob", "Spam")
        self.assertEqual(len(bob_spam), 1)
        self.assertTrue(bob_spam[0].bad)
        self.assertEqual(self.block_log, [
            "Mail receive but spam <bob@remote.example> -> alice (delegated)",
            "Mail classified as spam <bob@remote.example> -> bob"])
        success = [line for line in self.server_log if line.startswith("Mail receive success")]
        self.assertEqual(len(success), 1)
        self.assertTrue(success[0].startswith("Mail receive success <bob@example.com> (bob, "))

    def test_refused_recipient_bounced_when_another_takes(self):
        """The sender learns which recipient refused (§36 multi-recipient line)."""
        bounces = []

        class RecordingQueue:
            def deliver_bounce(self, env, bounce):
                bounces.append((env, bounce))
                return defer.succeed(None)

        self.services.queue = RecordingQueue()
        write_data(self.services, "spam.dat", "viagra\n")
        self.set("SPAMREJECT", "2")
        self.services.accounts.set("alice", "junkreject", "1")
        both = (b"<alice@example.com>", b"<bob@example.com>")
        self.assertEqual(self.send(b"Subject: cheap viagra\r\n\r\nx\r\n",
                                   recipients=both)[2], OK)
        [(env, bounce)] = bounces
        self.assertEqual(env.sender, "bob@remote.example")
        self.assertEqual([r.addr for r in env.recipients], ["alice@example.com"])
        report = email.message_from_bytes(bounce)
        human = report.get_payload(0).get_payload(decode=True).decode("utf-8")
        self.assertIn("421 서비스 활용 불가능", human)
        self.assertIn("421 Error. This mail looks like a spam", human)
        # No bounce for a bounce (empty sender).
        self.send(b"Subject: cheap viagra\r\n\r\nx\r\n", sender=b"<>", recipients=both)
        self.assertEqual(len(bounces), 1)

    def test_sort_rule_to_a_folder_and_delete(self):
        self.rules.add_sort_rule("alice", "subject", "invoice", "Work")
        self.rules.add_sort_rule("alice", "sender", "@remote.example")
        self.assertEqual(self.send(b"Subject: Invoice 12\r\n\r\nx\r\n")[2], OK)
        self.assertEqual(len(stored(self.services, folder="Work")), 1)
        self.assertEqual(self.send(b"Subject: hello\r\n\r\nx\r\n")[2], OK)  # deleted
        self.assertEqual(stored(self.services), [])
        self.assertEqual(self.block_log, [
            "Mail receive but user filter <bob@remote.example> -> alice "
            "(sender '@remote.example')"])
        self.assertEqual(len([x for x in self.server_log if "success" in x]), 1)

    def test_deny_address_and_allow_overrides(self):
        self.rules.add("alice", "deny_addresses", "remote.example")
        client, _, data = self.send()
        self.assertEqual(data[-1], JUNK_BY_USER[0])
        self.assertTrue(client.closed)
        self.assertEqual(self.block_log, [
            "Mail receive but user refuse <bob@remote.example> -> alice (remote.example)"])
        self.rules.add("alice", "allow_addresses", "bob@remote.example")
        self.assertEqual(self.send()[2], OK)

    def test_deny_ip_and_spam_filter(self):
        self.rules.add("alice", "deny_ips", "203.0.113.")
        self.assertEqual(self.send()[2][-1], JUNK_BY_USER[0])
        self.assertEqual(self.block_log[-1],
                         "Mail receive but user ip deny <bob@remote.example> -> alice")
        self.rules.set_list("alice", "deny_ips", [])
        self.rules.block("alice", subject="lottery")
        self.assertEqual(self.send(b"Subject: You won the LOTTERY\r\n\r\n")[2][-1],
                         SPAM_BY_USER[0])
        self.assertEqual(self.block_log[-1], "Mail receive but user spam filter "
                         "<bob@remote.example> -> alice (subject 'lottery')")

    def test_bad_mail_flagged_and_never_offered_to_pop3(self):
        write_data(self.services, "spam.dat", "viagra\n")
        self.set("SPAMREJECT", "2")
        self.services.accounts.set("alice", "badmailpop3", "1")
        self.assertEqual(self.send(b"Subject: viagra\r\n\r\n")[2], OK)
        self.assertEqual(self.send(b"Subject: hello\r\n\r\n")[2], OK)
        mail = self.services.mail
        self.assertEqual([m.bad for m in mail.messages("alice", "Spam")], [True])
        self.assertEqual([m.bad for m in mail.messages("alice", "Inbox")], [False])
        # POP3 offers the Inbox only, and withholds bad mail (badmailpop3)
        # even when moved back there.
        account = self.services.accounts.get("alice")
        rows = mail.messages("alice", "Inbox") + mail.messages("alice", "Spam")
        self.assertEqual([m.name for m in select_offered(rows, account, self.services.settings)],
                         [mail.messages("alice", "Inbox")[0].name])

    def test_bad_copy_not_forwarded(self):
        write_data(self.services, "spam.dat", "viagra\n")
        self.set("SPAMREJECT", "2")
        self.services.accounts.set("alice", "forward", "bob@example.com")
        self.services.accounts.set("alice", "forwardmode", "copy")
        self.assertEqual(self.send(b"Subject: viagra\r\n\r\n")[2], OK)
        self.assertEqual(self.send(b"Subject: hello\r\n\r\n")[2], OK)
        self.assertEqual(len(stored(self.services, "bob")), 1)
        self.assertIn(b"Subject: hello", stored(self.services, "bob")[0])


class TryLaterTests(Base):
    """What the SMTP layer does with a 451 (outlaw undecided): no close."""

    def test_try_later_keeps_the_session(self):
        def undecided(*args, **kwargs):
            from zwms.policy import verdict as v
            return defer.succeed(v.refuse(OUTLAW_TRY_LATER, v.LOG_OUTLAW_UNDECIDED, "(test)"))
        self.patch(self.services.policy, "mail_from", undecided)
        client, mail, _ = self.send()
        self.assertEqual(mail, ["%d %s" % OUTLAW_TRY_LATER])
        self.assertFalse(client.closed)
        self.assertEqual(self.block_log, ["Outlaw check undecided (DNS temporary failure) (test)"])


class OutlawTests(unittest.TestCase):
    """P3 over SMTP with a DNS world; the policy's DNS runs in a thread."""

    #: The tests run with PREOUTLAW=1 (a zwms.cfg key: read at start).
    at_mail_from = ("test_preoutlaw_refused_at_mail_from", "test_delegated_to_spam_folder",
                    "test_servfail_is_try_later")

    def setUp(self):
        self.world = DNSWorld(["spf.test", "broken.test"])
        self.world.txt("spf.test", "v=spf1 ip4:10.1.2.3 -all")
        self.world.fail("broken.test")
        self.world.start()
        self.addCleanup(self.world.stop)
        pre = "PREOUTLAW=1\n" if self._testMethodName in self.at_mail_from else ""
        self.services = services_for(self, "OUTLAWLOG=1\n" + pre)
        self.services.settings.set("ADMINID", "boss")
        self.services.settings.set("OUTLAWREJECT", "1")
        self.services.policy = ReceivePolicy(
            self.services, run_in_thread=threads.deferToThread,
            resolver=build_resolver([self.world.server], timeout=2, lifetime=4))
        self.factory = make_factory(self.services)

    @defer.inlineCallbacks
    def cmd(self, client, line):
        client.send(line + b"\r\n")
        while client.protocol._waiting is not None:
            yield task.deferLater(reactor, 0.01, lambda: None)
        return client.read()

    @defer.inlineCallbacks
    def session(self, peer, sender=b"bob@spf.test", body=b"Subject: hi\r\n\r\nx\r\n"):
        client = Client(self.factory, peer=peer)
        client.ehlo()
        mail = yield self.cmd(client, b"MAIL FROM:<" + sender + b">")
        if mail != ["250 Sender address accepted"]:
            return client, mail, None
        yield self.cmd(client, b"RCPT TO:<alice@example.com>")
        yield self.cmd(client, b"DATA")
        data = yield self.cmd(client, body + b".")
        return client, mail, data

    def outlaw_reply(self, ip):
        return ["%d %s" % replies.looks_outlaw(ip, "boss@example.com")]

    @defer.inlineCallbacks
    def test_preoutlaw_refused_at_mail_from(self):
        client, mail, _ = yield self.session("10.9.9.9")
        self.assertEqual(mail, self.outlaw_reply("10.9.9.9"))
        self.assertIn("10.9.9.9", mail[0])
        self.assertIn("boss@example.com", mail[0])
        self.assertTrue(client.closed)
        lines = self.services.logs.lines["MailBlock"]
        self.assertTrue(lines[0].startswith("checked SPF IP spf.test 10.9.9.9 fail"), lines)
        self.assertTrue(lines[-1].startswith("Sender is outlaw <bob@spf.test> 10.9.9.9"), lines)

    @defer.inlineCallbacks
    def test_after_data_and_lawful(self):
        client, mail, data = yield self.session("10.9.9.9")
        self.assertEqual(mail, ["250 Sender address accepted"])
        self.assertEqual(data, self.outlaw_reply("10.9.9.9"))
        self.assertTrue(client.closed)
        self.assertTrue(self.services.logs.lines["MailBlock"][-1].startswith(
            "Mail receive but outlaw <bob@spf.test> 10.9.9.9"))
        self.assertEqual(stored(self.services), [])
        # OUTLAWLEVEL 3: 10.1.2.99 shares 10.1.2 with the SPF ip4.
        _, _, data = yield self.session("10.1.2.99")
        self.assertEqual(data, ["250 OK. Mail received"])
        self.assertEqual(len(stored(self.services)), 1)

    @defer.inlineCallbacks
    def test_delegated_to_spam_folder(self):
        self.services.settings.set("OUTLAWREJECT", "2")
        _, mail, data = yield self.session("10.9.9.9")
        self.assertEqual(data, ["250 OK. Mail received"])
        self.assertEqual(len(stored(self.services, folder="Spam")), 1)
        self.assertEqual(self.services.logs.lines["MailBlock"][-1],
                         "Mail classified as outlaw <bob@spf.test> -> alice")

    @defer.inlineCallbacks
    def test_servfail_is_try_later(self):
        client, mail, _ = yield self.session("10.9.9.9", sender=b"bob@broken.test")
        self.assertEqual(mail, ["%d %s" % OUTLAW_TRY_LATER])
        self.assertFalse(client.closed)


class FailureTests(Base):
    def test_policy_failure_at_connect_greets_and_logs(self):
        def broken(ip):
            raise OSError("env.cfg unreadable")
        self.patch(self.services.policy, "connect", broken)
        client = Client(self.factory)
        self.assertEqual(client.greeting, ["220 example.com ESMTP zWMS ready"])
        self.assertEqual(self.services.logs.lines["SystemError"],
                         ["Receive policy at connect: OSError: env.cfg unreadable"])

    def test_policy_failure_after_data_is_451(self):
        def broken(mail, data, account_ids):
            return defer.fail(RuntimeError("boom"))
        self.patch(self.services.policy, "message", broken)
        client, _, data = self.send()
        self.assertEqual(data[-1][:4], "451 ")
        self.assertFalse(client.closed)
        self.assertEqual(stored(self.services), [])
