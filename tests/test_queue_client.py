"""
The outbound SMTP client against a scriptable sink on 127.0.0.1: per-step
failures map to the §36 lines, and the message arrives byte for byte
(no CR CR LF, no smuggling at the 16 KiB chunk edge).
"""

from twisted.internet import defer, reactor
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from zwms import replies
from zwms.queue.client import OutboundClient, OutboundFactory, permissive_tls, wire_bytes
from zwms.tls import ensure_certificate, server_context

from tests.smtpsink import SMTPSink


def smuggling_message():
    """A "." line starting exactly at byte 16384, then commands."""
    head = b"From: a@here.test\r\nTo: b@far.test\r\nSubject: edge\r\n\r\n"
    filler = 16384 - len(head) - 2
    body = head + b"x" * (filler) + b"\r\n"
    assert len(body) == 16384
    return body + (b".\r\nMAIL FROM:<evil@far.test>\r\nRCPT TO:<victim@far.test>\r\n"
                   b"DATA\r\nsmuggled\r\n.\r\nlast line\r\n")


class WireBytesTests(SynchronousTestCase):
    def test_crlf_normalised_once_and_dot_stuffed(self):
        self.assertEqual(wire_bytes(b"a\r\nb\nc\rd"), b"a\r\nb\r\nc\r\nd\r\n")
        self.assertEqual(wire_bytes(b".x\r\n..y\r\nz.\r\n.\r\n"),
                         b"..x\r\n...y\r\nz.\r\n..\r\n")
        self.assertEqual(wire_bytes(b""), b"")

    def test_chunks_pass_unchanged(self):
        """The sender writes the prepared bytes as they are, in 16 KiB chunks."""
        data = smuggling_message()
        wire = wire_bytes(data)
        factory = OutboundFactory("mx", "127.0.0.1", "a@here.test", [b"b@far.test"],
                                  wire, "here.test", 30, None)
        proto = factory.buildProtocol(None)
        t = StringTransport()
        proto.makeConnection(t)
        for line in (b"220 hi", b"250 ok", b"250 ok", b"250 ok", b"354 go"):
            proto.dataReceived(line + b"\r\n")
        while t.producer is not None:
            t.producer.resumeProducing()
        sent = t.value()
        self.assertTrue(sent.endswith(wire + b".\r\n"), sent[-200:])
        self.assertNotIn(b"\r\r\n", sent)
        self.assertEqual(sent.count(b"\r\n.\r\n"), 1)
        proto.connectionLost(None)


class ClientTests(TestCase):
    def setUp(self):
        self.sink = SMTPSink().start()
        self.addCleanup(lambda: self.sink.stop())
        self.client = OutboundClient(reactor.connectTCP, "here.test", port=self.sink.port,
                                     timeout=10, connect_timeout=5, tls_context=None)

    @defer.inlineCallbacks
    def send(self, data=b"Subject: t\r\n\r\nhello\r\n", rcpts=("b@far.test",),
             sender="a@here.test"):
        factory = self.client.send("mx.far.test", "127.0.0.1", sender, list(rcpts),
                                   wire_bytes(data))
        out = yield factory.reported
        yield factory.closed
        yield self.sink.quiet()
        return out

    @defer.inlineCallbacks
    def test_delivered_byte_for_byte(self):
        data = b"From: a@here.test\r\nSubject: t\r\n\r\n.leading dot\r\nline\r\n"
        out = yield self.send(data, rcpts=["b@far.test", "c@far.test"])
        self.assertIsNone(out.step)
        self.assertEqual(out.replies["b@far.test"][0], 250)
        self.assertEqual(out.replies["c@far.test"][0], 250)
        [tx] = self.sink.transactions
        self.assertEqual(tx.data, data)
        self.assertEqual(tx.recipients, ["b@far.test", "c@far.test"])
        self.assertIn(b"EHLO here.test\r\n", bytes(self.sink.connections[0]))

    @defer.inlineCallbacks
    def test_crlf_input_not_doubled(self):
        data = b"Subject: t\r\n\r\n" + b"line\r\n" * 5000
        yield self.send(data)
        raw = bytes(self.sink.connections[0])
        self.assertNotIn(b"\r\r\n", raw)
        self.assertEqual(self.sink.transactions[0].data, data)

    @defer.inlineCallbacks
    def test_bare_lf_and_cr_sent_as_crlf(self):
        yield self.send(b"Subject: t\n\nbare lf\nbare cr\rend")
        self.assertEqual(self.sink.transactions[0].data,
                         b"Subject: t\r\n\r\nbare lf\r\nbare cr\r\nend\r\n")

    @defer.inlineCallbacks
    def test_dot_line_at_chunk_edge_is_one_message(self):
        data = smuggling_message()
        out = yield self.send(data)
        self.assertIsNone(out.step)
        self.assertEqual(len(self.sink.transactions), 1)
        self.assertEqual(self.sink.transactions[0].data, data)
        self.assertEqual(self.sink.transactions[0].recipients, ["b@far.test"])

    @defer.inlineCallbacks
    def test_empty_sender_is_null_path(self):
        yield self.send(sender="")
        self.assertIn(b"MAIL FROM:<>\r\n", bytes(self.sink.connections[0]))

    @defer.inlineCallbacks
    def test_per_recipient_results(self):
        self.sink.script.rcpt["x@far.test"] = (550, "5.1.1 No such user")
        self.sink.script.rcpt["y@far.test"] = (450, "4.2.1 Try later")
        out = yield self.send(rcpts=["x@far.test", "y@far.test", "z@far.test"])
        self.assertIsNone(out.step)
        self.assertEqual(out.replies["x@far.test"], (550, "5.1.1 No such user"))
        self.assertEqual(out.replies["y@far.test"], (450, "4.2.1 Try later"))
        self.assertEqual(out.replies["z@far.test"][0], 250)
        self.assertEqual(self.sink.transactions[0].recipients, ["z@far.test"])

    @defer.inlineCallbacks
    def check_step(self, step, code, rcpts=("b@far.test",)):
        out = yield self.send(rcpts=rcpts)
        self.assertEqual(out.step, step)
        self.assertEqual(out.code, code)
        return out

    def test_first_message_error(self):
        self.sink.script.greeting = (554, "5.7.1 No service for you")
        return self.check_step(replies.LOG_FIRST_MESSAGE_ERROR, 554)

    def test_helo_response_error(self):
        self.sink.script.helo = (550, "5.7.1 Go away")
        return self.check_step(replies.LOG_HELO_ERROR, 550)

    def test_mail_response_error(self):
        self.sink.script.mail = (553, "5.1.8 Bad sender domain")
        return self.check_step(replies.LOG_MAIL_ERROR, 553)

    @defer.inlineCallbacks
    def test_all_rcpt_response_error(self):
        self.sink.script.rcpt["b@far.test"] = (550, "5.1.1 No such user")
        out = yield self.check_step(replies.LOG_ALL_RCPT_ERROR, 550)
        self.assertEqual(out.replies["b@far.test"][0], 550)
        self.assertEqual(self.sink.transactions, [])

    @defer.inlineCallbacks
    def test_data_response_error(self):
        self.sink.script.data = (554, "5.5.0 No DATA today")
        out = yield self.check_step(replies.LOG_DATA_ERROR, 554)
        self.assertEqual(out.replies["b@far.test"][0], 554)

    @defer.inlineCallbacks
    def test_data_period_response_error(self):
        self.sink.script.period = (554, "5.7.1 Looks like spam")
        out = yield self.check_step(replies.LOG_DATA_PERIOD_ERROR, 554)
        self.assertEqual(out.replies["b@far.test"], (554, "5.7.1 Looks like spam"))

    @defer.inlineCallbacks
    def test_dropped_after_period_cannot_talk(self):
        self.sink.script.drop_after_period = True
        out = yield self.check_step(replies.LOG_CANNOT_TALK, 0)
        self.assertEqual(out.replies, {})
        self.assertEqual(len(self.sink.transactions), 1)  # it did arrive

    @defer.inlineCallbacks
    def test_cannot_connect(self):
        port = self.sink.port
        yield self.sink.stop()
        self.sink = SMTPSink().start()  # for cleanup
        client = OutboundClient(reactor.connectTCP, "here.test", port=port, timeout=5,
                                connect_timeout=5, tls_context=None)
        factory = client.send("mx", "127.0.0.1", "a@here.test", ["b@far.test"], b"x\r\n")
        out = yield factory.reported
        yield factory.closed
        self.assertEqual(out.step, replies.LOG_CANNOT_CONNECT)
        self.assertTrue(out.next_mx)


class StartTLSTests(TestCase):
    def setUp(self):
        pem = ensure_certificate(self.mktemp(), "sink.test")
        self.sink = SMTPSink(tls_context=server_context(pem)).start()
        self.addCleanup(lambda: self.sink.stop())
        self.client = OutboundClient(reactor.connectTCP, "here.test", port=self.sink.port,
                                     timeout=10, connect_timeout=5, tls_context=permissive_tls())

    @defer.inlineCallbacks
    def send(self):
        factory = self.client.send("mx", "127.0.0.1", "a@here.test", ["b@far.test"],
                                   wire_bytes(b"Subject: t\r\n\r\nsecret\r\n"))
        out = yield factory.reported
        yield factory.closed
        yield self.sink.quiet()
        return out

    @defer.inlineCallbacks
    def test_opportunistic_starttls_with_self_signed_certificate(self):
        out = yield self.send()
        self.assertIsNone(out.step)
        self.assertEqual(self.sink.tls_sessions, 1)
        self.assertEqual(self.sink.transactions[0].data, b"Subject: t\r\n\r\nsecret\r\n")

    @defer.inlineCallbacks
    def test_refused_starttls_goes_on_in_plain_text(self):
        self.sink.script.starttls = (454, "4.7.0 TLS not available")
        out = yield self.send()
        self.assertIsNone(out.step)
        self.assertEqual(self.sink.tls_sessions, 0)
        self.assertEqual(len(self.sink.transactions), 1)
