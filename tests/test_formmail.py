"""
The form mail (SPEC W5, seed §20; issue 7) through /formmail: the page,
sending to the administrator (ADMINID, postmaster, the admin login),
"_" fields in the body, attachments (File1, File2) within MaxMailSize and
MAXMAILSIZE, upfn (a repeated submission is not sent twice), the custom
pages, CSRF refusal, the rate limit (429), and no header injection from
any field.
"""

import email
import email.policy
import io
import os
import re
import secrets
from http.cookiejar import CookieJar

from treq.client import HTTPClient
from twisted.internet import defer, task
from twisted.trial.unittest import TestCase as TrialTestCase
from twisted.web.client import Agent, HTTPConnectionPool

from tests.test_webmail_session import WebmailTestCase
from tests.webclient import BASE, Response
from zwms import logs as logchannels
from zwms.web import formmail
from zwms.web.site import make_site


class FormMailTestCase(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.services.settings.set("ADMINID", "bob")
        self.page = self.client.get("/formmail/")

    def action(self, page=None):
        text = (page or self.page).text
        return re.search(r'<form method="post" action="([^"]+)"', text).group(1).replace(
            "&amp;", "&")

    def send(self, fields, files=(), csrf=True, action=None, multipart=True):
        fields = dict({"name": "홍길동", "email": "visitor@outside.example",
                       "subject": "문의", "message": "안녕하세요.\n두 줄."}, **fields)
        action = action or self.action()
        if not multipart:
            return self.client.post(action, fields, csrf=csrf)
        return self.client.upload(action, fields, files, csrf=csrf)

    def inbox(self, account="bob"):
        return [self.services.mail.read(account, "Inbox", m.name)
                for m in self.services.mail.messages(account, "Inbox")]

    def parsed_last(self, account="bob"):
        return email.message_from_bytes(self.inbox(account)[-1], policy=email.policy.default)

    def parsed(self, account="bob"):
        mails = self.inbox(account)
        self.assertEqual(len(mails), 1)
        return email.message_from_bytes(mails[0], policy=email.policy.default)


class PageTests(FormMailTestCase):

    def test_page(self):
        r = self.page
        self.assertEqual(r.code, 200)
        self.assertIn("관리자에게 메일 쓰기", r.text)
        self.assertIn('enctype="multipart/form-data"', r.text)
        self.assertRegex(self.action(), r"^/formmail/send\?upfn=[A-Za-z0-9_-]{16}$")
        self.assertIn('name="MaxMailSize" value="10240"', r.text)
        self.assertIn('name="File1"', r.text)
        self.assertIn("/mail/css/webfolder.css", r.text)
        self.assertNotIn('class="folders"', r.text)    # the guest frame, no side bar
        self.assertIn("zwms_login", self.client.cookies)

    def test_bare_url(self):
        r = self.client.get("/formmail")
        self.assertIn(r.code, (200, 301, 302, 303, 307, 308))
        if r.code != 200:
            self.assertEqual(self.client.get(r.header("location").replace(BASE, "")).code, 200)
        else:
            self.assertIn('action="/formmail/send', r.text)

    def test_small_server_limit_shown(self):
        self.services.settings._values["MAXMAILSIZE"] = 100     # KB (a zwms.cfg key)
        self.assertIn('name="MaxMailSize" value="100"', self.client.get("/formmail/").text)

    def test_custom_pages(self):
        folder = os.path.join(self.mktemp(), "skins")
        import shutil
        from zwms.web.templates import skins_root
        shutil.copytree(skins_root(), folder)
        with open(os.path.join(folder, "wow_coolwind", "formmail_contact.html"), "w") as f:
            f.write('<form method="post" action="{{ action }}"><input type="hidden" '
                    'name="csrf" value="{{ csrf }}">CONTACT FORM</form>')
        from tests.webmailclient import MailClient
        from tests.webclient import inline
        from zwms.web.site import make_resource
        client = MailClient(self.services, make_resource(self.services, run=inline,
                                                         skins=folder))
        r = client.get("/formmail/?form=contact")
        self.assertIn("CONTACT FORM", r.text)
        action = re.search(r'action="([^"]+)"', r.text).group(1).replace("&amp;", "&")
        self.assertIn("&form=contact", action)
        r = client.post(action, {"message": "hi"})
        self.assertEqual(r.code, 303)
        # A refusal shows the same custom page again.
        r = client.get("/formmail/?form=contact")
        action = re.search(r'action="([^"]+)"', r.text).group(1).replace("&amp;", "&")
        r = client.post(action, {"message": ""})
        self.assertEqual(r.code, 400)
        self.assertIn("CONTACT FORM", r.text)
        for bad in ("nope", "../loginuser", "thanks", "error", "A", "x" * 41):
            self.assertEqual(client.get("/formmail/?form=" + bad).code, 404, bad)
        # guest_mailwrite.html, when the skin has it, is the default page.
        with open(os.path.join(folder, "wow_coolwind", "guest_mailwrite.html"), "w") as f:
            f.write("GUEST MAILWRITE {{ csrf }} {{ action }}")
        self.assertIn("GUEST MAILWRITE", client.get("/formmail/").text)

    def test_thanks_and_error_pages(self):
        r = self.client.get("/formmail/thanks")
        self.assertEqual(r.code, 200)
        self.assertIn("관리자에게 보냈습니다", r.text)


class SendTests(FormMailTestCase):

    def test_send_to_adminid(self):
        r = self.send({"_age": "30", "_회사": "ignored name", "_company": "ACME\r\nInc"})
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/formmail/thanks")
        msg = self.parsed()
        self.assertEqual(msg["Reply-To"], "visitor@outside.example")
        self.assertEqual(msg["From"].addresses[0].addr_spec, "bob@example.com")
        self.assertEqual(msg["From"].addresses[0].display_name, "홍길동 via form mail")
        self.assertEqual(msg["To"], "bob@example.com")
        self.assertEqual(msg["Subject"], "[Form mail] 문의")
        body = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
        self.assertIn("\nage: 30\n", body)
        self.assertIn("\ncompany: ACME\n    Inc\n", body)
        self.assertNotIn("회사", body)               # only plain "_name" fields
        self.assertIn("E-mail: visitor@outside.example", body)
        self.assertIn("안녕하세요.\n두 줄.", body)
        raw = self.inbox()[0]
        self.assertTrue(raw.startswith(b"Return-Path: <bob@example.com>\r\n"), raw[:80])
        self.assertIn("form mail sent to bob@example.com", self.log()[-1])

    def test_urlencoded_form(self):
        r = self.send({}, multipart=False)
        self.assertEqual(r.code, 303)
        self.assertEqual(len(self.inbox()), 1)

    def test_attachments(self):
        r = self.send({}, [("File1", "보고서.pdf", b"%PDF" + b"x" * 1000),
                           ("File2", "C:\\dir\\b.bin", b"\x00\x01")])
        self.assertEqual(r.code, 303)
        msg = self.parsed()
        names = [p.get_filename() for p in msg.iter_attachments()]
        self.assertEqual(names, ["보고서.pdf", "b.bin"])
        self.assertEqual(list(msg.iter_attachments())[0].get_content()[:4], b"%PDF")

    def test_max_mail_size_field(self):
        r = self.send({"MaxMailSize": "1"}, [("File1", "big.bin", b"x" * 2000)])
        self.assertEqual(r.code, 413)
        self.assertIn("1 KB", r.text)
        self.assertEqual(self.inbox(), [])
        # The field cannot raise the server's own limit.
        self.services.settings._values["MAXMAILSIZE"] = 2
        r = self.send({"MaxMailSize": "999999"}, [("File1", "big.bin", b"x" * 3000)],
                      action=self.action(self.client.get("/formmail/")))
        self.assertEqual(r.code, 413)
        self.assertIn("2 KB", r.text)
        self.assertEqual(self.inbox(), [])

    def test_whole_message_within_maxmailsize(self):
        self.services.settings._values["MAXMAILSIZE"] = 4
        r = self.send({"MaxMailSize": "4"}, [("File1", "a.bin", os.urandom(3500))],
                      action=self.action(self.client.get("/formmail/")))
        self.assertEqual(r.code, 413)       # base64 makes the message pass 4 KB
        self.assertEqual(self.inbox(), [])

    def test_admin_address_fallbacks(self):
        self.services.settings.set("ADMINID", "")
        self.services.accounts.add("postmaster", "secret9")
        self.assertEqual(self.send({}).code, 303)
        self.assertEqual(len(self.inbox("postmaster")), 1)

    def test_remote_adminid_goes_to_the_queue(self):
        self.services.settings.set("ADMINID", "boss@elsewhere.example")
        self.assertEqual(self.send({}).code, 303)
        sender, rcpts, data, auto, origin = self.services.queue.entries[0]
        self.assertEqual((sender, rcpts), ("boss@elsewhere.example", ["boss@elsewhere.example"]))
        self.assertTrue(origin.startswith("formmail "))

    def test_no_admin_address(self):
        self.services.settings.set("ADMINID", "")
        r = self.send({})
        self.assertEqual(r.code, 503)
        self.assertIn("ADMINID", r.text)

    def test_root_login_fallback(self):
        self.services.settings.set("ADMINID", "")
        self.services.accounts.add("root", "secret9")
        self.assertEqual(self.send({}).code, 303)
        self.assertEqual(len(self.inbox("root")), 1)

    def test_form_problems_keep_the_form(self):
        r = self.send({"email": "not an address", "message": "kept text"})
        self.assertEqual(r.code, 400)
        self.assertIn("kept text", r.text)
        self.assertIn("올바른 전자우편 주소", r.text)
        r = self.send({"message": "  "})
        self.assertEqual(r.code, 400)
        self.assertEqual(self.inbox(), [])

    def test_header_injection(self):
        evil = "x\r\nBcc: victim@outside.example\r\nX-Evil: 1"
        for field in ("name", "subject", "email", "_age", "message"):
            self.send({field: evil}, action=self.action(self.client.get("/formmail/")))
        for raw in self.inbox():
            head = raw.split(b"\r\n\r\n", 1)[0]
            self.assertNotIn(b"\r\nBcc:", head)
            self.assertNotIn(b"\r\nX-Evil:", head)
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self.assertNotIn("victim", str(msg["Reply-To"] or ""))
            self.assertEqual(msg["To"], "bob@example.com")
        self.assertEqual(len(self.inbox()), 4)    # the e-mail field is refused
        self.assertEqual(self.services.queue.entries, [])
        self.clock.advance(formmail.WINDOW + 1)     # past the rate limit
        for value, code in (("a@b.example\nBcc: c@d.example", 400),
                            ("a@b.example, c@d.example", 400), ("<a@b.example>", 400),
                            ("a@b.example\r", 303)):       # stripped: harmless
            r = self.send({"email": value}, action=self.action(self.client.get("/formmail/")))
            self.assertEqual(r.code, code, value)
        self.assertEqual(self.parsed_last()["Reply-To"], "a@b.example")

    def test_header_injection_in_file_name(self):
        r = self.send({}, [("File1", "a.txt\r\nBcc: victim@outside.example", b"x")])
        self.assertIn(r.code, (303, 400))
        for raw in self.inbox():
            self.assertNotIn(b"\r\nBcc:", raw)


class GuardTests(FormMailTestCase):

    def test_csrf(self):
        r = self.send({}, csrf=False)
        self.assertEqual(r.code, 403)
        r = self.send({"csrf": "forged-token-forged-token"})
        self.assertEqual(r.code, 403)
        r = self.send({}, csrf=False, multipart=False)
        self.assertEqual(r.code, 403)
        self.assertEqual(self.inbox(), [])

    def test_csrf_without_cookie(self):
        """Another browser (no cookie) with a token read from a page: refused."""
        from tests.webmailclient import MailClient
        other = MailClient(self.services, self.client.resource)
        r = other.upload(self.action(), {"csrf": self.client.csrf, "message": "hi"})
        self.assertEqual(r.code, 403)
        self.assertEqual(self.inbox(), [])

    def test_file_before_token_refused(self):
        boundary = "b" + secrets.token_hex(4)
        body = ("--%s\r\nContent-Disposition: form-data; name=\"File1\"; filename=\"a.txt\"\r\n\r\n"
                "aaa\r\n--%s\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n%s\r\n"
                "--%s\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nhi\r\n--%s--\r\n"
                % (boundary, boundary, self.client.csrf, boundary, boundary)).encode()
        hdrs = {"Content-Type": "multipart/form-data; boundary=%s" % boundary,
                "Cookie": "; ".join("%s=%s" % kv for kv in self.client.cookies.items())}
        d = self.client.stub.request("POST", BASE + self.action(), headers=hdrs, data=body,
                                     allow_redirects=False)
        out = []
        d.addCallback(lambda r: r.content().addCallback(lambda b: (r, b)))
        d.addBoth(out.append)
        self.client.stub.flush()
        r = Response(out[0][0].code, out[0][0].headers, out[0][1])
        self.assertEqual(r.code, 403)
        self.assertEqual(self.inbox(), [])

    def test_rate_limit(self):
        for i in range(formmail.SENDS_PER_WINDOW):
            r = self.send({"subject": "n%d" % i}, action=self.action(self.client.get("/formmail/")))
            self.assertEqual(r.code, 303, i)
        r = self.send({}, action=self.action(self.client.get("/formmail/")))
        self.assertEqual(r.code, 429)
        self.assertIn("분 뒤에", r.text)
        self.assertTrue(int(r.header("retry-after")) > 0)
        self.assertEqual(len(self.inbox()), formmail.SENDS_PER_WINDOW)
        self.assertIn("form mail refused (rate limit)",
                      self.services.logs.lines[logchannels.WEBMAIL])
        self.clock.advance(formmail.WINDOW + 1)
        r = self.send({}, action=self.action(self.client.get("/formmail/")))
        self.assertEqual(r.code, 303)

    def test_upfn_repeat_sent_once(self):
        action = self.action()
        self.assertEqual(self.send({}, action=action).code, 303)
        r = self.send({}, action=action)
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/formmail/thanks")
        self.assertEqual(len(self.inbox()), 1)
        # Another form (a fresh upfn) is a new message.
        self.assertEqual(self.send({}, action=self.action(self.client.get("/formmail/"))).code,
                         303)
        self.assertEqual(len(self.inbox()), 2)
        # After the window the same upfn is a new message again.
        self.clock.advance(formmail.WINDOW + 1)
        self.assertEqual(self.send({}, action=action).code, 303)
        self.assertEqual(len(self.inbox()), 3)

    def test_bad_upfn(self):
        for bad in ("short", "a" * 65, "x/../../y12345", "%0d%0aX"):
            r = self.send({}, action="/formmail/send?upfn=" + bad)
            self.assertEqual(r.code, 400, bad)
        self.assertEqual(self.send({}, action="/formmail/send").code, 303)

    def test_limiter(self):
        now = [0.0]
        limiter = formmail.RateLimiter(lambda: now[0], limit=2, window=100)
        self.assertEqual(limiter.retry_after("ip"), 0)
        limiter.record("ip")
        now[0] = 50
        limiter.record("ip")
        self.assertEqual(limiter.retry_after("ip"), 51)
        self.assertEqual(limiter.retry_after("other"), 0)
        now[0] = 101
        self.assertEqual(limiter.retry_after("ip"), 0)


class RealServerTests(TrialTestCase):
    """Over real TCP through the Site's streaming request and the thread pool."""

    @defer.inlineCallbacks
    def test_send_with_attachment(self):
        from twisted.internet import reactor
        from tests.webmailclient import mail_services
        clock = task.Clock()
        clock.advance(1_700_000_000)
        root = self.mktemp()
        os.makedirs(root)
        services = mail_services(root, clock=clock)
        services.settings.set("DOMAIN", "example.com")
        services.settings.set("ADMINID", "bob")
        services.accounts.add("bob", "secret2")
        port = reactor.listenTCP(0, make_site(services, reactor=reactor), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        http = HTTPClient(Agent(reactor, pool=pool), cookiejar=CookieJar())
        base = "http://127.0.0.1:%d" % port.getHost().port
        page = yield (yield http.get(base + "/formmail/")).text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        action = re.search(r'action="([^"]+)"', page.split("<form", 1)[1]).group(1)
        attachment = os.urandom(300000)
        r = yield http.post(base + action.replace("&amp;", "&"), allow_redirects=False,
                            data=[("csrf", csrf), ("MaxMailSize", "1024"), ("name", "Kim"),
                                  ("email", "kim@outside.example"), ("message", "hello"),
                                  ("_age", "30")],
                            files={"File1": ("자료.bin", "application/octet-stream",
                                             io.BytesIO(attachment))})
        yield r.content()
        self.assertEqual(r.code, 303)
        names = services.mail.messages("bob", "Inbox")
        self.assertEqual(len(names), 1)
        msg = email.message_from_bytes(services.mail.read("bob", "Inbox", names[0].name),
                                       policy=email.policy.default)
        self.assertEqual(msg["Reply-To"], "kim@outside.example")
        parts = list(msg.iter_attachments())
        self.assertEqual(parts[0].get_filename(), "자료.bin")
        self.assertEqual(parts[0].get_content(), attachment)
