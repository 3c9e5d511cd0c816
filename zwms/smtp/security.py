# -*- test-case-name: tests.test_smtp_auth -*-
"""
The commands that change who and how secure a session is: STARTTLS
(RFC 3207) and AUTH PLAIN / LOGIN (RFC 4954), as a mixin of
L{zwms.smtp.protocol.SMTPServer} (SPEC S1, S7; TWISTED-NOTES).

- STARTTLS drops whatever plaintext was pipelined behind it and forgets the
  session (HELO, envelope, AUTH): the client starts again with EHLO.
- AUTH is accepted only over TLS or from loopback.  A bad base64 response is
  a §36 "cannot convert" refusal (535), a malformed PLAIN a 501; the
  connection stays up either way (Twisted's own handler drops it).
"""

import base64
import binascii

from twisted.cred import error as cred_error
from twisted.mail import smtp
from twisted.mail._except import IllegalClientResponse

from zwms import replies
from zwms.smtp.texts import (
    ALREADY_AUTHENTICATED, AUTH, AUTH_ABORTED, AUTH_IN_TRANSACTION, AUTH_MALFORMED,
    AUTH_MECHANISM, AUTH_SYNTAX, AUTH_TEMPORARY, COMMAND, NO_ARGUMENTS, SEND_HELO_FIRST,
    STARTTLS_FIRST, TLS_ACTIVE, TLS_UNAVAILABLE)


class SecurityCommands:
    """STARTTLS and AUTH for L{zwms.smtp.protocol.SMTPServer}."""

    _challenger = None

    # -- STARTTLS --------------------------------------------------------

    def ext_STARTTLS(self, rest):
        """STARTTLS: 220, then TLS on this connection, then a new session."""
        if rest:
            return self.reply(NO_ARGUMENTS)
        if self.secure:
            return self.reply(TLS_ACTIVE)
        if not self.canStartTLS:
            return self.reply(TLS_UNAVAILABLE)
        self.sendCode(220, b"Ready to start TLS")
        # Plaintext pipelined after STARTTLS must never be read as if it had
        # come over TLS (CVE-2011-0411 class); RFC 3207 §4.2: forget the
        # session, the client starts again with EHLO.
        self._discardBuffer()
        self.transport.startTLS(self.ctx)
        self.startedTLS = True
        self._helo = None
        self._ehlo = False
        self._resetEnvelope()
        self._logout()

    def _logout(self):
        """Forget the session's delivery avatar and its authentication."""
        if self._onLogout:
            self._onLogout()
            self._onLogout = None
        self.delivery = None
        self.deliveryFactory = None
        self.authenticated = False
        self.account_id = None

    # -- AUTH ------------------------------------------------------------

    def ext_AUTH(self, rest):
        """AUTH mechanism [initial-response]: PLAIN or LOGIN through the portal."""
        if self.portal is None or not self.auth_allowed():
            if self.canStartTLS and self.portal is not None:
                return self.reply(STARTTLS_FIRST)
            # Not offered here: answered as unknown, without logging the
            # (possibly credential-bearing) argument.
            return self.do_UNKNOWN(b"AUTH")
        if self._helo is None:
            return self.reply(SEND_HELO_FIRST)
        if self.authenticated:
            return self.reply(ALREADY_AUTHENTICATED)
        if self._from is not None:
            return self.reply(AUTH_IN_TRANSACTION)
        parts = rest.split(None, 1)
        if not parts:
            return self.reply(AUTH_SYNTAX)
        make = self.challengers.get(parts[0].upper())
        if make is None:
            return self.reply(AUTH_MECHANISM)
        challenger = make()
        challenger.peer = self.peer_ip
        self._challenger = challenger
        if len(parts) > 1:
            # An initial response answers the first challenge (RFC 4954).
            challenger.getChallenge()
            return self._authResponse(parts[1].strip())
        self.mode = AUTH
        self.sendCode(334, base64.b64encode(challenger.getChallenge()))
        return None

    def _authLine(self, line):
        return self._authResponse(line.strip())

    def _authResponse(self, response):
        self.mode = COMMAND
        challenger = self._challenger
        if response == b"*":
            self._challenger = None
            return self.reply(AUTH_ABORTED)
        # LOGIN asks the username first, then the password; PLAIN carries
        # both in one response, which counts as the username.
        pending = getattr(challenger, "responses", None)
        field = pending[-1] if pending else b"username"
        try:
            raw = b"" if response == b"=" else base64.b64decode(response, validate=True)
        except (binascii.Error, ValueError):
            self._challenger = None
            self.log(replies.LOG_AUTH_CONVERT_PASSWORD if field == b"password"
                     else replies.LOG_AUTH_CONVERT_USER)
            return self.reply(replies.AUTH_FAILED)
        try:
            challenger.setResponse(raw)
        except IllegalClientResponse:
            self._challenger = None
            self.log(replies.LOG_AUTH_CONVERT_USER + " (malformed response)")
            return self.reply(AUTH_MALFORMED)
        if challenger.moreChallenges():
            self.mode = AUTH
            self.sendCode(334, base64.b64encode(challenger.getChallenge()))
            return None
        self._challenger = None
        d = self.portal.login(challenger, None, smtp.IMessageDelivery)
        d.addCallbacks(self._authenticatedOK, self._authenticatedFailed)
        return d

    def _authenticatedOK(self, result):
        iface, avatar, logout = result
        self._logout()
        self.delivery, self._onLogout = avatar, logout
        self.authenticated = True
        self.account_id = getattr(avatar, "account_id", None)
        self.sendCode(235, b"Authentication successful")

    def _authenticatedFailed(self, f):
        if f.check(cred_error.UnauthorizedLogin):
            return self.reply(replies.AUTH_FAILED)
        self.logFailure(f, "SMTP AUTH error")
        return self.reply(AUTH_TEMPORARY)
