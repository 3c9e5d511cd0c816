# -*- test-case-name: tests.test_queue_dsn -*-
"""
Bounces (SPEC Q3): an RFC 3464 multipart/report to the original sender,
from MAILER-DAEMON@DOMAIN with an empty envelope sender, holding

1. a human part (UTF-8) with, per recipient, the numbered §36 reason in
   Korean and English (zwms.replies.BOUNCE_*), the failed step, and the
   remote server's own words;
2. a message/delivery-status part (RFC 3464 §2);
3. the original message (message/rfc822), or only its header section
   (text/rfc822-headers) when it is large.

Never a bounce for a bounce: mail with an empty sender or automatic mail
(bounces, notices) gets none, and none at all when AUTOMAILCANCEL is on.
"""

import email.utils
import re
from email import policy
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from io import BytesIO

from zwms import replies

#: Originals larger than this are returned as their header section only.
ATTACH_LIMIT = 256 * 1024

SUBJECT = "반송 메일 Undelivered Mail Returned to Sender"

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")

#: RFC 3463 status for our own reasons (keyed by the §36 step).
_OWN_STATUS = {
    replies.LOG_TIME_OVER: "4.4.7",        # delivery time expired
    replies.LOG_NO_MX: "5.1.2",            # bad destination system
    replies.LOG_LIMITED_DOMAIN: "5.7.1",   # delivery not authorised
    replies.LOG_LOOPS_BACK: "5.4.6",       # routing loop
}


def wants_bounce(sender, auto, settings):
    """
    True when a failure of this message should be reported to its sender:
    not for a null sender or automatic mail (no bounce for a bounce, Q3),
    not while AUTOMAILCANCEL is on.
    """
    if not sender or auto:
        return False
    return not settings["AUTOMAILCANCEL"]


def status_of(rcpt):
    """The RFC 3463 status code (e.g. "5.1.1") for a failed recipient."""
    if rcpt.step in _OWN_STATUS:
        return _OWN_STATUS[rcpt.step]
    code = int(rcpt.code or 0)
    text = rcpt.reply
    if text[:3].isdigit():
        code = code or int(text[:3])
        text = text[4:]
    m = _ENHANCED.match(text)
    if m and (code == 0 or str(code)[0] == m.group(1)):
        return "%s.%s.%s" % m.groups()
    if 400 <= code < 500:
        return "4.0.0"
    return "5.0.0"


def _human(rcpts, domain):
    lines = [
        "이 메일은 %s 메일 서버가 자동으로 보낸 반송 안내입니다." % domain,
        "This is the mail system at %s." % domain,
        "",
        "보내신 메일을 다음 수신자에게 전달하지 못했습니다.",
        "Your message could not be delivered to the following recipients.",
        "",
    ]
    for r in rcpts:
        lines.append("<%s>" % r.addr)
        if r.reason:
            lines.append("    사유 Reason: %s" % r.reason)
        if r.step:
            lines.append("    단계 Step: %s" % r.step)
        if r.remote:
            lines.append("    상대 서버 Remote server: %s" % _field(r.remote))
        if r.reply:
            lines.append("    상대 서버 응답 Remote server said: %s" % _field(r.reply))
        lines.append("")
    lines.append("원본 메일을 첨부합니다. The original message is attached.")
    return "\n".join(lines) + "\n"


def _field(text):
    """A header value on one line (no CR/LF from a remote server's text)."""
    return " ".join(str(text).split())


def _status_part(env, rcpts, domain):
    part = Message()
    part.set_type("message/delivery-status")
    del part["MIME-Version"]
    head = Message()
    head["Reporting-MTA"] = "dns; %s" % domain
    if env.origin:
        head["X-Zwms-Origin"] = _field(env.origin)
    head["Arrival-Date"] = email.utils.formatdate(env.created, localtime=True)
    part.attach(head)
    for r in rcpts:
        block = Message()
        block["Final-Recipient"] = "rfc822; %s" % r.addr
        block["Action"] = "failed"
        block["Status"] = status_of(r)
        if r.remote:
            block["Remote-MTA"] = "dns; %s" % _field(r.remote.split(" ")[0])
        if r.reply:
            block["Diagnostic-Code"] = "smtp; %s" % _field(r.reply)
        elif r.step:
            # ASCII only here (RFC 3464 §2.3.6); the Korean reason is in part 1.
            block["Diagnostic-Code"] = "x-zwms; %s" % _field(r.step)
        if r.done_at:
            block["Last-Attempt-Date"] = email.utils.formatdate(r.done_at, localtime=True)
        part.attach(block)
    return part


def _original_part(original, limit):
    if len(original) <= limit:
        parsed = BytesParser(policy=policy.compat32).parsebytes(original)
        return MIMEMessage(parsed)
    end = original.find(b"\r\n\r\n")
    headers = original if end < 0 else original[:end + 2]
    part = Message()
    part.set_type("text/rfc822-headers")
    part.set_payload(headers.decode("ascii", "surrogateescape"))
    return part


def build_bounce(env, rcpts, original, domain, now, limit=ATTACH_LIMIT):
    """
    The bounce for C{rcpts} (failed L{zwms.queue.spool.Recipient}s) of
    C{env}, as CRLF bytes ready to queue with an empty envelope sender.

    @param original: the queued message bytes.
    @param domain: our domain (MAILER-DAEMON@domain, Reporting-MTA).
    @param now: the time for the Date header.
    """
    msg = MIMEMultipart("report", report_type="delivery-status")
    msg["From"] = "MAILER-DAEMON@%s" % domain
    msg["To"] = env.sender
    msg["Subject"] = Header(SUBJECT, "utf-8").encode()
    msg["Date"] = email.utils.formatdate(now, localtime=True)
    msg["Message-ID"] = email.utils.make_msgid("bounce", domain=domain)
    msg["Auto-Submitted"] = "auto-replied"  # RFC 3834: never answer this
    msg.attach(MIMEText(_human(rcpts, domain), "plain", "utf-8"))
    msg.attach(_status_part(env, rcpts, domain))
    msg.attach(_original_part(original, limit))
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, maxheaderlen=0,
                   policy=policy.compat32.clone(linesep="\r\n")).flatten(msg)
    return out.getvalue()
