"""
The hardened ESMTP protocol (SPEC S1, S7, X4; TWISTED-NOTES "SMTP server"):
bytes in, exact reply lines out, over a StringTransport.
"""

import base64

CRLF = b"\r\n"

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from tests.test_smtp_support import (
    Client, REMOTE_IP, expected_head, make_factory, services_for, stored)
from zwms import replies
from zwms.account import Resolution
from zwms.smtp.factory import SMTPFactory

SMALL_CFG = "MAXMAILSIZE=1\n"  # 1 KB: 1024 bytes

WELCOME = ["250-example.com Hello %s" % REMOTE_IP, "250-SIZE 52428800", "250-8BITMIME",
           "250-PIPELINING"]


def line(pair):
    return "%d %s" % pair


class PendingDirectory:
    """Wraps a directory: resolve() answers only when release() is called."""

    def __init__(self, directory):
        self.directory = directory
        self.waiting = []

    def resolve(self, address):
        d = defer.Deferred()
        self.waiting.append((d, address))
        return d

    def release(self):
        waiting, self.waiting = self.waiting, []
        for d, address in waiting:
            d.callback(self.directory.resolve(address))

    def __getattr__(self, name):
        return getattr(self.directory, name)


class GreetingAndExtensionsTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)

    def test_ehlo_remote_plaintext_offers_starttls_not_auth(self):
        client = Client(make_factory(self.services))
        self.assertEqual(client.ehlo(), WELCOME + ["250 STARTTLS"])

    def test_ehlo_loopback_offers_auth(self):
        for peer in ("127.0.0.1", "127.8.9.10", "::1"):
            client = Client(make_factory(self.services), peer=peer)
            self.assertEqual(client.ehlo()[1:], WELCOME[1:] + [
                "250-STARTTLS", "250 AUTH PLAIN LOGIN"], peer)

    def test_no_tls_context_no_starttls(self):
        client = Client(make_factory(self.services, tls=False))
        self.assertEqual(client.ehlo(), WELCOME[:-1] + ["250 PIPELINING"])
        self.assertEqual(client.cmd(b"STARTTLS"), [line((454, "Error. TLS not available"))])

    def test_smtps_is_secure_from_the_start(self):
        client = Client(make_factory(self.services, mode="smtps"))
        self.assertEqual(client.ehlo(), WELCOME + ["250 AUTH PLAIN LOGIN"])
        self.assertEqual(client.cmd(b"STARTTLS"), ["503 Error. TLS already active"])

    def test_size_follows_maxmailsize(self):
        services = services_for(self, SMALL_CFG)
        client = Client(make_factory(services, tls=False))
        self.assertIn("250-SIZE 1024", client.ehlo())

    def test_helo_gets_one_line(self):
        client = Client(make_factory(self.services))
        self.assertEqual(client.cmd(b"HELO client.example"),
                         ["250 example.com Hello %s" % REMOTE_IP])

    def test_helo_needs_a_name(self):
        client = Client(make_factory(self.services))
        self.assertEqual(client.cmd(b"EHLO"),
                         ["501 Error. HELO and EHLO need a valid domain name"])
        self.assertEqual(client.cmd(b"HELO a\x01b"),
                         ["501 Error. HELO and EHLO need a valid domain name"])
        self.assertFalse(client.closed)

    def test_mail_before_helo_refused(self):
        client = Client(make_factory(self.services))
        self.assertEqual(client.cmd(b"MAIL FROM:<bob@remote.example>"),
                         ["503 Error. Send HELO or EHLO first"])

    def test_bad_modes_refused(self):
        self.assertRaises(ValueError, SMTPFactory, self.services, "lmtp")


class SimpleCommandTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)
        self.client = Client(make_factory(self.services))
        self.client.ehlo()

    def test_noop(self):
        self.assertEqual(self.client.cmd(b"NOOP"), ["250 OK"])

    def test_vrfy_refused_and_logged(self):
        self.assertEqual(self.client.cmd(b"VRFY alice"), [line(replies.UNKNOWN_QUERY)])
        self.assertEqual(self.services.logs.lines["MailServer"],
                         ["Unknown message VRFY"])

    def test_unknown_commands(self):
        for command in (b"EXPN staff", b"HELP", b"TURN", b"\xff\xfe", b"", b"do_QUIT"):
            self.assertEqual(self.client.cmd(command), [line(replies.UNKNOWN_QUERY)], command)
        self.assertEqual(self.services.logs.lines["MailServer"], [
            "Unknown message EXPN", "Unknown message HELP", "Unknown message TURN",
            "Unknown message (2 bytes)", "Unknown message (0 bytes)", "Unknown message (7 bytes)"])

    def test_unknown_message_never_logs_credentials(self):
        secret = base64.b64encode(b"my-long-password")
        self.assertEqual(self.client.cmd(secret), [line(replies.UNKNOWN_QUERY)])
        self.assertEqual(self.services.logs.lines["MailServer"], ["Unknown message (24 bytes)"])
        self.assertFalse(self.client.closed)

    def test_rset_forgets_the_envelope(self):
        self.client.cmd(b"MAIL FROM:<bob@remote.example>")
        self.assertEqual(self.client.cmd(b"RSET"), ["250 OK"])
        self.assertEqual(self.client.cmd(b"RCPT TO:<alice@example.com>"),
                         ["503 Error. Need MAIL command"])

    def test_quit(self):
        self.assertEqual(self.client.cmd(b"QUIT\r\nNOOP"), ["221 example.com closing connection"])
        self.assertTrue(self.client.closed)

    def test_command_sequence_errors(self):
        c = self.client
        self.assertEqual(c.cmd(b"DATA"), ["503 Error. Need MAIL command"])
        self.assertEqual(c.cmd(b"MAIL FROM:<bob@remote.example>"), ["250 Sender address accepted"])
        self.assertEqual(c.cmd(b"MAIL FROM:<bob@remote.example>"),
                         ["503 Error. Nested MAIL command"])
        self.assertEqual(c.cmd(b"DATA"), ["554 Error. No valid recipients"])
        self.assertEqual(c.cmd(b"RCPT alice@example.com"),
                         ["501 Error. Syntax: RCPT TO:<address>"])
        self.assertEqual(c.cmd(b"RCPT TO:<alice@example.com> NOTIFY=NEVER"),
                         ["555 Error. Parameter not recognized"])

    def test_mail_parameters(self):
        c = self.client
        self.assertEqual(c.cmd(b"MAIL FROM:<bob@remote.example> BODY=8BITMIME SIZE=100"),
                         ["250 Sender address accepted"])
        c.cmd(b"RSET")
        self.assertEqual(c.cmd(b"MAIL FROM:<bob@remote.example> SMTPUTF8"),
                         ["555 Error. Parameter not recognized"])
        self.assertEqual(c.cmd(b"MAIL FROM:<bob@remote.example> SIZE=big"),
                         ["501 Error. Syntax: MAIL FROM:<address>"])
        self.assertEqual(c.cmd(b"MAIL TO:<bob@remote.example>"),
                         ["501 Error. Syntax: MAIL FROM:<address>"])

    def test_null_sender_and_unbracketed_paths(self):
        self.assertEqual(self.client.cmd(b"MAIL FROM:<>"), ["250 Sender address accepted"])
        self.assertEqual(self.client.cmd(b"RCPT TO: alice@example.com"),
                         ["250 Recipient address accepted"])


class SmugglingTests(SynchronousTestCase):
    """
    End of data is CRLF.CRLF only (SPEC S1), as aiosmtpd's
    tests/test_smtpsmuggling.py: a bare LF or CR before or after the dot
    never ends the message, so a second message smuggled behind it is just
    text of the first one.
    """

    SMUGGLED = (b"MAIL FROM:<admin@example.com>\r\nRCPT TO:<bob@example.com>\r\n"
                b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n")

    def check(self, ending):
        services = services_for(self)
        client = Client(make_factory(services))
        client.envelope()
        self.assertEqual(client.cmd(b"DATA"), ["354 Start mail input; end with <CRLF>.<CRLF>"])
        body = b"Subject: one\r\n\r\nfirst" + ending + self.SMUGGLED
        client.send(body + b".\r\n")
        self.assertEqual(client.read(), ["250 OK. Mail received"])
        # Stored as one message: the client's bytes, except that a line
        # (CRLF-delimited) starting with a dot loses that dot (RFC 5321
        # §4.5.2 transparency).
        unstuffed = CRLF.join(x[1:] if x[:1] == b"." else x for x in body.split(CRLF))
        self.assertEqual(stored(services), [expected_head(services) + unstuffed])
        self.assertEqual(stored(services, "bob"), [])
        self.assertEqual(services.mail.usage("alice")[0], 1)

    def test_bare_lf_dot_lf(self):
        self.check(b"\n.\n")

    def test_bare_lf_dot_crlf(self):
        self.check(b"\n.\r\n")

    def test_crlf_dot_lf(self):
        self.check(b"\r\n.\n")

    def test_bare_cr_dot_cr(self):
        self.check(b"\r.\r")

    def test_bare_cr_dot_crlf(self):
        self.check(b"\r.\r\n")

    def test_crlf_dot_cr(self):
        self.check(b"\r\n.\r")

    def test_split_across_packets(self):
        # The terminator split at every byte still ends DATA exactly once.
        services = services_for(self)
        client = Client(make_factory(services))
        client.envelope()
        client.cmd(b"DATA")
        for byte in b"Subject: s\r\n\r\nx\r\n.\r\nNOOP\r\n":
            client.send(bytes([byte]))
        self.assertEqual(client.read(), ["250 OK. Mail received", "250 OK"])
        self.assertEqual(stored(services), [expected_head(services) + b"Subject: s\r\n\r\nx\r\n"])

    def test_dot_stuffing_removed_once(self):
        services = services_for(self)
        client = Client(make_factory(services))
        client.envelope()
        self.assertEqual(client.data(b"..\r\n...x\r\n.y\r\n")[-1], "250 OK. Mail received")
        self.assertEqual(stored(services), [expected_head(services) + b".\r\n..x\r\ny\r\n"])


class LineLengthTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)
        self.factory = make_factory(self.services)

    def test_long_command_line_closes(self):
        client = Client(self.factory)
        client.ehlo()
        client.send(b"NOOP " + b"x" * 70000 + b"\r\nNOOP\r\n")
        self.assertEqual(client.read(), ["500 Error. Line too long"])
        self.assertTrue(client.closed)
        client.send(b"NOOP\r\n")
        self.assertEqual(client.read(), [])

    def test_long_partial_line_closes_before_its_end(self):
        client = Client(self.factory)
        client.send(b"x" * (64 * 1024 + 2))
        self.assertEqual(client.read(), ["500 Error. Line too long"])
        self.assertTrue(client.closed)

    def test_long_line_in_data_never_runs_the_body_as_commands(self):
        # TWISTED-NOTES: Twisted leaves DATA mode on a long line and runs
        # the next segments as commands.  Here: 500, closed, nothing stored.
        client = Client(self.factory)
        client.envelope()
        client.cmd(b"DATA")
        client.send(b"Subject: x\r\n\r\n" + b"A" * 70000 + b"\r\n")
        client.send(b".\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@example.com>\r\n"
                    b"DATA\r\nsmuggled\r\n.\r\n")
        self.assertEqual(client.read(), ["500 Error. Line too long"])
        self.assertTrue(client.closed)
        self.assertEqual(stored(self.services), [])
        self.assertEqual(stored(self.services, "bob"), [])
        self.assertIn("Line too long (70000 bytes), session closed",
                      self.services.logs.lines["MailServer"])

    def test_other_sessions_go_on(self):
        bad = Client(self.factory)
        bad.send(b"y" * 70000 + b"\r\n")
        self.assertTrue(bad.closed)
        good = Client(self.factory)
        good.envelope()
        self.assertEqual(good.data(b"Subject: fine\r\n")[-1], "250 OK. Mail received")

    def test_64k_line_is_accepted(self):
        client = Client(self.factory)
        client.envelope()
        line = b"B" * (64 * 1024)
        self.assertEqual(client.data(b"Subject: x\r\n\r\n" + line + b"\r\n")[-1],
                         "250 OK. Mail received")
        self.assertTrue(stored(self.services)[0].endswith(line + b"\r\n"))


class StartTLSTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)

    def test_pipelined_plaintext_is_discarded(self):
        client = Client(make_factory(self.services))
        client.ehlo()
        client.send(b"STARTTLS\r\nEHLO evil\r\nMAIL FROM:<evil@remote.example>\r\n")
        self.assertEqual(client.read(), ["220 Ready to start TLS"])
        self.assertIs(client.transport.tls_context, client.protocol.ctx)
        # After TLS: the session starts again; nothing of the plaintext ran.
        self.assertEqual(client.cmd(b"MAIL FROM:<bob@remote.example>"),
                         ["503 Error. Send HELO or EHLO first"])
        self.assertEqual(client.ehlo(), WELCOME + ["250 AUTH PLAIN LOGIN"])
        self.assertEqual(client.cmd(b"STARTTLS"), ["503 Error. TLS already active"])

    def test_session_reset_after_tls(self):
        client = Client(make_factory(self.services), peer="127.0.0.1")
        client.ehlo()
        auth = base64.b64encode(b"\0alice\0alice-pw")
        self.assertEqual(client.cmd(b"AUTH PLAIN " + auth), ["235 Authentication successful"])
        client.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(client.cmd(b"STARTTLS"), ["220 Ready to start TLS"])
        self.assertFalse(client.protocol.authenticated)
        client.ehlo()
        self.assertEqual(client.cmd(b"RCPT TO:<bob@example.com>"),
                         ["503 Error. Need MAIL command"])
        self.assertEqual(client.cmd(b"AUTH PLAIN " + auth), ["235 Authentication successful"])

    def test_starttls_takes_no_argument(self):
        client = Client(make_factory(self.services))
        self.assertEqual(client.cmd(b"STARTTLS now"), ["501 Error. No arguments allowed"])
        self.assertIsNone(client.transport.tls_context)


class AuthOfferTests(SynchronousTestCase):
    """AUTH only over TLS or from loopback, on every port (SPEC S7)."""

    AUTH = b"AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-pw")

    def setUp(self):
        self.services = services_for(self)

    def test_remote_plaintext_must_starttls(self):
        client = Client(make_factory(self.services))
        client.ehlo()
        self.assertEqual(client.cmd(self.AUTH), ["530 Error. Must issue a STARTTLS command first"])
        client.cmd(b"STARTTLS")
        client.ehlo()
        self.assertEqual(client.cmd(self.AUTH), ["235 Authentication successful"])

    def test_remote_without_tls_context_is_unknown(self):
        client = Client(make_factory(self.services, tls=False))
        client.ehlo()
        self.assertEqual(client.cmd(self.AUTH), [line(replies.UNKNOWN_QUERY)])
        # The credentials are not written to the log.
        self.assertEqual(self.services.logs.lines["MailServer"], ["Unknown message AUTH"])

    def test_submission_needs_auth_for_mail(self):
        client = Client(make_factory(self.services, mode="submission"), peer="127.0.0.1")
        client.ehlo()
        self.assertEqual(client.cmd(b"MAIL FROM:<alice@example.com>"),
                         ["530 Error. Authentication required"])
        client.cmd(self.AUTH)
        self.assertEqual(client.cmd(b"MAIL FROM:<alice@example.com>"),
                         ["250 Sender address accepted"])
        self.assertEqual(client.cmd(b"RCPT TO:<bob@example.com>"),
                         ["250 Recipient address accepted"])
        self.assertEqual(client.data(b"Subject: hi\r\n")[-1], "250 OK. Mail received")
        self.assertEqual(stored(self.services, "bob"), [expected_head(
            self.services, sender="alice@example.com", ip="127.0.0.1", with_name="ESMTPA",
            rcpt="bob@example.com") + b"Subject: hi\r\n"])

    def test_port_25_accepts_anonymous_and_auth(self):
        client = Client(make_factory(self.services), peer="127.0.0.1")
        client.ehlo()
        self.assertEqual(client.cmd(self.AUTH), ["235 Authentication successful"])
        self.assertEqual(client.cmd(b"MAIL FROM:<alice@example.com>"),
                         ["250 Sender address accepted"])


class PipeliningTests(SynchronousTestCase):
    """Replies in order even when a validator's answer is pending."""

    def setUp(self):
        self.services = services_for(self)

    def test_pending_directory(self):
        pending = PendingDirectory(self.services.directory)
        self.services.directory = pending
        client = Client(make_factory(self.services))
        client.ehlo()
        client.send(b"MAIL FROM:<bob@remote.example>\r\nRCPT TO:<alice@example.com>\r\n"
                    b"RCPT TO:<nobody@example.com>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\n"
                    b"QUIT\r\n")
        self.assertEqual(client.read(), ["250 Sender address accepted"])
        # A few held lines do not pause the transport (see the next test).
        self.assertEqual(client.transport.producerState, "producing")
        pending.release()
        self.assertEqual(client.read(), ["250 Recipient address accepted"])
        pending.release()
        self.assertEqual(client.read(), ["550 Error. User not found",
                                         "354 Start mail input; end with <CRLF>.<CRLF>",
                                         "250 OK. Mail received",
                                         "221 example.com closing connection"])
        self.assertEqual(client.transport.producerState, "producing")
        self.assertEqual(len(stored(self.services)), 1)

    def test_much_held_input_pauses_the_transport(self):
        from zwms.smtp import protocol as protocol_module
        pending = PendingDirectory(self.services.directory)
        self.services.directory = pending
        client = Client(make_factory(self.services))
        client.envelope()   # its RCPT waits for the directory
        noops = b"NOOP\r\n" * (protocol_module.HOLD_LIMIT // 6)
        client.send(noops)
        self.assertEqual(client.transport.producerState, "producing")
        client.send(b"NOOP\r\n")
        self.assertEqual(client.transport.producerState, "paused")
        self.assertEqual(client.read(), [])
        pending.release()
        self.assertEqual(client.transport.producerState, "producing")
        self.assertEqual(len(client.read()), 1 + len(noops) // 6 + 1)

    def test_pending_store(self):
        self.services.mail.pending = True
        client = Client(make_factory(self.services))
        client.envelope()
        client.cmd(b"DATA")
        client.send(b"Subject: slow\r\n.\r\nNOOP\r\nQUIT\r\n")
        # Nothing acknowledged before the store says it is on disk (S3).
        self.assertEqual(client.read(), [])
        self.assertEqual(stored(self.services), [])
        self.clock_idle(client)
        self.services.mail.release()
        self.assertEqual(client.read(), ["250 OK. Mail received", "250 OK",
                                         "221 example.com closing connection"])
        self.assertEqual(len(stored(self.services)), 1)

    def clock_idle(self, client):
        # The idle timer does not run while we are the slow side.
        self.services.clock.advance(10000)
        self.assertEqual(client.read(), [])
        self.assertFalse(client.closed)


class SizeLimitTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self, SMALL_CFG)
        self.client = Client(make_factory(self.services))
        self.client.ehlo()

    def test_size_parameter_over_limit(self):
        self.assertEqual(self.client.cmd(b"MAIL FROM:<bob@remote.example> SIZE=1025"),
                         [line(replies.OVER_WORK_SIZE)])
        self.assertEqual(self.services.logs.lines["MailServer"],
                         ["Mail receive but work limit <bob@remote.example> (SIZE=1025)"])
        self.assertEqual(self.client.cmd(b"MAIL FROM:<bob@remote.example> SIZE=1024"),
                         ["250 Sender address accepted"])

    def test_body_over_limit_swallowed_then_552(self):
        c = self.client
        c.cmd(b"MAIL FROM:<bob@remote.example>")
        c.cmd(b"RCPT TO:<alice@example.com>")
        c.cmd(b"DATA")
        c.send(b"Subject: big\r\n\r\n" + (b"x" * 100 + b"\r\n") * 20)
        c.send(b"MAIL FROM:<evil@remote.example>\r\n")
        self.assertEqual(c.read(), [])
        c.send(b".\r\n")
        self.assertEqual(c.read(), [line(replies.OVER_WORK_SIZE)])
        self.assertEqual(stored(self.services), [])
        self.assertEqual(self.services.logs.lines["MailServer"][-1],
                         "Mail receive but work limit (<bob@remote.example> -> "
                         "<alice@example.com>)")
        # The session goes on.
        c.envelope()
        self.assertEqual(c.data(b"Subject: small\r\n")[-1], "250 OK. Mail received")

    def test_exactly_at_limit_accepted(self):
        self.client.cmd(b"MAIL FROM:<bob@remote.example>")
        self.client.cmd(b"RCPT TO:<alice@example.com>")
        body = b"x" * 1022 + b"\r\n"
        self.assertEqual(self.client.data(body)[-1], "250 OK. Mail received")


class LimitTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)
        self.factory = make_factory(self.services)

    def test_too_many_recipients(self):
        client = Client(self.factory)
        client.protocol.max_recipients = 3
        client.envelope(b"<bob@remote.example>", *[b"<alice@example.com>"] * 3)
        self.assertEqual(client.cmd(b"RCPT TO:<bob@example.com>"),
                         [line(replies.TOO_MANY_RECIPIENTS)])
        self.assertEqual(client.data(b"Subject: x\r\n")[-1], "250 OK. Mail received")
        self.assertEqual(len(stored(self.services)), 1)

    def test_default_recipient_limit(self):
        client = Client(self.factory)
        self.assertEqual(client.protocol.max_recipients, 1000)
        client.envelope(b"<bob@remote.example>", *[b"<alice@example.com>"] * 1000)
        self.assertEqual(client.cmd(b"RCPT TO:<bob@example.com>"),
                         [line(replies.TOO_MANY_RECIPIENTS)])

    def test_too_many_bad_commands_closes(self):
        client = Client(self.factory)
        client.send(b"BOGUS\r\n" * 19)
        self.assertEqual(len(client.read()), 19)
        self.assertFalse(client.closed)
        client.send(b"BOGUS\r\nNOOP\r\n")
        self.assertEqual(client.read(), [line(replies.UNKNOWN_QUERY),
                                         "421 Error. Too many bad commands. Close session"])
        self.assertTrue(client.closed)

    def test_idle_timeout(self):
        client = Client(self.factory)
        self.services.clock.advance(299)
        client.cmd(b"NOOP")
        self.services.clock.advance(299)
        self.assertFalse(client.closed)
        self.services.clock.advance(1)
        self.assertEqual(client.read(), [line(replies.IDLE_TIMEOUT)])
        self.assertTrue(client.closed)

    def test_idle_timeout_inside_data_stores_nothing(self):
        client = Client(self.factory)
        client.envelope()
        client.cmd(b"DATA")
        client.send(b"Subject: half\r\n")
        self.services.clock.advance(300)
        self.assertEqual(client.read(), [line(replies.IDLE_TIMEOUT)])
        self.assertTrue(client.closed)
        self.assertEqual(stored(self.services), [])

    def test_any_421_closes(self):
        # A refusal carrying 421 (as the §36 spam replies will) closes.
        from zwms.errors import Reply

        def refuse(address):
            raise Reply(*replies.LOOKS_SPAM)
        self.services.directory.resolve = refuse
        client = Client(self.factory)
        client.envelope(b"<bob@remote.example>")
        self.assertEqual(client.read(), [])
        self.assertTrue(client.closed)


class ErrorHandlingTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)
        self.client = Client(make_factory(self.services))

    def test_unexpected_validator_error_is_451(self):
        def broken(address):
            raise RuntimeError("disk on fire")
        self.services.directory.resolve = broken
        lines = self.client.envelope()
        self.assertEqual(lines[-1], line(replies.TEMPORARY_FAILURE))
        self.assertEqual(self.services.logs.lines["SystemError"],
                         ["SMTP error: RuntimeError: disk on fire"])
        self.assertFalse(self.client.closed)

    def test_storage_failure_is_451_never_5xx(self):
        self.services.mail.fail_next = OSError("No space left on device")
        self.client.envelope()
        self.assertEqual(self.client.data(b"Subject: x\r\n")[-1], line(replies.TEMPORARY_FAILURE))
        self.assertEqual(stored(self.services), [])
        error = self.services.logs.lines["SystemError"]
        self.assertEqual(len(error), 1)
        self.assertIn("No space left on device", error[0])
        self.assertNotIn("Mail receive success",
                         " ".join(self.services.logs.lines["MailServer"]))
        # The client may retry at once.
        self.assertEqual(self.client.data(b"")[0], "503 Error. Need MAIL command")

    def test_store_failure_while_pending(self):
        self.services.mail.pending = True
        self.client.envelope()
        self.client.cmd(b"DATA")
        self.client.send(b"Subject: x\r\n.\r\nNOOP\r\n")
        waiting = self.services.mail._waiting.pop()
        waiting[0].errback(OSError("EIO"))
        self.assertEqual(self.client.read(), [line(replies.TEMPORARY_FAILURE), "250 OK"])

    def test_auth_in_data_mode_is_body(self):
        # AUTH or STARTTLS lines inside DATA are message text.
        self.client.envelope()
        self.client.data(b"STARTTLS\r\nAUTH PLAIN x\r\n")
        self.assertIsNone(self.client.transport.tls_context)
        self.assertTrue(stored(self.services)[0].endswith(b"STARTTLS\r\nAUTH PLAIN x\r\n"))


class ShutdownTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)
        self.factory = make_factory(self.services)

    def test_idle_sessions_closed_new_ones_refused(self):
        idle = Client(self.factory)
        done = self.factory.stop_accepting()
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(idle.read(), [line(replies.SHUTTING_DOWN)])
        self.assertTrue(idle.closed)
        late = Client(self.factory)
        self.assertEqual(late.greeting, [line(replies.SHUTTING_DOWN)])
        self.assertTrue(late.closed)

    def test_pending_store_write_finishes_first(self):
        self.services.mail.pending = True
        client = Client(self.factory)
        client.envelope()
        client.cmd(b"DATA")
        client.send(b"Subject: last\r\n.\r\nMAIL FROM:<bob@remote.example>\r\n")
        done = self.factory.stop_accepting()
        self.assertNoResult(done)
        self.assertEqual(client.read(), [])
        self.services.mail.release()
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(client.read(), ["250 OK. Mail received", line(replies.SHUTTING_DOWN)])
        self.assertTrue(client.closed)
        self.assertEqual(len(stored(self.services)), 1)

    def test_transfer_in_progress_is_dropped_unacknowledged(self):
        client = Client(self.factory)
        client.envelope()
        client.cmd(b"DATA")
        client.send(b"Subject: half\r\n")
        self.successResultOf(self.factory.stop_accepting())
        self.assertEqual(client.read(), [line(replies.SHUTTING_DOWN)])
        self.assertEqual(stored(self.services), [])

    def test_connection_lost_forgets_session(self):
        client = Client(self.factory)
        self.assertIn(client.protocol, self.factory.connections)
        client.protocol.connectionLost(None)
        self.assertNotIn(client.protocol, self.factory.connections)


class ResolutionShapeTests(SynchronousTestCase):
    """The protocol copes with every Resolution kind a directory returns."""

    def test_local_without_accounts(self):
        services = services_for(self)
        services.directory.resolve = lambda address: Resolution("local")
        client = Client(make_factory(services))
        self.assertEqual(client.envelope()[-1], "550 Error. User not found")
        self.assertEqual(services.logs.lines["MailServer"][-1],
                         "Receiver not defined <alice@example.com>")


class DataChunkTests(SynchronousTestCase):
    """
    Issue 8: DATA is taken in chunks (up to CRLF.CRLF or the last complete
    line), dot-unstuffed over the whole chunk; the result must be the same
    bytes, however the client's bytes are cut into reads.
    """

    BODY = (b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            b"Subject: chunks\r\n\r\n"
            b".starts with a dot\r\n..two dots\r\n...\r\n.\tx\r\nplain\r\n"
            b"bare\nlf.\n.\r\rcr\r\n\r\n.. \r\nend\r\n")

    def unstuffed(self, body):
        return CRLF.join(x[1:] if x[:1] == b"." else x for x in body.split(CRLF))

    def session(self):
        services = services_for(self)
        client = Client(make_factory(services))
        client.envelope()
        self.assertEqual(client.cmd(b"DATA"), ["354 Start mail input; end with <CRLF>.<CRLF>"])
        return services, client

    def test_every_cut_gives_the_same_message(self):
        wire = self.BODY + b".\r\nNOOP\r\n"
        for cut in range(1, len(wire)):
            services, client = self.session()
            client.send(wire[:cut])
            client.send(wire[cut:])
            self.assertEqual(client.read(), ["250 OK. Mail received", "250 OK"], cut)
            self.assertEqual(stored(services),
                             [expected_head(services) + self.unstuffed(self.BODY)], cut)

    def test_one_read_with_the_next_transaction(self):
        services, client = self.session()
        client.send(self.BODY + b".\r\nMAIL FROM:<bob@remote.example>\r\n"
                    b"RCPT TO:<alice@example.com>\r\nDATA\r\nSubject: 2\r\n\r\n.x\r\n.\r\n")
        self.assertEqual(client.read(), [
            "250 OK. Mail received", "250 Sender address accepted",
            "250 Recipient address accepted", "354 Start mail input; end with <CRLF>.<CRLF>",
            "250 OK. Mail received"])
        self.assertEqual(stored(services), [
            expected_head(services) + self.unstuffed(self.BODY),
            expected_head(services) + b"Subject: 2\r\n\r\nx\r\n"])

    def test_empty_message(self):
        services, client = self.session()
        client.send(b".\r\n")
        self.assertEqual(client.read(), ["250 OK. Mail received"])
        self.assertEqual(stored(services), [expected_head(services)])

    def test_long_line_inside_a_big_read_closes(self):
        services, client = self.session()
        client.send(b"Subject: x\r\n\r\n" + b"ok\r\n" * 20000 + b"A" * 70000 + b"\r\n"
                    + b"ok\r\n.\r\nMAIL FROM:<a@remote.example>\r\n")
        self.assertEqual(client.read(), ["500 Error. Line too long"])
        self.assertTrue(client.closed)
        self.assertEqual(stored(services), [])
        self.assertIn("Line too long (70000 bytes), session closed",
                      services.logs.lines["MailServer"])

    def test_many_lines_of_64k_in_one_read_are_accepted(self):
        services, client = self.session()
        line = b"B" * (64 * 1024)
        client.send(b"Subject: x\r\n\r\n" + (line + b"\r\n") * 3 + b".\r\n")
        self.assertEqual(client.read(), ["250 OK. Mail received"])
        self.assertTrue(stored(services)[0].endswith((line + b"\r\n") * 3))

    def test_hops_counted_across_reads(self):
        services, client = self.session()
        hop = b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        for _ in range(51):
            client.send(hop)
        client.send(b"\r\nbody\r\n.\r\n")
        self.assertEqual(client.read(), ["554 Error. Too many hops. Mail loop detected"])
        self.assertEqual(stored(services), [])

    def test_received_in_the_body_is_not_a_hop(self):
        services, client = self.session()
        hop = b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        client.send(b"Subject: x\r\n\r\n" + hop * 60 + b".\r\n")
        self.assertEqual(client.read(), ["250 OK. Mail received"])

    def test_idle_timer_restarts_on_each_read(self):
        services, client = self.session()
        for _ in range(3):
            services.clock.advance(299)
            client.send(b"more text\r\n")
        self.assertFalse(client.closed)
        services.clock.advance(300)
        self.assertTrue(client.closed)
        self.assertEqual(stored(services), [])


class LineOverTests(SynchronousTestCase):
    """The long-line check of DATA chunks against the plain split."""

    def check(self, chunk, limit):
        from zwms.smtp.protocol import _line_over
        lines = chunk.split(b"\r\n")
        expected = max(lines, key=len) if max(map(len, lines)) > limit else None
        self.assertEqual(_line_over(chunk, limit), expected, (len(chunk), limit))

    def test_every_length_and_place(self):
        limit = 20
        for before in range(0, 45, 3):
            for length in range(limit - 3, limit + 4):
                for after in (0, 1, 7, 30):
                    chunk = (b"ab\r\n" * before + b"x" * length + b"\r\n"
                             + b"\r\n" * after)
                    self.check(chunk, limit)
                    self.check(b"y" * before + b"\r\n" + chunk, limit)
                    # Bare CR and LF do not end lines.
                    self.check(chunk.replace(b"x" * 3, b"\r\n\n", 1).replace(b"\n\n", b"\r\r"),
                               limit)
