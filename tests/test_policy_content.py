"""
What the checks read from a message (zwms.policy.content): decoded
subjects (RFC 2047 UTF-8 and EUC-KR, raw 8-bit), From name and address,
attachment names in nested multiparts with RFC 2231 encodings; and a
property test that no header or MIME structure crashes the checks.
"""

import base64

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from zwms.policy import chain, verdict as v
from zwms.policy.content import Content, decode_words
from zwms.policy.facts import AccountFacts, Config, Facts, Mail
from zwms.store.rules import FilterEntry, Rules, SortRule


def b64word(text, charset):
    return "=?%s?B?%s?=" % (charset, base64.b64encode(text.encode(
        "cp949" if charset.lower() == "euc-kr" else charset)).decode())


class DecodeTests(unittest.SynchronousTestCase):

    def test_subject_charsets(self):
        for charset in ("UTF-8", "euc-kr", "EUC-KR"):
            c = Content(("Subject: %s\r\n\r\nbody\r\n" % b64word("무료 상담 안내", charset))
                        .encode("ascii"))
            self.assertEqual(c.subject, "무료 상담 안내")

    def test_quoted_printable_and_folded(self):
        c = Content(b"Subject: =?utf-8?Q?caf=C3=A9?=\r\n =?utf-8?Q?_au_lait?= x\r\n\r\n")
        self.assertEqual(c.subject, "café au lait x")

    def test_raw_8bit_subjects(self):
        self.assertEqual(Content("Subject: 대출 안내\r\n\r\n".encode("utf-8")).subject,
                         "대출 안내")
        self.assertEqual(Content("Subject: 대출 안내\r\n\r\n".encode("euc-kr")).subject,
                         "대출 안내")

    def test_from(self):
        c = Content(("From: %s <Kim@Example.COM>\r\n\r\n" % b64word("김철수", "euc-kr"))
                    .encode("ascii"))
        self.assertEqual((c.from_name, c.from_address), ("김철수", "kim@example.com"))
        self.assertEqual(Content(b"From: broken <<<\r\n\r\n").from_address, "")

    def test_bad_encoded_words_kept(self):
        # an unknown charset falls back to UTF-8; broken base64 never raises
        self.assertEqual(decode_words("=?x-nothing?B?aGk=?="), "hi")
        self.assertIsInstance(decode_words("=?utf-8?B?!!!?= =?utf-8?Q?=ZZ?="), str)
        self.assertEqual(decode_words(None), "")

    def test_nested_attachments(self):
        data = (b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
                b"--a\r\nContent-Type: text/plain\r\n\r\nsee filename=\"fake.exe\"\r\n"
                b"--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
                b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
                b"Content-Type: multipart/mixed; boundary=c\r\n\r\n"
                b"--c\r\nContent-Type: application/x-foo; name=\"=?utf-8?B?"
                + base64.b64encode("보고서.scr".encode()) + b"?=\"\r\n\r\nxx\r\n--c--\r\n"
                b"--b\r\nContent-Disposition: attachment;\r\n"
                b" filename*0*=euc-kr''%C7%D1%B1%DB; filename*1=\".pif\"\r\n\r\nyy\r\n"
                b"--b--\r\n--a--\r\n")
        names = Content(data).attachments()
        self.assertEqual(set(names), {"보고서.scr", "한글.pif"})
        self.assertNotIn("fake.exe", names, "text mentioning a name is not an attachment")

    def test_too_deep_falls_back_to_scan(self):
        depth = 200
        head = b"".join(b"Content-Type: multipart/mixed; boundary=x%d\r\n\r\n--x%d\r\n" % (i, i)
                        for i in range(depth))
        data = head + b"Content-Disposition: attachment; filename=\"deep.exe\"\r\n\r\nz\r\n"
        self.assertIn("deep.exe", Content(data).attachments())


HEADER_NAMES = st.sampled_from(["Subject", "From", "Content-Type", "Content-Disposition",
                                "Content-Transfer-Encoding", "MIME-Version", "X-Other"])
VALUE_PIECES = st.sampled_from([
    "=?utf-8?B?", "=?euc-kr?Q?", "?=", "=?", "multipart/mixed; boundary=", "\"", ";",
    "filename*0*=", "filename*=utf-8''%ED%95", "name=", "message/rfc822", "'", "%",
    "\r\n ", "<", ">", "@", "\x00", "\udcff", "한글", ".exe", "--", "x", "a b"])
VALUES = st.lists(st.one_of(VALUE_PIECES, st.text(max_size=8)), max_size=12).map("".join)


@st.composite
def messages(draw):
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        lines.append("%s: %s" % (draw(HEADER_NAMES), draw(VALUES)))
    body = draw(st.lists(st.one_of(VALUES, st.sampled_from(["--", "--x", "--x--", ""])),
                         max_size=10))
    text = "\r\n".join(lines) + "\r\n\r\n" + "\r\n".join(body)
    raw = text.encode("utf-8", "surrogatepass")
    return raw + draw(st.binary(max_size=64))


class PropertyTests(unittest.SynchronousTestCase):

    @settings(max_examples=300, deadline=None)
    @given(messages(), st.sampled_from(["", "a@b.test"]))
    def test_no_structure_crashes_the_checks(self, data, sender):
        class Acct:
            id = "bob"
            receivemode = "domain"
            outlawreject = False
            junkreject = True
        rules = Rules(deny_addresses=("bad.test",), allow_ips=("10.",),
                      sort=(SortRule("subject", "x", "Work"),),
                      spam_filter=(FilterEntry("subject", "한글"),))
        facts = Facts(Config(spamreject=2, virusreject=2, local_domains=("b.test",)),
                      Mail("192.0.2.1", "h.test", sender), content=Content(data),
                      spam_phrases=("viagra", "대출"), virus_extensions=("exe", "tar.gz"),
                      accounts=(AccountFacts(Acct(), rules),))
        result = []
        chain.decide_message(facts).addBoth(result.append)
        decision = result[0]
        self.assertIsInstance(decision, v.Decision)
        self.assertEqual(len(decision.accounts), 1)
        for channel, text in decision.log_lines():
            self.assertIsInstance(text, str)


class LazyParseTests(unittest.SynchronousTestCase):
    """Issue 8: nothing is parsed until a check reads the headers."""

    def test_headers_parsed_once_and_only_when_read(self):
        from zwms.policy import content as content_module
        calls = []
        real = content_module.header_block

        def counting(data):
            calls.append(data)
            return real(data)

        self.patch(content_module, "header_block", counting)
        c = Content(b"From: =?UTF-8?B?7ZmN6ri464+Z?= <Hong@Example.COM>\r\n"
                    b"Subject: hi\r\n\r\nbody\r\n")
        self.assertEqual(calls, [])
        self.assertEqual(c.subject, "hi")
        self.assertEqual((c.from_name, c.from_address), ("홍길동", "hong@example.com"))
        self.assertEqual(len(calls), 1)
