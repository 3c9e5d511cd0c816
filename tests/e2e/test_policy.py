"""
The receive policy in the real server (SPEC P1, P4, P6, P7; issue 4 "Done
means"): an administrator turns a check off, on and to "delegate" with
zwms-admin while `twistd zwms` runs, and the next mail shows the effect.
"""

import os
import poplib
import shutil
import smtplib
import tempfile
import time
import unittest

from tests.e2e.server import Server, tool

DOMAIN = "example.com"
SPAM = b"Subject: cheap viagra\r\nFrom: x@remote.example\r\n\r\nbuy\r\n"
CLEAN = b"Subject: hello\r\nFrom: x@remote.example\r\n\r\nhi\r\n"


class PolicyTests(unittest.TestCase):
    def setUp(self):
        if tool("twistd") is None or tool("zwms-admin") is None:
            raise unittest.SkipTest("zWMS is not installed (pip install .)")
        self.tmp = tempfile.mkdtemp(prefix="zwms-policy-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.server = Server(os.path.join(self.tmp, "home"))
        self.addCleanup(self.server.kill)
        self.server.admin("config", "set", "DOMAIN", DOMAIN)
        # The test client is on 127.0.0.1: not trusted, or every check is skipped.
        self.server.admin("config", "set", "RELAYIPS", "::1")
        # A POP3 login would make 127.0.0.1 one of ours for RELAYIPAUTHTTL
        # (POP-before-SMTP skips the checks like SMTP AUTH).
        self.server.admin("config", "set", "RELAYIPAUTH", "0")
        self.server.admin("user", "add", "alice", "pw")
        data = os.path.join(self.server.home, "data")
        with open(os.path.join(data, "spam.dat"), "w", encoding="utf-8") as f:
            f.write("viagra\n")
        self.server.start()

    def config(self, key, value):
        self.server.admin("config", "set", key, value)
        # env.cfg is re-read when its stamp changes; a new second makes sure.
        time.sleep(1.05)

    def send(self, data):
        """(code, text) of the DATA reply (250 or the refusal)."""
        with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=20) as s:
            try:
                s.sendmail("x@remote.example", ["alice@" + DOMAIN], data)
            except smtplib.SMTPDataError as e:
                return e.smtp_code, e.smtp_error.decode()
            except smtplib.SMTPServerDisconnected:
                return 0, "disconnected"
        return 250, ""

    def inbox(self):
        client = poplib.POP3("127.0.0.1", self.server.ports["pop3"], timeout=20)
        try:
            client.user("alice")
            client.pass_("pw")
            return client.stat()[0]
        finally:
            client.quit()

    def test_spam_off_on_delegate(self):
        self.assertEqual(self.send(SPAM), (250, ""))
        self.config("SPAMREJECT", "1")
        self.assertEqual(self.send(SPAM), (421, "Error. This mail looks like a spam"))
        self.assertIn("Mail receive but spam <x@remote.example> (subject has 'viagra')",
                      self.server.log("MailBlock"))
        self.assertEqual(self.send(CLEAN), (250, ""))
        self.config("SPAMREJECT", "2")
        self.assertEqual(self.send(SPAM), (250, ""))
        self.assertIn("Mail classified as spam <x@remote.example> -> alice",
                      self.server.log("MailBlock"))
        # The first spam (check off) and the clean mail are in the Inbox;
        # the delegated one went to the Spam folder, not to POP3.
        self.assertEqual(self.inbox(), 2)
        self.server.admin("user", "set", "alice", "junkreject", "1")
        self.assertEqual(self.send(SPAM), (421, "Error. This mail looks like a spam"))
        self.assertTrue(self.server.stop())

    def test_blockips_at_connect(self):
        self.config("BLOCKIPS", "127.0.0.1")
        with self.assertRaises(smtplib.SMTPConnectError) as caught:
            smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=20)
        self.assertEqual(caught.exception.smtp_code, 554)
        self.assertIn("Connection refused from blocked IP (BLOCKIPS)",
                      self.server.log("MailBlock"))
        self.config("BLOCKIPS", "")
        self.assertEqual(self.send(CLEAN), (250, ""))
        self.assertTrue(self.server.stop())
