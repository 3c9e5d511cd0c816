"""
Composing and sending (SPEC W2, W4): new, reply, forward, attachments with
Korean names, the size limit, a local account and a remote one (queued),
the Sent copy, relay rules; settings (name, signature, language, password).
"""

import email
import email.policy

from tests.test_webmail_session import WebmailTestCase
from tests.webmailclient import corpus
from zwms.mime import parse as mimeparse


def parsed(data):
    return mimeparse.parse(data)


class SendTests(WebmailTestCase):

    def send(self, fields, files=()):
        self.client.get("/mail/compose/%s/new" % self.client.rand)
        return self.client.upload("/mail/compose/%s/send" % self.client.rand, fields, files)

    def test_local_and_remote_with_attachment(self):
        self.client.login()
        r = self.send({"to": "bob@example.com, 원격 <far@remote.example>",
                       "bcc": "hidden@remote.example", "subject": "한글 제목 테스트",
                       "body": "본문입니다.\n둘째 줄"},
                      [("attachment", "보고서.txt", b"report bytes"),
                       ("attachment", "b.bin", b"\x00\x01")])
        self.assertEqual(r.code, 303, r.text[-500:])
        self.assertIn("/folder/Sent", r.header("location"))
        # Bob got it in his Inbox.
        [bob] = self.services.mail.messages("bob")
        data = self.services.mail.read("bob", "Inbox", bob.name)
        p = parsed(data)
        self.assertEqual(p.summary.subject, "한글 제목 테스트")
        self.assertIn("본문입니다.", p.text)
        self.assertEqual([a.filename for a in p.attachments], ["보고서.txt", "b.bin"])
        self.assertNotIn(b"hidden@remote.example", data)
        self.assertTrue(data.startswith(b"Return-Path: <alice@example.com>\r\nReceived: from webmail"))
        # The remote ones went to the queue, as the logged-in account.
        [(sender, rcpts, qdata, auto, origin)] = self.services.queue.entries
        self.assertEqual(sender, "alice@example.com")
        self.assertEqual(sorted(rcpts), ["far@remote.example", "hidden@remote.example"])
        self.assertTrue(origin.startswith("webmail"))
        # One copy in Sent.
        sent = self.services.mail.messages("alice", "Sent")
        self.assertEqual(len(sent), 1)
        self.assertIn("한글 제목 테스트", self.client.box("folder/Sent").text)

    def test_local_only_still_keeps_a_sent_copy(self):
        self.client.login()
        r = self.send({"to": "bob@example.com", "subject": "hi", "body": "x"})
        self.assertEqual(r.code, 303)
        self.assertEqual(len(self.services.mail.messages("alice", "Sent")), 1)
        self.assertEqual(self.services.queue.entries, [])

    def test_size_limit(self):
        self.services.accounts.set("alice", "sendsize", "1K")
        self.client.login()
        r = self.send({"to": "bob@example.com", "subject": "big", "body": "x"},
                      [("attachment", "big.bin", b"x" * 5000)])
        self.assertEqual(r.code, 400)
        self.assertIn("too large", r.text)
        self.assertIn('value="big"', r.text)
        self.assertEqual(self.services.mail.messages("bob"), [])

    def test_bad_address_and_no_recipient(self):
        self.client.login()
        r = self.send({"to": "not an address", "subject": "s", "body": "b"})
        self.assertEqual(r.code, 400)
        self.assertIn("not an e-mail address", r.text)
        r = self.send({"to": "", "subject": "s", "body": "b"})
        self.assertEqual(r.code, 400)

    def test_relay_refused_for_account_without_relay(self):
        self.services.accounts.set("alice", "relay", "0")
        self.client.login()
        r = self.send({"to": "far@remote.example", "subject": "s", "body": "b"})
        self.assertEqual(r.code, 400)
        self.assertEqual(self.services.queue.entries, [])

    def test_recipient_limit(self):
        self.services.accounts.set("alice", "rcptlimit", "1")
        self.client.login()
        r = self.send({"to": "bob@example.com, x@remote.example", "subject": "s", "body": "b"})
        self.assertEqual(r.code, 400)

    def test_reply_and_forward_forms(self):
        name = self.deliver(corpus("nested_multipart.eml"))
        self.client.login()
        reply = self.client.get("/mail/compose/%s/new?mode=reply&folder=Inbox&name=%s"
                                % (self.client.rand, name)).text
        self.assertIn('value="younghee@example.com"', reply)
        self.assertIn('value="Re: 한글 제목"', reply)
        self.assertIn("&gt; 안녕 텍스트 본문", reply)
        self.assertIn('value="&lt;nested-1@example.com&gt;"', reply)
        fwd = self.client.get("/mail/compose/%s/new?mode=forward&folder=Inbox&name=%s"
                              % (self.client.rand, name)).text
        self.assertIn('value="Fwd: 한글 제목"', fwd)
        r = self.client.upload("/mail/compose/%s/send" % self.client.rand,
                               {"to": "bob@example.com", "subject": "Fwd: 한글 제목", "body": "fw",
                                "fwd_folder": "Inbox", "fwd_name": name})
        self.assertEqual(r.code, 303)
        [bob] = self.services.mail.messages("bob")
        names = [a.filename for a in parsed(self.services.mail.read("bob", "Inbox", bob.name))
                 .attachments]
        self.assertIn("보고서 최종.pdf", names)
        self.assertIn("견적서.xlsx", names)

    def test_reply_threads(self):
        name = self.deliver(corpus("euckr_plain.eml"))
        self.client.login()
        r = self.client.upload("/mail/compose/%s/send" % self.client.rand,
                               {"to": "bob@example.com", "subject": "Re: x", "body": "ok",
                                "in_reply_to": "<euckr-1@example.co.kr>"})
        self.assertEqual(r.code, 303)
        [bob] = self.services.mail.messages("bob")
        msg = email.message_from_bytes(self.services.mail.read("bob", "Inbox", bob.name),
                                       policy=email.policy.default)
        self.assertEqual(msg["In-Reply-To"], "<euckr-1@example.co.kr>")
        self.assertTrue(name)


class SettingsTests(WebmailTestCase):

    def url(self, path=""):
        return "/mail/settings/%s/%s" % (self.client.rand, path)

    def test_name_signature_language(self):
        self.client.login()
        self.client.get(self.url())
        r = self.client.post(self.url("save"), {"name": "앨리스", "signature": "-- 앨리스 드림",
                                                "lang": "en"})
        self.assertEqual(r.code, 303)
        self.assertEqual(self.services.accounts.get("alice").name, "앨리스")
        page = self.client.get(self.url())
        self.assertIn("Settings", page.text)
        self.assertIn("-- 앨리스 드림", page.text)
        compose = self.client.get("/mail/compose/%s/new" % self.client.rand).text
        self.assertIn("-- 앨리스 드림", compose)
        # The language is kept for the next login.
        self.client.post(self.url("logout"))
        self.client.login()
        self.assertIn("Inbox", self.client.box("folder/Inbox").text)

    def test_password_change(self):
        self.client.login()
        self.client.get(self.url())
        r = self.client.post(self.url("password"), {"current": "wrong", "password": "newpass1",
                                                    "password2": "newpass1"})
        self.assertEqual(r.code, 400)
        r = self.client.post(self.url("password"), {"current": "secret1", "password": "newpass1",
                                                    "password2": "other"})
        self.assertEqual(r.code, 400)
        r = self.client.post(self.url("password"), {"current": "secret1", "password": "newpass1",
                                                    "password2": "newpass1"})
        self.assertEqual(r.code, 303)
        self.assertTrue(self.services.accounts.check_password("alice", "newpass1"))
        self.assertFalse(self.services.accounts.check_password("alice", "secret1"))


class DraftAndReplyAllTests(SendTests):
    """Drafts (save, list, reopen, send: the draft goes) and reply-all."""

    def save(self, fields, files=()):
        self.client.get("/mail/compose/%s/new" % self.client.rand)
        return self.client.upload("/mail/compose/%s/save" % self.client.rand, fields, files)

    def test_draft_save_list_reopen_send(self):
        self.client.login()
        r = self.save({"to": "bob@example.com", "bcc": "hidden@example.com",
                       "subject": "초안 제목", "body": "쓰다 만 글"},
                      [("attachment", "첨부.txt", b"attached")])
        self.assertEqual(r.code, 303)
        self.assertIn("/folder/Drafts", r.header("location"))
        [draft] = self.services.mail.messages("alice", "Drafts")
        listing = self.client.box("folder/Drafts").text
        self.assertIn("초안 제목", listing)
        self.assertIn("/compose/%s/new?mode=draft&amp;name=%s" % (self.client.rand, draft.name),
                      listing)
        form = self.client.get("/mail/compose/%s/new?mode=draft&name=%s"
                               % (self.client.rand, draft.name)).text
        for text in ('value="bob@example.com"', 'value="hidden@example.com"',
                     'value="초안 제목"', "쓰다 만 글", 'name="draft" value="%s"' % draft.name,
                     'name="fwd_folder" value="Drafts"'):
            self.assertIn(text, form)
        # Saved again: one draft, the new one.
        r = self.client.upload("/mail/compose/%s/save" % self.client.rand, {
            "to": "bob@example.com", "subject": "초안 제목", "body": "다 쓴 글",
            "draft": draft.name, "fwd_folder": "Drafts", "fwd_name": draft.name})
        [draft2] = self.services.mail.messages("alice", "Drafts")
        self.assertNotEqual(draft2.name, draft.name)
        self.assertEqual([a.filename for a in parsed(self.services.mail.read(
            "alice", "Drafts", draft2.name)).attachments], ["첨부.txt"])
        # Sent: the draft is gone, Bob has it with the attachment.
        r = self.client.upload("/mail/compose/%s/send" % self.client.rand, {
            "to": "bob@example.com", "subject": "초안 제목", "body": "다 쓴 글",
            "draft": draft2.name, "fwd_folder": "Drafts", "fwd_name": draft2.name})
        self.assertEqual(r.code, 303, r.text[-300:])
        self.assertEqual(self.services.mail.messages("alice", "Drafts"), [])
        [bob] = self.services.mail.messages("bob")
        p = parsed(self.services.mail.read("bob", "Inbox", bob.name))
        self.assertIn("다 쓴 글", p.text)
        self.assertEqual([a.filename for a in p.attachments], ["첨부.txt"])

    def test_bad_address_keeps_the_draft_form(self):
        self.client.login()
        r = self.save({"to": "not an address", "subject": "s", "body": "b"})
        self.assertEqual(r.code, 400)
        self.assertIn('value="s"', r.text)
        self.assertEqual(self.services.mail.messages("alice", "Drafts"), [])

    def test_failed_send_keeps_the_draft(self):
        self.client.login()
        self.save({"to": "bob@example.com", "subject": "s", "body": "b"})
        [draft] = self.services.mail.messages("alice", "Drafts")
        r = self.client.upload("/mail/compose/%s/send" % self.client.rand,
                               {"to": "", "subject": "s", "body": "b", "draft": draft.name})
        self.assertEqual(r.code, 400)
        self.assertEqual(len(self.services.mail.messages("alice", "Drafts")), 1)

    def test_reply_all(self):
        self.services.settings.set("MULTIDOMAINS", "other.example")
        name = self.deliver(b"From: Kim <kim@remote.example>\r\n"
                            b"To: alice@example.com, Lee <lee@remote.example>\r\n"
                            b"Cc: ALICE@other.example, park@remote.example, kim@remote.example\r\n"
                            b"Subject: plan\r\nMessage-ID: <m1@remote>\r\n\r\nbody\r\n")
        self.client.login()
        self.assertIn("mode=replyall", self.client.box("read/Inbox/" + name).text)
        form = self.client.get("/mail/compose/%s/new?mode=replyall&folder=Inbox&name=%s"
                               % (self.client.rand, name)).text
        self.assertIn('id="to" name="to" value="kim@remote.example"', form)
        self.assertIn('id="cc" name="cc" value="lee@remote.example, park@remote.example"', form)
        self.assertIn('value="Re: plan"', form)
