"""RFC 3464 bounces: structure (email parser), reasons, no bounce for a bounce."""

import email

from twisted.trial.unittest import SynchronousTestCase

from zwms import replies
from zwms.queue import dsn
from zwms.queue.spool import Envelope, Recipient

ORIGINAL = (b"From: alice@here.test\r\nTo: bob@far.test\r\nSubject: hello\r\n"
            b"Message-ID: <1@here.test>\r\n\r\nbody line\r\n")


def envelope(sender="alice@here.test", auto=False):
    return Envelope(id="1700000000.0123456789abcdef", sender=sender, recipients=[],
                    created=1700000000, next_attempt=0, auto=auto, origin="smtp 127.0.0.1")


class BounceTests(SynchronousTestCase):
    def build(self, rcpts, original=ORIGINAL, **kw):
        raw = dsn.build_bounce(envelope(), rcpts, original, "here.test", 1700000100, **kw)
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))  # CRLF only
        return email.message_from_bytes(raw)

    def test_structure(self):
        r = Recipient("bob@far.test", state="bounced", step=replies.LOG_ALL_RCPT_ERROR,
                      reply="550 5.1.1 <bob@far.test>: no such\r\nuser", code=550,
                      remote="mx.far.test [127.0.0.1]", done_at=1700000050)
        m = self.build([r])
        self.assertEqual(m["From"], "MAILER-DAEMON@here.test")
        self.assertEqual(m["To"], "alice@here.test")
        self.assertEqual(m["Auto-Submitted"], "auto-replied")
        self.assertEqual(m.get_content_type(), "multipart/report")
        self.assertEqual(m.get_param("report-type"), "delivery-status")
        human, status, original = m.get_payload()
        text = human.get_payload(decode=True).decode("utf-8")
        self.assertIn("<bob@far.test>", text)
        self.assertIn("550 5.1.1 <bob@far.test>: no such user", text)  # one line
        self.assertIn(replies.LOG_ALL_RCPT_ERROR, text)
        self.assertEqual(status.get_content_type(), "message/delivery-status")
        head, block = status.get_payload()
        self.assertEqual(head["Reporting-MTA"], "dns; here.test")
        self.assertEqual(block["Final-Recipient"], "rfc822; bob@far.test")
        self.assertEqual(block["Action"], "failed")
        self.assertEqual(block["Status"], "5.1.1")
        self.assertEqual(block["Remote-MTA"], "dns; mx.far.test")
        self.assertEqual(block["Diagnostic-Code"],
                         "smtp; 550 5.1.1 <bob@far.test>: no such user")
        self.assertEqual(original.get_content_type(), "message/rfc822")
        inner = original.get_payload()[0]
        self.assertEqual(inner["Message-ID"], "<1@here.test>")
        self.assertEqual(inner.get_payload(), "body line\r\n")

    def test_own_reasons_numbered_korean_english(self):
        cases = [(replies.LOG_LIMITED_DOMAIN, replies.BOUNCE_LIMITED_DOMAIN, "5.7.1"),
                 (replies.LOG_NO_MX, replies.BOUNCE_NO_MX, "5.1.2"),
                 (replies.LOG_TIME_OVER, replies.BOUNCE_TIME_OVER, "4.4.7"),
                 (replies.LOG_LOOPS_BACK, "551 Error. Mail loops back to me by MX problem",
                  "5.4.6")]
        rcpts = [Recipient("r%d@far.test" % i, state="bounced", step=step, reason=reason)
                 for i, (step, reason, _) in enumerate(cases)]
        m = self.build(rcpts)
        text = m.get_payload()[0].get_payload(decode=True).decode("utf-8")
        blocks = m.get_payload()[1].get_payload()[1:]
        for (step, reason, status), block in zip(cases, blocks):
            self.assertIn(reason, text)
            self.assertEqual(block["Status"], status)
            self.assertEqual(block["Diagnostic-Code"], "x-zwms; " + step)  # ASCII

    def test_large_original_headers_only(self):
        big = ORIGINAL + b"x" * 100 + b"\r\n"
        m = self.build([Recipient("b@far.test", state="bounced", reply="554 no", code=554)],
                       original=big, limit=50)
        part = m.get_payload()[2]
        self.assertEqual(part.get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: hello", part.get_payload())
        self.assertNotIn("body line", part.get_payload())

    def test_status_from_reply_code(self):
        self.assertEqual(dsn.status_of(Recipient("a@b.c", reply="552 full", code=552)), "5.0.0")
        self.assertEqual(dsn.status_of(Recipient("a@b.c", reply="450 4.2.1 busy", code=450)),
                         "4.2.1")
        # an enhanced code of the wrong class is ignored
        self.assertEqual(dsn.status_of(Recipient("a@b.c", reply="550 4.2.1 odd", code=550)),
                         "5.0.0")

    def test_wants_bounce(self):
        on, off = {"AUTOMAILCANCEL": False}, {"AUTOMAILCANCEL": True}
        self.assertTrue(dsn.wants_bounce("alice@here.test", False, on))
        self.assertFalse(dsn.wants_bounce("", False, on))           # bounce of a bounce
        self.assertFalse(dsn.wants_bounce("alice@here.test", True, on))  # auto mail
        self.assertFalse(dsn.wants_bounce("alice@here.test", False, off))
