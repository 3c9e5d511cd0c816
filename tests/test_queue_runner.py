"""
The queue runner end to end on 127.0.0.0/8: a DNS world (DNS1 in zwms.cfg),
a scriptable SMTP sink, a real spool, task.Clock for backoff and expiry.
"""

import email
import os

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from zwms import logs as ch
from zwms import replies
from zwms.account import Resolution
from zwms.config import Settings
from zwms.home import Home
from zwms.logs import MemoryLogs
from zwms.queue.mx import MXResolver
from zwms.queue.runner import BACKOFF, QueueRunner
from zwms.queue.spool import BOUNCED, EXPIRED, SENT, Spool, run_now
from zwms.services import Services
from zwms.store.memory import MemoryMailStore

from tests.dnsworld import DNSWorld, write_dns_config
from tests.smtpsink import SMTPSink

MESSAGE = b"From: alice@sender.test\r\nTo: bob@far.test\r\nSubject: hi\r\n\r\nhello\r\n"


class Directory:
    """alice@here.test is a local account; everything else is elsewhere."""

    def resolve(self, address):
        if address.lower() == "alice@here.test":
            return Resolution("local", ("alice",))
        return Resolution("foreign")


class RunnerTestBase(TestCase):
    def setUp(self):
        self.sink = SMTPSink().start()
        self.addCleanup(lambda: self.sink.stop())
        w = self.dns = DNSWorld(["far.test", "nomx.test", "sender.test", "loop.test",
                                 "gone.test", "limited.test", "dead.test"])
        for zone in ("far.test", "sender.test", "limited.test"):
            w.mx(zone, 10, "mx." + zone)
            w.a("mx." + zone, "127.0.0.1")
        w.a("nomx.test", "127.0.0.1")
        w.mx("loop.test", 10, "mx.loop.test")
        w.a("mx.loop.test", "127.0.0.9")
        # dead.test: the best MX refuses connections, the second one works
        w.mx("dead.test", 5, "mx0.dead.test")
        w.a("mx0.dead.test", "127.0.0.2")
        w.mx("dead.test", 10, "mx1.dead.test")
        w.a("mx1.dead.test", "127.0.0.1")
        w.start()
        self.addCleanup(w.stop)
        self.home = Home(self.mktemp())
        self.home.create()
        write_dns_config(self.home, w)
        with open(self.home.env_cfg, "w") as f:
            f.write("DOMAIN=here.test\nLIMITDOMAINS=limited.test\n")
        self.settings = Settings(self.home)
        self.logs = MemoryLogs()
        self.mail = MemoryMailStore()
        self.services = Services(home=self.home, settings=self.settings, accounts=None,
                                 directory=Directory(), mail=self.mail, logs=self.logs,
                                 relay_memory=None, clock=reactor)
        self.clock = task.Clock()
        self.clock.advance(1700000000)
        self.runner = self.make_runner()

    def make_runner(self, **kwargs):
        runner = QueueRunner(
            self.services, Spool(self.home), self.clock,
            MXResolver(self.settings, timeout=2, lifetime=4), reactor.connectTCP,
            port=self.sink.port, own_addresses={"127.0.0.9"}, loopback_is_me=False,
            threads=run_now, timeout=10, connect_timeout=5, tls_context=None, **kwargs)
        self.addCleanup(runner.stop)
        return runner

    @defer.inlineCallbacks
    def run_queue(self, runner=None):
        """Run everything due now (bounces queued on the way too)."""
        runner = runner or self.runner
        for _ in range(4):
            self.clock.advance(0)
            yield runner.when_idle()
        yield self.sink.quiet()

    def queued(self):
        return sorted(n for n in os.listdir(self.home.queue) if n.endswith(".json"))

    def lines(self, channel=ch.MAILSERVER):
        return self.logs.lines[channel]

    def logged(self, text, channel=ch.MAILSERVER):
        return [l for l in self.lines(channel) if l.startswith(text)]

    def bounces(self):
        """Bounces that reached the sink (MAIL FROM:<>), parsed."""
        return [email.message_from_bytes(tx.data) for tx in self.sink.transactions
                if tx.sender == ""]


class DeliveryTests(RunnerTestBase):
    @defer.inlineCallbacks
    def test_delivered_and_removed(self):
        yield self.runner.start()
        msg_id = yield self.runner.enqueue("alice@sender.test", ["bob@far.test"], MESSAGE)
        self.assertEqual(self.queued(), [msg_id + ".json"])  # durable before it fires
        yield self.run_queue()
        [tx] = self.sink.transactions
        self.assertEqual((tx.sender, tx.recipients, tx.data),
                         ("alice@sender.test", ["bob@far.test"], MESSAGE))
        self.assertEqual(self.queued(), [])
        self.assertEqual(len(self.logged(replies.LOG_CATCH_SEND)), 1)
        self.assertEqual(len(self.logged(replies.LOG_CONNECTING)), 1)
        self.assertEqual(self.logged(replies.LOG_NORMAL_PARTIAL_SUCCESS),
                         ["Normal Mail send partial success bob@far.test"])
        self.assertTrue(any("1 sent" in l for l in self.lines(ch.SYSTEMSTATUS)))

    @defer.inlineCallbacks
    def test_a_fallback_and_several_domains(self):
        yield self.runner.start()
        yield self.runner.enqueue("alice@sender.test", ["x@nomx.test", "y@far.test"], MESSAGE)
        yield self.run_queue()
        got = sorted(r for tx in self.sink.transactions for r in tx.recipients)
        self.assertEqual(got, ["x@nomx.test", "y@far.test"])
        self.assertEqual(self.queued(), [])

    @defer.inlineCallbacks
    def test_next_mx_when_the_best_cannot_be_reached(self):
        yield self.runner.start()
        yield self.runner.enqueue("alice@sender.test", ["x@dead.test"], MESSAGE)
        yield self.run_queue()
        self.assertEqual(self.sink.transactions[0].recipients, ["x@dead.test"])
        self.assertEqual(len(self.logged(replies.LOG_CANNOT_CONNECT)), 1)
        self.assertEqual(len(self.logged(replies.LOG_CONNECTING)), 2)

    @defer.inlineCallbacks
    def test_auto_mail_success_line(self):
        yield self.runner.start()
        yield self.runner.enqueue("", ["bob@far.test"], MESSAGE, auto=True)
        yield self.run_queue()
        self.assertEqual(self.logged(replies.LOG_AUTO_PARTIAL_SUCCESS),
                         ["Auto Mail send partial success bob@far.test"])


class RetryTests(RunnerTestBase):
    @defer.inlineCallbacks
    def test_retry_after_4xx_with_backoff(self):
        self.sink.script.rcpt["bob@far.test"] = (451, "4.3.0 Try again later")
        yield self.runner.start()
        msg_id = yield self.runner.enqueue("alice@sender.test", ["bob@far.test"], MESSAGE)
        yield self.run_queue()
        env = self.runner.envelopes[msg_id]
        self.assertEqual(env.recipients[0].state, "pending")
        self.assertEqual(env.recipients[0].reply, "451 4.3.0 Try again later")
        self.assertEqual(env.next_attempt, self.clock.seconds() + BACKOFF[0])
        self.assertEqual(self.sink.transactions, [])
        # Not before the backoff...
        self.clock.advance(BACKOFF[0] - 1)
        yield self.runner.when_idle()
        self.assertEqual(len(self.logged(replies.LOG_CATCH_SEND)), 1)
        # ...then again, and this time it goes.
        del self.sink.script.rcpt["bob@far.test"]
        self.clock.advance(1)
        yield self.runner.when_idle()
        yield self.sink.quiet()
        self.assertEqual(len(self.sink.transactions), 1)
        self.assertEqual(self.queued(), [])

    @defer.inlineCallbacks
    def test_lost_answer_after_data_is_sent_again(self):
        """At least once: the remote got it but we never heard its 250."""
        self.sink.script.drop_after_period = True
        yield self.runner.start()
        msg_id = yield self.runner.enqueue("alice@sender.test", ["bob@far.test"], MESSAGE)
        yield self.run_queue()
        self.assertEqual(self.runner.envelopes[msg_id].recipients[0].state, "pending")
        self.assertEqual(len(self.logged(replies.LOG_CANNOT_TALK)), 1)
        self.sink.script.drop_after_period = False
        self.clock.advance(BACKOFF[0])
        yield self.runner.when_idle()
        yield self.sink.quiet()
        self.assertEqual(len(self.sink.transactions), 2)
        self.assertEqual(self.queued(), [])

    @defer.inlineCallbacks
    def test_expiry_bounces_with_time_over(self):
        self.sink.script.rcpt["bob@far.test"] = (451, "4.3.0 Try again later")
        runner = self.runner = self.make_runner(lifetime=3 * 3600)
        yield runner.start()
        msg_id = yield runner.enqueue("alice@sender.test", ["bob@far.test"], MESSAGE)
        yield self.run_queue()
        for _ in range(12):
            if msg_id not in runner.envelopes:
                break
            self.clock.advance(runner.envelopes[msg_id].next_attempt - self.clock.seconds())
            yield self.run_queue()
        self.assertNotIn(msg_id, runner.envelopes)
        self.assertEqual(len(self.logged(replies.LOG_TIME_OVER)), 1)
        [bounce] = self.bounces()
        self.assertEqual(self.sink.transactions[-1].recipients, ["alice@sender.test"])
        text = bounce.get_payload()[0].get_payload(decode=True).decode("utf-8")
        self.assertIn(replies.BOUNCE_TIME_OVER, text)
        self.assertIn("451 4.3.0 Try again later", text)
        status = bounce.get_payload()[1].get_payload()[1]
        self.assertEqual(status["Status"], "4.4.7")
        # attempts at 0, 60, 360, 1260, 3060, 6660, 10260 s; expiry at 10800 s
        self.assertEqual(len(self.logged(replies.LOG_CONNECTING)) - 1, 7)
        self.assertEqual(self.clock.seconds() - 1700000000, 10800)


class BounceTests(RunnerTestBase):
    @defer.inlineCallbacks
    def test_5xx_bounces_to_a_remote_sender(self):
        self.sink.script.rcpt["nobody@far.test"] = (550, "5.1.1 No such user here")
        yield self.runner.start()
        yield self.runner.enqueue("alice@sender.test", ["nobody@far.test", "bob@far.test"],
                                  MESSAGE)
        yield self.run_queue()
        self.assertEqual(self.queued(), [])
        [bounce] = self.bounces()
        [tx] = [t for t in self.sink.transactions if t.sender == ""]
        self.assertEqual(tx.recipients, ["alice@sender.test"])
        self.assertEqual(bounce["From"], "MAILER-DAEMON@here.test")
        self.assertEqual(bounce.get_content_type(), "multipart/report")
        self.assertEqual(bounce.get_param("report-type"), "delivery-status")
        human, status, original = bounce.get_payload()
        self.assertIn("550 5.1.1 No such user here", human.get_payload(decode=True).decode())
        self.assertIn("<nobody@far.test>", human.get_payload(decode=True).decode())
        self.assertNotIn("bob@far.test", human.get_payload(decode=True).decode())
        blocks = status.get_payload()
        self.assertEqual(blocks[0]["Reporting-MTA"], "dns; here.test")
        self.assertEqual(blocks[1]["Final-Recipient"], "rfc822; nobody@far.test")
        self.assertEqual(blocks[1]["Status"], "5.1.1")
        self.assertEqual(blocks[1]["Action"], "failed")
        self.assertEqual(original.get_content_type(), "message/rfc822")
        self.assertEqual(original.get_payload()[0]["Subject"], "hi")
        self.assertEqual(len(self.logged(replies.LOG_NORMAL_PARTIAL_SUCCESS)), 1)

    @defer.inlineCallbacks
    def test_no_mx_bounce_reason(self):
        yield self.runner.start()
        yield self.runner.enqueue("alice@sender.test", ["x@nothere.gone.test"], MESSAGE)
        yield self.run_queue()
        self.assertEqual(len(self.logged(replies.LOG_NO_MX)), 1)
        [bounce] = self.bounces()
        self.assertIn(replies.BOUNCE_NO_MX,
                      bounce.get_payload()[0].get_payload(decode=True).decode())
        self.assertEqual(bounce.get_payload()[1].get_payload()[1]["Status"], "5.1.2")

    @defer.inlineCallbacks
    def test_temporary_dns_failure_retries(self):
        self.dns.fail("gone.test")
        yield self.runner.start()
        msg_id = yield self.runner.enqueue("alice@sender.test", ["x@gone.test"], MESSAGE)
        yield self.run_queue()
        self.assertEqual(self.runner.envelopes[msg_id].recipients[0].state, "pending")
        self.assertEqual(self.bounces(), [])

    @defer.inlineCallbacks
    def test_limited_domain_never_contacted(self):
        yield self.runner.start()
        yield self.runner.enqueue("alice@sender.test", ["x@limited.test", "y@sub.limited.test"],
                                  MESSAGE)
        yield self.run_queue()
        self.assertEqual(len(self.logged(replies.LOG_LIMITED_DOMAIN)), 2)
        self.assertEqual(self.logged(replies.LOG_CONNECTING + " mx.limited"), [])
        [bounce] = self.bounces()
        text = bounce.get_payload()[0].get_payload(decode=True).decode()
        self.assertIn(replies.BOUNCE_LIMITED_DOMAIN, text)

    @defer.inlineCallbacks
    def test_loop_back_to_me(self):
        yield self.runner.start()
        yield self.runner.enqueue("alice@sender.test", ["x@loop.test"], MESSAGE)
        yield self.run_queue()
        self.assertEqual(self.logged(replies.LOG_LOOPS_BACK), ["mail loops back to me loop.test"])
        [bounce] = self.bounces()
        self.assertIn("551 Error. Mail loops back to me by MX problem",
                      bounce.get_payload()[0].get_payload(decode=True).decode())

    @defer.inlineCallbacks
    def test_local_sender_gets_bounce_in_mailbox(self):
        self.sink.script.rcpt["nobody@far.test"] = (550, "5.1.1 No such user")
        yield self.runner.start()
        yield self.runner.enqueue("alice@here.test", ["nobody@far.test"], MESSAGE)
        yield self.run_queue()
        [info] = self.mail.messages("alice")
        bounce = email.message_from_bytes(self.mail.read("alice", "Inbox", info.name))
        self.assertEqual(bounce.get_content_type(), "multipart/report")
        self.assertEqual(self.queued(), [])

    @defer.inlineCallbacks
    def test_no_bounce_for_a_bounce(self):
        self.sink.script.rcpt["nobody@far.test"] = (550, "5.1.1 No such user")
        yield self.runner.start()
        yield self.runner.enqueue("", ["nobody@far.test"], MESSAGE, auto=True)
        yield self.runner.enqueue("alice@sender.test", ["nobody@far.test"], MESSAGE, auto=True)
        yield self.run_queue()
        self.assertEqual(self.bounces(), [])
        self.assertEqual(self.queued(), [])

    @defer.inlineCallbacks
    def test_automailcancel_stops_bounces(self):
        self.settings.set("AUTOMAILCANCEL", "1")
        self.sink.script.rcpt["nobody@far.test"] = (550, "5.1.1 No such user")
        yield self.runner.start()
        yield self.runner.enqueue("alice@sender.test", ["nobody@far.test"], MESSAGE)
        yield self.run_queue()
        self.assertEqual(self.bounces(), [])
        self.assertEqual(self.queued(), [])


class RestartTests(RunnerTestBase):
    @defer.inlineCallbacks
    def test_new_runner_resumes_the_queue(self):
        # Queued, then the server stopped before it was due.
        first = self.runner
        msg_id = yield first.enqueue("alice@sender.test", ["bob@far.test"], MESSAGE)
        yield first.stop()
        self.assertEqual(self.sink.transactions, [])
        second = self.make_runner()
        resumed = yield second.start()
        self.assertEqual(resumed, 1)
        self.assertIn(msg_id, second.envelopes)
        yield self.run_queue(second)
        self.assertEqual(self.sink.transactions[0].data, MESSAGE)
        self.assertEqual(self.queued(), [])

    @defer.inlineCallbacks
    def test_owed_bounce_is_sent_after_restart(self):
        """A recipient recorded bounced but not notified still gets its DSN."""
        spool = Spool(self.home)
        env = spool.enqueue("alice@sender.test", ["x@far.test", "y@far.test"], MESSAGE,
                            now=self.clock.seconds())
        env.recipients[0].state = BOUNCED
        env.recipients[0].reply = "550 5.1.1 gone"
        env.recipients[1].state = SENT
        env.recipients[1].notified = True
        spool.update(env)
        yield self.runner.start()
        yield self.run_queue()
        [bounce] = self.bounces()
        self.assertEqual(bounce.get_payload()[1].get_payload()[1]["Final-Recipient"],
                         "rfc822; x@far.test")
        self.assertEqual(self.queued(), [])

    @defer.inlineCallbacks
    def test_crash_leftovers_swept_at_start(self):
        spool = Spool(self.home)
        env = spool.enqueue("alice@sender.test", ["x@far.test"], MESSAGE)
        os.unlink(os.path.join(self.home.queue, env.id + ".json"))
        resumed = yield self.runner.start()
        self.assertEqual(resumed, 0)
        self.assertEqual(os.listdir(self.home.queue), [])
        self.assertTrue(any("recovery" in l for l in self.lines(ch.SYSTEMSTATUS)))
