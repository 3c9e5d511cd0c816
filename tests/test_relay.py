"""
Relaying (SPEC S6, S7, Q6): who may send mail out through zWMS, the
classic open-relay tricks refused, sending limits of §16, SELFRELAYSAVE,
and what reaches the queue.
"""

from base64 import b64encode

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from tests.test_smtp_support import Client, make_factory, services_for, stored
from zwms.policy.lists import ip_in

REFUSED = ["551 Error. Relay is refused"]
ACCEPTED = ["250 Recipient address accepted"]
INVALID = ["553 Error. Invalid Email address format"]
BODY = b"From: alice@example.com\r\nTo: carol@elsewhere.example\r\nSubject: out\r\n\r\nhello\r\n"


class FakeQueue:
    """services.queue stand-in: records each enqueue, durable at once."""

    def __init__(self):
        self.entries = []
        self.observers = []
        self.adopted = []
        self.envelopes = {}

    def enqueue(self, sender, recipients, data, auto=False, origin=""):
        self.entries.append((sender, list(recipients), data, auto, origin))
        return defer.succeed("q%d" % len(self.entries))

    def adopt(self, envelopes):
        self.adopted.extend(envelopes)

    def start(self):
        return defer.succeed(0)

    def stop(self):
        return defer.succeed(None)


def with_queue(test, cfg=""):
    services = services_for(test, cfg)
    services.queue = FakeQueue()
    return services


def plain(user, password):
    return b"AUTH PLAIN " + b64encode(b"\0" + user + b"\0" + password)


class Base(SynchronousTestCase):
    peer = "127.0.0.1"
    mode = "smtp"

    def setUp(self):
        self.services = with_queue(self)
        self.queue = self.services.queue

    def client(self, peer=None, mode=None):
        c = Client(make_factory(self.services, mode=mode or self.mode), peer=peer or self.peer)
        c.ehlo()
        return c

    @property
    def log(self):
        return self.services.logs.lines["MailServer"]

    def send(self, client, sender=b"alice@example.com", rcpts=(b"carol@elsewhere.example",),
             body=BODY):
        replies = client.cmd(b"MAIL FROM:<" + sender + b">")
        for rcpt in rcpts:
            replies += client.cmd(b"RCPT TO:<" + rcpt + b">")
        return replies + client.data(body)


class IPListTests(SynchronousTestCase):
    def test_exact_cidr_prefix(self):
        self.assertTrue(ip_in("127.0.0.1", ["127.0.0.1"]))
        self.assertFalse(ip_in("127.0.0.2", ["127.0.0.1"]))
        self.assertTrue(ip_in("192.0.2.77", ["192.0.2.0/24"]))
        self.assertFalse(ip_in("192.0.3.1", ["192.0.2.0/24"]))
        self.assertTrue(ip_in("198.51.100.9", ["198.51.100."]))
        self.assertFalse(ip_in("198.51.10.9", ["198.51.1."]))
        self.assertFalse(ip_in("198.51.100.9", ["198.51.10."]))
        self.assertTrue(ip_in("::1", ["::1"]))
        self.assertTrue(ip_in("::ffff:127.0.0.1", ["127.0.0.1"]))
        self.assertFalse(ip_in("garbage", ["127.0.0.1"]))
        self.assertFalse(ip_in("10.0.0.1", []))


class RelayIPsTests(Base):
    def test_default_loopback_relays(self):
        for peer in ("127.0.0.1", "::1"):
            c = self.client(peer)
            self.assertEqual(self.send(c)[-1], "250 OK. Mail received", peer)
        self.assertEqual(len(self.queue.entries), 2)
        sender, rcpts, data, auto, origin = self.queue.entries[0]
        self.assertEqual((sender, rcpts, auto, origin),
                         ("alice@example.com", ["carol@elsewhere.example"], False,
                          "smtp 127.0.0.1"))
        # Queued bytes: our Received line on top, no Return-Path.
        self.assertTrue(data.startswith(b"Received: from client.example ([127.0.0.1])"))
        self.assertTrue(data.endswith(BODY))
        self.assertIn("Relaymail receive success <carol@elsewhere.example> (%d bytes, "
                      "id 0123456789ABCDEF)" % len(data), self.log)
        self.assertEqual(stored(self.services), [])

    def test_rest_of_loopback_does_not_relay(self):
        c = self.client("127.0.0.2")
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), REFUSED)
        self.assertEqual(self.log[-1], "Relay is refused <carol@elsewhere.example>")
        self.assertEqual(self.queue.entries, [])

    def test_internet_peer_refused(self):
        c = self.client("203.0.113.7")
        c.cmd(b"MAIL FROM:<bob@remote.example>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), REFUSED)
        self.assertEqual(c.cmd(b"DATA"), ["554 Error. No valid recipients"])
        self.assertEqual(self.queue.entries, [])

    def test_cidr_and_prefix_settings(self):
        self.services.settings.set("RELAYIPS", "192.0.2.0/24 198.51.100.")
        for peer, ok in (("192.0.2.5", True), ("198.51.100.200", True),
                         ("198.51.10.1", False), ("127.0.0.1", False)):
            c = self.client(peer)
            c.cmd(b"MAIL FROM:<alice@example.com>")
            self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"),
                             ACCEPTED if ok else REFUSED, peer)

    def test_no_queue_no_relay(self):
        self.services.queue = None
        c = self.client()
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), REFUSED)

    def test_mixed_local_and_remote(self):
        c = self.client()
        replies = self.send(c, rcpts=(b"bob@example.com", b"carol@elsewhere.example"))
        self.assertEqual(replies[-1], "250 OK. Mail received")
        self.assertEqual(len(stored(self.services, "bob")), 1)
        self.assertTrue(stored(self.services, "bob")[0].startswith(
            b"Return-Path: <alice@example.com>\r\nReceived: "))
        self.assertEqual(self.queue.entries[0][1], ["carol@elsewhere.example"])


class OpenRelayTricksTests(Base):
    """Never an open relay: address tricks refused from anyone."""

    TRICKS = (b"carol%elsewhere.example@example.com", b'"carol@elsewhere.example"@example.com',
              b"@example.com:carol@elsewhere.example", b"carol@elsewhere.example@example.com",
              b"elsewhere.example!carol@example.com", b"elsewhere.example!carol",
              b"carol%elsewhere.example", b"<carol@elsewhere.example>")

    def test_tricks_refused_from_internet_and_from_relay_ips(self):
        for peer in ("203.0.113.7", "127.0.0.1"):
            c = self.client(peer)
            c.cmd(b"MAIL FROM:<bob@remote.example>")
            for trick in self.TRICKS:
                answer = c.cmd(b"RCPT TO:<" + trick + b">")
                self.assertIn(answer[0][:3], ("553", "501", "550"), (peer, trick, answer))
            self.assertEqual(c.cmd(b"DATA"), ["554 Error. No valid recipients"])
        self.assertEqual(self.queue.entries, [])

    def test_unauthenticated_non_relay_peer_all_refused(self):
        c = self.client("127.0.0.2")
        c.cmd(b"MAIL FROM:<alice@example.com>")
        for rcpt in (b"carol@elsewhere.example", b"x@example.com.elsewhere.example",
                     b"alice@EXAMPLE.COM.evil.example"):
            self.assertEqual(c.cmd(b"RCPT TO:<" + rcpt + b">"), REFUSED, rcpt)
        self.assertEqual(self.log.count("Relay is refused <carol@elsewhere.example>"), 1)


class AuthRelayTests(Base):
    peer = "127.0.0.2"  # loopback (AUTH allowed) but not in RELAYIPS
    mode = "submission"

    def test_authenticated_relays(self):
        c = self.client()
        self.assertEqual(c.cmd(plain(b"alice", b"alice-pw")), ["235 Authentication successful"])
        self.assertEqual(self.send(c)[-1], "250 OK. Mail received")
        self.assertEqual(self.queue.entries[0][1], ["carol@elsewhere.example"])
        self.assertIn("Relaymail receive success <carol@elsewhere.example>", self.log[-1])

    def test_relay_flag_off_cannot_auth(self):
        self.services.accounts.set("alice", "relay", "0")
        c = self.client()
        self.assertEqual(c.cmd(plain(b"alice", b"alice-pw")), ["535 authorization failed"])
        self.assertEqual(self.log[-1], "Auth required but disallowed user <alice>")
        self.assertEqual(c.cmd(b"MAIL FROM:<alice@example.com>"),
                         ["530 Error. Authentication required"])

    def test_relay_flag_turned_off_after_auth(self):
        c = self.client(mode="smtp")
        c.cmd(plain(b"alice", b"alice-pw"))
        self.services.accounts.set("alice", "relay", "0")
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), REFUSED)

    def test_relayauth_off(self):
        self.services.settings.set("RELAYAUTH", "0")
        c = self.client()
        c.cmd(plain(b"alice", b"alice-pw"))
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), REFUSED)
        # Local mail still goes.
        self.assertEqual(c.cmd(b"RCPT TO:<bob@example.com>"), ACCEPTED)


class PopBeforeSMTPTests(Base):
    peer = "203.0.113.7"

    def test_recent_pop_login_relays_until_ttl(self):
        self.services.relay_memory.remember(self.peer, "alice")
        c = self.client()
        self.assertEqual(self.send(c)[-1], "250 OK. Mail received")
        self.services.clock.advance(self.services.settings["RELAYIPAUTHTTL"] + 1)
        c = self.client()
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), REFUSED)
        self.assertEqual(len(self.queue.entries), 1)

    def test_account_flag_and_setting(self):
        self.services.relay_memory.remember(self.peer, "alice")
        self.services.accounts.set("alice", "relayipauth", "0")
        c = self.client()
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), REFUSED)
        self.services.accounts.set("alice", "relayipauth", "1")
        self.services.settings.set("RELAYIPAUTH", "0")
        c.cmd(b"RSET")
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), REFUSED)
        self.services.settings.set("RELAYIPAUTH", "1")
        c.cmd(b"RSET")
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), ACCEPTED)

    def test_other_ip_not_remembered(self):
        self.services.relay_memory.remember("203.0.113.8", "alice")
        c = self.client()
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), REFUSED)


class AliasOutsideTests(Base):
    peer = "203.0.113.7"

    def test_alias_to_outside_is_forwarding_not_relaying(self):
        self.services.directory.add_alias("out@example.com", "carol@elsewhere.example")
        c = self.client()
        self.assertEqual(self.send(c, sender=b"bob@remote.example",
                                   rcpts=(b"out@example.com",))[-1], "250 OK. Mail received")
        self.assertEqual(self.queue.entries[0][:2],
                         ("bob@remote.example", ["carol@elsewhere.example"]))

    def test_rep_fans_out_local_and_remote(self):
        with open(self.services.home.path("data", "team@example.com.rep"), "w") as f:
            f.write("alice\nbob@example.com\ncarol@elsewhere.example\ndan@far.example\n")
        c = self.client()
        self.assertEqual(self.send(c, sender=b"bob@remote.example",
                                   rcpts=(b"team@example.com",))[-1], "250 OK. Mail received")
        self.assertEqual(len(stored(self.services, "alice")), 1)
        self.assertEqual(len(stored(self.services, "bob")), 1)
        self.assertEqual(self.queue.entries[0][1],
                         ["carol@elsewhere.example", "dan@far.example"])
        self.assertIn("Mail receive success <team@example.com> (alice,bob,", self.log[-1])


class SelfRelaySaveTests(Base):
    peer = "127.0.0.2"
    mode = "submission"

    def test_sent_copy_only_when_on(self):
        c = self.client()
        c.cmd(plain(b"alice", b"alice-pw"))
        self.send(c)
        self.assertEqual(stored(self.services, "alice", "Sent"), [])
        self.services.settings.set("SELFRELAYSAVE", "1")
        self.send(c)
        sent = stored(self.services, "alice", "Sent")
        self.assertEqual(len(sent), 1)
        self.assertTrue(sent[0].endswith(BODY))
        # Local-only mail is not "relayed": no Sent copy.
        self.send(c, rcpts=(b"bob@example.com",))
        self.assertEqual(len(stored(self.services, "alice", "Sent")), 1)

    def test_relay_ip_without_account_no_copy(self):
        self.services.settings.set("SELFRELAYSAVE", "1")
        c = self.client(peer="127.0.0.1", mode="smtp")
        self.send(c)
        self.assertEqual(stored(self.services, "alice", "Sent"), [])


class SendingLimitTests(Base):
    peer = "127.0.0.2"
    mode = "submission"

    def authed(self):
        c = self.client()
        c.cmd(plain(b"alice", b"alice-pw"))
        return c

    def test_daycount(self):
        self.services.accounts.set("alice", "daycount", "2")
        c = self.authed()
        self.assertEqual(self.send(c)[-1], "250 OK. Mail received")
        self.assertEqual(self.send(c, rcpts=(b"bob@example.com",))[-1], "250 OK. Mail received")
        self.assertEqual(c.cmd(b"MAIL FROM:<alice@example.com>"),
                         ["452 Error. Daily send count limit reached. Try again tomorrow"])
        self.assertEqual(self.log[-1], "Mail receive but day limit (alice: 2 mails, %d bytes "
                         "today)" % self.services.router.counter.get("alice")[1])
        # A new day starts at zero.
        self.services.clock.advance(24 * 3600)
        c = self.authed()
        self.assertEqual(c.cmd(b"MAIL FROM:<alice@example.com>"), ["250 Sender address accepted"])

    def test_refused_mail_not_counted(self):
        self.services.accounts.set("alice", "daycount", "1")
        c = self.authed()
        c.cmd(b"MAIL FROM:<alice@example.com>")
        c.cmd(b"RCPT TO:<carol@elsewhere.example>")
        c.cmd(b"RSET")
        self.assertEqual(self.services.router.counter.get("alice"), (0, 0))
        self.assertEqual(self.send(c)[-1], "250 OK. Mail received")
        self.assertEqual(self.services.router.counter.get("alice")[0], 1)

    def test_daysize(self):
        self.services.accounts.set("alice", "daysize", "1K")
        c = self.authed()
        big = BODY + b"x" * 450 + b"\r\n"
        self.assertEqual(self.send(c, body=big)[-1], "250 OK. Mail received")
        self.assertEqual(self.send(c, body=big)[-1], "552 Error. Daily send size limit exceeded")
        self.assertEqual(len(self.queue.entries), 1)
        # Below the limit a small one still fits, then the day is full.
        self.assertEqual(self.send(c, body=b"Subject: s\r\n\r\nx\r\n")[-1],
                         "250 OK. Mail received")

    def test_pop_before_smtp_sender_is_limited(self):
        self.services.accounts.set("alice", "daycount", "1")
        self.services.relay_memory.remember("203.0.113.9", "alice")
        c = self.client(peer="203.0.113.9", mode="smtp")
        self.assertEqual(self.send(c)[-1], "250 OK. Mail received")
        self.assertEqual(c.cmd(b"MAIL FROM:<alice@example.com>")[0][:3], "452")

    def test_rcptlimit_and_sendsize_still_apply(self):
        self.services.accounts.set("alice", "rcptlimit", "1")
        c = self.authed()
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<carol@elsewhere.example>"), ACCEPTED)
        self.assertEqual(c.cmd(b"RCPT TO:<dan@elsewhere.example>"),
                         ["452 Error. Too many recipients"])

    def test_counter_file(self):
        self.services.accounts.set("alice", "daycount", "5")
        c = self.authed()
        self.send(c)
        path = self.services.home.path("data", "userd", "alice", "sendcount")
        with open(path) as f:
            day, count, size = f.read().split()
        self.assertEqual((day, count), (self.services.router.counter.today(), "1"))
        with open(path, "w") as f:
            f.write("garbage")
        self.assertEqual(self.services.router.counter.get("alice"), (0, 0))
