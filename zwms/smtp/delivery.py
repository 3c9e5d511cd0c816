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

import os
from dataclasses import dataclass, field, replace

from twisted.internet import defer
from twisted.mail import smtp
from twisted.python import failure as tfailure
from zope.interface import implementer

from zwms import logs, replies
from zwms.errors import Reply
from zwms.policy.facts import Mail as PolicyMail
from zwms.routing import lists as mlists
from zwms.routing.router import Mailing, Router, Target
from zwms.smtp import texts
from zwms.smtp.envelope import (  # noqa: F401 - re-exported for callers and tests
    Envelope, EnvelopeUser, Path, ip_literal, plain_address, received_header)
from zwms.smtp.refusals import bounce_refused
from zwms.smtp.relay import RelayRules

#: More Received headers than this and the mail is looping (RFC 5321 §6.3).
MAX_HOPS = 50

#: Our own refusal when the hop count is exceeded (§36 has none).
TOO_MANY_HOPS = (554, "Error. Too many hops. Mail loop detected")


def new_message_id():
    """A fresh id for the Received header (and the log lines of one mail)."""
    return os.urandom(8).hex().upper()


def reply(pair, log=None, detail=None, channel=logs.MAILSERVER):
    """
    A L{Reply} from a C{(code, text)} pair of L{zwms.replies}, with the §36
    log line (and an optional detail, such as the address, after it).
    """
    code, text = pair
    if log is not None and detail:
        log = "%s %s" % (log, detail)
    return Reply(code, text, log=log, channel=channel)


@dataclass(frozen=True)
class Recipient:
    """
    An accepted RCPT: the address as given, the local accounts it reaches
    (already checked), the outside addresses it points to (queued), whether
    it is a relayed outside address (S6), and its mailing list (§21), if
    any.
    """
    address: str
    accounts: tuple
    addresses: tuple = ()
    delivery: object = field(default=None, compare=False, repr=False)
    relayed: bool = False
    mailing: object = None

    def __call__(self):
        """
        The C{IMessageDelivery.validateTo} contract: a callable returning
        an C{IMessage} for this recipient alone.
        """
        envelope = Envelope(peer_ip="", helo="", with_name="ESMTP", sender="",
                            recipients=(self,))
        return self.delivery.message(envelope)


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

    The stages of one mail transaction, each a method returning a Deferred,
    so that the receive policy (zwms/policy) can add its checks at its
    place: L{on_mail_from} (MAIL FROM), L{validateTo} (each RCPT),
    L{on_data} (after DATA, the whole message known), then L{route} (the
    routing service stores and queues it).

    The receive policy (SPEC P2–P7, C{services.policy}, a
    L{zwms.policy.chain.ReceivePolicy}; None: no checks) decides; this
    class only carries its verdicts out: it writes their log lines, raises
    their refusals as L{Reply}s and stores each account's copy where the
    decision says (L{zwms.policy.verdict.Decision}).
    """

    def __init__(self, services, account_id=None, new_id=None):
        self.services = services
        self.account_id = account_id
        self.policy = getattr(services, "policy", None)
        self.helo_name = ""
        self.relay = RelayRules(services)
        self.router = getattr(services, "router", None) or Router(services)
        self._reset_sender()
        # Looked up at call time so that tests can patch new_message_id.
        self._new_id = new_id or (lambda: new_message_id())

    def _reset_sender(self):
        # The sending account's limits (SPEC S7, seed §16), read again at
        # each MAIL so that a change applies to the next mail.
        self.sender_account = None
        self.rcpt_limit = 0
        self.send_size = 0
        self.day_count = 0
        self.day_size = 0
        self.day_used = 0
        self._grant = None
        self._policy_mail = None

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
        routes, % and ! with 553 (SPEC X4).  Then the MAIL FROM stage
        (L{on_mail_from}).
        """
        text = str(origin)
        if text and not plain_address(text):
            raise reply(replies.INVALID_EMAIL, replies.LOG_INVALID_EMAIL, "<%s>" % text)
        self._reset_sender()
        peer = _text(helo[1]) if helo else ""
        self.helo_name = _text(helo[0]) if helo else ""
        return self.on_mail_from(peer, origin)

    @defer.inlineCallbacks
    def on_mail_from(self, peer, origin):
        """
        The MAIL FROM stage: find the sending account (SMTP AUTH, else a
        recent POP3 login from this IP with relay IP auth) and apply its
        sending limits (seed §16): the daily count and size are checked
        here, the message size and recipient count by the protocol.  Then
        the receive policy's MAIL stage (P2 bomb, P3 outlaw when
        PREOUTLAW=1; L{policy_mail_from}).

        @return: a Deferred firing with C{origin}, or failing with a Reply.
        """
        services = self.services
        if self.account_id is not None:
            account = yield defer.maybeDeferred(services.accounts.get, self.account_id)
            detail = "<%s>" % (self.account_id,)
            if account is None:
                # Deleted since AUTH.
                raise reply(replies.ACCOUNT_UNREADABLE, replies.LOG_AUTH_UNKNOWN_USER, detail)
            if account.locked:
                raise reply(replies.ACCOUNT_LOCKED, replies.LOG_AUTH_LOCKED_USER, detail)
        else:
            pop = yield self.relay.pop_account(peer)
            account = None
            if pop is not None:
                account = yield defer.maybeDeferred(services.accounts.get, pop)
        if account is None:
            yield self.policy_mail_from(peer, origin)
            return origin
        self.sender_account = account.id
        self.rcpt_limit = account.rcptlimit
        self.send_size = account.sendsize
        self.day_count = account.daycount
        self.day_size = account.daysize
        if self.day_count or self.day_size:
            count, size = yield self.router.threads(self.router.counter.get, account.id)
            self.day_used = size
            detail = "%s (%s: %d mails, %d bytes today)" % (
                texts.LOG_DAY_LIMIT, account.id, count, size)
            if self.day_count and count >= self.day_count:
                raise Reply(*texts.DAY_COUNT_OVER, log=detail)
            if self.day_size and size >= self.day_size:
                raise Reply(*texts.DAY_SIZE_OVER, log=detail)
        yield self.policy_mail_from(peer, origin)
        return origin

    @defer.inlineCallbacks
    def policy_mail_from(self, peer, origin):
        """
        The receive policy at MAIL FROM: write its lines, raise its refusal
        as a L{Reply} (a 421 closes the session), keep its marks for DATA.

        The sending account found above (SMTP AUTH, or POP-before-SMTP with
        relay IP auth) makes the mail "authenticated": our own users skip
        the bad-mail checks P2–P5 like RELAYIPS peers (seed §4, §32).
        """
        if self.policy is None:
            return
        mail = PolicyMail(peer_ip=peer or "", helo=self.helo_name, sender=str(origin),
                          authenticated=self.sender_account is not None)
        verdict = yield self.policy.mail_from(mail)
        self.write_lines(verdict.log_lines(), peer)
        if verdict.refused:
            raise Reply(verdict.code, verdict.text)
        self._policy_mail = mail.marked(verdict.marks)

    def write_lines(self, lines, peer):
        """Write a verdict's (channel, text) lines, with the peer IP."""
        for channel, text in lines:
            self.services.logs.write(channel, text, peer=peer or None)

    def lists_allowed(self, peer):
        """
        Mailing lists are for our own users: an authenticated session or a
        peer in RELAYIPS (zwms-sendmail over loopback).
        """
        return self.account_id is not None or self.relay.trusted_ip(peer)

    @defer.inlineCallbacks
    def relay_grant(self, peer):
        """The session's L{zwms.smtp.relay.RelayGrant}, or None (cached per MAIL)."""
        if self._grant is None:
            grant = yield self.relay.decide(peer, self.account_id)
            self._grant = grant or False
        return self._grant or None

    @defer.inlineCallbacks
    def validateTo(self, user):
        """
        Decide one RCPT (SPEC S2, S6; seed §36 [수신] 1, 3 and 4).

        @return: a Deferred firing with a L{Recipient}, or failing with a
            L{Reply} whose log line the protocol writes.
        """
        text = str(user.dest)
        peer = _peer_of(user)
        if not text:
            raise reply(replies.EMAIL_REQUIRED, replies.LOG_EMAIL_EMPTY)
        name = mlists.list_name(text)
        if name is not None:
            recipient = yield self._list_recipient(text, name, peer)
            return recipient
        if not plain_address(text):
            raise reply(replies.INVALID_EMAIL, replies.LOG_INVALID_EMAIL, "<%s>" % text)
        detail = "<%s>" % text
        self.services.logs.write(logs.MAILSERVER, "%s %s" % (replies.LOG_RCPT_TO, detail),
                                 peer=peer)
        resolution = yield defer.maybeDeferred(self.services.directory.resolve, text)
        queue = self.router.can_send_out()
        if resolution.kind == "foreign":
            grant = yield self.relay_grant(peer)
            if grant is None or not queue:
                raise reply(replies.RELAY_REFUSED, replies.LOG_RELAY_REFUSED, detail)
            return Recipient(text, (), (text,), delivery=self, relayed=True)
        if resolution.kind == "unknown":
            path = mlists.plain_list_path(self.services.home, text)
            if path and queue and self.lists_allowed(peer):
                return Recipient(text, (), (), delivery=self,
                                 mailing=Mailing("plain", text.lower(), path))
            raise reply(replies.USER_NOT_FOUND, replies.LOG_USER_NOT_FOUND, detail)
        if resolution.kind == "remote":
            # An alias or .rep of ours pointing only outside: the
            # administrator set it up, so it is forwarding, not relaying.
            if not queue:
                raise reply(replies.RELAY_REFUSED, replies.LOG_RELAY_REFUSED, detail)
            return Recipient(text, (), tuple(resolution.addresses), delivery=self)
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
        outside = tuple(resolution.addresses)
        if outside and not queue:
            for addr in outside:
                self.services.logs.write(
                    logs.MAILSERVER, "%s <%s> (alias target of %s)"
                    % (replies.LOG_RELAY_REFUSED, addr, detail), peer=peer)
            outside = ()
        return Recipient(text, tuple(accepted), outside, delivery=self)

    @defer.inlineCallbacks
    def _list_recipient(self, text, name, peer):
        """A (NAME) recipient: our own users only, at most 10,000 addresses."""
        detail = "<%s>" % text
        self.services.logs.write(logs.MAILSERVER, "%s %s" % (replies.LOG_RCPT_TO, detail),
                                 peer=peer)
        if not self.lists_allowed(peer):
            raise reply(replies.USER_NOT_FOUND, replies.LOG_USER_NOT_FOUND, detail)
        if not self.router.can_send_out():
            raise Reply(*texts.LISTS_UNAVAILABLE, log="%s %s" % (texts.LOG_LIST_REFUSED, detail))
        try:
            yield self.router.threads(mlists.read_list, self.services.home, name)
        except mlists.ListError as e:
            raise Reply(e.code, e.text, log="%s %s: %s" % (texts.LOG_LIST_REFUSED, detail, e))
        return Recipient(text, (), (), delivery=self, mailing=Mailing("personal", name))

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
        The C{IMessage} for one transaction, to every accepted recipient
        (the envelope takes the policy's marks of this MAIL FROM).
        """
        if envelope.mail is None and self._policy_mail is not None:
            envelope = replace(envelope, mail=self._policy_mail)
        return Message(self, envelope)

    def on_data(self, message, data):
        """
        The after-DATA stage, the whole message known: the sending
        account's daily byte limit (seed §16), then the receive policy's
        DATA stage (P3 when PREOUTLAW=0, P4, P5, then P6/P7 for each local
        account; remote recipients are not subject to P6/P7).

        @return: a Deferred firing with the policy's
            L{zwms.policy.verdict.Decision} (None without a policy) when the
            message may be routed, or failing with a L{Reply}.
        """
        if self.day_size and self.day_used + len(data) > self.day_size:
            return defer.fail(Reply(*texts.DAY_SIZE_OVER, log="%s (%s: %d + %d bytes > %d)" % (
                texts.LOG_DAY_LIMIT, self.sender_account, self.day_used, len(data),
                self.day_size)))
        if self.policy is None:
            return defer.succeed(None)
        envelope = message.envelope
        mail = envelope.mail
        if mail is None:
            # No MAIL stage ran (Recipient() called directly): no marks.
            mail = PolicyMail(peer_ip=envelope.peer_ip, helo=envelope.helo,
                              sender=envelope.sender,
                              authenticated=self.sender_account is not None)
        account_ids = unique(a for r in envelope.recipients for a in r.accounts)
        d = self.policy.message(mail, data, account_ids)
        d.addCallback(self._carry_out, envelope.peer_ip)
        return d

    def _carry_out(self, decision, peer):
        """Write a Decision's lines; raise its refusal (a 421 closes)."""
        self.write_lines(decision.log_lines(), peer)
        if decision.reply is not None:
            raise Reply(decision.reply.code, decision.reply.text)
        return decision

    def route(self, envelope, data, decision=None):
        """
        Hand the accepted message to the routing service (local copies,
        queue, forwarding, lists, SELFRELAYSAVE); fires once on disk.

        @param decision: the receive policy's L{Decision}: each local
            account gets its copy in the folder it says (bad-flagged for
            delegated mail); accounts it refused or deleted for get
            nothing.  None: every account's Inbox.
        """
        placements = None
        if decision is not None:
            placements = {aid: (folder, bad) for aid, folder, bad in decision.stored()}
        queue = self.router.can_send_out()
        targets = [Target(r.address, r.accounts, r.addresses if queue else (), r.mailing)
                   for r in envelope.recipients]
        leaves = any(r.relayed or r.mailing or r.addresses for r in envelope.recipients)
        account = self.sender_account
        sent_copy = bool(account and leaves and self.services.settings["SELFRELAYSAVE"])
        return self.router.route(
            envelope.sender, targets, data, origin="smtp %s" % (envelope.peer_ip,),
            auth_account=account, sent_copy=sent_copy,
            # Only accounts with a daily limit are counted: no file write per
            # message for everyone else (a limit set today counts from now).
            count=bool(account and (self.day_count or self.day_size)),
            placements=placements)

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
    One message on its way to the store.  C{chunkReceived} gets complete
    lines (CRLF-ended, already dot-unstuffed), as many at once as the
    protocol has; C{lineReceived} one line without its CRLF.  The stored
    bytes are the Return-Path and Received lines followed by those lines,
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
        """Keep one line (without its CRLF); see L{chunkReceived}."""
        self.chunkReceived(line + b"\r\n")

    def chunkReceived(self, chunk):
        """
        Keep complete CRLF-ended lines; raise a L{Reply} once the message is
        over the size limit or has looped (the protocol then swallows the
        rest of DATA).  Only the header lines are looked at one by one (for
        Received:); the body is kept as it comes.
        """
        if self._lines is None:
            return
        self.size += len(chunk)
        if self.max_size and self.size > self.max_size:
            self._lines = None
            raise reply(replies.OVER_WORK_SIZE, replies.LOG_WORK_LIMIT,
                        "(%s)" % self.describe())
        if self._in_header:
            self._header_lines(chunk)
        self._lines.append(chunk)

    def _header_lines(self, chunk):
        pos, size = 0, len(chunk)
        while pos < size:
            end = chunk.find(b"\r\n", pos)
            if end < 0:
                end = size
            if end == pos:
                self._in_header = False
                return
            if chunk[pos:pos + 9].lower() == b"received:":
                self.hops += 1
                if self.hops > MAX_HOPS:
                    self._lines = None
                    raise reply(TOO_MANY_HOPS, replies.LOG_LOOPS_BACK,
                                "(%d Received headers, %s)" % (self.hops, self.describe()))
            pos = end + 2

    def describe(self):
        """The envelope for a log line: <from> -> <to>, ..."""
        return "<%s> -> %s" % (self.envelope.sender, ", ".join(
            "<%s>" % r.address for r in self.envelope.recipients))

    def data(self, message_id):
        """
        The bytes to route: our Received line on top of the received lines
        (the router puts Return-Path on local copies only).
        """
        services = self.delivery.services
        head = received_header(self.envelope, self.delivery.domain(), message_id,
                               services.clock.seconds())
        return b"".join([head] + self._lines)

    def eomReceived(self):
        """
        The after-DATA stage (L{LocalDelivery.on_data}, the receive
        policy), then routing (L{LocalDelivery.route}) as it decided; fire
        only when everything is on disk
        (SPEC S3).  A storage failure is a 451 (DESIGN rule 4), logged to
        SystemError.
        """
        if self._lines is None:
            return defer.fail(reply(replies.TEMPORARY_FAILURE))
        services = self.delivery.services
        message_id = self.delivery._new_id()
        data = self.data(message_id)
        self._lines = None
        peer = self.envelope.peer_ip

        # The stored copies carry a Return-Path line too (Router.route).
        stored_size = len(data) + len("Return-Path: <%s>\r\n" % self.envelope.sender)

        decided = []

        def route(decision):
            decided.append(decision)
            return self.delivery.route(self.envelope, data, decision)

        def routed(result):
            decision = decided[0] if decided else None
            kept = None if decision is None else {aid for aid, _, _ in decision.stored()}
            for r in self.envelope.recipients:
                if r.accounts:
                    accounts = [a for a in r.accounts if kept is None or a in kept]
                    if not accounts:
                        # Refused or deleted by every account's own rules:
                        # the policy's lines said so.
                        continue
                    line = "%s <%s> (%s, %d bytes, id %s)" % (
                        replies.LOG_RECEIVE_SUCCESS, r.address, ",".join(accounts),
                        stored_size, message_id)
                else:
                    line = "%s <%s> (%d bytes, id %s)" % (
                        replies.LOG_RELAY_SUCCESS, r.address, len(data), message_id)
                services.logs.write(logs.MAILSERVER, line, peer=peer)
            # Recipients refused by their own rules while others accepted:
            # a bounce, on disk before the 250 like the accepted copies.
            d = bounce_refused(services, self.envelope, data, decision, message_id)
            return d.addCallback(lambda _: result)

        def failed(f):
            if f.check(Reply):
                return f
            services.logs.write(
                logs.SYSTEMERROR, "Mail store failed (%s, id %s): %s"
                % (self.describe(), message_id, _describe_failure(f)), peer=peer)
            raise reply(replies.TEMPORARY_FAILURE)

        d = self.delivery.on_data(self, data)
        d.addCallback(route)
        d.addCallbacks(routed, failed)
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
