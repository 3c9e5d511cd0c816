"""
The board store (SPEC W3, A6; seed §14): board info, posts as .eml files
with MIME attachments, the paged index and its rebuild, one-level threads,
who sees / writes / changes what, hostile names; and the admin operations
of zwms/admin/boardops.py (list, create, edit, delete, backup, zip).
"""

import json
import os
import zipfile

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import make_services
from zwms.account import Account
from zwms.admin import boardops
from zwms.admin.ops import context_from_services
from zwms.errors import InvalidValue
from zwms.home import Home
from zwms.store.boardinfo import can_change, can_see, can_write, check_name, is_moderator
from zwms.store.boards import BoardExists, BoardStore, NoSuchBoard, NoSuchPost

HOSTILE = ["..", ".", "../x", "a/b", "/etc", "a\x00b", "a\\b", ".hidden", "", "   ",
           "x" * 33, "a\nb", "-x", "한글", "a b", "%2e%2e"]

KOREAN = "보고서 2026.pdf"


def account(aid, boardgroup=0, boards="", midadmin=False):
    a = Account(id=aid)
    a.fields.update(boardgroup=boardgroup, boards=boards, midadmin=midadmin)
    return a


class StoreTestCase(SynchronousTestCase):

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.home = Home(self.mktemp())
        self.home.create()
        self.store = BoardStore(self.home, now=self.clock.seconds)
        self.store.create("free", "자유게시판", description="아무 글이나")


class BoardInfoTests(StoreTestCase):

    def test_create_get_list(self):
        b = self.store.get("free")
        self.assertEqual((b.name, b.title, b.group, b.write, b.maxattach),
                         ("free", "자유게시판", 0, "all", 0))
        with open(self.home.path("data", "board", "free", "board.json"), "rb") as f:
            self.assertEqual(json.loads(f.read())["title"], "자유게시판")
        self.store.create("Sales", "영업", group=3, write="admin", maxattach="100")
        self.assertEqual([b.name for b in self.store.boards()], ["free", "sales"])
        self.assertEqual(self.store.get("sales").maxattach, 100)
        self.assertRaises(BoardExists, self.store.create, "free", "again")

    def test_update_and_delete(self):
        b = self.store.update("free", title="새 제목", group="2", write="admin")
        self.assertEqual((b.title, b.group, b.write), ("새 제목", 2, "admin"))
        self.assertEqual(self.store.get("free").title, "새 제목")
        for bad in ({"title": ""}, {"group": "x"}, {"group": "-1"}, {"write": "root"},
                    {"color": "x"}, {"created": 1}):
            self.assertRaises(InvalidValue, self.store.update, "free", **bad)
        self.assertEqual(self.store.get("free").title, "새 제목")
        self.store.delete("free")
        self.assertRaises(NoSuchBoard, self.store.get, "free")
        self.assertEqual(self.store.boards(), [])
        self.assertEqual(os.listdir(self.home.path("data", "board")), [])
        # A board a crash left renamed aside goes with the next deletion.
        self.store.create("one", "t")
        self.store.create("two", "t")
        os.rename(self.home.path("data", "board", "one"),
                  self.home.path("data", "board", ".tmp-deleted-one-1234"))
        self.store.delete("two")
        self.assertEqual(os.listdir(self.home.path("data", "board")), [])

    def test_hostile_names_refused(self):
        for name in HOSTILE:
            self.assertRaises(InvalidValue, check_name, name)
            self.assertRaises(InvalidValue, self.store.create, name, "t")
            self.assertRaises(InvalidValue, self.store.get, name)
            self.assertRaises(InvalidValue, self.store.folder, name)
        self.assertEqual(os.listdir(self.home.path("data", "board")), ["free"])

    def test_link_out_of_data_board_is_no_board(self):
        outside = self.mktemp()
        os.makedirs(outside)
        with open(os.path.join(outside, "board.json"), "w") as f:
            f.write('{"title": "x"}')
        os.symlink(outside, self.home.path("data", "board", "evil"))
        self.assertRaises(NoSuchBoard, self.store.get, "evil")
        self.assertRaises(NoSuchBoard, self.store.add, "evil", "alice", "", "s", "b")
        self.assertEqual([b.name for b in self.store.boards()], ["free"])
        self.assertEqual(os.listdir(outside), ["board.json"])

    def test_folder_without_info_is_no_board(self):
        os.makedirs(self.home.path("data", "board", "stray"))
        self.assertEqual([b.name for b in self.store.boards()], ["free"])
        self.assertRaises(NoSuchBoard, self.store.get, "stray")
        self.assertRaises(NoSuchBoard, self.store.page, "nope")


class PostTests(StoreTestCase):

    def add(self, subject="제목", author="alice", **kw):
        return self.store.add("free", author, "앨리스", subject, "본문입니다.\n둘째 줄",
                              domain="example.com", **kw)

    def test_post_is_an_eml_with_attachments(self):
        info = self.add(attachments=[(KOREAN, "application/pdf", b"%PDF-1.4 data")])
        self.assertEqual((info.number, info.parent, info.author, info.subject,
                          info.attachments), (1, 0, "alice", "제목", 1))
        path = self.home.path("data", "board", "free", "posts", "00000001.eml")
        with open(path, "rb") as f:
            data = f.read()
        self.assertIn(b"X-ZWMS-Author: alice\r\n", data)
        post = self.store.post("free", 1)
        self.assertEqual(post.body.replace("\r\n", "\n").strip(), "본문입니다.\n둘째 줄")
        self.assertEqual([a.filename for a in post.attachments], [KOREAN])
        ctype, name, body = self.store.attachment("free", 1, post.attachments[0].index)
        self.assertEqual((ctype, name, body), ("application/pdf", KOREAN, b"%PDF-1.4 data"))
        self.assertRaises(NoSuchPost, self.store.attachment, "free", 1, 0)
        self.assertRaises(NoSuchPost, self.store.post, "free", 9)

    def test_bad_posts_refused_nothing_stored(self):
        for subject, body in (("", "x"), ("x" * 201, "x"), ("a\x00", "b")):
            self.assertRaises(InvalidValue, self.store.add, "free", "alice", "", subject, body)
        self.assertRaises(InvalidValue, self.store.add, "free", "../x", "", "s", "b")
        self.assertRaises(NoSuchPost, self.add, parent=5)
        self.assertEqual(self.store.post_files("free"), [])
        self.assertEqual(self.store.stats("free"), (0, 0, 0))

    def test_paging_newest_first_and_counts(self):
        for i in range(45):
            self.add("글 %d" % i)
        page = self.store.page("free", 1)
        self.assertEqual((page.page, page.pages, page.threads, len(page.posts)), (1, 3, 45, 20))
        self.assertEqual(page.posts[0].subject, "글 44")
        last = self.store.page("free", 3)
        self.assertEqual([p.subject for p in last.posts], ["글 4", "글 3", "글 2", "글 1",
                                                           "글 0"])
        self.assertEqual(self.store.page("free", 99).page, 3)

    def test_replies_one_level(self):
        top = self.add("질문")
        r1 = self.add("답 1", author="bob", parent=top.number)
        r2 = self.add("답 2", parent=r1.number)
        self.assertEqual((r1.parent, r2.parent), (top.number, top.number))
        self.assertEqual([p.number for p in self.store.replies("free", top.number)],
                         [r1.number, r2.number])
        page = self.store.page("free")
        self.assertEqual([(p.subject, p.replies) for p in page.posts], [("질문", 2)])
        self.assertEqual(self.store.stats("free")[:2], (1, 3))
        self.assertEqual(self.store.delete_post("free", r1.number), [r1.number])
        self.assertEqual(self.store.info("free", top.number).replies, 1)
        self.assertEqual(self.store.delete_post("free", top.number), [top.number, r2.number])
        self.assertEqual(self.store.post_files("free"), [])
        self.assertEqual(self.store.stats("free"), (0, 0, 0))

    def test_edit_keeps_chosen_attachments(self):
        self.add(attachments=[("a.txt", "", b"AAA"), (KOREAN, "", b"BBB")])
        post = self.store.post("free", 1)
        first = post.attachments[0].index
        self.clock.advance(60)
        info = self.store.edit("free", 1, "고친 제목", "고친 본문", keep=[first],
                               attachments=[("c.bin", "", b"CCC")], domain="example.com")
        self.assertEqual((info.subject, info.attachments, info.edited),
                         ("고친 제목", 2, self.clock.seconds()))
        post = self.store.post("free", 1)
        self.assertEqual([a.filename for a in post.attachments], ["a.txt", "c.bin"])
        self.assertIn("고친 본문", post.body)
        self.assertEqual(post.info.date, 1_700_000_000)
        self.assertEqual(post.info.author, "alice")
        self.assertRaises(InvalidValue, self.store.edit, "free", 1, "", "x")
        self.assertEqual(self.store.info("free", 1).subject, "고친 제목")

    def test_reindex_rebuilds_from_the_files(self):
        top = self.add("하나", attachments=[("x.txt", "", b"x")])
        self.add("둘", parent=top.number)
        self.add("셋")
        os.unlink(self.home.path("data", "board", "free", "index.sqlite"))
        with open(self.home.path("data", "board", "free", "posts", ".tmp-half"), "wb") as f:
            f.write(b"X-ZWMS-Au")
        self.assertEqual(self.store.stats("free")[:2], (2, 3))  # rebuilt when missing
        self.assertFalse(os.path.exists(self.home.path("data", "board", "free", "posts",
                                                       ".tmp-half")))
        self.assertEqual(self.store.reindex("free"), 3)
        self.assertEqual([(p.subject, p.replies, p.attachments, p.author)
                          for p in self.store.page("free").posts],
                         [("셋", 0, 0, "alice"), ("하나", 1, 1, "alice")])
        self.assertEqual(self.store.stats("free")[:2], (2, 3))

    def test_a_file_the_index_lost_is_never_overwritten(self):
        posts = self.home.path("data", "board", "free", "posts")
        os.makedirs(posts, exist_ok=True)
        with open(os.path.join(posts, "00000001.eml"), "wb") as f:
            f.write(b"X-ZWMS-Author: bob\r\nSubject: lost\r\n\r\nbody\r\n")
        info = self.add("new")
        self.assertEqual(info.number, 2)
        with open(os.path.join(posts, "00000001.eml"), "rb") as f:
            self.assertIn(b"lost", f.read())


class AccessTests(SynchronousTestCase):

    def setUp(self):
        from zwms.store.boardinfo import make_board
        self.everyone = make_board("free", "t")
        self.group3 = make_board("sales", "t", group=3)
        self.notice = make_board("notice", "t", write="admin")

    def test_visibility(self):
        plain = account("alice")
        in3 = account("bob", boardgroup=3)
        listed = account("carol", boardgroup=5, boards="x, Sales notice")
        self.assertTrue(can_see(self.everyone, plain))
        self.assertFalse(can_see(self.group3, plain))
        self.assertTrue(can_see(self.group3, in3))
        self.assertTrue(can_see(self.group3, listed))
        self.assertFalse(can_see(self.group3, account("dave", boardgroup=4)))

    def test_write_and_change(self):
        plain, admin = account("alice"), account("root1")
        mid3 = account("mid", boardgroup=3, midadmin=True)
        self.assertTrue(can_write(self.everyone, plain))
        self.assertFalse(can_write(self.notice, plain))
        self.assertTrue(can_write(self.notice, admin, adminid="root1"))
        self.assertFalse(can_write(self.group3, plain))
        self.assertTrue(is_moderator(self.group3, mid3))
        self.assertFalse(is_moderator(self.everyone, mid3))
        from zwms.store.boards import PostInfo
        post = PostInfo(1, 0, "bob", "", "s", 0, 0, 1, 0)
        self.assertFalse(can_change(self.everyone, post, plain))
        self.assertTrue(can_change(self.everyone, post, account("bob")))
        self.assertTrue(can_change(self.everyone, post, admin, adminid="root1"))


class BoardOpsTests(SynchronousTestCase):

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        root = self.mktemp()
        os.makedirs(root)
        self.services = make_services(root, clock=self.clock)
        self.ctx = context_from_services(self.services, None, "admin root")
        self.home = self.services.home

    def test_create_list_edit_delete(self):
        boardops.board_create(self.ctx, {"name": "notice", "title": "공지", "group": "0",
                                         "write": "admin", "description": "d"})
        self.assertRaises(InvalidValue, boardops.board_create, self.ctx, {"name": "../x",
                                                                          "title": "t"})
        rows = boardops.board_list(self.ctx, detailed=True)
        self.assertEqual([(r.board.name, r.threads, r.posts) for r in rows], [("notice", 0, 0)])
        self.assertEqual([r.board.name for r in boardops.board_list(self.ctx)], ["notice"])
        boardops.board_edit(self.ctx, "notice", {"title": "공지사항", "group": "2",
                                                 "write": "all", "description": "",
                                                 "maxattach": "50"})
        self.assertEqual(boardops.board_get(self.ctx, "notice").group, 2)
        log = self.services.logs.lines["WebMail"]
        self.assertTrue(any("board create notice" in line for line in log), log)
        boardops.board_delete(self.ctx, "notice")
        self.assertEqual(boardops.board_list(self.ctx), [])
        self.assertRaises(NoSuchBoard, boardops.board_delete, self.ctx, "notice")

    def test_backup_and_zip(self):
        boardops.board_create(self.ctx, {"name": "free", "title": "자유"})
        store = boardops.store(self.ctx)
        store.add("free", "alice", "", "첫 글", "본문", [(KOREAN, "", b"PDF")])
        store.add("free", "bob", "", "둘째", "본문")
        folder, copied = boardops.board_backup(self.ctx, "free")
        self.assertEqual(copied, ["board.json"])
        with open(os.path.join(self.home.root, "backup", "board", "free", "board.json"),
                  "rb") as f:
            self.assertEqual(json.loads(f.read())["title"], "자유")
        path, count = boardops.board_zip(self.ctx, "free")
        self.assertEqual(count, 2)
        self.assertEqual(os.path.dirname(path), os.path.join(self.home.root, "zip", "root"))
        self.assertTrue(os.path.basename(path).startswith("board-free-"))
        with zipfile.ZipFile(path) as zf:
            self.assertEqual(sorted(zf.namelist()), ["board.json", "posts/00000001.eml",
                                                     "posts/00000002.eml"])
            self.assertIn(b"X-ZWMS-Author: alice", zf.read("posts/00000001.eml"))
        second, _ = boardops.board_zip(self.ctx, "free")
        self.assertNotEqual(path, second)
        self.assertTrue(os.path.exists(path))

    def test_reindex(self):
        boardops.board_create(self.ctx, {"name": "free", "title": "자유"})
        boardops.store(self.ctx).add("free", "alice", "", "첫 글", "본문")
        os.unlink(os.path.join(self.home.root, "data", "board", "free", "index.sqlite"))
        self.assertEqual(boardops.board_reindex(self.ctx, "free"), 1)
        self.assertEqual(boardops.post_page(self.ctx, "free").threads, 1)

    def test_moderation_delete(self):
        boardops.board_create(self.ctx, {"name": "free", "title": "자유"})
        store = boardops.store(self.ctx)
        store.add("free", "alice", "", "첫 글", "본문")
        self.assertEqual(boardops.post_delete(self.ctx, "free", 1), [1])
        self.assertRaises(NoSuchPost, boardops.post_delete, self.ctx, "free", 1)
