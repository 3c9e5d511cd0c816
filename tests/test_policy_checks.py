"""
The receive checks one by one, as pure functions (values in, Verdict out):
P1 block and the trusted bypass, P2 bomb (bounded memory), P4 spam, P5
virus, P6/P7 account rules, the lists and the chain's order.
"""

import base64

from twisted.trial import unittest

from zwms import logs, replies
from zwms.policy import account_rules, block, bomb, chain, spam, verdict as v, virus
from zwms.policy.content import Content
from zwms.policy.facts import AccountFacts, Config, Facts, Mail
from zwms.policy.lists import address_matches, domain_in, ip_in
from zwms.store.rules import FilterEntry, Rules, SortRule


class Acct:
    def __init__(self, id="bob", receivemode="all", outlawreject=False, junkreject=False):
        self.id, self.receivemode = id, receivemode
        self.outlawreject, self.junkreject = outlawreject, junkreject


def facts(ip="192.0.2.1", sender="x@far.test", data=b"Subject: hello\r\n\r\nhi\r\n",
          accounts=(), marks=(), authenticated=False, **config):
    return Facts(Config(**config), Mail(ip, "h.test", sender, authenticated, tuple(marks)),
                 content=Content(data), spam_phrases=("viagra", "대출"),
                 virus_extensions=("exe", "tar.gz"), accounts=tuple(accounts))


def run(stage, f):
    out = []
    chain.run_stage(stage, f).addBoth(out.append)
    return out[0]


def decide(f):
    out = []
    chain.decide_message(f).addBoth(out.append)
    return out[0]


class ListTests(unittest.SynchronousTestCase):

    def test_ip_in(self):
        items = ["10.0.0.0/8", "192.168.1.", "2001:db8::1", "junk"]
        self.assertTrue(ip_in("10.2.3.4", items))
        self.assertTrue(ip_in("192.168.1.77", items))
        self.assertFalse(ip_in("192.168.10.7", items))
        self.assertTrue(ip_in("::ffff:10.1.1.1", items), "IPv4-mapped")
        self.assertTrue(ip_in("2001:db8::1", items))
        self.assertFalse(ip_in("", items))
        self.assertFalse(ip_in("not-an-ip", items))

    def test_domains_and_addresses(self):
        self.assertTrue(domain_in("mail.example.com", ["example.com"]))
        self.assertFalse(domain_in("badexample.com", ["example.com"]))
        self.assertTrue(address_matches("A@Sub.Example.com", "@example.com"))
        self.assertTrue(address_matches("a@example.com", "example.com"))
        self.assertTrue(address_matches("a@example.com", "A@example.com"))
        self.assertFalse(address_matches("b@example.com", "a@example.com"))
        self.assertFalse(address_matches("", "a@example.com"))


class BlockTests(unittest.SynchronousTestCase):

    def test_blockips(self):
        verdict = block.check_connect(facts(ip="203.0.113.9", blockips=("203.0.113.",)))
        self.assertEqual((verdict.code, verdict.text), v.BLOCKED_IP)
        self.assertEqual(verdict.channel, logs.MAILBLOCK)
        self.assertTrue(verdict.log.startswith(v.LOG_BLOCKED_IP))
        self.assertEqual(block.check_connect(facts(ip="203.0.114.9", blockips=("203.0.113.",))),
                         v.go())

    def test_trusted(self):
        self.assertEqual(block.trusted(facts(ip="127.0.0.1")), "relayips")
        self.assertEqual(block.trusted(facts(authenticated=True)), "auth")
        self.assertEqual(block.trusted(facts(sender="a@partner.test",
                                             allowdomains=("partner.test",))), "allowdomains")
        self.assertEqual(block.trusted(facts(sender="a@evilpartner.test",
                                             allowdomains=("partner.test",))), "")

    def test_trusted_skip_bad_mail_checks(self):
        data = b"Subject: viagra\r\n\r\n"
        for kw in ({"ip": "127.0.0.1"}, {"authenticated": True},
                   {"sender": "a@partner.test", "allowdomains": ("partner.test",)}):
            self.assertEqual(run(chain.DATA, facts(data=data, spamreject=1, **kw)), v.go())
        self.assertTrue(run(chain.DATA, facts(data=data, spamreject=1)).refused)
        # P1 is not skipped by RELAYIPS.
        self.assertTrue(run(chain.CONNECT, facts(ip="127.0.0.1", blockips=("127.0.0.1",)))
                        .refused)


class BombTests(unittest.SynchronousTestCase):

    def at(self, memory, now, ip="192.0.2.1", level=1, ttl=5):
        f = facts(ip=ip, bombreject=level, smtpttl=ttl)
        f.bomb, f.now = memory, now
        return bomb.check(f)

    def test_rate(self):
        m = bomb.BombMemory()
        self.assertEqual(self.at(m, 100), v.go())
        refused = self.at(m, 104.9)
        self.assertEqual((refused.code, refused.text), replies.LOOKS_SPAM)
        self.assertTrue(refused.log.startswith(replies.LOG_RECEIVE_SPAM))
        self.assertIn("SMTPTTL=5", refused.log)
        self.assertEqual(self.at(m, 105), v.go(), "refusals do not restart the clock")
        self.assertEqual(self.at(m, 106, ip="192.0.2.2"), v.go(), "per IP")
        self.assertEqual(self.at(m, 107, level=2).marks, (v.SPAM,))
        self.assertEqual(self.at(m, 107, level=0), v.go())

    def test_bounded(self):
        m = bomb.BombMemory(cap=100)
        for i in range(1000):
            self.at(m, 1000, ip="10.0.%d.%d" % (i // 256, i % 256))
        self.assertEqual(len(m), 100)
        self.at(m, 2000, ip="10.9.9.9")
        self.assertEqual(len(m), 1, "entries older than SMTPTTL are dropped")


KOREAN_SUBJECT = ("Subject: =?euc-kr?B?%s?=\r\n\r\n" % base64.b64encode(
    "저금리 대출".encode("euc-kr")).decode()).encode("ascii")


class SpamVirusTests(unittest.SynchronousTestCase):

    def test_spam_fields(self):
        for data, sender in ((b"Subject: Buy VIAGRA now\r\n\r\n", "a@b.test"),
                             (b"From: Viagra Shop <a@b.test>\r\n\r\n", "a@b.test"),
                             (b"From: shop <viagra@b.test>\r\n\r\n", "a@b.test"),
                             (b"Subject: hi\r\n\r\n", "viagra@b.test"),
                             (KOREAN_SUBJECT, "a@b.test")):
            verdict = spam.check(facts(data=data, sender=sender, spamreject=1))
            self.assertEqual((verdict.code, verdict.text), replies.LOOKS_SPAM, data)
        self.assertEqual(spam.check(facts(data=b"Subject: viagra\r\n\r\n", spamreject=0)),
                         v.go())
        self.assertEqual(spam.check(facts(data=b"Subject: via gra\r\n\r\n", spamreject=1)),
                         v.go())
        self.assertEqual(spam.check(facts(data=b"Subject: viagra\r\n\r\n", spamreject=2)).marks,
                         (v.SPAM,))
        self.assertEqual(spam.check(facts(data=b"Hello: viagra\r\n\r\nviagra\r\n",
                                          spamreject=1)), v.go(), "body is not looked at")

    def test_virus(self):
        data = (b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
                b"Content-Disposition: attachment; filename*=utf-8''%EB%B3%B4.EXE.\r\n\r\n"
                b"x\r\n--z--\r\n")
        verdict = virus.check(facts(data=data, virusreject=1))
        self.assertEqual((verdict.code, verdict.text), replies.LOOKS_VIRUS)
        self.assertTrue(verdict.log.startswith(replies.LOG_RECEIVE_VIRUS))
        self.assertEqual(virus.check(facts(data=data, virusreject=2)).marks, (v.VIRUS,))
        self.assertEqual(virus.refused_extension("a.tar.gz", ("tar.gz",)), "tar.gz")
        self.assertIsNone(virus.refused_extension("exe.txt", ("exe",)))
        self.assertIsNone(virus.refused_extension("a.exe", ()))


class AccountTests(unittest.SynchronousTestCase):

    def one(self, rules=Rules(), account=None, **kw):
        kw.setdefault("local_domains", ("ours.test",))
        f = facts(accounts=[AccountFacts(account or Acct(), rules)], **kw)
        return account_rules.decide(f, f.accounts[0])

    def test_inbox_by_default(self):
        verdict = self.one()
        self.assertEqual((verdict.action, verdict.folder, verdict.bad), (v.FOLDER, "Inbox", False))

    def test_ip_deny_and_allow(self):
        verdict = self.one(Rules(deny_ips=("192.0.2.",)))
        self.assertEqual((verdict.code, verdict.text), replies.LOOKS_JUNK_BY_USER)
        self.assertTrue(verdict.log.startswith(replies.LOG_USER_IP_DENY))
        self.assertEqual(self.one(Rules(deny_ips=("192.0.2.",),
                                        allow_ips=("192.0.2.1",))).action, v.FOLDER)

    def test_receive_modes(self):
        for mode in ("domain", "allow", "addressbook"):
            verdict = self.one(account=Acct(receivemode=mode))
            self.assertEqual((verdict.code, verdict.text), replies.LOOKS_JUNK_BY_USER)
            self.assertTrue(verdict.log.startswith(replies.LOG_NOT_IN_ALLOW))
            allowed = self.one(Rules(allow_addresses=("far.test",)),
                               account=Acct(receivemode=mode))
            self.assertEqual(allowed.action, v.FOLDER, mode)
        self.assertEqual(self.one(account=Acct(receivemode="domain"),
                                  sender="me@ours.test").action, v.FOLDER)
        self.assertTrue(self.one(account=Acct(receivemode="allow"),
                                 sender="me@ours.test").refused)

    def test_deny_address(self):
        verdict = self.one(Rules(deny_addresses=("@far.test",)))
        self.assertTrue(verdict.log.startswith(replies.LOG_USER_REFUSE))
        self.assertEqual((verdict.code, verdict.text), replies.LOOKS_JUNK_BY_USER)
        self.assertEqual(self.one(Rules(deny_addresses=("@far.test",)),
                                  data=b"From: <x@ok.test>\r\n\r\n", sender="x@ok.test")
                         .action, v.FOLDER)
        # The From header counts as the sender too.
        self.assertTrue(self.one(Rules(deny_addresses=("@far.test",)), sender="",
                                 data=b"From: <y@far.test>\r\n\r\n").refused)

    def test_delegated(self):
        for mark, log in ((v.OUTLAW, replies.LOG_CLASSIFIED_OUTLAW),
                          (v.SPAM, replies.LOG_CLASSIFIED_SPAM),
                          (v.VIRUS, replies.LOG_CLASSIFIED_VIRUS)):
            verdict = self.one(marks=[mark])
            self.assertEqual((verdict.action, verdict.folder, verdict.bad),
                             (v.FOLDER, "Spam", True))
            self.assertEqual(verdict.channel, logs.MAILBLOCK)
            self.assertTrue(verdict.log.startswith(log + " "))
        outlaw = self.one(marks=[v.OUTLAW], account=Acct(outlawreject=True),
                          domain="ours.test", adminid="boss")
        self.assertEqual((outlaw.code, outlaw.text),
                         replies.looks_outlaw("192.0.2.1", "boss@ours.test"))
        self.assertTrue(outlaw.log.startswith(replies.LOG_RECEIVE_OUTLAW))
        self.assertEqual(self.one(marks=[v.SPAM], account=Acct(outlawreject=True)).folder, "Spam")
        junk = self.one(marks=[v.SPAM], account=Acct(junkreject=True))
        self.assertEqual((junk.code, junk.text), replies.LOOKS_SPAM)
        junk = self.one(marks=[v.SPAM, v.VIRUS], account=Acct(junkreject=True))
        self.assertEqual((junk.code, junk.text), replies.LOOKS_VIRUS)
        self.assertEqual(self.one(marks=[v.OUTLAW], account=Acct(junkreject=True)).folder, "Spam")

    def test_user_spam_filter(self):
        rules = Rules(spam_filter=(FilterEntry("subject", "CHEAP"),))
        verdict = self.one(rules, data=b"Subject: cheap pills\r\n\r\n")
        self.assertEqual((verdict.code, verdict.text), replies.LOOKS_SPAM_BY_USER)
        self.assertTrue(verdict.log.startswith(replies.LOG_USER_SPAM_FILTER))
        rules = Rules(spam_filter=(FilterEntry("sender", "x@far.test"),))
        self.assertTrue(self.one(rules).refused)
        self.assertEqual(self.one(Rules(spam_filter=rules.spam_filter,
                                        allow_addresses=("x@far.test",))).action, v.FOLDER)

    def test_sorting(self):
        rules = Rules(sort=(SortRule("subject", "[news]", ""),
                            SortRule("sender", "@far.test", "Work")))
        verdict = self.one(rules, data=b"Subject: [NEWS] today\r\n\r\n")
        self.assertEqual(verdict.action, v.DELETE)
        self.assertTrue(verdict.log.startswith(replies.LOG_USER_FILTER))
        verdict = self.one(rules)
        self.assertEqual((verdict.action, verdict.folder), (v.FOLDER, "Work"))
        self.assertEqual(self.one(rules, marks=[v.SPAM]).folder, "Spam",
                         "delegated mail goes to Spam before sorting")


class ChainTests(unittest.SynchronousTestCase):

    def test_table_order(self):
        self.assertEqual([(name, stage) for name, stage, *_ in chain.CHECKS],
                         [("block", "connect"), ("bomb", "mail"), ("outlaw", "mail"),
                          ("outlaw", "data"), ("spam", "data"), ("virus", "data")])

    def test_first_refusal_wins(self):
        data = (b"Subject: viagra\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"
                b"--q\r\nContent-Type: application/x; name=a.exe\r\n\r\nx\r\n--q--\r\n")
        self.assertEqual(decide(facts(data=data, spamreject=1, virusreject=1)).reply.text,
                         replies.LOOKS_SPAM[1])
        self.assertEqual(decide(facts(data=data, spamreject=2, virusreject=1)).reply.text,
                         replies.LOOKS_VIRUS[1])
        marks = run(chain.DATA, facts(data=data, spamreject=2, virusreject=2, marks=["outlaw"]))
        self.assertEqual(marks.marks, (v.OUTLAW, v.SPAM, v.VIRUS))

    def test_decision_several_accounts(self):
        accounts = [AccountFacts(Acct("ann"), Rules(deny_ips=("192.0.2.1",))),
                    AccountFacts(Acct("bob"), Rules())]
        d = decide(facts(accounts=accounts))
        self.assertIsNone(d.reply)
        self.assertEqual(d.stored(), [("bob", "Inbox", False)])
        self.assertEqual([a for a, _ in d.refused()], ["ann"])
        self.assertEqual([t for _, t in d.log_lines()][0].split(" <")[0],
                         replies.LOG_USER_IP_DENY)
        accounts[1] = AccountFacts(Acct("bob"), Rules(deny_ips=("192.0.2.",)))
        d = decide(facts(accounts=accounts))
        self.assertEqual((d.reply.code, d.reply.text), replies.LOOKS_JUNK_BY_USER)
        self.assertEqual(len(d.log_lines()), 2)
        only_delete = [AccountFacts(Acct("bob"), Rules(sort=(SortRule("sender", "far.test"),)))]
        d = decide(facts(accounts=only_delete))
        self.assertIsNone(d.reply)
        self.assertEqual(d.stored(), [])
