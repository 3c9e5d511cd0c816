# -*- test-case-name: tests.test_pop3_policy -*-
"""
USER/PASS login over the service layer (SPEC §0: the ID or any of the
account's addresses; SPEC O1: refused when POP3=0).

This is a plain function rather than a twisted.cred portal: POP3 has one
credential type, the replies and log lines depend on why a login failed,
and the client IP (for relay IP auth, SPEC O3) is at hand in the protocol.

Mail clients log in again every few minutes with the same password, and
each argon2 check takes ~0.1 s and 64 MiB (at most two run at once):
ten clients polling together waited over a second for their logins
(profiled, issue 8).  L{LoginCache} remembers, for a short time, that a
password was verified against the account's current hash, the way
Dovecot's auth_cache does; a wrong password, a changed password and an
expired entry always go through argon2.
"""

import collections
import hashlib
import hmac
import os
import time

from twisted.internet import defer

from zwms.pop3 import texts

#: Seconds a verified password is remembered (mail clients poll every few
#: minutes; Dovecot's auth_cache_ttl is one hour).
CACHE_TTL = 15 * 60

#: Accounts remembered at most (the least recently used go first).
CACHE_SIZE = 4096


class LoginRefused(Exception):
    """
    A login that does not succeed.

    @ivar reply: the text after "-ERR ".
    @ivar reason: why, for the POP log line.
    """

    def __init__(self, reply, reason):
        Exception.__init__(self, reason)
        self.reply = reply
        self.reason = reason


class LoginCache:
    """
    Passwords recently verified by argon2, one entry per account.

    An entry holds the account's stored hash at the time (a changed
    password misses), an HMAC-SHA256 of the password under a key made at
    random for this process (the password itself is never kept), and an
    expiry time.  Only successful checks are remembered, so a wrong
    password always costs the full argon2 time.

    @param clock: an IReactorTime (its C{seconds()}), or None for
        C{time.monotonic}.
    """

    def __init__(self, ttl=CACHE_TTL, size=CACHE_SIZE, clock=None):
        self.ttl = ttl
        self.size = size
        self._now = clock.seconds if clock is not None else time.monotonic
        self._key = os.urandom(32)
        self._entries = collections.OrderedDict()

    def _digest(self, account_id, stored_hash, secret):
        message = "\0".join((account_id, stored_hash, secret)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, account, secret):
        """True when C{secret} was verified lately against C{account}'s current hash."""
        stored = getattr(account, "password_hash", None)
        entry = self._entries.get(account.id)
        if entry is None or not stored:
            return False
        expires, digest = entry
        if self._now() >= expires:
            del self._entries[account.id]
            return False
        if not hmac.compare_digest(digest, self._digest(account.id, stored, secret)):
            return False
        self._entries.move_to_end(account.id)
        return True

    def remember(self, account, secret):
        """Note that C{secret} matched C{account}'s current hash (argon2 said so)."""
        stored = getattr(account, "password_hash", None)
        if not stored or self.size <= 0:
            return
        self._entries[account.id] = (self._now() + self.ttl,
                                     self._digest(account.id, stored, secret))
        self._entries.move_to_end(account.id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self):
        return len(self._entries)


def default_run_blocking(function, *args):
    """Run slow work (argon2) in the reactor's thread pool."""
    from twisted.internet import threads
    return threads.deferToThread(function, *args)


@defer.inlineCallbacks
def authenticate(services, login, password, run_blocking=default_run_blocking, cache=None):
    """
    Check a POP3 login.

    The password is checked before the account's state, so a locked or
    inactive account is only revealed to someone who knows its password.

    @param login: C{bytes} from USER: an account ID or one of its addresses.
    @param password: C{bytes} from PASS.
    @param run_blocking: C{run_blocking(f, *args)} runs C{f} off the reactor
        thread and returns a Deferred (tests pass a synchronous runner).
    @param cache: a L{LoginCache}, or None to run argon2 for every login.
    @return: a Deferred firing with the L{zwms.account.Account}, or failing
        with L{LoginRefused}.
    """
    if not services.settings["POP3"]:
        raise LoginRefused(texts.POP3_OFF, texts.REASON_OFF)
    try:
        name = login.decode("utf-8")
        secret = password.decode("utf-8")
    except UnicodeDecodeError:
        raise LoginRefused(texts.AUTH_FAILED, texts.REASON_UNDECODABLE)
    account_id = yield defer.maybeDeferred(services.directory.login_account, name)
    if not account_id:
        raise LoginRefused(texts.AUTH_FAILED, texts.REASON_UNKNOWN)
    before = account = checked = None
    if cache is not None:
        # (Its state is looked at only after the password, below.)
        try:
            before = yield defer.maybeDeferred(services.accounts.get, account_id)
        except Exception:
            # A damaged account.cfg: argon2's path below decides, as
            # without a cache.
            before = None
        if before is not None:
            # (Taken now: a store may hand out the same object it changes.)
            checked = before.password_hash
            if cache.verified(before, secret):
                account = before
    if account is None:
        ok = yield defer.maybeDeferred(run_blocking, services.accounts.check_password,
                                       account_id, secret)
        if not ok:
            raise LoginRefused(texts.AUTH_FAILED, texts.REASON_PASSWORD)
        account = yield defer.maybeDeferred(services.accounts.get, account_id)
        if account is None:
            # Deleted between the two calls.
            raise LoginRefused(texts.AUTH_FAILED, texts.REASON_UNKNOWN)
        if checked and checked == account.password_hash:
            # The hash checked is the one read before and after the check
            # (a password changed meanwhile is not remembered).
            cache.remember(account, secret)
    if account.locked:
        raise LoginRefused(texts.ACCOUNT_LOCKED, texts.REASON_LOCKED)
    if not account.active:
        raise LoginRefused(texts.ACCOUNT_INACTIVE, texts.REASON_INACTIVE)
    return account
