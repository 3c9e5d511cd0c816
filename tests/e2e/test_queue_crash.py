"""
The outbound queue survives kill -9 (SPEC Q1, issue 3): messages relayed
and acknowledged with 250 just before the server is killed are delivered
after the restart, each at least once.
"""

import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

from tests.e2e.server import Server, tool
from tests.e2e.test_relay import REPO, WORLD

MESSAGES = 40


class QueueCrashTests(unittest.TestCase):
    def setUp(self):
        if tool("twistd") is None or tool("zwms-admin") is None:
            raise unittest.SkipTest("zWMS is not installed (pip install .)")
        self.tmp = tempfile.mkdtemp(prefix="zwms-qcrash-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.sent = os.path.join(self.tmp, "sink.jsonl")
        self.world = subprocess.Popen([sys.executable, "-c", WORLD, self.sent],
                                      env=dict(os.environ, PYTHONPATH=REPO),
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True)
        self.addCleanup(self.world.wait, 10)
        self.addCleanup(self.world.kill)
        dns_port, sink_port = self.world.stdout.readline().split()
        self.server = Server(os.path.join(self.tmp, "home"))
        self.addCleanup(self.server.kill)
        for args in (("DOMAIN", "example.com"), ("DNS1", "127.0.0.1:" + dns_port),
                     ("REMOTEPORT", sink_port), ("LOOPBACKMX", "1")):
            self.server.admin("config", "set", *args)

    def delivered_tags(self):
        tags = []
        if os.path.exists(self.sent):
            with open(self.sent) as f:
                for tx in map(json.loads, f):
                    tags.append(tx["data"].split("Subject: ", 1)[1].split("\r\n", 1)[0])
        return tags

    def test_kill_9_after_250_then_restart_delivers_everything(self):
        self.server.start()
        # The DNS world and sink are paused: MX lookups hang, so every
        # acknowledged message is still only in data/queue when we kill.
        os.kill(self.world.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, self.world.pid, signal.SIGCONT)
        acked = []
        with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=30) as s:
            for i in range(MESSAGES):
                tag = "queued-%03d" % i
                body = ("From: a@example.com\r\nTo: b@far.test\r\nSubject: %s\r\n\r\n%s\r\n"
                        % (tag, "x" * 2000))
                if s.sendmail("a@example.com", ["b%d@far.test" % i], body.encode()) == {}:
                    acked.append(tag)
            self.server.kill()
        os.kill(self.world.pid, signal.SIGCONT)
        self.assertEqual(len(acked), MESSAGES)
        time.sleep(0.5)
        self.assertEqual(self.delivered_tags(), [], "sent before the kill: nothing was tested")
        self.server.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if set(acked) <= set(self.delivered_tags()):
                break
            time.sleep(0.2)
        delivered = self.delivered_tags()
        self.assertEqual(set(acked) - set(delivered), set(),
                         self.server.log("MailServer")[-2000:])
        queue = os.path.join(self.server.home, "data", "queue")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(n.endswith(".json") for n in os.listdir(queue)):
            time.sleep(0.2)
        self.assertEqual([n for n in os.listdir(queue) if n.endswith(".json")], [])
        self.assertTrue(self.server.stop())
