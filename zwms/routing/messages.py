# -*- test-case-name: tests.test_routing -*-
"""
Messages zWMS writes itself: the forwarding notice (SPEC S4, seed §16
"포워딩메일주소": a notice of each received mail) and the welcome message
(SPEC S5, seed §5).

The welcome message is the file data/welcome.txt, UTF-8 text: its first
line is the subject, the following lines (after an optional blank line) the
body.  A missing or blank file means "no welcome message" (SPEC §0: empty
until the administrator writes one, and then nothing is sent).
"""

import email.message
import email.parser
import email.policy
import email.utils
import os

WELCOME_FILE = "welcome.txt"


def _header_fields(data):
    """(From, Subject, Date) of a message's header, decoded, or ""."""
    try:
        end = data.find(b"\r\n\r\n")
        head = data if end < 0 else data[:end + 4]
        msg = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
        return tuple(str(msg.get(name, "") or "") for name in ("From", "Subject", "Date"))
    except Exception:
        return ("", "", "")


def _finish(msg, domain, now):
    msg["Date"] = email.utils.formatdate(now, localtime=True)
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    return msg.as_bytes(policy=email.policy.SMTP)


def build_notice(original, sender, account_address, forward, domain, now):
    """
    The notice sent to a forwarding address when a mail arrives.

    @param original: the received message bytes.
    @param sender: its envelope sender.
    @return: the notice bytes (CRLF), marked Auto-Submitted.
    """
    from_, subject, date = _header_fields(original)
    who = from_ or sender or "MAILER-DAEMON"
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "zWMS <MAILER-DAEMON@%s>" % (domain,)
    msg["To"] = forward
    msg["Subject"] = "[zWMS] new mail from %s" % (" ".join(who.split())[:200],)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("A new mail has arrived for %s.\n\nFrom: %s\nSubject: %s\nDate: %s\n"
                    "Size: %d bytes\n" % (account_address, who, subject or "(none)",
                                          date or "(none)", len(original)))
    return _finish(msg, domain, now)


def welcome_path(home):
    """data/welcome.txt."""
    return os.path.join(home.data, WELCOME_FILE)


def read_welcome(home):
    """(subject, body) of data/welcome.txt, or None when there is none."""
    try:
        with open(welcome_path(home), "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return None
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n")


def build_welcome(home, to_address, domain, sender, now):
    """
    The welcome message for a new account, or None when the administrator
    has written none.
    """
    parts = read_welcome(home)
    if parts is None:
        return None
    subject, body = parts
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = to_address
    msg["Subject"] = subject or "Welcome"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body or "\n")
    return _finish(msg, domain, now)
