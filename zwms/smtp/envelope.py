# -*- test-case-name: tests.test_smtp_delivery -*-
"""
What one SMTP mail transaction is made of, shared by the protocol and the
delivery: envelope paths kept exactly as written (L{Path}), the RCPT user
(L{EnvelopeUser}), the L{Envelope} at DATA, and the Received header
(RFC 5321 §4.4) built from it.
"""

import email.utils
import functools
import ipaddress
from dataclasses import dataclass

from twisted.mail import smtp

from zwms.account import is_address


def plain_address(text):
    """
    An address zWMS accepts in the envelope: a dot-atom L{is_address} with
    no % or ! routing (SPEC X4; RFC 5321 §3.6 relay routes are refused).
    """
    return is_address(text) and "%" not in text and "!" not in text


class Path:
    """
    An envelope address exactly as the client wrote it between < and >.

    Twisted's C{smtp.Address} strips source routes and accepts quoted local
    parts, % and ! routes; zWMS refuses those (SPEC X4), so the raw text is
    kept and checked with L{zwms.account.is_address}.
    """

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text

    def __bytes__(self):
        return self.text.encode("ascii", "backslashreplace")

    def __repr__(self):
        return "Path(%r)" % (self.text,)

    def __eq__(self, other):
        return isinstance(other, Path) and other.text == self.text

    def __hash__(self):
        return hash(self.text)


class EnvelopeUser(smtp.User):
    """
    A C{smtp.User} (what C{validateTo} receives) whose C{dest} is a L{Path}
    that has not been parsed yet: the delivery decides what is valid.
    """

    def __init__(self, dest, helo, protocol, orig):
        self.dest = dest
        self.helo = helo
        self.protocol = protocol
        self.orig = orig


@dataclass(frozen=True)
class Envelope:
    """What the protocol knows when DATA starts."""
    peer_ip: str
    helo: str
    with_name: str  # RFC 3848: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA
    sender: str  # "" for the null path <>
    recipients: tuple  # of Recipient, in RCPT order
    #: The receive policy's L{zwms.policy.facts.Mail} with the marks the
    #: MAIL FROM stage left for the DATA stage (None: no policy ran yet).
    mail: object = None


def ip_literal(ip):
    """The bracketed address literal of RFC 5321 §4.1.3 for a peer IP."""
    try:
        if ipaddress.ip_address(ip).version == 6:
            return "[IPv6:%s]" % (ip,)
    except ValueError:
        pass
    return "[%s]" % (ip,)


@functools.lru_cache(maxsize=8)
def _date(second):
    """The header date of one second (formatted once, not per message)."""
    return email.utils.formatdate(second, localtime=True)


def received_header(envelope, domain, message_id, when):
    """
    The Received header (RFC 5321 §4.4) as CRLF-terminated bytes.  "for"
    names the recipient only when there is one, so that Bcc recipients are
    never shown to each other.
    """
    lines = ["Received: from %s (%s)" % (envelope.helo or "unknown",
                                         ip_literal(envelope.peer_ip)),
             "\tby %s with %s id %s" % (domain, envelope.with_name, message_id)]
    date = _date(int(when))
    if len(envelope.recipients) == 1 and getattr(envelope.recipients[0], "mailing", None) is None:
        # (A list's copies do not show the list name to their recipients.)
        lines.append("\tfor <%s>; %s" % (envelope.recipients[0].address, date))
    else:
        lines[-1] += ";"
        lines.append("\t%s" % (date,))
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")
