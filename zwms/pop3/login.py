# -*- test-case-name: tests.test_pop3_policy -*-
"""
USER/PASS login over the service layer (SPEC §0: the ID or any of the
account's addresses; SPEC O1: refused when POP3=0).

This is a plain function rather than a twisted.cred portal: POP3 has one
credential type, the replies and log lines depend on why a login failed,
and the client IP (for relay IP auth, SPEC O3) is at hand in the protocol.
"""

from twisted.internet import defer

from zwms.pop3 import texts


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


def default_run_blocking(function, *args):
    """Run slow work (argon2) in the reactor's thread pool."""
    from twisted.internet import threads
    return threads.deferToThread(function, *args)


@defer.inlineCallbacks
def authenticate(services, login, password, run_blocking=default_run_blocking):
    """
    Check a POP3 login.

    The password is checked before the account's state, so a locked or
    inactive account is only revealed to someone who knows its password.

    @param login: C{bytes} from USER: an account ID or one of its addresses.
    @param password: C{bytes} from PASS.
    @param run_blocking: C{run_blocking(f, *args)} runs C{f} off the reactor
        thread and returns a Deferred (tests pass a synchronous runner).
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
    ok = yield defer.maybeDeferred(run_blocking, services.accounts.check_password,
                                   account_id, secret)
    if not ok:
        raise LoginRefused(texts.AUTH_FAILED, texts.REASON_PASSWORD)
    account = yield defer.maybeDeferred(services.accounts.get, account_id)
    if account is None:
        # Deleted between the two calls.
        raise LoginRefused(texts.AUTH_FAILED, texts.REASON_UNKNOWN)
    if account.locked:
        raise LoginRefused(texts.ACCOUNT_LOCKED, texts.REASON_LOCKED)
    if not account.active:
        raise LoginRefused(texts.ACCOUNT_INACTIVE, texts.REASON_INACTIVE)
    return account
