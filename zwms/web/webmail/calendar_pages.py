# -*- test-case-name: tests.test_webmail_calendar -*-
"""
/mail/calendar/RAND/...: the user's calendar (SPEC W3, seed §29) over
L{zwms.store.usercal.UserCalendar}.

  (GET)              this month
  month/YYYY-MM      a month (Sunday first), with the user's memos, the
                     administrator's public memos and the anniversaries /
                     holidays of data/cal and data/cal/special on their days
  week/YYYY-MM-DD    the week holding that date
  day/YYYY-MM-DD     GET one date with the memo form; POST memo (an empty
                     memo removes it)
  go?date=YYYY-MM-DD&view=day|week|month   the "go to" form (a redirect)
  export.ics         GET ?from=YYYY-MM-DD&to=YYYY-MM-DD (both optional):
                     the memos, public memos and anniversaries as RFC 5545
                     all-day events

"Today" is the date in the user's time zone (the session's, from the
preferences; Asia/Seoul by default), from the service clock.  URLs in
memos become links in the template: the memo is split by
L{zwms.store.calendar.link_parts} (http and https only) and both kinds of
part are escaped by Jinja2; links get rel="noopener noreferrer nofollow".
A date that is not one (month 13, "tomorrow", 2026-02-30) is a 400 page
saying what a date looks like.
"""

import datetime
from urllib.parse import urlencode

from klein import Klein

from zwms.errors import InvalidValue
from zwms.i18n import N_
from zwms.store import userprefs
from zwms.store.calendar import check_date
from zwms.store.usercal import UserCalendar
from zwms.web.console import Redirect, Refused, query_args
from zwms.web.webmail.contacts import say, user_message
from zwms.web.webmail.state import page

FIRST_WEEKDAY = 6  # Sunday, as Korean calendars
#: Column headings, Sunday first (translated in the template).
WEEKDAYS = (N_("Sun"), N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"))
MIN_DATE, MAX_DATE = datetime.date(1, 1, 8), datetime.date(9999, 12, 24)


def parse_month(text):
    """(year, month) of "YYYY-MM".  @raise InvalidValue"""
    text = str(text or "").strip()
    try:
        year, month = text.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(text)
        year, month = int(year), int(month)
    except ValueError:
        raise InvalidValue("a date looks like 2024-05-05, got %r" % (text,))
    # The first and last months need days of years 0 and 10000: not shown.
    if not (1 <= month <= 12 and (1, 2) <= (year, month) <= (9999, 11)):
        raise InvalidValue("no such month: %s" % (text,))
    return year, month


def parse_day(text):
    """A datetime.date of "YYYY-MM-DD".  @raise InvalidValue"""
    return datetime.date.fromisoformat(check_date(text))


def month_step(year, month, step):
    """The (year, month) C{step} months away, or None outside years 1-9999."""
    index = year * 12 + (month - 1) + step
    year, month = divmod(index, 12)
    return (year, month + 1) if (1, 2) <= (year, month + 1) <= (9999, 11) else None


def day_step(date, days):
    """The date C{days} away, or None near the ends of the calendar."""
    try:
        out = date + datetime.timedelta(days=days)
    except OverflowError:
        return None
    return out if MIN_DATE <= out <= MAX_DATE else None


class CalendarApp:
    """The calendar pages, at /mail/calendar."""

    app = Klein()

    def __init__(self, webmail):
        self.webmail = webmail
        self.calendar = UserCalendar(webmail.services.home)

    def _base(self, session):
        return "/mail/calendar/%s/" % self.webmail.rand(session)

    def today(self, session):
        """The date now in the user's time zone."""
        tz = userprefs.tzinfo(session.data.get("tz") or userprefs.DEFAULT_TZ)
        now = datetime.datetime.fromtimestamp(self.webmail.now(), datetime.timezone.utc)
        return now.astimezone(tz).date()

    async def _render(self, request, session, template, status=200, **values):
        wm = self.webmail
        request.setResponseCode(status)
        nav = await wm.nav(session)
        today = self.today(session)
        return wm.render(request, session, template, base=self._base(session), today=today,
                         weekdays=WEEKDAYS, **dict(nav, **values))

    def _bad(self, request, session, error):
        """A date the user typed is not one: a 400 page saying so (in the page's language)."""
        raise Refused(400, user_message(self.webmail.language(request, session), error))

    def _date(self, request, session, text):
        """The date of a URL or form, checked (within the calendar's range)."""
        try:
            d = parse_day(text)
        except InvalidValue as e:
            self._bad(request, session, e)
        if not MIN_DATE <= d <= MAX_DATE:
            self._bad(request, session, "no such date: %r" % (text,))
        return d

    # -- views ----------------------------------------------------------------

    @app.route("/<rand>", methods=["GET"])
    @page()
    async def bare(self, request, session):
        raise Redirect(self._base(session))

    @app.route("/<rand>/", methods=["GET"])
    @page()
    async def this_month(self, request, session):
        today = self.today(session)
        return await self._month(request, session, today.year, today.month)

    @app.route("/<rand>/month/<ym>", methods=["GET"])
    @page()
    async def month(self, request, session, ym):
        try:
            year, month = parse_month(ym)
        except InvalidValue as e:
            self._bad(request, session, e)
        return await self._month(request, session, year, month)

    async def _month(self, request, session, year, month):
        weeks = await self.webmail.run(self.calendar.month, session.login, year, month,
                                       self.today(session), FIRST_WEEKDAY)
        prev, nxt = month_step(year, month, -1), month_step(year, month, 1)
        first = datetime.date(year, month, 1)
        last = [d for w in weeks for d in w if d.in_month][-1].date
        return await self._render(
            request, session, "calendar.html", view="month", weeks=weeks, first=first,
            export=export_query(first.isoformat(), last),
            prev="month/%04d-%02d" % prev if prev else "",
            next="month/%04d-%02d" % nxt if nxt else "")

    @app.route("/<rand>/week/<date>", methods=["GET"])
    @page()
    async def week(self, request, session, date):
        d = self._date(request, session, date)
        days = await self.webmail.run(self.calendar.week, session.login, d,
                                      self.today(session), FIRST_WEEKDAY)
        prev, nxt = day_step(d, -7), day_step(d, 7)
        return await self._render(
            request, session, "calendar_week.html", view="week", days=days, date=d,
            prev="week/%s" % prev.isoformat() if prev else "",
            next="week/%s" % nxt.isoformat() if nxt else "")

    @app.route("/<rand>/day/<date>", methods=["GET"])
    @page()
    async def day(self, request, session, date):
        d = self._date(request, session, date)
        done = query_args(request).get("done", "")
        return await self._day(request, session, d, flash=done if done in ("saved",
                                                                         "deleted") else "")

    async def _day(self, request, session, d, error="", status=200, flash="", memo=None):
        day = await self.webmail.run(self.calendar.day, session.login, d, self.today(session))
        prev, nxt = day_step(d, -1), day_step(d, 1)
        return await self._render(
            request, session, "calendar_day.html", status=status, view="day", day=day, date=d,
            error=error, flash=flash, memo=day.memo if memo is None else memo,
            prev="day/%s" % prev.isoformat() if prev else "",
            next="day/%s" % nxt.isoformat() if nxt else "")

    @app.route("/<rand>/day/<date>", methods=["POST"])
    @page("POST")
    async def save_memo(self, request, session, date, values):
        wm = self.webmail
        d = self._date(request, session, date)
        text = values.get("memo", "")
        try:
            saved = await wm.run(self.calendar.set_memo, session.login, d.isoformat(), text)
        except InvalidValue as e:
            return await self._day(request, session, d, status=400, memo=text,
                                   error=user_message(wm.language(request, session), e))
        wm.log("webmail calendar memo %s: %s %s" % ("saved" if saved else "removed",
                                                    session.login, d.isoformat()), request)
        raise Redirect("%sday/%s?done=%s" % (self._base(session), d.isoformat(),
                                             "saved" if saved else "deleted"))

    @app.route("/<rand>/go", methods=["GET"])
    @page()
    async def go(self, request, session):
        args = query_args(request)
        view = args.get("view", "day")
        d = self._date(request, session, args.get("date", ""))
        target = {"month": "month/%04d-%02d" % (d.year, d.month),
                  "week": "week/%s" % d.isoformat()}.get(view, "day/%s" % d.isoformat())
        raise Redirect(self._base(session) + target)

    # -- iCalendar ------------------------------------------------------------

    @app.route("/<rand>/export.ics", methods=["GET"])
    @page()
    async def export(self, request, session):
        wm = self.webmail
        args = query_args(request)
        try:
            start = check_date(args["from"]) if args.get("from") else None
            end = check_date(args["to"]) if args.get("to") else None
        except InvalidValue as e:
            self._bad(request, session, e)
        if start and end and start > end:
            raise Refused(400, say(wm, request, session,
                                   N_("The first date comes after the last one.")))
        now = datetime.datetime.fromtimestamp(wm.now(), datetime.timezone.utc)
        data = await wm.run(self.calendar.export_ics, session.login, start, end, True,
                            str(wm.services.settings["DOMAIN"]), now)
        request.setHeader(b"Content-Type", b"text/calendar; charset=utf-8")
        request.setHeader(b"Content-Disposition", b'attachment; filename="calendar.ics"')
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        return data


def export_query(start, end):
    """The query string of an export link for a date range."""
    return "?" + urlencode({"from": start, "to": end})
