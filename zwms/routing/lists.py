# -*- test-case-name: tests.test_lists -*-
"""
Mailing lists (SPEC Q5, seed §21) and per-recipient message bytes.

Two kinds of list file live in data/:

- ``NAME.list``: used as the recipient ``(NAME)``.  The first line is the
  list's sender address (the envelope sender of every copy, so bounces go
  to it); then one recipient address a line, at most L{MAX_RECIPIENTS}.
  Each copy is addressed to its recipient alone (its To: header is
  rewritten) and the delivery of each copy is tracked for the sending
  account.
- ``NAME@DOMAIN.list``: used as the recipient ``NAME@DOMAIN``; every line
  is a recipient; no limit, no tracking, the message goes out unchanged
  (its To: stays NAME@DOMAIN) with the original envelope sender.

Blank lines and ``#`` comments are skipped; a line that is not a plain
address is an error of the whole list (the sender is told which line), so
that a typo never silently drops a recipient.

Who may send to a list: an authenticated session, a peer in RELAYIPS
(zwms-sendmail hands mail over loopback), the command-line tools and the
webmail; an anonymous peer on port 25 gets "550 Error. User not found" (the
list is not an address for the outside world).
"""

import os
import re

from zwms.account import is_address
from zwms.errors import InvalidValue
from zwms.home import safe_join
from zwms.queue.spool import to_crlf

#: Most recipients of a (NAME) list (seed §21).
MAX_RECIPIENTS = 10000

LIST_RE = re.compile(r"^\(\s*([A-Za-z0-9][A-Za-z0-9._-]{0,63})\s*\)$")

_TO_LINE = re.compile(rb"^to:", re.I)


class ListError(Exception):
    """A list that cannot be used: C{code} and C{text} are the SMTP reply."""

    def __init__(self, code, text):
        Exception.__init__(self, "%d %s" % (code, text))
        self.code = code
        self.text = text


def list_name(text):
    """The NAME of a ``(NAME)`` recipient, or None when it is not one."""
    m = LIST_RE.match(str(text).strip())
    return m.group(1).lower() if m else None


def list_path(home, name):
    """data/NAME.list (NAME checked: no path tricks)."""
    return safe_join(home.data, name + ".list")


def plain_list_path(home, address):
    """data/ADDRESS.list when it exists (a NAME@DOMAIN list), else None."""
    if not is_address(address):
        return None
    try:
        path = safe_join(home.data, address.lower() + ".list")
    except InvalidValue:
        return None
    return path if os.path.isfile(path) else None


def _addresses(path, first, skip_first):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        raise ListError(550, "Error. User not found")
    except OSError as e:
        raise ListError(451, "Error. Mailing list unreadable (%s). Try again" % (e.strerror,))
    out, sender, seen = [], None, set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not is_address(line):
            raise ListError(554, "Error. Mailing list line %d is not an address" % number)
        if skip_first and sender is None:
            sender = line
            continue
        if line.lower() not in seen:
            seen.add(line.lower())
            out.append(line)
        if first is not None and len(out) > first:
            raise ListError(552, "Error. Mailing list over %d recipients" % first)
    return sender, out


def read_list(home, name):
    """
    Read data/NAME.list.

    @return: (sender address, [recipient addresses]).
    @raise ListError: missing, damaged, empty or over 10,000 recipients.
    """
    try:
        path = list_path(home, name)
    except InvalidValue:
        raise ListError(550, "Error. User not found")
    sender, out = _addresses(path, MAX_RECIPIENTS, skip_first=True)
    if sender is None or not out:
        raise ListError(554, "Error. Mailing list has no recipients")
    return sender, out


def read_plain_list(path):
    """The recipients of a NAME@DOMAIN.list file (no limit)."""
    _, out = _addresses(path, None, skip_first=False)
    if not out:
        raise ListError(554, "Error. Mailing list has no recipients")
    return out


def split_head(data):
    """
    Cut a message (any line ends; made CRLF) around its To: field, so that
    L{personal} is three concatenations per copy.

    @return: (header lines before the first To:, header lines after the
        To: field and its folded lines, the blank line and the body).
        Every To: field is dropped; the new one takes the place of the
        first (or ends the header when there was none).
    """
    data = to_crlf(data)
    end = data.find(b"\r\n\r\n")
    if end < 0:
        head, rest = data.rstrip(b"\r\n"), b"\r\n"
    else:
        head, rest = data[:end], data[end + 2:]
    before, after, seen, skipping = [], [], False, False
    for line in head.split(b"\r\n") if head else []:
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = False
        if _TO_LINE.match(line):
            seen = skipping = True
            continue
        (after if seen else before).append(line)
    return (b"".join(line + b"\r\n" for line in before),
            b"".join(line + b"\r\n" for line in after), rest)


def personal(parts, address):
    """The bytes of the copy for C{address} (parts from L{split_head})."""
    before, after, rest = parts
    return before + b"To: <" + address.encode("ascii", "replace") + b">\r\n" + after + rest
