# -*- test-case-name: tests.test_relay -*-
"""
Who may relay (SPEC S6, seed §4, §32) and who is the sending account whose
limits apply (SPEC S7, seed §16).

A recipient outside our domains is accepted only when one of these holds,
checked in this order:

1. the peer IP is in RELAYIPS (exact addresses, CIDR blocks, dotted
   prefixes such as ``192.168.1.``; default ``127.0.0.1,::1`` only — the
   rest of 127.0.0.0/8 does not relay);
2. RELAYIPAUTH is on and the peer IP logged in by POP3 within
   RELAYIPAUTHTTL seconds (POP-before-SMTP), and that account's own
   ``relayipauth`` flag is on and it is not locked;
3. RELAYAUTH is on and the session authenticated (SMTP AUTH) as an account
   whose ``relay`` flag is on (AUTH itself already refuses an account with
   relay=0: "Auth required but disallowed user").

Else: ``551 Error. Relay is refused`` and the "Relay is refused" log line.
The address syntax tricks (``user%remote@local``, quoted local parts,
source routes, bang paths) never get here: L{zwms.smtp.delivery} refuses
them with 553 before any lookup.
"""

from dataclasses import dataclass

from twisted.internet import defer

from zwms.policy.lists import ip_in


@dataclass(frozen=True)
class RelayGrant:
    """
    Why a session may relay: C{how} is "ip" (RELAYIPS), "pop" (relay IP
    auth) or "auth" (SMTP AUTH); C{account_id} the sending account, if any.
    """
    how: str
    account_id: object = None


class RelayRules:
    """The relay decision of one session, over the service layer."""

    def __init__(self, services):
        self.services = services

    def trusted_ip(self, ip):
        """The peer is in RELAYIPS."""
        return ip_in(ip, self.services.settings.list("RELAYIPS"))

    @defer.inlineCallbacks
    def pop_account(self, ip):
        """
        The account that logged in by POP3 from C{ip} lately and may relay
        that way (RELAYIPAUTH on, its relayipauth flag on, not locked), or
        None.
        """
        settings, memory = self.services.settings, self.services.relay_memory
        if not settings["RELAYIPAUTH"] or memory is None or not ip:
            return None
        account_id = memory.recent(ip)
        if account_id is None:
            return None
        account = yield defer.maybeDeferred(self.services.accounts.get, account_id)
        if account is None or account.locked or not account.relayipauth:
            return None
        return account.id

    @defer.inlineCallbacks
    def decide(self, ip, account_id=None):
        """
        @param ip: the peer IP.
        @param account_id: the SMTP AUTH account of the session, or None.
        @return: a Deferred firing with a L{RelayGrant}, or None when the
            session may not relay.
        """
        if self.trusted_ip(ip):
            return RelayGrant("ip", account_id)
        if account_id is not None:
            if self.services.settings["RELAYAUTH"]:
                account = yield defer.maybeDeferred(self.services.accounts.get, account_id)
                if account is not None and account.relay and not account.locked:
                    return RelayGrant("auth", account.id)
        pop = yield self.pop_account(ip)
        if pop is not None:
            return RelayGrant("pop", pop)
        return None
