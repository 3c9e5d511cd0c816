# -*- test-case-name: tests.test_pop3_protocol -*-
"""
The POP3 reply and log texts, in one place so the server and its tests use
one spelling.  Seed §36 lists no POP3 texts, so these are ours; bracketed
codes are RFC 2449/3206 response codes (advertised with RESP-CODES).
"""

# ---- replies (the text after "+OK " or "-ERR ") ------------------------------

GREETING = b"zWMS POP3 server ready"
SIGNING_OFF = b"zWMS POP3 server signing off"
SEND_PASS = b"send PASS"
CAPA_FOLLOWS = b"Capability list follows"
BEGIN_TLS = b"Begin TLS negotiation"
TOP_FOLLOWS = b"top of message follows"

UNKNOWN_COMMAND = b"unknown command"
EMPTY_COMMAND = b"empty command"
LOG_IN_FIRST = b"log in first (USER and PASS)"
ALREADY_LOGGED_IN = b"already logged in"
USER_FIRST = b"USER first"
APOP_REFUSED = b"APOP is not supported, use USER and PASS"
AUTH_REFUSED = b"AUTH is not supported, use USER and PASS"
NO_TLS = b"STLS is not available"
ALREADY_TLS = b"already using TLS"
NO_SUCH_MESSAGE = b"no such message"
MESSAGE_GONE = b"message is no longer in the mailbox"
BAD_NUMBER = b"invalid message number"
BAD_LINE_COUNT = b"invalid line count"
LINE_TOO_LONG = b"line too long"
AUTH_FAILED = b"[AUTH] Authentication failed"
POP3_OFF = b"[SYS/PERM] POP3 service is turned off"
ACCOUNT_LOCKED = b"[SYS/PERM] Account is locked"
ACCOUNT_INACTIVE = b"[SYS/PERM] Account is inactive"
SERVER_ERROR = b"[SYS/TEMP] Server error, try again later"
NOT_REMOVED = b"[SYS/TEMP] some deleted messages not removed"
SHUTTING_DOWN = b"[SYS/TEMP] Server shutting down, try again later"


def usage(command_syntax):
    """The reply to a command with missing or extra arguments."""
    return b"usage: " + command_syntax


def already_deleted(number):
    return b"message %d already deleted" % (number,)


def deleted(number):
    return b"message %d deleted" % (number,)


def _messages(count):
    return b"%d message%s" % (count, b"" if count == 1 else b"s")


def maildrop(count):
    return b"maildrop has " + _messages(count)


def octets(size):
    return b"%d octets" % (size,)


def listing(count, size):
    return _messages(count) + b" (%d octets)" % (size,)


# ---- log lines (POP channel unless said otherwise) -------------------------

LOG_LOGIN = "POP3 login {id} ({count} offered)"
LOG_LOGIN_FAILED = "POP3 login failed for {login}: {reason}"
LOG_TOO_MANY_FAILURES = "POP3 too many login failures, connection closed"
LOG_LOGOUT = "POP3 logout {id}: {retrieved} retrieved, {deleted} deleted"
LOG_NO_QUIT = "POP3 session of {id} ended without QUIT: nothing marked or deleted"
LOG_TIMEOUT = "POP3 idle timeout, connection closed"
LOG_LINE_TOO_LONG = "POP3 line too long, connection closed"
#: SystemError channel.
LOG_STORE_ERROR = "POP3 store error for {id}: {error}"

#: Reasons in LOG_LOGIN_FAILED.
REASON_OFF = "POP3 is off"
REASON_UNKNOWN = "unknown user"
REASON_PASSWORD = "wrong password"
REASON_LOCKED = "locked account"
REASON_INACTIVE = "inactive account"
REASON_UNDECODABLE = "login or password not UTF-8"
