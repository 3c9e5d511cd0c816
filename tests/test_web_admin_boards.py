"""
The /admin/boards pages (SPEC A6; seed §14, §25, §26): brief and detailed
lists, create / edit / delete, backup to backup/board/, zip to zip/root/,
moderation (delete any post), CSRF refusal, hostile names, login required.
"""

import json
import os
import zipfile

from tests.test_web_admin import ConsoleTestCase
from tests.webclient import Client
from zwms.store.boards import BoardStore


class BoardsConsoleTestCase(ConsoleTestCase):

    def setUp(self):
        ConsoleTestCase.setUp(self)
        self.store = BoardStore(self.services.home, now=self.clock.seconds)
        self.client.login()

    def create(self, name="free", title="자유게시판", **more):
        values = dict({"name": name, "title": title, "group": "0", "write": "all",
                       "maxattach": "0", "description": "누구나"}, **more)
        return self.client.post("/admin/boards/create", values)


class ListTests(BoardsConsoleTestCase):

    def test_bare_url_serves_the_list(self):
        r = self.client.get("/admin/boards/")
        self.assertEqual(r.code, 200)
        self.assertIn("게시판", r.text)
        self.assertIn('action="/admin/boards/create"', r.text)
        self.assertIn("게시판이 없습니다.", r.text)

    def test_brief_and_detailed(self):
        self.create()
        self.create("sales", "영업부", group="3", write="admin")
        self.store.add("free", "alice", "Alice", "첫 글", "본문")
        brief = self.client.get("/admin/boards/?view=brief")
        self.assertIn("자유게시판", brief.text)
        self.assertIn('href="/admin/boards/b/sales"', brief.text)
        self.assertNotIn("/admin/boards/b/free/zip", brief.text)
        detailed = self.client.get("/admin/boards/?view=detailed")
        self.assertEqual(detailed.code, 200)
        self.assertIn("관리자만", detailed.text)
        self.assertIn('action="/admin/boards/b/free/zip"', detailed.text)
        self.assertIn('action="/admin/boards/b/free/backup"', detailed.text)

    def test_login_required(self):
        anon = Client(self.services)
        r = anon.get("/admin/boards/b/free")
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/login")
        self.assertEqual(anon.post("/admin/boards/create", {"name": "x", "title": "t"}).code,
                         403)
        self.assertEqual(self.store.boards(), [])


class ManageTests(BoardsConsoleTestCase):

    def test_create(self):
        r = self.create()
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/boards/b/free?done=created")
        board = self.store.get("free")
        self.assertEqual((board.title, board.group, board.description),
                         ("자유게시판", 0, "누구나"))
        page = self.client.get("/admin/boards/b/free")
        self.assertEqual(page.code, 200)
        self.assertIn('value="자유게시판"', page.text)
        self.assertIn("board create free", "\n".join(self.webmail_log()))

    def test_bad_values_shown_nothing_made(self):
        for bad in ({"title": ""}, {"group": "x"}, {"write": "root"}, {"name": "../etc"},
                    {"name": "a/b"}, {"name": ""}, {"maxattach": "-5"}):
            r = self.create(**bad)
            self.assertEqual(r.code, 400, bad)
        self.assertIn("타이틀이 비어 있습니다", self.create(title="").text)
        self.assertEqual(self.store.boards(), [])
        self.create()
        r = self.create()
        self.assertEqual(r.code, 400)
        self.assertEqual(len(self.store.boards()), 1)

    def test_csrf_refused(self):
        self.assertEqual(self.client.post("/admin/boards/create",
                                          {"name": "x", "title": "t"}, csrf=False).code, 403)
        self.create()
        for action in ("edit", "delete", "backup", "zip"):
            r = self.client.post("/admin/boards/b/free/%s" % action,
                                 {"title": "hacked", "csrf": "forged"})
            self.assertEqual(r.code, 403, action)
        self.assertEqual(self.store.get("free").title, "자유게시판")
        self.assertFalse(os.path.exists(os.path.join(self.root, "backup", "board")))

    def test_edit(self):
        self.create()
        r = self.client.post("/admin/boards/b/free/edit", {
            "title": "새 이름", "group": "4", "write": "admin", "maxattach": "500",
            "description": ""})
        self.assertEqual(r.code, 303)
        board = self.store.get("free")
        self.assertEqual((board.title, board.group, board.write, board.maxattach),
                         ("새 이름", 4, "admin", 500))
        r = self.client.post("/admin/boards/b/free/edit", {"title": "x", "group": "many"})
        self.assertEqual(r.code, 400)
        self.assertIn('value="many"', r.text)
        self.assertEqual(self.store.get("free").group, 4)

    def test_delete(self):
        self.create()
        self.store.add("free", "alice", "", "글", "본문")
        r = self.client.post("/admin/boards/b/free/delete")
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/boards/?done=deleted")
        self.assertEqual(self.store.boards(), [])
        self.assertEqual(self.client.post("/admin/boards/b/free/delete").code, 404)

    def test_backup_and_zip(self):
        self.create()
        self.store.add("free", "alice", "", "글", "본문")
        r = self.client.post("/admin/boards/b/free/backup")
        self.assertEqual(r.code, 303)
        with open(os.path.join(self.root, "backup", "board", "free", "board.json"), "rb") as f:
            self.assertEqual(json.loads(f.read())["title"], "자유게시판")
        self.assertIn("backup/board/", self.client.get(r.header("location")).text)
        r = self.client.post("/admin/boards/b/free/zip")
        self.assertEqual(r.code, 303)
        self.assertIn("zip/root/", self.client.get(r.header("location")).text)
        folder = os.path.join(self.root, "zip", "root")
        names = os.listdir(folder)
        self.assertEqual(len(names), 1)
        self.assertTrue(names[0].startswith("board-free-"))
        with zipfile.ZipFile(os.path.join(folder, names[0])) as zf:
            self.assertEqual(sorted(zf.namelist()), ["board.json", "posts/00000001.eml"])

    def test_hostile_names(self):
        for name in ("..", "%2e%2e", "a%00b", "x" * 40, "%ED%95%9C", "A%20B"):
            r = self.client.get("/admin/boards/b/%s" % name)
            self.assertIn(r.code, (400, 404), name)
            r = self.client.post("/admin/boards/b/%s/delete" % name)
            self.assertIn(r.code, (400, 404), name)
        self.assertEqual(self.client.get("/admin/boards/b/nope").code, 404)


class ModerationTests(BoardsConsoleTestCase):

    def setUp(self):
        BoardsConsoleTestCase.setUp(self)
        self.create()
        self.store.add("free", "alice", "Alice", "질문", "본문")
        self.store.add("free", "bob", "Bob", "답", "답글 본문", parent=1)
        self.store.add("free", "carol", "", "다른 글", "본문")

    def test_threads_and_posts_shown(self):
        page = self.client.get("/admin/boards/b/free")
        self.assertIn("질문", page.text)
        self.assertIn("다른 글", page.text)
        self.assertIn('action="/admin/boards/b/free/post/1/delete"', page.text)
        thread = self.client.get("/admin/boards/b/free/post/1")
        self.assertEqual(thread.code, 200)
        self.assertIn("답글 본문", thread.text)
        self.assertEqual(self.client.get("/admin/boards/b/free/post/9").code, 404)

    def test_delete_any_post(self):
        r = self.client.post("/admin/boards/b/free/post/2/delete")
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/boards/b/free/post/1?done=deleted")
        self.assertEqual(self.store.info("free", 1).replies, 0)
        r = self.client.post("/admin/boards/b/free/post/1/delete")
        self.assertEqual(r.header("location"), "/admin/boards/b/free?done=deleted")
        self.assertEqual([n for n, _ in self.store.post_files("free")], [3])
        self.assertEqual(self.client.post("/admin/boards/b/free/post/1/delete").code, 404)
        self.assertEqual(self.client.post("/admin/boards/b/free/post/3/delete",
                                          csrf=False).code, 403)
        self.assertIn("board free: post 1 deleted", "\n".join(self.webmail_log()))


class ConsolePostTests(BoardsConsoleTestCase):

    def test_admin_writes_a_notice(self):
        self.create("notice", "공지사항", write="admin")
        r = self.client.post("/admin/boards/b/notice/post", {"subject": "점검 안내",
                                                             "body": "토요일 점검"})
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), "/admin/boards/b/notice/post/1?done=created")
        info = self.store.info("notice", 1)
        self.assertEqual((info.author, info.subject), ("root", "점검 안내"))
        self.assertIn("토요일 점검", self.client.get(r.header("location")).text)
        self.services.settings.set("ADMINID", "alice")
        self.client.post("/admin/boards/b/notice/post", {"subject": "둘째", "body": ""})
        self.assertEqual(self.store.info("notice", 2).author, "alice")
        r = self.client.post("/admin/boards/b/notice/post", {"subject": "", "body": "x"})
        self.assertEqual(r.code, 400)
        self.assertIn("제목이 비어 있습니다", r.text)
        self.assertEqual(self.client.post("/admin/boards/b/notice/post",
                                          {"subject": "s", "body": "b"}, csrf=False).code, 403)
        self.assertEqual(self.store.stats("notice")[1], 2)
