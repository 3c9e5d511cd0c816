"""
Exceptions that carry their reply (DESIGN.md rule 4).

An exception with a C{code} and C{text} is answered with exactly that line;
anything else is logged to SystemError and answered 451.
"""


class ZWMSError(Exception):
    """Base of zWMS errors; C{str(e)} is a message for a person."""


class InvalidValue(ZWMSError, ValueError):
    """A value given by a user or a file is not acceptable."""


class AccountExists(ZWMSError):
    """The account ID is already taken."""


class NoSuchAccount(ZWMSError):
    """There is no account with that ID."""


class NoSuchAlias(ZWMSError):
    """There is no such virtual address."""


class NoSuchMessage(ZWMSError):
    """The message is not (or no longer) in the mailbox."""


class LicenseOver(ZWMSError):
    """MAXACCOUNTS accounts exist already."""


class ConfigError(ZWMSError):
    """A configuration file has a bad line; C{line} is its number."""

    def __init__(self, path, line, message):
        ZWMSError.__init__(self, "%s:%s: %s" % (path, line, message))
        self.path = path
        self.line = line


class Reply(ZWMSError):
    """
    A protocol reply decided by the service layer: C{code} (int),
    C{text} (str, a §36 text), C{log} (the §36 log line or None),
    C{channel} (the log channel).
    """

    def __init__(self, code, text, log=None, channel="MailServer"):
        ZWMSError.__init__(self, "%d %s" % (code, text))
        self.code = code
        self.text = text
        self.log = log
        self.channel = channel
