"""
Mailing lists and bulk mail, the user side (SPEC Q5, seed §21): the
bulk-send window (upload, delete, send; bulksend accounts only), the
delivery status pages (every user, own mailings only), the read-tracking
image (a forged token records nothing), compose to (NAME) and the Sent
folder's link.
"""

import email
import email.policy
import os
import re

from tests.test_webmail_session import WebmailTestCase
from tests.webmailclient import MailClient
from zwms.queue.spool import BOUNCED, PENDING, SENT, Spool
from zwms.routing import status as mstatus
from zwms.web.webmail import bulk

LIST_FILE = (b"a@far.example\n"
             b"not an address\n"
             b"B Person <b@far.example>\n"
             b"\n"
             b"A@far.example\n"
             b"bob@example.com\n")


def html_of(data):
    """The decoded HTML part of a message, or None."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            return part.get_content()
    return None


class BulkTestCase(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.services.accounts.set("alice", "bulksend", "1")
        self.queue = self.services.queue

    def url(self, path="", client=None):
        return "/mail/bulk/%s/%s" % ((client or self.client).rand, path)

    def upload(self, data, filename="customers.txt", csrf=True, client=None):
        client = client or self.client
        client.get(self.url(client=client))
        return client.upload(self.url("upload", client), {}, [("file", filename, data)],
                             csrf=csrf)

    def send(self, fields, files=(), csrf=True):
        self.client.get(self.url())
        values = {"list": "customers", "subject": "소식 News", "body": "안녕하세요\n\nHello <you>",
                  "html": "1"}
        values.update(fields)
        return self.client.upload(self.url("send"), values, files, csrf=csrf)

    def stored_list(self, name="customers", login="alice"):
        path = os.path.join(self.services.home.user_dir(login), "bulk", name + ".txt")
        with open(path, "rb") as f:
            return f.read().decode("utf-8").split()

    def job_of(self, response):
        m = re.search(r"/sent/([0-9]{10}\.[0-9a-f]{16})\?done=sent$", response.header("location"))
        self.assertTrue(m, response.header("location"))
        return m.group(1)

    def copies(self):
        spool = Spool(self.services.home)
        return {env.recipients[0].addr: spool.read(env.id) for env in self.queue.adopted}


class WindowAccessTests(BulkTestCase):

    def test_window_for_bulksend_account(self):
        self.client.login()
        r = self.client.get(self.url())
        self.assertEqual(r.code, 200)
        self.assertIn("대량발송", r.text)
        self.assertIn('action="/mail/bulk/%s/upload"' % self.client.rand, r.text)
        self.assertIn('href="/mail/css/bulk.css"', r.text)
        self.assertIn("먼저 메일주소목록을 올리세요.", r.text)
        self.assertEqual(self.client.get("/mail/css/bulk.css").code, 200)

    def test_other_accounts_refused(self):
        bob = MailClient(self.services)
        bob.login("bob", "secret2")
        r = bob.get(self.url(client=bob))
        self.assertEqual(r.code, 403)
        self.assertIn("대량발송권한이 없습니다", r.text)
        self.assertNotIn("/mail/bulk/%s/\"" % bob.rand, bob.box("folder/Inbox").text)
        r = self.upload(LIST_FILE, client=bob)
        self.assertEqual(r.code, 403)
        self.assertFalse(os.path.exists(os.path.join(self.services.home.user_dir("bob"), "bulk")))
        bob.box("folder/Inbox")  # a page with bob's CSRF token
        r = bob.upload(self.url("send", bob), {"list": "customers", "subject": "s", "body": "b"})
        self.assertEqual(r.code, 403)
        r = bob.post(self.url("delete", bob), {"name": "customers"})
        self.assertEqual(r.code, 403)
        self.assertEqual(self.queue.adopted, [])

    def test_bare_url(self):
        self.client.login()
        r = self.client.get("/mail/bulk/%s" % self.client.rand)
        self.assertIn(r.code, (200, 301, 308))
        if r.code != 200:
            self.assertTrue(r.header("location").endswith("/mail/bulk/%s/" % self.client.rand))

    def test_no_session(self):
        r = self.client.get("/mail/bulk/-/")
        self.assertEqual(r.code, 303)
        self.assertIn("/mail/?expired=1", r.header("location"))
        r = self.client.get("/mail/bulk/-/sent")
        self.assertEqual(r.code, 303)


class UploadTests(BulkTestCase):

    def test_bad_lines_reported_and_skipped(self):
        self.client.login()
        r = self.upload(LIST_FILE)
        self.assertEqual(r.code, 200, r.text[-400:])
        self.assertEqual(self.stored_list(), ["a@far.example", "b@far.example",
                                              "bob@example.com"])
        self.assertIn("메일주소 3개를 저장했습니다", r.text)
        self.assertIn("중복된 메일주소 1개를", r.text)
        self.assertIn("<td class=\"num\">2</td><td>not an address</td>", r.text)
        self.assertIn("webmail bulk list uploaded: alice customers, 3 addresses, 1 bad lines",
                      self.log())
        # Listed, and offered in the compose form.
        page = self.client.get(self.url())
        self.assertIn('<option value="customers">customers (3)</option>', page.text)

    def test_outlook_csv_utf8_bom_and_euc_kr(self):
        self.client.login()
        utf8 = ("\ufeff이름,성,전자 메일 주소,휴대폰\n"
                "길동,홍,hong@far.example,010-1\n"
                "없음,김,,010-2\n"
                "\"Lee, J\",이,lee@far.example,\n").encode("utf-8")
        r = self.upload(utf8, "주소록 내보내기.csv")
        self.assertEqual(r.code, 200)
        self.assertEqual(self.stored_list("주소록_내보내기"), ["hong@far.example",
                                                          "lee@far.example"])
        self.assertIn("<td class=\"num\">3</td>", r.text)  # the row without an address
        euc = "이름,전자 메일 주소\n김철수,kim@far.example\n".encode("euc-kr")
        r = self.upload(euc, "euc.csv")
        self.assertEqual(r.code, 200)
        self.assertEqual(self.stored_list("euc"), ["kim@far.example"])

    def test_safe_names_and_replacement(self):
        self.client.login()
        self.assertEqual(self.upload(b"x@far.example\n", "../../evil.txt").code, 200)
        self.assertEqual(self.stored_list("evil"), ["x@far.example"])
        self.assertFalse(os.path.exists(self.services.home.path("evil.txt")))
        r = self.upload(b"y@far.example\n", "evil.csv")
        self.assertIn("같은 이름의 목록을 바꾸었습니다", r.text)
        self.assertEqual(self.stored_list("evil"), ["y@far.example"])
        self.assertEqual(bulk.safe_name("...."), "list")
        self.assertEqual(bulk.safe_name("a\x00b;rm -rf.csv"), "a_b_rm_-rf")

    def test_refusals(self):
        self.client.login()
        r = self.upload(b"nothing here\n")
        self.assertEqual(r.code, 400)
        self.assertIn("파일에 메일주소가 없습니다", r.text)
        r = self.upload(b"\xff\xfe\xfd not text \x81\x00")
        self.assertEqual(r.code, 400)
        self.patch(bulk, "MAX_ADDRESSES", 2)
        r = self.upload(b"a@x.example\nb@x.example\nc@x.example\n", "big.txt")
        self.assertEqual(r.code, 400)
        self.assertIn("파일의 메일주소가 2개를 넘습니다", r.text)
        self.assertFalse(os.path.exists(os.path.join(self.services.home.user_dir("alice"),
                                                     "bulk", "big.txt")))
        self.client.get(self.url())
        r = self.client.upload(self.url("upload"), {})
        self.assertEqual(r.code, 400)
        self.assertIn("올릴 파일을 고르세요", r.text)

    def test_csrf_refused(self):
        self.client.login()
        r = self.upload(LIST_FILE, csrf=False)
        self.assertEqual(r.code, 403)
        self.assertFalse(os.path.exists(os.path.join(self.services.home.user_dir("alice"),
                                                     "bulk")))

    def test_delete(self):
        self.client.login()
        self.upload(LIST_FILE)
        r = self.client.post(self.url("delete"), {"name": "customers"}, csrf=False)
        self.assertEqual(r.code, 403)
        self.assertEqual(len(self.stored_list()), 3)
        self.client.get(self.url())
        r = self.client.post(self.url("delete"), {"name": "customers"})
        self.assertEqual(r.code, 303)
        self.assertTrue(r.header("location").endswith("?done=deleted"))
        self.assertEqual(bulk.uploaded_lists(self.services.home, "alice"), [])
        self.client.get(self.url())
        for name in ("customers", "../bob/x", ".."):
            self.assertEqual(self.client.post(self.url("delete"), {"name": name}).code, 404)


class ParseTests(WebmailTestCase):

    def test_parse_addresses(self):
        out, bad, repeats = bulk.parse_addresses(
            b"# comment\r\na@x.example; note\r\n<b@x.example>\r\nx@\r\n")
        self.assertEqual(out, ["a@x.example", "b@x.example"])
        self.assertEqual(bad, [(4, "x@")])
        self.assertEqual(repeats, 0)
        out, bad, _ = bulk.parse_addresses("E-mail\nc@x.example\n".encode("utf-16"))
        self.assertEqual(out, ["c@x.example"])

    def test_base_url(self):
        from twisted.web.test.requesthelper import DummyRequest
        for host, secure, want in ((b"mail.example.com", False, "http://mail.example.com"),
                                   (b"mail.example.com:8443", True,
                                    "https://mail.example.com:8443"),
                                   (b"[::1]:80", False, "http://[::1]:80"),
                                   (b"evil.example/x?", False, ""),
                                   (b"a b", False, ""), (b"", False, "")):
            request = DummyRequest([b""])
            if host:
                request.requestHeaders.setRawHeaders(b"host", [host])
            request.isSecure = lambda secure=secure: secure
            self.assertEqual(bulk.base_url(request), want, host)

    def test_text_to_html_escapes(self):
        html = bulk.text_to_html("<script>x</script>\nline2\n\npara")
        self.assertIn("&lt;script&gt;", html)
        self.assertIn("<br>\nline2</p>\n<p>para</p>", html)


class SendTests(BulkTestCase):

    def setUp(self):
        BulkTestCase.setUp(self)
        self.client.login()
        self.upload(LIST_FILE)

    def test_html_send_tracked_and_read(self):
        r = self.send({}, [("attachment", "안내.pdf", b"%PDF-1.4 data")])
        self.assertEqual(r.code, 303, r.text[-400:])
        job_id = self.job_of(r)
        # Two remote copies queued, each to its recipient alone, from alice.
        copies = self.copies()
        self.assertEqual(sorted(copies), ["a@far.example", "b@far.example"])
        self.assertEqual({e.sender for e in self.queue.adopted}, {"alice@example.com"})
        tokens = {}
        for addr, data in copies.items():
            self.assertIn(b"\r\nTo: <%s>\r\n" % addr.encode(), data)
            html = html_of(data)
            m = re.search(r'<img src="http://console.test/mail/bulk/track/([^"]+)\.gif" '
                          r'width="1" height="1" alt="">\r?\n</body>', html)
            self.assertTrue(m, html)
            tokens[addr] = m.group(1)
            self.assertNotIn(addr.split("@")[0] + "@", tokens[addr])
            self.assertIn("Hello &lt;you&gt;", html)
            msg = email.message_from_bytes(data, policy=email.policy.default)
            self.assertEqual([a.get_filename() for a in msg.iter_attachments()], ["안내.pdf"])
        self.assertNotEqual(tokens["a@far.example"], tokens["b@far.example"])
        # Bob's copy is local, with its own image; alice's Sent copy has none.
        [info] = self.services.mail.messages("bob")
        local = self.services.mail.read("bob", "Inbox", info.name)
        self.assertIn(b"\r\nTo: <bob@example.com>\r\n", local)
        self.assertIn("/mail/bulk/track/%s-2-" % job_id, html_of(local))
        [sent] = self.services.mail.messages("alice", "Sent")
        sent_data = self.services.mail.read("alice", "Sent", sent.name)
        self.assertNotIn("/track/", html_of(sent_data))
        self.assertIn("webmail bulk send: alice list customers, 3 recipients, mailing %s"
                      % job_id, self.log())
        # An anonymous reader fetches b's image twice: one read recorded.
        reader = MailClient(self.services)
        for _ in range(2):
            img = reader.get("/mail/bulk/track/%s.gif" % tokens["b@far.example"])
            self.assertEqual((img.code, img.body), (200, bulk.GIF))
            self.assertEqual(img.header("content-type"), "image/gif")
        reads = mstatus.read_reads(self.services.home, "alice", job_id)
        self.assertEqual(list(reads), [1])
        with open(os.path.join(mstatus.status_folder(self.services.home, "alice"),
                               job_id + ".read")) as f:
            self.assertEqual(len(f.readlines()), 1)
        # Without the memo (a restart), the file still keeps the first read only.
        self.assertFalse(mstatus.record_read(self.services.home, "alice", job_id, 1, 5.0))
        page = self.client.get(self.url("sent"))
        self.assertIn(r'<td class="num">3</td>', page.text)
        self.assertRegex(page.text, r'(?s)소식 News.*<td class="num">1</td>\s*</tr>')

    def test_forged_and_unknown_tokens_record_nothing(self):
        job_id = self.job_of(self.send({}))
        token = re.search(r"/track/([^\"]+)\.gif", html_of(self.copies()["a@far.example"])
                          ).group(1)
        forged = token[:-1] + ("0" if token[-1] != "0" else "1")
        other_index = re.sub(r"-0-", "-1-", token)
        unknown = "1700000000.00000000000000ff" + token[len(job_id):]
        reader = MailClient(self.services)
        for name in (forged, other_index, unknown, "x", "..", token + "x"):
            r = reader.get("/mail/bulk/track/%s.gif" % name)
            self.assertEqual((r.code, r.body), (200, bulk.GIF), name)
        self.assertEqual(reader.get("/mail/bulk/track/%s" % token).body, bulk.GIF)
        self.assertEqual(mstatus.read_reads(self.services.home, "alice", job_id), {})
        self.assertIsNone(mstatus.check_token(self.services.home, forged))
        self.assertEqual(mstatus.check_token(self.services.home, token),
                         ("alice", job_id, 0))

    def test_plain_text_has_no_tracking(self):
        r = self.send({"html": ""})
        job_id = self.job_of(r)
        for data in self.copies().values():
            self.assertIsNone(html_of(data))
            self.assertNotIn(b"/track/", data)
        meta, _ = mstatus.read_status(self.services.home, "alice", job_id)
        self.assertFalse(meta["tracked"])
        page = self.client.get(self.url("sent/" + job_id))
        self.assertIn("수신확인이 없습니다", page.text)

    def test_csrf_refused(self):
        r = self.send({}, csrf=False)
        self.assertEqual(r.code, 403)
        self.assertEqual(self.queue.adopted, [])
        self.assertEqual(self.services.mail.messages("alice", "Sent"), [])

    def test_limits(self):
        self.services.accounts.set("alice", "sendsize", "1K")
        r = self.send({}, [("attachment", "big.bin", b"x" * 5000)])
        self.assertEqual(r.code, 400)
        self.assertIn("메일이 너무 큽니다", r.text)
        self.assertIn('value="소식 News"', r.text)
        self.services.accounts.set("alice", "sendsize", "0")
        self.services.accounts.set("alice", "daycount", "1")
        self.assertEqual(self.send({}).code, 303)
        r = self.send({})
        self.assertEqual(r.code, 400)
        self.assertIn("하루 발송 건수 한도", r.text)
        self.assertEqual(len(self.queue.adopted), 2)

    def test_relay_refused_and_missing_list(self):
        self.services.accounts.set("alice", "relay", "0")
        r = self.send({})
        self.assertEqual(r.code, 400)
        self.assertIn("서버 밖으로 메일을 보낼 수 없습니다", r.text)
        self.upload(b"bob@example.com\n", "locals.txt")
        self.assertEqual(self.send({"list": "locals"}).code, 303)
        self.assertEqual(len(self.services.mail.messages("bob")), 1)
        r = self.send({"list": "nosuch"})
        self.assertEqual(r.code, 400)
        self.assertIn("그런 메일주소목록이 없습니다", r.text)
        self.assertEqual(self.send({"list": "../../data/team"}).code, 400)
        self.assertEqual(self.send({"subject": " "}).code, 400)
        self.assertEqual(self.queue.adopted, [])


def mdn(message_id, final, disposition="manual-action/MDN-sent-manually; displayed"):
    """An MDN (RFC 8098) as Thunderbird sends one."""
    return ("From: reader <%s>\r\nTo: alice@example.com\r\nSubject: Read: news\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
            "report-type=disposition-notification; boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "The message was displayed.\r\n"
            "--b1\r\nContent-Type: message/disposition-notification\r\n\r\n"
            "Reporting-UA: far.example; Thunderbird\r\nFinal-Recipient: rfc822;%s\r\n"
            "Original-Message-ID: %s\r\nDisposition: %s\r\n"
            "--b1--\r\n" % (final, final, message_id, disposition)).encode("utf-8")


class MdnTests(BulkTestCase):

    def test_read_receipts_counted(self):
        self.client.login()
        self.upload(LIST_FILE)
        job_id = self.job_of(self.send({"html": "", "mdn": "1"}))
        copies = self.copies()
        for data in copies.values():
            self.assertIn(b"\r\nDisposition-Notification-To: alice@example.com\r\n", data)
        meta, _ = mstatus.read_status(self.services.home, "alice", job_id)
        self.assertTrue(meta["mdn"])
        self.assertFalse(meta["tracked"])
        message_id = meta["message_id"]
        self.assertTrue(message_id.startswith("<"))
        self.clock.advance(60)
        self.deliver(mdn(message_id, "B@far.example"))
        self.deliver(mdn(message_id, "a@far.example", "manual-action/MDN-sent-manually; deleted"))
        self.deliver(mdn("<other@example.com>", "a@far.example"))
        self.deliver(mdn(message_id, "stranger@far.example"))
        self.deliver(b"Subject: not an MDN\r\n\r\nOriginal-Message-ID: %s\r\n"
                     % message_id.encode())
        page = self.client.get(self.url("sent/" + job_id))
        self.assertIn("수신확인 답장(MDN)으로 집계됩니다", page.text)
        self.assertEqual(list(mstatus.read_reads(self.services.home, "alice", job_id)), [1])
        self.assertRegex(page.text, r"<td>b@far.example</td>(?s:.*?)<td class=\"date\">"
                                    r"\d{4}-\d\d-\d\d \d\d:\d\d</td>")
        listing = self.client.get(self.url("sent"))
        self.assertRegex(listing.text, r'<td class="num">1</td>\s*</tr>')
        # Each Inbox message is read once: a later MDN is still found.
        self.deliver(mdn(message_id, "bob@example.com"))
        self.client.get(self.url("sent"))
        self.assertEqual(sorted(mstatus.read_reads(self.services.home, "alice", job_id)),
                         [1, 2])

    def test_mdn_parsing(self):
        self.assertEqual(mstatus.mdn_of(mdn("<m@x>", "r@far.example")), ("<m@x>", "r@far.example"))
        self.assertIsNone(mstatus.mdn_of(b"\xff\xfe garbage"))
        self.assertIsNone(mstatus.mdn_of(mdn("<m@x>", "r@far.example", "automatic-action/"
                                             "MDN-sent-automatically; deleted")))


class StatusPageTests(BulkTestCase):

    def setUp(self):
        BulkTestCase.setUp(self)
        self.client.login()
        self.upload(LIST_FILE)
        self.job_id = self.job_of(self.send({}))

    def report(self, addr, state, reply):
        env = [e for e in self.queue.adopted if e.recipients[0].addr == addr][0]
        env.recipients[0].state, env.recipients[0].reply = state, reply
        for observer in self.queue.observers:
            observer(env)
        self.successResultOf(self.services.router.status.flush())

    def test_each_recipient_status(self):
        page = self.client.get(self.url("sent/" + self.job_id))
        self.assertEqual(page.code, 200)
        self.assertEqual(page.header("refresh"), str(bulk.REFRESH))
        self.assertIn("전달됨", page.text)
        self.report("a@far.example", PENDING, "451 4.7.1 Greylisted, try later")
        self.report("b@far.example", BOUNCED, "550 5.1.1 No such user")
        page = self.client.get(self.url("sent/" + self.job_id))
        rows = re.findall(r'<tr class="state-(\w+)">\s*<td>([^<]+)</td>\s*<td>[^<]*</td>\s*'
                          r'<td class="reason">([^<]*)</td>', page.text)
        self.assertEqual(rows, [("deferred", "a@far.example", "451 4.7.1 Greylisted, try later"),
                                ("bounced", "b@far.example", "550 5.1.1 No such user"),
                                ("delivered", "bob@example.com", "delivered locally")])
        filtered = self.client.get(self.url("sent/%s?state=bounced" % self.job_id))
        self.assertIn("b@far.example", filtered.text)
        self.assertNotIn("a@far.example", filtered.text)
        self.report("a@far.example", SENT, "250 OK")
        page = self.client.get(self.url("sent/" + self.job_id))
        self.assertIsNone(page.header("refresh"))
        summary = mstatus.summary(self.services.home, "alice", self.job_id)
        self.assertEqual((summary["delivered"], summary["failed"], summary["pending"]), (2, 1, 0))

    def test_other_users_mailings_invisible(self):
        bob = MailClient(self.services)
        bob.login("bob", "secret2")
        r = bob.get(self.url("sent/" + self.job_id, bob))
        self.assertEqual(r.code, 404)
        self.assertIn("그런 발송이 없습니다", r.text)
        listing = bob.get(self.url("sent", bob))
        self.assertEqual(listing.code, 200)
        self.assertNotIn(self.job_id, listing.text)
        self.assertIn("아직 발송한 메일링이 없습니다", listing.text)
        for bad in ("../alice", "1700000000.zz", "x" * 40):
            self.assertEqual(self.client.get(self.url("sent/" + bad)).code, 404)

    def test_progress_while_the_fan_out_works(self):
        fanout = self.services.router.fanout
        fanout.batch = 2
        self.upload(b"".join(b"u%d@far.example\n" % i for i in range(6)), "six.txt")
        job_id = self.job_of(self.send({"list": "six"}))
        self.assertEqual(len(self.queue.adopted), 2 + 2)  # setUp's mailing, then one batch
        page = self.client.get(self.url("sent/" + job_id))
        self.assertIn("발송 대기열에 넣는 중: 수신자 6명 중 2명 완료", page.text)
        for env in list(self.queue.adopted[2:]):
            for observer in self.queue.observers:
                observer(env)
        self.assertEqual(len(self.queue.adopted), 2 + 4)
        page = self.client.get(self.url("sent/" + job_id))
        self.assertIn("수신자 6명 중 4명 완료", page.text)

    def test_list_page(self):
        page = self.client.get(self.url("sent"))
        self.assertEqual(page.code, 200)
        self.assertIn('href="/mail/bulk/%s/sent/%s"' % (self.client.rand, self.job_id),
                      page.text)
        self.assertIn("<td>customers</td>", page.text)
        self.assertIn('href="/mail/bulk/%s/"' % self.client.rand, page.text)


class ComposeToListTests(BulkTestCase):
    """Compose to (NAME) from the webmail: fan-out, status for the sender, Sent link."""

    def test_compose_to_named_list(self):
        with open(self.services.home.path("data", "team.list"), "w") as f:
            f.write("boss@example.com\nx@far.example\nbob@example.com\n")
        bob = MailClient(self.services)
        bob.login("bob", "secret2")  # bob has no bulksend: status pages are for everyone
        bob.get("/mail/compose/%s/new" % bob.rand)
        r = bob.upload("/mail/compose/%s/send" % bob.rand,
                       {"to": "(team), far@remote.example", "subject": "Team news",
                        "body": "hello"})
        self.assertEqual(r.code, 303, r.text[-400:])
        [env] = self.queue.adopted
        data = Spool(self.services.home).read(env.id)
        self.assertIn(b"\r\nTo: <x@far.example>\r\n", data)
        self.assertNotIn(b"/track/", data)
        self.assertEqual([e[1] for e in self.queue.entries], [["far@remote.example"]])
        [sent] = self.services.mail.messages("bob", "Sent")
        self.assertIn(b"\r\nTo: far@remote.example, (team)\r\n",
                      self.services.mail.read("bob", "Sent", sent.name))
        listing = bob.get(self.url("sent", bob))
        self.assertIn("<td>(team)</td>", listing.text)
        self.assertIn("Team news", listing.text)
        self.assertIn('<abbr title="이 발송은 수신확인이 없습니다">-</abbr>', listing.text)
        self.assertNotIn('href="/mail/bulk/%s/"' % bob.rand, listing.text)

    def test_sent_folder_links_the_status(self):
        self.client.login()
        link = 'href="/mail/bulk/%s/sent"' % self.client.rand
        self.assertIn(link, self.client.box("folder/Sent").text)
        self.assertNotIn(link, self.client.box("folder/Inbox").text)
        self.deliver(b"Subject: x\r\n\r\nx\r\n", folder="Sent")
        self.assertIn(link, self.client.box("folder/Sent").text)
