"""
The routing service (zwms.routing.router.Router): local copies, queued
remote copies, forwarding (SPEC S4: copy and notice, AUTOMAILCANCEL),
representative addresses, durability order; and the welcome message (S5)
sent by ops.user_add.
"""

import email
import email.policy
import os

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from tests.test_relay import with_queue
from tests.test_smtp_support import stored
from zwms.admin import ops
from zwms.logs import MemoryLogs
from zwms.routing.router import Target
from zwms.store import passwords

DATA = b"Received: by test\r\nFrom: Bob <bob@remote.example>\r\nSubject: Hello\r\n\r\nhi\r\n"


class RouterBase(SynchronousTestCase):
    def setUp(self):
        self.services = with_queue(self)
        self.queue = self.services.queue
        self.router = self.services.router

    def route(self, targets, sender="bob@remote.example", **kw):
        return self.successResultOf(self.router.route(sender, targets, DATA, "test", **kw))


class RouteTests(RouterBase):
    def test_local_gets_return_path(self):
        result = self.route(["alice@example.com"])
        self.assertEqual(stored(self.services), [b"Return-Path: <bob@remote.example>\r\n" + DATA])
        self.assertEqual(len(result.stored), 1)
        self.assertEqual(self.queue.entries, [])

    def test_remote_queued_once_deduplicated(self):
        result = self.route(["carol@far.example", "CAROL@far.example", "dan@far.example"])
        self.assertEqual(self.queue.entries,
                         [("bob@remote.example", ["carol@far.example", "dan@far.example"],
                           DATA, False, "test")])
        self.assertEqual(result.queued, ["q1"])

    def test_unknown_local_refused(self):
        f = self.failureResultOf(self.router.route("", ["nobody@example.com"], DATA))
        self.assertEqual(f.value.code, 550)

    def test_queue_failure_stores_nothing_locally(self):
        self.queue.enqueue = lambda *a, **k: defer.fail(OSError("disk full"))
        d = self.router.route("bob@remote.example", ["alice@example.com", "carol@far.example"],
                              DATA)
        self.failureResultOf(d, OSError)
        # Queue first, then mailboxes: the client retries, nothing is half done.
        self.assertEqual(stored(self.services), [])


class ForwardTests(RouterBase):
    def set(self, key, value, aid="alice"):
        self.services.accounts.set(aid, key, value)

    def test_copy_to_remote_uses_account_address_as_sender(self):
        self.set("forward", "alice@far.example")
        self.set("forwardmode", "copy")
        self.route([Target("alice@example.com", ("alice",))])
        self.assertEqual(len(stored(self.services)), 1)
        self.assertEqual(self.queue.entries,
                         [("alice@example.com", ["alice@far.example"], DATA, False,
                           "forward alice")])

    def test_copy_to_local(self):
        self.set("forward", "bob@example.com")
        self.set("forwardmode", "copy")
        self.route(["alice@example.com"])
        self.assertEqual(len(stored(self.services, "bob")), 1)
        self.assertEqual(self.queue.entries, [])

    def test_copy_not_twice_when_target_also_recipient(self):
        self.set("forward", "bob@example.com")
        self.set("forwardmode", "copy")
        self.route(["alice@example.com", "bob@example.com"])
        self.assertEqual(len(stored(self.services, "bob")), 1)

    def test_forward_is_one_level(self):
        self.set("forward", "bob@example.com")
        self.set("forwardmode", "copy")
        self.set("forward", "alice@example.com", aid="bob")
        self.set("forwardmode", "copy", aid="bob")
        self.route(["alice@example.com"])
        self.assertEqual(len(stored(self.services, "alice")), 1)
        self.assertEqual(len(stored(self.services, "bob")), 1)

    def test_notice_to_remote(self):
        self.set("forward", "alice@far.example")
        self.route(["alice@example.com"])
        self.assertEqual(len(stored(self.services)), 1)
        [(sender, rcpts, data, auto, origin)] = self.queue.entries
        self.assertEqual((sender, rcpts, auto, origin),
                         ("", ["alice@far.example"], True, "notice alice"))
        msg = email.message_from_bytes(data)
        self.assertEqual(msg["Subject"], "[zWMS] new mail from Bob <bob@remote.example>")
        self.assertEqual(msg["From"], "zWMS <MAILER-DAEMON@example.com>")
        self.assertEqual(msg["Auto-Submitted"], "auto-generated")
        self.assertIn("Subject: Hello", msg.get_payload())
        self.assertNotIn(b"hi\r\n", data.split(b"\r\n\r\n", 1)[1])

    def test_notice_to_local(self):
        self.set("forward", "bob@example.com")
        self.route(["alice@example.com"])
        [notice] = stored(self.services, "bob")
        self.assertTrue(notice.startswith(b"Return-Path: <>\r\n"))
        self.assertIn(b"[zWMS] new mail from", notice)

    def test_automailcancel_and_bounces_get_no_notice(self):
        self.set("forward", "alice@far.example")
        self.services.settings.set("AUTOMAILCANCEL", "1")
        self.route(["alice@example.com"])
        self.services.settings.set("AUTOMAILCANCEL", "0")
        self.route(["alice@example.com"], sender="")
        self.assertEqual(self.queue.entries, [])
        self.assertEqual(len(stored(self.services)), 2)

    def test_no_queue_copy_logged(self):
        self.services.queue = None
        self.set("forward", "alice@far.example")
        self.set("forwardmode", "copy")
        self.route(["alice@example.com"])
        self.assertEqual(len(stored(self.services)), 1)
        self.assertIn("Forward of alice to <alice@far.example> not possible (foreign)",
                      self.services.logs.lines["SystemError"])


class WelcomeTests(SynchronousTestCase):
    def setUp(self):
        passwords.use_test_hasher()
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.ctx = ops.open_home(self.root, actor="tester")
        self.addCleanup(self.ctx.close)
        self.ctx.logs = MemoryLogs()
        ops.config_set(self.ctx, "DOMAIN", "example.com")

    def inbox(self, aid):
        return [self.ctx.mail.read(aid, "Inbox", m.name)
                for m in self.ctx.mail.messages(aid, "Inbox")]

    def test_nothing_sent_while_empty(self):
        ops.user_add(self.ctx, "alice", "pw")
        self.assertEqual(self.inbox("alice"), [])
        ops.welcome_set(self.ctx, "   \n")
        ops.user_add(self.ctx, "bob", "pw")
        self.assertEqual(self.inbox("bob"), [])
        self.assertEqual(ops.welcome_get(self.ctx), "")

    def test_welcome_delivered_to_new_accounts(self):
        ops.config_set(self.ctx, "ADMINID", "boss")
        ops.welcome_set(self.ctx, "Welcome to 회사\n\nHello and welcome.\nSecond line.\n")
        ops.user_add(self.ctx, "carol", "pw", address="carol@hosted.example")
        [data] = self.inbox("carol")
        self.assertTrue(data.startswith(b"Return-Path: <>\r\n"))
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(str(msg["Subject"]), "Welcome to 회사")
        self.assertEqual(msg["To"], "carol@hosted.example")
        self.assertEqual(msg["From"], "boss@example.com")
        self.assertEqual(msg.get_content().replace("\r\n", "\n"), "Hello and welcome.\nSecond line.\n")
        self.assertIn("tester: welcome message sent to carol", self.ctx.logs.lines["WebMail"])
        ops.welcome_set(self.ctx, "")
        ops.user_add(self.ctx, "dan", "pw")
        self.assertEqual(self.inbox("dan"), [])

    def test_failed_delivery_keeps_the_account(self):
        ops.welcome_set(self.ctx, "Hi\nbody\n")

        def broken(deliveries):
            raise OSError("disk full")
        self.ctx.deliver = broken
        ops.user_add(self.ctx, "erin", "pw")
        self.assertIsNotNone(self.ctx.accounts.get("erin"))
        self.assertIn("tester: welcome message to erin not delivered: disk full",
                      self.ctx.logs.lines["SystemError"])




class SendSleepTests(SynchronousTestCase):
    """SENDSLEEP (§11): ms per KB sent, after each delivering session."""

    def test_delay_per_kb(self):
        from twisted.internet import task
        from zwms.queue.client import Outcome
        from zwms.queue.runner import QueueRunner
        from zwms.queue.spool import Spool, run_now
        services = with_queue(self, "SENDSLEEP=100\n")
        clock = task.Clock()
        runner = QueueRunner(services, Spool(services.home), clock, None, None,
                             threads=run_now, tls_context=None)
        sent = Outcome("mx", "127.0.0.2", replies={"a@far.example": (250, "ok")})
        d = runner._send_sleep(sent, b"x" * 10240)
        self.assertNoResult(d)
        clock.advance(0.99)
        self.assertNoResult(d)
        clock.advance(0.02)
        self.successResultOf(d)
        refused = Outcome("mx", "127.0.0.2", replies={"a@far.example": (550, "no")})
        self.successResultOf(runner._send_sleep(refused, b"x" * 10240))
