"""
Mailing lists (SPEC Q5, seed §21) and the fan-out behind them: (NAME)
lists only for our own users, at most 10,000 recipients, one personalised
copy per recipient written as queue entries in batches with back-pressure,
per-recipient status for the sender, NAME@DOMAIN lists unchanged, and crash
recovery of an unfinished batch.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from tests.test_relay import BODY, with_queue
from tests.test_smtp_support import Client, make_factory, stored
from tests.test_relay import plain
from zwms.queue import fanout as fanout_module
from zwms.queue.fanout import JobStore, entry_id
from zwms.queue.spool import SENT, BOUNCED, Spool, to_crlf
from zwms.routing import lists as mlists
from zwms.routing.status import list_mailings, read_status

LIST_BODY = (b"From: alice@example.com\r\nTo: (team)\r\nSubject: News\r\n\r\n"
             b"Dear reader\r\n")


def write_list(services, name, lines):
    with open(services.home.path("data", name + ".list"), "w") as f:
        f.write("".join(line + "\n" for line in lines))


class PersonalTests(SynchronousTestCase):
    def test_to_rewritten_folded_and_repeated(self):
        data = (b"From: a@b.example\nTo: (team),\n\tx@y.example\nCc: c@d.example\n"
                b"to: again@y.example\nSubject: s\n\nbody\nTo: not a header\n")
        out = mlists.personal(mlists.split_head(data), "q@r.example")
        self.assertEqual(out, b"From: a@b.example\r\nTo: <q@r.example>\r\nCc: c@d.example\r\n"
                              b"Subject: s\r\n\r\nbody\r\nTo: not a header\r\n")

    def test_no_to_header(self):
        out = mlists.personal(mlists.split_head(b"Subject: s\r\n\r\nb\r\n"), "q@r.example")
        self.assertEqual(out, b"Subject: s\r\nTo: <q@r.example>\r\n\r\nb\r\n")

    def test_list_name(self):
        self.assertEqual(mlists.list_name("(Team)"), "team")
        for bad in ("team", "(../x)", "()", "(a b)", "(a/b)"):
            self.assertIsNone(mlists.list_name(bad), bad)


class ReadListTests(SynchronousTestCase):
    def setUp(self):
        self.services = with_queue(self)
        self.home = self.services.home

    def test_sender_then_recipients(self):
        write_list(self.services, "team", ["# staff", "boss@example.com", "", "a@far.example",
                                           "b@far.example", "A@far.example"])
        self.assertEqual(mlists.read_list(self.home, "team"),
                         ("boss@example.com", ["a@far.example", "b@far.example"]))

    def test_limits_and_errors(self):
        write_list(self.services, "big", ["boss@example.com"] +
                   ["u%d@far.example" % i for i in range(10000)])
        self.assertEqual(len(mlists.read_list(self.home, "big")[1]), 10000)
        write_list(self.services, "huge", ["boss@example.com"] +
                   ["u%d@far.example" % i for i in range(10001)])
        e = self.assertRaises(mlists.ListError, mlists.read_list, self.home, "huge")
        self.assertEqual((e.code, e.text), (552, "Error. Mailing list over 10000 recipients"))
        write_list(self.services, "bad", ["boss@example.com", "not an address"])
        e = self.assertRaises(mlists.ListError, mlists.read_list, self.home, "bad")
        self.assertEqual(e.code, 554)
        e = self.assertRaises(mlists.ListError, mlists.read_list, self.home, "missing")
        self.assertEqual(e.code, 550)
        write_list(self.services, "empty", ["boss@example.com"])
        self.assertEqual(self.assertRaises(mlists.ListError, mlists.read_list, self.home,
                                           "empty").code, 554)


class SMTPListTests(SynchronousTestCase):
    def setUp(self):
        self.services = with_queue(self)
        self.queue = self.services.queue
        write_list(self.services, "team", ["boss@example.com", "x@far.example",
                                           "y@far.example", "bob@example.com"])

    def client(self, peer, mode="smtp"):
        c = Client(make_factory(self.services, mode=mode), peer=peer)
        c.ehlo()
        return c

    def test_anonymous_internet_refused(self):
        c = self.client("203.0.113.7")
        c.cmd(b"MAIL FROM:<x@far.example>")
        self.assertEqual(c.cmd(b"RCPT TO:<(team)>"), ["550 Error. User not found"])
        self.assertEqual(self.services.logs.lines["MailServer"][-1], "User not found <(team)>")

    def test_authenticated_mailing(self):
        c = self.client("127.0.0.2", "submission")
        c.cmd(plain(b"alice", b"alice-pw"))
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<(team)>"), ["250 Recipient address accepted"])
        self.assertEqual(c.data(LIST_BODY)[-1], "250 OK. Mail received")
        # Two remote copies, each to its recipient alone; bob's copy is local.
        envs = self.queue.adopted
        self.assertEqual([[r.addr for r in e.recipients] for e in envs],
                         [["x@far.example"], ["y@far.example"]])
        self.assertEqual({e.sender for e in envs}, {"boss@example.com"})
        spool = Spool(self.services.home)
        for env in envs:
            data = spool.read(env.id)
            self.assertIn(b"\r\nTo: <%s>\r\n" % env.recipients[0].addr.encode(), data)
            self.assertNotIn(b"(team)", data)
        [local] = stored(self.services, "bob")
        self.assertIn(b"\r\nTo: <bob@example.com>\r\n", local)
        self.assertTrue(local.startswith(b"Return-Path: <boss@example.com>\r\n"))
        # The job is finished and gone; the status belongs to alice.
        self.assertEqual(os.listdir(os.path.join(self.services.home.queue, "fanout")), [])
        [job_id] = list_mailings(self.services.home, "alice")
        self.services.router.status.flush()
        meta, latest = read_status(self.services.home, "alice", job_id)
        self.assertEqual((meta["list"], meta["subject"], meta["total"]), ("team", "News", 3))
        self.assertEqual(latest["bob@example.com"]["state"], "sent")
        # The runner reports results through its observers.
        envs[0].recipients[0].state, envs[0].recipients[0].reply = SENT, "250 OK"
        envs[1].recipients[0].state, envs[1].recipients[0].reply = BOUNCED, "550 No such user"
        for env in envs:
            for observer in self.queue.observers:
                observer(env)
        self.services.router.status.flush()
        meta, latest = read_status(self.services.home, "alice", job_id)
        self.assertEqual({a: (v["state"], v["reply"]) for a, v in latest.items()}, {
            "bob@example.com": ("sent", "delivered locally"),
            "x@far.example": ("sent", "250 OK"),
            "y@far.example": ("bounced", "550 No such user")})

    def test_relay_ip_peer_may_use_lists(self):
        c = self.client("127.0.0.1")
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<(team)>"), ["250 Recipient address accepted"])
        self.assertEqual(c.data(LIST_BODY)[-1], "250 OK. Mail received")
        self.assertEqual(len(self.queue.adopted), 2)

    def test_over_limit_list_refused_at_rcpt(self):
        write_list(self.services, "huge", ["boss@example.com"] +
                   ["u%d@far.example" % i for i in range(10001)])
        c = self.client("127.0.0.1")
        c.cmd(b"MAIL FROM:<alice@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<(huge)>"),
                         ["552 Error. Mailing list over 10000 recipients"])
        self.assertEqual(c.cmd(b"RCPT TO:<(nosuch)>"), ["550 Error. User not found"])

    def test_plain_list_unchanged_and_chunked(self):
        self.patch(fanout_module, "PLAIN_CHUNK", 2)
        write_list(self.services, "all@example.com",
                   ["a@far.example", "b@far.example", "c@far.example", "alice@example.com"])
        c = self.client("203.0.113.7")
        c.cmd(b"MAIL FROM:<x@far.example>")
        self.assertEqual(c.cmd(b"RCPT TO:<all@example.com>"), ["550 Error. User not found"])
        c = self.client("127.0.0.1")
        c.cmd(b"MAIL FROM:<boss@example.com>")
        self.assertEqual(c.cmd(b"RCPT TO:<all@example.com>"), ["250 Recipient address accepted"])
        self.assertEqual(c.data(BODY)[-1], "250 OK. Mail received")
        self.assertEqual([[r.addr for r in e.recipients] for e in self.queue.adopted],
                         [["a@far.example", "b@far.example"], ["c@far.example"]])
        self.assertEqual({e.sender for e in self.queue.adopted}, {"boss@example.com"})
        data = Spool(self.services.home).read(self.queue.adopted[0].id)
        self.assertTrue(data.endswith(BODY))
        self.assertEqual(len(stored(self.services, "alice")), 1)
        self.assertEqual(list_mailings(self.services.home, "boss"), [])


class FanOutTests(SynchronousTestCase):
    def setUp(self):
        self.services = with_queue(self)
        self.queue = self.services.queue
        self.fanout = self.services.router.fanout
        self.fanout.batch = 4

    def submit(self, n):
        rcpts = ["u%d@far.example" % i for i in range(n)]
        return self.successResultOf(self.fanout.submit("boss@example.com", rcpts, LIST_BODY,
                                                       owner="alice", name="team"))

    def test_back_pressure(self):
        job_id = self.submit(10)
        # One batch of 4 written; more only after the runner tried half.
        self.assertEqual(len(self.queue.adopted), 4)
        for env in self.queue.adopted[:1]:
            self.queue.observers[0](env)
        self.assertEqual(len(self.queue.adopted), 4)
        self.queue.observers[0](self.queue.adopted[1])
        self.assertEqual(len(self.queue.adopted), 8)
        for env in self.queue.adopted[2:8]:
            self.queue.observers[0](env)
        self.assertEqual(len(self.queue.adopted), 10)
        self.assertEqual(len({e.id for e in self.queue.adopted}), 10)
        self.assertNotIn(job_id + ".json", os.listdir(self.fanout.store.folder))

    def test_recovery_drops_unregistered_entries(self):
        store = JobStore(self.services.home.queue)
        job = fanout_module.Job(id="1700000000.00000000000000aa", sender="boss@example.com",
                                mode="personal", total=6, created=1700000000, cursor=4,
                                owner="alice", name="team", batch=4)
        store.create(job, LIST_BODY, ["u%d@far.example" % i for i in range(6)])
        # A crash after writing entries 4 and 5 but before the cursor moved.
        spool = Spool(self.services.home)
        for index in (4, 5):
            eid = entry_id(job, index)
            for ext in ("eml", "json"):
                with open(os.path.join(spool.folder, "%s.%s" % (eid, ext)), "w") as f:
                    f.write("x")
        # An entry of an earlier batch (registered before the crash) stays.
        with open(os.path.join(spool.folder, entry_id(job, 0) + ".json"), "w") as f:
            f.write("x")
        self.assertEqual(self.successResultOf(self.fanout.recover()), 1)
        left = sorted(os.listdir(spool.folder))
        self.assertIn(entry_id(job, 0) + ".json", left)
        self.assertNotIn(entry_id(job, 4) + ".json", left)
        self.fanout.start()
        self.assertEqual([e.recipients[0].addr for e in self.queue.adopted],
                         ["u4@far.example", "u5@far.example"])
        self.assertEqual(os.listdir(store.folder), [])

    def test_uncommitted_job_swept(self):
        store = self.fanout.store
        with open(os.path.join(store.folder, "1700000000.00000000000000bb.eml"), "w") as f:
            f.write("x")
        self.assertEqual(self.successResultOf(self.fanout.recover()), 0)
        self.assertEqual(os.listdir(store.folder), [])


class DirectModeTests(SynchronousTestCase):
    """zwms-sendmail with the server down: lists and remote mail wait in data/queue."""

    def test_list_and_remote_queued_for_next_start(self):
        from zwms.admin.ops import open_home
        from zwms.config import Settings
        from zwms.home import Home
        from zwms.scripts import handoff
        root = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(root, "data"))
        ctx = open_home(root)
        ctx.settings.set("DOMAIN", "example.com")
        ctx.accounts.add("alice", "pw")
        ctx.close()
        with open(os.path.join(root, "data", "team.list"), "w") as f:
            f.write("alice@example.com\nx@far.example\ny@far.example\nalice@example.com\n")
        settings = Settings(Home(root))
        handoff.deliver_direct(root, settings, "alice@example.com",
                               ["(team)", "z@far.example"], LIST_BODY)
        spool = Spool(os.path.join(root, "data", "queue"))
        entries = [spool.load(i) for i in spool.ids()]
        self.assertEqual(sorted(r.addr for e in entries for r in e.recipients),
                         ["x@far.example", "y@far.example", "z@far.example"])
        personal = [e for e in entries if e.origin.startswith("list ")]
        self.assertEqual(len(personal), 2)
        for env in personal:
            self.assertIn(b"To: <%s>" % env.recipients[0].addr.encode(), spool.read(env.id))
        # One batch held the whole list: the job is done and gone.
        self.assertEqual(JobStore(os.path.join(root, "data", "queue")).jobs(), [])
        # alice (a local list member) got her own copy at once.
        ctx = open_home(root)
        self.addCleanup(ctx.close)
        self.assertEqual(len(ctx.mail.messages("alice", "Inbox")), 1)
        e = self.assertRaises(handoff.HandoffError, handoff.deliver_direct, root, settings,
                              "alice@example.com", ["(nosuch)"], LIST_BODY)
        self.assertIn("<(nosuch)>: 550 Error. User not found", str(e))


def html_message(cte=None, attachment=True, nested=False):
    """A text+HTML message (the HTML part in transfer encoding C{cte})."""
    from email.message import EmailMessage
    import email.policy
    m = EmailMessage(policy=email.policy.SMTP)
    m["From"], m["To"], m["Subject"] = "boss@example.com", "(team)", "s"
    m.set_content("hello\n", charset="utf-8")
    kw = {"cte": cte} if cte else {}
    m.add_alternative("<html><body><p>안녕 " + "x" * 300 + "</p></body></html>\n",
                      subtype="html", charset="utf-8", **kw)
    if attachment:
        m.add_attachment(b"<html><body>file</body></html>", maintype="text", subtype="html",
                         filename="a.html")
    if nested:
        outer = EmailMessage(policy=email.policy.SMTP)
        outer["Subject"] = "outer"
        outer.make_mixed()
        outer.attach(m)
        return outer.as_bytes()
    return m.as_bytes()


def html_part(data):
    import email
    import email.policy
    msg = email.message_from_bytes(data, policy=email.policy.default)
    return [p.get_content() for p in msg.walk() if p.get_content_type() == "text/html"]


class TrackingImageTests(SynchronousTestCase):
    IMG = b'<img src="http://m.example/mail/bulk/track/T.gif" width="1" height="1" alt="">'

    def test_each_transfer_encoding(self):
        for cte in (None, "base64", "quoted-printable", "8bit"):
            data = to_crlf(html_message(cte))
            parts = mlists.split_head(data)
            slot = mlists.html_slot(parts)
            self.assertIsNotNone(slot, cte)
            out = mlists.personal(parts, "q@r.example", slot, self.IMG)
            html, attached = html_part(out)
            self.assertEqual(slot.encoding, cte or "quoted-printable")
            self.assertTrue(html.endswith("x</p>\r\n" + self.IMG.decode() +
                                          "\r\n</body></html>\r\n"), (cte, html[-150:]))
            [original, _] = html_part(data)
            at = original.rfind("</body")
            self.assertEqual(html, original[:at] + "\r\n" + self.IMG.decode() + "\r\n" +
                             original[at:])
            # The attached HTML file is not touched; nothing else changed.
            self.assertEqual(attached, "<html><body>file</body></html>")
            plain = mlists.personal(parts, "q@r.example")
            self.assertEqual(out[:slot.start + len(parts[0]) + len(parts[1]) + 20],
                             plain[:slot.start + len(parts[0]) + len(parts[1]) + 20])
            self.assertTrue(out.endswith(plain[len(plain) - (len(parts[2]) - slot.end):]))

    def test_nested_multipart(self):
        parts = mlists.split_head(to_crlf(html_message("base64", nested=True)))
        slot = mlists.html_slot(parts)
        out = mlists.personal(parts, "q@r.example", slot, self.IMG)
        self.assertIn(self.IMG.decode(), html_part(out)[0])

    def test_no_html_no_slot(self):
        for data in (LIST_BODY, b"Subject: s\r\nContent-Type: text/html; charset=utf-16\r\n\r\n"
                     + "<html></html>".encode("utf-16"),
                     b"Subject: s\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n",
                     b"Subject: s\r\nContent-Type: text/html\r\n"
                     b"Content-Transfer-Encoding: x-uuencode\r\n\r\n<b>x</b>\r\n",
                     b"Subject: s\r\n"):
            self.assertIsNone(mlists.html_slot(mlists.split_head(data)), data[:80])

    def test_split_lists(self):
        self.assertEqual(mlists.split_lists("(Team), bob@example.com; (x y), (ops)"),
                         (["team", "ops"], " bob@example.com, (x y)"))


class TrackedFanOutTests(SynchronousTestCase):
    def setUp(self):
        self.services = with_queue(self)
        self.queue = self.services.queue
        self.fanout = self.services.router.fanout

    def test_tracked_copies_carry_their_own_token(self):
        from zwms.routing import status
        rcpts = ["u0@far.example", "u1@far.example"]
        job_id = self.successResultOf(self.fanout.submit(
            "boss@example.com", rcpts, html_message("quoted-printable"), owner="alice",
            name="news", origin="bulk 127.0.0.1", track="https://mail.example.com"))
        spool = Spool(self.services.home)
        for index, env in enumerate(self.queue.adopted):
            html = html_part(spool.read(env.id))[0]
            token = status.track_token(job_id, self.job_key(job_id), index)
            self.assertIn('<img src="https://mail.example.com/mail/bulk/track/%s.gif"' % token,
                          html)
            self.assertEqual(status.check_token(self.services.home, token),
                             ("alice", job_id, index))
            self.assertNotIn("far.example", token)
        self.assertEqual(status.read_recipients(self.services.home, "alice", job_id), rcpts)
        meta, _ = status.read_status(self.services.home, "alice", job_id)
        self.assertEqual((meta["kind"], meta["tracked"]), ("bulk", True))

    def job_key(self, job_id):
        import json
        from zwms.routing import status
        path = os.path.join(status.tracking_folder(self.services.home), job_id + ".json")
        with open(path) as f:
            return json.load(f)["key"]

    def test_untracked_without_track_or_owner(self):
        self.successResultOf(self.fanout.submit("boss@example.com", ["u0@far.example"],
                                                html_message(), owner="alice", name="team"))
        self.successResultOf(self.fanout.submit("boss@example.com", ["u1@far.example"],
                                                html_message(), name="team",
                                                track="https://mail.example.com"))
        spool = Spool(self.services.home)
        for env in self.queue.adopted:
            self.assertNotIn(b"/track/", spool.read(env.id))

    def test_job_files_old_and_new(self):
        job = fanout_module.Job(id="1700000000.00000000000000aa", sender="b@example.com",
                                mode="personal", total=1, created=1700000000, owner="alice",
                                track="https://m.example", track_key="00" * 16)
        self.assertEqual(fanout_module.Job.from_json(job.to_json()), job)
        # A job written before tracking existed still loads.
        old = b'{"batch": 500, "created": 1, "cursor": 0, "id": "1700000000.00000000000000aa",' \
              b' "mode": "plain", "name": "", "origin": "", "owner": "", "schema": 1,' \
              b' "sender": "", "total": 1}'
        self.assertEqual(fanout_module.Job.from_json(old).track, "")
