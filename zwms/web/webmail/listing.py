# -*- test-case-name: tests.test_webmail_folders -*-
"""
One page of a folder list (SPEC W2): ordered, filtered, with the header
summaries of the listed messages.  Blocking (index queries, file reads):
the pages run these in a thread.

What the index does and what costs header reads
-----------------------------------------------
  - order by date (arrival) or size, and the date range (since/until,
    the arrival time): in the index (SQLite, indexed columns), whatever
    the folder's size; then only the page's messages are read (their
    first HEAD_BYTES bytes).
  - order by sender or subject, and search by sender or subject: these
    are not in the index, so the header block of every candidate message
    is read (HEAD_BYTES at most each; the date range, when given, narrows
    the candidates in the index first).  The scan is bounded to the
    newest SCAN_LIMIT candidates: on a larger folder the page says so
    (C{Listing.truncated}) and the rest is not searched.  Cost: one small
    file read per candidate, on every page of the result (nothing is
    cached), about 0.1 ms each from the page cache — ~0.5 s at the limit.
"""

import datetime
from dataclasses import dataclass, field

from zwms.errors import NoSuchMessage
from zwms.mime import parse as mimeparse

#: Bytes read of each listed or searched message (the header block).
HEAD_BYTES = 32 * 1024
#: Most messages whose headers one search or sender/subject sort reads.
SCAN_LIMIT = 5000
#: Orders offered; the first two come from the index.
ORDERS = ("date", "size", "sender", "subject")
INDEX_ORDERS = ("date", "size")


@dataclass
class Query:
    """What the list shows: order, direction, filters (all optional)."""
    order: str = "date"
    descending: bool = True
    sender: str = ""
    subject: str = ""
    since: object = None    # seconds, inclusive
    until: object = None    # seconds, exclusive

    @property
    def scans(self):
        """True when headers must be read beyond the page (see the module docstring)."""
        return bool(self.sender or self.subject or self.order not in INDEX_ORDERS)


@dataclass
class Listing:
    """One page: rows of (MessageInfo, Summary), the total, and the counts."""
    total: int
    rows: list
    counts: dict
    truncated: bool = False
    scanned: int = 0
    extra: dict = field(default_factory=dict)


def parse_day(text, tz, end=False):
    """
    A YYYY-MM-DD date in the user's zone as seconds (its start, or the
    next day's start when C{end}), or None when empty or not a date.
    """
    text = str(text or "").strip()
    if not text:
        return None
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        return None
    if end:
        day += datetime.timedelta(days=1)
    return datetime.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def _summary(mail, account_id, folder, name):
    try:
        return mimeparse.summary(mail.head(account_id, folder, name, HEAD_BYTES))
    except NoSuchMessage:
        return None


def _matches(summary, query):
    if query.sender:
        needle = query.sender.lower()
        if needle not in (summary.sender or "").lower() and \
                needle not in (summary.sender_address or "").lower():
            return False
    if query.subject and query.subject.lower() not in (summary.subject or "").lower():
        return False
    return True


def _sort_key(query):
    if query.order == "sender":
        return lambda row: ((row[1].sender or row[1].sender_address or "").lower(), row[0].name)
    if query.order == "subject":
        return lambda row: ((row[1].subject or "").lower(), row[0].name)
    if query.order == "size":
        return lambda row: (row[0].size, row[0].name)
    return lambda row: row[0].name


def listing(mail, account_id, folder, query, offset, limit):
    """One page of C{folder} as L{query} asks (blocking: a thread)."""
    counts = mail.counts(account_id)
    if not query.scans:
        total, infos = mail.page(account_id, folder, offset, limit, order=query.order,
                                 descending=query.descending, since=query.since,
                                 until=query.until)
        rows = []
        for info in infos:
            summary = _summary(mail, account_id, folder, info.name)
            if summary is not None:
                rows.append((info, summary))
        return Listing(total, rows, counts)
    # Candidates from the index (date range applied there), newest first,
    # at most SCAN_LIMIT of them; their headers read and filtered here.
    total, infos = mail.page(account_id, folder, 0, SCAN_LIMIT, since=query.since,
                             until=query.until)
    rows = []
    for info in infos:
        summary = _summary(mail, account_id, folder, info.name)
        if summary is not None and _matches(summary, query):
            rows.append((info, summary))
    rows.sort(key=_sort_key(query), reverse=query.descending)
    return Listing(len(rows), rows[offset:offset + limit], counts,
                   truncated=total > SCAN_LIMIT, scanned=len(infos))
