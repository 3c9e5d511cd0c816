"""
Folders and reading (SPEC W2): unread counts, paging newest first, the
corpus of real-world-shaped messages (EUC-KR/CP949, ISO-2022-KR, broken
charsets, nested multiparts, Korean attachment names, hostile HTML),
the sandboxed frame, remote images, cid: images, downloads, raw source,
read/unread, delete to Trash.
"""

import re
from urllib.parse import unquote

from tests.test_webmail_session import WebmailTestCase
from tests.webmailclient import corpus
from zwms.web.sanitize import clean_html

HOSTILE_MARKS = ("<script", "onerror", "onload", "javascript:", "expression(", "<svg",
                 "<iframe", "<form", "<object", "<meta", "<base", "<math", "evil.example",
                 "pwned", "url(")


class FolderTests(WebmailTestCase):

    def test_paging_newest_first(self):
        # PERPAGE is a restart key (zwms.cfg): as the server would read it at start.
        self.services.settings._values["PERPAGE"] = 10
        for i in range(25):
            self.deliver(b"Subject: message %02d\r\n\r\nbody\r\n" % i)
        self.client.login()
        first = self.client.box("folder/Inbox").text
        subjects = re.findall(r"message (\d\d)", first)
        self.assertEqual(subjects, ["%02d" % i for i in range(24, 14, -1)])
        self.assertIn("1 / 3", first)
        last = self.client.box("folder/Inbox?page=3").text
        self.assertEqual(re.findall(r"message (\d\d)", last), ["04", "03", "02", "01", "00"])
        self.assertIn(">25<", first.replace(" ", "").replace("(", ">").replace(")", "<"))

    def test_unread_counts_and_mark_read_on_open(self):
        name = self.deliver(corpus("euckr_plain.eml"))
        self.deliver(b"Subject: two\r\n\r\nx\r\n")
        self.deliver(b"Subject: spam\r\n\r\nx\r\n", folder="Spam")
        self.client.login()
        page = self.client.box("folder/Inbox").text
        self.assertIn('title="안 읽음">2<', page)
        self.assertIn('title="안 읽음">1<', page)
        self.client.box("read/Inbox/%s" % name)
        self.assertIn('title="안 읽음">1<', self.client.box("folder/Inbox").text.split("Spam")[0])
        seen = {i.name: i.seen for i in self.services.mail.messages("alice")}
        self.assertTrue(seen[name])
        self.client.post("/mail/box/%s/unread/Inbox/%s" % (self.client.rand, name))
        self.assertFalse({i.name: i.seen for i in self.services.mail.messages("alice")}[name])

    def test_list_decodes_headers(self):
        self.deliver(corpus("euckr_plain.eml"))
        self.deliver(corpus("broken_charset.eml"))
        self.client.login()
        page = self.client.box("folder/Inbox").text
        self.assertIn("회의 일정 안내", page)
        self.assertIn("김철수", page)
        self.assertIn("깨진 제목", page)

    def test_unknown_folder_and_message(self):
        self.client.login()
        self.assertEqual(self.client.box("folder/Secret").code, 404)
        self.assertEqual(self.client.box("read/Inbox/1234.abcdef").code, 404)
        self.assertEqual(self.client.box("read/Inbox/..%2f..%2fx").code, 404)

    def test_other_users_mail_is_out_of_reach(self):
        name = self.deliver(b"Subject: bob's secret\r\n\r\nx\r\n", account="bob")
        self.client.login()
        r = self.client.box("read/Inbox/%s" % name)
        self.assertEqual(r.code, 404)
        self.assertNotIn("secret", r.text)

    def test_delete_moves_to_trash_then_deletes(self):
        name = self.deliver(b"Subject: x\r\n\r\nx\r\n")
        self.client.login()
        r = self.client.post("/mail/box/%s/delete/Inbox/%s" % (self.client.rand, name))
        self.assertEqual(r.code, 303)
        self.assertEqual(self.services.mail.messages("alice"), [])
        self.assertEqual([i.name for i in self.services.mail.messages("alice", "Trash")], [name])
        self.client.post("/mail/box/%s/delete/Trash/%s" % (self.client.rand, name))
        self.assertEqual(self.services.mail.messages("alice", "Trash"), [])


class ReadTests(WebmailTestCase):

    def read(self, filename):
        name = self.deliver(corpus(filename))
        self.client.login()
        return name, self.client.box("read/Inbox/%s" % name)

    def test_euc_kr_and_cp949(self):
        _, r = self.read("euckr_plain.eml")
        self.assertEqual(r.code, 200)
        self.assertIn("회의 일정 안내", r.text)
        self.assertIn("다음 주 회의는 화요일 오후 3시입니다.", r.text)
        self.assertIn("똠방각하", r.text)

    def test_actions_offer_both_forwards(self):
        name, r = self.read("euckr_plain.eml")
        for mode in ("mode=forward&amp;folder=Inbox&amp;name=%s" % name,
                     "mode=forward&amp;as=attachment&amp;folder=Inbox&amp;name=%s" % name):
            self.assertIn("/mail/compose/%s/new?%s" % (self.client.rand, mode), r.text)

    def test_iso_2022_kr(self):
        _, r = self.read("iso2022kr.eml")
        self.assertIn("옛날 메일", r.text)
        self.assertIn("박영희", r.text)
        self.assertIn("이것은 ISO-2022-KR 메일입니다.", r.text)

    def test_broken_charset_never_crashes(self):
        _, r = self.read("broken_charset.eml")
        self.assertEqual(r.code, 200)
        self.assertIn("깨진 제목", r.text)
        self.assertIn("UTF-8 라벨이지만 EUC-KR", r.text)
        self.assertIn("\ufffd", r.text)

    def test_nested_multipart(self):
        name, r = self.read("nested_multipart.eml")
        self.assertIn("한글 제목", r.text)
        self.assertIn("이영희", r.text)
        self.assertIn("밥 &lt;bob@example.com&gt;", r.text)
        for filename in ("보고서 최종.pdf", "견적서.xlsx", "전달된 메일.eml"):
            self.assertIn(filename, r.text)
        self.assertNotIn("inner body text", r.text)
        self.assertIn("/frame/Inbox/%s" % name, r.text)
        frame = self.client.box("frame/Inbox/%s" % name)
        self.assertIn("안녕 <b>HTML</b>", frame.text)
        self.assertIn('src="data:image/png;base64,', frame.text)

    def test_attachment_download_names(self):
        name, r = self.read("nested_multipart.eml")
        links = re.findall(r'href="(/mail/box/[^"]+/part/Inbox/[^"]+)" download>([^<]+)<', r.text)
        found = {}
        for url, label in links:
            d = self.client.get(url)
            self.assertEqual(d.code, 200)
            self.assertEqual(d.header("content-type"), "application/octet-stream")
            self.assertEqual(d.header("x-content-type-options"), "nosniff")
            cd = d.header("content-disposition")
            self.assertTrue(cd.startswith("attachment; "), cd)
            star = re.search(r"filename\*=UTF-8''(\S+)", cd).group(1)
            found[unquote(star)] = d.body
            self.assertTrue(all(ord(c) < 128 for c in cd))
        self.assertEqual(found["보고서 최종.pdf"], b"%PDF-1.4 fake")
        self.assertEqual(found["견적서.xlsx"], b"xls bytes")
        self.assertIn(b"inner body text", found["전달된 메일.eml"])
        self.assertEqual(self.client.box("part/Inbox/%s/99" % name).code, 404)

    def test_hostile_html(self):
        name, r = self.read("hostile_html.eml")
        self.assertIn("외부 이미지를 차단했습니다", r.text)
        self.assertIn('sandbox="allow-popups allow-popups-to-escape-sandbox"', r.text)
        frame = self.client.box("frame/Inbox/%s" % name)
        csp = frame.header("content-security-policy")
        self.assertTrue(csp.startswith("sandbox"), csp)
        self.assertIn("default-src 'none'", csp)
        self.assertNotIn("script-src", csp)
        # The mail's part of the frame page (its own head has a <meta charset>).
        body = frame.text.lower().split("<body>", 1)[1]
        for mark in HOSTILE_MARKS:
            self.assertNotIn(mark, body, mark)
        self.assertIn("hello", body)
        self.assertIn('style="color: blue"', body)
        self.assertIn('href="https://good.example/page"', body)
        self.assertIn('rel="noopener noreferrer"', body)

    def test_show_images_lets_remote_images_through(self):
        name, _ = self.read("hostile_html.eml")
        frame = self.client.box("frame/Inbox/%s?images=1" % name)
        self.assertIn('src="https://evil.example/tracker.gif"', frame.text)
        self.assertIn("img-src 'self' data: https: http:", frame.header("content-security-policy"))
        self.assertNotIn("<script", frame.text.lower())

    def test_raw_source(self):
        name, _ = self.read("euckr_plain.eml")
        r = self.client.box("raw/Inbox/%s" % name)
        self.assertEqual(r.body, corpus("euckr_plain.eml"))
        self.assertEqual(r.header("content-type"), "text/plain; charset=utf-8")
        self.assertEqual(r.header("x-content-type-options"), "nosniff")
        self.assertTrue(r.header("content-security-policy").startswith("sandbox"))

    def test_plain_text_is_escaped(self):
        name = self.deliver(b"Subject: <img src=x onerror=alert(1)>\r\n\r\n<script>alert(1)</script>\r\n")
        self.client.login()
        text = self.client.box("read/Inbox/%s" % name).text
        self.assertNotIn("<script>alert", text)
        self.assertNotIn("<img src=x", text)
        self.assertIn("&lt;script&gt;", text)


class SanitizerTests(WebmailTestCase):

    def test_payloads(self):
        payloads = [
            '<img src=x onerror=alert(1)>', '<a href="javascript:alert(1)">x</a>',
            '<a href="jav&#x09;ascript:alert(1)">x</a>', '<div style="width:expression(alert(1))">',
            '<svg><script>alert(1)</script></svg>', '<svg/onload=alert(1)>',
            '<p style="background:url(javascript:alert(1))">', '<a href="data:text/html,<script>">x</a>',
            '<img src="data:image/svg+xml;base64,PHN2Zz4=">', '<style>@import "x"</style>',
            '<body onload=alert(1)>', '<isindex action=javascript:alert(1)>',
            '<p style="behavior:url(x.htc)">', '<a href="vbscript:msgbox(1)">x</a>',
        ]
        for payload in payloads:
            safe, _ = clean_html(payload)
            low = safe.lower()
            for mark in ("<script", "onerror", "onload", "javascript", "expression", "<svg",
                         "url(", "data:", "vbscript", "behavior", "@import", "<style"):
                self.assertNotIn(mark, low, payload)


class BouncePanelTests(WebmailTestCase):
    """The return-mail panel of the read page (SPEC W8, Nmail VI)."""

    def bounce(self, filename):
        import os
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bouncecorpus", filename)
        with open(path, "rb") as f:
            return f.read()

    def read(self, data, lang=None):
        name = self.deliver(data)
        if lang:
            self.client.cookies["zwms_lang"] = lang
        self.client.login()
        r = self.client.box("read/Inbox/%s" % name)
        self.assertEqual(r.code, 200)
        return r.text

    def test_dsn(self):
        text = self.read(self.bounce("postfix_unknown.eml"))
        self.assertIn('class="bounce-panel"', text)
        self.assertIn("리턴메일 분석", text)
        panel = text.split('class="bounce-panel"', 1)[1].split("</section>", 1)[0]
        self.assertIn("받는 사람이 존재하지 않음", panel)        # the category, Korean
        self.assertIn("Recipient does not exist", panel)       # and English
        self.assertIn("철자", panel)                            # what to do, Korean
        self.assertIn("Check the spelling", panel)              # and English
        self.assertIn("5.1.1", panel)
        self.assertIn("/mail/help/%s/returnmail#unknown_user" % self.client.rand, panel)
        self.assertIn('href="/mail/css/help.css"', text)
        # the panel is above the body
        self.assertLess(text.index("bounce-panel"), text.index('class="body-'))

    def test_naver_plain_bounce(self):
        text = self.read(self.bounce("naver_unknown.eml"))
        panel = text.split('class="bounce-panel"', 1)[1].split("</section>", 1)[0]
        self.assertIn("nouser77@naver.com", panel)
        self.assertIn("받는 사람이 존재하지 않음", panel)
        self.assertIn("550 5.1.1", panel)

    def test_english_session_shows_english_first(self):
        text = self.read(self.bounce("qmail_full.eml"), lang="en")
        panel = text.split('class="bounce-panel"', 1)[1].split("</section>", 1)[0]
        self.assertIn("Return mail analysis", text)
        self.assertLess(panel.index("Recipient&#39;s mailbox is full"),
                        panel.index("받는 사람의 메일함 용량 초과"))

    def test_normal_mail_has_no_panel_and_skips_the_classifier(self):
        from zwms.web.webmail import mailbox
        calls = []
        real = mailbox.analyse
        self.patch(mailbox, "analyse", lambda data: calls.append(1) or real(data))
        text = self.read(self.bounce("nb_normal.eml"))
        self.assertNotIn("bounce-panel", text)
        self.assertEqual(calls, [])
        # a postmaster notice passes the cheap test, the classifier says no
        name = self.deliver(self.bounce("nb_postmaster_notice.eml"))
        self.assertNotIn("bounce-panel", self.client.box("read/Inbox/%s" % name).text)
        self.assertEqual(calls, [1])

    def test_classifier_error_does_not_break_reading(self):
        from zwms.web.webmail import mailbox

        def broken(data):
            raise RuntimeError("boom")
        self.patch(mailbox, "analyse", broken)
        text = self.read(self.bounce("postfix_unknown.eml"))
        self.assertNotIn("bounce-panel", text)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_many_recipients_capped(self):
        from zwms.web.webmail import mailbox
        rcpts = "".join("<u%d@far.test>:\n550 5.1.1 user unknown\n\n" % i for i in range(30))
        data = ("From: MAILER-DAEMON@here.test\r\nTo: alice@example.com\r\n"
                "Subject: Undelivered Mail Returned to Sender\r\n\r\n"
                "I'm sorry to have to inform you that your message could not be delivered.\n\n"
                + rcpts).encode()
        text = self.read(data)
        self.assertEqual(text.count('class="recipient"'), mailbox.BOUNCE_ROWS)
        self.assertIn("외 10명", text)
