"""
Webmail login and sessions (SPEC W1, seed §18): login by ID or address,
failures and lockout, the three session checks (IP, cookie, random path
token) each switchable per account, idle expiry, logout, the notice after
login, CSRF on every POST route.
"""

import os
import re

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from tests.webmailclient import MailClient, mail_services
from zwms import logs as logchannels
from zwms.account import Delivery
from zwms.fileio import atomic_write
from zwms.web.webmail import state
from zwms.web.webmail.app import WebmailApp
from zwms.web.webmail.compose import ComposeApp
from zwms.web.webmail.filters import FiltersApp
from zwms.web.webmail.folders import FoldersApp
from zwms.web.webmail.mailbox import MailboxApp
from zwms.web.webmail.settings import SettingsApp


def post_routes():
    """Every POST route of the webmail, with sample arguments."""
    out = []
    for prefix, app in (("/mail", WebmailApp), ("/mail/box", MailboxApp),
                        ("/mail/compose", ComposeApp), ("/mail/settings", SettingsApp),
                        ("/mail/folders", FoldersApp), ("/mail/filters", FiltersApp)):
        for rule in app.app.url_map.iter_rules():
            if "POST" in (rule.methods or ()):
                out.append(prefix + rule.rule)
    return out


class WebmailTestCase(SynchronousTestCase):
    """A home with alice (and bob), a clock, and a browser."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.root = self.mktemp()
        os.makedirs(self.root)
        self.services = mail_services(self.root, clock=self.clock)
        self.services.settings.set("DOMAIN", "example.com")
        self.services.accounts.add("alice", "secret1", name="Alice")
        self.services.accounts.add("bob", "secret2", name="Bob")
        self.client = MailClient(self.services)

    def deliver(self, data, account="alice", folder="Inbox"):
        return self.successResultOf(self.services.mail.deliver(
            [Delivery(account, data, folder)]))[0]

    def log(self):
        return self.services.logs.lines[logchannels.WEBMAIL]


class LoginTests(WebmailTestCase):

    def test_front_page_offers_the_login(self):
        r = self.client.get("/")
        self.assertEqual(r.code, 200)
        self.assertIn('action="/mail/login"', r.text)
        self.assertIn("웹메일", r.text)

    def test_login_by_id(self):
        r = self.client.login()
        self.assertEqual(r.code, 303)
        self.assertTrue(r.header("location").endswith("/folder/Inbox"))
        page = self.client.box("folder/Inbox")
        self.assertEqual(page.code, 200)
        self.assertIn("받은편지함", page.text)
        self.assertIn("webmail login: alice", self.log())

    def test_login_by_address(self):
        r = self.client.login("alice@example.com", "secret1")
        self.assertEqual(r.code, 303)

    def test_wrong_password(self):
        r = self.client.login("alice", "nope")
        self.assertEqual(r.code, 403)
        self.assertIn("아이디 또는 비밀번호가 틀립니다", r.text)
        self.assertIn("webmail login failed: alice", self.log())
        self.assertNotIn("zwms_mail", self.client.cookies)

    def test_unknown_and_locked_accounts(self):
        self.assertEqual(self.client.login("nobody", "x").code, 403)
        self.services.accounts.set("bob", "locked", "1")
        self.assertEqual(self.client.login("bob", "secret2").code, 403)

    def test_lockout(self):
        for _ in range(5):
            self.client.login("alice", "bad")
        r = self.client.login("alice", "secret1")
        self.assertEqual(r.code, 429)
        self.clock.advance(16 * 60)
        self.assertEqual(self.client.login("alice", "secret1").code, 303)

    def test_login_needs_the_csrf_token(self):
        self.client.get("/mail/")
        r = self.client.post("/mail/login", {"login": "alice", "password": "secret1",
                                             "csrf": "forged-token-forged-token"})
        self.assertEqual(r.code, 403)

    def test_notice_after_login(self):
        atomic_write(os.path.join(self.services.home.data, "notice.txt"),
                     "점검 안내: <b>토요일</b>\n".encode("utf-8"))
        r = self.client.login()
        self.assertTrue(r.header("location").endswith("/notice"))
        page = self.client.box("notice")
        self.assertIn("점검 안내: &lt;b&gt;토요일&lt;/b&gt;", page.text)

    def test_logout(self):
        self.client.login()
        r = self.client.post("/mail/settings/%s/logout" % self.client.rand)
        self.assertEqual(r.code, 303)
        self.assertEqual(self.client.box("folder/Inbox").code, 303)
        self.assertIn("webmail logout: alice", self.log())

    def test_idle_expiry(self):
        self.client.login()
        self.clock.advance(31 * 60)
        r = self.client.box("folder/Inbox")
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/mail/?expired=1")


class SessionCheckTests(WebmailTestCase):
    """The three checks of seed §18."""

    def test_ip_change_refused(self):
        self.client.login()
        self.patch(state, "client_ip", lambda request: "10.9.9.9")
        r = self.client.box("folder/Inbox")
        self.assertEqual(r.code, 303)
        self.assertTrue(any("another IP" in line for line in self.log()))

    def test_ip_session_off_allows_another_ip(self):
        self.services.accounts.set("alice", "ipsession", "0")
        self.client.login()
        self.patch(state, "client_ip", lambda request: "10.9.9.9")
        self.assertEqual(self.client.box("folder/Inbox").code, 200)

    def test_last_login_wins(self):
        self.client.login()
        other = MailClient(self.services, self.client.resource)
        other.login()
        self.assertEqual(other.box("folder/Inbox").code, 200)
        self.assertEqual(self.client.box("folder/Inbox").code, 303)

    def test_missing_cookie_refused(self):
        self.client.login()
        del self.client.cookies["zwms_mail"]
        self.assertEqual(self.client.box("folder/Inbox").code, 303)
        self.assertTrue(any("no session" in line for line in self.log()))

    def test_token_mismatch_refused(self):
        self.client.login()
        good = self.client.rand
        self.client.rand = good[:-2] + ("AA" if good[-2:] != "AA" else "BB")
        self.assertEqual(self.client.box("folder/Inbox").code, 303)
        self.assertTrue(any("random session mismatch" in line for line in self.log()))

    def test_rand_off_uses_a_dash(self):
        self.services.accounts.set("alice", "randsession", "0")
        self.client.login()
        self.assertEqual(self.client.rand, "-")
        self.assertEqual(self.client.box("folder/Inbox").code, 200)
        del self.client.cookies["zwms_mail"]
        self.assertEqual(self.client.box("folder/Inbox").code, 303)

    def test_env_randsession_off(self):
        self.services.settings.set("RANDSESSION", "0")
        self.client.login()
        self.assertEqual(self.client.rand, "-")

    def test_cookie_off_the_path_is_the_key(self):
        self.services.accounts.set("alice", "cookiesession", "0")
        self.client.login()
        self.assertNotIn("zwms_mail", self.client.cookies)
        self.assertEqual(self.client.box("folder/Inbox").code, 200)
        self.client.rand = "-"
        self.assertEqual(self.client.box("folder/Inbox").code, 303)

    def test_both_off_still_needs_the_cookie(self):
        self.services.accounts.set("alice", "cookiesession", "0")
        self.services.accounts.set("alice", "randsession", "0")
        self.services.accounts.set("alice", "ipsession", "0")
        self.client.login()
        self.assertIn("zwms_mail", self.client.cookies)
        stranger = MailClient(self.services, self.client.resource)
        self.assertEqual(stranger.get("/mail/box/-/folder/Inbox").code, 303)

    def test_cookie_flags(self):
        self.client.get("/mail/")
        r = self.client.post("/mail/login", {"login": "alice", "password": "secret1"})
        cookie = [c for c in r.headers.getRawHeaders("set-cookie") if c.startswith("zwms_mail=")]
        self.assertEqual(len(cookie), 1)
        self.assertIn("HttpOnly", cookie[0])
        self.assertIn("samesite=strict", cookie[0].lower())

    def test_session_of_one_user_is_not_another_users(self):
        self.client.login()
        bob = MailClient(self.services, self.client.resource)
        bob.login("bob", "secret2")
        # Bob's cookie with Alice's path token: refused.
        bob.rand = self.client.rand
        self.assertEqual(bob.box("folder/Inbox").code, 303)


class CsrfTests(WebmailTestCase):

    def test_every_post_route_needs_the_token(self):
        name = self.deliver(b"Subject: x\r\n\r\nbody\r\n")
        self.client.login()
        routes = post_routes()
        self.assertGreaterEqual(len(routes), 20)
        self.assertIn("/mail/signup", routes)
        self.services.mail.create_folder("alice", "Own")
        for rule in routes:
            if rule == "/mail/login":
                continue
            path = (rule.replace("<rand>", self.client.rand).replace("<name>", name)
                    .replace("<int:index>", "0").replace("<any(add, remove):op>", "add")
                    .replace("<kind>", "allow_ips")
                    .replace("<zipname>", "alice-20240101-000000.zip"))
            path = path.replace("<folder>", "Own" if "/mail/folders/" in path else "Inbox")
            self.assertNotIn("<", path)
            for data in ({"csrf": "forged-forged-forged-forged"}, {"csrf": ""}):
                r = self.client.post(path, data)
                self.assertEqual(r.code, 403, path)
            r = self.client.upload(path, {"csrf": "forged-forged-forged-forged"})
            self.assertEqual(r.code, 403, path)
        # Nothing happened: the message is still unread in the Inbox, alice logged in,
        # her folder is there, no account was made.
        self.assertEqual([(i.name, i.seen) for i in self.services.mail.messages("alice")],
                         [(name, False)])
        self.assertIn("Own", self.services.mail.folders("alice"))
        self.assertEqual(self.services.accounts.list(), ["alice", "bob"])
        self.assertEqual(self.client.box("folder/Inbox").code, 200)

    def test_no_inline_script_or_style(self):
        """Scripts only as same-origin files (the CSP allows nothing else)."""
        inline = re.compile(r"<script(?![^>]*\bsrc=\"/mail/js/[a-z0-9_-]+\.js\")")
        name = self.deliver(b"Subject: x\r\n\r\nbody\r\n")
        self.client.login()
        for path in ("folder/Inbox", "read/Inbox/%s" % name, "notice"):
            text = self.client.box(path).text.lower()
            self.assertNotRegex(text, inline, path)
            self.assertNotIn(" style=", text, path)
        for path in ("/mail/compose/%s/new" % self.client.rand,
                     "/mail/settings/%s/" % self.client.rand, "/mail/"):
            text = self.client.get(path).text.lower()
            self.assertNotRegex(text, inline, path)


class UserSkinCatalogTests(SynchronousTestCase):
    """Every string of the user skin has its Korean translation (SPEC W10)."""

    def test_every_user_skin_string_translated(self):
        from jinja2.ext import babel_extract

        from zwms import i18n
        from zwms.web.templates import skins_root
        folder = os.path.join(skins_root(), state.USER_SKIN)
        wanted = set()
        for name in os.listdir(folder):
            if name.endswith(".html"):
                with open(os.path.join(folder, name), "rb") as f:
                    for _, _, msg, _ in babel_extract(f, ("_", "gettext"), [],
                                                      {"extensions": "jinja2.ext.i18n"}):
                        msg = msg[0] if isinstance(msg, tuple) else msg
                        if msg:
                            wanted.add(msg)
        catalog = i18n.catalog("ko")
        missing = sorted(m for m in wanted if not (catalog.get(m) and catalog.get(m).string))
        self.assertEqual(missing, [], "add these to a .po file of zwms/i18n/ko/LC_MESSAGES/")
