"""
End to end: the real `twistd zwms` on 127.0.0.1, real clients (swaks, curl,
smtplib, poplib, zwms-admin).  SPEC §0, S1-S3, O1-O3, X1.
"""

import os
import poplib
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import unittest

from tests.e2e.server import Server, tool

DOMAIN = "example.com"
NEEDS = [name for name in ("swaks", "curl") if shutil.which(name) is None]


def message(subject, body="Hello.\r\n", extra=""):
    return ("From: Bob <bob@remote.example>\r\nTo: alice@%s\r\nSubject: %s\r\n%s\r\n%s"
            % (DOMAIN, subject, extra, body)).encode("utf-8")


def added_header_lines(stored, raw):
    """
    Check that C{stored} is C{raw} with only whole header lines added at its
    top (SPEC §0); return those added lines.
    """
    assert stored.endswith(raw), stored[-300:]
    added = stored[:len(stored) - len(raw)].split(b"\r\n")[:-1]
    for line in added:
        assert line.startswith((b"Return-Path:", b"Received:", b" ", b"\t")), line
    return added


class ServerCase(unittest.TestCase):
    """One server for the class, accounts made with zwms-admin before start."""

    @classmethod
    def setUpClass(cls):
        if tool("twistd") is None or tool("zwms-admin") is None:
            raise unittest.SkipTest("zWMS is not installed (pip install .)")
        cls.tmp = tempfile.mkdtemp(prefix="zwms-e2e-")
        cls.server = Server(os.path.join(cls.tmp, "home"))
        cls.server.admin("config", "set", "DOMAIN", DOMAIN)
        cls.server.admin("user", "add", "alice", "alice-pw", "--name", "Alice Kim")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def pop3(self):
        client = poplib.POP3("127.0.0.1", self.server.ports["pop3"], timeout=20)
        self.addCleanup(lambda: client.sock and client.sock.close())
        return client

    def fetch_all(self, user, password):
        client = self.pop3()
        client.user(user)
        client.pass_(password)
        count, _ = client.stat()
        got = [b"\r\n".join(client.retr(i)[1]) + b"\r\n" for i in range(1, count + 1)]
        client.quit()
        return got


class SmtpToPop3Tests(ServerCase):
    def test_smtplib_to_poplib_byte_exact(self):
        raw = message("exact", body="line one\r\n.leading dot\r\n\r\nlast\r\n")
        with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=20) as s:
            s.ehlo("client.example")
            self.assertIn("pipelining", s.esmtp_features)
            self.assertEqual(s.esmtp_features.get("size"), str(51200 * 1024))
            refused = s.sendmail("bob@remote.example", ["alice@%s" % DOMAIN], raw)
            self.assertEqual(refused, {})
        got = self.fetch_all("alice", "alice-pw")
        self.assertEqual(len(got), 1)
        added = added_header_lines(got[0], raw)
        self.assertEqual(added[0], b"Return-Path: <bob@remote.example>")
        # Fetched with QUIT: not offered again (SPEC O2).
        self.assertEqual(self.fetch_all("alice", "alice-pw"), [])

    def test_unknown_user_and_relay_replies(self):
        with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=20) as s:
            s.ehlo("client.example")
            s.mail("bob@remote.example")
            self.assertEqual(s.rcpt("nobody@%s" % DOMAIN),
                             (550, b"Error. User not found"))
            self.assertEqual(s.rcpt("x%y@" + DOMAIN)[0], 553)
        log = self.server.log("MailServer")
        self.assertIn("User not found", log)

    @unittest.skipIf(NEEDS, "needs %s" % NEEDS)
    def test_swaks_then_curl_pop3(self):
        self.server.admin("user", "add", "carol", "carol-pw")
        body = "Subject: via swaks\r\n\r\n" + "x" * 70 + "\r\n"
        data_file = os.path.join(self.tmp, "swaks.eml")
        with open(data_file, "w", newline="") as f:
            f.write(body)
        sent = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.server.ports["smtp"]),
             "--from", "bob@remote.example", "--to", "carol@" + DOMAIN,
             "--data", data_file, "--helo", "swaks.example"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(sent.returncode, 0, sent.stdout + sent.stderr)
        self.assertRegex(sent.stdout, r"<-  250 [^\n]*\n -> QUIT")
        listing = subprocess.run(
            ["curl", "-s", "--max-time", "30", "--user", "carol:carol-pw",
             "pop3://127.0.0.1:%d/" % self.server.ports["pop3"]],
            capture_output=True, timeout=60)
        self.assertEqual(listing.returncode, 0, listing.stderr)
        self.assertEqual(len(listing.stdout.splitlines()), 1)
        fetched = subprocess.run(
            ["curl", "-s", "--max-time", "30", "--user", "carol:carol-pw",
             "pop3://127.0.0.1:%d/1" % self.server.ports["pop3"]],
            capture_output=True, timeout=60)
        self.assertEqual(fetched.returncode, 0, fetched.stderr)
        # swaks ends the data it read with one more CRLF before the dot.
        self.assertTrue(fetched.stdout.endswith(body.encode() + b"\r\n"), fetched.stdout[-200:])

    @unittest.skipIf(NEEDS, "needs %s" % NEEDS)
    def test_curl_pop3s_and_stls(self):
        self.server.admin("user", "add", "dave", "dave-pw")
        with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=20) as s:
            s.sendmail("bob@remote.example", ["dave@" + DOMAIN], message("tls"))
        for url, extra in (("pop3s://127.0.0.1:%d/" % self.server.ports["pop3s"], []),
                           ("pop3://127.0.0.1:%d/" % self.server.ports["pop3"],
                            ["--ssl-reqd"])):
            listing = subprocess.run(
                ["curl", "-s", "-k", "--max-time", "30", "--user", "dave:dave-pw", url] + extra,
                capture_output=True, timeout=60)
            self.assertEqual(listing.returncode, 0, (url, listing.stderr))
            self.assertEqual(len(listing.stdout.splitlines()), 1, url)

    @unittest.skipIf(NEEDS, "needs %s" % NEEDS)
    def test_swaks_starttls_and_auth_on_submission(self):
        self.server.admin("user", "add", "erin", "erin-pw")
        sent = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.server.ports["submission"]),
             "--tls", "--auth", "PLAIN", "--auth-user", "erin", "--auth-password", "erin-pw",
             "--from", "erin@" + DOMAIN, "--to", "alice@" + DOMAIN],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(sent.returncode, 0, sent.stdout + sent.stderr)
        self.assertIn("<~  235 ", sent.stdout)
        bad = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.server.ports["submission"]),
             "--tls", "--auth", "LOGIN", "--auth-user", "erin", "--auth-password", "wrong",
             "--from", "erin@" + DOMAIN, "--to", "alice@" + DOMAIN],
            capture_output=True, text=True, timeout=60)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("535 authorization failed", bad.stdout)

    def test_smtps_implicit_tls(self):
        self.server.admin("user", "add", "frank", "frank-pw")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP_SSL("127.0.0.1", self.server.ports["smtps"], timeout=20,
                              context=context) as s:
            s.login("frank", "frank-pw")
            self.assertEqual(s.sendmail("frank@" + DOMAIN, ["frank@" + DOMAIN],
                                        message("smtps")), {})
        self.assertEqual(len(self.fetch_all("frank", "frank-pw")), 1)

    def test_alias_and_multidomain_and_live_admin_changes(self):
        self.server.admin("user", "add", "gina", "gina-pw")
        self.server.admin("alias", "add", "sales@" + DOMAIN, "gina")
        self.server.admin("domain", "add", "example.org")
        with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=20) as s:
            for rcpt in ("sales@" + DOMAIN, "gina@example.org"):
                self.assertEqual(s.sendmail("bob@remote.example", [rcpt], message(rcpt)), {})
            # Two addresses of one mailbox in one transaction: one copy.
            self.assertEqual(s.sendmail("bob@remote.example",
                                        ["sales@" + DOMAIN, "gina@" + DOMAIN],
                                        message("both")), {})
        self.assertEqual(len(self.fetch_all("gina", "gina-pw")), 3)
        # Quota set while the server runs applies to the next mail.
        self.server.admin("user", "set", "gina", "maxmails", "2")
        with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=20) as s:
            s.ehlo("x")
            s.mail("bob@remote.example")
            self.assertEqual(s.rcpt("gina@" + DOMAIN),
                             (552, b"Error. User account over max mail qty"))

    def test_pop3_login_with_address(self):
        client = self.pop3()
        client.user("alice@" + DOMAIN)
        self.assertTrue(client.pass_("alice-pw").startswith(b"+OK"))
        client.quit()

    def test_status_page(self):
        with socket.create_connection(("127.0.0.1", self.server.ports["web"]), 10) as c:
            c.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertIn(b"200", data.split(b"\r\n")[0])
        self.assertIn(b"zWMS", data)
