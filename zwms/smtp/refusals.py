# -*- test-case-name: tests.test_smtp_policy -*-
"""
A bounce for the recipients whose own rules refused a message that other
recipients accepted (SPEC P6, seed §36 [수신] 4: the multi-recipient replies
"421 서비스 활용 불가능", "450 우편함이 잠겨 있음", …).  One recipient alone
is refused in the SMTP dialogue instead; this is for the mixed case, where
the dialogue can only answer 250 for the whole message.
"""

from twisted.internet import defer

from zwms import logs, replies
from zwms.queue import dsn
from zwms.queue.spool import BOUNCED, Envelope, Recipient

#: The Korean line of §36 that goes with each refusal code.
KOREAN = {
    421: replies.KO_SERVICE_UNAVAILABLE,
    450: replies.KO_MAILBOX_LOCKED,
    552: replies.KO_STORAGE_EXCEEDED,
}


def refused_recipients(envelope, decision):
    """
    The spool Recipients to report: each envelope recipient all of whose
    accounts refused (one refusing account among several that accept does
    not make the address fail).
    """
    refused = dict(decision.refused())
    out = []
    for r in envelope.recipients:
        if r.accounts and all(a in refused for a in r.accounts):
            verdict = refused[r.accounts[0]]
            korean = KOREAN.get(verdict.code, "")
            out.append(Recipient(
                addr=r.address, state=BOUNCED, code=verdict.code,
                reply="%d %s" % (verdict.code, verdict.text),
                reason=("%d %s" % (verdict.code, korean)) if korean else "",
                step=verdict.log or ""))
    return out


@defer.inlineCallbacks
def bounce_refused(services, envelope, data, decision, message_id):
    """
    Tell the sender which recipients refused, through the queue's bounce
    delivery (local mailbox or queued, auto mail).  Never fails: a problem
    is logged to SystemError, the accepted copies stand.
    """
    if decision is None or services.queue is None:
        return
    failed = refused_recipients(envelope, decision)
    if not failed or not dsn.wants_bounce(envelope.sender, False, services.settings):
        return
    now = services.clock.seconds()
    env = Envelope(id=message_id, sender=envelope.sender, recipients=failed,
                   created=now, next_attempt=now)
    try:
        bounce = dsn.build_bounce(env, failed, data, services.settings["DOMAIN"], now)
        yield services.queue.deliver_bounce(env, bounce)
    except Exception as e:
        services.logs.write(logs.SYSTEMERROR, "Bounce for refused recipients of %s failed: %s"
                            % (message_id, e), peer=envelope.peer_ip)
