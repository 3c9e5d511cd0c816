"""
STARTTLS and implicit TLS over real sockets on 127.0.0.1 (SPEC S1, S7):
the real TLS layer of Twisted, the home's self-signed certificate, Python's
smtplib and a raw socket as clients, the password check in a real thread.
"""

import smtplib
import socket
import ssl

from twisted.internet import defer, reactor, task, threads
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial import unittest

from tests.test_smtp_support import services_for, stored
from zwms.smtp.factory import SMTPFactory
from zwms.tls import ensure_certificate, server_context

MESSAGE = b"Subject: over tls\r\n\r\nhello\r\n"


def client_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def read_reply(f):
    """The lines of one (possibly multi-line) reply from a file object."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            return lines
        lines.append(line)
        if line[3:4] != b"-":
            return lines


class RealTLSTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.services = services_for(self)
        self.services.clock = reactor
        self.context = server_context(ensure_certificate(self.mktemp(), "mail.example.com"))

    def listen(self, mode):
        factory = SMTPFactory(self.services, mode, tls_context=self.context)
        wrapped = factory
        if mode == "smtps":
            wrapped = TLSMemoryBIOFactory(self.context, False, factory)
        port = reactor.listenTCP(0, wrapped, interface="127.0.0.1")
        self.addCleanup(self.close, factory, port)
        return port.getHost().port

    @defer.inlineCallbacks
    def close(self, factory, port):
        yield port.stopListening()
        for _ in range(500):
            if not factory.connections:
                return
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.fail("sessions left open: %r" % (factory.connections,))

    @defer.inlineCallbacks
    def test_submission_starttls_auth_send(self):
        port = self.listen("submission")

        def session():
            with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
                s.ehlo("client.example")
                before = dict(s.esmtp_features)
                s.starttls(context=client_context())
                s.ehlo("client.example")
                after = dict(s.esmtp_features)
                s.login("alice", "alice-pw")
                refused = s.sendmail("alice@example.com", ["bob@example.com"], MESSAGE)
            return before, after, refused

        before, after, refused = yield threads.deferToThread(session)
        self.assertIn("starttls", before)
        self.assertNotIn("starttls", after)
        self.assertEqual(after["auth"].split(), ["PLAIN", "LOGIN"])
        self.assertEqual(refused, {})
        [message] = stored(self.services, "bob")
        self.assertTrue(message.endswith(MESSAGE))
        self.assertIn(b"with ESMTPSA id ", message)

    @defer.inlineCallbacks
    def test_smtps_implicit_tls(self):
        port = self.listen("smtps")

        def session():
            with smtplib.SMTP_SSL("127.0.0.1", port, timeout=20,
                                  context=client_context()) as s:
                s.ehlo("client.example")
                features = dict(s.esmtp_features)
                s.login("bob@example.com", "bob-pw")
                refused = s.sendmail("bob@example.com", ["alice@example.com"], MESSAGE)
            return features, refused

        features, refused = yield threads.deferToThread(session)
        self.assertNotIn("starttls", features)
        self.assertEqual(features["auth"].split(), ["PLAIN", "LOGIN"])
        self.assertEqual(refused, {})
        self.assertIn(b"with ESMTPSA id ", stored(self.services)[0])

    @defer.inlineCallbacks
    def test_plaintext_pipelined_after_starttls_is_dropped(self):
        port = self.listen("smtp")

        def session():
            sock = socket.create_connection(("127.0.0.1", port), timeout=20)
            f = sock.makefile("rb")
            read_reply(f)
            sock.sendall(b"EHLO client.example\r\n")
            read_reply(f)
            sock.sendall(b"STARTTLS\r\nNOOP\r\nMAIL FROM:<evil@remote.example>\r\n")
            ready = read_reply(f)
            tls = client_context().wrap_socket(sock)
            tls.sendall(b"NOOP\r\nQUIT\r\n")
            rest = b""
            while True:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                rest += chunk
            tls.close()
            return ready, rest

        ready, rest = yield threads.deferToThread(session)
        self.assertEqual(ready, [b"220 Ready to start TLS\r\n"])
        self.assertEqual(rest, b"250 OK\r\n221 example.com closing connection\r\n")
