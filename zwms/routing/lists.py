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

Read tracking (personal copies of the bulk-send window, see
L{zwms.routing.status}): L{html_slot} finds the first inline text/html
part of the message once per mailing; L{personal} then splices a 1x1
image with the copy's own token URL before its ``</body>``, in the part's
own transfer encoding (base64, quoted-printable or 7bit/8bit): the part
is encoded once up to the image, and per copy only the image and what
follows it (see L{HtmlSlot}), so 10,000 copies of a large HTML mail cost
little reactor time.  Everything else of the message stays byte for
byte.  A message without an HTML part (plain text) gets no image.

Who may send to a list: an authenticated session, a peer in RELAYIPS
(zwms-sendmail hands mail over loopback), the command-line tools and the
webmail; an anonymous peer on port 25 gets "550 Error. User not found" (the
list is not an address for the outside world).
"""

import base64
import binascii
import email.parser
import email.policy
import os
import re
from dataclasses import dataclass

from zwms.account import is_address
from zwms.errors import InvalidValue
from zwms.home import safe_join
from zwms.queue.spool import to_crlf

#: Most recipients of a (NAME) list (seed §21).
MAX_RECIPIENTS = 10000

LIST_RE = re.compile(r"^\(\s*([A-Za-z0-9][A-Za-z0-9._-]{0,63})\s*\)\Z")

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


def split_lists(text):
    """
    Take the ``(NAME)`` list recipients out of a To/Cc field of the
    webmail ("(team), bob@example.com"), so that the addresses left can be
    checked as addresses.  @return: ([NAME, ...], the rest of the text).
    """
    names, rest = [], []
    for item in re.split(r"[,;\r\n]", str(text or "")):
        name = list_name(item)
        if name is not None:
            names.append(name)
        elif item.strip():
            rest.append(item)
    return names, ",".join(rest)


@dataclass(frozen=True)
class HtmlSlot:
    """
    Where the first inline HTML part's body lies in C{rest} of L{split_head}
    (C{start}:C{end}), and that body cut where the image goes: C{head} is
    encoded once per mailing; per copy only C{carry} + image + C{after}
    (decoded bytes: what follows the insertion point, and for base64 the
    few bytes before it that do not fill a 57-byte line) is encoded, so a
    copy costs about the size of that short piece, not of the whole HTML.
    """
    start: int
    end: int
    encoding: str
    head: bytes
    carry: bytes
    after: bytes
    tail: bytes


#: Charsets in which ASCII bytes are ASCII (an <img> tag can be spliced in).
_NOT_ASCII_SAFE = ("utf-16", "utf-32", "utf16", "utf32", "ucs-2", "ucs2")
#: Multipart nesting followed at most (a seatbelt against hostile mail).
_MAX_DEPTH = 8


def _headers(raw):
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
        raw + b"\r\n\r\n")


def _find_html(head, body, offset, depth):
    """(start, end, headers) of the first inline text/html part, else None."""
    msg = _headers(head)
    ctype = msg.get_content_type()
    disposition = str(msg.get("Content-Disposition", "")).split(";")[0].strip().lower()
    if disposition == "attachment":
        return None
    if ctype == "text/html":
        return offset, offset + len(body), msg
    if not ctype.startswith("multipart/") or depth >= _MAX_DEPTH:
        return None
    boundary = msg.get_param("boundary")
    if not boundary:
        return None
    delim = b"--" + str(boundary).encode("ascii", "replace")
    # Delimiter lines: at the start of the body or after a CRLF (which
    # belongs to the delimiter); each part lies between two of them.
    starts = [m.start() for m in re.finditer(
        rb"(?:^|(?<=\r\n))" + re.escape(delim) + rb"(?:--)?[ \t]*(?=\r\n|$)", body)]
    for a, b in zip(starts, starts[1:]):
        line_end = body.find(b"\r\n", a)
        if line_end < 0 or body[a + len(delim):a + len(delim) + 2] == b"--":
            break
        part_start = line_end + 2
        part_end = b - 2 if b >= part_start + 2 else part_start
        part = body[part_start:part_end]
        split = part.find(b"\r\n\r\n")
        if part.startswith(b"\r\n"):
            p_head, p_body, body_at = b"", part[2:], 2
        elif split >= 0:
            p_head, p_body, body_at = part[:split], part[split + 4:], split + 4
        else:
            continue
        found = _find_html(p_head, p_body, offset + part_start + body_at, depth + 1)
        if found is not None:
            return found
    return None


def html_slot(parts):
    """
    The L{HtmlSlot} of a message cut by L{split_head}, or None when it has
    no inline HTML part that can take an image (plain text, an unknown
    transfer encoding, a UTF-16 body).
    """
    before, after, rest = parts
    if not rest.startswith(b"\r\n") or len(rest) <= 2:
        return None
    try:
        found = _find_html((before + after).rstrip(b"\r\n"), rest[2:], 2, 0)
    except Exception:
        return None  # damaged headers: the copy goes out without an image
    if found is None:
        return None
    start, end, msg = found
    charset = str(msg.get_content_charset() or "us-ascii").lower()
    if charset.startswith(_NOT_ASCII_SAFE):
        return None
    encoding = str(msg.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    raw = rest[start:end]
    stripped = raw.rstrip(b"\r\n")
    tail = raw[len(stripped):]
    try:
        if encoding == "base64":
            html = base64.b64decode(b"".join(stripped.split()), validate=True)
        elif encoding == "quoted-printable":
            html = binascii.a2b_qp(stripped)
        elif encoding in ("7bit", "8bit", "binary"):
            html = stripped
        else:
            return None
    except (binascii.Error, ValueError):
        return None
    # The image goes before the last </body> (else </html>, else the end).
    lower = html.lower()
    at = lower.rfind(b"</body")
    if at < 0:
        at = lower.rfind(b"</html")
    if at < 0:
        at = len(html)
    before_image, after_image = html[:at] + b"\r\n", html[at:]
    carry = b""
    if encoding == "base64":
        # Whole 57-byte groups encode to whole 76-character lines.
        cut = len(before_image) - len(before_image) % 57
        head, carry = _base64(before_image[:cut]), before_image[cut:]
    elif encoding == "quoted-printable":
        head = _qp(before_image)  # ends with a hard line break
    else:
        head = before_image
    return HtmlSlot(start, end, encoding, head, carry, after_image, tail)


def _base64(data):
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _qp(data):
    return re.sub(rb"\r?\n", b"\r\n", binascii.b2a_qp(data, istext=True))


def _with_image(slot, image):
    """The slot's part body with C{image} in place."""
    piece = slot.carry + image + b"\r\n" + slot.after
    if slot.encoding == "base64":
        piece = _base64(piece).rstrip(b"\r\n")
    elif slot.encoding == "quoted-printable":
        piece = _qp(piece).rstrip(b"\r\n")
    return slot.head + piece + slot.tail


def personal(parts, address, slot=None, image=b""):
    """
    The bytes of the copy for C{address} (parts from L{split_head}); with
    an L{HtmlSlot} and C{image} (an <img> tag, ASCII), the image is put in
    the copy's HTML part.
    """
    before, after, rest = parts
    if slot is not None and image:
        rest = rest[:slot.start] + _with_image(slot, image) + rest[slot.end:]
    return before + b"To: <" + address.encode("ascii", "replace") + b">\r\n" + after + rest
