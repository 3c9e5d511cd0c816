"""
The §31 POP3 policy (SPEC O2), logins (SPEC §0, O1) and relay memory
(SPEC O3), through the protocol over the service layer with the memory
stores (tests/helpers.make_services) and the real POP3Mailbox.
"""

import dataclasses
import os

from twisted.internet import defer, task
from twisted.trial import unittest
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import make_services
from tests.test_pop3_protocol import PEER, Client, new_services, synchronous
from zwms import logs
from zwms.account import Delivery, MessageInfo
from zwms.pop3 import login as login_module
from zwms.pop3.factory import POP3Factory
from zwms.pop3.login import LoginCache
from zwms.pop3.mailbox import select_offered


class FlagStore:
    """
    The memory mail store with test-set flags (seen, bad) and, when
    C{hold} is set, mark_fetched/delete answers that wait for C{release()}.
    """

    def __init__(self, inner):
        self.inner = inner
        self.seen = set()
        self.bad = set()
        self.hold = False
        self.held = []
        self.fail_mark = None
        self.calls = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def messages(self, account_id, folder="Inbox"):
        return [dataclasses.replace(m, seen=m.seen or m.name in self.seen,
                                    bad=m.bad or m.name in self.bad)
                for m in self.inner.messages(account_id, folder)]

    def _later(self, function, *args):
        if not self.hold:
            return function(*args)
        d = defer.Deferred()
        self.held.append((d, function, args))
        return d

    def mark_fetched(self, account_id, names):
        self.calls.append(("mark_fetched", list(names)))
        if self.fail_mark is not None:
            raise self.fail_mark
        return self._later(self.inner.mark_fetched, account_id, names)

    def delete(self, account_id, folder, names):
        self.calls.append(("delete", list(names)))
        return self._later(self.inner.delete, account_id, folder, names)

    def release(self):
        d, function, args = self.held.pop(0)
        d.callback(function(*args))


def message(number):
    return b"Subject: mail %d\r\n\r\nbody %d\r\n" % (number, number)


class PolicyTestBase(SynchronousTestCase):

    zwms_cfg = {}

    def setUp(self):
        self.services = new_services(self.mktemp(), **self.zwms_cfg)
        self.services.mail = self.store = FlagStore(self.services.mail)
        self.factory = POP3Factory(self.services, run_blocking=synchronous)
        self.names = []

    def deliver(self, *numbers, account="alice"):
        for number in numbers:
            d = self.services.mail.deliver([Delivery(account, message(number))])
            self.names.extend(self.successResultOf(d))

    def session(self, user=b"alice", password=b"secret", ip=PEER):
        client = Client(self.factory, ip=ip)
        client.take()
        reply = client.talk(b"USER %s\r\nPASS %s\r\n" % (user, password))
        return client, reply

    def offered(self, client):
        """The UIDLs (store names) offered, in session order."""
        lines = client.talk(b"UIDL\r\n").split(b"\r\n")[1:-2]
        return [line.split(b" ", 1)[1].decode() for line in lines]

    def subjects(self, client):
        """The Subject numbers of the offered mails, via TOP (not a fetch)."""
        out = []
        for i in range(1, len(self.offered(client)) + 1):
            top = client.talk(b"TOP %d 0\r\n" % i)
            out.append(int(top.split(b"Subject: mail ")[1].split(b"\r\n")[0]))
        return out


class SelectOfferedTests(PolicyTestBase):
    """select_offered on index rows."""

    def rows(self, **flags):
        return [MessageInfo("m%d" % i, "Inbox", 10, 1000.0 + i,
                            **{k: i in v for k, v in flags.items()})
                for i in range(1, 6)]

    def choose(self, rows, **fields):
        account = self.services.accounts.get("alice")
        for key, value in fields.items():
            self.services.accounts.set("alice", key, value)
        return [m.name for m in select_offered(rows, account, self.services.settings)]

    def test_newest_count_oldest_first(self):
        self.services.settings.set("POP3COUNT", "3")
        self.assertEqual(self.choose(self.rows()), ["m3", "m4", "m5"])

    def test_count_zero_is_no_limit(self):
        self.services.settings.set("POP3COUNT", "0")
        self.assertEqual(self.choose(self.rows()), ["m1", "m2", "m3", "m4", "m5"])

    def test_order_by_received_not_store_order(self):
        rows = list(reversed(self.rows()))
        self.services.settings.set("POP3COUNT", "2")
        self.assertEqual(self.choose(rows), ["m4", "m5"])

    def test_fetched_withheld_without_share(self):
        self.assertEqual(self.choose(self.rows(fetched={2, 5})), ["m1", "m3", "m4"])

    def test_fetched_offered_with_account_share(self):
        self.assertEqual(self.choose(self.rows(fetched={2, 5}), pop3share="1"),
                         ["m1", "m2", "m3", "m4", "m5"])

    def test_fetched_offered_with_pop3share_setting(self):
        self.services.settings.set("POP3SHARE", "1")
        self.assertEqual(self.choose(self.rows(fetched={2, 5})),
                         ["m1", "m2", "m3", "m4", "m5"])

    def test_count_applies_after_filtering(self):
        self.services.settings.set("POP3COUNT", "2")
        self.assertEqual(self.choose(self.rows(fetched={4, 5})), ["m2", "m3"])

    def test_seen_offered_when_sendnew_is_off(self):
        self.assertEqual(self.choose(self.rows(seen={1, 3})), ["m1", "m2", "m3", "m4", "m5"])

    def test_bad_withheld_only_with_badmailpop3(self):
        rows = self.rows(bad={2})
        self.assertEqual(self.choose(rows), ["m1", "m2", "m3", "m4", "m5"])
        self.assertEqual(self.choose(rows, badmailpop3="1"), ["m1", "m3", "m4", "m5"])


class SendNewTests(PolicyTestBase):
    zwms_cfg = {"SENDNEW": "1"}

    def test_only_unseen_offered(self):
        self.deliver(1, 2, 3)
        self.store.seen.add(self.names[1])
        client, reply = self.session()
        self.assertEqual(reply, b"+OK send PASS\r\n+OK maildrop has 2 messages\r\n")
        self.assertEqual(self.subjects(client), [1, 3])


class LoginPolicyTests(PolicyTestBase):
    """Who may log in, what is logged, relay memory (SPEC O3)."""

    def test_login_by_id_records_relay_ip(self):
        self.deliver(1)
        client, reply = self.session(ip="198.51.100.9")
        self.assertEqual(reply, b"+OK send PASS\r\n+OK maildrop has 1 message\r\n")
        self.assertEqual(self.services.relay_memory.recent("198.51.100.9"), "alice")
        self.assertEqual(self.services.logs.lines[logs.POP], ["POP3 login alice (1 offered)"])

    def test_login_by_address_and_case(self):
        for login in (b"alice@example.com", b"ALICE", b"Alice@Example.COM"):
            client, reply = self.session(user=login)
            self.assertEqual(reply, b"+OK send PASS\r\n+OK maildrop has 0 messages\r\n", login)

    def test_login_by_hosting_address(self):
        self.services.accounts.set("alice", "address", "boss@hosted.example")
        client, reply = self.session(user=b"boss@hosted.example")
        self.assertEqual(reply, b"+OK send PASS\r\n+OK maildrop has 0 messages\r\n")

    def refused(self, user, password, reply, reason):
        client, out = self.session(user=user, password=password, ip="203.0.113.5")
        self.assertEqual(out, b"+OK send PASS\r\n-ERR " + reply + b"\r\n")
        self.assertEqual(self.services.logs.lines[logs.POP][-1],
                         "POP3 login failed for %s: %s" % (user.decode("utf-8", "replace"), reason))
        self.assertIsNone(self.services.relay_memory.recent("203.0.113.5"))
        self.assertEqual(client.talk(b"STAT\r\n"), b"-ERR log in first (USER and PASS)\r\n")

    def test_wrong_password(self):
        self.refused(b"alice", b"Secret", b"[AUTH] Authentication failed", "wrong password")

    def test_unknown_user(self):
        self.refused(b"mallory", b"secret", b"[AUTH] Authentication failed", "unknown user")
        self.refused(b"mallory@example.com", b"x", b"[AUTH] Authentication failed",
                     "unknown user")
        self.refused(b"alice@elsewhere.example", b"secret", b"[AUTH] Authentication failed",
                     "unknown user")

    def test_locked_needs_the_password_to_be_told(self):
        self.services.accounts.set("alice", "locked", "1")
        self.refused(b"alice", b"wrong", b"[AUTH] Authentication failed", "wrong password")
        self.refused(b"alice", b"secret", b"[SYS/PERM] Account is locked", "locked account")

    def test_inactive(self):
        self.services.accounts.set("alice", "active", "0")
        self.refused(b"alice", b"secret", b"[SYS/PERM] Account is inactive", "inactive account")

    def test_undecodable(self):
        self.refused(b"al\xffice", b"secret", b"[AUTH] Authentication failed",
                     "login or password not UTF-8")


class OffPolicyTests(PolicyTestBase):
    zwms_cfg = {"POP3": "0"}

    def test_pop3_off_refuses_logins(self):
        client, reply = self.session()
        self.assertEqual(reply, b"-ERR [SYS/PERM] POP3 service is turned off\r\n"
                                b"-ERR USER first\r\n")


class LoginCacheTests(PolicyTestBase):
    """
    Issue 8: a password verified lately against the account's current hash
    is not checked with argon2 again; anything else is.
    """

    def setUp(self):
        PolicyTestBase.setUp(self)
        self.checks = []
        check = self.services.accounts.check_password

        def counted(account_id, password):
            self.checks.append(account_id)
            return check(account_id, password)

        self.services.accounts.check_password = counted

    refused = LoginPolicyTests.refused

    def logged_in(self, password=b"secret", user=b"alice"):
        client, reply = self.session(user=user, password=password)
        return reply.endswith(b"+OK maildrop has 0 messages\r\n")

    def test_pop3authcache_setting(self):
        """zwms.cfg POP3AUTHCACHE sets the cache's life; 0 turns it off."""
        self.assertEqual(POP3Factory(self.services).login_cache.ttl, 900)
        self.services.settings._values["POP3AUTHCACHE"] = 60
        self.assertEqual(POP3Factory(self.services).login_cache.ttl, 60)
        self.services.settings._values["POP3AUTHCACHE"] = 0
        self.assertIsNone(POP3Factory(self.services).login_cache)

    def test_second_login_skips_the_check(self):
        self.assertTrue(self.logged_in())
        self.assertTrue(self.logged_in())
        self.assertTrue(self.logged_in(user=b"alice@example.com"))
        self.assertEqual(self.checks, ["alice"])
        self.assertEqual(self.services.logs.lines[logs.POP],
                         ["POP3 login alice (0 offered)"] * 3)

    def test_wrong_password_is_always_checked_and_never_remembered(self):
        self.assertTrue(self.logged_in())
        self.refused(b"alice", b"Secret", b"[AUTH] Authentication failed", "wrong password")
        self.refused(b"alice", b"Secret", b"[AUTH] Authentication failed", "wrong password")
        self.assertEqual(self.checks, ["alice"] * 3)
        # The right one is still remembered.
        self.assertTrue(self.logged_in())
        self.assertEqual(len(self.checks), 3)

    def test_changed_password_misses(self):
        self.assertTrue(self.logged_in())
        self.services.accounts.set("alice", "password", "newer")
        self.refused(b"alice", b"secret", b"[AUTH] Authentication failed", "wrong password")
        self.assertTrue(self.logged_in(b"newer"))
        self.assertTrue(self.logged_in(b"newer"))
        self.assertEqual(self.checks, ["alice"] * 3)

    def test_entry_expires(self):
        self.assertTrue(self.logged_in())
        self.services.clock.advance(login_module.CACHE_TTL - 1)
        self.assertTrue(self.logged_in())
        self.assertEqual(len(self.checks), 1)
        self.services.clock.advance(1)
        self.assertTrue(self.logged_in())
        self.assertEqual(len(self.checks), 2)

    def test_account_state_is_read_at_every_login(self):
        self.assertTrue(self.logged_in())
        self.services.accounts.set("alice", "locked", "1")
        self.refused(b"alice", b"secret", b"[SYS/PERM] Account is locked", "locked account")
        self.services.accounts.set("alice", "locked", "0")
        self.services.accounts.set("alice", "active", "0")
        self.refused(b"alice", b"secret", b"[SYS/PERM] Account is inactive", "inactive account")
        self.services.accounts.delete("alice")
        self.refused(b"alice", b"secret", b"[AUTH] Authentication failed", "unknown user")
        self.assertEqual(self.checks, ["alice"])

    def test_password_changed_during_the_check_is_not_remembered(self):
        check = self.services.accounts.check_password

        def changing(account_id, password):
            ok = check(account_id, password)
            self.services.accounts.set("alice", "password", "other")
            return ok

        self.services.accounts.check_password = changing
        self.assertTrue(self.logged_in())
        # Remembered against the new hash, "secret" would now open "other"'s account.
        self.services.accounts.check_password = check
        self.refused(b"alice", b"secret", b"[AUTH] Authentication failed", "wrong password")
        self.assertTrue(self.logged_in(b"other"))

    def test_damaged_account_before_the_check_goes_the_usual_way(self):
        # The first accounts.get after the login name is resolved is the
        # cache's look before the password check.
        get, login_account = self.services.accounts.get, self.services.directory.login_account
        armed = []

        def resolve(name):
            account_id = login_account(name)
            armed.append(True)
            return account_id

        def failing_once(account_id):
            if armed:
                armed.pop()
                raise ValueError("damaged account.cfg")
            return get(account_id)

        self.services.directory.login_account = resolve
        self.services.accounts.get = failing_once
        self.assertTrue(self.logged_in())
        self.assertTrue(self.logged_in())
        # The failed look only cost a check: the second login was remembered.
        self.assertEqual(self.checks, ["alice", "alice"])
        self.assertEqual(armed, [])

    def test_disabled(self):
        self.factory = POP3Factory(self.services, run_blocking=synchronous, login_cache=False)
        self.assertIsNone(self.factory.login_cache)
        for _ in range(3):
            self.assertTrue(self.logged_in())
        self.assertEqual(self.checks, ["alice"] * 3)

    def test_bounded_least_recently_used_go_first(self):
        for name in ("bob", "carol"):
            self.services.accounts.add(name, "pw-" + name)
        self.factory = POP3Factory(self.services, run_blocking=synchronous,
                                   login_cache=LoginCache(size=2, clock=self.services.clock))
        self.assertTrue(self.logged_in())
        self.assertTrue(self.logged_in(b"pw-bob", b"bob"))
        self.assertTrue(self.logged_in())                      # alice used last
        self.assertTrue(self.logged_in(b"pw-carol", b"carol"))  # bob goes
        self.assertEqual(len(self.factory.login_cache), 2)
        self.assertTrue(self.logged_in())
        self.assertTrue(self.logged_in(b"pw-bob", b"bob"))
        self.assertEqual(self.checks, ["alice", "bob", "carol", "bob"])

    def test_the_password_is_not_kept(self):
        cache = LoginCache(clock=self.services.clock)
        account = self.services.accounts.get("alice")
        cache.remember(account, "secret")
        self.assertTrue(cache.verified(account, "secret"))
        self.assertFalse(cache.verified(account, "secreT"))
        self.assertNotIn("secret", repr(cache._entries))
        self.assertNotIn(b"secret", b"".join(d for _, d in cache._entries.values()))


class FetchPolicyTests(PolicyTestBase):
    """§31 / SPEC §0 "fetched", QUIT, DELE."""

    def test_retrieved_and_quit_is_never_offered_again(self):
        self.deliver(1, 2, 3)
        client, _ = self.session()
        self.assertEqual(self.offered(client), self.names)
        client.talk(b"RETR 2\r\n")
        self.assertEqual(client.talk(b"QUIT\r\n"), b"+OK zWMS POP3 server signing off\r\n")
        self.assertEqual(self.store.calls, [("mark_fetched", [self.names[1]])])
        client, _ = self.session()
        self.assertEqual(self.offered(client), [self.names[0], self.names[2]])
        self.assertEqual(len(self.services.mail.messages("alice")), 3, "nothing deleted")

    def test_not_fetched_without_quit(self):
        self.deliver(1, 2)
        client, _ = self.session()
        client.talk(b"RETR 1\r\nRETR 2\r\n")
        client.close()
        client, _ = self.session()
        self.assertEqual(self.offered(client), self.names)
        self.assertEqual(self.store.calls, [])

    def test_top_list_uidl_stat_are_not_fetches(self):
        self.deliver(1, 2)
        client, _ = self.session()
        client.talk(b"STAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nTOP 1 5\r\nTOP 2 0\r\n")
        self.assertEqual(client.talk(b"QUIT\r\n"), b"+OK zWMS POP3 server signing off\r\n")
        client, _ = self.session()
        self.assertEqual(self.offered(client), self.names)

    def test_fetched_offered_again_with_share_same_uidl(self):
        self.services.accounts.set("alice", "pop3share", "1")
        self.deliver(1, 2)
        client, _ = self.session()
        first = self.offered(client)
        client.talk(b"RETR 1\r\nRETR 2\r\nQUIT\r\n")
        client, _ = self.session()
        self.assertEqual(self.offered(client), first)
        self.assertEqual(first, self.names)

    def test_pop3count_moves_towards_older_mail(self):
        self.services.settings.set("POP3COUNT", "2")
        self.deliver(1, 2, 3, 4, 5)
        seen = []
        for expected in ([4, 5], [2, 3], [1], []):
            client, _ = self.session()
            subjects = self.subjects(client)
            self.assertEqual(subjects, expected)
            seen.extend(subjects)
            for i in range(1, len(subjects) + 1):
                client.talk(b"RETR %d\r\n" % i)
            self.assertEqual(client.talk(b"QUIT\r\n"), b"+OK zWMS POP3 server signing off\r\n")
        self.assertEqual(sorted(seen), [1, 2, 3, 4, 5])

    def test_new_mail_after_a_session_comes_first(self):
        self.services.settings.set("POP3COUNT", "2")
        self.deliver(1, 2, 3)
        client, _ = self.session()
        client.talk(b"RETR 1\r\nRETR 2\r\nQUIT\r\n")
        self.deliver(4)
        client, _ = self.session()
        self.assertEqual(self.subjects(client), [1, 4])

    def test_bad_mail_withheld_when_account_refuses(self):
        self.deliver(1, 2)
        self.store.bad.add(self.names[0])
        client, _ = self.session()
        self.assertEqual(self.subjects(client), [1, 2])
        self.services.accounts.set("alice", "badmailpop3", "1")
        client, _ = self.session()
        self.assertEqual(self.subjects(client), [2])

    def test_only_the_inbox(self):
        self.deliver(1)
        self.successResultOf(self.services.mail.deliver(
            [Delivery("alice", message(9), folder="Spam")]))
        client, _ = self.session()
        self.assertEqual(self.subjects(client), [1])

    def test_dele_quit_removes(self):
        self.deliver(1, 2, 3)
        client, _ = self.session()
        client.talk(b"RETR 1\r\nDELE 1\r\nDELE 3\r\n")
        self.assertEqual(client.talk(b"QUIT\r\n"), b"+OK zWMS POP3 server signing off\r\n")
        self.assertEqual([m.name for m in self.services.mail.messages("alice")],
                         [self.names[1]])
        self.assertEqual(self.store.calls, [("mark_fetched", [self.names[0]]),
                                            ("delete", [self.names[0], self.names[2]])])
        self.assertEqual(self.services.logs.lines[logs.POP][-1],
                         "POP3 logout alice: 1 retrieved, 2 deleted")

    def test_dele_rset_quit_keeps(self):
        self.deliver(1, 2)
        client, _ = self.session()
        client.talk(b"DELE 1\r\nRSET\r\nDELE 2\r\nRSET\r\nQUIT\r\n")
        self.assertEqual(len(self.services.mail.messages("alice")), 2)
        self.assertEqual(self.store.calls, [])

    def test_dele_without_quit_keeps(self):
        self.deliver(1, 2)
        client, _ = self.session()
        client.talk(b"DELE 1\r\nDELE 2\r\n")
        client.close()
        self.assertEqual(len(self.services.mail.messages("alice")), 2)

    def test_quit_answers_after_mark_is_durable(self):
        self.deliver(1, 2)
        self.store.hold = True
        client, _ = self.session()
        client.talk(b"RETR 1\r\nDELE 2\r\n")
        self.assertEqual(client.talk(b"QUIT\r\nNOOP\r\n"), b"")
        self.store.release()
        self.assertEqual(client.take(), b"")
        self.assertFalse(client.transport.disconnecting)
        self.store.release()
        self.assertEqual(client.take(), b"+OK zWMS POP3 server signing off\r\n")
        self.assertTrue(client.transport.disconnecting)

    def test_mark_failure_deletes_nothing(self):
        self.deliver(1, 2)
        self.store.fail_mark = OSError("index locked")
        client, _ = self.session()
        client.talk(b"RETR 1\r\nDELE 1\r\nDELE 2\r\n")
        self.assertEqual(client.talk(b"QUIT\r\n"),
                         b"-ERR [SYS/TEMP] some deleted messages not removed\r\n")
        self.assertEqual(len(self.services.mail.messages("alice")), 2)
        self.assertEqual(self.services.logs.lines[logs.SYSTEMERROR],
                         ["POP3 store error for alice: index locked"])


class SizeTests(PolicyTestBase):
    """LIST/STAT sizes are the CRLF sizes the client stores."""

    def test_bare_lf_message_sizes(self):
        stored = b"Subject: lf\n\nline\n.dot\n"
        self.successResultOf(self.services.mail.deliver([Delivery("alice", stored)]))
        client, _ = self.session()
        wire_size = len(stored.replace(b"\n", b"\r\n"))
        self.assertEqual(client.talk(b"STAT\r\nLIST\r\nLIST 1\r\n"),
                         b"+OK 1 %d\r\n+OK 1 message (%d octets)\r\n1 %d\r\n.\r\n+OK 1 %d\r\n"
                         % ((wire_size,) * 4))
        self.assertEqual(client.talk(b"RETR 1\r\n"),
                         b"+OK %d octets\r\nSubject: lf\r\n\r\nline\r\n..dot\r\n.\r\n"
                         % wire_size)

    def test_message_removed_during_session(self):
        self.deliver(1, 2)
        client, _ = self.session()
        self.store.inner.delete("alice", "Inbox", [self.names[0]])  # webmail
        self.assertEqual(client.talk(b"RETR 1\r\nLIST 1\r\nRETR 2\r\n"),
                         b"-ERR message is no longer in the mailbox\r\n+OK 1 %d\r\n"
                         b"+OK %d octets\r\n%s.\r\n" % (len(message(1)), len(message(2)),
                                                         message(2)))
        client.talk(b"QUIT\r\n")
        self.assertEqual(self.store.calls, [("mark_fetched", [self.names[1]])])


class FileStoreTests(unittest.TestCase):
    """
    The same policy over the file stores (argon2 passwords checked in a
    thread, the mail writer thread, SQLite flags): what QUIT marks and
    removes is on disk when +OK is sent.
    """

    def setUp(self):
        self.services = make_services(self.mktemp(), memory=False)
        self.addCleanup(self.services.mail.stop)
        self.services.settings.set("DOMAIN", "example.com")
        self.services.accounts.add("alice", "secret")
        # The default run_blocking: deferToThread.
        self.factory = POP3Factory(self.services)

    @defer.inlineCallbacks
    def until(self, client, data, ending):
        """Send C{data}; wait (real reactor) until the output ends with C{ending}."""
        from twisted.internet import reactor
        client.proto.dataReceived(data)
        for _ in range(1000):
            client.settle()
            if client.transport.value().endswith(ending):
                return client.take()
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.fail("no %r after %r, got %r" % (ending, data, client.transport.value()))

    @defer.inlineCallbacks
    def test_fetch_and_delete_are_durable_at_quit(self):
        stored = [b"Subject: one\n\nbare lf\n.dot\n", b"Subject: two\r\n\r\ncrlf\r\n"]
        names = yield self.services.mail.deliver([Delivery("alice", data) for data in stored])
        client = Client(self.factory)
        client.take()
        reply = yield self.until(client, b"USER alice@example.com\r\nPASS secret\r\n",
                                 b"+OK maildrop has 2 messages\r\n")
        self.assertEqual(reply, b"+OK send PASS\r\n+OK maildrop has 2 messages\r\n")
        self.assertEqual(client.talk(b"UIDL\r\n"), b"+OK\r\n1 %s\r\n2 %s\r\n.\r\n"
                         % (names[0].encode(), names[1].encode()))
        one = stored[0].replace(b"\n", b"\r\n")
        self.assertEqual(client.talk(b"LIST\r\n"), b"+OK 2 messages (%d octets)\r\n1 %d\r\n2 %d\r\n"
                         b".\r\n" % (len(one) + len(stored[1]), len(one), len(stored[1])))
        self.assertEqual(client.talk(b"RETR 1\r\nDELE 2\r\n"),
                         b"+OK %d octets\r\nSubject: one\r\n\r\nbare lf\r\n..dot\r\n.\r\n"
                         b"+OK message 2 deleted\r\n" % len(one))
        reply = yield self.until(client, b"QUIT\r\n", b"signing off\r\n")
        self.assertEqual(reply, b"+OK zWMS POP3 server signing off\r\n")
        rows = self.services.mail.messages("alice")
        self.assertEqual([(m.name, m.fetched) for m in rows], [(names[0], True)])
        self.assertEqual(os.listdir(os.path.join(self.services.home.userd, "alice", "mail",
                                                 "Inbox")), [names[0] + ".eml"])
        client = Client(self.factory)
        client.take()
        reply = yield self.until(client, b"USER alice\r\nPASS secret\r\n",
                                 b"+OK maildrop has 0 messages\r\n")
        self.assertEqual(self.services.relay_memory.recent(PEER), "alice")
        reply = yield self.until(client, b"QUIT\r\n", b"signing off\r\n")

    @defer.inlineCallbacks
    def test_wrong_password_in_thread(self):
        client = Client(self.factory)
        client.take()
        reply = yield self.until(client, b"USER alice\r\nPASS nope\r\n",
                                 b"Authentication failed\r\n")
        self.assertEqual(reply, b"+OK send PASS\r\n-ERR [AUTH] Authentication failed\r\n")
        client.close()

    @defer.inlineCallbacks
    def test_listing_reads_no_message_and_sizes_after_reindex_are_kept(self):
        stored = [b"Subject: one\n\nbare lf\n", b"Subject: two\r\n\r\ncrlf\r\n"]
        yield self.services.mail.deliver([Delivery("alice", data) for data in stored])
        sizes = [len(stored[0].replace(b"\n", b"\r\n")), len(stored[1])]
        listing = b"+OK 2 messages (%d octets)\r\n1 %d\r\n2 %d\r\n.\r\n" % (
            sum(sizes), sizes[0], sizes[1])
        reads = []
        real_read = self.services.mail.read

        def read(*args):
            reads.append(args[2])
            return real_read(*args)

        self.patch(self.services.mail, "read", read)

        @defer.inlineCallbacks
        def session():
            client = Client(self.factory)
            client.take()
            yield self.until(client, b"USER alice\r\nPASS secret\r\n", b"2 messages\r\n")
            reply = yield self.until(client, b"STAT\r\nLIST\r\n", b"\r\n.\r\n")
            yield self.until(client, b"QUIT\r\n", b"signing off\r\n")
            return reply

        # Delivered by the store: the sizes are in the index.
        self.assertEqual((yield session()), b"+OK 2 %d\r\n" % sum(sizes) + listing)
        self.assertEqual(reads, [])
        # Rows without sizes (as reindex makes for new files) are measured
        # once (one read each) ...
        import sqlite3
        db = sqlite3.connect(self.services.home.index_db)
        db.execute("UPDATE messages SET wire = NULL")
        db.commit()
        db.close()
        self.assertEqual(self.services.mail.wire_sizes("alice"), {})
        self.assertEqual((yield session()), b"+OK 2 %d\r\n" % sum(sizes) + listing)
        self.assertEqual(len(reads), 2)
        # ... and kept in the index for the next session (a job queued
        # after the recording fires once it is done).
        yield self.services.mail.mark_fetched("alice", [])
        names = [m.name for m in self.services.mail.messages("alice")]
        self.assertEqual(self.services.mail.wire_sizes("alice"), dict(zip(names, sizes)))
        self.assertEqual([r.plain for r in self.services.mail.pop3_rows("alice")], [0, 1])
        self.assertEqual((yield session()), b"+OK 2 %d\r\n" % sum(sizes) + listing)
        self.assertEqual(len(reads), 2)

    @defer.inlineCallbacks
    def test_plain_and_dotted_messages_go_out_right(self):
        stored = [b"Subject: plain\r\n\r\nno dots here.\r\n",
                  b"Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n",
                  b".Leading: dot\r\n\r\nx\r\n"]
        yield self.services.mail.deliver([Delivery("alice", data) for data in stored])
        self.assertEqual([r.plain for r in self.services.mail.pop3_rows("alice")], [1, 0, 0])
        client = Client(self.factory)
        client.take()
        yield self.until(client, b"USER alice\r\nPASS secret\r\n", b"3 messages\r\n")
        for number, data in enumerate(stored, 1):
            stuffed = data.replace(b"\r\n.", b"\r\n..")
            if stuffed.startswith(b"."):
                stuffed = b"." + stuffed
            reply = yield self.until(client, b"RETR %d\r\n" % number, b"\r\n.\r\n")
            self.assertEqual(reply, b"+OK %d octets\r\n%s.\r\n" % (len(data), stuffed))
        yield self.until(client, b"QUIT\r\n", b"signing off\r\n")
