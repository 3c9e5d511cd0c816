"""
Composing and sending (SPEC W2, W4): new, reply, forward, attachments with
Korean names, the size limit, a local account and a remote one (queued),
the Sent copy, relay rules; settings (name, signature, language, password).
Issue 6: simple HTML (sanitised, multipart/alternative, drafts keep it),
HTML to text, forward as attachment (message/rfc822, byte-exact), the
address completion hooks, the size refusal naming the limit, several
attachments, a 20 MB upload parsed and built through the thread runner.
"""

import email
import email.policy
import re
import secrets

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http

from tests.test_webmail_session import WebmailTestCase
from tests.webclient import inline
from tests.webmailclient import MailClient, corpus
from zwms.mime import compose as mimecompose
from zwms.mime import parse as mimeparse
from zwms.mime.htmltext import html_to_text
from zwms.web import sanitize
from zwms.web.site import make_resource, make_site
from zwms.web.webmail import compose as webcompose


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
        self.assertIn("메일이 너무 큽니다", r.text)
        self.assertIn("(한도 1 KB)", r.text)
        self.assertIn('value="big"', r.text)
        self.assertEqual(self.services.mail.messages("bob"), [])

    def test_bad_address_and_no_recipient(self):
        self.client.login()
        r = self.send({"to": "not an address", "subject": "s", "body": "b"})
        self.assertEqual(r.code, 400)
        self.assertIn("메일 주소가 아닙니다: not", r.text)
        r = self.send({"to": "", "subject": "s", "body": "b"})
        self.assertEqual(r.code, 400)
        self.assertIn("받는 사람을 한 명 이상 적으세요.", r.text)

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


# -- issue 6: simple HTML, forward as attachment, completion, large uploads -----


HOSTILE = ('<div>Hello <b onclick="document.title=\'x\'">bold</b></div>'
           '<script>document.title="pwned"</script>'
           '<a href="javascript:alert(1)">js link</a>'
           '<a href=" JaVaScRiPt&#58;alert(2)">js2</a>'
           '<img src="https://evil.example/t.gif" onerror="alert(3)">'
           '<p style="background:url(https://evil.example/)" onmouseover="alert(4)">para</p>'
           '<svg onload="alert(5)"><script>alert(6)</script></svg>'
           '<iframe src="https://evil.example/"></iframe>'
           '<ul><li>one</li><li>two</li></ul>'
           '<blockquote>quoted</blockquote>'
           '<a href="https://good.example/x">good</a>')


class Sending(WebmailTestCase):
    """A logged-in browser's send (the compose page first, as a browser does)."""

    send = SendTests.send


def parts(data):
    """{content type: [part]} of a message (email.policy.default)."""
    out = {}
    for part in email.message_from_bytes(data, policy=email.policy.default).walk():
        out.setdefault(part.get_content_type(), []).append(part)
    return out


class HtmlToTextTests(SynchronousTestCase):

    def test_blocks_breaks_lists_quotes_links(self):
        self.assertEqual(html_to_text("<div>Hello <b>world</b></div><div><br></div>"
                                      "<div>second &amp; line</div>"),
                         "Hello world\n\nsecond & line")
        self.assertEqual(html_to_text("<p>one</p><p>two<br>three</p><ul><li>a</li><li>b</li>"
                                      "</ul><ol><li>x</li><li>y</li></ol>"),
                         "one\n\ntwo\nthree\n\n- a\n- b\n1. x\n2. y")
        self.assertEqual(html_to_text("<blockquote>q1<br>q2</blockquote>after"),
                         "> q1\n> q2\n\nafter")
        self.assertEqual(html_to_text('<a href="https://ex.example/p">here</a> and '
                                      '<a href="https://ex.example">https://ex.example</a> '
                                      '<a href="mailto:a@b.example">a@b.example</a>'),
                         "here <https://ex.example/p> and https://ex.example a@b.example")

    def test_scripts_styles_and_head_dropped_whitespace_collapsed(self):
        self.assertEqual(html_to_text("<html><head><title>T</title><style>p{}</style></head>"
                                      "<body><script>alert(1)</script><p>  a \n  b  </p>"
                                      "<pre>x  y\n z</pre>한글 &lt;tag&gt;</body></html>"),
                         "a b\n\nx  y\n z\n\n한글 <tag>")

    def test_bad_html_never_raises(self):
        for html in ("", None, "<", "<b><i>unclosed", "</p></p></div>", "&#xffffffff;",
                     "<a href>x"):
            self.assertIsInstance(html_to_text(html), str)


class ComposeSanitiserTests(SynchronousTestCase):

    def test_hostile_markup_stripped(self):
        safe = sanitize.clean_compose(HOSTILE)
        for bad in ("script", "onclick", "onerror", "onmouseover", "onload", "javascript",
                    "JaVaScRiPt", "<img", "<svg", "<iframe", "style=", "evil.example", "pwned"):
            self.assertNotIn(bad, safe)
        for good in ("<b>bold</b>", "<li>one</li>", "<blockquote>quoted</blockquote>",
                     'href="https://good.example/x"', "<p>para</p>"):
            self.assertIn(good, safe)

    def test_the_reading_allow_list_is_not_touched(self):
        # Compose is narrower than reading; reading still keeps what it kept.
        self.assertTrue(sanitize.COMPOSE_TAGS < sanitize.TAGS | {"s", "strike"})
        self.assertIn("img", sanitize.TAGS)
        self.assertNotIn("img", sanitize.COMPOSE_TAGS)
        self.assertEqual(sanitize.URL_SCHEMES, {"http", "https", "mailto", "cid"})


class BuildTests(SynchronousTestCase):

    def test_html_is_multipart_alternative_with_text_first(self):
        data = mimecompose.build("a@example.com", "A", ["b@example.com"], [], "s",
                                 "plain 본문", html="<b>굵게</b>")
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        plain, html = msg.get_payload()
        self.assertEqual(plain.get_content_type(), "text/plain")
        self.assertEqual(plain.get_content().strip(), "plain 본문")
        self.assertEqual(html.get_content_type(), "text/html")
        self.assertIn("<b>굵게</b>", html.get_content())
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""))

    def test_attached_message_is_byte_exact(self):
        original = ("Return-Path: <x@remote.example>\r\nFrom: x@remote.example\r\n"
                    "Subject: 원본\r\n\r\n8bit 본문\r\n..dot\r\nlast line\r\n").encode("utf-8")
        data = mimecompose.build("a@example.com", "", ["b@example.com"], [], "Fwd", "see",
                                 [("a.txt", "", b"x"),
                                  (mimecompose.eml_filename("원본 / 제목"), "message/rfc822",
                                   original)], html="<i>x</i>")
        self.assertIn(b"\r\n\r\n" + original + b"\r\n--zwms-", data)
        rfc822 = parts(data)["message/rfc822"][0]
        self.assertEqual(rfc822.get_filename(), "원본 _ 제목.eml")
        self.assertIn(b"filename*=utf-8''%EC%9B%90%EB%B3%B8", data)
        self.assertEqual(rfc822["Content-Transfer-Encoding"], "8bit")
        p = mimeparse.parse(data)
        self.assertEqual([(a.filename, a.content_type) for a in p.attachments],
                         [("a.txt", "application/octet-stream"),
                          ("원본 _ 제목.eml", "message/rfc822")])

    def test_lf_message_gets_crlf_and_odd_one_goes_as_octets(self):
        data = mimecompose.build("a@example.com", "", ["b@example.com"], [], "s", "t",
                                 [("m.eml", "message/rfc822", b"Subject: x\n\nbody\n")])
        self.assertIn(b"Subject: x\r\n\r\nbody\r\n", data)
        odd = b"Subject: long\r\n\r\n" + b"x" * 2000 + b"\r\n"
        data = mimecompose.build("a@example.com", "", ["b@example.com"], [], "s", "t",
                                 [("m.eml", "message/rfc822", odd)])
        part = parts(data)["application/octet-stream"][0]
        self.assertEqual(part.get_content(), odd)
        self.assertEqual(part.get_filename(), "m.eml")

    def test_eml_filename(self):
        self.assertEqual(mimecompose.eml_filename("회의: 일정/안건?"), "회의_ 일정_안건_.eml")
        self.assertEqual(mimecompose.eml_filename(""), "message.eml")
        self.assertEqual(mimecompose.eml_filename("..."), "message.eml")
        self.assertEqual(len(mimecompose.eml_filename("가" * 300)), 104)

    def test_human_size(self):
        self.assertEqual(webcompose.human_size(1), "1 KB")
        self.assertEqual(webcompose.human_size(1024), "1 KB")
        self.assertEqual(webcompose.human_size(1025), "2 KB")
        self.assertEqual(webcompose.human_size(10 * 1024 * 1024 + 600 * 1024), "10.6 MB")


class HtmlComposeTests(Sending):
    """Simple HTML compose through the routes."""

    def test_page_has_editor_completion_and_no_inline_script(self):
        self.client.login()
        page = self.client.get("/mail/compose/%s/new" % self.client.rand).text
        for field in ("to", "cc", "bcc"):
            self.assertRegex(page, r'<input id="%s" name="%s"[^>]* data-complete="/mail/'
                                   r'contacts/%s/complete"' % (field, field, self.client.rand))
        self.assertIn('<script src="/mail/js/complete.js" defer></script>', page)
        self.assertIn('<script src="/mail/js/compose.js" defer></script>', page)
        self.assertIn('<link rel="stylesheet" href="/mail/css/compose.css">', page)
        # Without the script: a plain form (format stays plain, editor hidden).
        self.assertIn('name="format" id="format" value="plain"', page)
        self.assertIn('id="html-editor" hidden', page)
        self.assertIn('<textarea id="body" name="body"', page)
        self.assertIn("간단한 HTML", page)
        self.assertEqual(re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page), [])
        self.assertNotRegex(page, r"\son[a-z]+=")
        self.assertNotIn("style=", page)
        js = self.client.get("/mail/js/compose.js")
        self.assertEqual(js.code, 200)
        self.assertEqual(js.header("content-type"), "text/javascript")
        self.assertIn("execCommand", js.text)
        self.assertEqual(self.client.get("/mail/css/compose.css").code, 200)

    def test_html_sent_sanitised_as_alternative(self):
        self.client.login()
        r = self.send({"to": "bob@example.com", "subject": "HTML 메일", "body": "ignored",
                       "format": "html", "html_body": HOSTILE})
        self.assertEqual(r.code, 303, r.text[-400:])
        [bob] = self.services.mail.messages("bob")
        data = self.services.mail.read("bob", "Inbox", bob.name)
        found = parts(data)
        [html] = found["text/html"]
        [plain] = found["text/plain"]
        html = html.get_content()
        for bad in ("script", "onclick", "onerror", "onmouseover", "javascript", "JaVaScRiPt",
                    "<img", "<svg", "<iframe", "evil.example", "pwned", "style="):
            self.assertNotIn(bad, html)
        self.assertIn("<b>bold</b>", html)
        self.assertIn('<a href="https://good.example/x"', html)
        text = plain.get_content().replace("\r\n", "\n")
        self.assertIn("Hello bold", text)
        self.assertIn("- one\n- two", text)
        self.assertIn("> quoted", text)
        self.assertIn("good <https://good.example/x>", text)
        self.assertNotIn("ignored", text)
        self.assertNotIn("pwned", text)
        self.assertEqual(email.message_from_bytes(data).get_content_type(),
                         "multipart/alternative")
        # The Sent copy is the same HTML message.
        [sent] = self.services.mail.messages("alice", "Sent")
        self.assertIn(b"text/html", self.services.mail.read("alice", "Sent", sent.name))

    def test_html_with_attachments_is_mixed(self):
        self.client.login()
        r = self.send({"to": "bob@example.com", "subject": "s", "format": "html",
                       "html_body": "<b>x</b>", "body": "x"},
                      [("attachment", "표.csv", b"a,b\r\n")])
        self.assertEqual(r.code, 303)
        [bob] = self.services.mail.messages("bob")
        p = parsed(self.services.mail.read("bob", "Inbox", bob.name))
        self.assertIn("<b>x</b>", p.html)
        self.assertEqual(p.text.strip(), "x")
        self.assertEqual([a.filename for a in p.attachments], ["표.csv"])

    def test_without_script_the_textarea_is_the_message(self):
        self.client.login()
        # format=plain (no script): html_body is ignored even if present.
        r = self.send({"to": "bob@example.com", "subject": "s", "body": "plain words",
                       "format": "plain", "html_body": "<b>stale</b>"})
        self.assertEqual(r.code, 303)
        # format=html with an empty editor: the textarea, plain.
        r = self.send({"to": "bob@example.com", "subject": "s2", "body": "more words",
                       "format": "html", "html_body": "  "})
        self.assertEqual(r.code, 303)
        # format=html whose HTML is nothing once cleaned: the textarea, plain.
        r = self.send({"to": "bob@example.com", "subject": "s3", "body": "third words",
                       "format": "html", "html_body": "<script>alert(1)</script><img src=x>"})
        self.assertEqual(r.code, 303)
        texts = []
        for info in self.services.mail.messages("bob"):
            data = self.services.mail.read("bob", "Inbox", info.name)
            self.assertNotIn(b"text/html", data)
            self.assertNotIn(b"stale", data)
            self.assertNotIn(b"alert", data)
            texts.append(parsed(data).text.strip())
        self.assertEqual(texts, ["plain words", "more words", "third words"])

    def test_refused_html_form_is_kept_and_cleaned(self):
        self.client.login()
        r = self.send({"to": "", "subject": "s", "format": "html", "html_body": HOSTILE})
        self.assertEqual(r.code, 400)
        self.assertIn('data-start="html"', r.text)
        value = re.search(r'name="html_body" id="html_body" value="([^"]*)"', r.text).group(1)
        self.assertIn("&lt;b&gt;bold&lt;/b&gt;", value)
        for bad in ("script", "onclick", "javascript", "evil.example"):
            self.assertNotIn(bad, value)

    def test_html_draft_kept_and_reopened(self):
        self.client.login()
        self.client.get("/mail/compose/%s/new" % self.client.rand)
        r = self.client.upload("/mail/compose/%s/save" % self.client.rand, {
            "to": "bob@example.com", "subject": "초안", "body": "x", "format": "html",
            "html_body": "<div><i>기울임</i> <u>밑줄</u></div><script>x()</script>"})
        self.assertEqual(r.code, 303)
        [draft] = self.services.mail.messages("alice", "Drafts")
        data = self.services.mail.read("alice", "Drafts", draft.name)
        self.assertIn("<i>기울임</i> <u>밑줄</u>", parsed(data).html)
        self.assertNotIn(b"x()", data)
        form = self.client.get("/mail/compose/%s/new?mode=draft&name=%s"
                               % (self.client.rand, draft.name)).text
        self.assertIn('data-start="html"', form)
        self.assertIn("&lt;i&gt;기울임&lt;/i&gt; &lt;u&gt;밑줄&lt;/u&gt;", form)
        self.assertIn('rows="18">기울임 밑줄', form)     # the text, for a browser without JS

    def test_reply_to_html_only_mail_starts_from_its_text(self):
        name = self.deliver(corpus("hostile_html.eml"))
        self.client.login()
        page = self.client.get("/mail/compose/%s/new?mode=reply&folder=Inbox&name=%s"
                               % (self.client.rand, name)).text
        body = re.search(r'<textarea id="body" name="body" rows="18">([^<]*)</textarea>',
                         page).group(1)
        self.assertIn("&gt; Hello", body)
        self.assertIn("&gt; Keep this colour", body)
        self.assertIn("good link &lt;https://good.example/page&gt;", body)
        for bad in ("pwned", "alert", "&lt;p", "expression"):
            self.assertNotIn(bad, body)
        self.assertIn('data-start="plain"', page)

    def test_html_send_needs_the_csrf_token(self):
        self.client.login()
        self.client.get("/mail/compose/%s/new" % self.client.rand)
        r = self.client.upload("/mail/compose/%s/send" % self.client.rand,
                               {"to": "bob@example.com", "subject": "s", "format": "html",
                                "html_body": "<b>x</b>", "csrf": "forged-forged-forged"})
        self.assertEqual(r.code, 403)
        r = self.client.upload("/mail/compose/%s/send" % self.client.rand,
                               {"to": "bob@example.com", "subject": "s", "format": "html",
                                "html_body": "<b>x</b>"}, csrf=False)
        self.assertEqual(r.code, 403)
        self.assertEqual(self.services.mail.messages("bob"), [])


class ForwardAsAttachmentTests(Sending):

    ORIGINAL = ("From: =?UTF-8?B?6rmA7LKg7IiY?= <kim@remote.example>\r\n"
                "To: alice@example.com\r\nSubject: =?UTF-8?B?7ZqM7J2YIOyekOujjA==?=\r\n"
                "Message-ID: <orig-1@remote.example>\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
                "\r\n회의 자료입니다.\r\n..점으로 시작\r\n").encode("utf-8")

    def url(self, query):
        return "/mail/compose/%s/new?%s" % (self.client.rand, query)

    def test_form_and_links(self):
        name = self.deliver(self.ORIGINAL)
        self.client.login()
        inline_form = self.client.get(self.url("mode=forward&folder=Inbox&name=" + name)).text
        self.assertIn("mode=forward&amp;as=attachment&amp;folder=Inbox&amp;name=" + name,
                      inline_form)
        self.assertIn("첨부파일로 전달하기", inline_form)
        form = self.client.get(self.url("mode=forward&as=attachment&folder=Inbox&name=" + name))
        self.assertEqual(form.code, 200)
        self.assertIn('name="fwd_as" value="attachment"', form.text)
        self.assertIn('name="fwd_name" value="%s"' % name, form.text)
        self.assertIn('value="Fwd: 회의 자료"', form.text)
        self.assertIn("회의 자료.eml", form.text)
        self.assertIn("원본 메일 전체를 .eml 파일로 첨부합니다.", form.text)
        self.assertIn("본문에 넣어 전달하기", form.text)
        self.assertNotIn("회의 자료입니다", form.text)   # not quoted inline
        r = self.client.get(self.url("mode=forward&as=attachment&folder=Nope&name=" + name))
        self.assertEqual(r.code, 404)

    def test_sent_whole_as_message_rfc822(self):
        name = self.deliver(self.ORIGINAL)
        stored = self.services.mail.read("alice", "Inbox", name)
        self.client.login()
        self.client.get(self.url("mode=forward&as=attachment&folder=Inbox&name=" + name))
        r = self.client.upload("/mail/compose/%s/send" % self.client.rand,
                               {"to": "bob@example.com, far@remote.example",
                                "subject": "Fwd: 회의 자료", "body": "참고하세요",
                                "fwd_folder": "Inbox", "fwd_name": name,
                                "fwd_as": "attachment"},
                               [("attachment", "추가.txt", b"extra")])
        self.assertEqual(r.code, 303, r.text[-300:])
        [bob] = self.services.mail.messages("bob")
        data = self.services.mail.read("bob", "Inbox", bob.name)
        self.assertIn(b"\r\n\r\n" + stored + b"\r\n--zwms-", data)
        p = parsed(data)
        self.assertIn("참고하세요", p.text)
        self.assertEqual([(a.filename, a.content_type) for a in p.attachments],
                         [("추가.txt", "application/octet-stream"),
                          ("회의 자료.eml", "message/rfc822")])
        self.assertIn(b"filename*=utf-8''%ED%9A%8C%EC%9D%98%20%EC%9E%90%EB%A3%8C.eml", data)
        # The remote copy too (the queue), and the original is untouched.
        [(_, _, qdata, _, _)] = self.services.queue.entries
        self.assertIn(stored, qdata)
        self.assertEqual(self.services.mail.read("alice", "Inbox", name), stored)

    def test_draft_keeps_the_attached_message(self):
        name = self.deliver(self.ORIGINAL)
        self.client.login()
        self.client.get(self.url("mode=forward&as=attachment&folder=Inbox&name=" + name))
        r = self.client.upload("/mail/compose/%s/save" % self.client.rand,
                               {"to": "bob@example.com", "subject": "Fwd", "body": "b",
                                "fwd_folder": "Inbox", "fwd_name": name,
                                "fwd_as": "attachment"})
        self.assertEqual(r.code, 303)
        [draft] = self.services.mail.messages("alice", "Drafts")
        form = self.client.get(self.url("mode=draft&name=" + draft.name)).text
        self.assertIn('name="fwd_folder" value="Drafts"', form)
        r = self.client.upload("/mail/compose/%s/send" % self.client.rand,
                               {"to": "bob@example.com", "subject": "Fwd", "body": "b",
                                "draft": draft.name, "fwd_folder": "Drafts",
                                "fwd_name": draft.name})
        self.assertEqual(r.code, 303, r.text[-300:])
        [bob] = self.services.mail.messages("bob")
        data = self.services.mail.read("bob", "Inbox", bob.name)
        [a] = parsed(data).attachments
        self.assertEqual((a.filename, a.content_type), ("회의 자료.eml", "message/rfc822"))
        inner = parts(data)["message/rfc822"][0].get_content()
        self.assertEqual(inner["Message-ID"], "<orig-1@remote.example>")
        self.assertIn("..점으로 시작", inner.get_content())

    def test_forward_as_attachment_needs_the_csrf_token(self):
        name = self.deliver(self.ORIGINAL)
        self.client.login()
        r = self.client.upload("/mail/compose/%s/send" % self.client.rand,
                               {"to": "bob@example.com", "subject": "Fwd", "fwd_folder": "Inbox",
                                "fwd_name": name, "fwd_as": "attachment"}, csrf=False)
        self.assertEqual(r.code, 403)
        self.assertEqual(self.services.mail.messages("bob"), [])


class AttachmentLimitTests(Sending):

    def test_limit_in_megabytes_named_and_nothing_sent(self):
        self.services.settings._values["MAXMAILSIZE"] = 1024     # KB (a zwms.cfg key)
        self.client.login()
        page = self.client.get("/mail/compose/%s/new" % self.client.rand).text
        self.assertIn("모두 합쳐 최대 1.0 MB", page)
        self.assertIn('data-max-size="1048576"', page)
        r = self.send({"to": "bob@example.com", "subject": "big", "body": "x"},
                      [("attachment", "a.bin", b"a" * 700000),
                       ("attachment", "b.bin", b"b" * 700000)])
        self.assertEqual(r.code, 400)
        self.assertRegex(r.text, r"메일이 너무 큽니다: 1\.\d MB \(한도 1\.0 MB\)")
        self.assertEqual(self.services.mail.messages("bob"), [])
        self.assertEqual(self.services.mail.messages("alice", "Sent"), [])
        r = self.client.upload("/mail/compose/%s/save" % self.client.rand,
                               {"to": "bob@example.com", "subject": "big", "body": "x"},
                               [("attachment", "a.bin", b"a" * 1100000)])
        self.assertEqual(r.code, 400)
        self.assertIn("(한도 1.0 MB)", r.text)
        self.assertEqual(self.services.mail.messages("alice", "Drafts"), [])

    def test_english_refusal(self):
        self.services.accounts.set("alice", "sendsize", "2K")
        self.client.login()
        self.client.post("/mail/settings/%s/save" % self.client.rand,
                         {"name": "Alice", "signature": "", "lang": "en"})
        page = self.client.get("/mail/compose/%s/new" % self.client.rand).text
        self.assertIn("At most 2.0 KB in all.", page)   # the account's own, smaller limit
        r = self.send({"to": "bob@example.com", "subject": "big", "body": "x"},
                      [("attachment", "big.bin", b"x" * 5000)])
        self.assertRegex(r.text, r"The message is too large: \d+ KB, the limit is 2 KB\. "
                                 r"Remove or shrink attachments\.")

    def test_several_attachments(self):
        self.client.login()
        files = [("attachment", "%d-첨부.bin" % i, bytes([i]) * (1000 * i + 1)) for i in range(5)]
        r = self.send({"to": "bob@example.com", "subject": "s", "body": "b"}, files)
        self.assertEqual(r.code, 303)
        [bob] = self.services.mail.messages("bob")
        data = self.services.mail.read("bob", "Inbox", bob.name)
        p = parsed(data)
        self.assertEqual([a.filename for a in p.attachments], [f[1] for f in files])
        for a, (_, _, content) in zip(p.attachments, files):
            self.assertEqual(mimeparse.part_of(data, a.index)[2], content)


class LargeUploadTests(Sending):
    """A ~20 MB upload: parsed and built off the reactor, sent whole."""

    def setUp(self):
        Sending.setUp(self)
        self.ran = []

        def recording(f, *args, **kwargs):
            self.ran.append(getattr(f, "__name__", repr(f)))
            return inline(f, *args, **kwargs)
        self.recording = recording
        self.client = MailClient(self.services, resource=make_resource(self.services,
                                                                      run=recording))

    def test_the_real_site_leaves_the_body_to_the_thread(self):
        """
        Twisted's Request parses a multipart body in the reactor to fill
        request.args (783 ms for 20 MB, measured); the Site's
        StreamingRequest skips that for /mail/compose/, whose routes parse
        the body themselves in a thread.
        """
        calls = []
        real = http._getMultiPartArgs
        self.patch(http, "_getMultiPartArgs", lambda *a: calls.append(1) or real(*a))
        self.services.settings._values["MAXMAILSIZE"] = 40000
        self.client.login()
        self.client.get("/mail/compose/%s/new" % self.client.rand)
        site = make_site(self.services, run=self.recording)
        big = bytes(range(256)) * (20 * 4096)       # 20 MB, every byte value
        boundary = "b" + secrets.token_hex(8)
        body = b"".join(
            ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
             % (boundary, k, v)).encode("utf-8")
            for k, v in (("csrf", self.client.csrf), ("to", "bob@example.com"),
                         ("subject", "큰 파일"), ("body", "b"))) + (
            "--%s\r\nContent-Disposition: form-data; name=\"attachment\"; "
            "filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            % boundary).encode() + big + ("\r\n--%s--\r\n" % boundary).encode()
        head = ("POST /mail/compose/%s/send HTTP/1.1\r\nHost: x\r\nContent-Type: "
                "multipart/form-data; boundary=%s\r\nContent-Length: %d\r\nCookie: %s\r\n\r\n"
                % (self.client.rand, boundary, len(body),
                   "; ".join("%s=%s" % kv for kv in self.client.cookies.items()))).encode()
        proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5555))
        proto.makeConnection(transport)
        del self.ran[:]
        proto.dataReceived(head + body)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 303"), transport.value()[:300])
        proto.connectionLost(None)
        self.assertEqual(calls, [])
        # Reading the body, the multipart parse and the message build went
        # through the thread runner (state.upload_form's read_and_parse).
        self.assertIn("read_and_parse", self.ran)
        self.assertIn("make_message", self.ran)
        [bob] = self.services.mail.messages("bob")
        data = self.services.mail.read("bob", "Inbox", bob.name)
        self.assertGreater(len(data), len(big) * 4 // 3)
        [a] = parsed(data).attachments
        self.assertEqual(a.filename, "big.bin")
        self.assertEqual(mimeparse.part_of(data, a.index)[2], big)
