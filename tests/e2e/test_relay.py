"""
End to end relaying (SPEC S6, S7, Q1-Q5): the real `twistd zwms`, a DNS
world on 127.0.0.1 and a receiving SMTP sink on 127.0.0.2 (both in a helper
process), real clients (swaks, smtplib, poplib).
"""

import json
import os
import poplib
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

from tests.e2e.server import Server, tool

DOMAIN = "example.com"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: The helper process: DNS world (far.test MX -> 127.0.0.2) and the sink on
#: 127.0.0.2; it prints "DNSPORT SINKPORT" and appends each transaction the
#: sink receives to the file named by argv[1], one JSON object a line.
WORLD = r"""
import json, sys
from twisted.internet import reactor, task
from tests.dnsworld import DNSWorld
from tests.smtpsink import SMTPSink
out = sys.argv[1]
sink = SMTPSink(interface="127.0.0.2").start()
sink.script.rcpt["rejectme@far.test"] = (550, "5.1.1 No such user here")
world = DNSWorld(["far.test"])
world.mx("far.test", 10, "mx.far.test")
world.a("mx.far.test", "127.0.0.2")
world.start()
done = [0]
def flush():
    new = sink.transactions[done[0]:]
    if new:
        with open(out, "a") as f:
            for tx in new:
                f.write(json.dumps({"sender": tx.sender, "recipients": tx.recipients,
                                    "data": tx.data.decode("latin-1")}) + "\n")
        done[0] += len(new)
task.LoopingCall(flush).start(0.1)
print(world.port, sink.port, flush=True)
reactor.run()
"""


class RelayCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if tool("twistd") is None or tool("zwms-admin") is None:
            raise unittest.SkipTest("zWMS is not installed (pip install .)")
        cls.tmp = tempfile.mkdtemp(prefix="zwms-relay-")
        cls.sent = os.path.join(cls.tmp, "sink.jsonl")
        env = dict(os.environ, PYTHONPATH=REPO)
        cls.world = subprocess.Popen([sys.executable, "-c", WORLD, cls.sent], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = cls.world.stdout.readline().split()
        if len(line) != 2:
            cls.world.kill()
            raise AssertionError("the DNS/SMTP helper did not start")
        dns_port, sink_port = line
        cls.server = Server(os.path.join(cls.tmp, "home"))
        admin = cls.server.admin
        admin("config", "set", "DOMAIN", DOMAIN)
        admin("config", "set", "DNS1", "127.0.0.1:%s" % dns_port)
        admin("config", "set", "REMOTEPORT", sink_port)
        admin("config", "set", "LOOPBACKMX", "1")
        admin("user", "add", "alice", "alice-pw")
        with open(os.path.join(cls.server.home, "data", "team.list"), "w") as f:
            f.write("alice@example.com\nl1@far.test\nl2@far.test\nl3@far.test\n")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.world.kill()
        cls.world.wait(10)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def received(self, predicate, count=1, timeout=30):
        """The sink transactions matching C{predicate}, once C{count} arrived."""
        deadline = time.monotonic() + timeout
        found = []
        while time.monotonic() < deadline:
            found = []
            if os.path.exists(self.sent):
                with open(self.sent) as f:
                    found = [tx for tx in map(json.loads, f) if predicate(tx)]
            if len(found) >= count:
                return found
            time.sleep(0.1)
        self.fail("the sink got %d of %d messages:\n%s\n%s" % (
            len(found), count, self.server.log("MailServer")[-3000:],
            self.server.log("SystemError")[-2000:]))

    def smtp(self, name="smtp", source=None):
        client = smtplib.SMTP("127.0.0.1", self.server.ports[name], timeout=30,
                              source_address=(source, 0) if source else None)
        self.addCleanup(client.close)
        client.ehlo("client.test")
        return client

    def test_swaks_auth_relays(self):
        if shutil.which("swaks") is None:
            self.skipTest("swaks is not installed")
        result = subprocess.run(
            ["swaks", "--server", "127.0.0.1:%d" % self.server.ports["submission"],
             "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-pw",
             "--from", "alice@example.com", "--to", "carol@far.test",
             "--header", "Subject: e2e swaks relay"], capture_output=True, text=True,
            timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        [tx] = self.received(lambda tx: "e2e swaks relay" in tx["data"])
        self.assertEqual((tx["sender"], tx["recipients"]), ("alice@example.com",
                                                            ["carol@far.test"]))
        self.assertIn("Relaymail receive success <carol@far.test>",
                      self.server.log("MailServer"))

    def test_relay_ips_loopback_relays(self):
        client = self.smtp()
        client.sendmail("alice@example.com", ["dan@far.test"],
                        b"Subject: e2e relayips\r\n\r\nhello\r\n")
        [tx] = self.received(lambda tx: "e2e relayips" in tx["data"])
        self.assertEqual(tx["recipients"], ["dan@far.test"])

    def test_other_loopback_address_refused(self):
        client = self.smtp(source="127.0.0.2")
        client.mail("alice@example.com")
        code, text = client.rcpt("erin@far.test")
        self.assertEqual((code, text), (551, b"Error. Relay is refused"))
        for trick in ("erin%far.test@example.com", '"erin@far.test"@example.com',
                      "@example.com:erin@far.test", "far.test!erin@example.com"):
            self.assertGreaterEqual(client.rcpt(trick)[0], 500, trick)

    def test_bounce_reaches_local_sender(self):
        client = self.smtp("submission")
        client.login("alice", "alice-pw")
        client.sendmail("alice@example.com", ["rejectme@far.test"],
                        b"Subject: e2e bounce me\r\n\r\nhello\r\n")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pop = poplib.POP3("127.0.0.1", self.server.ports["pop3"], timeout=20)
            try:
                pop.user("alice")
                pop.pass_("alice-pw")
                texts = [b"\r\n".join(pop.retr(i + 1)[1])
                         for i in range(len(pop.list()[1]))]
            finally:
                pop.quit()
            bounces = [t for t in texts if b"rejectme@far.test" in t and b"No such user" in t]
            if bounces:
                self.assertIn(b"multipart/report", bounces[0])
                return
            time.sleep(0.3)
        self.fail("no bounce in alice's Inbox:\n" + self.server.log("MailServer")[-3000:])

    def test_list_personalised_copies(self):
        client = self.smtp("submission")
        client.login("alice", "alice-pw")
        client.sendmail("alice@example.com", ["(team)"],
                        b"From: alice@example.com\r\nTo: (team)\r\n"
                        b"Subject: e2e list\r\n\r\nnews\r\n")
        found = self.received(lambda tx: "e2e list" in tx["data"], count=3)
        self.assertEqual(sorted(r for tx in found for r in tx["recipients"]),
                         ["l1@far.test", "l2@far.test", "l3@far.test"])
        for tx in found:
            self.assertEqual(len(tx["recipients"]), 1)
            self.assertIn("\r\nTo: <%s>\r\n" % tx["recipients"][0], tx["data"])
            self.assertNotIn("(team)", tx["data"])
        status = os.path.join(self.server.home, "data", "userd", "alice", "lists")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            logs = [n for n in os.listdir(status) if n.endswith(".log")] \
                if os.path.isdir(status) else []
            if logs:
                with open(os.path.join(status, logs[0])) as f:
                    states = [json.loads(line)["state"] for line in f]
                if states.count("sent") == 3:
                    return
            time.sleep(0.2)
        self.fail("no per-recipient status for the mailing")
