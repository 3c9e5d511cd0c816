# -*- test-case-name: tests.test_webmail_compose -*-
"""
Messages the webmail writes (SPEC W2): email.message.EmailMessage with the
SMTP policy (CRLF, RFC 2047 subjects and RFC 2231 file names in UTF-8),
address lists checked, reply and forward texts, and the uploaded form of
the compose page (multipart/form-data with the file names Twisted's own
parser drops).

An HTML message (already sanitised by the caller) goes as
multipart/alternative: text/plain first (L{zwms.mime.htmltext}), then
text/html.  An attached message (forward as attachment) is a
message/rfc822 part holding the original's bytes unchanged (only bare
LF line ends become CRLF, as SMTP needs).
"""

import email
import email.policy
import email.utils
import mimetypes
import re
import secrets
from email.message import EmailMessage, MIMEPart

from zwms.account import is_address
from zwms.errors import InvalidValue
from zwms.mime.parse import addresses, decode_header, filename_of

#: Most recipients one webmail message may name (a seatbelt; the
#: account's rcptlimit applies too).
MAX_RECIPIENTS = 500


def address_list(text):
    """
    The addresses of a To/Cc/Bcc field ("Name <a@b>, c@d; e@f"), checked.

    @raise InvalidValue: naming the bad entry.
    """
    out = []
    text = str(text or "").replace(";", ",").replace("\r", " ").replace("\n", " ")
    for name, addr in email.utils.getaddresses([text]):
        if not name and not addr:
            continue
        if not is_address(addr):
            error = InvalidValue("not an e-mail address: %s" % (addr or name,))
            error.address = addr or name     # for a translated message
            raise error
        out.append(addr)
    if len(out) > MAX_RECIPIENTS:
        raise InvalidValue("too many recipients (most %d)" % MAX_RECIPIENTS)
    return out


def _clean(text):
    return re.sub(r"[\r\n\x00]+", " ", str(text or "")).strip()


def build(sender, sender_name, to, cc, subject, body, attachments=(), domain="localhost",
          in_reply_to="", references="", now=None, bcc=(), html=None):
    """
    A new message as bytes (CRLF).  C{bcc} is written only for a draft
    (kept in Drafts, never sent as is); a sent message has none.

    @param attachments: [(file name, content type or "", bytes)]; a
        "message/rfc822" one is attached as it is (L{attach_message}).
    @param html: a sanitised HTML fragment: the message is then
        multipart/alternative of C{body} (its text) and this.
    """
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr((_clean(sender_name), sender)) if sender_name \
        else sender
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if bcc:
        msg["Bcc"] = ", ".join(bcc)
    msg["Subject"] = _clean(subject)
    msg["Date"] = email.utils.formatdate(now, localtime=False)
    msg["Message-ID"] = "<%s.%s@%s>" % (secrets.token_hex(8), "zwms", domain)
    if in_reply_to:
        msg["In-Reply-To"] = _clean(in_reply_to)
        msg["References"] = _clean(" ".join(x for x in (references, in_reply_to) if x))
    msg["MIME-Version"] = "1.0"
    msg["User-Agent"] = "zWMS webmail"
    msg.set_content(str(body or "").replace("\r\n", "\n"), charset="utf-8", cte="base64"
                    if _long_lines(body) else "8bit")
    if html is not None:
        document = ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n<body>\n'
                    '%s\n</body></html>\n' % html)
        msg.add_alternative(document, subtype="html", charset="utf-8",
                            cte="base64" if _long_lines(document) else "8bit")
    spliced = []
    for filename, ctype, data in attachments:
        ctype = ctype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if ctype == "message/rfc822":
            spliced.append(attach_message(msg, bytes(data), filename))
            continue
        if "/" not in ctype or ctype.startswith("multipart/") or ctype.startswith("message/"):
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        if maintype == "text":
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(bytes(data), maintype=maintype, subtype=subtype.split(";")[0],
                           filename=_clean(filename) or "attachment")
    out = msg.as_bytes()
    for token, data in spliced:
        if token:
            out = out.replace(token, data, 1)
    return out


def attach_message(msg, data, filename):
    """
    Add a message/rfc822 part holding C{data} to C{msg}.  The email
    package re-encodes what it writes (and refuses 8-bit text there), so
    the part holds a random token that L{build} replaces with the bytes.
    A message that cannot travel as 7bit/8bit text (lines over 998 bytes,
    NUL bytes) goes as application/octet-stream in base64 instead: the same
    bytes, under the same name.

    @return: (token, bytes) for the splice.
    """
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    name = _clean(filename) or "message.eml"
    if b"\x00" in data or any(len(line) > 998 for line in data.split(b"\r\n")):
        msg.add_attachment(data, maintype="application", subtype="octet-stream",
                           filename=name)
        return None, None
    token = ("zwms-rfc822-%s" % secrets.token_hex(16))
    part = MIMEPart(policy=email.policy.SMTP)
    part["Content-Type"] = "message/rfc822"
    part.add_header("Content-Disposition", "attachment", filename=name)
    part["Content-Transfer-Encoding"] = "8bit" if re.search(rb"[\x80-\xff]", data) \
        else "7bit"
    part.set_payload(token)
    if msg.get_content_type() != "multipart/mixed":
        msg.make_mixed()
    if not (msg.get_boundary() or "").startswith("zwms-"):
        # A secret boundary: the attached bytes cannot be made to contain it.
        msg.set_boundary("zwms-" + secrets.token_hex(16))
    msg.attach(part)
    # The part's body is the token alone; the CRLF after it belongs to the
    # boundary, so the message keeps its own last line end.
    return token.encode("ascii"), data


def eml_filename(subject):
    """The file name of a forwarded message: its subject (cleaned) + ".eml"."""
    name = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]', "_", str(subject or "")).strip(" .")[:100]
    return (name or "message") + ".eml"


def _long_lines(text):
    return any(len(line.encode("utf-8")) > 900 for line in str(text or "").splitlines())


def reply_subject(subject, prefix="Re"):
    """"Re: subject" (no "Re: Re:")."""
    subject = subject or ""
    if re.match(r"^\s*%s\s*:" % prefix, subject, re.I):
        return subject
    return "%s: %s" % (prefix, subject)


def quote(text, who, when):
    """The quoted original under a reply."""
    lines = str(text or "").splitlines()
    head = "%s, %s:" % (when, who) if when else "%s:" % who
    return "\n\n" + head + "\n" + "\n".join("> " + line for line in lines)


def parse_upload(body, content_type):
    """
    A multipart/form-data body as (fields {name: text}, files [(field,
    file name, content type, bytes)]).  Blocking on big bodies: run it in
    a thread.

    @raise InvalidValue: not a multipart form, or a field not UTF-8.
    """
    head = b"MIME-Version: 1.0\r\nContent-Type: " + bytes(content_type) + b"\r\n\r\n"
    msg = email.message_from_bytes(head + bytes(body), policy=email.policy.compat32)
    if not msg.is_multipart():
        raise InvalidValue("the form was not sent as multipart/form-data")
    fields, files = {}, []
    for part in msg.get_payload():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        name = decode_header(name if isinstance(name, str) else str(name))
        data = part.get_payload(decode=True) or b""
        has_file = part.get_param("filename", header="content-disposition") is not None
        if has_file:
            filename = filename_of(part)
            if filename or data:
                files.append((name, filename or "attachment", part.get_content_type(), data))
            continue
        try:
            fields.setdefault(name, data.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidValue("the form was not sent as UTF-8")
    return fields, files


def header_addresses(data, *names):
    """The addresses (lower case, in order, once each) of some header fields."""
    from email.parser import BytesHeaderParser
    from zwms.mime.parse import header_block, raw_get
    msg = BytesHeaderParser(policy=email.policy.compat32).parsebytes(header_block(data))
    out = []
    for name in names:
        for _, addr in addresses(raw_get(msg, name)):
            addr = addr.strip().lower()
            if addr and addr not in out:
                out.append(addr)
    return out


def header_value(data, name):
    """One header's value as text (RFC 2047 decoded, folding removed), "" when absent."""
    from email.parser import BytesHeaderParser
    from zwms.mime.parse import header_block, raw_get
    msg = BytesHeaderParser(policy=email.policy.compat32).parsebytes(header_block(data))
    return " ".join(decode_header(raw_get(msg, name) or "").split())


def sender_of(summary):
    """The address a reply goes to: Reply-To, else From."""
    if summary.reply_to:
        found = addresses(summary.reply_to)
        if found:
            return found[0][1]
    return summary.sender_address
