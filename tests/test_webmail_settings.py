"""
Receive settings (SPEC W4, P6; issue 6): forwarding and its mode, receive
mode, POP3 share (account fields), sorting rules, allowed/refused
addresses and IPs, the spam filter, the mailbox zip (§26: zip/user, kept,
only the user's own names served).
"""

import os
import zipfile
from io import BytesIO

from tests.test_webmail_session import WebmailTestCase
from zwms.store.rules import RulesStore, SortRule


class FilterTests(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.client.login()
        self.base = "/mail/filters/%s/" % self.client.rand

    def rules(self):
        return RulesStore(self.services.home).get("alice")

    def test_page(self):
        r = self.client.get(self.base)
        self.assertEqual(r.code, 200)
        for action in ("options", "sort/add", "list/allow_ips/add", "list/deny_addresses/add",
                       "spam/add"):
            self.assertIn('action="%s%s"' % (self.base, action), r.text)

    def test_options(self):
        r = self.client.post(self.base + "options", {
            "forward": "Me@Elsewhere.example", "forwardmode": "copy",
            "receivemode": "allow", "pop3share": "1"})
        self.assertEqual(r.code, 303)
        a = self.services.accounts.get("alice")
        self.assertEqual((a.forward, a.forwardmode, a.receivemode, a.pop3share),
                         ("me@elsewhere.example", "copy", "allow", True))
        self.assertIn('value="me@elsewhere.example"', self.client.get(self.base).text)
        r = self.client.post(self.base + "options", {"forward": "", "forwardmode": "notice",
                                                     "receivemode": "all"})
        a = self.services.accounts.get("alice")
        self.assertEqual((a.forward, a.receivemode, a.pop3share), ("", "all", False))
        for bad in ({"forward": "nope"}, {"forward": "alice@example.com"},
                    {"forwardmode": "loud"}, {"receivemode": "none"}):
            r = self.client.post(self.base + "options", dict({"forwardmode": "notice",
                                                              "receivemode": "all"}, **bad))
            self.assertEqual(r.code, 400, bad)
        self.assertEqual(self.services.accounts.get("alice").forward, "")

    def test_sort_rules(self):
        self.successResultOf(self.services.mail.create_folder("alice", "Work"))
        r = self.client.post(self.base + "sort/add", {"field": "sender",
                                                      "pattern": "@company.example",
                                                      "folder": "Work"})
        self.assertEqual(r.code, 303)
        self.client.post(self.base + "sort/add", {"field": "subject", "pattern": "광고",
                                                  "folder": ""})
        self.assertEqual(self.rules().sort, (SortRule("sender", "@company.example", "Work"),
                                             SortRule("subject", "광고", "")))
        self.assertEqual(self.client.post(self.base + "sort/add", {
            "field": "subject", "pattern": "x", "folder": "Nope"}).code, 400)
        self.assertEqual(self.client.post(self.base + "sort/add", {
            "field": "sender", "pattern": "not valid!", "folder": "Work"}).code, 400)
        self.assertEqual(self.client.post(self.base + "sort/remove/0").code, 303)
        self.assertEqual(self.rules().sort, (SortRule("subject", "광고", ""),))
        self.assertEqual(self.client.post(self.base + "sort/remove/5").code, 400)

    def test_lists(self):
        for kind, value in (("allow_addresses", "Friend@Good.example"),
                            ("deny_addresses", "@bad.example"), ("allow_ips", "10.0.0.0/8"),
                            ("deny_ips", "192.168.1.")):
            r = self.client.post(self.base + "list/%s/add" % kind, {"value": value})
            self.assertEqual(r.code, 303, kind)
        rules = self.rules()
        self.assertEqual(rules.allow_addresses, ("friend@good.example",))
        self.assertEqual(rules.deny_ips, ("192.168.1.",))
        self.assertIn("10.0.0.0/8", self.client.get(self.base).text)
        self.assertEqual(self.client.post(self.base + "list/allow_ips/add",
                                          {"value": "not-an-ip"}).code, 400)
        self.assertEqual(self.client.post(self.base + "list/other/add",
                                          {"value": "1.2.3.4"}).code, 404)
        self.client.post(self.base + "list/deny_addresses/remove", {"value": "@bad.example"})
        self.assertEqual(self.rules().deny_addresses, ())

    def test_spam_filter_by_hand(self):
        self.client.post(self.base + "spam/add", {"field": "subject", "pattern": "대출"})
        self.client.post(self.base + "spam/add", {"field": "sender", "pattern": "x@y.example"})
        self.assertEqual([(e.field, e.pattern) for e in self.rules().spam_filter],
                         [("subject", "대출"), ("sender", "x@y.example")])
        self.assertEqual(self.client.post(self.base + "spam/add",
                                          {"field": "body", "pattern": "x"}).code, 400)


class ZipTests(WebmailTestCase):

    def test_zip_download_and_remove(self):
        self.deliver(b"Subject: one\r\n\r\nx\r\n")
        self.deliver(b"Subject: two\r\n\r\ny\r\n", folder="Sent")
        self.client.login()
        base = "/mail/settings/%s/" % self.client.rand
        r = self.client.post(base + "zip")
        self.assertEqual(r.code, 303)
        folder = os.path.join(self.services.home.root, "zip", "user")
        [name] = os.listdir(folder)
        self.assertRegex(name, r"^alice-\d{8}-\d{6}\.zip$")
        page = self.client.get(base).text
        self.assertIn(base + "zipfile/" + name, page)
        r = self.client.get(base + "zipfile/" + name)
        self.assertEqual(r.code, 200)
        self.assertIn("attachment", r.header("content-disposition"))
        names = sorted(zipfile.ZipFile(BytesIO(r.body)).namelist())
        self.assertEqual([n.split("/")[0] for n in names], ["Inbox", "Sent"])
        # Kept after the download (§26), removed on request.
        self.assertEqual(os.listdir(folder), [name])
        self.assertEqual(self.client.post(base + "zipdel/" + name).code, 303)
        self.assertEqual(os.listdir(folder), [])

    def test_only_own_zips(self):
        folder = os.path.join(self.services.home.root, "zip", "user")
        os.makedirs(folder)
        with open(os.path.join(folder, "bob-20240101-000000.zip"), "wb") as f:
            f.write(b"bob's")
        self.client.login()
        base = "/mail/settings/%s/" % self.client.rand
        for name in ("bob-20240101-000000.zip", "..%2Fzwms.cfg", "alice-x.zip"):
            self.assertEqual(self.client.get(base + "zipfile/" + name).code, 404, name)
            self.assertEqual(self.client.post(base + "zipdel/" + name).code, 404, name)
        self.assertNotIn("bob-2024", self.client.get(base).text)
        self.assertEqual(os.listdir(folder), ["bob-20240101-000000.zip"])
