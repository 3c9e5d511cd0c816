# -*- test-case-name: tests.test_web_admin2_calendar -*-
"""
The admin calendar (seed §29), at /admin/calendar: a month view with the
memos (web addresses shown as links, everything escaped) and the
anniversaries / holidays, and a day window to edit them.
"""

import datetime

from klein import Klein

from zwms.admin import calendarops
from zwms.errors import InvalidValue
from zwms.web.console import Redirect, Refused, flash, form, page, query_args


def _month(text, today):
    text = str(text or "").strip()
    if not text:
        return today.year, today.month
    try:
        year, month = (int(x) for x in text.split("-"))
        datetime.date(year, month, 1)
    except ValueError:
        raise Refused(400, "a month looks like 2024-05, got %r" % (text,))
    if not 1900 <= year <= 9999:
        raise Refused(400, "a month looks like 2024-05, got %r" % (text,))
    return year, month


class CalendarApp:
    """The admin calendar, mounted at /admin/calendar."""

    app = Klein()

    def __init__(self, console):
        self.console = console

    def today(self):
        return datetime.date.fromtimestamp(self.console.now())

    async def month(self, request, session):
        c = self.console
        year, month = _month(query_args(request).get("m"), self.today())
        weeks = await c.op(request, session, calendarops.month_view, year, month)
        prev = (year - 1, 12) if month == 1 else (year, month - 1)
        nxt = (year + 1, 1) if month == 12 else (year, month + 1)
        return c.render(request, session, "calendar.html", year=year, month=month,
                        weeks=weeks, prev="%04d-%02d" % prev, next="%04d-%02d" % nxt,
                        flash=flash(request))

    @app.route("/day", methods=["GET"])
    @page()
    async def day(self, request, session):
        c = self.console
        try:
            values = await c.op(request, session, calendarops.day_get,
                                query_args(request).get("d", ""))
        except InvalidValue as e:
            raise Refused(400, str(e))
        return c.render(request, session, "calday.html", day=values, flash=flash(request))

    @app.route("/day", methods=["POST"])
    @page("POST")
    async def day_save(self, request, session):
        c = self.console
        posted = form(request)
        date = posted.get("d", "")
        values = {"date": date, "memo": posted.get("memo", ""), "name": posted.get("name", ""),
                  "holiday": posted.get("holiday") == "1"}
        try:
            await c.op(request, session, calendarops.day_set, date, values["memo"],
                       values["name"], values["holiday"])
        except InvalidValue as e:
            request.setResponseCode(400)
            return c.render(request, session, "calday.html", day=values,
                            errors={"form": str(e)})
        raise Redirect("/admin/calendar/?m=%s&done=saved" % date[:7])
