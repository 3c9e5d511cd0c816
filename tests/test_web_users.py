"""
The user list and account windows (SPEC A4, seed §7, §16, §17) through the
console's forms.
"""

import os

from tests.test_web_admin import ConsoleTestCase


class UserPageTests(ConsoleTestCase):

    def setUp(self):
        ConsoleTestCase.setUp(self)
        self.client.login()

    def test_create_through_the_form(self):
        r = self.client.post("/admin/users/create", {"id": "bob", "password": "pw1",
                                                     "name": "Bob Kim"})
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/users/bob?done=created")
        self.assertEqual(self.services.accounts.get("bob").name, "Bob Kim")

    def test_create_refuses_hostile_and_taken_ids(self):
        for bad in ("../etc", "a/b", "Bob Smith", "", "x" * 80, "alice"):
            r = self.client.post("/admin/users/create", {"id": bad, "password": "pw"})
            self.assertEqual(r.code, 400, bad)
            self.assertIn('class="error"', r.text)
        self.assertEqual(self.services.accounts.list(), ["alice"])

    def test_hostile_ids_in_urls(self):
        for path in ("/admin/users/..%2f..%2fetc", "/admin/users/%2e%2e",
                     "/admin/users/a%00b", "/admin/users/A%20B"):
            r = self.client.get(path)
            self.assertIn(r.code, (400, 404), path)
            self.assertNotIn("Traceback", r.text)
        r = self.client.post("/admin/users/..%2f..%2fetc/delete")
        self.assertIn(r.code, (400, 404))

    def test_edit_every_field_blank_password_keeps_old(self):
        page = self.client.get("/admin/users/alice")
        for key in ("name", "forwardmode", "capacity", "midadmin", "badmailpop3"):
            self.assertIn('name="%s"' % key, page.text)
        old_hash = self.services.accounts.get("alice").password_hash
        r = self.client.post("/admin/users/alice", {
            "password": "", "name": "앨리스", "forwardmode": "copy", "capacity": "20M",
            "active": "1", "relay": "1", "midadmin": "1", "boardgroup": "7",
            "receivemode": "domain"})
        self.assertEqual(r.code, 303)
        account = self.services.accounts.get("alice")
        self.assertEqual(account.name, "앨리스")
        self.assertEqual(account.capacity, 20 * 1024 * 1024)
        self.assertEqual(account.forwardmode, "copy")
        self.assertTrue(account.midadmin)
        self.assertFalse(account.locked)        # unchecked box = 0
        self.assertFalse(account.ipsession)
        self.assertEqual(account.password_hash, old_hash)
        from zwms.account import FIELDS_BY_KEY
        from zwms.web.users import account_values, field_kind
        data = {k: v for k, v in account_values(account).items()
                if not (field_kind(FIELDS_BY_KEY[k]) == "bool" and v == "0")}
        data["password"] = "n3w"
        r = self.client.post("/admin/users/alice", data)
        self.assertEqual(r.code, 303)
        self.assertTrue(self.services.accounts.check_password("alice", "n3w"))

    def test_edit_errors_shown_nothing_written(self):
        r = self.client.post("/admin/users/alice", {"name": "X", "capacity": "lots",
                                                    "maxmails": "-1",
                                                    "forwardmode": "notice",
                                                    "receivemode": "all"})
        self.assertEqual(r.code, 400)
        self.assertIn("저장하지 않았습니다", r.text)
        self.assertIn("lots", r.text)
        self.assertEqual(self.services.accounts.get("alice").name, "Alice")

    def test_delete(self):
        r = self.client.post("/admin/users/alice/delete")
        self.assertEqual(r.code, 303)
        self.assertIsNone(self.services.accounts.get("alice"))
        self.assertFalse(os.path.exists(os.path.join(self.root, "data", "userd", "alice")))
        self.assertEqual(self.client.post("/admin/users/alice/delete").code, 404)

    def test_delete_keeps_mail_when_emldel_0(self):
        self.services.settings.set("EMLDEL", "0")
        self.services.settings = type(self.services.settings)(self.services.home)
        self.client = type(self.client)(self.services)
        self.client.login()
        self.client.post("/admin/users/alice/delete")
        self.assertTrue(os.path.isdir(os.path.join(self.root, "data", "userd", "alice")))
        # A mail folder without an account is not listed.
        self.assertIn("계정이 없습니다", self.client.get("/admin/users/").text)

    def test_backup_and_zip_buttons(self):
        self.assertEqual(self.client.post("/admin/users/alice/backup").code, 303)
        self.assertTrue(os.listdir(os.path.join(self.root, "backup", "userd", "alice")))
        self.assertEqual(self.client.post("/admin/users/alice/zip").code, 303)
        self.assertTrue(os.listdir(os.path.join(self.root, "zip", "root")))

    def test_import_button(self):
        folder = os.path.join(self.root, "import", "userd", "alice")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "1.eml"), "wb") as f:
            f.write(b"Subject: hi\r\n\r\nbody\r\n")
        # The memory mail store delivers at once; the ctx.deliver of the
        # console would wait for the reactor, so deliver straight to it.
        from zwms.admin import ops
        real = ops.context_from_services

        def direct(services, reactor, actor, peer=None):
            ctx = real(services, reactor, actor, peer)
            ctx.deliver = lambda deliveries: [services.mail.deliver(deliveries)]
            return ctx
        self.patch(ops, "context_from_services", direct)
        r = self.client.post("/admin/users/alice/import")
        self.assertEqual(r.code, 200)
        self.assertIn("메일 1통을 이전했고", r.text)
        self.assertEqual(os.listdir(folder), [])

    def test_paging_and_search(self):
        self.services.settings.set("PERPAGE", "2")
        self.services.settings = type(self.services.settings)(self.services.home)
        client = type(self.client)(self.services)
        client.login()
        for aid in ("bob", "carol", "dave", "erin"):
            self.services.accounts.add(aid, "pw")
        first = client.get("/admin/users/")
        self.assertIn("계정 5개, 3쪽 중 1쪽", first.text)
        self.assertIn(">alice<", first.text)
        self.assertNotIn(">carol<", first.text)
        second = client.get("/admin/users/?page=2")
        self.assertIn(">carol<", second.text)
        self.assertNotIn(">alice<", second.text)
        found = client.get("/admin/users/?q=ro&view=detail")
        self.assertIn(">carol<", found.text)
        self.assertNotIn(">bob<", found.text)
        self.assertIn("계정 1개", found.text)
        self.assertEqual(client.get("/admin/users/?page=999").code, 200)
        self.assertEqual(client.get("/admin/users/?page=abc").code, 200)

    def test_middle_admins_in_bold(self):
        self.services.accounts.set("alice", "midadmin", "1")
        self.services.accounts.add("bob", "pw")
        text = self.client.get("/admin/users/").text
        self.assertIn('<strong class="midadmin"><a href="/admin/users/alice">', text)
        self.assertNotIn('<strong class="midadmin"><a href="/admin/users/bob">', text)

    def test_detail_view_shows_fields(self):
        text = self.client.get("/admin/users/?view=detail").text
        self.assertIn("<td>Alice</td>", text)
        self.assertIn("/admin/users/alice/backup", text)

    def test_bulk_edit(self):
        self.services.accounts.add("bob", "pw")
        self.services.accounts.add("carol", "pw")
        r = self.client.post("/admin/users/bulk", {"id": ["alice", "bob"]})
        self.assertEqual(r.code, 200)
        self.assertIn('name="apply"', r.text)
        r = self.client.post("/admin/users/bulk/apply", {
            "id": ["alice", "bob"], "apply": ["maxmails", "locked"], "maxmails": "50",
            "locked": "1", "capacity": "1G"})
        self.assertEqual(r.code, 200)
        self.assertIn("계정 2개를 변경했습니다", r.text)
        for aid in ("alice", "bob"):
            account = self.services.accounts.get(aid)
            self.assertEqual(account.maxmails, 50)
            self.assertTrue(account.locked)
            self.assertEqual(account.capacity, 0)   # not ticked: unchanged
        self.assertEqual(self.services.accounts.get("carol").maxmails, 0)

    def test_bulk_errors(self):
        r = self.client.post("/admin/users/bulk/apply", {"id": ["alice"], "apply": ["maxmails"],
                                                         "maxmails": "many"})
        self.assertEqual(r.code, 400)
        self.assertEqual(self.services.accounts.get("alice").maxmails, 0)
        r = self.client.post("/admin/users/bulk/apply", {"id": ["alice"]})
        self.assertEqual(r.code, 400)
        self.assertEqual(self.client.post("/admin/users/bulk", {}).code, 400)
        self.assertEqual(self.client.post("/admin/users/bulk", {"id": ["../x"]}).code, 400)


