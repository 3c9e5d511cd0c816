"""`twistd zwms` options (SPEC §0)."""

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from zwms.tap import DEFAULT_LISTENERS, Options


class OptionsTests(SynchronousTestCase):
    def parse(self, *args):
        o = Options()
        o.parseOptions(list(args))
        return o

    def test_defaults(self):
        o = self.parse()
        self.assertEqual(o["listeners"], DEFAULT_LISTENERS)
        self.assertEqual(DEFAULT_LISTENERS["smtp"], ["tcp:25:backlog=1024"])
        self.assertEqual(DEFAULT_LISTENERS["web"], ["tcp:9005:backlog=1024"])

    def test_repeat_and_none(self):
        o = self.parse("--smtp", "tcp:2525", "--smtp", "tcp:2526:interface=127.0.0.1",
                       "--pop3s", "none", "--home", self.mktemp())
        self.assertEqual(o["listeners"]["smtp"], ["tcp:2525", "tcp:2526:interface=127.0.0.1"])
        self.assertEqual(o["listeners"]["pop3s"], [])
        self.assertEqual(o["listeners"]["pop3"], ["tcp:110:backlog=1024"])

    def test_bad_endpoint_is_usage_error(self):
        self.assertRaises(usage.UsageError, self.parse, "--smtp", "tcp:notaport")
        self.assertRaises(usage.UsageError, self.parse, "--web", "bogus:1")
        self.assertRaises(usage.UsageError, self.parse, "--web", "none", "--web", "tcp:1")

    def test_help_lists_every_option(self):
        text = str(Options())
        for opt in ("--home", "--smtp", "--submission", "--smtps", "--pop3", "--pop3s", "--web"):
            self.assertIn(opt, text)
