"""
The webmail in a real Chromium (issue 6): log in, read a Korean (EUC-KR)
mail, reply with an attachment that the other user receives, and open a
hostile HTML mail whose scripts must not run.
"""

import os
import smtplib
import time

from tests.browser.harness import BrowserTestCase
from tests.webmailclient import corpus

KOREAN_MAIL = (
    "From: =?euc-kr?B?sejDtrz2?= <bob@example.com>\r\n"
    "To: alice@example.com\r\n"
    "Subject: =?euc-kr?B?yLjAxyDAz8GkIL7Is7s=?=\r\n"
    "Date: Mon, 2 Nov 2026 10:00:00 +0900\r\n"
    "Message-ID: <browser-korean@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=euc-kr\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n").encode("ascii") + \
    "안녕하세요.\r\n다음 주 회의는 화요일 오후 3시입니다.\r\n".encode("euc-kr")


class WebmailInBrowser(BrowserTestCase):

    # DNS1 on a closed loopback port: nothing ever asks the system resolver.
    settings = (("DOMAIN", "example.com"), ("DNS1", "127.0.0.1:9"))

    @classmethod
    def prepare_home(cls):
        cls.server.admin("user", "add", "alice", "alice-pw1", "--name", "Alice")
        cls.server.admin("user", "add", "bob", "bob-pw12", "--name", "김철수")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with smtplib.SMTP("127.0.0.1", cls.server.ports["smtp"], timeout=20) as smtp:
            smtp.sendmail("bob@example.com", ["alice@example.com"], KOREAN_MAIL)
            smtp.sendmail("evil@example.net", ["alice@example.com"],
                          corpus("hostile_html.eml"))

    def login(self, login, password):
        page = self.page
        page.goto(self.url("/mail/"))
        page.fill("#login", login)
        page.fill("#password", password)
        page.click("form.login button[type=submit]")
        page.wait_for_url("**/folder/Inbox*")

    def open_subject(self, subject):
        self.page.click("td.subject a:has-text('%s')" % subject)
        self.page.wait_for_url("**/read/**")

    def test_read_korean_mail_and_reply_with_attachment(self):
        page = self.page
        self.login("alice", "alice-pw1")
        self.shot("webmail-inbox")
        self.open_subject("회의 일정 안내")
        self.assertIn("화요일 오후 3시", page.inner_text("main"))
        self.assertIn("김철수", page.inner_text("main"))
        self.shot("webmail-read-korean")

        page.click("a[href*='mode=reply&folder']")
        page.wait_for_url("**/compose/**")
        self.assertIn("bob@example.com", page.input_value("#to"))
        attachment = os.path.join(self.tmp, "보고서.txt")
        with open(attachment, "w", encoding="utf-8") as f:
            f.write("분기 보고서\n")
        page.set_input_files("#files", attachment)
        page.fill("#body", "첨부 파일을 보냅니다.")
        self.shot("webmail-compose")
        page.click("form.compose button.primary")
        page.wait_for_url("**/folder/**")
        self.assertNotIn("/compose/", page.url)

        # Bob receives the reply with its Korean-named attachment.
        self.context.clear_cookies()
        self.login("bob", "bob-pw12")
        deadline = time.monotonic() + 15
        while "Re:" not in page.inner_text("main") and time.monotonic() < deadline:
            time.sleep(0.3)
            page.reload()
        self.open_subject("Re:")
        self.assertIn("첨부 파일을 보냅니다.", page.inner_text("main"))
        self.assertTrue(page.locator("a[download]:has-text('보고서.txt')").is_visible())
        self.shot("webmail-reply-received")
        self.assertEqual(self.errors, [])

    def test_phone_layout(self):
        """On a phone-sized screen the page fits its width (no sideways scroll)."""
        self.page.set_viewport_size({"width": 390, "height": 844})
        self.login("alice", "alice-pw1")
        for path in ("folder/Inbox", None):
            if path is None:
                self.open_subject("회의 일정 안내")
            width = self.page.evaluate("document.documentElement.scrollWidth")
            self.assertLessEqual(width, 390, self.page.url)
        self.shot("webmail-phone-read")

    def test_hostile_html_runs_no_script(self):
        page = self.page
        self.login("alice", "alice-pw1")
        self.open_subject("Invoice")
        frame_el = page.wait_for_selector("iframe.body-html")
        frame = frame_el.content_frame()
        frame.wait_for_load_state()
        self.assertIn("Keep this colour", frame.inner_text("body"))
        # Time for onload / onerror handlers, had any survived.
        page.wait_for_timeout(1000)
        titles = [page.title()] + [f.evaluate("document.title") for f in page.frames]
        for title in titles:
            self.assertNotIn("pwned", title)
        self.assertEqual(self.errors, [])
        self.assertNotIn("evil.example", page.url)
        self.shot("webmail-hostile")
