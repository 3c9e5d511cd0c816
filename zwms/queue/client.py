# -*- test-case-name: tests.test_queue_client -*-
"""
Sending one message to one mail host (SPEC Q2), on twisted.mail's
ESMTPSender, with three fixes (TWISTED-NOTES "Outbound (SMTP client)"):

- Twisted's C{transformChunk} works per 16 KiB chunk: CRLF input goes out as
  CR CR LF, and a "." line that starts exactly at byte 16384 is not
  dot-stuffed, which ends DATA early and smuggles the rest to the remote
  server as commands.  Here the whole message is CRLF-normalised and
  dot-stuffed once (L{wire_bytes}) and chunks pass through unchanged.
- A refused HELO (after a refused EHLO) is retried forever by Twisted: here
  it ends the session with "HELO response error".
- No reconnect loop (retries=0): the queue does the backoff.

Each session yields an L{Outcome}: per-recipient replies, or the §36 log line
of the step that failed (First message error, HELO response error, ...).
"""

import io
import re
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.mail import smtp

from zwms import replies
from zwms.queue.spool import to_crlf

_DOT_LINE = re.compile(rb"(?m)^\.")

#: Steps after which the next MX may be tried (nothing was accepted yet).
NEXT_MX_STEPS = (replies.LOG_CANNOT_CONNECT, replies.LOG_CANNOT_TALK,
                 replies.LOG_FIRST_MESSAGE_ERROR, replies.LOG_HELO_ERROR)


def wire_bytes(data):
    """
    The DATA payload: every line end CRLF, a CRLF at the end, and each line
    that starts with "." given one more (RFC 5321 §4.5.2) — once, over the
    whole message.  The caller sends the final ".".
    """
    return _DOT_LINE.sub(b"..", to_crlf(data))


def _text(resp):
    if isinstance(resp, bytes):
        return resp.decode("utf-8", "replace")
    return str(resp or "")


@dataclass
class Outcome:
    """
    What one SMTP session achieved.

    replies: {address: (code, text)} for each recipient that got a final
    answer in this session (its RCPT refusal, or the reply to the end of
    DATA).  step: the §36 log line of a session-level failure, or None.
    code/text: that failure's reply (code 0 when there was no reply).
    accepted: recipients the remote accepted at RCPT.  tls_failed: the
    connection broke during STARTTLS (retry the host without it).
    """
    host: str
    ip: str
    replies: dict = field(default_factory=dict)
    step: object = None
    code: int = 0
    text: str = ""
    accepted: list = field(default_factory=list)
    tls_failed: bool = False

    @property
    def next_mx(self):
        """True when the next mail host may be tried for the rest."""
        return self.step in NEXT_MX_STEPS


class OutboundSender(smtp.ESMTPSender):
    """ESMTPSender that tracks the step it is at and reports an L{Outcome}."""

    requireAuthentication = False
    requireTransportSecurity = False
    heloFallback = True

    _STEPS = {b"EHLO": "helo", b"HELO": "helo", b"STAR": "starttls",
              b"MAIL": "mail", b"RCPT": "rcpt", b"DATA": "data",
              b"RSET": "rset", b"QUIT": "quit"}

    def __init__(self, *args, **kwargs):
        smtp.ESMTPSender.__init__(self, *args, **kwargs)
        self.step = "connect"
        self._tls_pending = False

    def connectionMade(self):
        self.step = "greeting"
        smtp.ESMTPSender.connectionMade(self)

    def sendLine(self, line):
        self.step = self._STEPS.get(line[:4].upper(), self.step)
        smtp.ESMTPSender.sendLine(self, line)

    def transformChunk(self, chunk):
        # The factory's file is already CRLF and dot-stuffed as a whole.
        self.resetTimeout()
        return chunk

    def smtpState_data(self, code, resp):
        self.step = "write"
        return smtp.ESMTPSender.smtpState_data(self, code, resp)

    def finishedFileTransfer(self, lastsent):
        self.step = "period"
        self.sendLine(b".")

    def smtpState_helo(self, code, resp):
        smtp.ESMTPSender.smtpState_helo(self, code, resp)
        self._failresponse = self._heloRefused

    def _heloRefused(self, code, resp):
        self.sendError(smtp.SMTPClientError(code, resp, self.log.str()))

    def esmtpState_starttls(self, code, resp):
        self._tls_pending = True
        return smtp.ESMTPSender.esmtpState_starttls(self, code, resp)

    def esmtpState_serverConfig(self, code, resp):
        self._tls_pending = False
        return smtp.ESMTPSender.esmtpState_serverConfig(self, code, resp)

    def esmtpTLSFailed(self, code=-1, resp=None):
        # Opportunistic TLS: a refused STARTTLS means we go on in plain text.
        if self._tls_pending:
            self.sendError(smtp.TLSError(code, b"TLS handshake failed", self.log.str()))
            return
        self.smtpState_from(code, resp)

    def sentMail(self, code, resp, numOk, addresses, log):
        # Called after the end of DATA, or earlier when MAIL, every RCPT or
        # DATA was refused (then no message went out).
        self.factory.sendFinished = True
        out = self.factory.outcome
        for addr, acode, aresp in addresses:
            a = _text(addr)
            if acode in smtp.SUCCESS:
                out.accepted.append(a)
            else:
                out.replies[a] = (acode, _text(aresp))
        if self.step == "period":
            for a in out.accepted:
                out.replies[a] = (code, _text(resp))
            if code not in smtp.SUCCESS:
                out.step, out.code, out.text = replies.LOG_DATA_PERIOD_ERROR, code, _text(resp)
        elif self.step == "data":
            for a in out.accepted:
                out.replies[a] = (code, _text(resp))
            out.step, out.code, out.text = replies.LOG_DATA_ERROR, code, _text(resp)
        elif self.step == "rcpt":
            out.step = replies.LOG_ALL_RCPT_ERROR
            if addresses:
                out.code, out.text = addresses[-1][1], _text(addresses[-1][2])
        else:
            out.step, out.code, out.text = replies.LOG_MAIL_ERROR, code, _text(resp)
        # Do not wait long for the RSET/QUIT answers: the result is known.
        self.setTimeout(min(self.timeout or 30, 30))
        self.factory.report()

    def sendError(self, exc):
        timed_out = isinstance(exc, smtp.SMTPTimeoutError)
        if not self.factory.sendFinished:
            self.factory.sendFinished = True
            out = self.factory.outcome
            code = getattr(exc, "code", -1)
            out.code = code if isinstance(code, int) and code > 0 else 0
            out.text = _text(getattr(exc, "resp", b"") or str(exc))
            out.tls_failed = self._tls_pending
            if timed_out or out.code == 0:
                out.step = (replies.LOG_WRITE_DATA_ERROR if self.step == "write"
                            else replies.LOG_CANNOT_TALK)
            elif self.step == "greeting":
                out.step = replies.LOG_FIRST_MESSAGE_ERROR
            elif self.step in ("helo", "starttls"):
                out.step = replies.LOG_HELO_ERROR
            elif self.step == "write":
                out.step = replies.LOG_WRITE_DATA_ERROR
            else:
                out.step = replies.LOG_CANNOT_TALK
            self.factory.report()
        if timed_out:
            # A silent server would not answer QUIT either: cut the line.
            self.transport.abortConnection()
            return
        smtp.SMTPClient.sendError(self, exc)


class OutboundFactory(smtp.ESMTPSenderFactory):
    """
    One message, one host.  C{outcome} fires with the L{Outcome} as soon as
    the result is known; C{closed} fires when the connection is gone.
    """

    protocol = OutboundSender

    def __init__(self, host, ip, sender, recipients, wire, domain, timeout,
                 tls_context=None):
        smtp.ESMTPSenderFactory.__init__(
            self, None, None, sender, list(recipients), io.BytesIO(wire),
            defer.Deferred(), retries=0, timeout=timeout, contextFactory=tls_context,
            heloFallback=True, requireAuthentication=False,
            requireTransportSecurity=False)
        self.domain = domain.encode("idna") if isinstance(domain, str) else domain
        self.outcome = Outcome(host=host, ip=ip)
        self.reported = defer.Deferred()
        self.closed = defer.Deferred()
        self._connected = False

    def buildProtocol(self, addr):
        self._connected = True
        return smtp.ESMTPSenderFactory.buildProtocol(self, addr)

    def report(self):
        """Fire C{reported} once."""
        if not self.reported.called:
            self.reported.callback(self.outcome)

    def abort(self):
        """Cut an in-flight session (shutdown grace over)."""
        p = self.currentProtocol
        if p is not None and p.transport is not None:
            p.transport.abortConnection()

    def clientConnectionFailed(self, connector, reason):
        if not self.sendFinished:
            self.sendFinished = True
            self.outcome.step = replies.LOG_CANNOT_CONNECT
            self.outcome.text = reason.getErrorMessage()
        self.report()
        if not self.closed.called:
            self.closed.callback(None)

    def clientConnectionLost(self, connector, reason):
        p = self.currentProtocol
        if not self.sendFinished:
            self.sendFinished = True
            step = getattr(p, "step", "")
            self.outcome.step = (replies.LOG_WRITE_DATA_ERROR if step == "write"
                                 else replies.LOG_CANNOT_TALK)
            self.outcome.tls_failed = bool(getattr(p, "_tls_pending", False))
            self.outcome.text = reason.getErrorMessage()
        self.currentProtocol = None
        self.report()
        if not self.closed.called:
            self.closed.callback(None)


def permissive_tls():
    """A client TLS context that encrypts without checking the certificate
    (opportunistic STARTTLS between MTAs, RFC 3207 §4.1), or None."""
    try:
        from twisted.internet import ssl
        return ssl.CertificateOptions()
    except Exception:
        return None


class OutboundClient:
    """
    Sends messages to mail hosts: C{send(...)} opens one session.

    @param connect: C{connect(ip, port, factory, timeout=...)}, e.g.
        C{reactor.connectTCP}.
    @param domain: our EHLO name (settings["DOMAIN"]).
    @param port: the remote port (25; tests give their sink's port).
    """

    def __init__(self, connect, domain, port=25, timeout=300, connect_timeout=60,
                 tls_context=None):
        self.connect = connect
        self.domain = domain
        self.port = port
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.tls_context = tls_context

    def send(self, host, ip, sender, recipients, wire, use_tls=True):
        """
        One session with C{ip}: MAIL FROM C{sender}, RCPT TO each of
        C{recipients}, DATA C{wire} (from L{wire_bytes}).

        @return: the L{OutboundFactory}; its C{reported} Deferred fires with the
            L{Outcome} (it never fails), C{closed} when the connection is gone.
        @raise ValueError / UnicodeError: addresses that cannot go on the wire.
        """
        factory = OutboundFactory(host, ip, sender, [r.encode("ascii") for r in recipients],
                                  wire, self.domain, self.timeout,
                                  self.tls_context if use_tls else None)
        self.connect(ip, self.port, factory, timeout=self.connect_timeout)
        return factory
