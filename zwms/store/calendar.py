# -*- test-case-name: tests.test_web_admin2_calendar -*-
"""
The admin calendar of seed §29: a memo per date in data/cal/YYYY-MM-DD.txt
(UTF-8 text; the webmail calendar shows it to every account), and
anniversaries / holidays in data/cal/special/YYYY-MM-DD.txt (first line
the name, second line "holiday=1" or "holiday=0").  One file per date,
written atomically; an empty memo or name removes the file.

Dates are checked (a real calendar date, YYYY-MM-DD) before they become
file names, so nothing else can be named.  Methods block (fsync).
"""

import datetime
import os
import re

from zwms.errors import InvalidValue
from zwms.fileio import atomic_write

#: Longest memo (characters).
MAX_MEMO = 10000
MAX_NAME = 100
URL = re.compile(r"(https?://[^\s<>\"']+)")


def check_date(text):
    """A date as YYYY-MM-DD text.  @raise InvalidValue"""
    text = str(text or "").strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", text):
        raise InvalidValue("a date looks like 2024-05-05, got %r" % (text,))
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise InvalidValue("no such date: %r" % (text,))
    return text


def check_memo(text):
    """A memo's text, normalised.  @raise InvalidValue"""
    text = str(text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if "\x00" in text:
        raise InvalidValue("the memo may not contain NUL characters")
    if len(text) > MAX_MEMO:
        raise InvalidValue("the memo is longer than %d characters" % MAX_MEMO)
    return text


def check_special_name(name):
    """An anniversary name (one line).  @raise InvalidValue"""
    name = str(name or "").strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidValue("the name must be one line")
    if len(name) > MAX_NAME:
        raise InvalidValue("the name is longer than %d characters" % MAX_NAME)
    return name


def link_parts(text):
    """
    The memo as [(is link, text)]: http(s) addresses become links (the
    template escapes both kinds; nothing in the memo is trusted HTML).
    """
    out = []
    for i, part in enumerate(URL.split(text)):
        if part:
            out.append((i % 2 == 1, part))
    return out


class AdminCalendar:
    """Memos and anniversaries of one home."""

    def __init__(self, home):
        self.folder = home.path("data", "cal")
        self.special_folder = home.path("data", "cal", "special")

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def memo(self, date):
        return self._read(os.path.join(self.folder, check_date(date) + ".txt")).strip()

    def set_memo(self, date, text):
        """Write (or with empty text remove) the memo of a date."""
        path = os.path.join(self.folder, check_date(date) + ".txt")
        text = check_memo(text)
        if text:
            atomic_write(path, (text + "\n").encode("utf-8"))
        elif os.path.exists(path):
            os.unlink(path)
        return text

    def special(self, date):
        """(name, holiday) of a date; ("", False) when none."""
        lines = self._read(os.path.join(self.special_folder,
                                        check_date(date) + ".txt")).splitlines()
        if not lines or not lines[0].strip():
            return "", False
        return lines[0].strip(), any(line.strip() == "holiday=1" for line in lines[1:])

    def set_special(self, date, name, holiday):
        """Write (or with an empty name remove) the anniversary of a date."""
        path = os.path.join(self.special_folder, check_date(date) + ".txt")
        name = check_special_name(name)
        if name:
            atomic_write(path, ("%s\nholiday=%d\n" % (name, 1 if holiday else 0))
                         .encode("utf-8"))
        elif os.path.exists(path):
            os.unlink(path)
        return name, bool(holiday and name)

    def month(self, year, month):
        """{day: (memo, name, holiday)} of the dates of a month that have any."""
        prefix = "%04d-%02d-" % (year, month)
        out = {}
        for folder in (self.folder, self.special_folder):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if name.startswith(prefix) and name.endswith(".txt"):
                    try:
                        date = check_date(name[:-4])
                    except InvalidValue:
                        continue
                    day = int(date[-2:])
                    if day not in out:
                        out[day] = (self.memo(date),) + self.special(date)
        return out
