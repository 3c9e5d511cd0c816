"""Settings: schema defaults, typed values, bad lines, live reload, writes."""

import os

from twisted.trial.unittest import SynchronousTestCase

from zwms.config import Settings, read_lines
from zwms.config.schema import KEYS, key
from zwms.errors import InvalidValue
from zwms.home import Home


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class SettingsTests(SynchronousTestCase):
    def setUp(self):
        self.home = Home(self.mktemp())
        self.home.create()
        self.clock = Clock()
        self.errors = []

    def settings(self):
        return Settings(self.home, on_error=self.errors.append, now=self.clock)

    def write(self, path, text):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def test_defaults_of_spec(self):
        s = self.settings()
        self.assertEqual(s["MAXMAILSIZE"], 51200)
        self.assertEqual(s["SMTPTTL"], 5)
        self.assertEqual(s["POP3COUNT"], 100)
        self.assertIs(s["POP3"], True)
        self.assertIs(s["SENDNEW"], False)
        self.assertEqual(s["RELAYIPS"], "127.0.0.1,::1")
        self.assertEqual(s["OUTLAWLEVEL"], 3)
        self.assertEqual(s["WEBDIR"], "./webdir/")
        self.assertTrue(s["DOMAIN"])

    def test_every_key_has_help_and_file(self):
        for k in KEYS:
            self.assertTrue(k.help, k.name)
            self.assertIn(k.file, ("zwms.cfg", "env.cfg"))
        self.assertTrue(key("dns1").restart)
        self.assertFalse(key("BOMBREJECT").restart)

    def test_bad_line_reported_with_number_and_last_good_kept(self):
        self.write(self.home.env_cfg, "POP3COUNT=7\n")
        s = self.settings()
        self.assertEqual(s["POP3COUNT"], 7)
        self.write(self.home.env_cfg, "# comment\nPOP3COUNT=lots\nJUNK LINE\n")
        self.clock.now += 2
        self.assertEqual(s["POP3COUNT"], 7)
        lines = sorted(e.line for e in self.errors)
        self.assertEqual(lines, [2, 3])
        self.assertIn("env.cfg:2:", str(self.errors[0]))

    def test_env_changes_seen_without_restart(self):
        s = self.settings()
        self.assertEqual(s["BOMBREJECT"], 0)
        self.write(self.home.env_cfg, "BOMBREJECT=2\n")
        self.clock.now += 1.5
        self.assertEqual(s["BOMBREJECT"], 2)
        os.unlink(self.home.env_cfg)
        self.clock.now += 1.5
        self.assertEqual(s["BOMBREJECT"], 0)

    def test_zwms_cfg_read_once(self):
        self.write(self.home.zwms_cfg, "MAXMAILSIZE=10\n")
        s = self.settings()
        self.assertEqual(s["MAXMAILSIZE"], 10)
        self.write(self.home.zwms_cfg, "MAXMAILSIZE=20\n")
        self.clock.now += 10
        self.assertEqual(s["MAXMAILSIZE"], 10)

    def test_set_validates_and_keeps_other_lines(self):
        self.write(self.home.env_cfg, "# mine\nPOP3COUNT=3\n")
        s = self.settings()
        s.set("spamreject", "1")
        self.assertEqual(s["SPAMREJECT"], 1)
        with open(self.home.env_cfg) as f:
            self.assertEqual(f.read(), "# mine\nPOP3COUNT=3\nSPAMREJECT=1\n")
        self.assertRaises(InvalidValue, s.set, "SPAMREJECT", "3")
        self.assertRaises(InvalidValue, s.set, "NOSUCHKEY", "1")
        self.assertRaises(InvalidValue, s.set, "DNS1", "not-an-ip")
        self.assertEqual(s.set("DNS1", "127.0.0.1:5353"), "127.0.0.1:5353")

    def test_list_values(self):
        s = self.settings()
        s.set("RELAYIPS", "10.0.0.0/8 192.168.1.  ::1")
        self.assertEqual(s.list("RELAYIPS"), ["10.0.0.0/8", "192.168.1.", "::1"])
        self.assertRaises(InvalidValue, s.set, "BLOCKIPS", "300.1.1.1")
        s.set("MULTIDOMAINS", "Example.ORG, example.net")
        self.assertEqual(s.list("MULTIDOMAINS"), ["example.org", "example.net"])

    def test_read_lines_missing_file(self):
        self.assertEqual(read_lines(self.home.path("nope.cfg")), ({}, []))

    def test_binary_garbage_does_not_crash(self):
        with open(self.home.env_cfg, "wb") as f:
            f.write(b"\xff\xfe\x00POP3COUNT=\x00\n=\n")
        s = self.settings()
        self.assertEqual(s["POP3COUNT"], 100)
        self.assertEqual(len(self.errors), 2)
