"""
MX lookup with dnspython against a DNS world on 127.0.0.1 (never the system
resolver): preference order, A fallback, permanent and temporary failures.
"""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from zwms.queue.mx import MXError, MXHost, MXResolver, build_resolver, parse_server

from tests.dnsworld import DNSWorld


class Settings(dict):
    pass


class ParseServerTests(SynchronousTestCase):
    def test_forms(self):
        self.assertEqual(parse_server("127.0.0.1"), ("127.0.0.1", 53))
        self.assertEqual(parse_server("127.0.0.1:5353"), ("127.0.0.1", 5353))
        self.assertEqual(parse_server("[::1]:5353"), ("::1", 5353))
        self.assertEqual(parse_server("::1"), ("::1", 53))
        for bad in ("dns.example", "1.2.3.4:0", "1.2.3.4:x"):
            self.assertRaises(ValueError, parse_server, bad)

    def test_resolver_uses_given_servers(self):
        r = build_resolver(["127.0.0.1:5353", "", "[::1]:53"])
        self.assertEqual([(n.address, n.port) for n in r.nameservers],
                         [("127.0.0.1", 5353), ("::1", 53)])


class LookupTests(TestCase):
    def setUp(self):
        w = self.world = DNSWorld(["far.test", "nomx.test", "null.test", "broken.test",
                                   "half.test"])
        w.mx("far.test", 20, "mx2.far.test")
        w.mx("far.test", 10, "mx1.far.test")
        w.mx("far.test", 30, "noaddr.far.test")
        w.a("mx1.far.test", "127.0.0.11")
        w.a("mx2.far.test", "127.0.0.12")
        w.a("mx2.far.test", "127.0.0.13")
        w.a("nomx.test", "127.0.0.14")
        w.txt("nomx.test", "v=spf1 -all")
        w.mx("null.test", 0, "")
        w.fail("broken.test")
        w.fail("mx.broken.test")
        w.mx("half.test", 10, "mx.broken.test")
        w.start()
        self.addCleanup(w.stop)
        self.resolver = MXResolver(Settings(DNS1=w.server, DNS2=""), timeout=2, lifetime=4)

    @defer.inlineCallbacks
    def test_preference_order_with_addresses(self):
        hosts = yield self.resolver.lookup("FAR.test")
        self.assertEqual(hosts, [
            MXHost("mx1.far.test", 10, ("127.0.0.11",)),
            MXHost("mx2.far.test", 20, ("127.0.0.12", "127.0.0.13")),
        ])

    @defer.inlineCallbacks
    def test_a_fallback(self):
        hosts = yield self.resolver.lookup("nomx.test")
        self.assertEqual(hosts, [MXHost("nomx.test", 0, ("127.0.0.14",))])

    @defer.inlineCallbacks
    def expect_error(self, domain, permanent):
        try:
            yield self.resolver.lookup(domain)
        except MXError as e:
            self.assertEqual(e.permanent, permanent, e.why)
            return e
        self.fail("no MXError for %s" % domain)

    def test_no_such_domain_is_permanent(self):
        return self.expect_error("nothere.far.test", True)

    def test_null_mx_is_permanent(self):
        return self.expect_error("null.test", True)

    def test_servfail_is_temporary(self):
        return self.expect_error("broken.test", False)

    def test_mx_host_lookup_servfail_is_temporary(self):
        return self.expect_error("half.test", False)

    def test_bad_name_is_permanent(self):
        return self.expect_error("a..b", True)
