# -*- test-case-name: tests.test_bounces -*-
"""
Return-mail analysis (SPEC W8, Nmail VI): is this message a bounce, who
failed, what did the remote server say, and which category is it.

Two shapes are read:

 - RFC 3464 reports (multipart/report; report-type=delivery-status), ours
   (zwms.queue.dsn, with the numbered §36 reasons) and everyone else's:
   the per-recipient blocks of the message/delivery-status part give the
   recipient, Action, Status, Remote-MTA and Diagnostic-Code; the human
   part adds the explanation.
 - Plain-text bounces (qmail, Exim, Sendmail, Yahoo, Exchange, Korean
   portals): recognised by the sender (MAILER-DAEMON, postmaster, "Mail
   Delivery ...") or the subject, then split into per-recipient blocks at
   each line that holds only an address.

The quoted original message is never searched: a spam word in the mail
that bounced must not decide the category.  Auto-replies (vacation, out of
office) are not bounces.  Everything here is pure: call it from a thread
only because parsing a big message costs time.
"""

import re
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from zwms.bounces import rules

_ADDR = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?" \
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
ADDR_RE = re.compile(_ADDR)
#: A line that is only an address (a recipient block starts there).
_ADDR_LINE = re.compile(r"^\s*(?:(?:to|recipient|받는 ?사람|수신자)\s*:\s*)?<?(%s)>?\s*:?\s*"
                        r"(?:\((?:generated|expanded) from.*\))?\s*$" % _ADDR, re.IGNORECASE)
#: An SMTP reply inside free text: "550 5.1.1 ...", "550-5.7.1 ...", "#550 5.1.1".
_REPLY = re.compile(r"(?<![\d.#])#?([245]\d\d)(?:[ -]#?([245]\.\d{1,3}\.\d{1,3}))?[ \-:]\s*\S")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")

_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery (subsystem|system)|"
                            r"mail ?administrator|microsoftexchange|mailerdaemon|"
                            r"메일 ?전송 ?시스템|메일러 ?데몬", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed|failed)|"
    r"returned mail|failure notice|mail delivery failed|delivery report|could not be delivered|"
    r"returned to sender|non[- ]?delivery|nondeliverable|delivery problem|"
    r"반송|발송 ?실패|전송 ?실패|배달 ?실패|전달 ?실패|리턴 ?메일", re.IGNORECASE)
_AUTO_REPLY_SUBJECT = re.compile(
    r"out of (the )?office|auto(matic)?[- ]?(reply|response|answer)|vacation|away from|"
    r"부재|자동 ?응답|휴가", re.IGNORECASE)
#: Where a plain bounce starts quoting the original: nothing after is read.
_QUOTE_START = re.compile(
    r"^\s*(-+ ?(below this line is a copy of the message|this is a copy of the message|"
    r"original message|returned message|undelivered message|the original message)|"
    r"-+ ?original message headers|original message headers:|"
    r"-+ ?(원본|원래) ?메일|------ ?forwarded message|\[<05>\] here is listed the message)",
    re.IGNORECASE)
#: XMail's first line: "[<00>] XMail bounce: Rcpt=[a@b];Error=[...]".
_XMAIL = re.compile(r"^\[<00>\] XMail bounce: Rcpt=\[([^\]]*)\];Error=\[(.*)\]\s*$",
                    re.MULTILINE)
#: Our own numbered §36 reasons, as the "사유 Reason:" line of zwms.queue.dsn.
_OWN_REASON = re.compile(r"^\s*사유 Reason:\s*(.+)$", re.MULTILINE)


@dataclass
class Failure:
    """One recipient that failed (or is delayed)."""
    recipient: str
    category: str
    status: str = ""          # RFC 3463, e.g. "5.1.1"
    reply: str = ""           # the remote server's words (or our own reason)
    remote_mta: str = ""
    action: str = "failed"    # failed | delayed

    @property
    def advice(self):
        """(Korean title, English title, Korean advice, English advice)."""
        return rules.ADVICE[self.category]


@dataclass
class Analysis:
    """What a bounce says: the failures, the first one's category, advice."""
    failures: list
    kind: str                 # "dsn" or "text"
    reporting_mta: str = ""
    original_subject: str = ""
    original_message_id: str = ""
    original_to: list = field(default_factory=list)
    explanation: str = ""     # the human-readable part, as sent

    @property
    def category(self):
        return self.failures[0].category if self.failures else rules.OTHER

    @property
    def recipients(self):
        return [f.recipient for f in self.failures]

    def advice(self, lang="ko"):
        """(title, advice text) for the main category in C{lang} ("ko" or "en")."""
        ko_title, en_title, ko_text, en_text = rules.ADVICE[self.category]
        return (en_title, en_text) if lang == "en" else (ko_title, ko_text)


def _one_line(text):
    return " ".join(str(text or "").split())


def _text_of(part):
    """A text part's decoded content ("" when it cannot be decoded)."""
    try:
        return part.get_content()
    except (LookupError, UnicodeError, KeyError, AttributeError, AssertionError):
        payload = part.get_payload(decode=True) or b""
        for charset in (part.get_content_charset() or "utf-8", "cp949", "latin-1"):
            try:
                return payload.decode(charset)
            except (LookupError, UnicodeError):
                continue
        return ""


def _human_text(msg):
    """
    The explanation text: text/plain parts (text/html stripped when there is
    no plain one), never inside an attached original message.
    """
    plain, html = [], []

    def walk(part):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "text/rfc822-headers", "message/delivery-status",
                     "message/global", "message/global-headers",
                     "message/global-delivery-status"):
            return
        if part.is_multipart():
            for sub in part.get_payload():
                walk(sub)
        elif ctype == "text/plain":
            plain.append(_text_of(part))
        elif ctype == "text/html":
            html.append(_html_text(_text_of(part)))

    walk(msg)
    text = "\n".join(plain) if plain else "\n".join(html)
    lines = []
    for line in text.splitlines():
        if _QUOTE_START.match(line):
            break
        lines.append(line.rstrip())
    return "\n".join(lines)


def _html_text(html):
    """Rough text of an HTML bounce: block tags end lines, other tags go."""
    import html as htmllib
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    text = re.sub(r"(?i)<\s*(br|/p|p|/div|div|tr|/tr|li|h\d|/h\d)\b[^>]*>", "\n", text)
    text = re.sub(r"<[^>]*>", " ", text)
    return "\n".join(" ".join(line.split()) for line in htmllib.unescape(text).splitlines())


def _original(msg):
    """(subject, message-id, [to]) of the quoted original, if present."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if hasattr(inner, "get"):
                return _heads(inner)
        if ctype in ("text/rfc822-headers", "message/global-headers"):
            raw = part.get_payload(decode=True) or b""
            head = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
            return _heads(head)
    return "", "", []


def _heads(m):
    try:
        subject = _one_line(m.get("Subject", ""))
        to = [a for a in ADDR_RE.findall(str(m.get("To", "")))]
        return subject, _one_line(m.get("Message-ID", "")), to
    except (ValueError, TypeError, IndexError):
        return "", "", []


def _status_blocks(msg):
    """The message/delivery-status part's (per-message, [per-recipient]) fields."""
    for part in msg.walk():
        if part.get_content_type() in ("message/delivery-status",
                                       "message/global-delivery-status"):
            blocks = part.get_payload()
            if isinstance(blocks, list) and blocks:
                return blocks[0], blocks[1:]
            # A report part the parser left as text: split it into blocks.
            raw = _text_of(part) if not isinstance(blocks, list) else ""
            chunks = [c for c in re.split(r"\r?\n\s*\r?\n", raw) if c.strip()]
            parsed = [BytesParser(policy=policy.compat32).parsebytes(
                c.strip().encode("utf-8", "replace") + b"\n\n", headersonly=True)
                for c in chunks]
            if parsed:
                return parsed[0], parsed[1:]
    return None, []


def _value(block, name):
    """A DSN field without its type ("rfc822; a@b" -> "a@b")."""
    value = _one_line(block.get(name, "") or "")
    if ";" in value:
        value = value.split(";", 1)[1].strip()
    return value


def _status_in(text):
    m = _STATUS.search(text or "")
    return "%s.%s.%s" % m.groups() if m else ""


def _from_dsn(msg, human):
    head, blocks = _status_blocks(msg)
    if head is None:
        return None
    own_reasons = _OWN_REASON.findall(human)
    failures = []
    for block in blocks:
        action = _one_line(block.get("Action", "")).lower()
        if action not in ("failed", "delayed"):
            continue
        recipient = _value(block, "Final-Recipient") or _value(block, "Original-Recipient")
        recipient = recipient.strip("<>")
        status = _status_in(block.get("Status", ""))
        diag = _value(block, "Diagnostic-Code")
        reason = _own_reason_for(recipient, human) or (own_reasons[0] if len(blocks) == 1 and
                                                       own_reasons else "")
        section = _section_for(recipient, human)
        texts = [diag, reason, section, human]
        category = rules.classify(texts, status)
        if action == "delayed" and category in (rules.OTHER, rules.UNKNOWN_USER,
                                                rules.BAD_DOMAIN):
            category = rules.TEMPORARY
        failures.append(Failure(recipient=recipient, category=category, status=status,
                                reply=diag or reason or _reply_in(section) or
                                _first_line(section),
                                remote_mta=_value(block, "Remote-MTA"), action=action))
    if not failures:
        return None  # only "delivered"/"relayed"/"expanded": a success notice
    return Analysis(failures=failures, kind="dsn", reporting_mta=_value(head, "Reporting-MTA"),
                    explanation=human)


def _own_reason_for(recipient, human):
    """The '사유 Reason:' line under <recipient> in our own bounce."""
    m = re.search(r"^<%s>\s*\n\s*사유 Reason:\s*(.+)$" % re.escape(recipient), human,
                  re.MULTILINE | re.IGNORECASE)
    return m.group(1).strip() if m else ""


def _section_for(recipient, human):
    """The human text between this recipient's mention and the next blank-line gap."""
    if not recipient:
        return ""
    i = human.lower().find(recipient.lower())
    if i < 0:
        return ""
    start = human.rfind("\n", 0, i) + 1
    return human[start:i + 1500]


def _reply_in(text):
    """The first SMTP reply in C{text}, with its continuation lines, on one line."""
    lines = text.splitlines()
    for n, line in enumerate(lines):
        m = _REPLY.search(line)
        if not m:
            continue
        out = [line[m.start():].lstrip("#")]
        for nxt in lines[n + 1:n + 4]:
            if not nxt.strip() or address_line(nxt):
                break
            if _REPLY.match(nxt.strip()) or nxt[:1].isspace():
                out.append(nxt.strip())
            else:
                break
        reply = _one_line(" ".join(out))
        if reply.endswith(")") and reply.count("(") < reply.count(")"):
            reply = reply[:-1]  # Sendmail's "(reason: 550 ...)"
        return reply[:500]
    return ""


def _first_line(text):
    """The first non-empty line of C{text}, on one line (a reason with no code)."""
    for line in (text or "").splitlines():
        if line.strip():
            return _one_line(line)[:500]
    return ""


def address_line(line):
    """The address when C{line} holds only an address (a block start), else None."""
    m = _ADDR_LINE.match(line)
    return m.group(1) if m else None


def _is_plain_bounce(msg, human):
    subject = str(msg.get("Subject", ""))
    sender = "%s %s" % (msg.get("From", ""), msg.get("Return-Path", ""))
    if _AUTO_REPLY_SUBJECT.search(subject) and not _BOUNCE_SUBJECT.search(subject):
        return False
    by_sender = bool(_BOUNCE_SENDER.search(sender))
    by_subject = bool(_BOUNCE_SUBJECT.search(subject))
    if not (by_sender or by_subject):
        return False
    # Either sign alone is weak (a person may write "반송" in a subject): the
    # text must also say something failed.
    return bool(_REPLY.search(human) or rules.by_text(human) or
                msg.get("X-Failed-Recipients"))


def _from_text(msg, human):
    if not _is_plain_bounce(msg, human):
        return None
    own = {a.lower() for a in ADDR_RE.findall("%s %s" % (msg.get("To", ""),
                                                          msg.get("From", "")))}
    blocks, order, current = {}, [], None
    for line in human.splitlines():
        addr = address_line(line)
        if addr and addr.lower() not in own:
            current = addr.lower()
            if current not in blocks:
                blocks[current] = []
                order.append((current, addr))
            continue
        if current is not None:
            blocks[current].append(line)
    failed = [a.strip() for a in str(msg.get("X-Failed-Recipients", "")).split(",") if a.strip()]
    xmail = _XMAIL.search(human)
    if xmail:
        # XMail names the recipient and the error on its first line; the
        # last SMTP response (if any) follows in the text.
        addr = xmail.group(1).strip()
        if addr.lower() not in blocks:
            blocks[addr.lower()] = []
            order.append((addr.lower(), addr))
        blocks[addr.lower()].insert(0, xmail.group(2))
    for addr in failed:
        if addr.lower() not in blocks:
            blocks[addr.lower()] = []
            order.append((addr.lower(), addr))
    if not order:
        # No address on a line of its own: take the addresses the text names.
        for addr in ADDR_RE.findall(human):
            if addr.lower() not in own and addr.lower() not in blocks:
                blocks[addr.lower()] = []
                order.append((addr.lower(), addr))
                break
    if not order:
        order = [("", "")]
        blocks[""] = []
    temporary = bool(re.search(r"temporary (error|failure|problem)|will (keep|continue) "
                               r"(trying|to try)|delayed|not yet been delivered|"
                               r"재시도|다시 시도합니다", human, re.IGNORECASE))
    failures = []
    for key, addr in order:
        block = "\n".join(blocks[key])
        if not block.strip():
            block = _section_for(addr, human) if addr else human
        reply = _reply_in(block) or _reply_in(human)
        status = _status_in(reply) or _status_in(block)
        category = rules.classify([reply, block, human], status)
        if temporary and category in (rules.OTHER, rules.UNKNOWN_USER) and \
                not status.startswith("5"):
            category = rules.TEMPORARY
        if not reply:
            said = re.search(r"(?:remote host|server) said:\s*(.+)", block, re.IGNORECASE)
            reply = _one_line(said.group(1))[:500] if said else _first_line(block)
        failures.append(Failure(recipient=addr, category=category, status=status,
                                reply=reply, action="delayed" if temporary else "failed"))
    return Analysis(failures=failures, kind="text", explanation=human)


#: Bytes of a message read by the cheap header test (a header block is smaller).
HEAD_LIMIT = 64 * 1024


def looks_like_bounce(message_bytes):
    """
    A cheap test on the header block alone (no body parsing), so that the
    read page runs L{analyse} only on messages that may be bounces: a
    delivery report, X-Failed-Recipients, or a bounce-like sender or
    subject that is not an auto-reply.  False negatives are what matter:
    L{analyse} decides for the rest.
    """
    head = bytes(message_bytes[:HEAD_LIMIT])
    end = min([i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0] or
              [len(head)])
    try:
        msg = BytesParser(policy=policy.default).parsebytes(head[:end] + b"\n\n",
                                                            headersonly=True)
        ctype = msg.get_content_type()
        if ctype == "multipart/report" and str(msg.get_param("report-type", "")).lower() in (
                "delivery-status", ""):
            return True
        if msg.get("X-Failed-Recipients"):
            return True
        subject = str(msg.get("Subject", ""))
        sender = "%s %s" % (msg.get("From", ""), msg.get("Return-Path", ""))
    except (ValueError, TypeError, LookupError, AttributeError, IndexError):
        return False
    if _AUTO_REPLY_SUBJECT.search(subject) and not _BOUNCE_SUBJECT.search(subject):
        return False
    return bool(_BOUNCE_SENDER.search(sender) or _BOUNCE_SUBJECT.search(subject))


def analyse(message_bytes):
    """
    Explain a returned mail.

    @param message_bytes: the whole message as stored.
    @return: an L{Analysis}, or None when the message is not a bounce (normal
        mail, an auto-reply, a delivery-success notice).
    """
    if not message_bytes:
        return None
    msg = BytesParser(policy=policy.default).parsebytes(bytes(message_bytes))
    try:
        human = _human_text(msg)
    except (ValueError, TypeError, LookupError, AttributeError):
        human = ""
    result = None
    if msg.get_content_type() == "multipart/report" and \
            str(msg.get_param("report-type", "")).lower() in ("delivery-status", ""):
        result = _from_dsn(msg, human)
        if result is None and _status_blocks(msg)[0] is not None:
            return None
    if result is None:
        result = _from_text(msg, human)
    if result is None:
        return None
    result.original_subject, result.original_message_id, result.original_to = _original(msg)
    return result
