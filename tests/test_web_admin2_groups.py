"""
Groups (SPEC A5, seed §8): the tree as folders under data/group, create /
rename / move / delete, join / cut / paste / release, the upper group and
its resets, hostile names; the /admin/groups page in both languages.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from tests.test_web_admin import ConsoleTestCase
from zwms.errors import InvalidValue
from zwms.home import Home
from zwms.store.groups import GroupStore, NoSuchGroup, check_name

HOSTILE = ["..", ".", "../x", "a/../../b", "/etc", "a\x00b", "a\\b", ".members", ".hidden",
           "", "   ", "x" * 65, "a\nb"]


class StoreTests(SynchronousTestCase):

    def setUp(self):
        self.root = self.mktemp()
        self.home = Home(self.root)
        self.home.create()
        self.groups = GroupStore(self.home)
        self.folder = self.home.path("data", "group")

    def test_tree_is_real_folders(self):
        self.assertEqual(self.groups.create("", "Sales"), "Sales")
        self.assertEqual(self.groups.create("Sales", "서울"), "Sales/서울")
        self.assertTrue(os.path.isdir(os.path.join(self.folder, "Sales", "서울")))
        self.assertEqual(self.groups.tree(), ["Sales", "Sales/서울"])

    def test_hostile_names_refused(self):
        self.groups.create("", "Sales")
        for name in HOSTILE:
            self.assertRaises(InvalidValue, self.groups.create, "Sales", name)
        for path in ("..", "../..", "Sales/..", "/../x", "Sales\\x", "Sales\x00"):
            self.assertRaises((InvalidValue, NoSuchGroup), self.groups.create, path, "x")
            self.assertRaises((InvalidValue, NoSuchGroup), self.groups.delete, path)
            self.assertRaises((InvalidValue, NoSuchGroup), self.groups.join, path, ["alice"])
        self.assertEqual(sorted(os.listdir(self.home.path("data"))),
                         sorted(os.listdir(self.home.path("data"))))
        self.assertEqual(self.groups.tree(), ["Sales"])
        self.assertFalse(os.path.exists(self.home.path("data", "x")))

    def test_symlink_out_is_not_a_group(self):
        os.symlink(self.root, os.path.join(self.folder, "evil"))
        self.assertEqual(self.groups.tree(), [])
        self.assertRaises((InvalidValue, NoSuchGroup), self.groups.create, "evil", "x")
        self.assertRaises((InvalidValue, NoSuchGroup), self.groups.delete, "evil")
        self.assertTrue(os.path.isdir(self.home.path("data")))

    def test_check_name(self):
        self.assertEqual(check_name(" 영업부 "), "영업부")

    def test_join_moves_and_clears_upper(self):
        self.groups.create("", "A")
        self.groups.create("A", "B")
        self.groups.create("", "C")
        self.groups.join("A/B", ["alice", "bob"])
        self.groups.set_upper("alice", "A")
        self.assertEqual(self.groups.group_of("alice"), ("A/B", "A"))
        self.groups.join("C", ["alice"])  # a move (cut/paste)
        self.assertEqual(self.groups.group_of("alice"), ("C", ""))
        self.assertEqual(self.groups.members("A/B"), [("bob", "")])
        self.assertEqual(self.groups.memberships(), {"alice": ("C", ""), "bob": ("A/B", "")})

    def test_upper_must_be_above(self):
        self.groups.create("", "A")
        self.groups.create("A", "B")
        self.groups.create("", "C")
        self.assertRaises(InvalidValue, self.groups.set_upper, "alice", "A")  # in no group
        self.groups.join("A/B", ["alice"])
        self.assertRaises(InvalidValue, self.groups.set_upper, "alice", "C")
        self.assertRaises(InvalidValue, self.groups.set_upper, "alice", "A/B/..")
        self.groups.set_upper("alice", "A/B")
        self.assertEqual(self.groups.group_of("alice"), ("A/B", "A/B"))

    def test_rename_and_move_clear_uppers_and_keep_members(self):
        self.groups.create("", "A")
        self.groups.create("A", "B")
        self.groups.create("", "C")
        self.groups.join("A/B", ["alice"])
        self.groups.set_upper("alice", "A")
        self.assertEqual(self.groups.rename("A", "Z"), "Z")
        self.assertEqual(self.groups.group_of("alice"), ("Z/B", ""))
        self.groups.set_upper("alice", "Z/B")
        self.assertEqual(self.groups.rename("Z/B", None, "C"), "C/B")
        self.assertEqual(self.groups.group_of("alice"), ("C/B", ""))
        self.assertRaises(InvalidValue, self.groups.rename, "C", None, "C/B")  # into itself
        self.assertRaises(InvalidValue, self.groups.rename, "C", "Z")  # taken
        self.assertRaises(InvalidValue, self.groups.rename, "C", "../x")

    def test_delete_releases_members(self):
        self.groups.create("", "A")
        self.groups.create("A", "B")
        self.groups.join("A", ["bob"])
        self.groups.join("A/B", ["alice"])
        self.assertEqual(self.groups.delete("A"), ["alice", "bob"])
        self.assertEqual(self.groups.tree(), [])
        self.assertIsNone(self.groups.group_of("alice"))
        self.assertEqual([n for n in os.listdir(self.folder) if not n.startswith(".lock")], [])

    def test_release(self):
        self.groups.create("", "A")
        self.groups.join("A", ["alice"])
        self.assertEqual(self.groups.release(["alice", "bob"]), ["alice"])
        self.assertIsNone(self.groups.group_of("alice"))

    def test_top_holds_no_members(self):
        self.assertRaises(InvalidValue, self.groups.join, "", ["alice"])
        self.assertRaises(InvalidValue, self.groups.delete, "")
        self.assertRaises(InvalidValue, self.groups.rename, "", "x")


class PageTests(ConsoleTestCase):

    def setUp(self):
        ConsoleTestCase.setUp(self)
        self.services.accounts.add("bob", "secret2")
        self.client.login()
        self.groups = GroupStore(self.services.home)

    def test_page_in_both_languages(self):
        r = self.client.get("/admin/groups/")
        self.assertEqual(r.code, 200)
        self.assertIn("그룹관리", r.text)
        self.assertIn('href="/admin/groups/"', r.text)
        self.client.post("/admin/lang", {"lang": "en", "back": "/admin/groups/"})
        r = self.client.get("/admin/groups/")
        self.assertIn("Group tree", r.text)

    def test_create_join_cut_paste_release(self):
        r = self.client.post("/admin/groups/create", {"g": "", "name": "영업"})
        self.assertEqual(r.code, 303)
        self.client.post("/admin/groups/create", {"g": "영업", "name": "Seoul"})
        self.client.post("/admin/groups/create", {"g": "", "name": "Dev"})
        self.assertEqual(self.groups.tree(), ["Dev", "영업", "영업/Seoul"])
        page = self.client.get("/admin/groups/?g=%EC%98%81%EC%97%85/Seoul")
        self.assertEqual(page.code, 200)
        self.assertIn("<strong>Seoul</strong>", page.text)
        self.client.post("/admin/groups/join", {"g": "영업/Seoul", "id": ["alice", "bob"]})
        self.client.post("/admin/groups/upper", {"g": "영업", "id": ["alice"]})
        self.assertEqual(self.groups.group_of("alice"), ("영업/Seoul", "영업"))
        self.client.post("/admin/groups/cut", {"g": "영업/Seoul", "id": ["alice"]})
        self.assertIn("alice", self.client.get("/admin/groups/?g=Dev").text)
        self.client.post("/admin/groups/paste", {"g": "Dev"})
        self.assertEqual(self.groups.group_of("alice"), ("Dev", ""))  # upper cleared
        self.assertIn("클립보드가 비어 있습니다", self.client.get("/admin/groups/?g=Dev").text)
        self.client.post("/admin/groups/release", {"g": "영업/Seoul", "id": ["bob"]})
        self.assertIsNone(self.groups.group_of("bob"))
        self.assertIn("admin root: group Dev: joined alice", self.webmail_log())

    def test_clear_clipboard(self):
        self.client.post("/admin/groups/cut", {"g": "", "id": ["alice"]})
        self.client.post("/admin/groups/clear", {"g": ""})
        self.assertEqual(self.client.post("/admin/groups/paste", {"g": ""}).code, 400)

    def test_rename_and_delete(self):
        self.client.post("/admin/groups/create", {"g": "", "name": "A"})
        self.client.post("/admin/groups/join", {"g": "A", "id": ["alice"]})
        r = self.client.post("/admin/groups/rename", {"g": "A", "name": "B", "parent": "-"})
        self.assertEqual(r.code, 303)
        self.assertEqual(self.groups.group_of("alice"), ("B", ""))
        self.client.post("/admin/groups/delete", {"g": "B"})
        self.assertEqual(self.groups.tree(), [])
        self.assertIsNone(self.groups.group_of("alice"))

    def test_errors_on_the_form(self):
        r = self.client.post("/admin/groups/create", {"g": "", "name": "../evil"})
        self.assertEqual(r.code, 400)
        self.assertIn("class=\"error\"", r.text)
        self.assertEqual(self.groups.tree(), [])
        for g in ("../..", "a/../../b", "x\\y"):
            self.assertEqual(self.client.get("/admin/groups/?g=%s" % g).code, 400, g)
            self.assertEqual(self.client.post("/admin/groups/create",
                                              {"g": g, "name": "x"}).code, 400, g)
        self.assertEqual(self.client.get("/admin/groups/?g=nothere").code, 404)
        r = self.client.post("/admin/groups/join", {"g": "nothere", "id": ["alice"]})
        self.assertEqual(r.code, 404)
        self.assertFalse(os.path.exists(self.services.home.path("data", "group", "nothere")))
        self.client.post("/admin/groups/create", {"g": "", "name": "A"})
        r = self.client.post("/admin/groups/join", {"g": "A", "id": ["ghost"]})
        self.assertEqual(r.code, 404)
        r = self.client.post("/admin/groups/join", {"g": "A", "id": ["../x"]})
        self.assertEqual(r.code, 400)
        self.assertEqual(self.groups.members("A"), [])
