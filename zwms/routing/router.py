# -*- test-case-name: tests.test_routing -*-
"""
The mail-routing service (DESIGN rule 1): the one place that decides what
happens to an accepted message, used by the SMTP server, zwms-sendmail's
direct mode (through the same rules) and the webmail.

C{Router.route(sender, targets, data, origin, ...)} stores local copies
(C{services.mail.deliver}), queues remote recipients
(C{services.queue.enqueue}), applies forwarding (SPEC S4), SELFRELAYSAVE
(Q6), representative addresses (§22) and mailing lists (§21, through
L{zwms.queue.fanout}).  Its Deferred fires only when everything is on disk:
the SMTP 250 follows it.

Order: the queue entries and fan-out jobs are committed first, then the
local copies in one C{mail.deliver} call.  When a later step fails the
client gets a 451 and sends again, so a partial failure means a repeated
copy, never a lost one (mailboxes and the queue cannot commit together).

Forwarding (one level, never a forward of a forward):
  - copy: the message goes to the account's C{forward} address as well;
    its envelope sender is the account's own address (a "resent" copy: the
    original sender's domain would fail SPF from our IP; bounces of the
    copy come back to the account).  A local forward address gets the copy
    in its mailbox.
  - notice: a short auto-generated notice (From MAILER-DAEMON@DOMAIN,
    "[zWMS] new mail from ...", empty envelope sender so that it never
    bounces back) goes to the forward address.  AUTOMAILCANCEL stops
    notices; mail with an empty sender (bounces) gets no notice.
"""

from dataclasses import dataclass, field

from twisted.internet import defer

from zwms import logs as ch
from zwms.account import Delivery
from zwms.routing import lists as mlists
from zwms.routing.messages import build_notice
from zwms.store.sendcount import SendCounter


@dataclass(frozen=True)
class Mailing:
    """A list recipient: (NAME) ("personal") or NAME@DOMAIN ("plain")."""
    mode: str
    name: str
    path: str = ""


@dataclass(frozen=True)
class Target:
    """
    One accepted recipient: the address as given, the local accounts it
    reaches, the outside addresses it reaches, or a mailing list.
    """
    address: str
    accounts: tuple = ()
    remote: tuple = ()
    mailing: object = None


@dataclass
class RouteResult:
    """What C{route} did: stored names, queue IDs and fan-out job IDs."""
    stored: list = field(default_factory=list)
    queued: list = field(default_factory=list)
    mailings: list = field(default_factory=list)


def _unique(items, key=lambda x: x):
    seen, out = set(), []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


class Router:
    """
    @param services: the service layer (C{queue} may be None: then only
        local delivery is possible).
    @param threads: C{run(f, *args)} -> Deferred for blocking work
        (deferToThread by default).
    """

    def __init__(self, services, threads=None):
        if threads is None:
            from twisted.internet.threads import deferToThread as threads
        self.services = services
        self.threads = threads
        self.counter = SendCounter(services.home, lambda: self._now())
        self._fanout = None
        self._status = None

    def _now(self):
        clock = self.services.clock
        if clock is None:
            import time
            return time.time()
        return clock.seconds()

    # -- parts built on demand -------------------------------------------------

    @property
    def status(self):
        """The L{zwms.routing.status.StatusBook} of mailings."""
        if self._status is None:
            from zwms.routing.status import StatusBook
            self._status = StatusBook(self.services, self.threads)
        return self._status

    @property
    def fanout(self):
        """The L{zwms.queue.fanout.FanOut} (None without a queue)."""
        if self._fanout is None and self.services.queue is not None:
            from zwms.queue.fanout import FanOut
            self._fanout = FanOut(self.services, self.services.queue, self.threads,
                                  status=self.status)
        return self._fanout

    def can_send_out(self):
        """True when remote recipients can be queued."""
        return self.services.queue is not None

    @defer.inlineCallbacks
    def start(self):
        """Resume fan-out jobs around the queue runner's start (see fanout)."""
        fanout = self.fanout
        if fanout is not None:
            yield fanout.recover()
        if self.services.queue is not None:
            yield self.services.queue.start()
        if fanout is not None:
            fanout.start()

    @defer.inlineCallbacks
    def stop(self):
        """Stop the fan-out, flush the status, stop the queue."""
        if self._fanout is not None:
            yield self._fanout.stop()
        if self._status is not None:
            yield self._status.flush()
        if self.services.queue is not None:
            yield self.services.queue.stop()

    # -- resolving (callers that have not checked recipients themselves) -------

    @defer.inlineCallbacks
    def target(self, address, lists_allowed=True):
        """
        A L{Target} for one address, by the directory (no account checks;
        the SMTP server makes its own in validateTo).

        @raise mlists.ListError: an unknown address or an unusable list.
        """
        name = mlists.list_name(address)
        if name is not None:
            if not lists_allowed:
                raise mlists.ListError(550, "Error. User not found")
            yield self.threads(mlists.read_list, self.services.home, name)
            return Target(address, mailing=Mailing("personal", name))
        res = yield defer.maybeDeferred(self.services.directory.resolve, address)
        if res.kind == "local":
            return Target(address, tuple(res.accounts), tuple(res.addresses))
        if res.kind == "remote":
            return Target(address, (), tuple(res.addresses))
        if res.kind == "unknown":
            path = mlists.plain_list_path(self.services.home, address) if lists_allowed else None
            if path:
                return Target(address, mailing=Mailing("plain", address.lower(), path))
            raise mlists.ListError(550, "Error. User not found")
        return Target(address, (), (address,))

    # -- routing ---------------------------------------------------------------------

    @defer.inlineCallbacks
    def route(self, sender, targets, data, origin="", auth_account=None, sent_copy=False,
              count=False, placements=None):
        """
        Route one accepted message.

        @param sender: the envelope sender ("" for the null sender).
        @param targets: L{Target}s (or address strings, resolved by
            L{target}).
        @param data: the message as it leaves: received lines on top, no
            Return-Path (local copies get one).
        @param origin: where it came from, for the queue's logs.
        @param auth_account: the sending account (SMTP AUTH, POP-before-SMTP,
            webmail login), or None.
        @param sent_copy: store a copy in C{auth_account}'s Sent folder when
            something leaves the server (SELFRELAYSAVE, decided by the caller).
        @param count: count the message against C{auth_account}'s daily
            sending limits (seed §16).
        @param placements: the receive policy's C{{account_id: (folder,
            bad)}} (SPEC P6, P7): each local account's copy goes to its
            folder, bad-flagged; an account not in it gets nothing (refused
            or deleted by its own rules), and a bad copy is not forwarded
            (spam must not leave through us).  None: every copy to the Inbox.
        @return: a Deferred firing with a L{RouteResult} when all is on disk.
        """
        services = self.services
        resolved = []
        for t in targets:
            if not isinstance(t, Target):
                t = yield self.target(t)
            resolved.append(t)
        local_data = b"Return-Path: <" + sender.encode("ascii", "replace") + b">\r\n" + data
        result = RouteResult()
        accounts = _unique(a for t in resolved for a in t.accounts)
        remote = _unique((a for t in resolved for a in t.remote), key=str.lower)
        forwarded = accounts
        if placements is not None:
            accounts = [a for a in accounts if a in placements]
            forwarded = [a for a in accounts if not placements[a][1]]
            deliveries = [Delivery(a, local_data, *placements[a]) for a in accounts]
        else:
            deliveries = [Delivery(a, local_data) for a in accounts]
        jobs = []  # (sender, recipients, bytes, auto, origin)
        if remote:
            jobs.append((sender, remote, data, False, origin))
        yield self._forwards(sender, data, local_data, forwarded, deliveries, jobs,
                             local_ids=set(accounts))
        leaves = bool(remote) or any(t.mailing for t in resolved)
        if sent_copy and auth_account and leaves:
            deliveries.append(Delivery(auth_account, local_data, "Sent"))
        if jobs and services.queue is None:
            raise RuntimeError("remote recipients but no outbound queue")
        for job_sender, rcpts, raw, auto, why in jobs:
            queue_id = yield services.queue.enqueue(job_sender, rcpts, raw, auto=auto,
                                                    origin=why)
            result.queued.append(queue_id)
        for t in resolved:
            if t.mailing is not None:
                job_id = yield self._mailing(sender, t.mailing, data, auth_account, origin)
                result.mailings.append(job_id)
        if deliveries:
            names = yield defer.maybeDeferred(services.mail.deliver, deliveries)
            result.stored = list(names or [])
        if count and auth_account:
            try:
                yield self.threads(self.counter.add, auth_account, len(data))
            except Exception as e:
                # The mail is safe; a counter that could not be written
                # only lets this one message go uncounted.
                services.logs.write(ch.SYSTEMERROR, "Send counter of %s not written: %s"
                                    % (auth_account, e))
        return result

    @defer.inlineCallbacks
    def _forwards(self, sender, data, local_data, accounts, deliveries, jobs, local_ids):
        services = self.services
        for aid in accounts:
            account = yield defer.maybeDeferred(services.accounts.get, aid)
            forward = account.forward if account is not None else ""
            if not forward:
                continue
            own = account.address or "%s@%s" % (aid, services.settings["DOMAIN"])
            if forward.lower() == own.lower():
                continue
            res = yield defer.maybeDeferred(services.directory.resolve, forward)
            if account.forwardmode == "copy":
                if res.kind == "local":
                    for target in res.accounts:
                        if target not in local_ids:
                            local_ids.add(target)
                            deliveries.append(Delivery(target, local_data))
                    if res.addresses:
                        jobs.append((own, list(res.addresses), data, False, "forward %s" % aid))
                elif res.kind in ("remote", "foreign") and self.can_send_out():
                    targets = list(res.addresses) if res.kind == "remote" else [forward]
                    jobs.append((own, targets, data, False, "forward %s" % aid))
                else:
                    services.logs.write(ch.SYSTEMERROR, "Forward of %s to <%s> not possible (%s)"
                                        % (aid, forward, res.kind))
                continue
            # notice
            if not sender or services.settings["AUTOMAILCANCEL"]:
                continue
            notice = build_notice(data, sender, own, forward, services.settings["DOMAIN"],
                                  self._now())
            if res.kind == "local":
                for target in res.accounts:
                    deliveries.append(Delivery(target, b"Return-Path: <>\r\n" + notice))
            elif res.kind in ("remote", "foreign") and self.can_send_out():
                targets = list(res.addresses) if res.kind == "remote" else [forward]
                jobs.append(("", targets, notice, True, "notice %s" % aid))

    @defer.inlineCallbacks
    def _mailing(self, sender, mailing, data, auth_account, origin):
        fanout = self.fanout
        if fanout is None:
            raise RuntimeError("mailing lists need the outbound queue")
        home = self.services.home
        if mailing.mode == "personal":
            list_sender, recipients = yield self.threads(mlists.read_list, home, mailing.name)
            owner = auth_account or (yield self._local_account(sender)) or ""
            job_id = yield fanout.submit(list_sender, recipients, data, mode="personal",
                                         owner=owner, name=mailing.name, origin=origin)
        else:
            recipients = yield self.threads(mlists.read_plain_list, mailing.path)
            job_id = yield fanout.submit(sender, recipients, data, mode="plain",
                                         name=mailing.name, origin=origin)
        return job_id

    @defer.inlineCallbacks
    def _local_account(self, address):
        if not address:
            return None
        res = yield defer.maybeDeferred(self.services.directory.resolve, address)
        if res.kind == "local" and res.accounts:
            return res.accounts[0]
        return None
