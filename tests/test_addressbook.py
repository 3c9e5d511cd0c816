"""Address book (SPEC W3, §28): contacts, groups, Outlook CSV import, CSV/vCard export."""

import os
import threading

from twisted.trial.unittest import SynchronousTestCase

from zwms.errors import InvalidValue
from zwms.home import Home
from zwms.store.addressbook import AddressBook, parse_csv

OUTLOOK_EN = (
    "First Name,Middle Name,Last Name,Title,Suffix,Nickname,Given Yomi,Surname Yomi,"
    "E-mail Address,E-mail 2 Address,E-mail 3 Address,Home Phone,Home Phone 2,"
    "Business Phone,Mobile Phone,Notes\r\n"
    "John,,Smith,,,,,,john.smith@partner.test,js@home.test,,,,02-555-0101,010-1111-2222,"
    "\"met at expo, 2023\"\r\n"
    "길동,,홍,,,,,,hong@far.test,,,,,,,\r\n"
    "No,,Mail,,,,,,,,,,,,,\r\n"
    "Bad,,Address,,,,,,not-an-address,,,,,,,\r\n")

OUTLOOK_KO = ("이름,전자 메일 주소\r\n"
              "김철수,chulsoo@corp.test\r\n"
              "이영희,younghee@corp.test\r\n"
              "박지성,잘못된주소\r\n")


class Base(SynchronousTestCase):
    def setUp(self):
        self.home = Home(self.mktemp())
        self.home.create()
        os.makedirs(self.home.user_dir("alice"))
        self.book = AddressBook(self.home)

    def write(self, name, data):
        path = os.path.join(self.home.root, name)
        with open(path, "wb") as f:
            f.write(data)
        return path


class ContactTests(Base):
    def test_add_edit_delete_search(self):
        c = self.book.add("alice", "홍길동", "hong@far.test, gildong@far.test",
                          phone="010-1234-5678", memo="line1\nline2", groups=["거래처"])
        self.assertEqual(c.addresses, ["hong@far.test", "gildong@far.test"])
        self.assertEqual(self.book.get("alice", c.id).memo, "line1\nline2")
        d = self.book.add("alice", "", ["bob@b.test"])
        self.assertEqual(d.name, "bob")
        self.assertNotEqual(c.id, d.id)
        self.book.edit("alice", d.id, name="Bob Lee", groups="friends, 거래처")
        self.assertEqual(self.book.get("alice", d.id).groups, ["friends", "거래처"])
        self.assertEqual([x.name for x in self.book.search("alice", "거래")], ["Bob Lee", "홍길동"])
        self.assertEqual([x.name for x in self.book.search("alice", "1234")], ["홍길동"])
        self.assertEqual([x.name for x in self.book.contacts("alice", group="friends")],
                         ["Bob Lee"])
        self.assertEqual(self.book.delete("alice", [c.id]), 1)
        self.assertRaises(KeyError, self.book.get, "alice", c.id)
        self.assertEqual(self.book.addresses("alice"), {"bob@b.test"})

    def test_bad_values_refused_nothing_lost(self):
        self.book.add("alice", "A", "a@a.test")
        self.assertRaises(InvalidValue, self.book.add, "alice", "B", "no address")
        self.assertRaises(InvalidValue, self.book.add, "alice", "B", "")
        self.assertRaises(InvalidValue, self.book.add, "alice", "x" * 300, "b@b.test")
        self.assertRaises(InvalidValue, self.book.add, "alice", "B", "user%far@here.test")
        self.assertRaises(InvalidValue, self.book.edit, "alice", 1, password="x")
        self.assertRaises(InvalidValue, self.book.add, "../etc", "B", "b@b.test")
        self.assertEqual(len(self.book.contacts("alice")), 1)

    def test_damaged_file_never_overwritten(self):
        path = os.path.join(self.home.user_dir("alice"), "addressbook.json")
        with open(path, "wb") as f:
            f.write(b"{broken")
        self.assertRaises(InvalidValue, self.book.add, "alice", "A", "a@a.test")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"{broken")

    def test_groups(self):
        a = self.book.add("alice", "A", "a@a.test", groups=["old"])
        self.book.add_group("alice", "empty")
        self.assertEqual(self.book.groups("alice"), ["empty", "old"])
        self.book.rename_group("alice", "old", "new")
        self.assertEqual(self.book.get("alice", a.id).groups, ["new"])
        self.book.set_groups("alice", [a.id], "empty")
        self.assertEqual(self.book.get("alice", a.id).groups, ["new", "empty"])
        self.book.delete_group("alice", "empty")
        self.assertEqual(self.book.get("alice", a.id).groups, ["new"])
        self.assertEqual(self.book.groups("alice"), ["new"])

    def test_complete_prefix(self):
        self.book.add("alice", "Kim Minsu", "minsu@corp.test")
        self.book.add("alice", "홍길동", ["hong@far.test", "gd@far.test"])
        self.assertEqual(self.book.complete("alice", "min"), [("Kim Minsu", "minsu@corp.test")])
        self.assertEqual(self.book.complete("alice", "MINSU@"), [("Kim Minsu", "minsu@corp.test")])
        self.assertEqual(self.book.complete("alice", "홍"),
                         [("홍길동", "hong@far.test"), ("홍길동", "gd@far.test")])
        self.assertEqual(self.book.complete("alice", "gd"), [("홍길동", "gd@far.test")])
        self.assertEqual(self.book.complete("alice", ""), [])
        self.assertEqual(self.book.complete("alice", "zzz"), [])

    def test_concurrent_adds_all_kept(self):
        def worker(n):
            for i in range(10):
                self.book.add("alice", "u%d-%d" % (n, i), "u%d-%d@t.test" % (n, i))
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        contacts = self.book.contacts("alice")
        self.assertEqual(len(contacts), 40)
        self.assertEqual(len({c.id for c in contacts}), 40)


class ImportTests(Base):
    def test_outlook_english_utf8_bom(self):
        path = self.write("contacts.csv", b"\xef\xbb\xbf" + OUTLOOK_EN.encode("utf-8"))
        report = self.book.import_csv("alice", path)
        self.assertEqual((report.added, report.duplicates, report.encoding), (2, 0, "utf-8"))
        self.assertEqual([n for n, _ in report.skipped], [4, 5])
        self.assertTrue(report.deleted)
        self.assertFalse(os.path.exists(path))
        john = self.book.search("alice", "john")[0]
        self.assertEqual((john.name, john.addresses, john.phone, john.memo),
                         ("John Smith", ["john.smith@partner.test", "js@home.test"],
                          "010-1111-2222", "met at expo, 2023"))
        self.assertEqual(self.book.search("alice", "hong@")[0].name, "홍길동")

    def test_outlook_korean_euc_kr(self):
        path = self.write("주소록.csv", OUTLOOK_KO.encode("euc-kr"))
        report = self.book.import_csv("alice", path, group="회사")
        self.assertEqual((report.added, report.encoding), (2, "euc-kr"))
        self.assertEqual(report.skipped[0][0], 4)
        self.assertIn("잘못된주소", report.skipped[0][1])
        self.assertFalse(os.path.exists(path))
        self.assertEqual([c.name for c in self.book.contacts("alice", group="회사")],
                         ["김철수", "이영희"])

    def test_headerless_and_duplicates(self):
        self.book.add("alice", "Old", "dup@x.test")
        data = "새사람,new@x.test\r\nOld Again,DUP@x.test\r\nonly@x.test\r\n".encode("cp949")
        report = self.book.import_csv_bytes("alice", data)
        self.assertEqual((report.added, report.duplicates), (2, 1))
        self.assertEqual(len(self.book.contacts("alice")), 3)

    def test_utf16_tab_separated(self):
        data = "Name\tE-mail Address\r\nTab Person\ttab@x.test\r\n".encode("utf-16")
        self.assertEqual(self.book.import_csv_bytes("alice", data).added, 1)

    def test_nothing_usable_keeps_file(self):
        path = self.write("junk.csv", b"Name,E-mail Address\r\nA,nope\r\n")
        self.assertRaises(InvalidValue, self.book.import_csv, "alice", path)
        self.assertTrue(os.path.exists(path))
        path2 = self.write("bin.csv", b"\x00\x01\x02\xff\xfe\x00")
        self.assertRaises(InvalidValue, self.book.import_csv, "alice", path2)
        self.assertTrue(os.path.exists(path2))

    def test_file_kept_when_book_cannot_be_written(self):
        path = self.write("c.csv", b"Name,E-mail Address\r\nA,a@x.test\r\n")
        book_path = os.path.join(self.home.user_dir("alice"), "addressbook.json")
        with open(book_path, "wb") as f:
            f.write(b"damaged")
        self.assertRaises(InvalidValue, self.book.import_csv, "alice", path)
        self.assertTrue(os.path.exists(path))

    def test_upload_stored_then_removed(self):
        """A web upload passes through a temp file in the account folder, gone afterwards."""
        folder = self.home.user_dir("alice")
        report = self.book.import_upload("alice", b"Name,E-mail Address\r\nA,a@x.test\r\n")
        self.assertEqual((report.added, report.deleted), (1, True))
        self.assertEqual([n for n in os.listdir(folder) if n != "addressbook.json"], [])
        self.assertRaises(InvalidValue, self.book.import_upload, "alice", b"Name\r\nnothing\r\n")
        self.assertEqual([n for n in os.listdir(folder) if n != "addressbook.json"], [])
        self.assertEqual(len(self.book.contacts("alice")), 1)

    def test_parse_csv_quoted_newlines(self):
        rows, enc = parse_csv(b'Name,Notes\r\n"A","two\r\nlines"\r\n')
        self.assertEqual(rows[1], ["A", "two\r\nlines"])


class ExportTests(Base):
    def test_csv_roundtrip_and_formula_guard(self):
        self.book.add("alice", "=HYPERLINK(\"x\")", "f@x.test", phone="+82-10-1234",
                      memo="a,b\nc", groups=["g1", "g2"])
        self.book.add("alice", "홍길동", ["hong@far.test", "h2@far.test"])
        data = self.book.export_csv("alice")
        self.assertTrue(data.startswith(b"\xef\xbb\xbf"))
        self.assertIn("'=HYPERLINK".encode("utf-8"), data)
        other = AddressBook(self.home)
        os.makedirs(self.home.user_dir("bob"))
        report = other.import_csv_bytes("bob", data)
        self.assertEqual(report.added, 2)
        f = other.search("bob", "f@x.test")[0]
        self.assertEqual((f.name, f.phone, f.memo), ("=HYPERLINK(\"x\")", "+82-10-1234", "a,b\nc"))
        self.assertEqual(other.search("bob", "홍")[0].addresses, ["hong@far.test", "h2@far.test"])

    def test_vcard(self):
        self.book.add("alice", "홍길동; Jr, " + "가" * 40, ["hong@far.test", "h2@far.test"],
                      phone="010", memo="l1\nl2", groups=["a,b"])
        data = self.book.export_vcard("alice")
        self.assertTrue(data.startswith(b"BEGIN:VCARD\r\nVERSION:3.0\r\n"))
        self.assertTrue(data.endswith(b"END:VCARD\r\n"))
        for line in data.split(b"\r\n"):
            self.assertLessEqual(len(line), 75)
            line.decode("utf-8")  # folding never splits a character
        unfolded = data.replace(b"\r\n ", b"").decode("utf-8")
        self.assertIn("FN:홍길동\\; Jr\\, " + "가" * 40, unfolded)
        self.assertIn("N:홍길동\\; Jr\\, ", unfolded)
        self.assertIn("EMAIL;TYPE=INTERNET;TYPE=PREF:hong@far.test\r\n", unfolded)
        self.assertIn("EMAIL;TYPE=INTERNET:h2@far.test\r\n", unfolded)
        self.assertIn("NOTE:l1\\nl2\r\n", unfolded)
        self.assertIn("CATEGORIES:a\\,b\r\n", unfolded)
