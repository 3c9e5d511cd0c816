# -*- test-case-name: tests.test_smtp_auth -*-
"""
SMTP AUTH over the service layer (SPEC S6, S7; seed §36 [수신] 1).

L{AccountChecker} is a twisted.cred checker: the login is an account ID or
any of the account's addresses (C{directory.login_account}); the password is
verified with C{accounts.check_password} in a thread (argon2 is slow), the
thread runner being injected so that tests run it at once.  Each refusal
writes one of the nine "Auth required but ..." lines and fails with
C{UnauthorizedLogin}, which the protocol answers "535 authorization failed".

L{SMTPRealm} hands out a L{LocalDelivery} per session; L{make_portal} builds
the portal of one listener: port 25 also lets anonymous senders in,
submission (587) and SMTPS (465) only authenticated ones.
"""

from twisted.cred import checkers, credentials, error, portal
from twisted.internet import defer, threads
from twisted.mail import smtp
from zope.interface import implementer

from zwms import logs, replies
from zwms.smtp.delivery import LocalDelivery

#: Listener modes (SPEC §0): MX on 25, submission on 587, implicit TLS on 465.
MODES = ("smtp", "submission", "smtps")


class AuthRefused(error.UnauthorizedLogin):
    """An AUTH refusal whose §36 log line has been written."""


@implementer(checkers.ICredentialsChecker)
class AccountChecker:
    """
    Username/password credentials checked against the accounts.

    @param run_in_thread: C{f(callable, *args)} returning a Deferred;
        C{deferToThread} by default.
    """

    credentialInterfaces = (credentials.IUsernamePassword,)

    def __init__(self, services, run_in_thread=None):
        self.services = services
        self.run_in_thread = run_in_thread or threads.deferToThread

    def _refuse(self, line, peer, login=None):
        """Write the §36 line (with the login, printable) and return the error."""
        if login:
            line = "%s <%s>" % (line, _printable(login))
        self.services.logs.write(logs.MAILSERVER, line, peer=peer)
        return AuthRefused(line)

    def requestAvatarId(self, creds):
        """
        @return: a Deferred firing with the account ID, or failing with
            L{AuthRefused} (an C{UnauthorizedLogin}) after the log line.
        """
        return self._check(creds)

    @defer.inlineCallbacks
    def _check(self, creds):
        # The order of §36 [수신] 1: the cheap refusals before argon2.
        peer = getattr(creds, "peer", None)
        login = _decode(creds.username)
        if login is None:
            raise self._refuse(replies.LOG_AUTH_CONVERT_USER, peer)
        if not login:
            raise self._refuse(replies.LOG_AUTH_NULL_USER, peer)
        password = _decode(creds.password)
        if password is None:
            raise self._refuse(replies.LOG_AUTH_CONVERT_PASSWORD, peer, login)
        if not password:
            raise self._refuse(replies.LOG_AUTH_NULL_PASSWORD, peer, login)
        account_id = yield defer.maybeDeferred(self.services.directory.login_account, login)
        if account_id is None:
            # A login that looks like an address names a mailbox we do not
            # know ("invalid user"); a bare ID names no account.
            line = (replies.LOG_AUTH_INVALID_USER if "@" in login
                    else replies.LOG_AUTH_UNKNOWN_USER)
            raise self._refuse(line, peer, login)
        account = yield defer.maybeDeferred(self.services.accounts.get, account_id)
        if account is None:
            raise self._refuse(replies.LOG_AUTH_UNKNOWN_USER, peer, login)
        if account.locked:
            raise self._refuse(replies.LOG_AUTH_LOCKED_USER, peer, login)
        if not account.relay:
            raise self._refuse(replies.LOG_AUTH_DISALLOWED_USER, peer, login)
        ok = yield self.run_in_thread(self.services.accounts.check_password,
                                      account.id, password)
        if not ok:
            raise self._refuse(replies.LOG_AUTH_INVALID_PASSWORD, peer, login)
        self.services.logs.write(logs.MAILSERVER, "%s <%s> (%s)" % (
            replies.LOG_AUTH_ACCEPTED, _printable(login), account.id), peer=peer)
        return account.id


@implementer(portal.IRealm)
class SMTPRealm:
    """One L{LocalDelivery} per login; anonymous logins get account_id None."""

    def __init__(self, services):
        self.services = services

    def requestAvatar(self, avatarId, mind, *interfaces):
        if smtp.IMessageDelivery not in interfaces:
            raise NotImplementedError("only IMessageDelivery is offered")
        account_id = None if avatarId is checkers.ANONYMOUS else avatarId
        return smtp.IMessageDelivery, LocalDelivery(self.services, account_id), lambda: None


def make_portal(services, mode, run_in_thread=None):
    """
    The portal of one listener: anonymous senders on 25 (SPEC S1), only
    authenticated ones on submission and SMTPS (SPEC S7).
    """
    if mode not in MODES:
        raise ValueError("unknown SMTP mode %r (one of %s)" % (mode, ", ".join(MODES)))
    chain = [AccountChecker(services, run_in_thread)]
    if mode == "smtp":
        chain.insert(0, checkers.AllowAnonymousAccess())
    return portal.Portal(SMTPRealm(services), chain)


def _decode(value):
    """Bytes from the wire as UTF-8 text, or None when they are not UTF-8."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _printable(text):
    """A login as it may appear in a log line (no control characters)."""
    return "".join(c if c.isprintable() else "?" for c in text)[:256]
