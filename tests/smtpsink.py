"""
A scriptable receiving SMTP server for queue tests (twisted.mail.smtp),
like Mailman's testing MTA: it answers 250, or a chosen reply at connect,
EHLO/HELO, MAIL, a given RCPT, DATA, or after the final "."; it can drop the
line after the "." (the mail got through but the answer is lost).  It
records every transaction (sender, recipients, the data un-dot-stuffed,
byte for byte) and each connection's raw input.

    sink = SMTPSink(); sink.start(); self.addCleanup(sink.stop)
    sink.script.rcpt["nobody@far.test"] = (550, "5.1.1 No such user")
"""

from dataclasses import dataclass, field

from twisted.internet import defer, protocol
from twisted.mail import smtp
from zope.interface import implementer


@dataclass
class Script:
    """Replies to give; None = the normal positive answer."""
    greeting: object = None
    helo: object = None
    mail: object = None
    rcpt: dict = field(default_factory=dict)
    data: object = None
    period: object = None
    drop_after_period: bool = False
    starttls: object = None


@dataclass
class Transaction:
    sender: str
    recipients: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    data: bytes = b""


class _Message:
    def __init__(self, sink, tx, primary):
        self.sink, self.tx, self.primary = sink, tx, primary

    def lineReceived(self, line):
        if self.primary:
            self.tx.lines.append(line)

    def eomReceived(self):
        if self.primary:
            self.tx.data = b"".join(l + b"\r\n" for l in self.tx.lines)
            self.sink.transactions.append(self.tx)
        return defer.succeed(None)

    def connectionLost(self):
        pass


@implementer(smtp.IMessageDelivery)
class _Delivery:
    def __init__(self, sink):
        self.sink = sink
        self.tx = None

    def receivedHeader(self, helo, origin, recipients):
        return None  # keep the data byte for byte

    def validateFrom(self, helo, origin):
        if self.sink.script.mail:
            raise smtp.SMTPServerError(*self.sink.script.mail)
        self.tx = Transaction(sender=str(origin))
        return origin

    def validateTo(self, user):
        addr = str(user.dest)
        reply = self.sink.script.rcpt.get(addr.lower())
        if reply:
            raise smtp.SMTPServerError(*reply)
        tx = self.tx
        primary = not tx.recipients
        tx.recipients.append(addr)
        return lambda: _Message(self.sink, tx, primary)


class _SinkSMTP(smtp.ESMTP):
    def connectionMade(self):
        self.raw = bytearray()
        self.factory.sink.connections.append(self.raw)
        self.factory.sink._open += 1
        script = self.factory.sink.script
        if script.greeting:
            self._helo = (None, "127.0.0.1")
            self.mode = "COMMAND"
            self.sendCode(script.greeting[0], script.greeting[1].encode())
            return
        smtp.ESMTP.connectionMade(self)

    def dataReceived(self, data):
        self.raw += data
        return smtp.ESMTP.dataReceived(self, data)

    def do_EHLO(self, rest):
        if self.factory.sink.script.helo:
            code, text = self.factory.sink.script.helo
            return self.sendCode(code, text.encode())
        return smtp.ESMTP.do_EHLO(self, rest)

    def do_HELO(self, rest):
        if self.factory.sink.script.helo:
            code, text = self.factory.sink.script.helo
            return self.sendCode(code, text.encode())
        return smtp.ESMTP.do_HELO(self, rest)

    def ext_STARTTLS(self, rest):
        if self.factory.sink.script.starttls:
            code, text = self.factory.sink.script.starttls
            return self.sendCode(code, text.encode())
        self.factory.sink.tls_sessions += 1
        return smtp.ESMTP.ext_STARTTLS(self, rest)

    def do_DATA(self, rest):
        if self.factory.sink.script.data and self._from is not None and self._to:
            code, text = self.factory.sink.script.data
            self._from, self._to = None, []
            return self.sendCode(code, text.encode())
        return smtp.ESMTP.do_DATA(self, rest)

    def _messageHandled(self, resultList):
        script = self.factory.sink.script
        if script.drop_after_period:
            self.transport.loseConnection()
        elif script.period:
            self.sendCode(script.period[0], script.period[1].encode())
        else:
            self.sendCode(250, b"2.0.0 Ok: queued")

    def connectionLost(self, reason):
        smtp.ESMTP.connectionLost(self, reason)
        self.factory.sink._closed()


class _Factory(protocol.ServerFactory):
    def __init__(self, sink):
        self.sink = sink

    def buildProtocol(self, addr):
        p = _SinkSMTP()
        p.factory = self
        p.delivery = _Delivery(self.sink)
        p.host = b"sink.test"
        p.ctx = self.sink.tls_context
        return p


class SMTPSink:
    """The server: C{start()}, C{port}, C{script}, C{transactions}, C{stop()}."""

    def __init__(self, interface="127.0.0.1", tls_context=None):
        self.interface = interface
        self.tls_context = tls_context
        self.tls_sessions = 0
        self.script = Script()
        self.transactions = []
        self.connections = []
        self._open = 0
        self._waiting = []
        self.listening = None

    @property
    def port(self):
        return self.listening.getHost().port

    def start(self, reactor=None, port=0):
        if reactor is None:
            from twisted.internet import reactor
        self.listening = reactor.listenTCP(port, _Factory(self), interface=self.interface)
        return self

    def _closed(self):
        self._open -= 1
        if self._open == 0:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    def quiet(self):
        """A Deferred firing when no connection is open."""
        if self._open == 0:
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiting.append(d)
        return d

    @defer.inlineCallbacks
    def stop(self):
        yield defer.maybeDeferred(self.listening.stopListening)
        yield self.quiet()
