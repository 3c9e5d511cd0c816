"""
P3 outlaw mail (SPEC §2) against a DNS world on 127.0.0.1 (tests/dnsworld.py):
SPF pass/fail/softfail/neutral/none/temperror, include:, MX and A matches at
each OUTLAWLEVEL, the `checked … IP` lines, PREOUTLAW, and what DNS
failures do.  Never the system resolver.
"""

from twisted.internet import defer, threads
from twisted.trial import unittest

from zwms import logs, replies
from zwms.policy import outlaw, verdict as v
from zwms.policy.facts import Config, Facts, Mail
from zwms.queue.mx import build_resolver
from tests.dnsworld import DNSWorld


def world():
    w = DNSWorld(["spf.test", "other.test", "mx.test", "a.test", "broken.test",
                  "none.test", "soft.test", "neutral.test"])
    w.txt("spf.test", "v=spf1 ip4:10.1.2.3 -all")
    w.txt("_spf.other.test", "v=spf1 ip4:10.5.0.0/16 -all")
    w.txt("other.test", "v=spf1 include:_spf.other.test -all")
    w.txt("soft.test", "v=spf1 ip4:10.1.2.3 ~all")
    w.txt("neutral.test", "v=spf1 ?all")
    w.mx("mx.test", 10, "mail.mx.test")
    w.a("mail.mx.test", "10.7.7.1")
    w.a("a.test", "10.8.8.8")
    w.a("none.test", "10.200.0.1")
    w.fail("broken.test")
    return w


class OutlawTests(unittest.TestCase):

    def setUp(self):
        self.world = world().start()
        self.addCleanup(self.world.stop)
        self.resolver = build_resolver([self.world.server], timeout=2, lifetime=4)

    def facts(self, ip, sender, level=3, reject=1, log=True, pre=False, helo="client.test"):
        config = Config(outlawreject=reject, outlawlevel=level, outlawlog=log,
                        preoutlaw=pre, domain="example.kr", adminid="boss")
        return Facts(config, Mail(ip, helo, sender), resolver=self.resolver)

    def examine(self, *args, **kw):
        return threads.deferToThread(outlaw.examine, self.facts(*args, **kw))

    def check(self, *args, **kw):
        return threads.deferToThread(outlaw.check_post, self.facts(*args, **kw))

    @defer.inlineCallbacks
    def test_spf_levels(self):
        """ip4:10.1.2.3 passes 10.1.2.99 from level 3 down, not at level 4."""
        cases = [("10.1.2.3", 4, "lawful"), ("10.1.2.99", 4, "outlaw"),
                 ("10.1.2.99", 3, "lawful"), ("10.1.9.9", 3, "outlaw"),
                 ("10.1.9.9", 2, "lawful"), ("10.9.9.9", 2, "outlaw"),
                 ("10.9.9.9", 1, "lawful"), ("11.1.2.3", 1, "outlaw")]
        for ip, level, expected in cases:
            state, notes, why = yield self.examine(ip, "a@spf.test", level=level)
            self.assertEqual((ip, level, state), (ip, level, expected), why)
            self.assertTrue(notes[0][1].startswith(replies.LOG_CHECKED_SPF + " spf.test " + ip))
            self.assertEqual(notes[0][0], logs.MAILBLOCK)

    @defer.inlineCallbacks
    def test_spf_include(self):
        state, notes, why = yield self.examine("10.5.77.1", "a@other.test", level=4)
        self.assertEqual(state, "lawful")
        self.assertIn("pass", notes[0][1])
        state, _, _ = yield self.examine("10.6.0.1", "a@other.test", level=3)
        self.assertEqual(state, "outlaw")

    @defer.inlineCallbacks
    def test_spf_results_logged(self):
        """fail, softfail, neutral and none are not a pass; each is logged."""
        for sender, result in (("a@spf.test", "fail"), ("a@soft.test", "softfail"),
                               ("a@neutral.test", "neutral"), ("a@a.test", "none")):
            state, notes, _ = yield self.examine("10.99.0.1", sender)
            self.assertEqual(state, "outlaw")
            self.assertIn(" %s" % result, notes[0][1])
            self.assertEqual([n[1].split(" IP ")[0] for n in notes],
                             [replies.LOG_CHECKED_SPF.rsplit(" IP", 1)[0],
                              replies.LOG_CHECKED_MX.rsplit(" IP", 1)[0],
                              replies.LOG_CHECKED_A.rsplit(" IP", 1)[0]])

    @defer.inlineCallbacks
    def test_mx_and_a_three_octets(self):
        state, notes, why = yield self.examine("10.7.7.200", "a@mx.test", level=4)
        self.assertEqual(state, "lawful")
        self.assertTrue(notes[-1][1].startswith(replies.LOG_CHECKED_MX))
        self.assertIn("match 10.7.7.1", notes[-1][1])
        state, _, _ = yield self.examine("10.7.8.1", "a@mx.test", level=1)
        self.assertEqual(state, "outlaw", "MX/A always compare three octets")
        state, notes, _ = yield self.examine("10.8.8.1", "a@a.test")
        self.assertEqual(state, "lawful")
        self.assertTrue(notes[-1][1].startswith(replies.LOG_CHECKED_A))

    @defer.inlineCallbacks
    def test_no_log_without_outlawlog(self):
        state, notes, _ = yield self.examine("10.99.0.1", "a@spf.test", log=False)
        self.assertEqual((state, notes), ("outlaw", []))

    @defer.inlineCallbacks
    def test_null_sender_uses_helo(self):
        state, _, _ = yield self.examine("10.8.8.9", "", helo="a.test")
        self.assertEqual(state, "lawful")
        state, _, why = yield self.examine("10.8.8.9", "", helo="[10.8.8.9]")
        self.assertEqual(state, "outlaw")
        self.assertIn("no sender domain", why)

    @defer.inlineCallbacks
    def test_refusal_texts(self):
        verdict = yield self.check("10.99.0.1", "a@spf.test")
        self.assertEqual((verdict.code, verdict.text), replies.looks_outlaw(
            "10.99.0.1", "boss@example.kr"))
        self.assertTrue(verdict.log.startswith(replies.LOG_RECEIVE_OUTLAW + " <a@spf.test>"))
        self.assertEqual(verdict.channel, logs.MAILBLOCK)
        self.assertEqual(len(verdict.notes), 3)
        pre = yield threads.deferToThread(
            outlaw.check_pre, self.facts("10.99.0.1", "a@spf.test", pre=True))
        self.assertTrue(pre.log.startswith(replies.LOG_SENDER_OUTLAW))
        # PREOUTLAW decides which of the two runs.
        post = yield threads.deferToThread(
            outlaw.check_post, self.facts("10.99.0.1", "a@spf.test", pre=True))
        self.assertEqual(post.action, v.CONTINUE)
        skipped = yield threads.deferToThread(
            outlaw.check_pre, self.facts("10.99.0.1", "a@spf.test", pre=False))
        self.assertEqual(skipped, v.go())

    @defer.inlineCallbacks
    def test_delegate_and_off(self):
        verdict = yield self.check("10.99.0.1", "a@spf.test", reject=2)
        self.assertEqual((verdict.action, verdict.marks), (v.CONTINUE, (v.OUTLAW,)))
        verdict = yield self.check("10.99.0.1", "a@spf.test", reject=0)
        self.assertEqual(verdict, v.go())
        verdict = yield self.check("10.1.2.3", "a@spf.test", reject=1)
        self.assertEqual((verdict.action, verdict.marks), (v.CONTINUE, ()))

    @defer.inlineCallbacks
    def test_servfail_is_never_a_refusal(self):
        """SERVFAIL: temperror; refuse mode answers 451 (try later), delegate passes."""
        state, notes, why = yield self.examine("10.99.0.1", "a@broken.test")
        self.assertEqual(state, "undecided")
        self.assertIn("temperror", notes[0][1])
        verdict = yield self.check("10.99.0.1", "a@broken.test", reject=1)
        self.assertEqual((verdict.code, verdict.text), v.OUTLAW_TRY_LATER)
        self.assertTrue(verdict.log.startswith(v.LOG_OUTLAW_UNDECIDED))
        verdict = yield self.check("10.99.0.1", "a@broken.test", reject=2)
        self.assertEqual((verdict.action, verdict.marks), (v.CONTINUE, ()))
        self.assertTrue(verdict.notes[-1][1].startswith(v.LOG_OUTLAW_UNDECIDED))

    @defer.inlineCallbacks
    def test_timeout_is_undecided(self):
        """A DNS server that does not answer: undecided, not outlaw."""
        from twisted.internet import reactor, protocol
        silent = reactor.listenUDP(0, protocol.DatagramProtocol(), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        self.resolver = build_resolver(["127.0.0.1:%d" % silent.getHost().port],
                                       timeout=0.3, lifetime=0.6)
        state, notes, why = yield self.examine("10.99.0.1", "a@spf.test")
        self.assertEqual(state, "undecided")
        self.assertIn("SPF/MX/A", why)

    @defer.inlineCallbacks
    def test_spf_lookup_replaced_not_system(self):
        """pyspf's lookup goes to our resolver; outside our calls it is pyspf's own."""
        import spf
        yield self.examine("10.1.2.3", "a@spf.test")
        self.assertIs(spf.DNSLookup, outlaw._dispatch)
        self.assertIsNot(outlaw._installed[0], outlaw._dispatch)
