"""
End to end: the admin console of the real `twistd zwms` over HTTP with a real
client (urllib with a cookie jar): log in as root/root, create an account in
the form, and the account exists for zwms-admin and receives mail.
"""

import http.cookiejar
import os
import time
import re
import shutil
import smtplib
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

from tests.e2e.server import Server, tool


class WebConsoleTests(unittest.TestCase):
    def setUp(self):
        if tool("twistd") is None or tool("zwms-admin") is None:
            raise unittest.SkipTest("zWMS is not installed (pip install .)")
        self.tmp = tempfile.mkdtemp(prefix="zwms-web-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.server = Server(os.path.join(self.tmp, "home"))
        self.addCleanup(self.server.kill)
        self.server.admin("config", "set", "DOMAIN", "example.com")
        self.server.start()
        self.base = "http://127.0.0.1:%d" % self.server.ports["web"]
        jar = http.cookiejar.CookieJar()
        self.browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def get(self, path):
        with self.browser.open(self.base + path, timeout=20) as r:
            return r.status, r.read().decode("utf-8")

    def post(self, path, fields):
        data = urllib.parse.urlencode(fields).encode("ascii")
        try:
            with self.browser.open(self.base + path, data=data, timeout=20) as r:
                return r.status, r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8")

    def csrf(self, page):
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def test_login_create_account_and_receive_mail(self):
        status, page = self.get("/admin/login")
        self.assertEqual(status, 200)
        status, _ = self.post("/admin/login", {"csrf": "forged", "login": "root",
                                               "password": "root"})
        self.assertEqual(status, 403)
        status, page = self.post("/admin/login", {"csrf": self.csrf(page), "login": "root",
                                                  "password": "root"})
        self.assertEqual(status, 200)
        self.assertIn("<h1>시스템정보</h1>", page)  # System info (Korean by default)
        status, page = self.get("/admin/users/")
        status, page = self.post("/admin/users/create", {
            "csrf": self.csrf(page), "id": "webuser", "password": "web-pw", "name": "Web User",
            "address": ""})
        self.assertEqual(status, 200, page[:500])
        shown = self.server.admin("user", "show", "webuser").stdout
        self.assertIn("name: Web User", shown)
        with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=20) as s:
            self.assertEqual(s.sendmail("a@remote.example", ["webuser@example.com"],
                                        b"Subject: hi\r\n\r\nhello\r\n"), {})
        self.assertIn("admin login: root", self.server.log("WebMail"))

    def login(self):
        status, page = self.get("/admin/login")
        status, page = self.post("/admin/login", {"csrf": self.csrf(page), "login": "root",
                                                  "password": "root"})
        self.assertIn("<h1>시스템정보</h1>", page)
        return page

    def test_restart_button_restarts_the_same_process(self):
        page = self.login()
        pid = self.server.process.pid
        listen = os.path.join(self.server.home, "run", "listen")
        before = os.stat(listen).st_mtime_ns
        self.post("/admin/control/restart", {"csrf": self.csrf(page)})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.path.exists(listen) and os.stat(listen).st_mtime_ns != before:
                break
            time.sleep(0.1)
        else:
            self.fail("no restart:\n" + self.server.twistd_log())
        self.assertIsNone(self.server.process.poll())
        self.assertEqual(self.server.process.pid, pid)
        with open(listen) as f:
            ports = {name: int(addr.rsplit(":", 1)[1]) for name, addr in map(str.split, f)}
        self.server.ports = ports
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=20) as s:
            self.assertEqual(s.noop()[0], 250)
        self.assertIn("zWMS stopped", self.server.log("SystemStatus"))

    def test_stop_button_stops_cleanly(self):
        page = self.login()
        self.post("/admin/control/stop", {"csrf": self.csrf(page)})
        self.assertIn(self.server.process.wait(30), (0, -15))
        self.assertIn("zWMS stopped", self.server.log("SystemStatus"))
