# -*- test-case-name: tests.test_usercal -*-
"""
A webmail user's calendar (SPEC W3, §29).

The user's own memo of a date lives in data/userd/ID/cal/YYYY-MM-DD.txt
(UTF-8 text, one file per date, written atomically; an empty memo removes
the file) — the same format as the admin's memos, which this module reads
through L{zwms.store.calendar.AdminCalendar} without writing them:
data/cal/YYYY-MM-DD.txt (public memo shown to every account) and
data/cal/special/YYYY-MM-DD.txt (anniversary name, then "holiday=0|1").

The views merge the three per date; memo texts come with link spans
(L{zwms.store.calendar.link_parts}: [(is_link, text)]) that the template
escapes.  L{UserCalendar.export_ics} writes RFC 5545 all-day events with
the standard library only.  Blocking: call from a thread.
"""

import calendar as pycalendar
import datetime
import os
from dataclasses import dataclass, field

from zwms.account import check_id
from zwms.errors import InvalidValue
from zwms.fileio import atomic_write
from zwms.home import safe_join
from zwms.store.calendar import AdminCalendar, check_date, check_memo, link_parts
from zwms.contentlines import escape_text, fold_line


@dataclass
class Day:
    """One date of a view, with everything the calendar shows on it."""
    date: str                       # YYYY-MM-DD
    day: int
    weekday: int                    # 0 = Monday ... 6 = Sunday
    in_month: bool = True
    memo: str = ""                  # the user's own memo
    admin_memo: str = ""            # the administrator's public memo
    special: str = ""               # anniversary name
    holiday: bool = False
    today: bool = False
    memo_parts: list = field(default_factory=list)
    admin_parts: list = field(default_factory=list)


def _as_date(value):
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(check_date(value))


class UserCalendar:
    """The user calendars of one home, merged with the admin calendar."""

    def __init__(self, home):
        self.home = home
        self.admin = AdminCalendar(home)

    def _folder(self, account_id):
        return safe_join(self.home.userd, check_id(account_id), "cal")

    def _file(self, account_id, date):
        return os.path.join(self._folder(account_id), check_date(date) + ".txt")

    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace").strip()
        except FileNotFoundError:
            return ""

    # ---- the user's memos -----------------------------------------------

    def memo(self, account_id, date):
        """The user's memo of a date ("" when none)."""
        return self._read(self._file(account_id, date))

    def set_memo(self, account_id, date, text):
        """
        Write the user's memo of a date, or remove it when C{text} is empty.

        @raise InvalidValue: bad date, NUL, too long.
        """
        path = self._file(account_id, date)
        text = check_memo(text)
        if text:
            atomic_write(path, (text + "\n").encode("utf-8"))
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        return text

    def memo_dates(self, account_id, start=None, end=None):
        """The dates (YYYY-MM-DD, sorted) with a user memo, within [start, end]."""
        try:
            names = os.listdir(self._folder(account_id))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if not name.endswith(".txt"):
                continue
            try:
                date = check_date(name[:-4])
            except InvalidValue:
                continue  # a temp file or something else
            if (start is None or date >= str(_as_date(start))) and \
                    (end is None or date <= str(_as_date(end))):
                out.append(date)
        return sorted(out)

    # ---- views ----------------------------------------------------------

    def _days(self, account_id, dates, in_month=None, today=None):
        user = set(self.memo_dates(account_id, dates[0], dates[-1]))
        out = []
        for d in dates:
            iso = d.isoformat()
            memo = self.memo(account_id, iso) if iso in user else ""
            admin_memo = self.admin.memo(iso)
            name, holiday = self.admin.special(iso)
            out.append(Day(date=iso, day=d.day, weekday=d.weekday(),
                           in_month=in_month is None or d.month == in_month,
                           memo=memo, admin_memo=admin_memo, special=name, holiday=holiday,
                           today=(d == today), memo_parts=link_parts(memo),
                           admin_parts=link_parts(admin_memo)))
        return out

    def month(self, account_id, year, month, today=None, firstweekday=6):
        """
        The weeks of a month as lists of 7 L{Day}s (Sunday first by default);
        days of the neighbouring months fill the first and last week with
        in_month False.
        """
        if not (1 <= int(month) <= 12 and 1 <= int(year) <= 9999):
            raise InvalidValue("no such month: %r-%r" % (year, month))
        weeks = pycalendar.Calendar(firstweekday).monthdatescalendar(int(year), int(month))
        flat = self._days(account_id, [d for w in weeks for d in w], int(month), today)
        return [flat[i:i + 7] for i in range(0, len(flat), 7)]

    def week(self, account_id, date, today=None, firstweekday=6):
        """The 7 L{Day}s of the week holding C{date}."""
        d = _as_date(date)
        start = d - datetime.timedelta(days=(d.weekday() - firstweekday) % 7)
        return self._days(account_id, [start + datetime.timedelta(days=i) for i in range(7)],
                          today=today)

    def day(self, account_id, date, today=None):
        """The L{Day} of one date."""
        return self._days(account_id, [_as_date(date)], today=today)[0]

    # ---- iCalendar ------------------------------------------------------

    def export_ics(self, account_id, start=None, end=None, include_admin=True,
                   domain="localhost", now=None):
        """
        The user's memos (and, with C{include_admin}, the admin's public
        memos and anniversaries) between C{start} and C{end} as an RFC 5545
        VCALENDAR of all-day VEVENTs; bytes, CRLF, folded at 75 octets.

        @param now: a datetime (UTC) for DTSTAMP; the current time when None.
        """
        now = now or datetime.datetime.now(datetime.timezone.utc)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        aid = check_id(account_id)
        events = [(d, "memo", self.memo(aid, d)) for d in self.memo_dates(aid, start, end)]
        if include_admin:
            for d in self._admin_dates(start, end):
                memo = self.admin.memo(d)
                if memo:
                    events.append((d, "admin", memo))
                name, holiday = self.admin.special(d)
                if name:
                    events.append((d, "holiday" if holiday else "special", name))
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//zWMS//Webmail Calendar//KO",
                 "CALSCALE:GREGORIAN", "METHOD:PUBLISH"]
        for date, kind, text in sorted(events):
            first = _as_date(date)
            nxt = first + datetime.timedelta(days=1)
            summary = text.splitlines()[0] if text else ""
            lines += ["BEGIN:VEVENT",
                      "UID:%s-%s-%s@%s" % (first.strftime("%Y%m%d"), kind, aid, domain),
                      "DTSTAMP:" + stamp,
                      "DTSTART;VALUE=DATE:" + first.strftime("%Y%m%d"),
                      "DTEND;VALUE=DATE:" + nxt.strftime("%Y%m%d"),
                      "SUMMARY:" + escape_text(summary[:200]),
                      "DESCRIPTION:" + escape_text(text),
                      "TRANSP:TRANSPARENT"]
            if kind != "memo":
                lines.append("CATEGORIES:" + {"admin": "PUBLIC", "holiday": "HOLIDAY",
                                              "special": "ANNIVERSARY"}[kind])
            lines.append("END:VEVENT")
        lines.append("END:VCALENDAR")
        return b"".join(fold_line(line) for line in lines)

    def _admin_dates(self, start, end):
        out = set()
        for folder in (self.admin.folder, self.admin.special_folder):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if name.endswith(".txt"):
                    try:
                        date = check_date(name[:-4])
                    except InvalidValue:
                        continue
                    if (start is None or date >= str(_as_date(start))) and \
                            (end is None or date <= str(_as_date(end))):
                        out.add(date)
        return sorted(out)


