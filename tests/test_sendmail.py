"""
zwms-sendmail and zwms-mail (SPEC §0; seed §33, §34), run in-process with a
fake stdin: against a small threaded SMTP server on 127.0.0.1 named in
run/listen, and with no server at all (direct delivery into the file store).
"""

import email
import io
import os
import socket
import threading
import time
from email.header import decode_header, make_header
from email.policy import default as default_policy

from twisted.internet import defer, reactor, task, threads
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.helpers import make_services
from zwms.scripts import handoff, mail, sendmail

DOMAIN = "example.com"


class FakeSMTP:
    """
    A minimal SMTP server in a thread, recording each finished transaction
    as a dict (sender, recipients, options, data).  C{refuse} maps an
    address to the (code, text) its RCPT gets.  Every loop is bounded and
    every socket closed by stop().
    """

    def __init__(self, refuse=None, data_reply=(250, "ok queued"), greeting="220 fake ESMTP"):
        self.refuse = dict(refuse or {})
        self.greeting = greeting
        self.data_reply = data_reply
        self.transactions = []
        self.commands = []
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def stop(self):
        self._stop.set()
        self.thread.join(10)
        self.sock.close()

    def _serve(self):
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    self._session(conn)
                except OSError:
                    pass

    def _session(self, conn):
        reader = conn.makefile("rb")
        try:
            self._dialogue(conn, reader)
        finally:
            reader.close()

    def _dialogue(self, conn, reader):
        def send(text):
            conn.sendall(text.encode("ascii") + b"\r\n")

        send(self.greeting)
        if not self.greeting.startswith("220"):
            return
        sender, rcpts, options = None, [], []
        for _ in range(1000):
            line = reader.readline(100000)
            if not line:
                return
            command = line.rstrip(b"\r\n").decode("ascii", "replace")
            self.commands.append(command)
            verb = command[:4].upper()
            if verb == "EHLO":
                send("250-fake\r\n250-SIZE 10000000\r\n250-8BITMIME\r\n250 PIPELINING")
            elif verb == "HELO":
                send("250 fake")
            elif verb == "MAIL":
                rest = command[10:].strip()
                sender = rest[rest.index("<") + 1:rest.index(">")]
                options = rest[rest.index(">") + 1:].split()
                rcpts = []
                send("250 sender ok")
            elif verb == "RCPT":
                rest = command[8:].strip()
                addr = rest[rest.index("<") + 1:rest.index(">")]
                if addr in self.refuse:
                    send("%d %s" % self.refuse[addr])
                else:
                    rcpts.append(addr)
                    send("250 recipient ok")
            elif verb == "DATA":
                send("354 go ahead")
                lines = []
                for _ in range(100000):
                    data_line = reader.readline(100000)
                    if data_line in (b".\r\n", b""):
                        break
                    if data_line.startswith(b"."):
                        data_line = data_line[1:]
                    lines.append(data_line)
                self.transactions.append({"sender": sender, "recipients": rcpts,
                                          "options": options, "data": b"".join(lines)})
                send("%d %s" % self.data_reply)
            elif verb == "RSET":
                sender, rcpts = None, []
                send("250 reset")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("500 what")


def closed_port():
    """A loopback port nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Base(SynchronousTestCase):
    """A home with DOMAIN set; helpers to run the commands."""

    def setUp(self):
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.home, "data"))
        os.makedirs(os.path.join(self.home, "run"))
        with open(os.path.join(self.home, "data", "env.cfg"), "w") as f:
            f.write("DOMAIN=%s\n" % DOMAIN)
        self.patch(handoff, "invoking_user", lambda: "alice")

    def listen(self, text):
        with open(os.path.join(self.home, "run", "listen"), "w") as f:
            f.write(text)

    def start_server(self, **kwargs):
        server = FakeSMTP(**kwargs)
        self.addCleanup(server.stop)
        self.listen("smtp 127.0.0.1:%d\n" % server.port)
        return server

    def run_command(self, module, args, data):
        err = io.StringIO()
        self.patch(handoff.sys, "stderr", err)
        status = module.main(["--home", self.home] + list(args), io.BytesIO(data))
        return status, err.getvalue()

    def sendmail(self, args, data=b""):
        return self.run_command(sendmail, args, data)

    def mail(self, args, data=b""):
        return self.run_command(mail, args, data)


MESSAGE = (b"From: Bob <bob@example.com>\n"
           b"To: carol@example.com\n"
           b"Subject: hello\n"
           b"\n"
           b"line one\n"
           b"line two\n")


class SendmailOverSMTPTests(Base):
    """zwms-sendmail handing mail to a server found in run/listen."""

    def test_envelope_from_arguments(self):
        server = self.start_server()
        status, err = self.sendmail(["-f", "bob@example.com", "carol@example.com",
                                     "dave@remote.test"], MESSAGE)
        self.assertEqual((status, err), (0, ""))
        [t] = server.transactions
        self.assertEqual(t["sender"], "bob@example.com")
        self.assertEqual(t["recipients"], ["carol@example.com", "dave@remote.test"])
        # The given lines arrive as given (CRLF), Date and Message-ID added.
        self.assertTrue(t["data"].startswith(MESSAGE.split(b"\n\n")[0].replace(b"\n", b"\r\n")))
        self.assertTrue(t["data"].endswith(b"\r\n\r\nline one\r\nline two\r\n"))
        parsed = email.message_from_bytes(t["data"], policy=default_policy)
        self.assertTrue(parsed["Date"])
        self.assertTrue(parsed["Message-ID"].endswith("@%s>" % DOMAIN))
        self.assertEqual(len(parsed.get_all("From")), 1)
        self.assertIn("SIZE=%d" % len(t["data"]), t["options"])

    def test_default_sender_and_bare_names(self):
        server = self.start_server()
        status, err = self.sendmail(["root"], b"Subject: x\n\nbody\n")
        self.assertEqual((status, err), (0, ""))
        [t] = server.transactions
        self.assertEqual(t["sender"], "alice@%s" % DOMAIN)
        self.assertEqual(t["recipients"], ["root@%s" % DOMAIN])
        self.assertIn(b"From: alice@%s\r\n" % DOMAIN.encode(), t["data"])

    def test_t_reads_headers_and_removes_bcc(self):
        server = self.start_server()
        data = (b"From: bob@example.com\n"
                b"To: Carol <carol@example.com>, dave@remote.test\n"
                b"Cc: \"Eve, E.\" <eve@example.com>\n"
                b"Bcc: secret@example.com,\n"
                b"  hidden@remote.test\n"
                b"Subject: t\n"
                b"\n"
                b"Bcc: this body line stays\n")
        status, err = self.sendmail(["-t", "-i", "extra@example.com"], data)
        self.assertEqual((status, err), (0, ""))
        [t] = server.transactions
        self.assertEqual(t["recipients"], ["extra@example.com", "carol@example.com",
                                           "dave@remote.test", "eve@example.com",
                                           "secret@example.com", "hidden@remote.test"])
        head, _, body = t["data"].partition(b"\r\n\r\n")
        self.assertNotIn(b"Bcc", head)
        self.assertNotIn(b"hidden", head)
        self.assertIn(b"To: Carol <carol@example.com>, dave@remote.test\r\n", head)
        self.assertEqual(body, b"Bcc: this body line stays\r\n")

    def test_t_without_recipients_is_usage_error(self):
        server = self.start_server()
        status, err = self.sendmail(["-t"], b"Subject: nobody\n\nx\n")
        self.assertEqual(status, 64)
        self.assertIn("no recipients", err)
        self.assertEqual(server.transactions, [])

    def test_lone_dot_ends_input_without_i(self):
        server = self.start_server()
        data = b"Subject: dots\n\nfirst\n.hidden dot\n..two\n.\nafter the end\n"
        status, _ = self.sendmail(["carol@example.com"], data)
        self.assertEqual(status, 0)
        body = server.transactions[0]["data"].partition(b"\r\n\r\n")[2]
        self.assertEqual(body, b"first\r\n.hidden dot\r\n..two\r\n")

    def test_i_and_oi_keep_lone_dot(self):
        server = self.start_server()
        data = b"Subject: dots\n\nfirst\n.\nafter\n"
        for flag in ("-i", "-oi"):
            status, _ = self.sendmail([flag, "carol@example.com"], data)
            self.assertEqual(status, 0)
        for t in server.transactions:
            self.assertEqual(t["data"].partition(b"\r\n\r\n")[2], b"first\r\n.\r\nafter\r\n")
        self.assertEqual(len(server.transactions), 2)

    def test_F_adds_from_only_when_missing(self):
        server = self.start_server()
        status, _ = self.sendmail(["-f", "bob@example.com", "-F", "홍길동",
                                   "carol@example.com"], b"Subject: x\n\nhi\n")
        self.assertEqual(status, 0)
        status, _ = self.sendmail(["-f", "bob@example.com", "-F", "Ignored",
                                   "carol@example.com"], MESSAGE)
        self.assertEqual(status, 0)
        first, second = [email.message_from_bytes(t["data"], policy=default_policy)
                         for t in server.transactions]
        self.assertEqual(first["From"].addresses[0].display_name, "홍길동")
        self.assertEqual(first["From"].addresses[0].addr_spec, "bob@example.com")
        self.assertNotIn(b"\xed", server.transactions[0]["data"].partition(b"\r\n\r\n")[0])
        self.assertEqual(second.get_all("From"), ["Bob <bob@example.com>"])

    def test_no_header_injection_from_arguments(self):
        server = self.start_server()
        status, _ = self.sendmail(["-F", "Eve\r\nBcc: victim@remote.test", "-f",
                                   "eve@example.com", "carol@example.com"], b"Subject: x\n\ny")
        self.assertEqual(status, 0)
        status, _ = self.mail(["-r", "Eve\r\nSmith <eve@example.com>",
                               "-s", "hi\nBcc: victim@remote.test", "carol@example.com"], b"y")
        self.assertEqual(status, 0)
        for t in server.transactions:
            head = t["data"].partition(b"\r\n\r\n")[0]
            self.assertFalse(any(line.startswith(b"Bcc") for line in head.split(b"\r\n")),
                             head)
            self.assertEqual(t["recipients"], ["carol@example.com"])
            self.assertTrue(t["data"].endswith(b"\r\n\r\ny\r\n"))
        self.assertIn(b"From: Eve Smith <eve@example.com>\r\n", server.transactions[1]["data"])
        status, err = self.mail(["-r", "Eve\nBcc: victim@remote.test <eve@example.com>",
                                 "carol@example.com"], b"y")
        self.assertEqual(status, 64, err)
        self.assertEqual(len(server.transactions), 2)

    def test_body_without_headers(self):
        server = self.start_server()
        status, _ = self.sendmail(["carol@example.com"], b"just a line\nand another\n")
        self.assertEqual(status, 0)
        head, _, body = server.transactions[0]["data"].partition(b"\r\n\r\n")
        self.assertIn(b"From: alice@example.com", head)
        self.assertEqual(body, b"just a line\r\nand another\r\n")

    def test_empty_stdin_is_allowed(self):
        server = self.start_server()
        status, err = self.sendmail(["carol@example.com"], b"")
        self.assertEqual((status, err), (0, ""))
        parsed = email.message_from_bytes(server.transactions[0]["data"], policy=default_policy)
        self.assertEqual(parsed.get_content().strip(), "")

    def test_harmless_flags_are_ignored(self):
        server = self.start_server()
        status, err = self.sendmail(["-odi", "-oem", "-bm", "-v", "-ti", "-B", "8BITMIME",
                                     "carol@example.com"], b"To: dave@remote.test\n\nx\n")
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(server.transactions[0]["recipients"],
                         ["carol@example.com", "dave@remote.test"])

    def test_refused_recipient_sends_nothing(self):
        server = self.start_server(refuse={"nobody@example.com": (550, "Error. User not found")})
        status, err = self.sendmail(["carol@example.com", "nobody@example.com"], MESSAGE)
        self.assertEqual(status, 1)
        self.assertIn("<nobody@example.com>: 550 Error. User not found", err)
        self.assertIn("nothing was sent", err)
        self.assertEqual(server.transactions, [])
        self.assertIn("rset", server.commands)

    def test_temporary_refusal_is_75(self):
        server = self.start_server(refuse={
            "locked@example.com": (450, "Error. User account is locked. Try again")})
        status, err = self.sendmail(["locked@example.com"], MESSAGE)
        self.assertEqual(status, 75)
        self.assertIn("<locked@example.com>: 450 Error. User account is locked. Try again", err)
        self.assertEqual(server.transactions, [])

    def test_mixed_refusals_are_permanent(self):
        self.start_server(refuse={"a@example.com": (450, "later"),
                                  "b@example.com": (550, "never")})
        status, err = self.sendmail(["a@example.com", "b@example.com"], MESSAGE)
        self.assertEqual(status, 1)
        self.assertIn("<a@example.com>: 450 later", err)
        self.assertIn("<b@example.com>: 550 never", err)

    def test_refused_data(self):
        self.start_server(data_reply=(552, "Error. Mail size over max system work size"))
        status, err = self.sendmail(["carol@example.com"], MESSAGE)
        self.assertEqual(status, 1)
        self.assertIn("552 Error. Mail size over max system work size", err)

    def test_greeting_refusal(self):
        server = self.start_server(greeting="421 Service shutting down. Close session")
        status, err = self.sendmail(["carol@example.com"], MESSAGE)
        self.assertEqual(status, 75)
        self.assertIn("refused the connection: 421 Service shutting down. Close session", err)
        self.assertEqual(server.transactions, [])

    def test_smtp_listener_preferred_and_dead_one_skipped(self):
        server = FakeSMTP()
        self.addCleanup(server.stop)
        other = FakeSMTP()
        self.addCleanup(other.stop)
        self.listen("web 127.0.0.1:9005\nsubmission 0.0.0.0:%d\nsmtp 127.0.0.1:%d\n"
                    "smtp 127.0.0.1:%d\n" % (other.port, closed_port(), server.port))
        status, _ = self.sendmail(["carol@example.com"], MESSAGE)
        self.assertEqual(status, 0)
        self.assertEqual(len(server.transactions), 1)
        self.assertEqual(other.transactions, [])


class SendmailUsageTests(Base):
    """Bad command lines and addresses: a clear message and 64, no traceback."""

    def test_bad_input(self):
        self.listen("smtp 127.0.0.1:%d\n" % closed_port())
        cases = [
            (["-Z", "a@example.com"], "unknown option -Z"),
            (["--frobnicate", "a@example.com"], "unknown option --frobnicate"),
            (["-bs"], "unsupported mode -bs"),
            (["-oZ", "a@example.com"], "unsupported option -oZ"),
            (["a@example.com", "-f"], "option -f needs a value"),
            (["bad@@address"], "bad address"),
            (["a@b c@d"], "bad address"),
            (["-f", "not an address", "a@example.com"], "bad sender address"),
            ([], "no recipients given"),
        ]
        for args, message in cases:
            status, err = self.sendmail(args, MESSAGE)
            self.assertEqual(status, 64, (args, err))
            self.assertIn(message, err)
            self.assertNotIn("Traceback", err)
            self.assertTrue(err.startswith("zwms-sendmail: "), err)

    def test_missing_mailing_list_refused(self):
        # data/staff.list does not exist (lists themselves: tests/test_lists_sendmail.py)
        status, err = self.sendmail(["(staff)"], MESSAGE)
        self.assertEqual(status, 1)
        self.assertIn("<(staff)>: 550 Error. User not found", err)
        status, err = self.sendmail(["-t"], b"To: (staff)\n\nx\n")
        self.assertEqual(status, 1)

    def test_null_sender(self):
        server = self.start_server()
        status, _ = self.sendmail(["-f", "<>", "carol@example.com"], b"Subject: x\n\ny\n")
        self.assertEqual(status, 0)
        self.assertEqual(server.transactions[0]["sender"], "")
        self.assertIn(b"From: alice@example.com", server.transactions[0]["data"])


class ListenFileTests(SynchronousTestCase):
    """run/listen lines and where they lead."""

    def test_parse_and_targets(self):
        listeners = handoff.parse_listen(
            "# comment\n\nsmtp 0.0.0.0:2525\nsubmission [::]:587\nsmtp [::1]:25\n"
            "pop3 127.0.0.1:110\ngarbage line\nsmtp 127.0.0.1:99999\nsubmission 10.0.0.1:587\n")
        self.assertEqual(listeners, [("smtp", "0.0.0.0", 2525), ("submission", "::", 587),
                                     ("smtp", "::1", 25), ("pop3", "127.0.0.1", 110),
                                     ("submission", "10.0.0.1", 587)])
        self.assertEqual(handoff.targets(listeners),
                         [("127.0.0.1", 2525), ("::1", 25), ("::1", 587), ("10.0.0.1", 587)])

    def test_find_home(self):
        self.assertEqual(handoff.find_home("/x/y", {"ZWMS_HOME": "/z"}), "/x/y")
        self.assertEqual(handoff.find_home(None, {"ZWMS_HOME": "/z"}), "/z")
        self.assertEqual(handoff.find_home(None, {}), os.getcwd())


class MailCommandTests(Base):
    """zwms-mail builds an RFC 5322 message and hands it off."""

    def test_headers_and_korean_subject(self):
        server = self.start_server()
        body = "안녕하세요.\n두 번째 줄\n".encode("utf-8")
        status, err = self.mail(["-s", "월간 보고서 (March)", "-c", "cc@example.com",
                                 "-b", "hidden@remote.test", "carol@example.com",
                                 "dave@remote.test"], body)
        self.assertEqual((status, err), (0, ""))
        [t] = server.transactions
        self.assertEqual(t["sender"], "alice@example.com")
        self.assertEqual(t["recipients"], ["carol@example.com", "dave@remote.test",
                                           "cc@example.com", "hidden@remote.test"])
        head = t["data"].partition(b"\r\n\r\n")[0]
        head.decode("ascii")     # every header is 7-bit (RFC 2047 for Korean)
        self.assertNotIn(b"hidden", head)
        self.assertNotIn(b"\n", head.replace(b"\r\n", b""))
        parsed = email.message_from_bytes(t["data"], policy=default_policy)
        self.assertEqual(parsed["Subject"], "월간 보고서 (March)")
        raw_subject = [line for line in head.split(b"\r\n") if line.startswith(b"Subject:")][0]
        self.assertIn(b"=?utf-8?", raw_subject)
        self.assertEqual(str(make_header(decode_header(raw_subject[9:].decode()))),
                         "월간 보고서 (March)")
        self.assertEqual(parsed["From"], "alice@example.com")
        self.assertEqual(parsed["To"], "carol@example.com, dave@remote.test")
        self.assertEqual(parsed["Cc"], "cc@example.com")
        self.assertIsNone(parsed["Bcc"])
        self.assertTrue(parsed["Date"].datetime)
        self.assertTrue(parsed["Message-ID"].endswith("@example.com>"))
        self.assertEqual(parsed.get_content_charset(), "utf-8")
        self.assertEqual(parsed.get_content().replace("\r\n", "\n"), "안녕하세요.\n두 번째 줄\n")
        self.assertIn("BODY=8BITMIME", t["options"])

    def test_from_option_and_empty_body(self):
        server = self.start_server()
        status, _ = self.mail(["-r", "Report Bot <bot@example.com>", "carol@example.com"], b"")
        self.assertEqual(status, 0)
        [t] = server.transactions
        self.assertEqual(t["sender"], "bot@example.com")
        parsed = email.message_from_bytes(t["data"], policy=default_policy)
        self.assertEqual(parsed["From"], "Report Bot <bot@example.com>")
        self.assertIsNone(parsed["Subject"])

    def test_E_skips_empty_body(self):
        server = self.start_server()
        status, _ = self.mail(["-E", "-s", "x", "carol@example.com"], b"\n")
        self.assertEqual(status, 0)
        self.assertEqual(server.transactions, [])

    def test_legacy_korean_body(self):
        server = self.start_server()
        status, _ = self.mail(["-s", "x", "carol@example.com"], "한글 본문\n".encode("euc-kr"))
        self.assertEqual(status, 0)
        parsed = email.message_from_bytes(server.transactions[0]["data"], policy=default_policy)
        self.assertEqual(parsed.get_content().replace("\r\n", "\n"), "한글 본문\n")

    def test_bad_input(self):
        for args, message in [([], "no recipients"), (["-s"], "needs a value"),
                              (["-x", "a@example.com"], "unknown option -x"),
                              (["bad@@x"], "bad address"),
                              (["-r", "no way", "a@example.com"], "bad sender")]:
            status, err = self.mail(args, b"body\n")
            self.assertEqual(status, 64, (args, err))
            self.assertIn(message, err)
            self.assertTrue(err.startswith("zwms-mail: "), err)


class DirectDeliveryTests(Base):
    """No server running: local recipients go straight into the file store."""

    def setUp(self):
        Base.setUp(self)
        from zwms.admin.ops import open_home
        ctx = open_home(self.home)
        self.addCleanup(ctx.close)
        self.ctx = ctx
        ctx.accounts.add("carol", "secret-pw")
        ctx.accounts.add("dave", "secret-pw")
        ctx.directory.add_alias("team@example.com", "carol")
        ctx.directory.add_alias("team@example.com", "dave")
        ctx.directory.add_alias("mixed@example.com", "carol")
        ctx.directory.add_alias("mixed@example.com", "far@remote.test")

    def inbox(self, aid):
        return [self.ctx.mail.read(aid, "Inbox", m.name)
                for m in self.ctx.mail.messages(aid, "Inbox")]

    def assertNothingStored(self):
        self.assertEqual(self.inbox("carol"), [])
        self.assertEqual(self.inbox("dave"), [])

    def test_local_delivery_without_run_listen(self):
        status, err = self.sendmail(["-f", "bob@example.com", "carol@example.com"], MESSAGE)
        self.assertEqual((status, err), (0, ""))
        [stored] = self.inbox("carol")
        self.assertTrue(stored.startswith(b"Return-Path: <bob@example.com>\r\nReceived: "))
        head, _, body = stored.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nFrom: Bob <bob@example.com>\r\nTo: carol@example.com\r\n", head)
        self.assertEqual(body, b"line one\r\nline two\r\n")
        with open(os.path.join(self.home, "logs", "MailServer.log"), encoding="utf-8") as f:
            self.assertIn("Mail receive success <carol@example.com>", f.read())

    def test_refused_connection_falls_back_to_direct(self):
        self.listen("smtp 127.0.0.1:%d\nsubmission [::1]:%d\n" % (closed_port(), closed_port()))
        status, err = self.mail(["-s", "요약", "team@example.com"], "본문\n".encode())
        self.assertEqual((status, err), (0, ""))
        for aid in ("carol", "dave"):
            [stored] = self.inbox(aid)
            parsed = email.message_from_bytes(stored, policy=default_policy)
            self.assertEqual(parsed["Subject"], "요약")
            self.assertEqual(parsed.get_content().replace("\r\n", "\n"), "본문\n")

    def test_one_copy_per_account(self):
        status, _ = self.sendmail(["carol@example.com", "carol", "team@example.com"], MESSAGE)
        self.assertEqual(status, 0)
        self.assertEqual(len(self.inbox("carol")), 1)
        self.assertEqual(len(self.inbox("dave")), 1)

    def test_remote_recipient_queued_while_server_down(self):
        from zwms.queue.spool import Spool
        spool = Spool(os.path.join(self.home, "data", "queue"))
        for rcpt in ("far@remote.test", "mixed@example.com"):
            status, err = self.sendmail(["carol@example.com", rcpt], MESSAGE)
            self.assertEqual((status, err), (0, ""))
        self.assertEqual(len(self.inbox("carol")), 2)  # one copy per message
        entries = [spool.load(i) for i in spool.ids()]
        self.assertEqual([[r.addr for r in e.recipients] for e in entries],
                         [["far@remote.test"], ["far@remote.test"]])
        self.assertFalse(spool.read(entries[0].id).startswith(b"Return-Path:"))

    def test_unknown_local_user_stores_nothing(self):
        status, err = self.sendmail(["carol@example.com", "nobody@example.com"], MESSAGE)
        self.assertEqual(status, 1)
        self.assertIn("<nobody@example.com>: 550 Error. User not found", err)
        self.assertNothingStored()

    def test_account_checks_are_the_servers(self):
        self.ctx.accounts.set("dave", "locked", "1")
        status, err = self.sendmail(["carol@example.com", "dave@example.com"], MESSAGE)
        self.assertEqual(status, 75)
        self.assertIn("<dave@example.com>: 450 Error. User account is locked. Try again", err)
        self.assertNothingStored()
        self.ctx.accounts.set("dave", "locked", "0")
        self.ctx.accounts.set("dave", "maxmails", "1")
        self.assertEqual(self.sendmail(["dave@example.com"], MESSAGE)[0], 0)
        status, err = self.sendmail(["dave@example.com"], MESSAGE)
        self.assertEqual(status, 1)
        self.assertIn("552 Error. User account over max mail qty", err)
        self.assertEqual(len(self.inbox("dave")), 1)

    def test_too_big(self):
        with open(os.path.join(self.home, "data", "zwms.cfg"), "w") as f:
            f.write("MAXMAILSIZE=1\n")
        status, err = self.sendmail(["carol@example.com"], MESSAGE + b"x" * 2000 + b"\n")
        self.assertEqual(status, 1)
        self.assertIn("552 Error. Mail size over max system work size", err)
        self.assertNothingStored()

    def test_not_a_home(self):
        empty = os.path.abspath(self.mktemp())
        os.makedirs(empty)
        err = io.StringIO()
        self.patch(handoff.sys, "stderr", err)
        self.patch(os, "environ", dict(os.environ, ZWMS_HOME=empty))
        status = sendmail.main(["carol@example.com"], io.BytesIO(MESSAGE))
        self.assertEqual(status, 78)
        self.assertIn("no zWMS server home at %s" % empty, err.getvalue())
        self.assertFalse(os.path.exists(os.path.join(empty, "data")))


class ConnectFailureTests(Base):
    """How a failed connection is told apart from a server that answers."""

    def fail_connect(self, error):
        def connect(client, host, port):
            raise error
        self.patch(handoff.smtplib.SMTP, "connect", connect)
        self.listen("smtp 127.0.0.1:2525\n")

    def test_unreachable_means_no_server(self):
        import errno
        self.fail_connect(OSError(errno.ENETUNREACH, "Network is unreachable"))
        status, err = self.sendmail(["nobody@example.com"], MESSAGE)
        # Direct delivery was tried: the directory, not the network, refused.
        self.assertEqual(status, 1)
        self.assertIn("<nobody@example.com>: 550 Error. User not found", err)

    def test_timeout_is_temporary(self):
        self.fail_connect(TimeoutError("timed out"))
        status, err = self.sendmail(["nobody@example.com"], MESSAGE)
        self.assertEqual(status, 75)
        self.assertIn("127.0.0.1:2525 did not answer within 30 seconds", err)


class RealServerTests(TestCase):
    """
    The hand-off against the project's own SMTP server (zwms.smtp.factory)
    and file store, listening on 127.0.0.1: the command runs in a thread,
    the server in the reactor.
    """

    @defer.inlineCallbacks
    def setUp(self):
        from zwms.smtp.factory import SMTPFactory
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.home, "data"))
        with open(os.path.join(self.home, "data", "env.cfg"), "w") as f:
            f.write("DOMAIN=%s\n" % DOMAIN)
        self.services = make_services(self.home, clock=reactor, memory=False)
        self.addCleanup(self.services.mail.stop)
        yield threads.deferToThread(self.services.accounts.add, "carol", "secret-pw")
        self.factory = SMTPFactory(self.services, "smtp")
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.close_server)
        with open(os.path.join(self.home, "run", "listen"), "w") as f:
            f.write("smtp 127.0.0.1:%d\n" % self.port.getHost().port)
        self.patch(handoff, "invoking_user", lambda: "alice")

    @defer.inlineCallbacks
    def close_server(self):
        yield self.port.stopListening()
        for _ in range(100):
            if not self.factory.connections:
                break
            yield task.deferLater(reactor, 0.05, lambda: None)

    def run_in_thread(self, args, data):
        err = io.StringIO()
        self.patch(handoff.sys, "stderr", err)
        d = threads.deferToThread(sendmail.main, ["--home", self.home] + args,
                                  io.BytesIO(data))
        return d.addCallback(lambda status: (status, err.getvalue()))

    @defer.inlineCallbacks
    def test_delivered_by_the_server(self):
        status, err = yield self.run_in_thread(["-t", "-i"], MESSAGE.replace(
            b"Subject:", b"Bcc: carol@example.com\nSubject:").replace(b"line two", b"."))
        self.assertEqual((status, err), (0, ""))
        [info] = self.services.mail.messages("carol", "Inbox")
        stored = self.services.mail.read("carol", "Inbox", info.name)
        head, _, body = stored.partition(b"\r\n\r\n")
        self.assertIn(b"Return-Path: <alice@example.com>", head)
        self.assertIn(b"Received: from ", head)
        self.assertNotIn(b"Bcc", head)
        self.assertEqual(body, b"line one\r\n.\r\n")

    @defer.inlineCallbacks
    def test_server_refusal_reported(self):
        status, err = yield self.run_in_thread(
            ["carol@example.com", "nobody@example.com"], MESSAGE)
        self.assertEqual(status, 1)
        self.assertIn("<nobody@example.com>: 550", err)
        self.assertIn("Error. User not found", err)
        self.assertEqual(self.services.mail.messages("carol", "Inbox"), [])
