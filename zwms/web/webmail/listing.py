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
    file read and parse per candidate the first time (about 0.1 ms each
    from the page cache — ~0.5 s at the limit), then the summary cache
    below answers while it holds them.

What one page costs (measured, 50,000-message Inbox, issue 6)
--------------------------------------------------------------
The index query is ~2 ms; what used to dominate was per-row work (header
read and full summary parse of 100 messages, ~15 ms) and a second count
of every folder (~10-16 ms).  So:

  - the header summaries of listed messages are kept in a small LRU cache
    (L{SummaryCache}): a stored message's bytes never change under its
    name, so a summary keyed by (account, folder, name, size) stays true;
    paging back and forth, and the reload after a move or a delete, read
    no file again;
  - a list row needs only From, Subject and Date: L{row_summary} parses
    those and not the address lists of To/Cc/Reply-To (half the work of
    L{zwms.mime.parse.summary});
  - the first HEAD_FIRST bytes of a message are read, and HEAD_BYTES only
    when its header block is longer than that (most are 2-6 KB; reading
    32 KB of each of 100 large messages was 3 MB a page);
  - the folder counts are not asked here: the side bar (L{Webmail.nav})
    asks them once per page.

Page 1 over TCP (source tree, thread runner, loaded 2-core machine):
TTFB median 45 ms before, 30 ms with a cold cache, 22 ms warm.
"""

import collections
import datetime
import email.policy
import email.utils
import threading
import weakref
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

from zwms.errors import NoSuchMessage
from zwms.mime import parse as mimeparse

#: Bytes read of each listed or searched message (the header block).
HEAD_BYTES = 32 * 1024
#: Bytes read first; HEAD_BYTES only when the header block is longer.
HEAD_FIRST = 8 * 1024
#: Header summaries kept in memory per mail store (~0.7 KB each, measured:
#: ~7 MB when full; twice SCAN_LIMIT, so one search is cached whole).
CACHE_SIZE = 10000
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
    """One page: rows of (MessageInfo, Summary) and the total."""
    total: int
    rows: list
    counts: dict = field(default_factory=dict)     # not filled: see the docstring
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


def row_summary(head):
    """
    The L{mimeparse.Summary} of a header block with what a list row and a
    header search use: subject, sender (name and address), date.
    """
    try:
        msg = BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            mimeparse.header_block(head))
        sender = mimeparse.addresses(mimeparse.raw_get(msg, "From"))
        name, addr = sender[0] if sender else ("", "")
        return mimeparse.Summary(
            subject=mimeparse.decode_header(mimeparse.raw_get(msg, "Subject")),
            sender=name or addr, sender_address=addr,
            date=_date(mimeparse.raw_get(msg, "Date")))
    except Exception:
        return mimeparse.Summary(subject="?")


def _date(value):
    try:
        return email.utils.parsedate_to_datetime(mimeparse.raw_header(value)) \
            if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _has_end(head):
    return b"\r\n\r\n" in head or b"\n\n" in head


class SummaryCache:
    """
    Row summaries by (account, folder, name, size), least recently used
    dropped first.  Used from the web's worker threads: one lock.
    """

    def __init__(self, size=CACHE_SIZE):
        self.size = size
        self._items = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value):
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self):
        return len(self._items)


_caches = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_of(mail):
    """The L{SummaryCache} of one mail store (names are unique per store only)."""
    with _caches_lock:
        cache = _caches.get(mail)
        if cache is None:
            cache = _caches[mail] = SummaryCache()
        return cache


def _summary(mail, account_id, folder, info):
    cache = cache_of(mail)
    key = (account_id, folder, info.name, info.size)
    found = cache.get(key)
    if found is not None:
        return found
    try:
        head = mail.head(account_id, folder, info.name, HEAD_FIRST)
        if len(head) >= HEAD_FIRST and not _has_end(head):
            head = mail.head(account_id, folder, info.name, HEAD_BYTES)
    except NoSuchMessage:
        return None
    found = row_summary(head)
    cache.put(key, found)
    return found


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
    if not query.scans:
        total, infos = mail.page(account_id, folder, offset, limit, order=query.order,
                                 descending=query.descending, since=query.since,
                                 until=query.until)
        rows = []
        for info in infos:
            summary = _summary(mail, account_id, folder, info)
            if summary is not None:
                rows.append((info, summary))
        return Listing(total, rows)
    # Candidates from the index (date range applied there), newest first,
    # at most SCAN_LIMIT of them; their headers read and filtered here.
    total, infos = mail.page(account_id, folder, 0, SCAN_LIMIT, since=query.since,
                             until=query.until)
    rows = []
    for info in infos:
        summary = _summary(mail, account_id, folder, info)
        if summary is not None and _matches(summary, query):
            rows.append((info, summary))
    rows.sort(key=_sort_key(query), reverse=query.descending)
    return Listing(len(rows), rows[offset:offset + limit],
                   truncated=total > SCAN_LIMIT, scanned=len(infos))
