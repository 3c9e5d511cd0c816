# -*- test-case-name: tests.test_siteauth -*-
"""
Site integration links (SPEC W6, §35): a company web site logs its members
into webmail, out of it, signs them up, updates and removes them, with
links it signs with a secret it shares with this server.

A link carries ``action``, ``id``, ``exp`` (Unix time it expires), ``nonce``
(random, 16-64 characters of [A-Za-z0-9_-]), any extra fields (name,
password, address for signup/update) and ``sig``: the hex HMAC-SHA256,
keyed with the shared secret, of::

    zwms-site-v1 LF action LF id LF exp LF nonce [LF key=value ...]

with the extra fields sorted by key.  The server refuses a link whose
signature is wrong (compared in constant time), that has expired or lives
longer than MAX_TTL, or whose nonce was used before: used nonces are kept
durably in data/siteauth-nonces until their link expires, so a replay is
refused even after a restart.  An ID alone never logs anyone in.

The secret is the env.cfg key SITESECRET (the environment page); while it
is empty, every link is refused.  Blocking (a file write per accepted
link): call from a thread.
"""

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from zwms.account import check_id
from zwms.errors import InvalidValue
from zwms.fileio import atomic_write

ACTIONS = ("login", "logout", "signup", "update", "remove")
#: Extra fields a link may carry (signed with the rest).
FIELDS = ("name", "password", "address", "next")
VERSION = "zwms-site-v1"
#: Longest life of a link (seconds): a far-future expiry is refused.
MAX_TTL = 3600
DEFAULT_TTL = 300
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")
NONCES_FILE = "siteauth-nonces"
MIN_SECRET = 16


#: Why a link was refused (SiteAuthError.reason): the web answer names it.
OFF, MALFORMED, BAD_SIGNATURE, EXPIRED, TOO_LONG, REPLAYED = (
    "off", "malformed", "bad-signature", "expired", "too-long", "replayed")


class SiteAuthError(InvalidValue):
    """
    A site link was refused: the text says why, C{reason} is one of OFF,
    MALFORMED, BAD_SIGNATURE, EXPIRED, TOO_LONG, REPLAYED.
    """

    def __init__(self, text, reason=MALFORMED):
        InvalidValue.__init__(self, text)
        self.reason = reason


@dataclass
class SiteRequest:
    """An accepted link: what to do, for whom, with which fields."""
    action: str
    account_id: str
    expires: int
    nonce: str
    fields: dict = field(default_factory=dict)


def message(action, account_id, expires, nonce, fields=None):
    """The signed text (bytes) for these values."""
    parts = [VERSION, action, account_id, str(int(expires)), nonce]
    for key in sorted(fields or {}):
        value = str(fields[key])
        if "\n" in value or "\r" in value:
            raise InvalidValue("a field may not hold a line break")
        parts.append("%s=%s" % (key, value))
    return "\n".join(parts).encode("utf-8")


def signature(secret, action, account_id, expires, nonce, fields=None):
    """The hex HMAC-SHA256 of L{message} under C{secret}."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, message(action, account_id, expires, nonce, fields),
                    hashlib.sha256).hexdigest()


class SiteAuth:
    """Makes and checks signed site links for one home."""

    def __init__(self, home, settings, clock=time.time):
        self.home = home
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()

    @property
    def nonces_path(self):
        return self.home.path("data", NONCES_FILE)

    def secret(self):
        """The shared secret: settings["SITESECRET"]; "" when unset."""
        return str(self.settings["SITESECRET"] or "")

    def _key(self):
        secret = self.secret()
        if len(secret) < MIN_SECRET:
            raise SiteAuthError("site integration is off (SITESECRET is unset or shorter "
                                "than %d characters)" % MIN_SECRET, OFF)
        return secret

    def make_link(self, base_url, action, account_id, ttl=DEFAULT_TTL, nonce=None, **fields):
        """
        A signed URL (what the site's own code builds; here for tests and
        the admin's "try it" button).
        """
        params = self.make_params(action, account_id, ttl, nonce, **fields)
        return "%s%s%s" % (base_url, "&" if "?" in base_url else "?", urlencode(params))

    def make_params(self, action, account_id, ttl=DEFAULT_TTL, nonce=None, **fields):
        """The signed parameters of a link as a dict."""
        action, account_id, fields = _check(action, account_id, fields)
        if not 0 < int(ttl) <= MAX_TTL:
            raise InvalidValue("a link lives 1 to %d seconds" % MAX_TTL)
        nonce = nonce or secrets.token_urlsafe(24)
        expires = int(self.clock()) + int(ttl)
        params = {"action": action, "id": account_id, "exp": str(expires), "nonce": nonce}
        params.update(fields)
        params["sig"] = signature(self._key(), action, account_id, expires, nonce, fields)
        return params

    def verify(self, params):
        """
        Check a link's parameters (a dict of str, from the query or a POST
        body) and spend its nonce.

        @return: a L{SiteRequest}.
        @raise SiteAuthError: off, malformed, bad signature, expired, replayed.
        """
        key = self._key()
        get = lambda name: str(params.get(name, "") or "")
        sig = get("sig").lower()
        try:
            action, account_id, fields = _check(
                get("action"), get("id"), {k: get(k) for k in FIELDS if k in params})
            expires = int(get("exp"))
        except (InvalidValue, ValueError) as e:
            raise SiteAuthError("malformed link: %s" % (e,))
        nonce = get("nonce")
        if not NONCE_RE.match(nonce):
            raise SiteAuthError("malformed link: bad nonce")
        if not re.match(r"^[0-9a-f]{64}$", sig):
            raise SiteAuthError("malformed link: bad signature")
        expected = signature(key, action, account_id, expires, nonce, fields)
        # Signature first (constant time): an unsigned request never touches
        # the nonce file.
        if not hmac.compare_digest(expected, sig):
            raise SiteAuthError("bad signature", BAD_SIGNATURE)
        now = int(self.clock())
        if expires < now:
            raise SiteAuthError("the link has expired", EXPIRED)
        if expires - now > MAX_TTL:
            raise SiteAuthError("the link lives longer than %d seconds" % MAX_TTL, TOO_LONG)
        self._spend(nonce, expires, now)
        return SiteRequest(action, account_id, expires, nonce, fields)

    def _spend(self, nonce, expires, now):
        """Remember the nonce durably until C{expires}; refuse one seen before."""
        with self._lock:
            seen = self._load(now)
            if nonce in seen:
                raise SiteAuthError("the link was already used", REPLAYED)
            seen[nonce] = expires
            data = "".join("%d %s\n" % (exp, n) for n, exp in sorted(seen.items()))
            atomic_write(self.nonces_path, data.encode("ascii"))

    def _load(self, now):
        seen = {}
        try:
            with open(self.nonces_path, "r", encoding="ascii", errors="replace") as f:
                for line in f:
                    exp, _, nonce = line.strip().partition(" ")
                    if exp.isdigit() and NONCE_RE.match(nonce) and int(exp) >= now:
                        seen[nonce] = int(exp)
        except FileNotFoundError:
            pass
        return seen


def _check(action, account_id, fields):
    action = str(action).strip().lower()
    if action not in ACTIONS:
        raise InvalidValue("unknown action %r" % (action,))
    account_id = check_id(account_id)
    clean = {}
    for key, value in fields.items():
        if key not in FIELDS:
            raise InvalidValue("unknown field %r" % (key,))
        value = str(value)
        if "\n" in value or "\r" in value or "\x00" in value:
            raise InvalidValue("a field may not hold a line break")
        clean[key] = value
    return action, account_id, clean


def new_secret():
    """A fresh secret for the environment page's "generate" button."""
    return secrets.token_urlsafe(32)


def nonces_file(home):
    """The path of the used-nonce file (for backups and the file viewer)."""
    return os.path.join(home.data, NONCES_FILE)
