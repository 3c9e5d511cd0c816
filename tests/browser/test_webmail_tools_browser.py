"""
The webmail's tools in a real Chromium (issue 7): add a contact and get it
offered in compose, save a calendar memo with a link, and upload then
download a web-folder file.
"""

import datetime
import os
import re

from tests.browser.harness import BrowserTestCase


class WebmailToolsInBrowser(BrowserTestCase):

    settings = (("DOMAIN", "example.com"), ("DNS1", "127.0.0.1:9"))

    @classmethod
    def prepare_home(cls):
        cls.server.admin("user", "add", "alice", "alice-pw1", "--name", "Alice")

    def setUp(self):
        super().setUp()
        page = self.page
        page.goto(self.url("/mail/"))
        page.fill("#login", "alice")
        page.fill("#password", "alice-pw1")
        page.click("form.login button[type=submit]")
        page.wait_for_url("**/folder/Inbox*")
        self.rand = re.search(r"/mail/box/([^/]+)/", page.url).group(1)

    def test_every_side_bar_page_opens(self):
        """Each page of the side bar opens without a page error (screenshots kept)."""
        links = self.page.eval_on_selector_all(
            "nav a", "els => els.map(e => e.getAttribute('href'))")
        self.assertGreaterEqual(len(links), 10)
        for href in links:
            response = self.page.goto(self.url(href))
            self.assertEqual(response.status, 200, href)
            self.assertTrue(self.page.inner_text("main").strip(), href)
            name = href.replace("/mail/", "").replace(self.rand, "")
            self.shot("webmail-" + re.sub(r"/+", "-", name).strip("-"))
        self.assertEqual(self.errors, [])

    def test_add_contact_then_complete_it_in_compose(self):
        page = self.page
        page.click("nav a[href='/mail/contacts/%s/']" % self.rand)
        page.click("a[href='/mail/contacts/%s/new']" % self.rand)
        page.fill("#name", "홍길동")
        page.fill("#addresses", "hong@far.test")
        page.fill("#phone", "010-1234-5678")
        page.click("form.contact-form button.primary")
        page.wait_for_url("**/mail/contacts/%s/*" % self.rand)
        self.assertIn("hong@far.test", page.inner_text("main"))
        self.shot("webmail-contacts")

        # Compose offers the contact as the user types its name.
        page.goto(self.url("/mail/compose/%s/new" % self.rand))
        page.click("#to")
        page.keyboard.type("홍")
        page.wait_for_function(
            "() => { const l = document.getElementById('to').list;"
            " return l && l.options.length > 0; }")
        offers = page.evaluate(
            "() => Array.from(document.getElementById('to').list.options).map(o => o.value)")
        self.assertIn("홍길동 <hong@far.test>", offers)
        self.assertEqual(self.errors, [])

    def test_calendar_memo_with_link(self):
        page = self.page
        page.click("nav a[href='/mail/calendar/%s/']" % self.rand)
        self.shot("webmail-calendar-month")
        day = datetime.date.today().replace(day=15).isoformat()
        page.goto(self.url("/mail/calendar/%s/day/%s" % (self.rand, day)))
        page.fill("#memo", "팀 회의 https://intra.example/meeting <b>굵게</b>")
        page.click("form.box button.primary")
        page.goto(self.url("/mail/calendar/%s/day/%s" % (self.rand, day)))
        self.assertIn("팀 회의", page.input_value("#memo"))
        # The month view shows the memo, its URL as a link, its markup as text.
        page.goto(self.url("/mail/calendar/%s/month/%s" % (self.rand, day[:7])))
        main = page.inner_text("main")
        self.assertIn("팀 회의", main)
        self.assertIn("<b>굵게</b>", main)
        self.assertEqual(page.locator("main a[href='https://intra.example/meeting']").count(), 1)
        self.shot("webmail-calendar-memo")
        self.assertEqual(self.errors, [])

    def test_web_folder_upload_and_download(self):
        page = self.page
        page.click("nav a[href='/mail/webfolder/%s/']" % self.rand)
        page.fill("#wf-newname", "문서")
        page.click("form[action$='mkdir'] button.primary")
        page.click("a.wf-dir:has-text('문서')")
        first = os.path.join(self.tmp, "회의록.txt")
        second = os.path.join(self.tmp, "data.bin")
        with open(first, "w", encoding="utf-8") as f:
            f.write("3분기 회의록\n")
        payload = os.urandom(300 * 1024)
        with open(second, "wb") as f:
            f.write(payload)
        page.set_input_files("#wf-files", [first, second])
        page.click("form[action*='upload'] button.primary")
        self.assertTrue(page.locator("a.wf-file:has-text('회의록.txt')").is_visible())
        self.shot("webmail-webfolder")
        # Download through the page's own link, as the browser saves it.
        with page.expect_download() as info:
            page.click("a.wf-file:has-text('회의록.txt')")
        download = info.value
        self.assertEqual(download.suggested_filename, "회의록.txt")
        with open(download.path(), encoding="utf-8") as f:
            self.assertEqual(f.read(), "3분기 회의록\n")
        with page.expect_download() as info:
            page.click("a.wf-file:has-text('data.bin')")
        with open(info.value.path(), "rb") as f:
            self.assertEqual(f.read(), payload)
        # The files are in the account's web folder on disk, nowhere else.
        folder = os.path.join(self.server.home, "webdir", "alice", "문서")
        self.assertEqual(sorted(os.listdir(folder)), ["data.bin", "회의록.txt"])
        self.assertEqual(self.errors, [])
