"""Site integration links (SPEC W6, §35): HMAC, expiry, one-time nonce, no bare ID."""

import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit

from twisted.trial.unittest import SynchronousTestCase

from zwms.config import Settings
from zwms.home import Home
from zwms.siteauth import MAX_TTL, SiteAuth, SiteAuthError, signature

SECRET = "s3cret-shared-with-the-site-0123"


class Clock:
    def __init__(self, now=1700000000):
        self.now = now

    def __call__(self):
        return self.now


class SiteAuthTests(SynchronousTestCase):
    def setUp(self):
        self.home = Home(self.mktemp())
        self.home.create()
        with open(self.home.env_cfg, "a") as f:
            f.write("SITESECRET=%s\n" % SECRET)
        self.clock = Clock()
        self.auth = SiteAuth(self.home, Settings(self.home), clock=self.clock)

    def params(self, url):
        return dict(parse_qsl(urlsplit(url).query))

    def test_round_trip_and_replay(self):
        url = self.auth.make_link("http://mail.test:9005/zwms/site", "login", "Alice", ttl=60)
        p = self.params(url)
        self.assertEqual(set(p), {"action", "id", "exp", "nonce", "sig"})
        req = self.auth.verify(p)
        self.assertEqual((req.action, req.account_id), ("login", "alice"))
        self.assertRaisesRegex(SiteAuthError, "already used", self.auth.verify, p)
        # remembered durably: a new instance (a restart) refuses it too
        again = SiteAuth(self.home, Settings(self.home), clock=self.clock)
        self.assertRaises(SiteAuthError, again.verify, p)

    def test_independent_signature(self):
        """The documented recipe (what a PHP site computes) is accepted."""
        exp, nonce = self.clock.now + 100, "abcdefghijklmnop1234"
        msg = "zwms-site-v1\nsignup\nbob\n%d\n%s\nname=Bob Lee\npassword=pw 1" % (exp, nonce)
        sig = hmac.new(SECRET.encode(), msg.encode(), hashlib.sha256).hexdigest()
        req = self.auth.verify({"action": "signup", "id": "bob", "exp": str(exp), "nonce": nonce,
                                "name": "Bob Lee", "password": "pw 1", "sig": sig})
        self.assertEqual(req.fields, {"name": "Bob Lee", "password": "pw 1"})

    def test_expiry(self):
        p = self.params(self.auth.make_link("http://x/", "logout", "alice", ttl=30))
        self.clock.now += 31
        self.assertRaisesRegex(SiteAuthError, "expired", self.auth.verify, p)

    def test_far_future_refused(self):
        exp, nonce = self.clock.now + MAX_TTL + 10, "n" * 20
        sig = signature(SECRET, "login", "alice", exp, nonce)
        self.assertRaisesRegex(SiteAuthError, "longer", self.auth.verify,
                               {"action": "login", "id": "alice", "exp": str(exp),
                                "nonce": nonce, "sig": sig})

    def test_tampering_refused(self):
        p = self.params(self.auth.make_link("http://x/", "update", "alice", name="Alice"))
        for key, value in [("id", "admin"), ("action", "remove"), ("name", "Mallory"),
                           ("exp", str(int(p["exp"]) + 1)), ("nonce", "x" * 20),
                           ("sig", "0" * 64), ("sig", p["sig"][:-1] + ("1" if p["sig"][-1] == "0" else "0"))]:
            bad = dict(p, **{key: value})
            self.assertRaises(SiteAuthError, self.auth.verify, bad)
        extra = dict(p, password="added")   # an unsigned field
        self.assertRaises(SiteAuthError, self.auth.verify, extra)
        self.auth.verify(p)  # the untouched link still works (no nonce spent above)

    def test_id_alone_never_enough(self):
        for p in ({"id": "alice"}, {"action": "login", "id": "alice"},
                  {"action": "login", "id": "alice", "exp": "9999999999", "nonce": "n" * 20},
                  {"action": "login", "id": "alice", "exp": "x", "nonce": "n" * 20,
                   "sig": "0" * 64}):
            self.assertRaises(SiteAuthError, self.auth.verify, p)

    def test_bad_values(self):
        for action, aid in (("delete-all", "alice"), ("login", "../x"), ("login", "")):
            self.assertRaises(Exception, self.auth.make_link, "http://x/", action, aid)
        self.assertRaises(Exception, self.auth.make_link, "http://x/", "signup", "a",
                          name="line\nbreak")
        self.assertRaises(Exception, self.auth.make_link, "http://x/", "login", "a",
                          ttl=MAX_TTL + 1)
        p = self.params(self.auth.make_link("http://x/", "login", "alice"))
        self.assertRaises(SiteAuthError, self.auth.verify, dict(p, nonce="short"))

    def test_off_without_secret(self):
        home = Home(self.mktemp())
        home.create()
        auth = SiteAuth(home, Settings(home), clock=self.clock)
        self.assertEqual(auth.secret(), "")
        self.assertRaisesRegex(SiteAuthError, "off", auth.make_link, "http://x/", "login", "a")
        exp, nonce = self.clock.now + 10, "n" * 20
        self.assertRaises(SiteAuthError, auth.verify, {
            "action": "login", "id": "a", "exp": str(exp), "nonce": nonce,
            "sig": signature("", "login", "a", exp, nonce)})

    def test_expired_nonces_pruned(self):
        for i in range(3):
            self.auth.verify(self.params(self.auth.make_link("http://x/", "login", "alice", ttl=10)))
        self.clock.now += 20
        self.auth.verify(self.params(self.auth.make_link("http://x/", "login", "alice", ttl=10)))
        with open(self.auth.nonces_path) as f:
            self.assertEqual(len(f.read().splitlines()), 1)
