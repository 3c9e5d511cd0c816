"""
Crash and clean-stop tests (SPEC S3, X1): kill -9 while clients send; after a
restart every message that got its 250 is there exactly once and whole.
"""

import os
import poplib
import shutil
import smtplib
import tempfile
import threading
import time
import unittest

from tests.e2e.server import Server, tool

DOMAIN = "example.com"
CLIENTS = 4
SEND_SECONDS = 1.5


def make_message(tag):
    body = ("%s\r\n" % tag) * 200
    return ("From: load@remote.example\r\nTo: alice@%s\r\nSubject: %s\r\n\r\n%s"
            % (DOMAIN, tag, body)).encode("ascii")


class CrashTests(unittest.TestCase):
    def setUp(self):
        if tool("twistd") is None or tool("zwms-admin") is None:
            raise unittest.SkipTest("zWMS is not installed (pip install .)")
        self.tmp = tempfile.mkdtemp(prefix="zwms-crash-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.server = Server(os.path.join(self.tmp, "home"))
        self.addCleanup(self.server.kill)
        self.server.admin("config", "set", "DOMAIN", DOMAIN)
        self.server.admin("user", "add", "alice", "pw")

    def send_until(self, stop, acked, attempted, worker):
        port = self.server.ports["smtp"]
        n = 0
        while not stop.is_set() and n < 10000:
            n += 1
            tag = "msg-%d-%d" % (worker, n)
            attempted.append(tag)
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                    if s.sendmail("load@remote.example", ["alice@" + DOMAIN],
                                  make_message(tag)) == {}:
                        acked.append(tag)
            except (OSError, smtplib.SMTPException):
                return

    def fetch_tags(self):
        client = poplib.POP3("127.0.0.1", self.server.ports["pop3"], timeout=30)
        try:
            client.user("alice")
            client.pass_("pw")
            count = client.stat()[0]
            found = []
            for i in range(1, count + 1):
                data = b"\r\n".join(client.retr(i)[1]) + b"\r\n"
                tag = data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                self.assertTrue(data.endswith(make_message(tag)), "message %s is not whole" % tag)
                found.append(tag)
            return found
        finally:
            client.sock.close()

    def test_kill_9_while_sending_loses_nothing_acknowledged(self):
        self.server.admin("config", "set", "POP3COUNT", "100000")
        self.server.start()
        stop, acked, attempted = threading.Event(), [], []
        threads = [threading.Thread(target=self.send_until, args=(stop, acked, attempted, w))
                   for w in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(SEND_SECONDS)
        self.server.kill()
        stop.set()
        for t in threads:
            t.join(30)
        self.assertGreater(len(acked), 10, "too few messages were sent to test anything")
        self.server.start()
        found = self.fetch_tags()
        self.assertEqual(len(found), len(set(found)), "a message is stored twice")
        missing = set(acked) - set(found)
        self.assertEqual(missing, set(), "acknowledged messages lost: %s" % sorted(missing)[:5])
        self.assertTrue(set(found) <= set(attempted))
        leftovers = [name for folder, _, names in os.walk(os.path.join(self.server.home, "data"))
                     for name in names if name.startswith(".tmp-")]
        self.assertEqual(leftovers, [])
        self.assertTrue(self.server.stop())

    def test_sigterm_stops_cleanly_and_restart_resumes(self):
        self.server.start()
        with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=10) as s:
            s.sendmail("load@remote.example", ["alice@" + DOMAIN], make_message("before-stop"))
        self.assertTrue(self.server.stop())
        self.assertFalse(os.path.exists(os.path.join(self.server.home, "run", "listen")))
        self.assertIn("zWMS stopped", self.server.log("SystemStatus"))
        self.server.start()
        self.assertEqual(self.fetch_tags(), ["before-stop"])
