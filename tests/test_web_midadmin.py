"""
Middle administrators through the real /admin routes (SPEC A7, seed §24):
their login, the reduced console, every refusal outside their board group
(guessed URLs, crafted forms, bulk edits with a foreign ID), the CSRF
checks, and the group's logo and footer in the webmail.
"""

import os

from tests.test_web_admin import ConsoleTestCase
from tests.webclient import Client
from tests.webmailclient import MailClient
from zwms import logs as logchannels
from zwms.admin import ops

MB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'
#: The root administrator's pages: a middle admin gets 403 on each.
ROOT_PAGES = ("/admin/system", "/admin/admininfo", "/admin/config/env",
              "/admin/config/basic", "/admin/config/notice", "/admin/config/welcome",
              "/admin/config/aliases", "/admin/config/domains", "/admin/config/spam",
              "/admin/config/virus", "/admin/logs/WebMail", "/admin/logs/MailServer",
              "/admin/files/", "/admin/groups/", "/admin/skins/", "/admin/calendar/",
              "/admin/product")


class MidadminConsoleTestCase(ConsoleTestCase):
    """Group 3: middle admin "mid" and "g3a"; group 4: "g4a"; "alice" has none."""

    def setUp(self):
        ConsoleTestCase.setUp(self)
        accounts = self.services.accounts
        accounts.add("mid", "midpw1", boardgroup=3, midadmin=True, midmaxaccounts=2,
                     midcapacity=100 * MB, address="boss@cust.example")
        accounts.add("g3a", "pw3333", boardgroup=3, capacity=10 * MB, name="G3")
        accounts.add("g4a", "pw4444", boardgroup=4, capacity=10 * MB, name="G4")
        r = self.client.login("mid", "midpw1")
        self.assertEqual(r.code, 303)

    def account(self, aid):
        return self.services.accounts.get(aid)


class LoginTests(MidadminConsoleTestCase):

    def test_login_lands_on_the_user_list(self):
        c = Client(self.services)
        c.get("/admin/login")
        r = c.post("/admin/login", {"login": "MID", "password": "midpw1"})
        self.assertEqual((r.code, r.header("location")), (303, "/admin/users/"))
        self.assertIn("admin login: mid (middle admin of board group 3)",
                      self.services.logs.lines[logchannels.WEBMAIL])
        self.assertEqual(c.get("/admin/").header("location"), "/admin/users/")
        self.assertEqual(c.get("/admin/login").header("location"), "/admin/users/")

    def test_wrong_password_and_ordinary_accounts_refused(self):
        for login, password in (("mid", "wrong"), ("g3a", "pw3333"), ("alice", "secret1")):
            c = Client(self.services)
            c.get("/admin/login")
            r = c.post("/admin/login", {"login": login, "password": password})
            self.assertEqual(r.code, 403, login)
            self.assertEqual(c.get("/admin/users/").code, 303)

    def test_reduced_menu(self):
        page = self.client.get("/admin/users/")
        self.assertIn('href="/admin/midadmin/"', page.text)
        self.assertNotIn('href="/admin/system"', page.text)
        self.assertNotIn('href="/admin/config/env"', page.text)
        self.assertIn("게시판그룹번호 3의 중간관리자", page.text)

    def test_revoked_middle_admin_is_refused_at_once(self):
        self.services.accounts.set("mid", "midadmin", "0")
        self.assertEqual(self.client.get("/admin/users/").code, 403)
        self.services.accounts.set("mid", "midadmin", "1")
        self.services.accounts.set("mid", "boardgroup", "4")
        page = self.client.get("/admin/users/")
        self.assertIn("g4a", page.text)
        self.assertNotIn("g3a", page.text)

    def test_logout(self):
        self.assertEqual(self.client.post("/admin/logout").code, 303)
        self.assertEqual(self.client.get("/admin/users/").code, 303)


class RootPagesRefusedTests(MidadminConsoleTestCase):

    def test_root_pages_are_403(self):
        for path in ROOT_PAGES:
            r = self.client.get(path)
            self.assertEqual(r.code, 403, path)
            self.assertIn("관리자만 사용할 수 있는 페이지입니다", r.text, path)

    def test_root_actions_are_403_and_change_nothing(self):
        self.services.logs.write(logchannels.WEBMAIL, "keep me")
        before = ops.admin_login(self.services.home)
        for path, data in (("/admin/admininfo", {"login": "mid", "password": "x",
                                                 "password2": "x"}),
                           ("/admin/logs/delete", {}),
                           ("/admin/config/env", {"POP3COUNT": "1"}),
                           ("/admin/config/notice", {"text": "hacked"}),
                           ("/admin/skins/choose", {"skin": "wow_coolwind"}),
                           ("/admin/control/stop", {})):
            self.assertEqual(self.client.post(path, data).code, 403, path)
        self.assertEqual(ops.admin_login(self.services.home), before)
        self.assertEqual(self.services.settings["POP3COUNT"], 100)
        self.assertIn("keep me", self.services.logs.lines[logchannels.WEBMAIL])

    def test_root_only_midadmin_page(self):
        root = Client(self.services)
        root.login()
        self.assertEqual(root.get("/admin/midadmin/").code, 403)


class ListScopeTests(MidadminConsoleTestCase):

    def test_only_the_group_is_listed(self):
        for view in ("brief", "detail"):
            page = self.client.get("/admin/users/?view=%s" % view)
            self.assertEqual(page.code, 200)
            self.assertIn("g3a", page.text)
            self.assertNotIn("g4a", page.text)
            self.assertNotIn("alice", page.text)
        self.assertNotIn("g4a", self.client.get("/admin/users/?q=g4").text)

    def test_middle_admins_in_bold(self):
        self.services.accounts.add("mid2", "pw", boardgroup=3, midadmin=True)
        page = self.client.get("/admin/users/")
        self.assertIn('<strong class="midadmin">mid2</strong>', page.text)
        self.assertNotIn('href="/admin/users/mid2"', page.text)
        root = Client(self.services)
        root.login()
        page = root.get("/admin/users/")
        self.assertIn('<strong class="midadmin"><a href="/admin/users/mid">mid</a></strong>',
                      page.text)
        self.assertNotIn('<strong class="midadmin"><a href="/admin/users/g3a">', page.text)


class GuessedUrlTests(MidadminConsoleTestCase):

    def test_other_group_account_urls(self):
        for aid in ("g4a", "alice", "nosuch"):
            r = self.client.get("/admin/users/%s" % aid)
            self.assertEqual(r.code, 403, aid)
            self.assertIn("관리할 수 있는 계정이 아닙니다", r.text)
            self.assertNotIn("G4", r.text)
            for action in ("backup", "zip", "import", "delete"):
                self.assertEqual(self.client.post("/admin/users/%s/%s" % (aid, action)).code,
                                 403, (aid, action))
            r = self.client.post("/admin/users/%s" % aid, {"name": "taken", "locked": "1"})
            self.assertEqual(r.code, 403)
        self.assertEqual(self.account("g4a").name, "G4")
        self.assertFalse(self.account("g4a").locked)
        self.assertIsNotNone(self.account("alice"))
        self.assertFalse(os.path.exists(os.path.join(self.root, "backup", "userd", "g4a")))

    def test_other_middle_admin_and_self_delete(self):
        self.services.accounts.add("mid2", "pw", boardgroup=3, midadmin=True)
        self.assertEqual(self.client.get("/admin/users/mid2").code, 403)
        self.assertEqual(self.client.post("/admin/users/mid2/delete").code, 403)
        self.assertEqual(self.client.post("/admin/users/mid/delete").code, 403)
        self.assertIsNotNone(self.account("mid2"))
        self.assertIsNotNone(self.account("mid"))
        page = self.client.get("/admin/users/mid")
        self.assertEqual(page.code, 200)
        self.assertNotIn("/admin/users/mid/delete", page.text)

    def test_hostile_ids(self):
        for path in ("/admin/users/..%2fg4a", "/admin/users/G4A%00"):
            self.assertIn(self.client.get(path).code, (400, 403, 404), path)


class EditTests(MidadminConsoleTestCase):

    def test_window_leaves_out_root_fields(self):
        page = self.client.get("/admin/users/g3a")
        self.assertEqual(page.code, 200)
        self.assertIn('name="capacity"', page.text)
        for key in ("midadmin", "midmaxaccounts", "midcapacity", "boardgroup", "boards",
                    "bulksend"):
            self.assertNotIn('name="%s"' % key, page.text, key)

    def test_edit_in_scope(self):
        r = self.client.post("/admin/users/g3a", {"name": "김", "capacity": "20M",
                                                  "forwardmode": "notice",
                                                  "receivemode": "all", "active": "1"})
        self.assertEqual(r.code, 303)
        self.assertEqual((self.account("g3a").name, self.account("g3a").capacity),
                         ("김", 20 * MB))

    def test_crafted_root_fields_refused(self):
        for key, value in (("midadmin", "1"), ("boardgroup", "4"), ("midcapacity", "9G"),
                           ("midmaxaccounts", "999"), ("bulksend", "1")):
            r = self.client.post("/admin/users/g3a", {"name": "X", key: value})
            self.assertEqual(r.code, 403, key)
        account = self.account("g3a")
        self.assertEqual((account.name, account.midadmin, account.boardgroup),
                         ("G3", False, 3))
        r = self.client.post("/admin/users/mid", {"name": "X", "midcapacity": "9G"})
        self.assertEqual(r.code, 403)
        self.assertEqual(self.account("mid").midcapacity, 100 * MB)

    def test_capacity_over_the_limit_shown_on_the_form(self):
        r = self.client.post("/admin/users/g3a", {"capacity": "101M", "active": "1"})
        self.assertEqual(r.code, 400)
        self.assertIn("최대용량을 넘습니다", r.text)
        self.assertEqual(self.account("g3a").capacity, 10 * MB)


class CreateTests(MidadminConsoleTestCase):

    def test_create_forced_into_the_group(self):
        r = self.client.post("/admin/users/create", {"id": "new1", "password": "pw",
                                                     "capacity": "20M", "boardgroup": "4"})
        self.assertEqual((r.code, r.header("location")),
                         (303, "/admin/users/new1?done=created"))
        self.assertEqual(self.account("new1").boardgroup, 3)
        self.assertEqual(self.client.get("/admin/users/new1").code, 200)

    def test_limits(self):
        self.assertEqual(self.client.post("/admin/users/create", {
            "id": "big", "password": "pw", "capacity": "91M"}).code, 400)
        self.assertIsNone(self.account("big"))
        self.assertEqual(self.client.post("/admin/users/create", {
            "id": "new1", "password": "pw", "capacity": "10M"}).code, 303)
        r = self.client.post("/admin/users/create", {"id": "new2", "password": "pw",
                                                     "capacity": "10M"})
        self.assertEqual(r.code, 400)
        self.assertIn("최대 계정수에 이르렀습니다", r.text)
        self.assertIsNone(self.account("new2"))

    def test_create_form_asks_for_capacity(self):
        page = self.client.get("/admin/users/")
        self.assertIn('name="capacity"', page.text)
        r = self.client.post("/admin/users/create", {"id": "new1", "password": "pw"})
        self.assertEqual(r.code, 400)
        self.assertIsNone(self.account("new1"))

    def test_csrf_refused(self):
        r = self.client.post("/admin/users/create", {"id": "new1", "password": "pw",
                                                     "capacity": "1M"}, csrf=False)
        self.assertEqual(r.code, 403)
        r = self.client.post("/admin/users/create", {"id": "new1", "password": "pw",
                                                     "capacity": "1M", "csrf": "forged"})
        self.assertEqual(r.code, 403)
        self.assertIsNone(self.account("new1"))
        self.assertEqual(self.client.post("/admin/users/g3a/delete", csrf=False).code, 403)
        self.assertIsNotNone(self.account("g3a"))


class BulkTests(MidadminConsoleTestCase):

    def test_foreign_id_mixed_in(self):
        r = self.client.post("/admin/users/bulk", {"id": ["g3a", "g4a"]})
        self.assertEqual(r.code, 403)
        r = self.client.post("/admin/users/bulk/apply", {"id": ["g3a", "g4a"],
                                                         "apply": ["locked"], "locked": "1"})
        self.assertEqual(r.code, 403)
        self.assertFalse(self.account("g3a").locked)
        self.assertFalse(self.account("g4a").locked)

    def test_bulk_in_scope(self):
        page = self.client.post("/admin/users/bulk", {"id": ["g3a"]})
        self.assertEqual(page.code, 200)
        self.assertNotIn('value="midadmin"', page.text)
        r = self.client.post("/admin/users/bulk/apply", {"id": ["g3a"], "apply": ["locked"],
                                                         "locked": "1"})
        self.assertEqual(r.code, 200)
        self.assertTrue(self.account("g3a").locked)
        # A root field is not offered, so it is not applied either.
        self.client.post("/admin/users/bulk/apply", {"id": ["g3a"], "apply": ["midadmin"],
                                                     "midadmin": "1"})
        self.assertFalse(self.account("g3a").midadmin)

    def test_bulk_csrf(self):
        r = self.client.post("/admin/users/bulk/apply", {"id": ["g3a"], "apply": ["locked"],
                                                         "locked": "1"}, csrf=False)
        self.assertEqual(r.code, 403)
        self.assertFalse(self.account("g3a").locked)


class BrandPageTests(MidadminConsoleTestCase):

    def setUp(self):
        MidadminConsoleTestCase.setUp(self)
        self.uploader = MailClient(self.services, resource=self.client.resource)
        self.uploader.cookies = self.client.cookies
        self.page = self.client.get("/admin/midadmin/")

    def test_page(self):
        self.assertEqual(self.page.code, 200)
        self.assertIn("웹메일 로고와 하단 문구", self.page.text)
        r = self.client.get("/admin/midadmin")
        self.assertEqual((r.code, r.header("location")),
                         (308, "http://console.test/admin/midadmin/"))

    def upload(self, data, csrf=True):
        fields = {"csrf": self.client.csrf} if csrf else {}
        return self.uploader.upload("/admin/midadmin/logo", fields, [("logo", "l.png", data)],
                                    csrf=False)

    def test_logo_upload_and_webmail(self):
        r = self.upload(PNG)
        self.assertEqual((r.code, r.header("location")), (303, "/admin/midadmin/?done=saved"))
        self.assertIn("data:image/png;base64,", self.client.get("/admin/midadmin/").text)
        user = MailClient(self.services)
        self.assertEqual(user.login("g3a", "pw3333").code, 303)
        inbox = user.box("folder/Inbox")
        self.assertIn('class="group-logo" src="data:image/png;base64,', inbox.text)
        other = MailClient(self.services)
        other.login("g4a", "pw4444")
        inbox = other.box("folder/Inbox")
        self.assertNotIn("data:image/png", inbox.text)
        self.assertIn("/mail/images/zwms_logo.svg", inbox.text)
        r = self.client.post("/admin/midadmin/logo/delete")
        self.assertEqual(r.code, 303)
        self.assertNotIn("data:image/png", user.box("folder/Inbox").text)

    def test_svg_and_junk_refused(self):
        for data in (SVG, b"<html><script>x</script>", b"\x89PNG" + b"\x00" * (70 * 1024)):
            r = self.upload(data)
            self.assertEqual(r.code, 400)
            self.assertIn('class="error"', r.text)
        self.assertFalse(os.path.exists(os.path.join(self.root, "data", "midadmin", "3")))

    def test_upload_csrf(self):
        self.assertEqual(self.upload(PNG, csrf=False).code, 403)
        r = self.uploader.upload("/admin/midadmin/logo", {"csrf": "forged"},
                                 [("logo", "l.png", PNG)], csrf=False)
        self.assertEqual(r.code, 403)
        self.assertEqual(self.client.post("/admin/midadmin/logo/delete", csrf=False).code, 403)
        self.assertFalse(os.path.exists(os.path.join(self.root, "data", "midadmin", "3")))

    def test_footer_escaped_in_the_group_webmail(self):
        r = self.client.post("/admin/midadmin/footer",
                             {"footer": "(주)고객사 <script>alert(1)</script>"})
        self.assertEqual(r.code, 303)
        self.assertIn("(주)고객사 &lt;script&gt;", self.client.get("/admin/midadmin/").text)
        user = MailClient(self.services)
        user.login("g3a", "pw3333")
        inbox = user.box("folder/Inbox")
        self.assertIn('<span class="group-footer">(주)고객사 &lt;script&gt;alert(1)&lt;/script&gt;'
                      '</span>', inbox.text)
        self.assertNotIn("<script>alert", inbox.text)
        other = MailClient(self.services)
        other.login("g4a", "pw4444")
        self.assertNotIn("고객사", other.box("folder/Inbox").text)
        # The login page (no account yet) shows no group's footer.
        self.assertNotIn("고객사", MailClient(self.services).get("/mail/").text)

    def test_footer_errors_and_csrf(self):
        r = self.client.post("/admin/midadmin/footer", {"footer": "x" * 1001})
        self.assertEqual(r.code, 400)
        self.assertIn("1000자보다 깁니다", r.text)
        self.assertEqual(self.client.post("/admin/midadmin/footer", {"footer": "a"},
                                          csrf=False).code, 403)
        self.assertFalse(os.path.exists(os.path.join(self.root, "data", "midadmin", "3")))
