"""
The per-account rules store (zwms.store.rules): files under data/userd/ID/,
atomic writes, validation, changes seen at once by every instance.
"""

import json
import os

from twisted.trial import unittest

from zwms.errors import InvalidValue, NoSuchAccount
from zwms.home import Home
from zwms.store.rules import (EMPTY, CorruptRules, FilterEntry, RulesStore, SortRule)


class RulesStoreTests(unittest.SynchronousTestCase):

    def setUp(self):
        self.home = Home(self.mktemp())
        self.home.create()
        os.makedirs(self.home.user_dir("bob"))
        self.store = RulesStore(self.home)

    def test_empty(self):
        self.assertIs(self.store.get("bob"), EMPTY)

    def test_lists(self):
        s = self.store
        s.add("bob", "allow_addresses", "Friend@Example.COM")
        s.add("bob", "allow_addresses", "friend@example.com")
        s.add("bob", "deny_addresses", "@spam.test")
        s.add("bob", "allow_ips", "10.0.0.0/8")
        s.add("bob", "deny_ips", "192.168.1.")
        rules = s.get("bob")
        self.assertEqual(rules.allow_addresses, ("friend@example.com",))
        self.assertEqual(rules.deny_addresses, ("@spam.test",))
        self.assertEqual((rules.allow_ips, rules.deny_ips), (("10.0.0.0/8",), ("192.168.1.",)))
        s.remove("bob", "allow_addresses", "FRIEND@example.com")
        self.assertEqual(s.get("bob").allow_addresses, ())
        s.set_list("bob", "deny_ips", ["1.2.3.4", "::1"])
        self.assertEqual(s.get("bob").deny_ips, ("1.2.3.4", "::1"))

    def test_bad_values_refused_nothing_written(self):
        for kind, value in (("allow_addresses", "not an address"), ("deny_ips", "1.2.3.999"),
                            ("deny_ips", "1.2.3.4, 5.6.7.8"), ("allow_addresses", "a\nb@c.d"),
                            ("nolist", "x"), ("allow_addresses", "x" * 300 + "@a.b")):
            self.assertRaises(InvalidValue, self.store.add, "bob", kind, value)
        self.assertFalse(os.path.exists(self.store.path("bob")))
        self.assertRaises(InvalidValue, self.store.add_sort_rule, "bob", "body", "x", "Work")
        self.assertRaises(InvalidValue, self.store.add_sort_rule, "bob", "subject", "x", "Sent")
        self.assertRaises(InvalidValue, self.store.add_sort_rule, "bob", "subject", "x", "../x")
        self.assertRaises(InvalidValue, self.store.block, "bob", "", " ")
        self.assertRaises(NoSuchAccount, self.store.add, "nobody", "deny_ips", "1.2.3.4")
        self.assertRaises(InvalidValue, self.store.get, "../bob")

    def test_sort_rules_and_filter(self):
        s = self.store
        s.add_sort_rule("bob", "sender", "@work.test", "Work")
        s.add_sort_rule("bob", "subject", "[list]", None)
        self.assertEqual(s.get("bob").sort, (SortRule("sender", "@work.test", "Work"),
                                             SortRule("subject", "[list]", "")))
        self.assertTrue(s.get("bob").sort[1].delete)
        s.remove_sort_rule("bob", 0)
        self.assertEqual(len(s.get("bob").sort), 1)
        self.assertRaises(InvalidValue, s.remove_sort_rule, "bob", 5)
        s.block("bob", sender="Spammer@Bad.test", subject="Cheap 대출")
        s.block("bob", sender="spammer@bad.test")
        self.assertEqual(s.get("bob").spam_filter, (FilterEntry("sender", "spammer@bad.test"),
                                                    FilterEntry("subject", "Cheap 대출")))
        s.unblock("bob", "subject", "Cheap 대출")
        self.assertEqual(len(s.get("bob").spam_filter), 1)

    def test_changes_seen_by_another_instance_at_once(self):
        other = RulesStore(self.home)
        self.assertIs(other.get("bob"), EMPTY)
        self.store.add("bob", "deny_ips", "1.2.3.4")
        self.assertEqual(other.get("bob").deny_ips, ("1.2.3.4",))
        self.store.remove("bob", "deny_ips", "1.2.3.4")
        self.assertEqual(other.get("bob").deny_ips, ())

    def test_file_format_and_atomic(self):
        self.store.add("bob", "deny_addresses", "x@y.test")
        path = self.store.path("bob")
        self.assertEqual(path, os.path.join(self.home.user_dir("bob"), "rules.json"))
        data = json.loads(open(path, encoding="utf-8").read())
        self.assertEqual(data["version"], 1)
        self.assertEqual(data["deny_addresses"], ["x@y.test"])
        self.assertEqual([n for n in os.listdir(os.path.dirname(path)) if n.startswith(".tmp")],
                         [])

    def test_corrupt_file(self):
        path = self.store.path("bob")
        with open(path, "w") as f:
            f.write("{not json")
        self.assertRaises(CorruptRules, self.store.get, "bob")
        with open(path, "w") as f:
            json.dump({"version": 1, "deny_ips": ["nope"]}, f)
        self.assertRaises(CorruptRules, self.store.get, "bob")
        # The next change replaces the broken file.
        self.store.add("bob", "deny_ips", "1.2.3.4")
        self.assertEqual(self.store.get("bob").deny_ips, ("1.2.3.4",))
