"""
The boards, user side (SPEC W3, seed §14; issue 7): the visible boards by
board group number and allowed-board list (403 otherwise), paging, reading
a thread, attachments with Korean names (RFC 5987), write / reply / edit /
delete of one's own posts, moderators, CSRF, hostile board names.
"""

from urllib.parse import quote

from tests.test_webmail_session import MailClient, WebmailTestCase
from zwms.store.boards import BoardStore

KOREAN = "회의록 11월.hwp"


class BoardsTestCase(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.store = BoardStore(self.services.home, now=self.clock.seconds)
        self.store.create("free", "자유게시판", description="누구나")
        self.store.create("sales", "영업부", group=3)
        self.store.create("notice", "공지사항", write="admin")
        self.store.create("secret", "비밀", group=9)
        self.client.login()
        self.base = "/mail/boards/%s/" % self.client.rand

    def write(self, board="free", subject="첫 글", body="안녕하세요", files=(), client=None,
              **fields):
        client = client or self.client
        rand = client.rand
        return client.upload("/mail/boards/%s/b/%s/write" % (rand, board),
                             dict({"subject": subject, "body": body}, **fields), files)

    def other(self, login="bob", password="secret2"):
        client = MailClient(self.services)
        client.login(login, password)
        return client


class ListTests(BoardsTestCase):

    def test_visible_boards_by_group_and_list(self):
        r = self.client.get(self.base)
        self.assertEqual(r.code, 200)
        self.assertIn("게시판", r.text)
        self.assertIn("자유게시판", r.text)
        self.assertIn("공지사항", r.text)
        self.assertNotIn("영업부", r.text)
        self.assertNotIn("비밀", r.text)
        self.assertIn('href="/mail/css/boards.css"', r.text)
        self.services.accounts.set("alice", "boardgroup", "3")
        self.services.accounts.set("alice", "boards", "secret")
        r = self.client.get(self.base)
        self.assertIn("영업부", r.text)
        self.assertIn("비밀", r.text)

    def test_invisible_board_refused(self):
        for path in ("b/sales/", "b/sales/write", "b/secret/1"):
            r = self.client.get(self.base + path)
            self.assertEqual(r.code, 403, path)
            self.assertIn("볼 수 없는 게시판", r.text)
        self.assertEqual(self.write("sales").code, 403)
        self.assertEqual(self.store.post_files("sales"), [])
        self.assertIn("webmail board refused: alice may not see sales", self.log())
        self.services.accounts.set("alice", "boardgroup", "3")
        self.assertEqual(self.client.get(self.base + "b/sales/").code, 200)

    def test_hostile_and_missing_names(self):
        for name in ("..", "%2e%2e", "a%00b", "x" * 40, "%ED%95%9C", "a.b", "-x"):
            r = self.client.get(self.base + "b/%s/" % name)
            self.assertEqual(r.code, 400, name)
            self.assertIn("잘못된 게시판 이름", r.text)
        self.assertEqual(self.client.get(self.base + "b/A%2fB/").code, 404)
        self.assertEqual(self.client.get(self.base + "b/nope/").code, 404)
        self.assertEqual(self.client.get(self.base + "b/free/99").code, 404)
        self.assertEqual(self.write("..").code, 400)

    def test_paging(self):
        for i in range(25):
            self.store.add("free", "bob", "Bob", "글 %02d" % i, "본문")
        r = self.client.get(self.base + "b/free/")
        self.assertEqual(r.code, 200)
        self.assertIn("글 24", r.text)
        self.assertNotIn("글 04", r.text)
        self.assertIn('href="?page=2"', r.text)
        r = self.client.get(self.base + "b/free/?page=2")
        self.assertIn("글 04", r.text)
        self.assertNotIn("글 05", r.text)

    def test_no_inline_script_or_style(self):
        self.write(files=[("files", "a.txt", b"x")])
        for path in ("", "b/free/", "b/free/1", "b/free/write", "b/free/1/edit"):
            r = self.client.get(self.base + path)
            self.assertEqual(r.code, 200, path)
            self.assertNotIn("<script", r.text.lower(), path)
            self.assertNotIn(" style=", r.text.lower(), path)
        css = self.client.get("/mail/css/boards.css")
        self.assertEqual(css.code, 200)
        self.assertIn(".post", css.text)

    def test_session_required(self):
        anon = MailClient(self.services)
        r = anon.get("/mail/boards/-/")
        self.assertEqual(r.code, 303)
        self.assertTrue(r.header("location").startswith("/mail/"))


class WriteTests(BoardsTestCase):

    def test_write_read_and_download(self):
        r = self.write(files=[("files", KOREAN, b"HWP data"), ("files", "b.txt", b"text")])
        self.assertEqual(r.code, 303)
        self.assertTrue(r.header("location").startswith(self.base + "b/free/1?done=added"))
        info = self.store.info("free", 1)
        self.assertEqual((info.author, info.name, info.subject, info.attachments),
                         ("alice", "Alice", "첫 글", 2))
        page = self.client.get(self.base + "b/free/1")
        self.assertEqual(page.code, 200)
        self.assertIn("안녕하세요", page.text)
        self.assertIn(KOREAN, page.text)
        post = self.store.post("free", 1)
        index = post.attachments[0].index
        r = self.client.get(self.base + "b/free/1/part/%d" % index)
        self.assertEqual(r.code, 200)
        self.assertEqual(r.body, b"HWP data")
        self.assertIn("filename*=UTF-8''%s" % quote(KOREAN, safe=""),
                      r.header("content-disposition"))
        self.assertEqual(self.client.get(self.base + "b/free/1/part/0").code, 404)
        self.assertIn("webmail board post: alice on free, 1", self.log())
        listing = self.client.get(self.base + "b/free/")
        self.assertIn("첫 글", listing.text)

    def test_new_post_form_field_parent_zero(self):
        self.write()
        self.assertEqual(self.write(subject="둘째", parent="0").code, 303)
        self.assertEqual(self.store.info("free", 2).parent, 0)
        self.assertEqual(self.write(subject="셋째", parent="junk").code, 303)
        self.assertEqual(self.store.info("free", 3).parent, 0)
        form = self.client.get(self.base + "b/free/write?reply=0")
        self.assertIn('name="parent" value="0"', form.text)

    def test_write_form_and_refusals(self):
        r = self.client.get(self.base + "b/free/write")
        self.assertEqual(r.code, 200)
        self.assertIn('enctype="multipart/form-data"', r.text)
        self.assertEqual(self.write(subject="").code, 400)
        self.assertEqual(self.write(subject="x" * 300).code, 400)
        r = self.client.upload("/mail/boards/%s/b/free/write" % self.client.rand,
                               {"subject": "s", "body": "b"}, csrf=False)
        self.assertEqual(r.code, 403)
        r = self.client.upload("/mail/boards/%s/b/free/write" % self.client.rand,
                               {"subject": "s", "body": "b", "csrf": "forged"})
        self.assertEqual(r.code, 403)
        self.assertEqual(self.store.post_files("free"), [])

    def test_attachment_limit(self):
        self.store.update("free", maxattach=1)
        r = self.write(files=[("files", "big.bin", b"x" * 2000)])
        self.assertEqual(r.code, 400)
        self.assertIn("1 KB", r.text)
        self.assertEqual(self.store.post_files("free"), [])
        self.assertEqual(self.write(files=[("files", "ok.bin", b"x" * 900)]).code, 303)

    def test_admin_only_board(self):
        self.assertEqual(self.client.get(self.base + "b/notice/write").code, 403)
        self.assertEqual(self.write("notice").code, 403)
        self.assertNotIn("/b/notice/write", self.client.get(self.base + "b/notice/").text)
        self.services.settings.set("ADMINID", "alice")
        self.assertEqual(self.write("notice").code, 303)

    def test_reply_joins_the_thread(self):
        self.write()
        bob = self.other()
        form = bob.get("/mail/boards/%s/b/free/write?reply=1" % bob.rand)
        self.assertIn('name="parent" value="1"', form.text)
        self.assertIn("Re: 첫 글", form.text)
        r = self.write(subject="답글", body="답입니다", client=bob, parent="1")
        self.assertEqual(r.code, 303)
        r = self.write(subject="답의 답", client=bob, parent="2")
        self.assertEqual(self.store.info("free", 3).parent, 1)
        page = self.client.get(self.base + "b/free/1")
        self.assertIn("답입니다", page.text)
        self.assertIn('id="p3"', page.text)
        r = self.client.get(self.base + "b/free/2")
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), self.base + "b/free/1#p2")
        self.assertIn("[2]", self.client.get(self.base + "b/free/").text)
        self.assertEqual(self.write(parent="99").code, 404)


class ChangeTests(BoardsTestCase):

    def setUp(self):
        BoardsTestCase.setUp(self)
        self.write(files=[("files", KOREAN, b"one"), ("files", "b.txt", b"two")])
        self.bob = self.other()
        self.bob_base = "/mail/boards/%s/" % self.bob.rand

    def test_edit_own_post(self):
        r = self.client.get(self.base + "b/free/1/edit")
        self.assertEqual(r.code, 200)
        self.assertIn("안녕하세요", r.text)
        post = self.store.post("free", 1)
        first = post.attachments[0].index
        r = self.client.upload(self.base + "b/free/1/edit",
                               {"subject": "고친 글", "body": "고쳤어요",
                                "keep_%d" % first: "1"}, [("files", "c.txt", b"three")])
        self.assertEqual(r.code, 303)
        post = self.store.post("free", 1)
        self.assertEqual(post.info.subject, "고친 글")
        self.assertEqual([a.filename for a in post.attachments], [KOREAN, "c.txt"])
        self.assertIn("수정됨", self.client.get(self.base + "b/free/1").text)

    def test_editing_another_users_post_refused(self):
        self.assertEqual(self.bob.get(self.bob_base + "b/free/1/edit").code, 403)
        r = self.bob.upload(self.bob_base + "b/free/1/edit", {"subject": "hacked", "body": ""})
        self.assertEqual(r.code, 403)
        self.assertIn("내 글이 아닙니다", r.text)
        r = self.bob.post(self.bob_base + "b/free/1/delete")
        self.assertEqual(r.code, 403)
        self.assertEqual(self.store.info("free", 1).subject, "첫 글")
        page = self.bob.get(self.bob_base + "b/free/1")
        self.assertNotIn("/b/free/1/edit", page.text)
        self.assertIn("webmail board refused: bob may not change post 1 of free", self.log())

    def test_delete_own_post(self):
        self.assertEqual(self.client.post(self.base + "b/free/1/delete", csrf=False).code, 403)
        self.assertEqual(self.store.post_files("free")[0][0], 1)
        r = self.client.post(self.base + "b/free/1/delete")
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), self.base + "b/free/?done=deleted")
        self.assertEqual(self.store.post_files("free"), [])

    def test_top_post_with_replies_only_by_a_moderator(self):
        self.write(subject="답", client=self.bob, parent="1")
        self.assertEqual(self.client.post(self.base + "b/free/1/delete").code, 409)
        r = self.bob.post(self.bob_base + "b/free/2/delete")
        self.assertEqual(r.code, 303)
        self.assertEqual(r.header("location"), self.bob_base + "b/free/1?done=deleted")
        self.write(subject="또 답", client=self.bob, parent="1")
        self.services.settings.set("ADMINID", "bob")
        self.assertEqual(self.bob.upload(self.bob_base + "b/free/1/edit",
                                         {"subject": "관리자 수정", "body": ""}).code, 303)
        self.assertEqual(self.bob.post(self.bob_base + "b/free/1/delete").code, 303)
        self.assertEqual(self.store.post_files("free"), [])

    def test_middle_admin_moderates_own_group(self):
        self.services.accounts.set("bob", "midadmin", "1")
        self.services.accounts.set("bob", "boardgroup", "3")
        self.services.accounts.set("alice", "boardgroup", "3")
        self.store.add("sales", "alice", "Alice", "영업 글", "본문")
        self.assertEqual(self.bob.post(self.bob_base + "b/sales/1/delete").code, 303)
        self.assertEqual(self.bob.post(self.bob_base + "b/free/1/delete").code, 403)
