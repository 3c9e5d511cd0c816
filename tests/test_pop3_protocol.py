"""
The POP3 protocol (SPEC O1) over StringTransport: every command, exact reply
lines, byte-exact retrieval, robustness (TWISTED-NOTES.md POP3 holes), STLS,
timeouts, pipelining.

The command tests run three times, against a mailbox that answers at once,
one that answers with fired Deferreds and one whose Deferreds stay pending
until the test releases them (as Twisted's test_pop3.py does).
"""

import io

from hypothesis import given, strategies as st
from twisted.internet import defer, protocol, task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.helpers import make_services
from zwms import logs
from zwms.config import write_key
from zwms.errors import NoSuchMessage
from zwms.home import Home
from zwms.pop3 import wire
from zwms.pop3.factory import POP3Factory
from zwms.pop3.mailbox import IZWMSMailbox, POP3Mailbox

PEER = "192.0.2.7"


def synchronous(function, *args):
    """A run_blocking that runs in the test's thread."""
    return function(*args)


def new_services(root, **zwms_cfg):
    """
    make_services with data/zwms.cfg keys (restart-only, so written before
    the settings are read), an account alice/secret and DOMAIN example.com.
    """
    home = Home(root)
    home.create()
    for key, value in zwms_cfg.items():
        write_key(home.zwms_cfg, key, value)
    services = make_services(root)
    services.settings.set("DOMAIN", "example.com")
    services.accounts.add("alice", "secret")
    return services


class TLSStringTransport(StringTransport):
    """A StringTransport that records startTLS."""

    tls = None

    def startTLS(self, context, normal=True):
        self.tls = context


class Client:
    """
    One connection: feed bytes, run the pull producer (RETR/TOP), fire what
    the mailbox keeps pending, and collect the output.
    """

    def __init__(self, factory, ip=PEER, release=None):
        self.transport = TLSStringTransport(peerAddress=IPv4Address("TCP", ip, 40000))
        self.proto = factory.buildProtocol(self.transport.getPeer())
        self.release = release or (lambda: False)
        self.proto.makeConnection(self.transport)

    def settle(self):
        while True:
            if self.transport.producer is not None:
                self.transport.producer.resumeProducing()
            elif not self.release():
                return

    def send(self, data):
        self.proto.dataReceived(data)
        self.settle()

    def take(self):
        value = self.transport.value()
        self.transport.clear()
        return value

    def talk(self, data):
        self.send(data)
        return self.take()

    def close(self):
        self.proto.connectionLost(Failure(ConnectionDone()))


@implementer(IZWMSMailbox)
class FakeMailbox:
    """
    An IZWMSMailbox over a list of byte strings, answering synchronously.
    Subclasses answer with Deferreds (see C{_answer}).
    """

    loginDelay = 0
    messageExpiration = None

    def __init__(self, messages, names=None):
        self.messages = list(messages)
        self.names = names or ["m%d.eml" % (i + 1) for i in range(len(self.messages))]
        self.deleted = set()
        self.retrieved = []
        self.synced = 0
        self.read_error = None
        self.sync_error = None

    def _answer(self, value):
        return value

    def _error(self, exc):
        raise exc

    def _check(self, i):
        if not 0 <= i < len(self.messages):
            raise ValueError(i)

    def messageCount(self):
        return len(self.messages)

    def messageRetrieved(self, index):
        self.retrieved.append(index)

    def listMessages(self, i=None):
        if i is None:
            return self._answer([0 if j in self.deleted else wire.wire_size(m)
                                 for j, m in enumerate(self.messages)])
        self._check(i)
        return self._answer(wire.wire_size(self.messages[i]))

    def getMessage(self, i):
        self._check(i)
        if self.read_error is not None:
            return self._error(self.read_error)
        return self._answer(io.BytesIO(self.messages[i]))

    def getUidl(self, i):
        self._check(i)
        return self.names[i].encode("ascii")

    def deleteMessage(self, i):
        self._check(i)
        self.deleted.add(i)

    def undeleteMessages(self):
        self.deleted.clear()

    def sync(self):
        self.synced += 1
        if self.sync_error is not None:
            return self._error(self.sync_error)
        return self._answer((len(self.retrieved), len(self.deleted)))

    def release(self):
        """Fire one pending answer; False when there was none."""
        return False


class DeferredMailbox(FakeMailbox):
    """Answers with Deferreds that have already fired."""

    def _answer(self, value):
        return defer.succeed(value)

    def _error(self, exc):
        return defer.fail(exc)


class PendingMailbox(FakeMailbox):
    """Answers with Deferreds that fire only when released."""

    def __init__(self, *args, **kwargs):
        FakeMailbox.__init__(self, *args, **kwargs)
        self.waiting = []

    def _answer(self, value):
        d = defer.Deferred()
        self.waiting.append((d, value, None))
        return d

    def _error(self, exc):
        d = defer.Deferred()
        self.waiting.append((d, None, exc))
        return d

    def release(self):
        if not self.waiting:
            return False
        d, value, exc = self.waiting.pop(0)
        if exc is not None:
            d.errback(exc)
        else:
            d.callback(value)
        return True


MESSAGES = [
    b"Subject: one\r\n\r\nfirst body\r\n",
    b"Subject: two\r\n\r\nline 1\r\n.dotted\r\nline 3\r\nline 4\r\n",
]
LOGIN = b"USER alice\r\nPASS secret\r\n"
LOGGED_IN = b"+OK send PASS\r\n+OK maildrop has 2 messages\r\n"


class CommandTestsMixin:
    """Every command, exact replies; run against each mailbox kind."""

    mailbox_class = FakeMailbox

    def setUp(self):
        self.services = new_services(self.mktemp())
        self.factory = POP3Factory(self.services, run_blocking=synchronous)
        self.mbox = self.mailbox_class(MESSAGES)
        self.factory.open_mailbox = lambda account: self.mbox
        self.client = Client(self.factory, release=self.mbox.release)
        self.assertEqual(self.client.take(), b"+OK zWMS POP3 server ready\r\n")

    def login(self):
        self.assertEqual(self.client.talk(LOGIN), LOGGED_IN)

    def test_mailbox_fake_is_an_izwmsmailbox(self):
        verifyObject(IZWMSMailbox, self.mbox)

    def test_capa(self):
        self.assertEqual(self.client.talk(b"CAPA\r\n"),
                         b"+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n"
                         b"RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
                         b"IMPLEMENTATION zWMS\r\n.\r\n")

    def test_login_and_stat(self):
        self.login()
        self.assertEqual(self.client.talk(b"STAT\r\n"), b"+OK 2 %d\r\n"
                         % sum(len(m) for m in MESSAGES))

    def test_list(self):
        self.login()
        sizes = [len(m) for m in MESSAGES]
        self.assertEqual(self.client.talk(b"LIST\r\n"),
                         b"+OK 2 messages (%d octets)\r\n1 %d\r\n2 %d\r\n.\r\n"
                         % (sum(sizes), sizes[0], sizes[1]))
        self.assertEqual(self.client.talk(b"LIST 2\r\n"), b"+OK 2 %d\r\n" % sizes[1])

    def test_uidl(self):
        self.login()
        self.assertEqual(self.client.talk(b"UIDL\r\n"),
                         b"+OK\r\n1 m1.eml\r\n2 m2.eml\r\n.\r\n")
        self.assertEqual(self.client.talk(b"UIDL 2\r\n"), b"+OK 2 m2.eml\r\n")

    def test_retr(self):
        self.login()
        self.assertEqual(self.client.talk(b"RETR 2\r\n"),
                         b"+OK %d octets\r\n" % len(MESSAGES[1])
                         + b"Subject: two\r\n\r\nline 1\r\n..dotted\r\nline 3\r\nline 4\r\n.\r\n")
        self.assertEqual(self.mbox.retrieved, [1])

    def test_top(self):
        self.login()
        self.assertEqual(self.client.talk(b"TOP 2 2\r\n"),
                         b"+OK top of message follows\r\n"
                         b"Subject: two\r\n\r\nline 1\r\n..dotted\r\n.\r\n")
        self.assertEqual(self.client.talk(b"TOP 2 0\r\n"),
                         b"+OK top of message follows\r\nSubject: two\r\n\r\n.\r\n")
        self.assertEqual(self.mbox.retrieved, [], "TOP is not a retrieval")

    def test_dele_rset(self):
        self.login()
        self.assertEqual(self.client.talk(b"DELE 1\r\n"), b"+OK message 1 deleted\r\n")
        size2 = len(MESSAGES[1])
        self.assertEqual(self.client.talk(b"STAT\r\nLIST\r\nUIDL\r\n"),
                         b"+OK 1 %d\r\n" % size2
                         + b"+OK 1 message (%d octets)\r\n2 %d\r\n.\r\n" % (size2, size2)
                         + b"+OK\r\n2 m2.eml\r\n.\r\n")
        self.assertEqual(self.client.talk(b"DELE 1\r\nRETR 1\r\nTOP 1 0\r\nLIST 1\r\nUIDL 1\r\n"),
                         b"-ERR message 1 already deleted\r\n" * 5)
        self.assertEqual(self.client.talk(b"RSET\r\n"), b"+OK maildrop has 2 messages\r\n")
        self.assertEqual(self.client.talk(b"STAT\r\n"), b"+OK 2 %d\r\n"
                         % sum(len(m) for m in MESSAGES))
        self.assertEqual(self.mbox.deleted, set())

    def test_noop(self):
        self.login()
        self.assertEqual(self.client.talk(b"NOOP\r\n"), b"+OK\r\n")

    def test_quit_syncs_then_answers(self):
        self.login()
        self.client.talk(b"RETR 1\r\nDELE 2\r\n")
        self.assertEqual(self.client.talk(b"QUIT\r\n"),
                         b"+OK zWMS POP3 server signing off\r\n")
        self.assertEqual(self.mbox.synced, 1)
        self.assertTrue(self.client.transport.disconnecting)
        self.assertEqual(self.services.logs.lines[logs.POP][-1],
                         "POP3 logout alice: 1 retrieved, 1 deleted")

    def test_quit_sync_failure(self):
        self.login()
        self.mbox.sync_error = OSError("disk full")
        self.assertEqual(self.client.talk(b"QUIT\r\n"),
                         b"-ERR [SYS/TEMP] some deleted messages not removed\r\n")
        self.assertTrue(self.client.transport.disconnecting)
        self.assertEqual(self.services.logs.lines[logs.SYSTEMERROR],
                         ["POP3 store error for alice: disk full"])

    def test_lines_after_quit_ignored(self):
        self.login()
        self.assertEqual(self.client.talk(b"QUIT\r\nNOOP\r\nSTAT\r\n"),
                         b"+OK zWMS POP3 server signing off\r\n")

    def test_no_quit_no_sync(self):
        self.login()
        self.client.talk(b"RETR 1\r\nDELE 2\r\n")
        self.client.close()
        self.assertEqual(self.mbox.synced, 0)
        self.assertEqual(self.services.logs.lines[logs.POP][-1],
                         "POP3 session of alice ended without QUIT: nothing marked or deleted")

    def test_bad_arguments_keep_the_session(self):
        self.login()
        cases = [
            (b"RETR x", b"-ERR invalid message number"),
            (b"RETR 0", b"-ERR no such message"),
            (b"RETR 3", b"-ERR no such message"),
            (b"RETR +1", b"-ERR invalid message number"),
            (b"RETR 1_0", b"-ERR invalid message number"),
            (b"RETR -1", b"-ERR invalid message number"),
            (b"RETR 99999999999999999999", b"-ERR invalid message number"),
            (b"RETR", b"-ERR usage: RETR msg"),
            (b"RETR 1 2", b"-ERR usage: RETR msg"),
            (b"LIST 999", b"-ERR no such message"),
            (b"LIST 1 2", b"-ERR usage: LIST [msg]"),
            (b"UIDL 0", b"-ERR no such message"),
            (b"TOP 1", b"-ERR usage: TOP msg lines"),
            (b"TOP 1 x", b"-ERR invalid line count"),
            (b"TOP 1 -1", b"-ERR invalid line count"),
            (b"TOP 9 1", b"-ERR no such message"),
            (b"DELE", b"-ERR usage: DELE msg"),
            (b"DELE abc", b"-ERR invalid message number"),
            (b"STAT 1", b"-ERR usage: STAT"),
            (b"NOOP x", b"-ERR usage: NOOP"),
            (b"XYZZY", b"-ERR unknown command"),
            (b"LAST", b"-ERR unknown command"),
            (b"\xff\xfe", b"-ERR unknown command"),
            (b"", b"-ERR empty command"),
            (b"   ", b"-ERR empty command"),
            (b"USER bob", b"-ERR already logged in"),
            (b"PASS x", b"-ERR already logged in"),
            (b"STLS", b"-ERR already logged in"),
            (b"APOP alice 0123456789abcdef", b"-ERR APOP is not supported, use USER and PASS"),
        ]
        # All in one packet: every reply, in order, none lost.
        self.assertEqual(self.client.talk(b"".join(c + b"\r\n" for c, _ in cases) + b"NOOP\r\n"),
                         b"".join(r + b"\r\n" for _, r in cases) + b"+OK\r\n")
        self.assertFalse(self.client.transport.disconnecting)
        self.assertEqual(self.mbox.deleted, set())

    def test_commands_are_case_insensitive(self):
        self.assertEqual(self.client.talk(b"user alice\r\npass secret\r\nstat\r\n"),
                         LOGGED_IN + b"+OK 2 %d\r\n" % sum(len(m) for m in MESSAGES))

    def test_read_error_gone(self):
        self.login()
        self.mbox.read_error = NoSuchMessage("m1")
        self.assertEqual(self.client.talk(b"RETR 1\r\nNOOP\r\n"),
                         b"-ERR message is no longer in the mailbox\r\n+OK\r\n")
        self.assertEqual(self.mbox.retrieved, [])

    def test_read_error_unexpected(self):
        self.login()
        self.mbox.read_error = RuntimeError("disk on fire")
        self.assertEqual(self.client.talk(b"RETR 1\r\nNOOP\r\n"),
                         b"-ERR [SYS/TEMP] Server error, try again later\r\n+OK\r\n")
        self.assertEqual(self.services.logs.lines[logs.SYSTEMERROR],
                         ["POP3 store error for alice: disk on fire"])
        self.assertFalse(self.client.transport.disconnecting)


class SynchronousCommandTests(CommandTestsMixin, SynchronousTestCase):
    mailbox_class = FakeMailbox


class DeferredCommandTests(CommandTestsMixin, SynchronousTestCase):
    mailbox_class = DeferredMailbox


class PendingCommandTests(CommandTestsMixin, SynchronousTestCase):
    mailbox_class = PendingMailbox

    def test_line_too_long_answered_in_turn(self):
        self.login()
        self.client.proto.dataReceived(b"STAT\r\nNOOP\r\n" + b"x" * 2000 + b"\r\nNOOP\r\n")
        self.assertEqual(self.client.take(), b"")
        self.client.settle()
        self.assertEqual(self.client.take(), b"+OK 2 %d\r\n+OK\r\n-ERR line too long\r\n"
                         % sum(len(m) for m in MESSAGES))
        self.assertTrue(self.client.transport.disconnecting)

    def test_pipelined_answers_wait_in_order(self):
        self.login()
        self.client.proto.dataReceived(b"STAT\r\nNOOP\r\nLIST 1\r\nUIDL 1\r\n")
        self.assertEqual(self.client.take(), b"", "nothing overtakes the pending STAT")
        self.mbox.release()
        self.assertEqual(self.client.take(),
                         b"+OK 2 %d\r\n+OK\r\n" % sum(len(m) for m in MESSAGES))
        self.mbox.release()
        self.assertEqual(self.client.take(),
                         b"+OK 1 %d\r\n+OK 1 m1.eml\r\n" % len(MESSAGES[0]))

    def test_quit_answers_after_sync_fires(self):
        self.login()
        self.client.proto.dataReceived(b"QUIT\r\n")
        self.assertEqual(self.client.take(), b"")
        self.assertFalse(self.client.transport.disconnecting)
        self.mbox.release()
        self.assertEqual(self.client.take(), b"+OK zWMS POP3 server signing off\r\n")
        self.assertTrue(self.client.transport.disconnecting)

    def test_transport_paused_while_queue_is_long(self):
        self.login()
        self.client.proto.dataReceived(b"STAT\r\n" + b"NOOP\r\n" * 150)
        self.assertEqual(self.client.transport.producerState, "paused")
        self.client.settle()
        self.assertEqual(self.client.transport.producerState, "producing")
        self.assertEqual(self.client.take().count(b"+OK\r\n"), 150)


class LoginTests(SynchronousTestCase):
    """USER/PASS, failures, APOP and AUTH, POP3=0, greeting."""

    def setUp(self):
        self.services = new_services(self.mktemp())
        self.factory = POP3Factory(self.services, run_blocking=synchronous)
        self.factory.open_mailbox = lambda account: FakeMailbox(MESSAGES)

    def connect(self, **kwargs):
        client = Client(self.factory, **kwargs)
        client.take()
        return client

    def test_greeting_has_no_apop_timestamp(self):
        client = Client(self.factory)
        self.assertEqual(client.take(), b"+OK zWMS POP3 server ready\r\n")

    def test_user_without_argument_then_login(self):
        client = self.connect()
        self.assertEqual(client.talk(b"CAPA\r\nUSER\r\nUSER alice\r\nPASS secret\r\nNOOP\r\n"),
                         b"+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n"
                         b"RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
                         b"IMPLEMENTATION zWMS\r\n.\r\n"
                         b"-ERR usage: USER name\r\n" + LOGGED_IN + b"+OK\r\n")
        self.assertFalse(client.transport.disconnecting)

    def test_bare_lf_lines(self):
        client = self.connect()
        self.assertEqual(client.talk(b"USER alice\nPASS secret\nNOOP\n"), LOGGED_IN + b"+OK\r\n")

    def test_password_with_spaces(self):
        self.services.accounts.set("alice", "password", "two words ")
        client = self.connect()
        self.assertEqual(client.talk(b"USER alice\r\nPASS two words \r\n"), LOGGED_IN)

    def test_pass_without_user(self):
        client = self.connect()
        self.assertEqual(client.talk(b"PASS secret\r\nPASS\r\n"),
                         b"-ERR USER first\r\n-ERR usage: PASS password\r\n")

    def test_pass_needs_a_new_user_after_failure(self):
        client = self.connect()
        self.assertEqual(client.talk(b"USER alice\r\nPASS wrong\r\nPASS secret\r\n"),
                         b"+OK send PASS\r\n-ERR [AUTH] Authentication failed\r\n"
                         b"-ERR USER first\r\n")

    def test_transaction_commands_need_login(self):
        client = self.connect()
        self.assertEqual(client.talk(b"STAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\nNOOP\r\nRSET\r\n"),
                         b"-ERR log in first (USER and PASS)\r\n" * 6)

    def test_apop_and_auth_refused(self):
        client = self.connect()
        self.assertEqual(client.talk(b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n"
                                     b"AUTH\r\nAUTH PLAIN\r\n"),
                         b"-ERR APOP is not supported, use USER and PASS\r\n"
                         + b"-ERR AUTH is not supported, use USER and PASS\r\n" * 2)

    def test_three_failures_close(self):
        client = self.connect()
        self.assertEqual(client.talk(b"USER alice\r\nPASS a\r\nUSER alice\r\nPASS b\r\n"),
                         b"+OK send PASS\r\n-ERR [AUTH] Authentication failed\r\n" * 2)
        self.assertFalse(client.transport.disconnecting)
        self.assertEqual(client.talk(b"USER nobody\r\nPASS c\r\nUSER alice\r\nPASS secret\r\n"),
                         b"+OK send PASS\r\n-ERR [AUTH] Authentication failed\r\n")
        self.assertTrue(client.transport.disconnecting)
        self.assertEqual(self.services.logs.lines[logs.POP], [
            "POP3 login failed for alice: wrong password",
            "POP3 login failed for alice: wrong password",
            "POP3 login failed for nobody: unknown user",
            "POP3 too many login failures, connection closed",
        ])

    def test_quit_before_login(self):
        client = self.connect()
        self.assertEqual(client.talk(b"QUIT\r\n"), b"+OK zWMS POP3 server signing off\r\n")
        self.assertTrue(client.transport.disconnecting)

    def test_pop3_off(self):
        services = new_services(self.mktemp(), POP3="0")
        factory = POP3Factory(services, run_blocking=synchronous)
        client = Client(factory)
        client.take()
        self.assertEqual(client.talk(b"USER alice\r\nPASS secret\r\nSTAT\r\n"),
                         b"-ERR [SYS/PERM] POP3 service is turned off\r\n"
                         b"-ERR USER first\r\n-ERR log in first (USER and PASS)\r\n")
        self.assertEqual(services.logs.lines[logs.POP],
                         ["POP3 login failed for alice: POP3 is off"])
        self.assertIsNone(services.relay_memory.recent(PEER))

    def test_pipelined_login_waits_for_password_check(self):
        checks = []

        def later(function, *args):
            d = defer.Deferred()
            checks.append((d, function, args))
            return d

        self.factory.run_blocking = later
        client = self.connect()
        client.proto.dataReceived(LOGIN + b"STAT\r\nNOOP\r\n")
        self.assertEqual(client.take(), b"+OK send PASS\r\n")
        d, function, args = checks.pop()
        d.callback(function(*args))
        self.assertEqual(client.take(), b"+OK maildrop has 2 messages\r\n+OK 2 %d\r\n+OK\r\n"
                         % sum(len(m) for m in MESSAGES))

    def test_login_store_error(self):
        def broken(function, *args):
            return defer.fail(RuntimeError("thread pool gone"))

        self.factory.run_blocking = broken
        client = self.connect()
        self.assertEqual(client.talk(LOGIN + b"NOOP\r\n"),
                         b"+OK send PASS\r\n-ERR [SYS/TEMP] Server error, try again later\r\n"
                         b"-ERR log in first (USER and PASS)\r\n")
        self.assertEqual(self.services.logs.lines[logs.SYSTEMERROR],
                         ["POP3 store error for -: thread pool gone"])

    def test_stop_accepting(self):
        self.factory.stop_accepting()
        client = Client(self.factory)
        self.assertEqual(client.take(),
                         b"-ERR [SYS/TEMP] Server shutting down, try again later\r\n")
        self.assertTrue(client.transport.disconnecting)


class RobustnessTests(SynchronousTestCase):
    """Long lines, timeouts, unexpected errors in handlers."""

    def setUp(self):
        self.services = new_services(self.mktemp())
        self.factory = POP3Factory(self.services, run_blocking=synchronous)
        self.mbox = FakeMailbox(MESSAGES)
        self.factory.open_mailbox = lambda account: self.mbox
        self.client = Client(self.factory)
        self.client.take()

    def test_line_too_long(self):
        self.assertEqual(self.client.talk(b"NOOP\r\nUSER " + b"a" * 2000 + b"\r\nQUIT\r\n"),
                         b"-ERR log in first (USER and PASS)\r\n-ERR line too long\r\n")
        self.assertTrue(self.client.transport.disconnecting)
        self.assertEqual(self.services.logs.lines[logs.POP],
                         ["POP3 line too long, connection closed"])

    def test_unterminated_line_too_long(self):
        self.assertEqual(self.client.talk(b"USER " + b"a" * 1100), b"-ERR line too long\r\n")
        self.assertTrue(self.client.transport.disconnecting)

    def test_longest_line_is_a_command(self):
        self.client.proto.dataReceived(b"USER " + b"a" * 1019 + b"\r")
        self.assertEqual(self.client.talk(b"\n"), b"+OK send PASS\r\n")
        self.assertEqual(self.client.talk(b"USER " + b"a" * 1020 + b"\r\n"),
                         b"-ERR line too long\r\n")

    def test_idle_timeout(self):
        clock = self.services.clock
        clock.advance(599)
        self.client.talk(LOGIN)
        clock.advance(599)
        self.assertFalse(self.client.transport.disconnecting)
        clock.advance(1)
        self.assertTrue(self.client.transport.disconnecting)
        self.assertEqual(self.client.take(), b"", "RFC 1939: no reply on autologout")
        self.client.close()
        self.assertEqual(self.mbox.synced, 0)
        self.assertIn("POP3 idle timeout, connection closed", self.services.logs.lines[logs.POP])

    def test_timeout_during_stalled_transfer_aborts(self):
        self.mbox.messages[0] = b"x" * 100000 + b"\r\n"
        self.client.talk(LOGIN)
        self.client.proto.dataReceived(b"RETR 1\r\n")
        producer = self.client.transport.producer
        producer.resumeProducing()
        self.services.clock.advance(599)
        producer.resumeProducing()   # progress restarts the timer
        self.services.clock.advance(599)
        self.assertFalse(self.client.transport.disconnecting)
        self.services.clock.advance(1)
        self.assertTrue(self.client.transport.disconnected, "aborted, not a graceful close")

    def test_unexpected_handler_error(self):
        def boom():
            raise KeyError("bug")

        self.client.talk(LOGIN)
        self.mbox.undeleteMessages = boom
        self.assertEqual(self.client.talk(b"RSET\r\nNOOP\r\n"),
                         b"-ERR [SYS/TEMP] Server error, try again later\r\n+OK\r\n")
        self.assertEqual(self.services.logs.lines[logs.SYSTEMERROR],
                         ["POP3 store error for alice: 'bug'"])

    def test_connection_lost_mid_transfer_is_not_a_retrieval(self):
        self.mbox.messages[0] = b"y" * 100000 + b"\r\n"
        self.client.talk(LOGIN)
        self.client.proto.dataReceived(b"RETR 1\r\n")
        producer = self.client.transport.producer
        producer.resumeProducing()
        producer.stopProducing()
        self.client.close()
        self.assertEqual(self.mbox.retrieved, [])
        self.assertTrue(self.client.transport.disconnecting)


class STLSTests(SynchronousTestCase):
    """RFC 2595 STLS, and the plaintext-injection guard."""

    def setUp(self):
        self.services = new_services(self.mktemp())
        self.context = object()
        self.factory = POP3Factory(self.services, tls_context=self.context,
                                   run_blocking=synchronous)
        self.factory.open_mailbox = lambda account: FakeMailbox(MESSAGES)
        self.client = Client(self.factory)
        self.client.take()

    def capa(self):
        reply = self.client.talk(b"CAPA\r\n")
        return reply.split(b"\r\n")[1:-2]

    def test_capa_offers_stls_until_secure(self):
        self.assertEqual(self.capa(), [b"TOP", b"UIDL", b"USER", b"RESP-CODES",
                                       b"AUTH-RESP-CODE", b"PIPELINING", b"STLS",
                                       b"IMPLEMENTATION zWMS"])
        self.assertEqual(self.client.talk(b"STLS\r\n"), b"+OK Begin TLS negotiation\r\n")
        self.assertIs(self.client.transport.tls, self.context)
        self.assertNotIn(b"STLS", self.capa())
        self.assertEqual(self.client.talk(b"STLS\r\n"), b"-ERR already using TLS\r\n")

    def test_pipelined_plaintext_after_stls_is_discarded(self):
        self.assertEqual(self.client.talk(b"USER alice\r\nSTLS\r\nPASS secret\r\nSTAT\r\nUS"),
                         b"+OK send PASS\r\n+OK Begin TLS negotiation\r\n")
        # Now "inside TLS": the plaintext PASS, STAT and the partial line are
        # gone, and so is the USER given before STLS.
        self.assertEqual(self.client.talk(b"PASS secret\r\nSTAT\r\n"),
                         b"-ERR USER first\r\n-ERR log in first (USER and PASS)\r\n")
        self.assertEqual(self.client.talk(LOGIN), LOGGED_IN)

    def test_stls_queued_behind_pending_login_discards_the_rest(self):
        checks = []

        def later(function, *args):
            d = defer.Deferred()
            checks.append((d, function, args))
            return d

        self.factory.run_blocking = later
        self.client.proto.dataReceived(b"USER alice\r\nPASS wrong\r\nSTLS\r\nUSER alice\r\n"
                                       b"PASS secret\r\n")
        d, function, args = checks.pop()
        d.callback(function(*args))
        self.assertEqual(self.client.take(),
                         b"+OK send PASS\r\n-ERR [AUTH] Authentication failed\r\n"
                         b"+OK Begin TLS negotiation\r\n")
        self.assertEqual(checks, [])

    def test_stls_after_login_refused(self):
        self.client.talk(LOGIN)
        self.assertEqual(self.client.talk(b"STLS\r\n"), b"-ERR already logged in\r\n")
        self.assertIsNone(self.client.transport.tls)
        self.assertNotIn(b"STLS", self.capa())

    def test_no_context_no_stls(self):
        factory = POP3Factory(self.services, run_blocking=synchronous)
        client = Client(factory)
        client.take()
        self.assertEqual(client.talk(b"STLS\r\n"), b"-ERR STLS is not available\r\n")

    def test_implicit_tls_no_stls(self):
        factory = POP3Factory(self.services, tls_context=self.context, implicit_tls=True,
                              run_blocking=synchronous)
        client = Client(factory)
        client.take()
        self.assertNotIn(b"STLS", client.talk(b"CAPA\r\n"))
        self.assertEqual(client.talk(b"STLS\r\n"), b"-ERR already using TLS\r\n")


class RetrievalTests(SynchronousTestCase):
    """Byte-exact retrieval: CRLF normalisation and dot-stuffing."""

    def setUp(self):
        self.services = new_services(self.mktemp())
        self.factory = POP3Factory(self.services, run_blocking=synchronous)
        self.messages = []
        self.factory.open_mailbox = lambda account: FakeMailbox(self.messages)

    def retr(self, message, command=b"RETR 1"):
        self.messages[:] = [message]
        client = Client(self.factory)
        client.take()
        client.talk(LOGIN)
        return client.talk(command + b"\r\n")

    def test_dot_line_at_byte_16384(self):
        # Twisted transforms 16 KiB chunks one by one: a "." line starting
        # exactly at byte 16384 went out unstuffed and ended the message.
        head = b"Subject: edge\r\n\r\n"
        filler = b"a" * (16384 - len(head) - 2) + b"\r\n"
        message = head + filler + b".\r\nafter the dot\r\n"
        self.assertEqual(message.index(b"\r\n.\r\n") + 2, 16384)
        self.assertEqual(self.retr(message),
                         b"+OK %d octets\r\n" % len(message)
                         + head + filler + b"..\r\nafter the dot\r\n.\r\n")

    def test_dot_line_at_byte_16384_with_bare_lf(self):
        head = b"Subject: edge\n\n"
        filler = b"b" * (16384 - len(head) - 1) + b"\n"
        message = head + filler + b".\nafter\n"
        self.assertEqual(message.index(b"\n.\n") + 1, 16384)
        expected = message.replace(b"\n", b"\r\n").replace(b"\r\n.\r\n", b"\r\n..\r\n")
        self.assertEqual(self.retr(message),
                         b"+OK %d octets\r\n" % len(message.replace(b"\n", b"\r\n"))
                         + expected + b".\r\n")

    def test_every_chunk_boundary_near_a_dot(self):
        for offset in range(16380, 16390):
            body = b"c" * (offset - 2) + b"\r\n.x\r\n"
            reply = self.retr(body)
            self.assertEqual(reply, b"+OK %d octets\r\n" % len(body)
                             + body.replace(b"\r\n.x", b"\r\n..x") + b".\r\n")

    def test_bare_lf_message(self):
        self.assertEqual(self.retr(b"Subject: lf\n\nline\n.\n..two\nend\n"),
                         b"+OK 36 octets\r\nSubject: lf\r\n\r\nline\r\n..\r\n...two\r\nend\r\n"
                         b".\r\n")

    def test_crlf_message_is_not_doubled(self):
        message = b"Subject: crlf\r\n\r\nline\r\n"
        self.assertEqual(self.retr(message), b"+OK %d octets\r\n" % len(message)
                         + message + b".\r\n")

    def test_bare_cr_and_mixed(self):
        self.assertEqual(self.retr(b"A: 1\r\rb\r\nc\n\rd"),
                         b"+OK 19 octets\r\nA: 1\r\n\r\nb\r\nc\r\n\r\nd\r\n.\r\n")

    def test_no_final_newline(self):
        self.assertEqual(self.retr(b"Subject: x\r\n\r\nlast"),
                         b"+OK 20 octets\r\nSubject: x\r\n\r\nlast\r\n.\r\n")

    def test_leading_dot(self):
        self.assertEqual(self.retr(b".starts with dot\r\n"),
                         b"+OK 18 octets\r\n..starts with dot\r\n.\r\n")

    def test_empty_message(self):
        self.assertEqual(self.retr(b""), b"+OK 0 octets\r\n.\r\n")

    def test_large_message_exact(self):
        lines = [b".line %d" % i if i % 7 == 0 else b"line %d" % i for i in range(20000)]
        message = b"Subject: big\n\n" + b"\n".join(lines) + b"\n"
        normal = message.replace(b"\n", b"\r\n")
        reply = self.retr(message)
        head, _, rest = reply.partition(b"\r\n")
        self.assertEqual(head, b"+OK %d octets" % len(normal))
        self.assertTrue(rest.endswith(b"\r\n.\r\n"))
        self.assertEqual(rest[:-3].replace(b"\r\n..", b"\r\n."), normal)

    def test_top_over_bare_lf_and_dots(self):
        message = b"Subject: t\nX: y\n\n.one\ntwo\nthree\n"
        self.assertEqual(self.retr(message, b"TOP 1 2"),
                         b"+OK top of message follows\r\nSubject: t\r\nX: y\r\n\r\n"
                         b"..one\r\ntwo\r\n.\r\n")
        self.assertEqual(self.retr(message, b"TOP 1 99"),
                         b"+OK top of message follows\r\nSubject: t\r\nX: y\r\n\r\n"
                         b"..one\r\ntwo\r\nthree\r\n.\r\n")

    def test_top_without_body(self):
        self.assertEqual(self.retr(b"Subject: only\r\nX: y", b"TOP 1 5"),
                         b"+OK top of message follows\r\nSubject: only\r\nX: y\r\n.\r\n")

    def test_top_headers_beyond_first_chunk(self):
        header = b"X-Long: " + b"h" * 20000 + b"\r\n"
        message = header + b"\r\nbody 1\r\nbody 2\r\n"
        self.assertEqual(self.retr(message, b"TOP 1 1"),
                         b"+OK top of message follows\r\n" + header + b"\r\nbody 1\r\n.\r\n")


class RetrievalProducerTests(RetrievalTests):
    """
    The same retrievals through the producer path (answers over
    DIRECT_WRITE, or after FLUSH_EVERY bytes written at once): the 16 KiB
    chunk edges of FileSender must not matter there either.
    """

    def setUp(self):
        RetrievalTests.setUp(self)
        from zwms.pop3 import server as server_module
        self.patch(server_module, "DIRECT_WRITE", 0)


class DirectWriteTests(SynchronousTestCase):
    """Issue 8: small answers written at once, but never unbounded."""

    def setUp(self):
        self.services = new_services(self.mktemp())
        self.factory = POP3Factory(self.services, run_blocking=synchronous)
        self.mbox = FakeMailbox([b"m" * 1000 + b"\r\n"] * 3000)
        self.factory.open_mailbox = lambda account: self.mbox
        self.client = Client(self.factory)
        self.client.take()
        self.client.talk(LOGIN)

    def test_pipelined_retrs_wait_for_the_transport_after_a_megabyte(self):
        from zwms.pop3 import server as server_module
        self.client.proto.dataReceived(b"".join(b"RETR %d\r\n" % i for i in range(1, 3001)))
        out = self.client.transport.value()
        answered = out.count(b"octets\r\n")
        # Written at once up to FLUSH_EVERY, then one answer through the
        # producer, which holds the rest until the transport asks for more.
        each = len(b"+OK 1002 octets\r\n") + 1005
        self.assertEqual(answered, server_module.FLUSH_EVERY // each + 1)
        self.assertIsNotNone(self.client.transport.producer)
        self.assertLess(len(out), server_module.FLUSH_EVERY + 2 * each)
        self.client.settle()
        self.assertEqual(self.client.transport.value().count(b"octets\r\n"), 3000)
        self.assertEqual(len(self.mbox.retrieved), 3000)

    def test_idle_timeout_after_direct_writes_aborts(self):
        self.client.talk(b"RETR 1\r\n")
        self.services.clock.advance(600)
        self.assertTrue(self.client.transport.disconnected, "aborted, not a graceful close")


class _Reader(protocol.Protocol):
    """A client over a real socket: collects bytes, fires when the server closes."""

    def __init__(self):
        self.data = []
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.data.append(data)

    def connectionLost(self, reason):
        self.done.callback(b"".join(self.data))


class RealSocketTests(TestCase):
    """
    Issue 8: on a plain TCP connection answers go to the socket at once
    (C{POP3Server._write}); what the socket does not take waits in
    Twisted's buffer, in order, and a client that does not read still makes
    the server hold at most about FLUSH_EVERY bytes.
    """

    def setUp(self):
        from twisted.internet import reactor
        self.reactor = reactor
        self.services = new_services(self.mktemp())
        self.factory = POP3Factory(self.services, run_blocking=synchronous)
        self.servers = []
        build = self.factory.buildProtocol

        def building(addr):
            p = build(addr)
            self.servers.append(p)
            return p

        self.factory.buildProtocol = building
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    def connect(self, messages):
        self.mbox = FakeMailbox(messages)
        self.factory.open_mailbox = lambda account: self.mbox
        client = protocol.ClientCreator(self.reactor, _Reader)
        return client.connectTCP("127.0.0.1", self.port)

    def expected(self, messages):
        out = [b"+OK zWMS POP3 server ready\r\n", b"+OK send PASS\r\n",
               b"+OK maildrop has %d messages\r\n" % len(messages)]
        for m in messages:
            out.append(b"+OK %d octets\r\n" % len(m) + m + b".\r\n")
        out.append(b"+OK zWMS POP3 server signing off\r\n")
        return b"".join(out)

    def held(self):
        """Bytes the server's transport holds in its own buffer."""
        t = self.servers[0].transport
        return len(t.dataBuffer) - t.offset + t._tempDataLen

    @defer.inlineCallbacks
    def test_pipelined_answers_exact(self):
        messages = [b"Subject: %d\r\n\r\n" % i + b"z" * (i * 997 % 60000) + b"\r\n"
                    for i in range(60)]
        reader = yield self.connect(messages)
        reader.transport.write(LOGIN + b"".join(b"RETR %d\r\n" % i for i in range(1, 61))
                               + b"QUIT\r\n")
        data = yield reader.done
        self.assertEqual(data, self.expected(messages))
        self.assertEqual(self.mbox.retrieved, list(range(60)))

    @defer.inlineCallbacks
    def test_small_answers_bypass_the_transport_buffer(self):
        messages = [b"Subject: small\r\n\r\n" + b"s" * 1000 + b"\r\n"] * 20
        reader = yield self.connect(messages)
        reader.transport.write(LOGIN)
        while len(b"".join(reader.data)) < 60:
            yield task.deferLater(self.reactor, 0.01, lambda: None)
        buffered = []
        transport = self.servers[0].transport
        write = transport.write
        transport.write = lambda data: (buffered.append(data), write(data))
        reader.transport.write(b"".join(b"RETR %d\r\n" % i for i in range(1, 21)) + b"QUIT\r\n")
        data = yield reader.done
        self.assertEqual(data, self.expected(messages))
        self.assertEqual(buffered, [])

    @defer.inlineCallbacks
    def test_client_not_reading_holds_bounded_memory(self):
        from zwms.pop3 import server as server_module
        each = b"x" * 40000 + b"\r\n"
        messages = [each] * 1000       # 40 MB asked for, far beyond the socket buffers
        reader = yield self.connect(messages)
        reader.transport.pauseProducing()
        reader.transport.write(LOGIN + b"".join(b"RETR %d\r\n" % i for i in range(1, 1001))
                               + b"QUIT\r\n")
        # Wait until the server stops: its answer is waiting on the producer.
        for _ in range(200):
            yield task.deferLater(self.reactor, 0.02, lambda: None)
            if self.servers and self.servers[0]._sender is not None:
                break
        server = self.servers[0]
        self.assertIsNotNone(server._sender)
        yield task.deferLater(self.reactor, 0.2, lambda: None)
        self.assertLess(self.held(), server_module.FLUSH_EVERY + 2 * len(each) + 100)
        self.assertLess(len(self.mbox.retrieved), 1000)
        reader.transport.resumeProducing()
        data = yield reader.done
        self.assertEqual(data, self.expected(messages))
        self.assertEqual(len(self.mbox.retrieved), 1000)


class WireTests(SynchronousTestCase):
    """zwms.pop3.wire on its own."""

    @given(st.binary(max_size=300))
    def test_wire_size_is_normalised_length(self, data):
        self.assertEqual(wire.wire_size(data), len(wire.normalise(data)))

    @given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"x."]), max_size=60))
    def test_unstuffing_gives_back_the_normalised_message(self, parts):
        data = b"".join(parts)
        normal = wire.normalise(data)
        self.assertNotIn(b"\n", normal.replace(b"\r\n", b""))
        self.assertNotIn(b"\r", normal.replace(b"\r\n", b""))
        out = wire.to_wire(normal)
        # A client reads lines up to a lone "." and unstuffs the rest.
        lines = out.split(b"\r\n")
        self.assertEqual(lines[-2:], [b".", b""])
        body = [ln[1:] if ln.startswith(b".") else ln for ln in lines[:-2]]
        self.assertNotIn(b".", lines[:-2])
        self.assertEqual(b"".join(ln + b"\r\n" for ln in body), normal)

    def test_normalise_idempotent(self):
        data = b"a\rb\nc\r\n\r\r\n"
        self.assertEqual(wire.normalise(wire.normalise(data)), wire.normalise(data))
        self.assertEqual(wire.normalise(data), b"a\r\nb\r\nc\r\n\r\n\r\n")

    def test_unique_id(self):
        self.assertEqual(wire.unique_id("000000000001.eml"), b"000000000001.eml")
        odd = wire.unique_id("with space.eml")
        self.assertEqual(len(odd), 40)
        self.assertEqual(odd, wire.unique_id("with space.eml"))
        self.assertEqual(len(wire.unique_id("x" * 71)), 40)

    def test_real_mailbox_provides_the_interface(self):
        verifyObject(IZWMSMailbox, POP3Mailbox(object(), "alice", []))
