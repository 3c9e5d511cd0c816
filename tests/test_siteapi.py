"""
Site integration routes (SPEC W6, seed §35): /zwms/site/login, logout,
signup, update, remove by signed links only; expiry, replay, bad
signature, a missing secret, a password in a URL; the iframe flow; the
Python sample of docs/site-integration.md signs links the server accepts.
"""

import hashlib
import hmac
import os
import re
from urllib.parse import urlencode

from tests.test_webmail_session import WebmailTestCase
from tests.webmailclient import MailClient
from zwms.siteauth import SiteAuth

SECRET = "shared-secret-of-the-company-site-0123"
DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                   "site-integration.md")


class SiteTestCase(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.services.settings.set("SITESECRET", SECRET)
        self.auth = SiteAuth(self.services.home, self.services.settings,
                             clock=self.clock.seconds)

    def link(self, action, account="alice", path=None, ttl=300, **fields):
        params = self.auth.make_params(action, account, ttl, **fields)
        return "/zwms/site/%s?%s" % (action if path is None else path, urlencode(params))

    def params(self, action, account="alice", **fields):
        return self.auth.make_params(action, account, **fields)

    def other(self):
        """A second browser on the same server (the same process and session cache)."""
        return MailClient(self.services, resource=self.client.resource)

    def result(self, r):
        return r.header("x-zwms-site-result")

    def refused_log(self, reason):
        return [line for line in self.log() if "site link refused (%s)" % reason in line]


class LoginTests(SiteTestCase):

    def test_login_starts_a_real_session(self):
        r = self.client.get(self.link("login"))
        self.assertEqual(r.code, 200)
        self.assertEqual(self.result(r), "ok")
        self.assertIn("웹메일에 로그인했습니다", r.text)
        refresh = r.header("refresh")
        m = re.match(r"^0; url=(/mail/box/([^/]+)/folder/Inbox)$", refresh)
        self.assertIsNotNone(m, refresh)
        self.assertIn('http-equiv="refresh"', r.text)
        self.assertIn("zwms_mail", self.client.cookies)
        self.client.rand = m.group(2)
        page = self.client.get(m.group(1))
        self.assertEqual(page.code, 200)
        self.assertIn("받은편지함", page.text)
        self.assertIn("webmail login (site link): alice", self.log())

    def test_login_page_may_be_framed_the_mailbox_not(self):
        r = self.client.get(self.link("login"))
        self.assertIsNone(r.header("x-frame-options"))
        self.assertIn("frame-ancestors *", r.header("content-security-policy"))
        inbox = self.client.get(r.header("refresh").split("url=", 1)[1])
        self.assertEqual(inbox.header("x-frame-options"), "DENY")
        self.assertIn("frame-ancestors 'none'", inbox.header("content-security-policy"))

    def test_iframe_flow(self):
        """A hidden iframe logs in without navigating; /mail/ then opens the mailbox."""
        r = self.client.request("GET", self.link("login"), headers={"Sec-Fetch-Dest": "iframe"})
        self.assertEqual(r.code, 200)
        self.assertIsNone(r.header("refresh"))
        self.assertNotIn('http-equiv="refresh"', r.text)
        self.assertIn("zwms_mail", self.client.cookies)
        # the site's "webmail" link
        r = self.client.get("/zwms/site/open")
        self.assertEqual(r.code, 303)
        self.assertRegex(r.header("location"), r"^/mail/box/[^/]+/folder/Inbox$")
        self.assertEqual(self.client.get(r.header("location")).code, 200)
        # without a session it is the login page: it logs nobody in
        stranger = self.other()
        r = stranger.get("/zwms/site/open")
        self.assertEqual((r.code, r.header("location")), (303, "/mail/"))

    def test_next_stay_and_compose(self):
        r = self.client.get(self.link("login", next="stay"))
        self.assertIsNone(r.header("refresh"))
        r = self.other().get(self.link("login", next="compose"))
        self.assertRegex(r.header("refresh"), r"url=/mail/compose/[^/]+/new$")

    def test_unknown_next_refused(self):
        r = self.client.get(self.link("login", next="http://evil.example/"))
        self.assertEqual(r.code, 400)
        self.assertNotIn("zwms_mail", self.client.cookies)

    def test_id_alone_never_logs_in(self):
        for query in ("id=alice", "action=login&id=alice", "action=login&id=alice&exp=9999999999"
                      "&nonce=abcdefghijklmnopqrst"):
            r = self.client.get("/zwms/site/login?" + query)
            self.assertEqual(r.code, 400, query)
            self.assertEqual(self.result(r), "malformed")
        self.assertNotIn("zwms_mail", self.client.cookies)
        self.assertEqual(len(self.refused_log("malformed")), 3)

    def test_bad_signature(self):
        params = self.params("login")
        params["id"] = "bob"       # signed for alice
        r = self.client.get("/zwms/site/login?" + urlencode(params))
        self.assertEqual(r.code, 403)
        self.assertEqual(self.result(r), "bad-signature")
        self.assertIn("올바르게 서명되지 않았습니다", r.text)
        self.assertNotIn("zwms_mail", self.client.cookies)
        self.assertEqual(len(self.refused_log("bad-signature")), 1)

    def test_expired(self):
        url = self.link("login", ttl=60)
        self.clock.advance(61)
        r = self.client.get(url)
        self.assertEqual(r.code, 403)
        self.assertEqual(self.result(r), "expired")
        self.assertIn("만료", r.text)
        self.assertNotIn("zwms_mail", self.client.cookies)
        self.assertEqual(len(self.refused_log("expired")), 1)

    def test_replay(self):
        url = self.link("login")
        self.assertEqual(self.client.get(url).code, 200)
        other = self.other()
        r = other.get(url)
        self.assertEqual(r.code, 403)
        self.assertEqual(self.result(r), "replayed")
        self.assertIn("이미 사용", r.text)
        self.assertNotIn("zwms_mail", other.cookies)
        self.assertEqual(len(self.refused_log("replayed")), 1)

    def test_path_action_must_be_the_signed_one(self):
        params = self.params("logout")
        r = self.client.get("/zwms/site/login?" + urlencode(params))
        self.assertEqual(r.code, 400)
        r = self.client.get("/zwms/site/nothing?" + urlencode(params))
        self.assertEqual(r.code, 404)

    def test_bare_paths_take_the_signed_action(self):
        for path in ("/zwms/site", "/zwms/site/"):
            r = self.other().get(path + "?" + urlencode(self.params("login")))
            self.assertEqual(r.code, 200, path)
            self.assertIsNotNone(r.header("refresh"))

    def test_locked_and_unknown_accounts(self):
        self.services.accounts.set("bob", "locked", "1")
        r = self.client.get(self.link("login", "bob"))
        self.assertEqual((r.code, self.result(r)), (403, "account-locked"))
        r = self.client.get(self.link("login", "nobody"))
        self.assertEqual((r.code, self.result(r)), (404, "no-account"))
        self.assertNotIn("zwms_mail", self.client.cookies)

    def test_english_page(self):
        self.client.cookies["zwms_lang"] = "en"
        r = self.client.get(self.link("login", ttl=1))
        self.assertIn("You are logged in to the webmail.", r.text)


class OffTests(SiteTestCase):

    def test_missing_secret_turns_it_off(self):
        url = self.link("login")
        self.services.settings.set("SITESECRET", "")
        r = self.client.get(url)
        self.assertEqual(r.code, 404)
        self.assertEqual(self.result(r), "off")
        self.assertIn("SITESECRET", r.text)
        self.assertNotIn("zwms_mail", self.client.cookies)
        self.assertEqual(len(self.refused_log("off")), 1)

    def test_short_secret_is_off_too(self):
        url = self.link("remove", "bob")
        self.services.settings.set("SITESECRET", "short")
        r = self.client.post("/zwms/site/remove", dict(
            p.split("=", 1) for p in url.split("?", 1)[1].split("&")), csrf=False)
        self.assertEqual(r.code, 404)
        self.assertIsNotNone(self.services.accounts.get("bob"))


class LogoutTests(SiteTestCase):

    def test_logout_ends_every_session_of_the_account(self):
        # without the IP session, where a second login would end the first
        self.services.accounts.set("alice", "ipsession", "0")
        self.client.login()
        other = self.other()
        other.login()
        bob = self.other()
        bob.login("bob", "secret2")
        r = self.client.get(self.link("logout"))
        self.assertEqual((r.code, self.result(r)), (200, "ok"))
        self.assertNotIn("zwms_mail", self.client.cookies)
        self.assertEqual(other.box("folder/Inbox").code, 303)
        self.assertEqual(bob.box("folder/Inbox").code, 200)
        self.assertIn("webmail logout (site link): alice, 2 session(s) ended", self.log())

    def test_logout_replay_refused(self):
        url = self.link("logout")
        self.client.get(url)
        self.assertEqual(self.client.get(url).code, 403)


class AccountTests(SiteTestCase):

    def post(self, action, account="alice", client=None, **fields):
        return (client or self.client).post("/zwms/site/" + action,
                                            self.params(action, account, **fields), csrf=False)

    def test_signup_by_post(self):
        r = self.post("signup", "carol", password="carol-pw1", name="Carol Kim")
        self.assertEqual((r.code, self.result(r)), (200, "ok"))
        self.assertIn("메일 계정을 만들었습니다", r.text)
        acct = self.services.accounts.get("carol")
        self.assertEqual(acct.name, "Carol Kim")
        self.assertTrue(self.services.accounts.check_password("carol", "carol-pw1"))
        self.assertIn("webmail sign-up (site link): carol", self.log())
        # the new member logs in through the site at once
        self.assertEqual(self.other().get(self.link("login", "carol")).code, 200)

    def test_signup_checks(self):
        r = self.post("signup", "dave", password="123")
        self.assertEqual((r.code, self.result(r)), (400, "invalid"))
        self.assertIsNone(self.services.accounts.get("dave"))
        r = self.post("signup", "alice", password="long-enough")
        self.assertEqual((r.code, self.result(r)), (409, "exists"))
        self.assertTrue(self.services.accounts.check_password("alice", "secret1"))

    def test_signup_ignores_newacc_but_keeps_maxaccounts(self):
        """NEWACC is for anonymous visitors; the signed site may sign up; MAXACCOUNTS holds."""
        self.services.settings._values["NEWACC"] = False
        self.assertEqual(self.post("signup", "gina", password="gina-pw-1").code, 200)
        self.services.settings.set("MAXACCOUNTS", "3")
        r = self.post("signup", "hank", password="hank-pw-1")
        self.assertEqual((r.code, self.result(r)), (403, "license"))
        self.assertIsNone(self.services.accounts.get("hank"))
        self.assertTrue(self.refused_log("license"))

    def test_password_never_in_a_url(self):
        r = self.client.get(self.link("signup", "erin", password="erin-pw-1"))
        self.assertEqual((r.code, self.result(r)), (400, "password-in-url"))
        self.assertIsNone(self.services.accounts.get("erin"))
        self.assertFalse([line for line in self.log() if "erin-pw-1" in line])

    def test_signup_by_iframe_get_without_password_is_refused(self):
        r = self.client.get(self.link("signup", "erin", name="Erin"))
        self.assertEqual(r.code, 400)
        self.assertIsNone(self.services.accounts.get("erin"))

    def test_update(self):
        r = self.post("update", name="Alice Lee", password="new-secret")
        self.assertEqual((r.code, self.result(r)), (200, "ok"))
        self.assertEqual(self.services.accounts.get("alice").name, "Alice Lee")
        self.assertTrue(self.services.accounts.check_password("alice", "new-secret"))
        self.assertIn("webmail update (site link): alice (name, password)", self.log())
        self.assertFalse([line for line in self.log() if "new-secret" in line])

    def test_update_needs_a_field_and_an_account(self):
        r = self.post("update")
        self.assertEqual(r.code, 400)
        r = self.post("update", "nobody", name="X")
        self.assertEqual((r.code, self.result(r)), (404, "no-account"))

    def test_update_tampered_field_refused(self):
        params = self.params("update", name="Alice")
        params["name"] = "Mallory"
        r = self.client.post("/zwms/site/update", params, csrf=False)
        self.assertEqual(r.code, 403)
        self.assertEqual(self.services.accounts.get("alice").name, "Alice")

    def test_remove(self):
        bob = self.other()
        bob.login("bob", "secret2")
        r = self.post("remove", "bob")
        self.assertEqual((r.code, self.result(r)), (200, "ok"))
        self.assertIsNone(self.services.accounts.get("bob"))
        self.assertEqual(bob.box("folder/Inbox").code, 303)
        self.assertIn("webmail remove (site link): bob, 1 session(s) ended", self.log())
        r = self.post("remove", "bob")
        self.assertEqual((r.code, self.result(r)), (404, "no-account"))

    def test_forged_post_refused(self):
        """No CSRF token here: the signature is the proof; a forged POST does nothing."""
        r = self.client.post("/zwms/site/remove", {"action": "remove", "id": "bob",
                                                  "exp": str(int(self.clock.seconds()) + 60),
                                                  "nonce": "n" * 20, "sig": "0" * 64},
                             csrf=False)
        self.assertEqual((r.code, self.result(r)), (403, "bad-signature"))
        self.assertIsNotNone(self.services.accounts.get("bob"))

    def test_server_failure_is_a_page_and_a_log_line(self):
        from zwms import logs as logchannels

        def broken(*args, **kwargs):
            raise OSError("disk gone")
        self.patch(self.services.accounts, "delete", broken)
        r = self.post("remove", "bob")
        self.assertEqual((r.code, self.result(r)), (500, "failed"))
        self.assertIn("오류를 로그에 남겼습니다", r.text)
        self.assertNotIn("disk gone", r.text)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertIn("Site link remove for bob failed (see the server log)",
                      self.services.logs.lines[logchannels.SYSTEMERROR])

    def test_remove_replay_refused(self):
        params = self.params("signup", "fred", password="fred-pw-1")
        self.assertEqual(self.client.post("/zwms/site/signup", params, csrf=False).code, 200)
        self.services.accounts.delete("fred")
        r = self.client.post("/zwms/site/signup", params, csrf=False)
        self.assertEqual((r.code, self.result(r)), (403, "replayed"))
        self.assertIsNone(self.services.accounts.get("fred"))


def doc_python_sample():
    """The Python sample of docs/site-integration.md, as code."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"## Python\n.*?```python\n(.*?)```", text, re.DOTALL)
    return m.group(1)


class DocSampleTests(SiteTestCase):

    def test_python_sample_signs_what_the_server_accepts(self):
        namespace = {}
        code = doc_python_sample().replace('print(zwms_link("logout", "alice"))', "")
        os.environ["ZWMS_SITESECRET"] = SECRET
        self.addCleanup(os.environ.pop, "ZWMS_SITESECRET", None)
        exec(compile(code, DOC, "exec"), namespace)
        # the sample uses the real time: move the test clock there
        import time
        self.clock.advance(time.time() - self.clock.seconds())
        url = namespace["zwms_link"]("login", "alice")
        path = url.split("9005", 1)[1]
        r = self.client.get(path)
        self.assertEqual((r.code, self.result(r)), (200, "ok"), r.text)
        params = namespace["zwms_params"]("update", "alice", name="Alice Doc", password="doc-pw-1")
        r = self.client.post("/zwms/site/update", params, csrf=False)
        self.assertEqual((r.code, self.result(r)), (200, "ok"), r.text)
        self.assertEqual(self.services.accounts.get("alice").name, "Alice Doc")

    def test_php_sample_recipe(self):
        """What the PHP sample computes (hash_hmac over the same text) is accepted."""
        exp, nonce = int(self.clock.seconds()) + 300, "AbCdEfGhIjKlMnOpQrStUv"
        text = "zwms-site-v1\nlogin\nalice\n%d\n%s" % (exp, nonce)
        sig = hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
        r = self.client.get("/zwms/site/login?" + urlencode(
            {"action": "login", "id": "alice", "exp": exp, "nonce": nonce, "sig": sig}))
        self.assertEqual(r.code, 200)


class DeleteLoginTests(WebmailTestCase):
    """SessionStore.delete_login, which the site's logout and remove use."""

    def test_files_and_cache(self):
        from zwms.store.websessions import SessionStore
        folder = self.services.home.path("data", "mailsessions")
        store = SessionStore(folder, now=self.clock.seconds)
        a1 = store.create("alice", "user")
        store.create("alice", "root")
        b = store.create("bob", "user")
        # a restarted server: sessions on disk, none in memory
        fresh = SessionStore(folder, now=self.clock.seconds)
        self.assertEqual(fresh.delete_login("alice", "user"), 1)
        self.assertIsNone(fresh.get(a1.token))
        self.assertIsNone(SessionStore(folder, now=self.clock.seconds).get(a1.token))
        self.assertIsNotNone(fresh.get(b.token))
        # the cached copy goes too
        self.assertEqual(store.delete_login("bob", "user"), 1)
        self.assertIsNone(store.get(b.token))
        self.assertEqual(len(os.listdir(folder)), 1)   # alice's root session stays
        self.assertEqual(SessionStore(folder + "-none", self.clock.seconds)
                         .delete_login("alice", "user"), 0)
