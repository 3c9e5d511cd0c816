"""
The harness of the SMTP server tests (tests/test_smtp_*.py): a service
layer with a few accounts, a client that feeds bytes to the protocol over a
StringTransport and reads exact reply lines, and checks that the harness
itself and the delivery objects keep their interfaces.
"""

import email.utils
import os

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.testing import StringTransport
from twisted.mail import smtp
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.helpers import make_services
from zwms.smtp import delivery as delivery_module
from zwms.smtp.delivery import Envelope, LocalDelivery, Message, Recipient
from zwms.smtp.factory import SMTPFactory

DOMAIN = "example.com"
CRLF = b"\r\n"
REMOTE_IP = "203.0.113.7"
MESSAGE_ID = "0123456789ABCDEF"


def sync_thread(f, *args, **kwargs):
    """The thread runner of tests: run now, answer with a fired Deferred."""
    return defer.maybeDeferred(f, *args, **kwargs)


def services_for(test, zwms_cfg=""):
    """
    A service layer over a scratch home: DOMAIN example.com, accounts alice
    and bob (password "<id>-pw"), memory stores and logs, a task.Clock at
    a fixed date; the Received id is fixed to MESSAGE_ID.
    """
    root = test.mktemp()
    os.makedirs(os.path.join(root, "data"))
    with open(os.path.join(root, "data", "zwms.cfg"), "w") as f:
        f.write(zwms_cfg)
    services = make_services(root)
    services.settings.set("DOMAIN", DOMAIN)
    services.clock.advance(1700000000)
    services.accounts.add("alice", "alice-pw")
    services.accounts.add("bob", "bob-pw")
    test.patch(delivery_module, "new_message_id", lambda: MESSAGE_ID)
    return services


@implementer(ITLSTransport)
class TLSStringTransport(StringTransport):
    """A StringTransport that records STARTTLS instead of doing TLS."""

    tls_context = None

    def startTLS(self, contextFactory, normal=True):
        self.tls_context = contextFactory


class Client:
    """
    One SMTP session over a StringTransport.  C{cmd(line)} sends a line and
    returns the reply lines written since the last read, as text.
    """

    def __init__(self, factory, peer=REMOTE_IP, tls_capable=True):
        cls = TLSStringTransport if tls_capable else StringTransport
        if ":" in peer:
            address = IPv6Address("TCP", peer, 40000)
        else:
            address = IPv4Address("TCP", peer, 40000)
        self.transport = cls(peerAddress=address)
        self.protocol = factory.buildProtocol(address)
        self.protocol.makeConnection(self.transport)
        self.greeting = self.read()

    def send(self, data):
        self.protocol.dataReceived(data)

    def read(self):
        """The reply lines written since the last read."""
        out = self.transport.value()
        self.transport.clear()
        assert out == b"" or out.endswith(CRLF), out
        return [line.decode("utf-8") for line in out.split(CRLF)[:-1]]

    def cmd(self, line):
        self.send(line + CRLF)
        return self.read()

    @property
    def closed(self):
        return self.transport.disconnecting

    def ehlo(self, name=b"client.example"):
        return self.cmd(b"EHLO " + name)

    def envelope(self, sender=b"<bob@remote.example>", *recipients):
        """EHLO, MAIL and RCPTs; returns every reply line."""
        lines = self.ehlo()
        lines += self.cmd(b"MAIL FROM:" + sender)
        for rcpt in recipients or (b"<alice@example.com>",):
            lines += self.cmd(b"RCPT TO:" + rcpt)
        return lines

    def data(self, body):
        """DATA, the body (CRLF.CRLF added), and the replies of both."""
        lines = self.cmd(b"DATA")
        self.send(body + b".\r\n")
        return lines + self.read()


def make_factory(services, mode="smtp", tls=True):
    """A factory with a stand-in TLS context (StringTransport never uses it)."""
    return SMTPFactory(services, mode, tls_context=object() if tls else None,
                       run_in_thread=sync_thread)


def stored(services, account_id="alice", folder="Inbox"):
    """The bytes of every message of a mailbox, oldest first."""
    mail = services.mail
    return [mail.read(account_id, folder, m.name) for m in mail.messages(account_id, folder)]


def expected_head(services, sender="bob@remote.example", helo="client.example",
                  ip=REMOTE_IP, with_name="ESMTP", rcpt="alice@example.com"):
    """The Return-Path and Received lines zWMS adds, exactly."""
    date = email.utils.formatdate(services.clock.seconds(), localtime=True)
    lines = ["Return-Path: <%s>" % sender,
             "Received: from %s ([%s])" % (helo, ip)]
    if rcpt is None:
        lines += ["\tby %s with %s id %s;" % (DOMAIN, with_name, MESSAGE_ID), "\t" + date]
    else:
        lines += ["\tby %s with %s id %s" % (DOMAIN, with_name, MESSAGE_ID),
                  "\tfor <%s>; %s" % (rcpt, date)]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


class HarnessTests(SynchronousTestCase):
    """The pieces the other tests stand on keep their contracts."""

    def test_tls_transport_records_starttls(self):
        # The protocol offers STARTTLS only on an ITLSTransport.
        transport = TLSStringTransport()
        self.assertTrue(ITLSTransport.providedBy(transport))
        self.assertFalse(ITLSTransport.providedBy(StringTransport()))
        context = object()
        transport.startTLS(context)
        self.assertIs(transport.tls_context, context)

    def test_delivery_and_message_interfaces(self):
        services = services_for(self)
        delivery = LocalDelivery(services)
        self.assertTrue(verifyObject(smtp.IMessageDelivery, delivery))
        envelope = Envelope(REMOTE_IP, "h.example", "ESMTP", "", ())
        self.assertTrue(verifyObject(smtp.IMessage, Message(delivery, envelope)))

    def test_recipient_is_the_validateTo_callable(self):
        # IMessageDelivery.validateTo returns a callable giving an IMessage.
        services = services_for(self)
        delivery = LocalDelivery(services)
        message = Recipient("alice@example.com", ("alice",), delivery=delivery)()
        message.lineReceived(b"Subject: x")
        self.successResultOf(message.eomReceived())
        self.assertEqual(len(stored(services)), 1)

    def test_client_reads_exact_lines(self):
        services = services_for(self)
        client = Client(make_factory(services))
        self.assertEqual(client.greeting, ["220 example.com ESMTP zWMS ready"])
        self.assertEqual(client.cmd(b"NOOP"), ["250 OK"])
