# -*- test-case-name: tests.test_web_admin2_calendar -*-
"""Admin calendar operations (seed §29) over L{zwms.store.calendar}; blocking."""

import calendar as pycalendar

from zwms.store.calendar import (AdminCalendar, check_date, check_memo, check_special_name,
                                 link_parts)


def month_view(ctx, year, month):
    """
    The weeks of a month for the page: [[(day or 0, memo parts, name,
    holiday)]], Sunday first.
    """
    cal = AdminCalendar(ctx.home)
    days = cal.month(year, month)
    weeks = []
    for week in pycalendar.Calendar(firstweekday=6).monthdayscalendar(year, month):
        row = []
        for day in week:
            memo, name, holiday = days.get(day, ("", "", False)) if day else ("", "", False)
            row.append((day, link_parts(memo), name, holiday))
        weeks.append(row)
    return weeks


def day_get(ctx, date):
    cal = AdminCalendar(ctx.home)
    name, holiday = cal.special(date)
    return {"date": check_date(date), "memo": cal.memo(date), "name": name,
            "holiday": holiday}


def day_set(ctx, date, memo, name, holiday):
    """Write a date's memo and anniversary (§29).  @raise InvalidValue"""
    cal = AdminCalendar(ctx.home)
    date = check_date(date)
    check_memo(memo)  # both checked first: a bad value writes nothing
    check_special_name(name)
    cal.set_special(date, name, holiday)
    cal.set_memo(date, memo)
    ctx.log("calendar %s: memo %d characters%s" % (
        date, len(memo.strip()), (", %s%s" % (name.strip(), " (holiday)" if holiday else ""))
        if name.strip() else ""))
