# -*- test-case-name: tests.test_logs -*-
"""
The six log channels of seed §2, one file each under logs/ (SPEC X3):
WebMail, POP, MailServer, SystemError, MailBlock, SystemStatus.

Lines are `YYYY-MM-DD HH:MM:SS [peer] text`, the text being a §36 line word
for word (zwms.replies).  Files rotate by size and by day (LogFile keeps the
rotated ones as NAME.log.1, .2 …); a write never loses a line.
"""

import os
import time

from twisted.python.logfile import LogFile
from zope.interface import implementer

from zwms.interfaces import ILogs

WEBMAIL = "WebMail"
POP = "POP"
MAILSERVER = "MailServer"
SYSTEMERROR = "SystemError"
MAILBLOCK = "MailBlock"
SYSTEMSTATUS = "SystemStatus"

CHANNELS = (WEBMAIL, POP, MAILSERVER, SYSTEMERROR, MAILBLOCK, SYSTEMSTATUS)

ROTATE_BYTES = 10 * 1024 * 1024
KEEP_ROTATED = 30


def format_line(text, peer=None, now=None):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    text = str(text).replace("\r", " ").replace("\n", " ")
    if peer:
        return "%s [%s] %s\n" % (stamp, peer, text)
    return "%s %s\n" % (stamp, text)


class _DailyLogFile(LogFile):
    """Rotates when the size limit is hit or the day changes."""

    def __init__(self, *args, **kwargs):
        LogFile.__init__(self, *args, **kwargs)
        self._day = time.strftime("%Y%m%d")

    def shouldRotate(self):
        today = time.strftime("%Y%m%d")
        if today != self._day and self.size > 0:
            self._day = today
            return True
        return LogFile.shouldRotate(self)


@implementer(ILogs)
class FileLogs:
    """The channels as files under C{directory}."""

    def __init__(self, directory, rotate_bytes=ROTATE_BYTES, keep=KEEP_ROTATED):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self._files = {
            name: _DailyLogFile("%s.log" % name, directory,
                                rotateLength=rotate_bytes, maxRotatedFiles=keep)
            for name in CHANNELS
        }

    def write(self, channel, text, peer=None):
        f = self._files.get(channel) or self._files[SYSTEMERROR]
        f.write(format_line(text, peer))
        f.flush()

    def path(self, channel):
        """The current file of a channel."""
        return os.path.join(self.directory, "%s.log" % channel)

    def reopen(self):
        """Reopen every channel's file (after "Delete Logs" removed them)."""
        for f in self._files.values():
            f.reopen()

    def close(self):
        for f in self._files.values():
            f.close()


def append_line(directory, channel, text, peer=None):
    """
    Append one line from another process (zwms-admin), without rotating:
    the server rotates its own files.
    """
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "%s.log" % channel), "a", encoding="utf-8") as f:
        f.write(format_line(text, peer))


@implementer(ILogs)
class MemoryLogs:
    """Lines kept in memory, for tests: C{lines[channel]} is a list of texts."""

    def __init__(self):
        self.lines = {name: [] for name in CHANNELS}

    def write(self, channel, text, peer=None):
        self.lines.setdefault(channel, []).append(str(text))
