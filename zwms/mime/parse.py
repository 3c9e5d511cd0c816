# -*- test-case-name: tests.test_webmail_read -*-
"""
A stored message as the webmail shows it (SPEC W2): decoded headers, the
text and HTML bodies, the attachments (RFC 2231 and RFC 2047 file names,
raw 8-bit Korean names), inline images by Content-ID.

Parts are numbered by their position in C{Message.walk()}, so a part
number in a URL finds the same part again from the same bytes.  Bad MIME
(broken base64, lying charsets, missing boundaries) never raises: what
cannot be decoded shows as replacement characters or raw text.
"""

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

from zwms.mime.charsets import decode_bytes, decode_header, raw_header

#: Largest text part shown (bytes); the rest is in the raw source.
MAX_TEXT = 2 * 1024 * 1024


@dataclass
class Attachment:
    """One downloadable part."""
    index: int
    filename: str
    content_type: str
    size: int
    content_id: str = ""
    inline: bool = False


@dataclass
class Summary:
    """What a folder list shows of a message (headers only)."""
    subject: str = ""
    sender: str = ""
    sender_address: str = ""
    to: str = ""
    cc: str = ""
    date: object = None
    message_id: str = ""
    references: str = ""
    reply_to: str = ""


@dataclass
class Parsed:
    """A whole message: its summary, bodies and attachments."""
    summary: Summary
    text: str = ""
    html: str = ""
    attachments: list = field(default_factory=list)


def _message(data):
    return email.message_from_bytes(bytes(data), policy=email.policy.compat32)


def header_block(data):
    """The header bytes of a message (a list needs no body)."""
    data = bytes(data)
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0:
            return data[:i + len(sep)]
    return data


def addresses(value):
    """[(name, address)] of an address header, names decoded."""
    out = []
    for name, addr in email.utils.getaddresses([raw_header(value)]):
        if name or addr:
            out.append((decode_header(name), addr))
    return out


def format_addresses(value):
    """An address header for people: "이름 <a@b>, c@d"."""
    return ", ".join("%s <%s>" % (n, a) if n and a else (n or a) for n, a in addresses(value))


def _date(value):
    try:
        return email.utils.parsedate_to_datetime(raw_header(value)) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def raw_get(msg, name):
    """
    A header's raw value (8-bit bytes kept as surrogate escapes; C{get}
    would turn them into replacement characters), or None.
    """
    name = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == name:
            return value
    return None


def summary_of(msg):
    """The L{Summary} of a parsed email.message.Message."""
    def get(name):
        return raw_get(msg, name)
    sender = addresses(get("From"))
    name, addr = sender[0] if sender else ("", "")
    return Summary(subject=decode_header(get("Subject")), sender=name or addr,
                   sender_address=addr, to=format_addresses(get("To")),
                   cc=format_addresses(get("Cc")), date=_date(get("Date")),
                   message_id=raw_header(get("Message-ID")).strip(),
                   references=raw_header(get("References")).strip(),
                   reply_to=format_addresses(get("Reply-To")))


def summary(data):
    """The L{Summary} of stored bytes, from the header block only."""
    try:
        return summary_of(BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            header_block(data)))
    except Exception:
        return Summary(subject="?")


def filename_of(part):
    """
    A part's file name: Content-Disposition filename (RFC 2231, any
    charset label), else Content-Type name; RFC 2047 inside the quotes
    (non-standard, common) and raw 8-bit names decoded too.
    """
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        try:
            value = part.get_param(param, header=header)
        except Exception:
            value = None
        if value is None:
            continue
        if isinstance(value, str) and "\ufffd" in value:
            # Raw 8-bit name (browsers' uploads, some mailers): from the raw header.
            m = re.search(r'(?:^|;)\s*%s\s*=\s*"([^"]*)"' % param,
                          raw_header(raw_get(part, header)) or "", re.I)
            if m:
                value = m.group(1)
        if isinstance(value, tuple):
            # RFC 2231: the email package unquoted the octets as latin-1.
            charset, _lang, text = value
            text = decode_bytes(text.encode("latin-1", "replace"), charset or "utf-8")
        else:
            text = email.utils.unquote(value) if isinstance(value, str) else str(value)
            text = decode_header(text)
        text = re.sub(r"[\x00-\x1f\x7f/\\]", "_", text).strip()
        if text:
            return text[:200]
    return ""


def attachment_name(part, index):
    """
    A part's download name: its file name, else an attached message's
    subject + ".eml", else "part-N".
    """
    filename = filename_of(part)
    if not filename and part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        subject = ""
        if isinstance(inner, list) and inner:
            subject = decode_header(raw_get(inner[0], "Subject"))
        filename = re.sub(r"[\x00-\x1f\x7f/\\]", "_", subject)[:100].strip() + ".eml"
        if filename == ".eml":
            filename = "message.eml"
    return filename or "part-%d" % index


def _payload(part):
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        payload = part.get_payload()
        data = payload.encode("ascii", "surrogateescape") if isinstance(payload, str) else b""
    return data


def part_text(part):
    """A text part's body as text, in its charset (never raises)."""
    return decode_bytes(_payload(part)[:MAX_TEXT], part.get_param("charset") and
                        str(part.get_param("charset")))


def walk(msg):
    """
    (index, part, inside an attached message) of every part, numbered as
    C{Message.walk()} numbers them.
    """
    counter = iter(range(1 << 30))

    def go(part, inside):
        yield next(counter), part, inside
        if part.is_multipart():
            attached = inside or part.get_content_type() == "message/rfc822"
            for sub in part.get_payload():
                yield from go(sub, attached)
    return go(msg, False)


def _is_leaf(part):
    return part.get_content_type() == "message/rfc822" or not part.is_multipart()


def parse(data):
    """The whole message as a L{Parsed}."""
    msg = _message(data)
    result = Parsed(summary_of(msg))
    texts, htmls = [], []
    for index, part, inside in walk(msg):
        if inside or not _is_leaf(part):
            continue
        ctype = part.get_content_type()
        disposition = (raw_header(part.get("Content-Disposition")).split(";")[0]
                       .strip().lower())
        filename = filename_of(part)
        cid = raw_header(part.get("Content-ID")).strip().strip("<>")
        is_body = (ctype in ("text/plain", "text/html") and disposition != "attachment"
                   and not filename)
        if is_body:
            (texts if ctype == "text/plain" else htmls).append(part_text(part))
            continue
        filename = attachment_name(part, index)
        size = len(_rfc822_bytes(part)) if ctype == "message/rfc822" else len(_payload(part))
        result.attachments.append(Attachment(
            index, filename, ctype, size, cid,
            inline=bool(cid) and ctype.startswith("image/")))
    result.text = "\n\n".join(texts)
    result.html = "\n".join(htmls)
    return result


def part_of(data, index):
    """
    (content type, file name, bytes) of part C{index}.

    @raise KeyError: no such leaf part.
    """
    msg = _message(data)
    for i, part, _inside in walk(msg):
        if i == index and _is_leaf(part):
            if part.get_content_type() == "message/rfc822":
                return "message/rfc822", attachment_name(part, i), _rfc822_bytes(part)
            return part.get_content_type(), attachment_name(part, i), _payload(part)
    raise KeyError(index)


def _rfc822_bytes(part):
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        try:
            return payload[0].as_bytes()
        except Exception:
            return bytes(payload[0])
    return _payload(part)


def cid_map(parsed):
    """{content id: part index} of a parsed message's parts."""
    return {a.content_id: a.index for a in parsed.attachments if a.content_id}
