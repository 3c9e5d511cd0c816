"""
The settings pages (SPEC A3, A6; seed §4, §6, §9, §11, §12) and the log
viewer (A2) through the console's forms.
"""

import os

from tests.test_web_admin import ConsoleTestCase
from zwms import logs as logchannels
from zwms.config.schema import KEYS


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class ConfigPageTests(ConsoleTestCase):

    def setUp(self):
        ConsoleTestCase.setUp(self)
        self.client.login()
        self.env = self.services.home.env_cfg
        self.cfg = self.services.home.zwms_cfg

    def env_form(self, **changes):
        data = {k.name: str(self.services.settings[k.name]) if not isinstance(
            self.services.settings[k.name], bool) else str(int(self.services.settings[k.name]))
            for k in KEYS if k.file == "env.cfg"}
        data.update(changes)
        return data

    def test_env_page_lists_every_key_with_help(self):
        text = self.client.get("/admin/config/env").text
        for k in KEYS:
            if k.file == "env.cfg":
                self.assertIn('name="%s"' % k.name, text)
        self.assertIn("폭탄메일거부", text)   # the Korean help of BOMBREJECT

    def test_env_save(self):
        r = self.client.post("/admin/config/env", self.env_form(POP3COUNT="42"))
        self.assertEqual(r.code, 303)
        self.assertEqual(self.services.settings["POP3COUNT"], 42)
        self.assertIn("POP3COUNT=42", read(self.env))

    def test_env_error_shown_nothing_written(self):
        before = read(self.env)
        r = self.client.post("/admin/config/env", self.env_form(
            POP3COUNT="many", BOMBREJECT="7", OUTLAWLEVEL="2"))
        self.assertEqual(r.code, 400)
        self.assertIn("저장하지 않았습니다", r.text)
        self.assertIn('value="many"', r.text)
        self.assertIn("expected 0 (off), 1 (refuse) or 2 (delegate)", r.text)
        self.assertEqual(read(self.env), before)
        self.assertEqual(self.services.settings["OUTLAWLEVEL"], 3)

    def test_basic_settings_restart_notice(self):
        self.assertNotIn("재시작해야 반영됩니다:", self.client.get("/admin/config/basic").text)
        data = {k.name: "" for k in KEYS if k.file == "zwms.cfg"}
        page = self.client.get("/admin/config/basic").text
        import re
        for name in data:
            data[name] = re.search(r'name="%s" value="([^"]*)"' % name, page).group(1)
        data["PERPAGE"] = "50"
        r = self.client.post("/admin/config/basic", data)
        self.assertEqual(r.code, 303)
        self.assertIn("PERPAGE=50", read(self.cfg))
        self.assertIn("재시작해야 반영됩니다: PERPAGE", self.client.get("/admin/config/basic").text)
        data["DNS1"] = "not-an-ip"
        r = self.client.post("/admin/config/basic", data)
        self.assertEqual(r.code, 400)
        self.assertNotIn("DNS1", read(self.cfg))

    def test_notice(self):
        r = self.client.post("/admin/config/notice", {"text": "점검 안내 <b>5시</b>"})
        self.assertEqual(r.code, 303)
        self.assertIn("점검 안내", read(os.path.join(self.root, "data", "notice.txt")))
        page = self.client.get("/admin/config/notice").text
        self.assertIn("&lt;b&gt;5시&lt;/b&gt;", page)   # escaped, never markup

    def test_welcome(self):
        r = self.client.post("/admin/config/welcome", {"text": "환영합니다\n\n안내 본문"})
        self.assertEqual(r.code, 303)
        self.assertIn("환영합니다", self.client.get("/admin/config/welcome").text)
        self.assertIn("환영합니다", read(os.path.join(self.root, "data", "welcome.txt")))

    def test_spam_and_virus(self):
        r = self.client.post("/admin/config/spam", {"text": "광고\n\nfree money\n광고\n"})
        self.assertEqual(r.code, 303)
        self.assertEqual(read(os.path.join(self.root, "data", "spam.dat")), "광고\nfree money\n")
        r = self.client.post("/admin/config/virus", {"text": ".EXE\nscr\n"})
        self.assertEqual(r.code, 303)
        self.assertEqual(read(os.path.join(self.root, "data", "virus.dat")), "exe\nscr\n")
        before = read(os.path.join(self.root, "data", "virus.dat"))
        r = self.client.post("/admin/config/virus", {"text": "exe\n../../x y\n"})
        self.assertEqual(r.code, 400)
        self.assertIn("line 2", r.text)
        self.assertEqual(read(os.path.join(self.root, "data", "virus.dat")), before)

    def test_aliases(self):
        domain = self.services.settings["DOMAIN"]
        r = self.client.post("/admin/config/aliases/add", {"virtual": "info@" + domain,
                                                           "real": "alice"})
        self.assertEqual(r.code, 303)
        self.assertIn(("info@" + domain, "alice"), list(self.services.directory.aliases()))
        self.assertIn("info@" + domain, self.client.get("/admin/config/aliases").text)
        r = self.client.post("/admin/config/aliases/add", {"virtual": "x@elsewhere.example",
                                                           "real": "alice"})
        self.assertEqual(r.code, 400)
        r = self.client.post("/admin/config/aliases/add", {"virtual": "y@" + domain,
                                                           "real": "nobody"})
        self.assertEqual(r.code, 400)
        r = self.client.post("/admin/config/aliases/delete", {"virtual": "info@" + domain,
                                                              "real": "alice"})
        self.assertEqual(r.code, 303)
        self.assertEqual(list(self.services.directory.aliases()), [])

    def test_domains(self):
        r = self.client.post("/admin/config/domains/add", {"domain": "example.kr"})
        self.assertEqual(r.code, 303)
        self.assertIn("example.kr", self.services.settings.list("MULTIDOMAINS"))
        self.assertEqual(self.client.post("/admin/config/domains/add",
                                          {"domain": "bad domain!"}).code, 400)
        self.assertEqual(self.client.post("/admin/config/domains/delete",
                                          {"domain": self.services.settings["DOMAIN"]}).code,
                         400)
        self.assertEqual(self.client.post("/admin/config/domains/delete",
                                          {"domain": "example.kr"}).code, 303)
        self.assertEqual(self.services.settings.list("MULTIDOMAINS"), [])


class LogPageTests(ConsoleTestCase):

    def setUp(self):
        ConsoleTestCase.setUp(self)
        self.client.login()
        folder = self.services.home.logs
        with open(os.path.join(folder, "MailServer.log"), "w") as f:
            for i in range(250):
                f.write("2024-01-%02d 10:00:00 line %d %s\n" % (1 + i % 28, i,
                                                              "needle" if i % 50 == 0 else ""))
        with open(os.path.join(folder, "MailServer.log.1"), "w") as f:
            f.write("2023-12-31 09:00:00 rotated old line\n")

    def test_paging_newest_first(self):
        r = self.client.get("/admin/logs/MailServer")
        self.assertEqual(r.code, 200)
        self.assertIn("251줄, 3쪽 중 1쪽", r.text)
        self.assertIn("line 249", r.text)
        self.assertNotIn("rotated old line", r.text)
        last = self.client.get("/admin/logs/MailServer?page=3").text
        self.assertIn("rotated old line", last)

    def test_search_text_and_date(self):
        r = self.client.get("/admin/logs/MailServer?q=NEEDLE")
        self.assertIn("5줄", r.text)
        r = self.client.get("/admin/logs/MailServer?date=2023-12")
        self.assertIn("1줄", r.text)
        r = self.client.get("/admin/logs/MailServer?date=yesterday")
        self.assertEqual(r.code, 200)
        self.assertIn("the date must look like", r.text)

    def test_unknown_channel(self):
        self.assertEqual(self.client.get("/admin/logs/..%2f..%2fdata%2fadmin.cfg").code, 404)
        self.assertEqual(self.client.get("/admin/logs/Secret").code, 404)

    def test_delete_logs(self):
        r = self.client.post("/admin/logs/delete")
        self.assertEqual(r.code, 303)
        left = [n for n in os.listdir(self.services.home.logs) if n.startswith("MailServer")]
        self.assertEqual(left, [])
        self.assertTrue(any("logs deleted" in line
                            for line in self.services.logs.lines[logchannels.WEBMAIL]))
        self.assertIn("모든 로그 파일을 삭제했습니다", self.client.get("/admin/system?done=logs").text)


class FileLogsDeleteTests(ConsoleTestCase):
    """Delete Logs under the server's open log files: no hole, no lost line."""

    def test_reopen(self):
        from zwms.admin import consoleops, ops
        logs = logchannels.FileLogs(self.services.home.logs)
        self.addCleanup(logs.close)
        logs.write(logchannels.POP, "x" * 1000)
        self.services.logs = logs
        ctx = ops.context_from_services(self.services, None, "test")
        consoleops.log_delete(ctx)
        logs.write(logchannels.POP, "after")
        with open(logs.path(logchannels.POP), "rb") as f:
            data = f.read()
        self.assertNotIn(b"\x00", data)
        self.assertIn(b"after", data)
