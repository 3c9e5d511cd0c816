"""
The /admin console's foundation (SPEC A1-A3): login, lockout, banner,
sessions that survive a restart and expire, CSRF on every POST route,
security headers, both languages on every page, admin info.
"""

import os

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from tests.webclient import Client, web_services
from zwms import logs as logchannels
from zwms.admin import ops
from zwms.web.admin import AdminApp
from zwms.web.config_pages import ConfigApp
from zwms.web.users import UsersApp

#: Every GET page of the console, with a Korean and an English word it shows.
PAGES = [
    ("/admin/system", "시스템정보", "System info"),
    ("/admin/logs/WebMail", "로그", "Log"),
    ("/admin/admininfo", "관리자정보", "Admin info"),
    ("/admin/config/env", "환경변수", "Environment"),
    ("/admin/config/basic", "기본환경편집", "Basic settings"),
    ("/admin/config/welcome", "환영메세지", "Welcome message"),
    ("/admin/config/notice", "공지메세지", "Notice message"),
    ("/admin/config/spam", "스팸필터편집", "Spam filter"),
    ("/admin/config/virus", "바이러스 확장자", "Virus extensions"),
    ("/admin/config/aliases", "가상이메일관리", "Virtual addresses"),
    ("/admin/config/domains", "도메인", "Domains"),
    ("/admin/users/", "사용자목록", "User list"),
    ("/admin/users/alice", "계정정보", "Account"),
]


def post_routes():
    """(path with sample arguments, app) of every POST route of the console."""
    out = []
    for prefix, app in (("/admin", AdminApp), ("/admin/users", UsersApp),
                        ("/admin/config", ConfigApp)):
        for rule in app.app.url_map.iter_rules():
            if "POST" in (rule.methods or ()):
                out.append(prefix + rule.rule.replace("<aid>", "alice"))
    return out


class ConsoleTestCase(SynchronousTestCase):
    """A home with one account, a clock, and a client."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.root = self.mktemp()
        os.makedirs(self.root)
        self.services = web_services(self.root, clock=self.clock)
        self.services.accounts.add("alice", "secret1", name="Alice")
        self.client = Client(self.services)

    def webmail_log(self):
        return self.services.logs.lines[logchannels.WEBMAIL]


class LoginTests(ConsoleTestCase):

    def test_login_root_root(self):
        r = self.client.login()
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/system")
        page = self.client.get("/admin/system")
        self.assertEqual(page.code, 200)
        self.assertIn("시스템정보", page.text)
        self.assertIn("admin login: root", self.webmail_log())

    def test_login_backs_up_admin_info_and_aliases(self):
        ctx = ops.context_from_services(self.services, None, "test")
        ops.alias_add(ctx, "info@%s" % self.services.settings["DOMAIN"], "alice")
        ops.set_admin_password(self.services.home, "n3w-pass")
        self.client.login("root", "n3w-pass")
        backup = os.path.join(self.root, "backup")
        self.assertTrue(os.path.exists(os.path.join(backup, "admin.cfg")))
        with open(os.path.join(backup, "virtual.dat")) as f:
            self.assertIn("alice", f.read())

    def test_wrong_password(self):
        r = self.client.login("root", "nope")
        self.assertEqual(r.code, 403)
        self.assertIn("아이디나 비밀번호가 틀렸습니다", r.text)
        self.assertNotIn("zwms_admin", self.client.cookies)
        self.assertEqual(self.client.get("/admin/system").code, 303)
        self.assertIn("admin login failed: root", self.webmail_log())

    def test_login_without_csrf_refused(self):
        self.client.get("/admin/login")
        r = self.client.post("/admin/login", {"login": "root", "password": "root",
                                              "csrf": "forged"})
        self.assertEqual(r.code, 403)
        self.assertNotIn("zwms_admin", self.client.cookies)

    def test_lockout_per_ip(self):
        for i in range(5):
            self.assertEqual(self.client.login("root", "bad%d" % i).code, 403)
        r = self.client.login("root", "root")
        self.assertEqual(r.code, 429)
        self.assertIn("15분", r.text)
        self.assertTrue(any("locked" in line for line in self.webmail_log()))
        self.clock.advance(15 * 60 + 1)
        self.assertEqual(self.client.login("root", "root").code, 303)

    def test_lockout_per_login(self):
        """Failures for one login from many IPs lock that login."""
        guard = self.client.resource.console.guard
        for i in range(5):
            guard.failed("10.0.0.%d" % i, "root")
        self.assertTrue(guard.locked("10.9.9.9", "root"))
        self.assertFalse(guard.locked("10.9.9.9", "other"))
        self.assertEqual(self.client.login("root", "root").code, 429)

    def test_banner_until_password_changed(self):
        self.client.login()
        banner = "root/root"
        self.assertIn(banner, self.client.get("/admin/system").text)
        r = self.client.post("/admin/admininfo", {"login": "boss", "password": "Str0ng!pw",
                                                  "password2": "Str0ng!pw"})
        self.assertEqual(r.code, 303)
        self.assertNotIn(banner, self.client.get("/admin/system").text)
        self.assertFalse(ops.admin_password_is_default(self.services.home))
        other = Client(self.services, self.client.resource)
        self.assertEqual(other.login("root", "root").code, 403)
        self.assertEqual(Client(self.services, self.client.resource)
                         .login("boss", "Str0ng!pw").code, 303)

    def test_admininfo_mismatch_shown(self):
        self.client.login()
        r = self.client.post("/admin/admininfo", {"login": "root", "password": "a1",
                                                  "password2": "a2"})
        self.assertEqual(r.code, 400)
        self.assertIn("두 비밀번호가 다릅니다", r.text)
        self.assertTrue(ops.admin_password_is_default(self.services.home))

    def test_logout(self):
        self.client.login()
        r = self.client.post("/admin/logout")
        self.assertEqual(r.code, 303)
        self.assertEqual(self.client.get("/admin/system").code, 303)
        self.assertEqual(os.listdir(os.path.join(self.root, "data", "sessions")), [])


class SessionTests(ConsoleTestCase):

    def test_cookie_flags(self):
        self.client.get("/admin/login")
        r = self.client.post("/admin/login", {"login": "root", "password": "root"})
        cookie = [c for c in r.headers.getRawHeaders("set-cookie") if c.startswith("zwms_admin=")]
        self.assertEqual(len(cookie), 1)
        self.assertIn("HttpOnly", cookie[0])
        self.assertIn("SameSite=strict", cookie[0])
        self.assertNotIn("Secure", cookie[0])  # plain HTTP here

    def test_session_survives_new_site(self):
        self.client.login()
        fresh = Client(self.services)  # a new site and console over the same home
        fresh.cookies = dict(self.client.cookies)
        self.assertEqual(fresh.get("/admin/system").code, 200)

    def test_session_file_does_not_hold_the_cookie(self):
        self.client.login()
        token = self.client.cookies["zwms_admin"]
        folder = os.path.join(self.root, "data", "sessions")
        for name in os.listdir(folder):
            self.assertNotIn(token, name)
            with open(os.path.join(folder, name)) as f:
                self.assertNotIn(token, f.read())

    def test_idle_expiry(self):
        self.client.login()
        self.clock.advance(29 * 60)
        self.assertEqual(self.client.get("/admin/system").code, 200)
        self.clock.advance(29 * 60)  # touched 29 minutes ago: still alive
        self.assertEqual(self.client.get("/admin/system").code, 200)
        self.clock.advance(31 * 60)
        r = self.client.get("/admin/system")
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/login")
        # Expiry holds for a fresh site too (the file's last-seen time).
        fresh = Client(self.services)
        fresh.cookies = dict(self.client.cookies)
        self.assertEqual(fresh.get("/admin/system").code, 303)

    def test_forged_cookie(self):
        self.client.cookies["zwms_admin"] = "A" * 43
        self.assertEqual(self.client.get("/admin/system").code, 303)
        self.client.cookies["zwms_admin"] = "../../etc/passwd"
        self.assertEqual(self.client.get("/admin/system").code, 303)


class CSRFTests(ConsoleTestCase):

    def test_every_post_route_refuses_a_forged_token(self):
        routes = post_routes()
        self.assertGreater(len(routes), 20)
        self.client.login()
        for path in routes:
            for token in ("forged", None):
                data = {"csrf": token} if token else {}
                r = self.client.post(path, data, csrf=False)
                self.assertEqual(r.code, 403, "%s with %r answered %d" % (path, token, r.code))
        # Nothing happened: the account is there, the password is default.
        self.assertIsNotNone(self.services.accounts.get("alice"))
        self.assertTrue(ops.admin_password_is_default(self.services.home))
        self.assertEqual(self.client.get("/admin/system").code, 200)

    def test_post_without_session_refused(self):
        for path in post_routes():
            if path in ("/admin/login", "/admin/lang"):
                continue
            r = Client(self.services, self.client.resource).post(path, {"csrf": "x"})
            self.assertEqual(r.code, 403, path)


class PageTests(ConsoleTestCase):

    def test_every_page_in_korean_and_english(self):
        self.client.login()
        for path, korean, english in PAGES:
            r = self.client.get(path)
            self.assertEqual(r.code, 200, path)
            self.assertIn(korean, r.text, path)
            self.assertIn('lang="ko"', r.text)
        self.client.post("/admin/lang", {"lang": "en", "back": "/admin/system"})
        for path, korean, english in PAGES:
            r = self.client.get(path)
            self.assertEqual(r.code, 200, path)
            self.assertIn(english, r.text, path)
            self.assertIn('lang="en"', r.text)
            self.assertNotIn("시스템정보", r.text, path)

    def test_language_cookie_on_login_page(self):
        self.client.get("/admin/login")
        self.client.post("/admin/lang", {"lang": "en", "back": "/admin/login"})
        self.assertIn("Administrator login", self.client.get("/admin/login").text)

    def test_lang_back_is_local(self):
        self.client.login()
        r = self.client.post("/admin/lang", {"lang": "en", "back": "//evil.example/x"})
        self.assertEqual(r.header("location"), "/admin/")

    def test_security_headers(self):
        for path in ("/", "/admin/login", "/status.json", "/admin/css/admin.css"):
            r = self.client.get(path)
            self.assertEqual(r.code, 200, path)
            csp = r.header("content-security-policy")
            self.assertIn("frame-ancestors 'none'", csp)
            self.assertIn("script-src 'self'", csp)
            self.assertNotIn("unsafe-inline", csp)
            self.assertEqual(r.header("x-content-type-options"), "nosniff")
            self.assertEqual(r.header("referrer-policy"), "same-origin")

    def test_no_inline_script(self):
        self.client.login()
        for path, _, _ in PAGES:
            text = self.client.get(path).text.lower()
            self.assertNotIn("<script", text, path)
            self.assertNotIn(" style=", text, path)
            self.assertNotIn(" onclick=", text, path)

    def test_front_page_links_to_admin(self):
        r = self.client.get("/")
        self.assertIn('href="/admin/"', r.text)

    def test_static_files_stay_in_the_skin(self):
        for path in ("/admin/css/", "/admin/css/../login.html", "/admin/css/%2e%2e/login.html",
                     "/admin/images/..%2f..%2fsetup.cfg"):
            r = self.client.get(path)
            self.assertIn(r.code, (403, 404), path)
            self.assertNotIn("{%", r.text)

    def test_error_page_has_no_traceback(self):
        self.client.login()

        def broken(ctx):
            raise RuntimeError("secret internals")
        from zwms.admin import consoleops
        self.patch(consoleops, "system_info", broken)
        r = self.client.get("/admin/system")
        self.assertEqual(r.code, 500)
        self.assertNotIn("secret internals", r.text)
        self.assertNotIn("Traceback", r.text)
        self.assertTrue(self.services.logs.lines[logchannels.SYSTEMERROR])
        self.flushLoggedErrors(RuntimeError)

    def test_system_info_facts(self):
        self.client.login()
        r = self.client.get("/admin/system")
        self.assertIn("<th>계정 수</th><td>1</td>", r.text)
        self.assertIn(self.services.settings["DOMAIN"], self.client.get("/").text)
