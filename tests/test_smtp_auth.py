"""
SMTP AUTH (SPEC S6, S7; seed §36 [수신] 1): PLAIN and LOGIN over the
account store, the nine "Auth required but ..." lines with exactly
"535 authorization failed", "Auth is accepted" on success, and malformed
exchanges answered without dropping the connection.
"""

from base64 import b64encode

from twisted.cred import credentials, error
from twisted.internet import defer
from twisted.mail import smtp
from twisted.trial.unittest import SynchronousTestCase

from tests.test_smtp_support import Client, make_factory, services_for, stored
from zwms.smtp.auth import AccountChecker, make_portal
from zwms.smtp.factory import SMTPFactory

FAILED = ["535 authorization failed"]
OK = ["235 Authentication successful"]


def plain(user, password, authz=b""):
    return b"AUTH PLAIN " + b64encode(authz + b"\0" + user + b"\0" + password)


class Base(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)
        self.factory = make_factory(self.services)
        self.client = Client(self.factory, peer="127.0.0.1")
        self.client.ehlo()

    @property
    def log(self):
        return self.services.logs.lines["MailServer"]


class NineLinesTests(Base):
    """Each §36 refusal: one exact log line and the exact 535."""

    def check(self, command, log_line, *more):
        for extra in more:
            self.assertEqual(self.client.cmd(extra)[0][:3], "334")
        self.assertEqual(self.client.cmd(command), FAILED)
        self.assertEqual(self.log, [log_line])
        self.assertFalse(self.client.protocol.authenticated)
        self.assertFalse(self.client.closed)

    def test_null_user(self):
        self.check(plain(b"", b"pw"), "Auth required but null user")

    def test_cannot_convert_username_base64(self):
        self.check(b"AUTH PLAIN %%%notbase64", "Auth required but cannot convert username")

    def test_cannot_convert_username_utf8(self):
        self.check(plain(b"\xff\xfeal", b"pw"), "Auth required but cannot convert username")

    def test_cannot_convert_username_login(self):
        self.check(b"***", "Auth required but cannot convert username", b"AUTH LOGIN")

    def test_unknown_user(self):
        self.check(plain(b"nobody", b"pw"), "Auth required but unknown user <nobody>")

    def test_invalid_user(self):
        self.check(plain(b"nobody@example.com", b"pw"),
                   "Auth required but invalid user <nobody@example.com>")

    def test_null_password(self):
        self.check(plain(b"alice", b""), "Auth required but null password <alice>")

    def test_cannot_convert_password_utf8(self):
        self.check(plain(b"alice", b"\xc3\x28"),
                   "Auth required but cannot convert password <alice>")

    def test_cannot_convert_password_login(self):
        self.check(b"not base64!", "Auth required but cannot convert password",
                   b"AUTH LOGIN", b64encode(b"alice"))

    def test_locked_user(self):
        self.services.accounts.set("alice", "locked", "1")
        self.check(plain(b"alice", b"alice-pw"), "Auth required but locked user <alice>")

    def test_disallowed_user(self):
        self.services.accounts.set("alice", "relay", "0")
        self.check(plain(b"alice", b"alice-pw"), "Auth required but disallowed user <alice>")

    def test_invalid_password(self):
        self.check(plain(b"alice", b"wrong"), "Auth required but invalid password <alice>")


class AcceptedTests(Base):
    def test_plain_with_initial_response(self):
        self.assertEqual(self.client.cmd(plain(b"alice", b"alice-pw")), OK)
        self.assertEqual(self.log, ["Auth is accepted <alice> (alice)"])
        self.assertEqual(self.client.protocol.account_id, "alice")

    def test_plain_with_authzid_and_address_login(self):
        self.assertEqual(self.client.cmd(plain(b"Alice@Example.com", b"alice-pw", b"x")), OK)
        self.assertEqual(self.log, ["Auth is accepted <Alice@Example.com> (alice)"])

    def test_plain_challenge(self):
        self.assertEqual(self.client.cmd(b"AUTH PLAIN"), ["334 "])
        self.assertEqual(self.client.cmd(b64encode(b"\0bob\0bob-pw")), OK)

    def test_login_challenges(self):
        self.assertEqual(self.client.cmd(b"AUTH LOGIN"), ["334 VXNlcm5hbWU6"])  # Username:
        self.assertEqual(self.client.cmd(b64encode(b"bob")), ["334 UGFzc3dvcmQ6"])  # Password:
        self.assertEqual(self.client.cmd(b64encode(b"bob-pw")), OK)

    def test_login_with_initial_response(self):
        self.assertEqual(self.client.cmd(b"AUTH LOGIN " + b64encode(b"bob")),
                         ["334 UGFzc3dvcmQ6"])
        self.assertEqual(self.client.cmd(b64encode(b"bob-pw")), OK)

    def test_korean_password(self):
        self.services.accounts.set("bob", "password", "비밀번호")
        self.assertEqual(self.client.cmd(plain(b"bob", "비밀번호".encode("utf-8"))), OK)

    def test_passwords_never_logged(self):
        self.client.cmd(plain(b"alice", b"wrong-secret"))
        self.client.cmd(plain(b"alice", b"alice-pw"))
        text = " ".join(line for lines in self.services.logs.lines.values() for line in lines)
        self.assertNotIn("secret", text)
        self.assertNotIn("alice-pw", text)


class MalformedTests(Base):
    def test_plain_without_two_nuls(self):
        self.assertEqual(self.client.cmd(b"AUTH PLAIN " + b64encode(b"alice\0alice-pw")),
                         ["501 Error. Malformed authentication response"])
        self.assertEqual(self.client.cmd(b"AUTH PLAIN ="),
                         ["501 Error. Malformed authentication response"])
        self.assertEqual(self.log, ["Auth required but cannot convert username "
                                    "(malformed response)"] * 2)
        self.assertFalse(self.client.closed)
        self.assertEqual(self.client.cmd(plain(b"alice", b"alice-pw")), OK)

    def test_abort(self):
        self.client.cmd(b"AUTH LOGIN")
        self.assertEqual(self.client.cmd(b"*"), ["501 Error. Authentication aborted"])
        self.assertEqual(self.client.cmd(b"NOOP"), ["250 OK"])

    def test_unknown_mechanism(self):
        self.assertEqual(self.client.cmd(b"AUTH CRAM-MD5"),
                         ["504 Error. Unrecognized authentication type"])
        self.assertEqual(self.client.cmd(b"AUTH"),
                         ["501 Error. Syntax: AUTH mechanism [initial-response]"])

    def test_sequence(self):
        fresh = Client(self.factory, peer="127.0.0.1")
        self.assertEqual(fresh.cmd(plain(b"alice", b"alice-pw")),
                         ["503 Error. Send HELO or EHLO first"])
        self.client.cmd(b"MAIL FROM:<bob@remote.example>")
        self.assertEqual(self.client.cmd(plain(b"alice", b"alice-pw")),
                         ["503 Error. AUTH not allowed during a mail transaction"])
        self.client.cmd(b"RSET")
        self.assertEqual(self.client.cmd(plain(b"alice", b"alice-pw")), OK)
        self.assertEqual(self.client.cmd(plain(b"alice", b"alice-pw")),
                         ["503 Error. Already authenticated"])

    def test_guessing_closes_after_twenty_failures(self):
        for i in range(19):
            self.assertEqual(self.client.cmd(plain(b"alice", b"guess%d" % i)), FAILED)
        self.assertEqual(self.client.cmd(plain(b"alice", b"guess")),
                         FAILED + ["421 Error. Too many bad commands. Close session"])
        self.assertTrue(self.client.closed)

    def test_checker_crash_is_temporary(self):
        def broken(login):
            raise RuntimeError("directory down")
        self.services.directory.login_account = broken
        self.assertEqual(self.client.cmd(plain(b"alice", b"alice-pw")),
                         ["454 Error. Temporary authentication failure. Try again"])
        self.assertEqual(self.services.logs.lines["SystemError"],
                         ["SMTP AUTH error: RuntimeError: directory down"])


class ThreadRunnerTests(SynchronousTestCase):
    """The password check runs through the injected thread runner."""

    def setUp(self):
        self.services = services_for(self)
        self.calls = []
        self.pending = []

        def runner(f, *args):
            self.calls.append((f, args))
            d = defer.Deferred()
            self.pending.append((d, f, args))
            return d

        self.factory = SMTPFactory(self.services, "submission", tls_context=object(),
                                   run_in_thread=runner)

    def test_pending_check_keeps_replies_in_order(self):
        client = Client(self.factory, peer="127.0.0.1")
        client.ehlo()
        client.send(plain(b"alice", b"alice-pw") + b"\r\nMAIL FROM:<alice@example.com>\r\n")
        self.assertEqual(client.read(), [])
        self.assertEqual(self.calls, [(self.services.accounts.check_password,
                                       ("alice", "alice-pw"))])
        d, f, args = self.pending.pop()
        d.callback(f(*args))
        self.assertEqual(client.read(), OK + ["250 Sender address accepted"])

    def test_default_runner_is_defer_to_thread(self):
        from twisted.internet import threads
        checker = AccountChecker(self.services)
        self.assertIs(checker.run_in_thread, threads.deferToThread)


class PortalTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)

    def login(self, mode, creds):
        portal = make_portal(self.services, mode, run_in_thread=lambda f, *a: defer.succeed(f(*a)))
        return portal.login(creds, None, smtp.IMessageDelivery)

    def test_port_25_lets_anonymous_in(self):
        iface, avatar, logout = self.successResultOf(
            self.login("smtp", credentials.Anonymous()))
        self.assertIs(iface, smtp.IMessageDelivery)
        self.assertIsNone(avatar.account_id)

    def test_submission_and_smtps_do_not(self):
        for mode in ("submission", "smtps"):
            self.failureResultOf(self.login(mode, credentials.Anonymous()),
                                 error.UnhandledCredentials)

    def test_authenticated_avatar(self):
        iface, avatar, logout = self.successResultOf(
            self.login("submission", credentials.UsernamePassword(b"bob", b"bob-pw")))
        self.assertEqual(avatar.account_id, "bob")
        self.failureResultOf(
            self.login("submission", credentials.UsernamePassword(b"bob", b"nope")),
            error.UnauthorizedLogin)

    def test_unknown_mode(self):
        self.assertRaises(ValueError, make_portal, self.services, "pop3")


class SendingLimitTests(SynchronousTestCase):
    """The authenticated account's own limits (SPEC S7, seed §16)."""

    def setUp(self):
        self.services = services_for(self)
        self.client = Client(make_factory(self.services, mode="submission"), peer="127.0.0.1")
        self.client.ehlo()
        self.client.cmd(plain(b"alice", b"alice-pw"))

    def test_rcptlimit(self):
        self.services.accounts.set("alice", "rcptlimit", "2")
        lines = self.client.envelope(b"<alice@example.com>", b"<bob@example.com>",
                                     b"<alice@example.com>", b"<bob@example.com>",
                                     b"<alice@example.com>")
        self.assertEqual(lines[-4:], ["250 Recipient address accepted"] * 2
                         + ["452 Error. Too many recipients"] * 2)

    def test_sendsize_at_mail_and_in_data(self):
        self.services.accounts.set("alice", "sendsize", "100")
        self.assertEqual(self.client.cmd(b"MAIL FROM:<alice@example.com> SIZE=101"),
                         ["552 Error. Mail size over max system work size"])
        self.assertEqual(self.services.logs.lines["MailServer"][-1],
                         "Mail receive but work limit <alice@example.com> (SIZE=101)")
        self.client.cmd(b"MAIL FROM:<alice@example.com> SIZE=100")
        self.client.cmd(b"RCPT TO:<bob@example.com>")
        self.assertEqual(self.client.data(b"x" * 120 + b"\r\n")[-1],
                         "552 Error. Mail size over max system work size")
        self.assertEqual(stored(self.services, "bob"), [])

    def test_limits_apply_from_the_next_mail(self):
        self.client.envelope(b"<alice@example.com>", b"<bob@example.com>")
        self.services.accounts.set("alice", "rcptlimit", "1")
        self.assertEqual(self.client.cmd(b"RCPT TO:<alice@example.com>"),
                         ["250 Recipient address accepted"])
        self.client.cmd(b"RSET")
        lines = self.client.envelope(b"<alice@example.com>", b"<bob@example.com>",
                                     b"<alice@example.com>")
        self.assertEqual(lines[-1], "452 Error. Too many recipients")

    def test_locked_after_auth(self):
        self.services.accounts.set("alice", "locked", "1")
        self.assertEqual(self.client.cmd(b"MAIL FROM:<alice@example.com>"),
                         ["450 Error. User account is locked. Try again"])
        self.assertEqual(self.services.logs.lines["MailServer"][-1],
                         "Auth required but locked user <alice>")
