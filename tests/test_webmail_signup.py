"""
Sign-up (SPEC W1, zwms.cfg NEWACC) and per-host login pages (seed §19).
"""

import os
import shutil

from tests.test_webmail_session import WebmailTestCase
from tests.webmailclient import MailClient
from zwms.web.site import make_resource
from zwms.web.templates import skins_root
from tests.webclient import inline


class SignupTests(WebmailTestCase):

    def signup(self, client=None, **fields):
        client = client or self.client
        client.get("/mail/signup")
        data = dict({"id": "carol", "name": "캐롤", "password": "secret9",
                     "password2": "secret9"}, **fields)
        return client.post("/mail/signup", data)

    def test_signup_creates_the_account_and_sends_the_welcome(self):
        from zwms.routing.messages import welcome_path
        os.makedirs(os.path.dirname(welcome_path(self.services.home)), exist_ok=True)
        with open(welcome_path(self.services.home), "w", encoding="utf-8") as f:
            f.write("환영합니다\n어서 오세요.\n")
        self.assertIn('href="/mail/signup"', self.client.get("/mail/").text)
        r = self.signup()
        self.assertEqual(r.code, 303, r.text[-400:])
        self.assertEqual(r.header("location"), "/mail/?done=signup")
        carol = self.services.accounts.get("carol")
        self.assertEqual(carol.name, "캐롤")
        self.assertEqual(len(self.services.mail.messages("carol")), 1)
        self.assertIn("webmail sign-up: carol", self.log())
        self.assertEqual(self.client.login("carol", "secret9").code, 303)

    def test_checks(self):
        for fields in ({"id": "Bad ID!"}, {"id": ""}, {"password": "short", "password2": "short"},
                       {"password2": "different"}, {"name": "x" * 101}):
            r = self.signup(**fields)
            self.assertEqual(r.code, 400, fields)
            self.assertIn('class="error"', r.text)
        self.assertEqual(self.signup(id="alice").code, 409)
        self.assertEqual(self.services.accounts.list(), ["alice", "bob"])

    def test_needs_the_csrf_token(self):
        self.client.get("/mail/signup")
        r = self.client.post("/mail/signup", {"id": "carol", "password": "secret9",
                                              "password2": "secret9", "csrf": "forged" * 5})
        self.assertEqual(r.code, 403)
        self.assertIsNone(self.services.accounts.get("carol"))

    def test_rate_limit_per_ip(self):
        for i in range(5):
            self.assertEqual(self.signup(id="user%d" % i).code, 303)
        r = self.signup(id="user9")
        self.assertEqual(r.code, 429)
        self.assertIsNone(self.services.accounts.get("user9"))
        # An hour later it is open again.
        self.clock.advance(3601)
        self.assertEqual(self.signup(id="user9").code, 303)

    def test_maxaccounts(self):
        self.services.settings.set("MAXACCOUNTS", "2")
        r = self.signup()
        self.assertEqual(r.code, 403)
        self.assertIsNone(self.services.accounts.get("carol"))
        self.assertIn("webmail sign-up refused (MAXACCOUNTS): carol", self.log())

    def test_off_when_newacc_0(self):
        self.services.settings._values["NEWACC"] = False   # a restart key (zwms.cfg)
        self.assertNotIn('href="/mail/signup"', self.client.get("/mail/").text)
        r = self.client.get("/mail/signup")
        self.assertEqual(r.code, 403)
        self.assertNotIn('name="password"', r.text)
        r = self.signup()
        self.assertEqual(r.code, 403)
        self.assertIsNone(self.services.accounts.get("carol"))


class HostLoginPageTests(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.skins = self.mktemp()
        shutil.copytree(skins_root(), self.skins)
        folder = os.path.join(self.skins, "wow_coolwind")
        with open(os.path.join(folder, "mail.custom.co.kr.html"), "w") as f:
            f.write('{% set title = "Custom" %}{% include "commonhead_guest.html" %}<h1>CUSTOM LOGIN</h1>'
                    '<form method="post" action="/mail/login"><input type="hidden" name="csrf" '
                    'value="{{ csrf }}"></form>{% include "commontail.html" %}')
        with open(os.path.join(self.skins, "secret.html"), "w") as f:
            f.write("SECRET")
        resource = make_resource(self.services, run=inline, skins=self.skins)
        self.client = MailClient(self.services, resource)

    def page(self, host):
        return self.client.request("GET", "/mail/", headers={"Host": host}).text

    def test_host_page_used_when_present(self):
        self.assertIn("CUSTOM LOGIN", self.page("mail.custom.co.kr"))
        self.assertIn("CUSTOM LOGIN", self.page("MAIL.custom.co.kr:9005"))
        self.assertNotIn("CUSTOM LOGIN", self.page("other.example"))
        self.assertIn('action="/mail/login"', self.page("other.example"))

    def test_no_path_tricks(self):
        # (Hosts with "/.." or empty labels never reach the webmail: the
        # router refuses them first; host_page is checked on them below.)
        for host in ("secret", "mail.custom.co.kr/x", "[::1]:80", "mail.custom.co.kr:1:2"):
            text = self.page(host)
            self.assertNotIn("SECRET", text, host)
            self.assertNotIn("CUSTOM LOGIN", text, host)


    def test_host_page_names(self):
        from twisted.web.test.requesthelper import DummyRequest
        from zwms.web.webmail.state import host_page

        def name(host):
            request = DummyRequest([b""])
            request.requestHeaders.setRawHeaders(b"host", [host.encode("latin-1")])
            return host_page(request)
        self.assertEqual(name("Mail.Custom.co.kr:9005"), "mail.custom.co.kr.html")
        self.assertEqual(name("mail.custom.co.kr."), "mail.custom.co.kr.html")
        for bad in ("../secret", "..", "a/../b.c", "secret", "x..y.z", "a.b/c", "[::1]",
                    "a.b:1:2", "", "a b.c", "a.b\\c", "%2e%2e.x", "a." * 130 + "b"):
            self.assertIsNone(name(bad), bad)
