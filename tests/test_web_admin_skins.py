"""
The webmail skin chooser (SPEC A6, W7; seed §13, §19): the list of user
skins with their previews, the choice stored in env.cfg SKIN (CSRF), and the
webmail rendered from the chosen skin — a copied skin in a ZWMS_SKINS folder
changes the pages without any Python, a file it lacks comes from
wow_coolwind, and a missing skin folder falls back to wow_coolwind.
"""

import os
import shutil

from tests.test_web_admin import ConsoleTestCase
from tests.webclient import Client
from tests.webmailclient import MailClient
from zwms.config.schema import key
from zwms.errors import InvalidValue
from zwms.web import templates as templates_module
from zwms.web.userskin import list_skins, preview_of


class ShippedSkinsTests(ConsoleTestCase):
    """The skins shipped in the package."""

    def setUp(self):
        ConsoleTestCase.setUp(self)
        self.client.login()

    def test_list_and_preview(self):
        page = self.client.get("/admin/skins/")
        self.assertEqual(page.code, 200)
        self.assertIn('value="wow_coolwind" checked', page.text)
        self.assertNotIn('value="common"', page.text)
        self.assertIn('src="/admin/skins/preview/wow_coolwind"', page.text)
        self.assertIn("이 스킨 사용", page.text)
        r = self.client.get("/admin/skins/preview/wow_coolwind")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.header("content-type"), "image/svg+xml")
        self.assertTrue(r.body.startswith(b"<svg"))
        self.assertNotIn(b"<script", r.body)

    def test_bare_url(self):
        r = self.client.get("/admin/skins")
        self.assertIn(r.code, (301, 308))
        self.assertEqual(self.client.get("/admin/").header("location"), "/admin/system")

    def test_preview_names_checked(self):
        for name in ("common", "nosuch", "..%2fcommon", "..", "wow_coolwind.svg",
                     "%2e%2e%2fetc%2fpasswd"):
            r = self.client.get("/admin/skins/preview/%s" % name)
            self.assertIn(r.code, (400, 404), name)
            self.assertNotIn(b"root:", r.body)

    def test_choose_refuses_unknown_and_admin_skins(self):
        for name in ("common", "nosuch", "../wow_coolwind", "", "WOW COOLWIND"):
            r = self.client.post("/admin/skins/choose", {"skin": name})
            self.assertEqual(r.code, 400, name)
        self.assertFalse(os.path.exists(self.services.home.env_cfg)
                         and "SKIN" in open(self.services.home.env_cfg).read())

    def test_choose_needs_csrf_and_login(self):
        r = self.client.post("/admin/skins/choose", {"skin": "wow_coolwind"}, csrf=False)
        self.assertEqual(r.code, 403)
        anonymous = Client(self.services)
        self.assertEqual(anonymous.get("/admin/skins/").code, 303)
        self.assertEqual(anonymous.get("/admin/skins/preview/wow_coolwind").code, 303)
        self.assertEqual(anonymous.post("/admin/skins/choose", {"skin": "x"}).code, 403)

    def test_skin_setting_on_the_environment_page(self):
        page = self.client.get("/admin/config/env")
        self.assertIn('name="SKIN"', page.text)
        self.assertIn("웹메일 스킨", page.text)

    def test_setting_parser(self):
        k = key("SKIN")
        self.assertEqual(k.parse("My_Skin"), "my_skin")
        self.assertEqual(k.parse(""), "wow_coolwind")
        for bad in ("common", "../x", "a b", "x/y", "-x"):
            self.assertRaises(InvalidValue, k.parse, bad)


class CopiedSkinTests(ConsoleTestCase):
    """A ZWMS_SKINS folder with the shipped skins and a copy "myskin"."""

    def setUp(self):
        self.skins = os.path.abspath(self.mktemp())
        shutil.copytree(templates_module.skins_root(), self.skins)
        self.copy = os.path.join(self.skins, "myskin")
        os.makedirs(self.copy)
        # A partial copy: only the login page and the css (a full copy works the same).
        shutil.copy(os.path.join(self.skins, "wow_coolwind", "loginuser.html"), self.copy)
        self.edit("loginuser.html", "<main", '<p id="myskin">MYSKIN LOGIN</p><main', count=0)
        old = os.environ.get("ZWMS_SKINS")
        os.environ["ZWMS_SKINS"] = self.skins
        self.addCleanup(self.restore, old)
        ConsoleTestCase.setUp(self)
        self.client.login()
        self.user = MailClient(self.services)

    @staticmethod
    def restore(old):
        if old is None:
            os.environ.pop("ZWMS_SKINS", None)
        else:
            os.environ["ZWMS_SKINS"] = old

    def edit(self, name, old, new, count=1):
        path = os.path.join(self.copy, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if count:
            self.assertIn(old, text)
            text = text.replace(old, new, 1)
        else:
            text = new.replace("<main", "") + text
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))

    def choose(self, name):
        self.client.get("/admin/skins/")
        r = self.client.post("/admin/skins/choose", {"skin": name})
        self.assertEqual((r.code, r.header("location")), (303, "/admin/skins/?done=saved"))

    def test_copy_listed_with_its_preview(self):
        with open(os.path.join(self.skins, "preview_myskin.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
        os.makedirs(os.path.join(self.skins, "notaskin"))
        self.assertEqual(list_skins(self.skins), [("myskin", True), ("wow_coolwind", True)])
        page = self.client.get("/admin/skins/")
        self.assertIn('value="myskin"', page.text)
        self.assertNotIn("notaskin", page.text)
        r = self.client.get("/admin/skins/preview/myskin")
        self.assertEqual((r.code, r.header("content-type")), (200, "image/png"))
        self.assertEqual(preview_of(self.skins, "myskin"), ("preview_myskin.png", b"image/png"))

    def test_chosen_copy_used_and_edits_show_without_python(self):
        self.assertNotIn("MYSKIN LOGIN", self.user.get("/mail/").text)
        self.choose("myskin")
        self.assertIn("SKIN=myskin", open(self.services.home.env_cfg).read())
        self.assertIn('value="myskin" checked', self.client.get("/admin/skins/").text)
        login = self.user.get("/mail/")
        self.assertEqual(login.code, 200)
        self.assertIn("MYSKIN LOGIN", login.text)
        # Edit the copy: the next page shows it (no restart, no Python).
        self.edit("loginuser.html", "MYSKIN LOGIN", "MYSKIN EDITED")
        self.assertIn("MYSKIN EDITED", self.user.get("/mail/").text)
        # Pages the copy lacks come from wow_coolwind.
        self.assertEqual(self.user.login().code, 303)
        inbox = self.user.box("folder/Inbox")
        self.assertEqual(inbox.code, 200)
        self.assertIn('href="/mail/css/mail.css"', inbox.text)
        self.assertEqual(self.user.get("/mail/css/mail.css").code, 200)

    def test_copy_overrides_commonhead_and_css(self):
        shutil.copy(os.path.join(self.skins, "wow_coolwind", "commonhead.html"), self.copy)
        self.edit("commonhead.html", '<span class="who">', '<span class="who">MYHEAD ')
        os.makedirs(os.path.join(self.copy, "css"))
        with open(os.path.join(self.copy, "css", "mail.css"), "w") as f:
            f.write("/* myskin */ body { color: #000; }\n")
        self.choose("myskin")
        self.user.login()
        self.assertIn("MYHEAD alice", self.user.box("folder/Inbox").text)
        self.assertIn(b"/* myskin */", self.user.get("/mail/css/mail.css").body)
        self.assertEqual(self.user.get("/mail/images/zwms_logo.svg").code, 200)

    def test_missing_skin_folder_falls_back(self):
        self.choose("myskin")
        shutil.rmtree(self.copy)
        login = self.user.get("/mail/")
        self.assertEqual(login.code, 200)
        self.assertNotIn("MYSKIN", login.text)
        page = self.client.get("/admin/skins/")
        self.assertIn("설정된 스킨 myskin이(가) 없어서", page.text)
        self.assertIn('value="wow_coolwind" checked', page.text)

    def test_env_cfg_by_hand(self):
        with open(self.services.home.env_cfg, "a") as f:
            f.write("SKIN=myskin\n")
        self.services.settings.refresh()
        self.assertIn("MYSKIN LOGIN", self.user.get("/mail/").text)
        with open(self.services.home.env_cfg, "w") as f:
            f.write("SKIN=gone\n")
        self.services.settings.refresh()
        self.assertEqual(self.services.settings["SKIN"], "gone")
        login = self.user.get("/mail/")
        self.assertEqual(login.code, 200)
        self.assertNotIn("MYSKIN", login.text)
        # "common" is refused by the setting itself: the last good value stays.
        with open(self.services.home.env_cfg, "w") as f:
            f.write("SKIN=common\n")
        self.services.settings.refresh()
        self.assertEqual(self.services.settings["SKIN"], "gone")
