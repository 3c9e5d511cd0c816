"""
The administrator console in a real Chromium (issue 5): log in, create an
account, edit it, change an environment setting and read the log page.
"""

import os

from tests.browser.harness import BrowserTestCase


class AdminConsoleInBrowser(BrowserTestCase):

    def login(self):
        page = self.page
        page.goto(self.url("/admin/login"))
        page.fill("#login", "root")
        page.fill("#password", "root")
        page.click("form.box button[type=submit]")
        page.wait_for_url("**/admin/system")

    def test_login_create_edit_account_env_and_logs(self):
        page = self.page
        page.goto(self.url("/admin/login"))
        self.assertEqual(page.locator("html").get_attribute("lang"), "ko")
        self.shot("admin-login")
        # A wrong password is refused on the page, then the right one works.
        page.fill("#login", "root")
        page.fill("#password", "wrong")
        page.click("form.box button[type=submit]")
        self.assertIn("/admin/login", page.url)
        self.login()
        self.assertEqual(page.inner_text("h1"), "시스템정보")
        self.assertIn("root/root", page.inner_text("[role=alert]"))
        self.shot("admin-system")

        # Create an account in the user list's form.
        page.goto(self.url("/admin/users/"))
        page.fill("#new-id", "kim")
        page.fill("#new-password", "s3cret-pw")
        page.fill("#new-name", "김철수")
        page.click("form[action='/admin/users/create'] button[type=submit]")
        page.goto(self.url("/admin/users/?q=kim"))
        self.assertTrue(page.locator("a[href='/admin/users/kim']").is_visible())
        self.shot("admin-users")

        # Edit it: a new name, the password left blank keeps the old one.
        page.click("a[href='/admin/users/kim']")
        page.fill("#f-name", "김영희")
        page.click("form[action='/admin/users/kim'] button[type=submit]")
        page.goto(self.url("/admin/users/kim"))
        self.assertEqual(page.input_value("#f-name"), "김영희")
        self.shot("admin-user")
        shown = self.server.admin("user", "show", "kim").stdout
        self.assertIn("김영희", shown)

        # Change an environment setting; a bad value is refused on the form.
        page.goto(self.url("/admin/config/env"))
        page.fill("#k-POP3COUNT", "many")
        page.click("form[action='/admin/config/env'] button[type=submit]")
        self.assertEqual(page.locator(".error").count() > 0, True)
        page.goto(self.url("/admin/config/env"))
        page.fill("#k-POP3COUNT", "42")
        page.click("form[action='/admin/config/env'] button[type=submit]")
        page.goto(self.url("/admin/config/env"))
        self.assertEqual(page.input_value("#k-POP3COUNT"), "42")
        self.shot("admin-env")
        with open(os.path.join(self.server.home, "data", "env.cfg"), encoding="utf-8") as f:
            self.assertIn("POP3COUNT=42", f.read().replace(" ", ""))

        # The WebMail log shows the failed and the good login.
        page.goto(self.url("/admin/logs/WebMail"))
        log = page.inner_text("pre.log")
        self.assertIn("admin login failed: root", log)
        self.assertIn("admin login: root", log)
        self.shot("admin-logs")
        self.assertEqual(self.errors, [])

    def test_main_pages_render(self):
        """Every menu page opens without a page error (screenshots kept)."""
        self.login()
        links = self.page.eval_on_selector_all(
            "nav.menu a", "els => els.map(e => e.getAttribute('href'))")
        self.assertIn("/admin/skins/", links)
        self.assertIn("/admin/boards/", links)
        for href in links:
            response = self.page.goto(self.url(href))
            self.assertEqual(response.status, 200, href)
            self.assertTrue(self.page.inner_text("h1").strip(), href)
            self.shot("admin" + href.rstrip("/").replace("/admin", "").replace("/", "-"))
        self.assertEqual(self.errors, [])
