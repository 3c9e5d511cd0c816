"""
Help pages (SPEC W9; Nmail IV, V, VI): the mail client setup guide filled
in with this server's host name, the ports of run/listen and their TLS
modes, the user's login; the user FAQ; the administrator FAQ (ADMINID
only); the return-mail guide; Korean and English.
"""

import os

from tests.test_webmail_session import WebmailTestCase
from tests.webmailclient import MailClient
from zwms.bounces import ADVICE, CATEGORIES
from zwms.fileio import atomic_write
from zwms.web.webmail import help as helppages

LISTEN = (b"smtp 0.0.0.0:2525\nsubmission 0.0.0.0:10587\nsmtps 0.0.0.0:10465\n"
          b"pop3 0.0.0.0:10110\npop3s 127.0.0.1:10995\nweb 0.0.0.0:19005\n")


class HelpTestCase(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        os.makedirs(self.services.home.run, exist_ok=True)
        atomic_write(os.path.join(self.services.home.run, "listen"), LISTEN)
        self.client.login()

    def help(self, path, headers=None):
        return self.client.request("GET", "/mail/help/%s/%s" % (self.client.rand, path),
                                   headers=headers)


class SetupTests(HelpTestCase):

    def test_index_and_bare_url(self):
        r = self.help("")
        self.assertEqual(r.code, 200)
        self.assertIn("메일 프로그램 설정", r.text)
        self.assertIn("/mail/help/%s/setup" % self.client.rand, r.text)
        self.assertNotIn("admin-faq", r.text)
        self.assertIn('href="/mail/css/help.css"', r.text)
        # the side bar links here
        self.assertIn("/mail/help/%s/" % self.client.rand,
                      self.client.box("folder/Inbox").text)

    def test_values_of_this_server(self):
        r = self.help("setup", headers={"Host": "mail.example.com:19005"})
        self.assertEqual(r.code, 200)
        text = r.text
        self.assertIn("<code>mail.example.com</code>", text)
        self.assertIn("<code>alice@example.com</code>", text)
        self.assertIn("<code>alice</code>", text)
        # the ports of run/listen with their TLS modes, reachable ones first
        self.assertIn("<code>10587</code> STARTTLS", text)
        self.assertIn("<code>10465</code> SSL/TLS", text)
        self.assertIn("<code>2525</code> STARTTLS", text)
        self.assertIn("<code>10110</code> STARTTLS", text)
        self.assertIn("<code>10995</code> SSL/TLS (이 컴퓨터에서만)", text)
        self.assertLess(text.index("<code>10110</code>"), text.index("<code>10995</code>"))
        # each client's steps name the best port
        self.assertIn("Thunderbird", text)
        self.assertIn("Outlook", text)
        self.assertIn("아이폰", text)
        self.assertIn("안드로이드", text)
        self.assertIn("서버 mail.example.com, 포트 10587, 암호화 방법 STARTTLS", text)
        # phones get the implicit-TLS ports ("Use SSL") reachable from outside
        self.assertIn("받는 서버 포트를 10110 로", text)   # 995 is local only here
        self.assertIn("서버 포트 10465 로", text)
        self.assertNotIn("표준 포트", text)

    def test_host_falls_back_to_domain(self):
        r = self.help("setup", headers={"Host": "localhost:19005"})
        self.assertIn("<code>example.com</code>", r.text)
        self.assertEqual(helppages.request_host(FakeRequest(b"[::1]:9005"), "d.test"), "::1")
        self.assertEqual(helppages.request_host(FakeRequest(b"10.0.0.5:9005"), "d.test"),
                         "10.0.0.5")
        self.assertEqual(helppages.request_host(FakeRequest(b""), "d.test"), "d.test")

    def test_standard_ports_when_not_recorded(self):
        os.unlink(os.path.join(self.services.home.run, "listen"))
        text = self.help("setup").text
        self.assertIn("<code>587</code> STARTTLS", text)
        self.assertIn("<code>995</code> SSL/TLS", text)
        self.assertIn("표준 포트", text)

    def test_pop3_off_and_sharing(self):
        self.services.settings.set("POP3SHARE", "1")
        text = self.help("setup").text
        self.assertIn("POP3 공유가 켜져", text)
        self.services.settings._values["POP3"] = False
        text = self.help("setup").text
        self.assertIn("POP3 로그인이 꺼져", text)

    def test_hosting_address_shown(self):
        self.services.accounts.set("alice", "address", "alice@custom.test")
        self.assertIn("<code>alice@custom.test</code>", self.help("setup").text)

    def test_english(self):
        self.client = MailClient(self.services)
        self.client.cookies["zwms_lang"] = "en"
        self.client.login()
        r = self.help("setup")
        self.assertIn("Outgoing mail server (SMTP)", r.text)
        self.assertIn("iPhone and iPad (Mail)", r.text)
        self.assertNotIn("받는 메일", r.text)

    def test_needs_a_session(self):
        r = self.client.get("/mail/help/%s/setup" % ("x" * 32))
        self.assertEqual(r.code, 303)
        self.assertEqual(MailClient(self.services).get(
            "/mail/help/%s/setup" % ("x" * 32)).code, 303)


class FakeRequest:
    def __init__(self, host):
        self.host = host

    def getHeader(self, name):
        return self.host


class FaqTests(HelpTestCase):

    def test_user_faq(self):
        self.services.settings._values["MAXMAILSIZE"] = 20480
        r = self.help("faq")
        self.assertEqual(r.code, 200)
        self.assertIn("20480 KB", r.text)
        self.assertIn("아웃룩", r.text)

    def test_admin_faq_only_for_the_admin(self):
        r = self.help("admin-faq")
        self.assertEqual(r.code, 403)
        self.assertIn("관리자 계정", r.text)
        self.services.settings.set("ADMINID", "alice")
        index = self.help("").text
        self.assertIn("/mail/help/%s/admin-faq" % self.client.rand, index)
        r = self.help("admin-faq")
        self.assertEqual(r.code, 200)
        self.assertIn("방화벽", r.text)
        self.assertIn("19005", r.text)       # the web port of run/listen
        self.assertIn(self.services.home.root, r.text)
        self.assertIn("realip.naver.com", r.text)

    def test_return_mail_guide_lists_every_category(self):
        text = self.help("returnmail").text
        for category in CATEGORIES:
            self.assertIn('id="%s"' % category, text)
            self.assertIn(ADVICE[category][0], text)


class CatalogTests(HelpTestCase):

    def test_no_english_left_on_the_korean_pages(self):
        """Spot checks that the long texts went through the catalog."""
        self.services.settings.set("ADMINID", "alice")
        for path, english in (("setup", "Enter these values"), ("faq", "Downloading by POP3"),
                              ("admin-faq", "Incoming from the internet")):
            self.assertNotIn(english, self.help(path).text, path)
