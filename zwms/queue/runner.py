# -*- test-case-name: tests.test_queue_runner -*-
"""
The outbound queue runner (SPEC Q1-Q4, seed §36 [발송]).

Each queued message is tried when due, with at most C{concurrency} messages
in flight.  One attempt: "Catch send mail"; recipients in LIMITDOMAINS are
bounced ("Limited receiver domain"); the others are grouped by domain; per
domain an MX lookup (in a thread), then "Connecting" to each mail host in
preference order until the recipients have answers.  2xx = sent, 5xx =
bounced, 4xx and connection trouble = tried again later with backoff (1m,
5m, 15m, 30m, 1h, then hourly) until the lifetime (5 days by default) is
over: "Send mail time over", bounced with "1 전송 대기시간 초과".

Durability: each session's results are written to the envelope (fsynced)
before the runner moves on.  A crash between a remote "250" and that write
means the recipient is still pending on disk and gets the message again
after the restart: delivery is at least once, never at most once.  A
failed recipient stays "not notified" until its bounce is queued (or
delivered locally), so a crash can repeat a bounce but never lose one.
"""

import ipaddress
from collections import deque

from twisted.internet import defer, task
from twisted.python import failure

from zwms import logs as ch
from zwms import replies
from zwms.account import Delivery
from zwms.queue import dsn
from zwms.queue.client import OutboundClient, permissive_tls, wire_bytes
from zwms.queue.mx import MXError
from zwms.queue.spool import BOUNCED, EXPIRED, SENT, AsyncSpool

#: Seconds to wait after the 1st, 2nd, ... failed attempt; the last repeats.
BACKOFF = (60, 300, 900, 1800, 3600)
#: How long a message may stay queued (seconds).
DEFAULT_LIFETIME = 5 * 24 * 3600
#: How long a failed local bounce delivery is retried past the lifetime.
NOTIFY_GRACE = 24 * 3600


def domain_of(addr):
    return addr.rpartition("@")[2].lower().rstrip(".")


def in_domains(domain, domains):
    """A domain list matches the domain and its subdomains (SPEC §0)."""
    return any(domain == d or domain.endswith("." + d) for d in domains if d)


class QueueRunner:
    """
    Delivers the queue.  API: C{start()}, C{stop()},
    C{enqueue(sender, recipients, data, auto=False, origin="")}.
    """

    def __init__(self, services, spool, clock, resolver, connect, port=25,
                 concurrency=8, lifetime=DEFAULT_LIFETIME, backoff=BACKOFF,
                 own_addresses=(), loopback_is_me=True, threads=None,
                 timeout=300, connect_timeout=60, grace=10.0, tls_context="default"):
        """
        @param services: L{zwms.services.Services} (settings, logs, directory,
            mail are used).
        @param spool: a blocking L{zwms.queue.spool.Spool}; its calls run in
            threads through C{threads}.
        @param clock: IReactorTime (callLater, seconds): schedules and times.
        @param resolver: has C{lookup(domain)} -> Deferred of MXHost list
            (L{zwms.queue.mx.MXResolver}).
        @param connect: C{connect(ip, port, factory, timeout=)} (connectTCP).
        @param port: remote SMTP port (25; tests use their sink's).
        @param own_addresses: the addresses our SMTP listeners are bound to
            (with CHECKDOMAIN: "me" for loop detection, SPEC S8).
        @param loopback_is_me: loopback MX addresses count as me.
        @param threads: C{run(f, *args)} -> Deferred (deferToThread).
        @param tls_context: client context for opportunistic STARTTLS;
            "default" = encrypt without verifying, None = no STARTTLS.
        """
        self.services = services
        self.settings = services.settings
        self.logs = services.logs
        self.spool = AsyncSpool(spool, threads)
        self.clock = clock
        self.resolver = resolver
        self.concurrency = max(1, int(concurrency))
        self.lifetime = lifetime
        self.backoff = tuple(backoff)
        self.own_addresses = set(own_addresses)
        self.loopback_is_me = loopback_is_me
        self.grace = grace
        if tls_context == "default":
            tls_context = permissive_tls()
        self.client = OutboundClient(connect, None, port=port, timeout=timeout,
                                     connect_timeout=connect_timeout,
                                     tls_context=tls_context)
        self.envelopes = {}
        self._calls = {}
        self._ready = deque()
        self._active = {}
        self._sessions = set()
        self._running = False
        self._stopping = False
        self._idle = []
        #: Callables C{f(envelope)} told after each attempt once its results
        #: are on disk (list delivery status, fan-out back-pressure).
        self.observers = []

    # -- public API ------------------------------------------------------------

    @defer.inlineCallbacks
    def start(self):
        """
        Sweep crash leftovers and resume every queued message.

        @return: a Deferred firing with the number of messages resumed.
        """
        self._stopping = False
        entries, swept, bad = yield self.spool.recover()
        if swept:
            self._log(ch.SYSTEMSTATUS, "Queue auto recovery removed %d leftover files" % swept)
        for name in bad:
            self._log(ch.SYSTEMERROR, "Queue entry unreadable, set aside as %s" % name)
        for msg_id in entries:
            if msg_id not in self.envelopes:
                self.envelopes[msg_id] = yield self.spool.load(msg_id)
        self._running = True
        for msg_id, env in sorted(self.envelopes.items()):
            self._schedule(msg_id, env.next_attempt)
        if self.envelopes:
            self._log(ch.SYSTEMSTATUS, "Queue resumed %d messages" % len(self.envelopes))
        return len(entries)

    @defer.inlineCallbacks
    def enqueue(self, sender, recipients, data, auto=False, origin=""):
        """
        Queue a message for delivery.

        @return: a Deferred firing with the queue ID once the message is
            durably on disk (the SMTP server answers 250 after it); it fails
            when it could not be stored (answer 451).
        """
        env = yield self.spool.enqueue(sender, list(recipients), data, auto=auto,
                                       origin=origin, now=self.clock.seconds())
        self.envelopes[env.id] = env
        self._schedule(env.id, env.next_attempt)
        return env.id

    def adopt(self, envelopes):
        """
        Take over entries already durably written to the spool folder by
        someone else (L{zwms.queue.fanout}) and schedule them.
        """
        for env in envelopes:
            self.envelopes[env.id] = env
            self._schedule(env.id, env.next_attempt)

    def stop(self):
        """
        Stop trying: cancel the timers and wait for the messages in flight
        (their results are recorded).  After C{grace} seconds the remaining
        sessions are cut (their recipients stay pending: tried again at the
        next start).

        @return: a Deferred that fires when done.
        """
        self._stopping = True
        self._running = False
        for call in self._calls.values():
            if call.active():
                call.cancel()
        self._calls.clear()
        self._ready.clear()
        waiting = list(self._active.values()) + [f.closed for f in self._sessions]
        if not waiting:
            return defer.succeed(None)
        done = defer.Deferred()
        timer = self.clock.callLater(self.grace, self._grace_over, done)

        def finished(_):
            if timer.active():
                timer.cancel()
            if not done.called:
                done.callback(None)
        defer.DeferredList(waiting, consumeErrors=True).addBoth(finished)
        return done

    def when_idle(self):
        """A Deferred firing when nothing is in flight or due now (for tests)."""
        if not self._active and not self._ready and not self._sessions:
            return defer.succeed(None)
        d = defer.Deferred()
        self._idle.append(d)
        return d

    # -- scheduling ------------------------------------------------------------

    def _grace_over(self, done):
        for factory in list(self._sessions):
            factory.abort()
        if not done.called:
            done.callback(None)

    def _schedule(self, msg_id, when):
        if not self._running or self._stopping:
            return
        old = self._calls.pop(msg_id, None)
        if old is not None and old.active():
            old.cancel()
        delay = max(0.0, when - self.clock.seconds())
        self._calls[msg_id] = self.clock.callLater(delay, self._due, msg_id)

    def _due(self, msg_id):
        self._calls.pop(msg_id, None)
        if msg_id not in self._ready and msg_id not in self._active:
            self._ready.append(msg_id)
        self._pump()

    def _pump(self):
        while self._ready and len(self._active) < self.concurrency and not self._stopping:
            msg_id = self._ready.popleft()
            if msg_id in self._active or msg_id not in self.envelopes:
                continue
            d = defer.maybeDeferred(self._attempt, self.envelopes[msg_id])
            self._active[msg_id] = d
            d.addErrback(self._attempt_failed, msg_id)
            d.addBoth(self._attempt_done, msg_id)
        self._check_idle()

    def _attempt_failed(self, reason, msg_id):
        # Our own fault (disk, bug): log it and try again later; the message
        # stays queued (never lost for our error, DESIGN.md rule 4).
        self._log(ch.SYSTEMERROR, "Queue attempt failed for %s: %s"
                  % (msg_id, reason.getErrorMessage()))
        env = self.envelopes.get(msg_id)
        if env is not None:
            env.next_attempt = self.clock.seconds() + self._delay(env.attempts)
            self._schedule(msg_id, env.next_attempt)

    def _attempt_done(self, result, msg_id):
        self._active.pop(msg_id, None)
        self._pump()

    def _check_idle(self):
        if not self._active and not self._ready and not self._sessions:
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)

    def _delay(self, attempts):
        index = min(max(attempts, 1), len(self.backoff)) - 1
        return self.backoff[index]

    def _save(self, env):
        # Serialise here, in the reactor thread: the thread only writes bytes,
        # so it never reads an envelope while it changes.
        return self.spool.write_envelope(env.id, env.to_json())

    def _log(self, channel, text, peer=None):
        self.logs.write(channel, text, peer=peer)

    # -- one attempt -----------------------------------------------------------

    @defer.inlineCallbacks
    def _attempt(self, env):
        now = self.clock.seconds()
        pending = env.pending()
        self._log(ch.MAILSERVER, "%s %s <%s> -> %s" % (
            replies.LOG_CATCH_SEND, env.id, env.sender,
            ", ".join(r.addr for r in pending) or "(bounces only)"))
        counts = {}
        if pending and now >= env.created + self.lifetime:
            for r in pending:
                # Keep the last reply: the sender learns why it kept failing.
                self._settle(r, EXPIRED, now, step=replies.LOG_TIME_OVER,
                             reason=replies.BOUNCE_TIME_OVER, reply=r.reply, code=r.code,
                             remote=r.remote)
                self._log(ch.MAILSERVER, "%s %s %s" % (replies.LOG_TIME_OVER, env.id, r.addr))
            yield self._save(env)
        elif pending:
            env.attempts += 1
            yield self._send(env, pending, now)
        yield self._notify(env)
        for r in env.recipients:
            counts[r.state] = counts.get(r.state, 0) + 1
        if env.finished():
            yield self.spool.remove(env.id)
            self.envelopes.pop(env.id, None)
        else:
            nxt = self.clock.seconds() + self._delay(env.attempts)
            if env.pending():
                nxt = min(nxt, env.created + self.lifetime)
            env.next_attempt = nxt
            yield self._save(env)
            self._schedule(env.id, nxt)
        self._log(ch.SYSTEMSTATUS, "Send mail %s: %s" % (
            env.id, ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items()))))
        for observer in list(self.observers):
            try:
                observer(env)
            except Exception as e:
                self._log(ch.SYSTEMERROR, "Queue observer failed for %s: %s" % (env.id, e))

    @defer.inlineCallbacks
    def _send(self, env, pending, now):
        limited = self.settings.list("LIMITDOMAINS")
        groups = {}
        changed = False
        for r in pending:
            domain = domain_of(r.addr)
            if in_domains(domain, limited):
                self._log(ch.MAILSERVER, "%s %s" % (replies.LOG_LIMITED_DOMAIN, r.addr))
                self._settle(r, BOUNCED, now, step=replies.LOG_LIMITED_DOMAIN,
                             reason=replies.BOUNCE_LIMITED_DOMAIN)
                changed = True
            else:
                groups.setdefault(domain, []).append(r)
        if changed:
            yield self._save(env)
        if not groups:
            return
        wire = yield self._wire(env)
        for domain, rcpts in sorted(groups.items()):
            if self._stopping:
                break
            yield self._send_domain(env, domain, rcpts, wire)

    def _wire(self, env):
        # Read and prepare the bytes in a thread: both are O(size).
        return self.spool.run(lambda: wire_bytes(self.spool.spool.read(env.id)))

    @defer.inlineCallbacks
    def _send_domain(self, env, domain, rcpts, wire):
        now = self.clock.seconds()
        for r in rcpts:
            r.attempts += 1
        try:
            hosts = yield self.resolver.lookup(domain)
        except MXError as e:
            self._log(ch.MAILSERVER, "%s %s: %s" % (replies.LOG_NO_MX, domain, e.why))
            for r in rcpts:
                if e.permanent:
                    self._settle(r, BOUNCED, now, step=replies.LOG_NO_MX,
                                 reason=replies.BOUNCE_NO_MX, reply=e.why)
                else:
                    self._defer(r, step=replies.LOG_NO_MX, reason=replies.BOUNCE_NO_MX,
                                reply=e.why)
            yield self._save(env)
            return
        hosts = self._not_me(hosts)
        if not hosts:
            self._log(ch.MAILSERVER, "%s %s" % (replies.LOG_LOOPS_BACK, domain))
            code, text = replies.LOOPS_BACK
            for r in rcpts:
                self._settle(r, BOUNCED, now, step=replies.LOG_LOOPS_BACK,
                             reason="%d %s" % (code, text), code=code)
            yield self._save(env)
            return

        remaining, last = list(rcpts), None
        for host in hosts:
            for ip in host.addresses:
                if not remaining or self._stopping:
                    break
                out = yield self._session(env, host.name, ip, remaining, wire, True)
                if out.tls_failed:
                    out = yield self._session(env, host.name, ip, remaining, wire, False)
                remaining = self._apply(env, out, remaining)
                last = out
                yield self._save(env)  # durable before moving on
                yield self._send_sleep(out, wire)
        if remaining and last is not None:
            # Every host failed before taking the mail.
            now = self.clock.seconds()
            reason = {replies.LOG_CANNOT_CONNECT: replies.BOUNCE_NO_CONNECTION,
                      replies.LOG_CANNOT_TALK: replies.BOUNCE_NO_RESPONSE}.get(
                          last.step, replies.BOUNCE_CONNECT_FAIL)
            for r in remaining:
                self._finish_with(r, last, now, reason)
            yield self._save(env)

    def _send_sleep(self, out, wire):
        """
        SENDSLEEP (§11): after a session that delivered the message, wait
        SENDSLEEP ms per KB sent before this message's next session, to
        spread the outbound bandwidth.
        """
        per_kb = int(self.settings["SENDSLEEP"] or 0)
        sent = any(200 <= code < 300 for code, _ in out.replies.values())
        if per_kb <= 0 or not sent or self._stopping:
            return defer.succeed(None)
        delay = per_kb * (len(wire) / 1024.0) / 1000.0
        return task.deferLater(self.clock, delay, lambda: None)

    def _session(self, env, host, ip, rcpts, wire, use_tls):
        self._log(ch.MAILSERVER, "%s %s %s" % (replies.LOG_CONNECTING, host, env.id), peer=ip)
        self.client.domain = self.settings["DOMAIN"]
        try:
            factory = self.client.send(host, ip, env.sender, [r.addr for r in rcpts],
                                       wire, use_tls=use_tls)
        except Exception as e:
            # e.g. an address that cannot be written on the wire
            self._log(ch.SYSTEMERROR, "Queue cannot send %s: %s" % (env.id, e))
            return defer.fail(failure.Failure())
        self._sessions.add(factory)

        def closed(_):
            self._sessions.discard(factory)
            self._check_idle()
        factory.closed.addBoth(closed)
        return factory.reported

    def _apply(self, env, out, rcpts):
        """Record one session's results; return the recipients still open."""
        now = self.clock.seconds()
        where = "%s [%s]" % (out.host, out.ip)
        partial = (replies.LOG_AUTO_PARTIAL_SUCCESS if env.auto
                   else replies.LOG_NORMAL_PARTIAL_SUCCESS)
        if out.step:
            self._log(ch.MAILSERVER, "%s %s %s" % (out.step, out.code or "", out.text),
                      peer=out.ip)
        remaining = []
        for r in rcpts:
            if r.addr in out.replies:
                code, text = out.replies[r.addr]
                reply = "%d %s" % (code, " ".join(text.split()))
                if 200 <= code < 300:
                    self._settle(r, SENT, now, reply=reply, code=code, remote=where)
                    self._log(ch.MAILSERVER, "%s %s" % (partial, r.addr), peer=out.ip)
                else:
                    step = out.step or replies.LOG_ALL_RCPT_ERROR
                    if code >= 500:
                        self._settle(r, BOUNCED, now, step=step, reply=reply, code=code,
                                     remote=where)
                    else:
                        self._defer(r, step=step, reply=reply, code=code, remote=where)
            elif out.next_mx:
                remaining.append(r)
            else:
                self._finish_with(r, out, now, "")
        return remaining

    def _finish_with(self, r, out, now, reason):
        """A recipient without its own reply: the session's failure decides."""
        reply = ("%d %s" % (out.code, " ".join(out.text.split()))) if out.code else out.text
        where = "%s [%s]" % (out.host, out.ip)
        if out.code >= 500:
            self._settle(r, BOUNCED, now, step=out.step, reply=reply, code=out.code,
                         remote=where, reason=reason)
        else:
            self._defer(r, step=out.step, reply=reply, code=out.code, remote=where,
                        reason=reason)

    def _settle(self, r, state, now, step="", reason="", reply="", code=0, remote=""):
        r.state, r.step, r.reason, r.reply, r.code, r.remote = (
            state, step, reason, reply, code, remote)
        r.done_at = now
        r.notified = state == SENT

    def _defer(self, r, step="", reason="", reply="", code=0, remote=""):
        r.step, r.reason, r.reply, r.code, r.remote = step, reason, reply, code, remote

    def _not_me(self, hosts):
        """
        Drop the hosts that are me and every host of equal or lower priority
        (RFC 5321 §5.1): an empty list means the mail would loop back.
        """
        me = set(self.own_addresses)
        check = str(self.settings["CHECKDOMAIN"] or "").strip().lower()
        if check:
            me.add(check)
        kept = []
        for host in hosts:
            if host.name in me or any(self._is_me(ip, me) for ip in host.addresses):
                break
            kept.append(host)
        return kept

    def _is_me(self, ip, me):
        if ip in me:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return addr.is_unspecified or (self.loopback_is_me and addr.is_loopback)

    # -- bounces ---------------------------------------------------------------

    @defer.inlineCallbacks
    def _notify(self, env):
        """Tell the sender about failed recipients (once each, Q3)."""
        failed = env.unnotified()
        if not failed:
            return
        if not dsn.wants_bounce(env.sender, env.auto, self.settings):
            for r in failed:
                r.notified = True
            yield self._save(env)
            return
        now = self.clock.seconds()
        domain = self.settings["DOMAIN"]
        original = yield self.spool.read(env.id)
        bounce = yield self.spool.run(dsn.build_bounce, env, failed, original, domain, now)
        try:
            yield self.deliver_bounce(env, bounce)
        except Exception as e:
            self._log(ch.SYSTEMERROR, "Bounce for %s not delivered yet: %s" % (env.id, e))
            if now < env.created + self.lifetime + NOTIFY_GRACE:
                return
            self._log(ch.SYSTEMERROR, "Bounce for %s given up" % (env.id,))
        for r in failed:
            r.notified = True
        yield self._save(env)

    @defer.inlineCallbacks
    def deliver_bounce(self, env, bounce):
        """A local sender gets the bounce in its mailbox, others by the queue."""
        accounts = ()
        directory = getattr(self.services, "directory", None)
        if directory is not None:
            try:
                res = yield defer.maybeDeferred(directory.resolve, env.sender)
                if res.kind == "local":
                    accounts = res.accounts
            except Exception as e:
                self._log(ch.SYSTEMERROR, "Bounce sender lookup failed: %s" % (e,))
        if accounts:
            yield defer.maybeDeferred(self.services.mail.deliver,
                                      [Delivery(a, bounce) for a in accounts])
            self._log(ch.MAILSERVER, "Bounce for %s delivered to %s" % (env.id, env.sender))
        else:
            new_id = yield self.enqueue("", [env.sender], bounce, auto=True,
                                        origin="bounce %s" % env.id)
            self._log(ch.MAILSERVER, "Bounce for %s queued as %s" % (env.id, new_id))
