"""
The address book pages (SPEC W3, seed §28; issue 7): list, search, group
filter, add/edit/delete, groups, "write mail to", Outlook CSV import (UTF-8
with BOM, EUC-KR; the upload removed afterwards, a report of skipped
lines), CSV and vCard export, the completion endpoint; CSRF, other users'
data, bad input.
"""

import json
import os
from urllib.parse import parse_qs, urlsplit

from tests.test_webmail_session import WebmailTestCase
from tests.webmailclient import MailClient
from zwms.store.addressbook import AddressBook

#: Outlook (English) "Export to a file > Comma Separated Values", UTF-8 with BOM.
OUTLOOK_EN = (
    "\ufeff\"First Name\",\"Middle Name\",\"Last Name\",\"Title\",\"Suffix\",\"Nickname\","
    "\"E-mail Address\",\"E-mail 2 Address\",\"E-mail 3 Address\",\"Business Phone\","
    "\"Mobile Phone\",\"Notes\"\r\n"
    "\"John\",\"\",\"Smith\",\"\",\"\",\"\",\"john.smith@partner.test\",\"\",\"\","
    "\"02-555-0101\",\"010-1111-2222\",\"met at expo\"\r\n"
    "\"길동\",\"\",\"홍\",\"\",\"\",\"\",\"hong@far.test\",\"\",\"\",\"\",\"\",\"\"\r\n"
    "\"No\",\"\",\"Mail\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"\r\n"
    "\"Bad\",\"\",\"Address\",\"\",\"\",\"\",\"not-an-address\",\"\",\"\",\"\",\"\",\"\"\r\n"
).encode("utf-8")

#: Korean Outlook, name and e-mail fields only (as §28 asks), EUC-KR.
OUTLOOK_KO = ("이름,전자 메일 주소\r\n"
              "김철수,chulsoo@corp.test\r\n"
              "이영희,younghee@corp.test\r\n"
              "박지성,잘못된주소\r\n").encode("euc-kr")


class ContactsTestCase(WebmailTestCase):

    def setUp(self):
        WebmailTestCase.setUp(self)
        self.client.login()
        self.base = "/mail/contacts/%s/" % self.client.rand
        self.book = AddressBook(self.services.home)

    def add(self, **fields):
        values = {"name": "홍길동", "addresses": "hong@far.test", "phone": "", "memo": ""}
        values.update(fields)
        return self.client.post(self.base + "new", values)

    def leftovers(self, login="alice"):
        """Files in the account folder other than the book and the usual ones."""
        folder = self.services.home.user_dir(login)
        return [n for n in os.listdir(folder) if n.startswith(".tmp-") or n.endswith(".csv")]


class ListAndEditTests(ContactsTestCase):

    def test_empty_page_and_bare_url(self):
        r = self.client.get(self.base)
        self.assertEqual(r.code, 200)
        self.assertIn("주소록이 비어 있습니다", r.text)
        self.assertIn('href="/mail/css/contacts.css"', r.text)
        for action in ("group/add", "import"):
            self.assertIn('action="%s%s"' % (self.base, action), r.text)
        r = self.client.get(self.base.rstrip("/"))
        self.assertEqual((r.code, r.header("location")), (303, self.base))

    def test_add_edit_delete(self):
        r = self.add(name="홍길동", addresses="hong@far.test, gildong@far.test",
                     phone="010-1234-5678", memo="거래처 담당", new_group="거래처")
        self.assertEqual((r.code, r.header("location")), (303, self.base + "?done=added"))
        page = self.client.get(r.header("location"))
        self.assertIn("추가했습니다", page.text)
        self.assertIn("홍길동", page.text)
        self.assertIn("010-1234-5678", page.text)
        c = self.book.contacts("alice")[0]
        self.assertEqual((c.addresses, c.groups, c.memo),
                         (["hong@far.test", "gildong@far.test"], ["거래처"], "거래처 담당"))
        form = self.client.get(self.base + "edit/%d" % c.id)
        self.assertEqual(form.code, 200)
        self.assertIn('value="hong@far.test, gildong@far.test"', form.text)
        r = self.client.post(self.base + "edit/%d" % c.id, {
            "name": "홍길동 과장", "addresses": "hong@far.test", "phone": "", "memo": "",
            "groups": "거래처"})
        self.assertEqual(r.code, 303)
        c = self.book.get("alice", c.id)
        self.assertEqual((c.name, c.addresses, c.groups), ("홍길동 과장", ["hong@far.test"],
                                                           ["거래처"]))
        r = self.client.post(self.base + "delete/%d" % c.id)
        self.assertEqual((r.code, r.header("location")), (303, self.base + "?done=deleted"))
        self.assertEqual(self.book.contacts("alice"), [])
        self.assertEqual(self.client.post(self.base + "delete/%d" % c.id).code, 404)
        self.assertIn("webmail contact added: alice #1", self.log())

    def test_bad_values_keep_the_form(self):
        r = self.add(name="Typo", addresses="not an address", memo="keep me")
        self.assertEqual(r.code, 400)
        self.assertIn("전자메일 주소가 아닙니다", r.text)
        self.assertIn("keep me", r.text)
        r = self.add(addresses="")
        self.assertEqual(r.code, 400)
        self.assertIn("전자메일 주소가 있어야 합니다", r.text)
        r = self.add(phone="1" * 61)
        self.assertIn("전화번호가 너무 깁니다", r.text)
        self.assertEqual(self.book.contacts("alice"), [])
        self.assertEqual(self.client.get(self.base + "edit/99").code, 404)

    def test_english_messages(self):
        client = MailClient(self.services)
        client.cookies["zwms_lang"] = "en"  # the language chosen on the login page
        client.login("bob", "secret2")
        r = client.post("/mail/contacts/%s/new" % client.rand,
                        {"name": "x", "addresses": "nope"})
        self.assertEqual(r.code, 400)
        self.assertIn("Not an e-mail address: nope", r.text)
        self.assertIn("E-mail addresses", r.text)

    def test_search_and_group_filter(self):
        self.book.add("alice", "김철수", "chulsoo@corp.test", groups=["회사"])
        self.book.add("alice", "Friend", "friend@home.test", phone="010-9999", groups=["친구"])
        page = self.client.get(self.base + "?q=corp")
        self.assertIn("김철수", page.text)
        self.assertNotIn("Friend", page.text)
        page = self.client.get(self.base + "?q=9999")
        self.assertIn("Friend", page.text)
        page = self.client.get(self.base + "?group=%ED%9A%8C%EC%82%AC")  # 회사
        self.assertIn("김철수", page.text)
        self.assertNotIn("friend@home.test", page.text)
        self.assertIn("export.csv?group=%ED%9A%8C%EC%82%AC", page.text)
        page = self.client.get(self.base + "?q=nobody")
        self.assertIn("맞는 연락처가 없습니다", page.text)

    def test_csrf_refused(self):
        self.book.add("alice", "A", "a@x.test")
        for path, data in (("new", {"name": "x", "addresses": "x@x.test"}),
                           ("edit/1", {"name": "x", "addresses": "x@x.test"}),
                           ("delete/1", {}), ("selected", {"id": "1", "action": "delete"}),
                           ("group/add", {"name": "g"})):
            r = self.client.post(self.base + path, data, csrf=False)
            self.assertEqual(r.code, 403, path)
        r = self.client.upload(self.base + "import", {}, [("file", "a.csv", OUTLOOK_KO)],
                               csrf=False)
        self.assertEqual(r.code, 403)
        self.assertEqual([c.name for c in self.book.contacts("alice")], ["A"])
        self.assertEqual(self.book.groups("alice"), [])

    def test_other_users_book_not_reachable(self):
        theirs = self.book.add("bob", "Secret", "secret@bob.test")
        self.assertEqual(self.client.get(self.base + "edit/%d" % theirs.id).code, 404)
        r = self.client.post(self.base + "edit/%d" % theirs.id,
                             {"name": "Hacked", "addresses": "h@x.test"})
        self.assertEqual(r.code, 404)
        self.client.post(self.base + "delete/%d" % theirs.id)
        self.client.post(self.base + "selected", {"id": str(theirs.id), "action": "delete"})
        self.assertEqual(self.book.get("bob", theirs.id).name, "Secret")
        self.assertNotIn("secret@bob.test", self.client.get(self.base).text)
        self.assertEqual(json.loads(self.client.get(self.base + "complete?q=sec").text), [])
        self.assertNotIn(b"secret@bob.test", self.client.get(self.base + "export.vcf").body)
        # another session's random segment is refused
        if self.client.rand != "-":
            self.assertEqual(self.client.get("/mail/contacts/WRONG/").code, 303)

    def test_no_session(self):
        anon = MailClient(self.services)
        r = anon.get(self.base)
        self.assertEqual((r.code, r.header("location")), (303, "/mail/?expired=1"))
        r = anon.get(self.base + "complete?q=a")
        self.assertEqual(r.code, 403)
        self.assertEqual(json.loads(r.text), {"error": "no session"})
        self.assertEqual(anon.get(self.base + "export.csv").code, 303)


class GroupTests(ContactsTestCase):

    def test_group_create_rename_delete(self):
        self.assertEqual(self.client.post(self.base + "group/add", {"name": "거래처"}).code, 303)
        self.assertEqual(self.book.groups("alice"), ["거래처"])
        self.assertEqual(self.client.post(self.base + "group/add", {"name": " "}).code, 400)
        c = self.book.add("alice", "A", "a@x.test", groups=["거래처"])
        r = self.client.post(self.base + "group/rename", {"old": "거래처", "new": "고객"})
        self.assertEqual(r.code, 303)
        self.assertEqual(self.book.get("alice", c.id).groups, ["고객"])
        self.assertEqual(self.client.post(self.base + "group/rename",
                                          {"old": "없음", "new": "x"}).code, 404)
        r = self.client.post(self.base + "group/rename", {"old": "고객", "new": ""})
        self.assertEqual(r.code, 400)
        self.assertIn("그룹 이름이 있어야 합니다", r.text)
        self.assertEqual(self.client.post(self.base + "group/delete", {"name": "고객"}).code, 303)
        self.assertEqual(self.book.groups("alice"), [])
        self.assertEqual(self.book.get("alice", c.id).name, "A")

    def test_assign_selected_to_group(self):
        a = self.book.add("alice", "A", "a@x.test")
        b = self.book.add("alice", "B", "b@x.test")
        r = self.client.post(self.base + "selected", {"id": [str(a.id), str(b.id)],
                                                      "action": "addgroup", "group": "팀"})
        self.assertEqual((r.code, r.header("location")), (303, self.base + "?done=grouped"))
        self.assertIn("그룹을 바꾸었습니다", self.client.get(r.header("location")).text)
        self.assertEqual([c.name for c in self.book.contacts("alice", "팀")], ["A", "B"])
        self.client.post(self.base + "selected", {"id": str(a.id), "action": "removegroup",
                                                  "group": "팀"})
        self.assertEqual([c.name for c in self.book.contacts("alice", "팀")], ["B"])
        r = self.client.post(self.base + "selected", {"id": str(a.id), "action": "addgroup",
                                                      "group": ""})
        self.assertEqual(r.code, 400)
        r = self.client.post(self.base + "selected", {"action": "delete"})
        self.assertEqual(r.code, 400)
        self.assertIn("연락처를 먼저 고르십시오", r.text)
        self.assertEqual(self.client.post(self.base + "selected", {
            "id": "x", "action": "delete"}).code, 400)
        self.assertEqual(self.client.post(self.base + "selected", {
            "id": str(a.id), "action": "explode"}).code, 400)
        self.assertEqual(len(self.book.contacts("alice")), 2)

    def test_write_mail_to_selected(self):
        a = self.book.add("alice", "홍길동", "hong@far.test")
        b = self.book.add("alice", "Lee, Bob", "bob@x.test")
        self.book.add("alice", "C", "c@x.test")
        r = self.client.post(self.base + "selected", {"id": [str(a.id), str(b.id)],
                                                      "action": "write"})
        self.assertEqual(r.code, 303)
        url = urlsplit(r.header("location"))
        self.assertEqual(url.path, "/mail/compose/%s/new" % self.client.rand)
        to = parse_qs(url.query)["to"][0]
        self.assertEqual(to, '"Lee, Bob" <bob@x.test>, 홍길동 <hong@far.test>')
        page = self.client.get(r.header("location"))
        self.assertEqual(page.code, 200)
        self.assertIn("hong@far.test", page.text)

    def test_write_mail_to_many_falls_back_to_addresses(self):
        ids = [str(self.book.add("alice", "Person Number %03d" % i,
                                 "p%03d@example.org" % i).id) for i in range(40)]
        r = self.client.post(self.base + "selected", {"id": ids, "action": "write"})
        to = parse_qs(urlsplit(r.header("location")).query)["to"][0]
        self.assertNotIn("Person", to)
        self.assertEqual(to.count("@"), 40)
        ids += [str(self.book.add("alice", "Q", "q%03d@example.org" % i).id) for i in range(60)]
        r = self.client.post(self.base + "selected", {"id": ids, "action": "write"})
        self.assertEqual(r.code, 400)
        self.assertIn("받는 사람이 너무 많습니다", r.text)


class ImportExportTests(ContactsTestCase):

    def test_import_outlook_utf8_bom(self):
        r = self.client.upload(self.base + "import", {"group": ""},
                               [("file", "contacts.csv", OUTLOOK_EN)])
        self.assertEqual(r.code, 200)
        self.assertIn("가져오기 결과", r.text)
        self.assertIn("추가: 2", r.text)
        self.assertIn("건너뛴 줄: 2", r.text)
        self.assertIn("<td>4</td>", r.text)
        self.assertIn("<td>5</td>", r.text)
        self.assertIn("올바른 전자메일 주소가 없습니다: Bad,,Address,,,,not-an-address", r.text)
        self.assertIn("올린 파일은 가져온 뒤 지웠습니다", r.text)
        john = self.book.search("alice", "john")[0]
        self.assertEqual((john.name, john.phone, john.memo),
                         ("John Smith", "010-1111-2222", "met at expo"))
        self.assertEqual(self.book.search("alice", "hong@")[0].name, "홍길동")
        self.assertEqual(self.leftovers(), [])
        self.assertIn("webmail contacts imported: alice 2 added", " ".join(self.log()))

    def test_import_outlook_euc_kr_into_group(self):
        r = self.client.upload(self.base + "import", {"group": "회사"},
                               [("file", "주소록.csv", OUTLOOK_KO)])
        self.assertEqual(r.code, 200)
        self.assertIn("euc-kr", r.text)
        self.assertIn("잘못된주소", r.text)
        self.assertEqual([c.name for c in self.book.contacts("alice", "회사")],
                         ["김철수", "이영희"])
        # again: every address is there already
        r = self.client.upload(self.base + "import", {}, [("file", "a.csv", OUTLOOK_KO)])
        self.assertIn("이미 주소록에 있음: 2", r.text)
        self.assertEqual(len(self.book.contacts("alice")), 2)
        self.assertEqual(self.leftovers(), [])

    def test_broken_csv(self):
        for data, text in ((b"Name,E-mail Address\r\nA,nope\r\n", "전자메일 주소를 찾지 못했습니다"),
                           (b"\x00\x01\x02\x03binary", "텍스트(CSV) 파일이 아닙니다"),
                           (b"\xff\xfa\xff\xfa\x80\x81", "UTF-8이나 EUC-KR 텍스트가 아닙니다")):
            r = self.client.upload(self.base + "import", {}, [("file", "x.csv", data)])
            self.assertEqual(r.code, 400, data)
            self.assertIn(text, r.text)
        r = self.client.upload(self.base + "import", {}, [])
        self.assertEqual(r.code, 400)
        self.assertIn("가져올 CSV 파일을 고르십시오", r.text)
        self.assertEqual(self.book.contacts("alice"), [])
        self.assertEqual(self.leftovers(), [])

    def test_export_csv_and_vcard(self):
        self.book.add("alice", "홍길동", "hong@far.test", phone="010-1", groups=["회사"])
        self.book.add("alice", "Friend", "f@home.test")
        r = self.client.get(self.base + "export.csv")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.header("content-type"), "text/csv; charset=utf-8")
        self.assertIn("attachment", r.header("content-disposition"))
        self.assertTrue(r.body.startswith(b"\xef\xbb\xbf"))
        self.assertIn("hong@far.test", r.body.decode("utf-8-sig"))
        r = self.client.get(self.base + "export.csv?group=%ED%9A%8C%EC%82%AC")
        self.assertNotIn(b"f@home.test", r.body)
        r = self.client.get(self.base + "export.vcf")
        self.assertEqual(r.header("content-type"), "text/vcard; charset=utf-8")
        self.assertEqual(r.body.count(b"BEGIN:VCARD"), 2)
        self.assertIn("FN:홍길동".encode("utf-8"), r.body)
        # the export is importable again (into another account)
        bob = MailClient(self.services)
        bob.login("bob", "secret2")
        exported = self.client.get(self.base + "export.csv").body
        r = bob.upload("/mail/contacts/%s/import" % bob.rand, {},
                       [("file", "contacts.csv", exported)])
        self.assertEqual(r.code, 200)
        self.assertEqual(sorted(c.name for c in self.book.contacts("bob")),
                         ["Friend", "홍길동"])


class CompleteTests(ContactsTestCase):

    def test_complete(self):
        self.book.add("alice", "홍길동", "hong@far.test")
        self.book.add("alice", "Hannah Park", "hannah@x.test")
        self.book.add("alice", "Zed", "zed@x.test")
        r = self.client.get(self.base + "complete?q=h")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.header("content-type"), "application/json; charset=utf-8")
        self.assertEqual(json.loads(r.text), ["Hannah Park <hannah@x.test>",
                                              "홍길동 <hong@far.test>"])
        r = self.client.get(self.base + "complete?q=%ED%99%8D")  # 홍
        self.assertEqual(json.loads(r.text), ["홍길동 <hong@far.test>"])
        self.assertEqual(json.loads(self.client.get(self.base + "complete?q=").text), [])
        self.assertEqual(json.loads(self.client.get(self.base + "complete").text), [])

    def test_complete_limit(self):
        for i in range(15):
            self.book.add("alice", "", "user%02d@x.test" % i)
        self.assertEqual(len(json.loads(self.client.get(self.base + "complete?q=user").text)),
                         10)

    def test_script_served(self):
        r = self.client.get("/mail/js/complete.js")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.header("content-type"), "text/javascript")
        self.assertIn(b"data-complete", r.body)
