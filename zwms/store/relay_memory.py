# -*- test-case-name: tests.test_store -*-
"""
POP-before-SMTP memory (SPEC S6, O3; seed §32 "relay IP auth"): the IPs
that logged in by POP3 lately, each for RELAYIPAUTHTTL seconds.

Kept in process memory only: a restart forgets them, as a client simply
logs in by POP3 again.  The table is bounded (MAX_ENTRIES, the oldest
logins dropped first) so that a flood of logins cannot exhaust memory.
"""

from collections import OrderedDict

from zope.interface import implementer

from zwms.interfaces import IRelayMemory

#: Most remembered IPs; beyond it the oldest login is forgotten.
MAX_ENTRIES = 100_000


@implementer(IRelayMemory)
class RelayMemory:
    """
    IRelayMemory with an injected clock (an IReactorTime: C{seconds()}).
    """

    def __init__(self, settings, clock, max_entries=MAX_ENTRIES):
        self.settings = settings
        self.clock = clock
        self.max_entries = max_entries
        # ip -> (time of login, account ID), in login order (oldest first).
        self._logins = OrderedDict()

    def _ttl(self):
        return self.settings["RELAYIPAUTHTTL"]

    def remember(self, ip, account_id):
        """Record a successful POP3 login from C{ip} now."""
        ip = str(ip)
        self._logins.pop(ip, None)
        self._logins[ip] = (self.clock.seconds(), account_id)
        self._expire()
        while len(self._logins) > self.max_entries:
            self._logins.popitem(last=False)

    def recent(self, ip):
        """The account that logged in from C{ip} within the TTL, or None."""
        entry = self._logins.get(str(ip))
        if entry is None:
            return None
        when, account_id = entry
        if self.clock.seconds() - when > self._ttl():
            del self._logins[str(ip)]
            return None
        return account_id

    def _expire(self):
        """Drop expired logins from the old end (the table is in time order)."""
        limit = self.clock.seconds() - self._ttl()
        while self._logins:
            ip, (when, _) = next(iter(self._logins.items()))
            if when >= limit:
                break
            del self._logins[ip]

    def __len__(self):
        return len(self._logins)
