# -*- test-case-name: tests.test_smtp_delivery -*-
"""
Local delivery behind the SMTP server (SPEC S2, S3; seed §36).

L{LocalDelivery} implements Twisted's C{smtp.IMessageDelivery} over the
service layer only (DESIGN rule 1): the directory says where an address
goes, the account store says whether that account may receive, and the mail
store writes the message durably.  Every refusal is raised as a
L{zwms.errors.Reply} carrying its exact §36 reply and log line; the protocol
answers with it and writes the log line (the catcher logs, once).

One L{Message} is made per mail transaction (not per recipient as in
Twisted's own server): it stores the bytes once for every local account of
every accepted recipient, deduplicated, in a single C{mail.deliver} call, and
its C{eomReceived} fires only when the store says the files are on disk.
"""

import email.utils
import ipaddress
import os
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.mail import smtp
from twisted.python import failure as tfailure
from zope.interface import implementer

from zwms import logs, replies
from zwms.account import Delivery, is_address
from zwms.errors import Reply

#: More Received headers than this and the mail is looping (RFC 5321 §6.3).
MAX_HOPS = 50

#: Our own refusal when the hop count is exceeded (§36 has none).
TOO_MANY_HOPS = (554, "Error. Too many hops. Mail loop detected")


def new_message_id():
    """A fresh id for the Received header (and the log lines of one mail)."""
    return os.urandom(8).hex().upper()


def plain_address(text):
    """
    An address zWMS accepts in the envelope: a dot-atom L{is_address} with
    no % or ! routing (SPEC X4; RFC 5321 §3.6 relay routes are refused).
    """
    return is_address(text) and "%" not in text and "!" not in text


def reply(pair, log=None, detail=None, channel=logs.MAILSERVER):
    """
    A L{Reply} from a C{(code, text)} pair of L{zwms.replies}, with the §36
    log line (and an optional detail, such as the address, after it).
    """
    code, text = pair
    if log is not None and detail:
        log = "%s %s" % (log, detail)
    return Reply(code, text, log=log, channel=channel)


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
class Recipient:
    """
    An accepted RCPT: the address as given, the local accounts it reaches
    (already checked) and the outside addresses it points to (relayed by a
    later issue; see L{LocalDelivery.validateTo}).
    """
    address: str
    accounts: tuple
    addresses: tuple = ()
    delivery: object = field(default=None, compare=False, repr=False)

    def __call__(self):
        """
        The C{IMessageDelivery.validateTo} contract: a callable returning
        an C{IMessage} for this recipient alone.
        """
        envelope = Envelope(peer_ip="", helo="", with_name="ESMTP", sender="",
                            recipients=(self,))
        return self.delivery.message(envelope)


@dataclass(frozen=True)
class Envelope:
    """What the protocol knows when DATA starts."""
    peer_ip: str
    helo: str
    with_name: str  # RFC 3848: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA
    sender: str  # "" for the null path <>
    recipients: tuple  # of Recipient, in RCPT order


def ip_literal(ip):
    """The bracketed address literal of RFC 5321 §4.1.3 for a peer IP."""
    try:
        if ipaddress.ip_address(ip).version == 6:
            return "[IPv6:%s]" % (ip,)
    except ValueError:
        pass
    return "[%s]" % (ip,)


def received_header(envelope, domain, message_id, when):
    """
    The Received header (RFC 5321 §4.4) as CRLF-terminated bytes.  "for"
    names the recipient only when there is one, so that Bcc recipients are
    never shown to each other.
    """
    lines = ["Received: from %s (%s)" % (envelope.helo or "unknown",
                                         ip_literal(envelope.peer_ip)),
             "\tby %s with %s id %s" % (domain, envelope.with_name, message_id)]
    date = email.utils.formatdate(when, localtime=True)
    if len(envelope.recipients) == 1:
        lines.append("\tfor <%s>; %s" % (envelope.recipients[0].address, date))
    else:
        lines[-1] += ";"
        lines.append("\t%s" % (date,))
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


def unique(items):
    """Items in first-seen order, without repeats."""
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


@implementer(smtp.IMessageDelivery)
class LocalDelivery:
    """
    C{IMessageDelivery} over the service layer, one per SMTP session (the
    cred avatar: C{account_id} is the authenticated account or None).
    """

    def __init__(self, services, account_id=None, new_id=None):
        self.services = services
        self.account_id = account_id
        # The authenticated account's sending limits (SPEC S7, seed §16),
        # read again at each MAIL so that a change applies to the next mail.
        self.rcpt_limit = 0
        self.send_size = 0
        # Looked up at call time so that tests can patch new_message_id.
        self._new_id = new_id or (lambda: new_message_id())

    # -- IMessageDelivery ------------------------------------------------

    def receivedHeader(self, helo, origin, recipients):
        """
        C{IMessageDelivery.receivedHeader}, for callers that use Twisted's
        own server loop; zWMS's protocol builds the header in L{Message}.
        """
        name, ip = helo
        envelope = Envelope(
            peer_ip=_text(ip), helo=_text(name), with_name="ESMTP", sender=str(origin),
            recipients=tuple(Recipient(str(r), ()) for r in recipients))
        return received_header(envelope, self.domain(), self._new_id(),
                               self.services.clock.seconds()).rstrip(b"\r\n")

    def validateFrom(self, helo, origin):
        """
        Accept the null path <> and any plain address; refuse quotes,
        routes, % and ! with 553 (SPEC X4).  An authenticated session also
        reads its account's sending limits here.
        """
        text = str(origin)
        if text and not plain_address(text):
            raise reply(replies.INVALID_EMAIL, replies.LOG_INVALID_EMAIL, "<%s>" % text)
        if self.account_id is None:
            return origin
        d = defer.maybeDeferred(self.services.accounts.get, self.account_id)
        d.addCallback(self._sender_account, origin)
        return d

    def _sender_account(self, account, origin):
        detail = "<%s>" % (self.account_id,)
        if account is None:
            # Deleted since AUTH.
            raise reply(replies.ACCOUNT_UNREADABLE, replies.LOG_AUTH_UNKNOWN_USER, detail)
        if account.locked:
            raise reply(replies.ACCOUNT_LOCKED, replies.LOG_AUTH_LOCKED_USER, detail)
        self.rcpt_limit = account.rcptlimit
        self.send_size = account.sendsize
        return origin

    @defer.inlineCallbacks
    def validateTo(self, user):
        """
        Decide one RCPT (SPEC S2, seed §36 [수신] 3 and 4).

        @return: a Deferred firing with a L{Recipient}, or failing with a
            L{Reply} whose log line the protocol writes.
        """
        text = str(user.dest)
        peer = _peer_of(user)
        if not text:
            raise reply(replies.EMAIL_REQUIRED, replies.LOG_EMAIL_EMPTY)
        if not plain_address(text):
            raise reply(replies.INVALID_EMAIL, replies.LOG_INVALID_EMAIL, "<%s>" % text)
        detail = "<%s>" % text
        self.services.logs.write(logs.MAILSERVER, "%s %s" % (replies.LOG_RCPT_TO, detail),
                                 peer=peer)
        resolution = yield defer.maybeDeferred(self.services.directory.resolve, text)
        if resolution.kind == "unknown":
            raise reply(replies.USER_NOT_FOUND, replies.LOG_USER_NOT_FOUND, detail)
        if resolution.kind != "local":
            # "foreign" domains and aliases pointing only outside: relaying
            # (SPEC S6) is decided by a later issue; until then, refused.
            raise reply(replies.RELAY_REFUSED, replies.LOG_RELAY_REFUSED, detail)
        targets = unique(resolution.accounts)
        if not targets:
            raise reply(replies.USER_NOT_FOUND, replies.LOG_RECEIVER_NOT_DEFINED, detail)
        accepted, refusal = [], None
        for account_id in targets:
            try:
                yield self.check_account(account_id, detail)
            except Reply as e:
                # An alias or .rep reaching several accounts still delivers
                # to those that can receive; the others are logged.
                if refusal is None:
                    refusal = e
                else:
                    self.services.logs.write(e.channel, e.log, peer=peer)
            else:
                accepted.append(account_id)
        if not accepted:
            raise refusal
        if refusal is not None:
            self.services.logs.write(refusal.channel, refusal.log, peer=peer)
        for outside in resolution.addresses:
            # Mixed alias: the local part is delivered; the outside targets
            # wait for the relay issue (SPEC S6) and are logged, not dropped
            # silently.
            self.services.logs.write(
                logs.MAILSERVER, "%s <%s> (alias target of %s)"
                % (replies.LOG_RELAY_REFUSED, outside, detail), peer=peer)
        return Recipient(text, tuple(accepted), tuple(resolution.addresses), delivery=self)

    # -- zWMS -------------------------------------------------------------

    def domain(self):
        """Our name in Received headers: DOMAIN of env.cfg."""
        return self.services.settings["DOMAIN"]

    def max_size(self):
        """
        The largest message in bytes: MAXMAILSIZE KB ("max system work
        size"), or the authenticated account's sendsize when smaller.
        0 means no limit.
        """
        limit = int(self.services.settings["MAXMAILSIZE"]) * 1024
        if self.send_size and (not limit or self.send_size < limit):
            return self.send_size
        return limit

    def recipient_limit(self):
        """Most recipients per message for this sender (0: no own limit)."""
        return self.rcpt_limit

    def message(self, envelope):
        """
        The C{IMessage} for one transaction, to every accepted recipient.
        """
        return Message(self, envelope)

    @defer.inlineCallbacks
    def check_account(self, account_id, detail):
        """
        The receiving checks of one local account, in the order of §36 [수신]
        4; raise the matching L{Reply}.
        """
        services = self.services
        account = yield defer.maybeDeferred(services.accounts.get, account_id)
        if account is None:
            # The alias or .rep names an account deleted in the meantime.
            raise reply(replies.ACCOUNT_UNREADABLE, replies.LOG_UNKNOWN_USER, detail)
        limit = int(services.settings["MAXACCOUNTS"] or 0)
        if limit > 0:
            ids = yield defer.maybeDeferred(services.accounts.list)
            if len(ids) > limit:
                raise reply(replies.ACCOUNT_INACTIVE, replies.LOG_LICENSE_OVER, detail)
        if account.locked:
            raise reply(replies.ACCOUNT_LOCKED, replies.LOG_LOCKED_USER, detail)
        if not account.active:
            raise reply(replies.ACCOUNT_INACTIVE, replies.LOG_INVALID_USER, detail)
        if account.maxmails or account.capacity:
            count, size = yield defer.maybeDeferred(services.mail.usage, account.id)
            if account.maxmails and count >= account.maxmails:
                raise reply(replies.OVER_QTY, replies.LOG_QTY_LIMIT, detail)
            if account.capacity and size >= account.capacity:
                raise reply(replies.OVER_CAPA, replies.LOG_CAPA_LIMIT, detail)


@implementer(smtp.IMessage)
class Message:
    """
    One message on its way to the store.  C{lineReceived} gets the lines
    already dot-unstuffed, without their CRLF; the stored bytes are the
    Return-Path and Received lines followed by those lines joined with CRLF,
    nothing else changed (SPEC §0 "Replies").
    """

    def __init__(self, delivery, envelope):
        self.delivery = delivery
        self.envelope = envelope
        self.max_size = delivery.max_size()
        self.size = 0
        self.hops = 0
        self._in_header = True
        self._lines = []

    def lineReceived(self, line):
        """
        Keep one line; raise a L{Reply} once the message is over the size
        limit or has looped (the protocol then swallows the rest of DATA).
        """
        if self._lines is None:
            return
        self.size += len(line) + 2
        if self.max_size and self.size > self.max_size:
            self._lines = None
            raise reply(replies.OVER_WORK_SIZE, replies.LOG_WORK_LIMIT,
                        "(%s)" % self.describe())
        if self._in_header:
            if not line:
                self._in_header = False
            elif line[:9].lower() == b"received:":
                self.hops += 1
                if self.hops > MAX_HOPS:
                    self._lines = None
                    raise reply(TOO_MANY_HOPS, replies.LOG_LOOPS_BACK,
                                "(%d Received headers, %s)" % (self.hops, self.describe()))
        self._lines.append(line)

    def describe(self):
        """The envelope for a log line: <from> -> <to>, ..."""
        return "<%s> -> %s" % (self.envelope.sender, ", ".join(
            "<%s>" % r.address for r in self.envelope.recipients))

    def data(self, message_id):
        """The bytes to store."""
        services = self.delivery.services
        head = b"Return-Path: <" + self.envelope.sender.encode("ascii") + b">\r\n"
        head += received_header(self.envelope, self.delivery.domain(), message_id,
                                services.clock.seconds())
        body = b"\r\n".join(self._lines)
        if self._lines:
            body += b"\r\n"
        return head + body

    def eomReceived(self):
        """
        Store the message for every local account, once each, in one
        C{mail.deliver}; fire only when it is on disk (SPEC S3).  A storage
        failure is a 451 (DESIGN rule 4), logged to SystemError.
        """
        if self._lines is None:
            return defer.fail(reply(replies.TEMPORARY_FAILURE))
        services = self.delivery.services
        message_id = self.delivery._new_id()
        data = self.data(message_id)
        self._lines = None
        accounts = unique(a for r in self.envelope.recipients for a in r.accounts)
        deliveries = [Delivery(account_id, data) for account_id in accounts]
        peer = self.envelope.peer_ip

        def stored(names):
            for r in self.envelope.recipients:
                services.logs.write(
                    logs.MAILSERVER, "%s <%s> (%s, %d bytes, id %s)"
                    % (replies.LOG_RECEIVE_SUCCESS, r.address, ",".join(r.accounts),
                       len(data), message_id), peer=peer)
            return names

        def failed(f):
            services.logs.write(
                logs.SYSTEMERROR, "Mail store failed (%s, id %s): %s"
                % (self.describe(), message_id, _describe_failure(f)), peer=peer)
            raise reply(replies.TEMPORARY_FAILURE)

        d = defer.maybeDeferred(services.mail.deliver, deliveries)
        d.addCallbacks(stored, failed)
        return d

    def connectionLost(self):
        """The transaction was abandoned: nothing is stored."""
        self._lines = None


def _describe_failure(f):
    if isinstance(f, tfailure.Failure):
        return "%s: %s" % (f.type.__name__, f.getErrorMessage())
    return repr(f)


def _text(value):
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)


def _peer_of(user):
    protocol = getattr(user, "protocol", None)
    ip = getattr(protocol, "peer_ip", None)
    if ip:
        return ip
    try:
        return protocol.transport.getPeer().host
    except AttributeError:
        return None
