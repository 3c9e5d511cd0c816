"""
Return-mail analysis (SPEC W8, Nmail VI) over tests/bouncecorpus: every
sample is shaped like a real bounce (Postfix, Exim, qmail, Sendmail,
XMail, Gmail, Naver, Daum/Paran, Yahoo, Exchange and our own
zwms.queue.dsn), with its expected category in expected.txt; "none" marks
mail that is not a bounce and must give None.  The samples after the
"# blind" line of expected.txt were written after the rules and are never
tuned for: their share is printed on its own.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from zwms import replies
from zwms.bounces import ADVICE, CATEGORIES, analyse, looks_like_bounce, rules
from zwms.queue import dsn
from zwms.queue.spool import Envelope, Recipient

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bouncecorpus")
#: The share of bounces that must be classified right.
FLOOR = 0.90


#: The share of the blind samples (written after the rules, never tuned for) that must
#: be right: a check that the rules generalise beyond the samples they were written with.
BLIND_FLOOR = 0.80


def corpus(blind_only=False):
    """(file, expected category, bytes); the samples after the "# blind" line are blind."""
    blind = False
    with open(os.path.join(CORPUS, "expected.txt"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("# blind"):
                blind = True
            if line.strip() and not line.startswith("#") and (blind or not blind_only):
                name, category = line.split()
                with open(os.path.join(CORPUS, name), "rb") as m:
                    yield name, category, m.read()


def score(samples):
    """(right, total, [misses]) of analyse() over bounce samples."""
    wrong = []
    for name, expected, data in samples:
        result = analyse(data)
        got = result.category if result else None
        if got != expected:
            wrong.append("%s: expected %s, got %s (%s)" % (
                name, expected, got, result.failures[0].reply if result else ""))
    return len(samples) - len(wrong), len(samples), wrong


class CorpusTests(SynchronousTestCase):
    def test_share_classified(self):
        bounces = [(n, c, d) for n, c, d in corpus() if c != "none"]
        self.assertGreaterEqual(len(bounces), 40)
        right, total, wrong = score(bounces)
        share = right / total
        print("\nbounce analysis: %d/%d classified correctly (%.1f%%)" % (
            right, total, share * 100))
        for line in wrong:
            print("  miss:", line)
        self.assertGreaterEqual(share, FLOOR, "\n".join(wrong))

    def test_share_classified_blind(self):
        blind = [(n, c, d) for n, c, d in corpus(blind_only=True) if c != "none"]
        self.assertGreaterEqual(len(blind), 10)
        right, total, wrong = score(blind)
        print("\nbounce analysis, blind samples: %d/%d classified correctly (%.1f%%)" % (
            right, total, 100.0 * right / total))
        for line in wrong:
            print("  miss:", line)
        self.assertGreaterEqual(right / total, BLIND_FLOOR, "\n".join(wrong))

    def test_sources_covered(self):
        """Samples from every kind of server issue 7 names."""
        names = " ".join(n for n, c, _ in corpus() if c != "none")
        for source in ("postfix", "exim", "qmail", "gmail", "naver", "daum", "yahoo",
                       "exchange", "o365", "outlookcom"):
            self.assertIn(source, names)

    def test_every_category_in_corpus(self):
        seen = {c for _, c, _ in corpus()}
        self.assertEqual(set(CATEGORIES) - seen, set())

    def test_cheap_header_test_misses_no_bounce(self):
        """The read page's header test lets every bounce of the corpus through."""
        missed = [n for n, c, d in corpus() if c != "none" and not looks_like_bounce(d)]
        self.assertEqual(missed, [])
        self.assertFalse(looks_like_bounce(b"From: a@b.test\r\nSubject: hello\r\n\r\nbody"))
        self.assertFalse(looks_like_bounce(
            b"From: MAILER-DAEMON@b.test\r\nSubject: Out of office\r\n\r\naway"))
        self.assertFalse(looks_like_bounce(b""))

    def test_not_bounces(self):
        others = [(n, d) for n, c, d in corpus() if c == "none"]
        self.assertGreaterEqual(len(others), 6)
        for name, data in others:
            self.assertIsNone(analyse(data), name)

    def test_recipient_found(self):
        """Every bounce names the failed recipient it was built for."""
        missing = []
        for name, category, data in corpus():
            if category == "none":
                continue
            result = analyse(data)
            if result is None or not result.recipients or "@" not in result.recipients[0]:
                missing.append(name)
        self.assertEqual(missing, [])


ORIGINAL = (b"From: alice@here.test\r\nTo: bob@far.test\r\nSubject: hello there\r\n"
            b"Message-ID: <1@here.test>\r\n\r\nbody\r\n")


def own_bounce(rcpts):
    env = Envelope(id="1700000000.0123456789abcdef", sender="alice@here.test", recipients=[],
                   created=1700000000, next_attempt=0, auto=False, origin="smtp 127.0.0.1")
    return dsn.build_bounce(env, rcpts, ORIGINAL, "here.test", 1700000100)


class OwnBounceTests(SynchronousTestCase):
    def test_fields(self):
        raw = own_bounce([Recipient("bob@far.test", state="bounced",
                                    step=replies.LOG_ALL_RCPT_ERROR,
                                    reply="550 5.1.1 <bob@far.test>: no such user", code=550,
                                    remote="mx.far.test [127.0.0.1]")])
        a = analyse(raw)
        self.assertEqual(a.kind, "dsn")
        self.assertEqual(a.recipients, ["bob@far.test"])
        f = a.failures[0]
        self.assertEqual((f.category, f.status, f.remote_mta), ("unknown_user", "5.1.1", "mx.far.test"))
        self.assertEqual(f.reply, "550 5.1.1 <bob@far.test>: no such user")
        self.assertEqual(a.reporting_mta, "here.test")
        self.assertEqual(a.original_subject, "hello there")
        self.assertEqual(a.original_message_id, "<1@here.test>")
        self.assertEqual(a.original_to, ["bob@far.test"])
        self.assertEqual(a.advice("en")[0], "Recipient does not exist")
        self.assertEqual(a.advice("ko")[0], "받는 사람이 존재하지 않음")

    def test_several_recipients_each_classified(self):
        raw = own_bounce([
            Recipient("a@far.test", state="bounced", step=replies.LOG_ALL_RCPT_ERROR,
                      reply="552 5.2.2 mailbox full", code=552),
            Recipient("b@nowhere.test", state="bounced", step=replies.LOG_NO_MX,
                      reason=replies.BOUNCE_NO_MX),
        ])
        a = analyse(raw)
        self.assertEqual([(f.recipient, f.category) for f in a.failures],
                         [("a@far.test", "mailbox_full"), ("b@nowhere.test", "bad_domain")])
        self.assertEqual(a.category, "mailbox_full")
        # our own numbered reason is what the user sees when no remote spoke
        self.assertEqual(a.failures[1].reply, "Can not find MX")

    def test_original_words_never_decide(self):
        """A virus word in the bounced mail does not make the bounce a virus refusal."""
        original = ORIGINAL.replace(b"body", b"virus spam mail loop mailbox full")
        env = Envelope(id="1", sender="alice@here.test", recipients=[], created=1,
                       next_attempt=0, auto=False, origin="")
        raw = dsn.build_bounce(env, [Recipient("bob@far.test", state="bounced",
                                               step=replies.LOG_ALL_RCPT_ERROR,
                                               reply="550 5.1.1 no such user", code=550)],
                               original, "here.test", 2)
        self.assertEqual(analyse(raw).category, "unknown_user")


class RuleTests(SynchronousTestCase):
    def test_advice_for_every_category(self):
        for category in CATEGORIES:
            ko_title, en_title, ko, en = ADVICE[category]
            self.assertTrue(ko_title and en_title and ko and en, category)

    def test_status_decides_only_without_text(self):
        self.assertEqual(rules.classify(["550 go away"], "5.2.2"), "mailbox_full")
        self.assertEqual(rules.classify(["421 try later"], "4.7.0"), "temporary")
        self.assertEqual(rules.classify(["550 nope"], ""), "other")
        # a 4xx that mentions an unknown user is still a temporary failure
        self.assertEqual(rules.classify(["450 4.1.1 user unknown, try later"], "4.1.1"),
                         "temporary")

    def test_order_specific_before_generic(self):
        self.assertEqual(rules.by_text("550 5.1.1 Inactive mbox"), "disabled")
        self.assertEqual(rules.by_text("Your ip is filtered by RBL (realip.naver.com)"), "rbl")
        self.assertEqual(rules.by_text("554 Service unavailable (mail is denied, by spam filter)"),
                         "spam")

    def test_garbage(self):
        self.assertIsNone(analyse(b""))
        self.assertIsNone(analyse(b"\x00\xff not mail at all"))
        self.assertIsNone(analyse(b"Content-Type: multipart/report; report-type=delivery-status;"
                                  b" boundary=x\r\n\r\n--x\r\nbroken"))
